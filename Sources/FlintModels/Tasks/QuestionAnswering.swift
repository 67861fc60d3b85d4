import FlintCore
import FlintTokenizers

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Extractive question answering exactly as transformers 4.57's `question-answering` pipeline
/// (pipelines/question_answering.py, fast-tokenizer path, right padding side):
///
/// 1. question + context are tokenized as a pair, truncating only the context to `maxSeqLen`
///    tokens, with `docStride` tokens of overlap between consecutive windows;
/// 2. per window, start and end logits outside the context (the question, [SEP]...) are masked
///    (the [CLS] token is kept), and each is softmaxed over the window;
/// 3. with `handleImpossibleAnswer`, the no-answer score is the smallest p_start[0]·p_end[0] over
///    the windows; then position 0 is zeroed;
/// 4. the `2·topK + 10` best spans (i <= j < i + maxAnswerLen) by p_start[i]·p_end[j] whose ends
///    are both context tokens are kept, each widened to whole words (the window's word ids), and
///    spans with the same text (case-insensitively) are merged, their scores added, across all
///    windows;
/// 5. the answers (and the no-answer) are sorted by score, best first, and `topK` returned.
///
/// When a window has fewer than `2·topK + 10` spans of positive score, numpy fills the list with
/// spans of score 0, in an order its partition leaves unspecified; of those only spans starting at
/// [CLS] can survive the filter (`""` for [CLS]...[CLS], a prefix of the context otherwise, taken by
/// offsets). Flint adds those in row-major order, which gives the pipeline's answers (a `""` of
/// score 0 after the real ones) on the fixtures.
public struct QuestionAnswering: Sendable {
    public struct Options: Sendable, Equatable {
        /// Tokens per window, special tokens included.
        public var maxSeqLen: Int
        /// Overlap, in tokens, between consecutive windows of the context.
        public var docStride: Int
        /// The longest answer, in tokens.
        public var maxAnswerLen: Int
        public var topK: Int
        public var handleImpossibleAnswer: Bool

        /// `docStride` nil: the pipeline's `min(maxSeqLen / 2, 128)`.
        public init(
            maxSeqLen: Int = 384, docStride: Int? = nil, maxAnswerLen: Int = 15, topK: Int = 1, handleImpossibleAnswer: Bool = false
        ) {
            self.maxSeqLen = maxSeqLen
            self.docStride = docStride ?? min(maxSeqLen / 2, 128)
            self.maxAnswerLen = maxAnswerLen
            self.topK = topK
            self.handleImpossibleAnswer = handleImpossibleAnswer
        }
    }

    /// One answer: `text` is `context[start..<end]` in Unicode code points (Python indices); the
    /// no-answer is "" at 0..<0.
    public struct Answer: Sendable, Equatable {
        public var text: String
        public var score: Double
        public var start: Int
        public var end: Int

        public init(text: String, score: Double, start: Int, end: Int) {
            self.text = text
            self.score = score
            self.start = start
            self.end = end
        }
    }

    public let pipeline: EncoderPipeline
    public let options: Options

    /// `pipeline` must be built with `.spanLogits` from a `*ForQuestionAnswering` folder.
    public init(pipeline: EncoderPipeline, options: Options) throws(FlintError) {
        guard pipeline.model.head == .questionAnswering else {
            throw .unsupportedModel(
                path: pipeline.folder + "/config.json",
                reason: "question answering needs a "
                    + "\(pipeline.model.config.family.classPrefix)ForQuestionAnswering checkpoint, this one is "
                    + "\(pipeline.model.config.family.classPrefix)\(pipeline.model.head.rawValue)")
        }
        guard options.maxSeqLen >= 3, options.maxSeqLen <= pipeline.model.config.maxSequenceLength else {
            throw .invalidInput(
                "max-seq-len \(options.maxSeqLen) must be between 3 and the model's \(pipeline.model.config.maxSequenceLength) positions")
        }
        guard options.docStride >= 0, options.docStride <= options.maxSeqLen else {
            throw .invalidInput("doc-stride (\(options.docStride)) is larger than max-seq-len (\(options.maxSeqLen)) or negative")
        }
        guard options.maxAnswerLen >= 1 else { throw .invalidInput("max-answer-len must be at least 1") }
        guard options.topK >= 1 else { throw .invalidInput("top-k must be at least 1 (got \(options.topK))") }
        self.pipeline = pipeline
        self.options = options
    }

    /// The windows of one question and context (the tokenizer's main encoding, then its overflow).
    public func windows(question: String, context: String) throws(FlintError) -> [Encoding] {
        guard !question.isEmpty, !context.isEmpty else { throw .invalidInput("question and context must not be empty") }
        do {
            let truncation = Truncation(maxLength: options.maxSeqLen, strategy: .onlySecond, stride: options.docStride)
            let encoding = try pipeline.tokenizer.encode(question, pair: context, truncation: truncation)
            var main = encoding
            main.overflowing = []
            return [main] + encoding.overflowing
        } catch {
            throw .invalidInput("tokenizer: \(error)")
        }
    }

