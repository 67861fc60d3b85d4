/// Adds special tokens and type ids after the model ran (HF `PostProcessor`).
public protocol PostProcessor: Sendable {
    /// Tokens this processor adds to a single input or a pair (for truncation budgets).
    func addedTokenCount(isPair: Bool) -> Int
    /// Combines the model's encodings of the first and optional second text.
    /// `tokenText` gives a token's text as HF's `Token.value` holds it (needed to trim byte-level
    /// offsets): the vocabulary string, or for an added token that strips whitespace the text its
    /// span covers in input `sequence` (0 or 1), whitespace included.
    func process(_ first: Encoding, _ second: Encoding?, addSpecialTokens: Bool, tokenText: TokenText) -> Encoding
    /// How many overflowing windows `process` makes from inputs with `first` and `second` windows
    /// each, saturating at `Int.max`. Every merge pairs each window with each other (as HF's does), so a
    /// template that names an input k times multiplies its windows k-fold: the tokenizer refuses a
    /// count past its limit before building them.
    func overflowWindows(first: Int, second: Int?) -> Int
}

extension PostProcessor {
    public func overflowWindows(first: Int, second: Int?) -> Int {
        Encoding.mergedWindows(Encoding.mergedWindows(0, first), second ?? 0)
    }
}

/// A token's text from its id, its span and the input (0 or 1) it came from.
public typealias TokenText = (_ id: Int32, _ span: TokenSpan, _ sequence: Int) -> String?

/// HF's `TemplateProcessing` (and `BertProcessing`, which is the template
/// `[CLS] $A [SEP]` / `[CLS] $A [SEP] $B:1 [SEP]:1`).
public struct TemplateProcessing: PostProcessor {
    public enum Piece: Sendable, Equatable {
        /// Input sequence 0 (`$A`) or 1 (`$B`), with the type id its tokens get.
        case sequence(Int, typeId: Int32)
        /// A special token (its ids, usually one), with its type id.
        case special(ids: [Int32], typeId: Int32)
    }
    public var single: [Piece]
    public var pair: [Piece]

    public init(single: [Piece], pair: [Piece]) {
        self.single = single
        self.pair = pair
    }

    /// BERT's template around `cls` and `sep` ids.
    public static func bert(cls: Int32, sep: Int32) -> TemplateProcessing {
        TemplateProcessing(
            single: [.special(ids: [cls], typeId: 0), .sequence(0, typeId: 0), .special(ids: [sep], typeId: 0)],
            pair: [.special(ids: [cls], typeId: 0), .sequence(0, typeId: 0), .special(ids: [sep], typeId: 0),
                   .sequence(1, typeId: 1), .special(ids: [sep], typeId: 1)])
    }

    public func addedTokenCount(isPair: Bool) -> Int {
        (isPair ? pair : single).reduce(0) { n, p in
            if case let .special(ids, _) = p { return n + ids.count }
            return n
        }
    }

    /// Whether the template names an input more than once (`[CLS] $A [CLS] $A [SEP] $B [SEP]`). Truncation
    /// budgets each input once, as HF's does (tokenizers 0.23.3), so every copy past the first makes the
    /// encoding longer than the truncation's maximum length, exactly as HF's is.
    public func repeatsSequence(isPair: Bool) -> Bool {
        let inputs = (isPair ? pair : single).compactMap { piece -> Int? in
            if case let .sequence(which, _) = piece { return which }
            return nil
        }
        return Set(inputs).count < inputs.count
    }

    public func overflowWindows(first: Int, second: Int?) -> Int {
        let windows = [first, second ?? 0]
        return (second == nil ? single : pair).reduce(0) { count, piece in
            guard case let .sequence(which, _) = piece else { return count }
            return Encoding.mergedWindows(count, windows[which])
        }
    }

    public func process(_ first: Encoding, _ second: Encoding?, addSpecialTokens: Bool, tokenText: TokenText) -> Encoding {
        let inputs = second.map { [first, $0] } ?? [first]
        var result = Encoding(detailed: first.detailed)
        result.reserve(first.count + (second?.count ?? 0) + 3)
        for piece in second == nil ? single : pair {
            switch piece {
            case let .sequence(which, typeId):
                var e = inputs[which]
                // HF sets the template's type id on the sequence itself, not on its overflowing windows.
                e.typeIds = [Int32](repeating: typeId, count: e.count)
                result.merge(with: e)
            case let .special(ids, typeId):
                guard addSpecialTokens else { continue }
                var e = Encoding(detailed: first.detailed)
                for id in ids { e.append(id: id, typeId: typeId, span: .empty, special: true, sequence: -1) }
                result.merge(with: e)
            }
        }
        return result
    }
}