    /// Answers each (question, context), best first (up to `topK` each).
    public func answer(_ items: [(question: String, context: String)]) throws(FlintError) -> [[Answer]] {
        var windows: [[Encoding]] = []
        var inputs: [EncoderPipeline.Encoded] = []
        for item in items {
            let w = try self.windows(question: item.question, context: item.context)
            windows.append(w)
            inputs += w.map { pipeline.encoded($0) }
        }
        let spans = try pipeline.run(inputs)[Encoder.Output.spanLogits.rawValue] ?? []
        var answers: [[Answer]] = []
        var next = 0
        for (item, w) in zip(items, windows) {
            let logits = spans[next..<(next + w.count)].map(\.data)
            next += w.count
            answers.append(Self.decode(windows: w, spanLogits: Array(logits), context: item.context, options: options))
        }
        return answers
    }

    /// Steps 2-5 on one question's windows; `spanLogits[w]` is window w's `[tokens, 2]` (start, end).
    public static func decode(windows: [Encoding], spanLogits: [[Float]], context: String, options: Options) -> [Answer] {
        let scalars = Array(context.unicodeScalars)
        var minNull = 1_000_000.0
        var answers: [Answer] = []
        let preTopK = options.topK * 2 + 10
        for (window, logits) in zip(windows, spanLogits) {
            let n = window.count
            // Context tokens and every [CLS] (the id at position 0 when it is a special token) may answer.
            let cls: Int32? = n > 0 && window.specialTokensMask[0] == 1 ? window.ids[0] : nil
            let allowed = (0..<n).map { window.sequenceIds[$0] == 1 || window.ids[$0] == cls }
            var start = softmax((0..<n).map { Double(logits[2 * $0]) }, allowed)
            var end = softmax((0..<n).map { Double(logits[2 * $0 + 1]) }, allowed)
            if options.handleImpossibleAnswer, n > 0 { minNull = min(minNull, start[0] * end[0]) }
            if n > 0 { (start[0], end[0]) = (0, 0) }

            var candidates: [(score: Double, s: Int, e: Int)] = []
            for s in 0..<n where start[s] > 0 {
                for e in s..<min(n, s + options.maxAnswerLen) where end[e] > 0 {
                    candidates.append((start[s] * end[e], s, e))
                }
            }
            // Best first; equal scores in numpy's flattened (row-major) order.
            candidates.sort { $0.score != $1.score ? $0.score > $1.score : ($0.s, $0.e) < ($1.s, $1.e) }
            if candidates.count < preTopK, n > 0, allowed[0] {
                for e in 0..<min(n, options.maxAnswerLen) where allowed[e] && candidates.count < preTopK { candidates.append((0, 0, e)) }
            }
            for c in candidates.prefix(preTopK) where allowed[c.s] && allowed[c.e] {
                let (from, to) = characters(window, c.s, c.e)
                let text = String(String.UnicodeScalarView(scalars[max(0, min(from, scalars.count))..<max(0, min(to, scalars.count))]))
                if let i = answers.firstIndex(where: { $0.text.lowercased() == text.lowercased() }) {
                    answers[i].score += c.score
                } else {
                    answers.append(Answer(text: text, score: c.score, start: from, end: to))
                }
            }
        }
        if options.handleImpossibleAnswer { answers.append(Answer(text: "", score: minNull, start: 0, end: 0)) }
        // Stable, as Python's sorted.
        let ranked = answers.enumerated().sorted {
            $0.element.score != $1.element.score ? $0.element.score > $1.element.score : $0.offset < $1.offset
        }
        return ranked.prefix(options.topK).map(\.element)
    }

    /// numpy's masked softmax: masked logits become -10000 (whose exponentials vanish).
    static func softmax(_ logits: [Double], _ allowed: [Bool]) -> [Double] {
        let masked = zip(logits, allowed).map { $1 ? $0 : -10000 }
        guard let top = masked.max() else { return [] }
        let e = masked.map { exp($0 - top) }
        let sum = e.reduce(0, +)
        return e.map { $0 / sum }
    }

    /// The character span of tokens s...e widened to whole words (HF's token_to_word and
    /// word_to_chars in the context); tokens without a word keep their own offsets.
    static func characters(_ w: Encoding, _ s: Int, _ e: Int) -> (Int, Int) {
        let startWord = w.wordIds[s], endWord = w.wordIds[e]
        guard startWord >= 0, endWord >= 0 else { return (w.offsets[s].start, w.offsets[e].end) }
        let inContext = (0..<w.count).filter { w.sequenceIds[$0] == 1 }
        guard let first = inContext.first(where: { w.wordIds[$0] == startWord }),
            let last = inContext.last(where: { w.wordIds[$0] == endWord })
        else { return (w.offsets[s].start, w.offsets[e].end) }
        return (w.offsets[first].start, w.offsets[last].end)
    }
}