/// No special tokens: a pair is simply concatenated (HF's default when there is no post-processor).
public struct ConcatenatingProcessor: PostProcessor {
    public init() {}
    public func addedTokenCount(isPair: Bool) -> Int { 0 }
    public func process(_ first: Encoding, _ second: Encoding?, addSpecialTokens: Bool, tokenText: TokenText) -> Encoding {
        var result = first
        if let second { result.merge(with: second) }
        return result
    }
}

/// HF's `ByteLevel` post-processor: optionally trims the offsets of byte-level tokens so that
/// a leading "Ġ" (space) or trailing spaces are not counted in the token's span.
public struct ByteLevelProcessor: PostProcessor {
    public var trimOffsets: Bool
    public var addPrefixSpace: Bool

    public init(trimOffsets: Bool, addPrefixSpace: Bool) {
        self.trimOffsets = trimOffsets
        self.addPrefixSpace = addPrefixSpace
    }

    public func addedTokenCount(isPair: Bool) -> Int { 0 }

    public func process(_ first: Encoding, _ second: Encoding?, addSpecialTokens: Bool, tokenText: TokenText) -> Encoding {
        var a = first
        var b = second
        if trimOffsets {
            trim(&a, sequence: 0, tokenText)
            if b != nil { trim(&b!, sequence: 1, tokenText) }
        }
        return ConcatenatingProcessor().process(a, b, addSpecialTokens: addSpecialTokens, tokenText: tokenText)
    }

    func trim(_ e: inout Encoding, sequence: Int, _ tokenText: TokenText) {
        guard e.detailed else { return }  // offsets are all trimming changes
        for i in 0..<e.count {
            guard let text = tokenText(e.ids[i], e.offsets[i], sequence) else { continue }
            let scalars = Array(text.unicodeScalars)
            func isSpace(_ s: Unicode.Scalar) -> Bool { s == "\u{120}" || s.properties.isWhitespace }
            var leading = scalars.prefix(while: isSpace).count
            let trailing = scalars.reversed().prefix(while: isSpace).count
            var span = e.offsets[i]
            if leading > 0 {
                let isFirst = i == 0 || span.start == 0
                if isFirst && addPrefixSpace && leading == 1 { leading = 0 }
                span.start = min(span.start + leading, span.end)
            }
            if trailing > 0, span.end >= trailing {
                span.end = max(span.end - trailing, span.start)
            }
            e.offsets[i] = span
        }
        for j in 0..<e.overflowing.count { trim(&e.overflowing[j], sequence: sequence, tokenText) }
    }
}

/// HF's `RobertaProcessing`: the byte-level offsets trimmed as `ByteLevelProcessor` trims them,
/// then `<s> $A </s>` or `<s> $A </s> </s> $B </s>`, every type id 0 (RoBERTa has no token types).
public struct RobertaProcessing: PostProcessor {
    public var trimmer: ByteLevelProcessor
    public var template: TemplateProcessing

    public init(cls: Int32, sep: Int32, trimOffsets: Bool, addPrefixSpace: Bool) {
        trimmer = ByteLevelProcessor(trimOffsets: trimOffsets, addPrefixSpace: addPrefixSpace)
        template = TemplateProcessing(
            single: [.special(ids: [cls], typeId: 0), .sequence(0, typeId: 0), .special(ids: [sep], typeId: 0)],
            pair: [.special(ids: [cls], typeId: 0), .sequence(0, typeId: 0), .special(ids: [sep, sep], typeId: 0),
                   .sequence(1, typeId: 0), .special(ids: [sep], typeId: 0)])
    }

    public func addedTokenCount(isPair: Bool) -> Int { template.addedTokenCount(isPair: isPair) }

    public func overflowWindows(first: Int, second: Int?) -> Int { template.overflowWindows(first: first, second: second) }

    public func process(_ first: Encoding, _ second: Encoding?, addSpecialTokens: Bool, tokenText: TokenText) -> Encoding {
        var a = first, b = second
        if trimmer.trimOffsets {
            trimmer.trim(&a, sequence: 0, tokenText)
            if b != nil { trimmer.trim(&b!, sequence: 1, tokenText) }
        }
        var result = template.process(a, b, addSpecialTokens: addSpecialTokens, tokenText: tokenText)
        Self.zeroTypeIds(&result)
        return result
    }

    /// RoBERTa's type ids are 0 everywhere, overflowing windows included.
    static func zeroTypeIds(_ e: inout Encoding) {
        e.typeIds = [Int32](repeating: 0, count: e.count)
        for j in 0..<e.overflowing.count { zeroTypeIds(&e.overflowing[j]) }
    }
}
