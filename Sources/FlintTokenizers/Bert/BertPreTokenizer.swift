/// BERT's pre-tokenizer (HF `BertPreTokenizer`): split on whitespace, which is dropped, and
/// isolate every punctuation character as its own word.
public struct BertPreTokenizer: PreTokenizer {
    public init() {}

    public func preTokenize(_ text: inout NormalizedText, into words: inout [Range<Int>]) {
        var start = -1
        text.scalars.withUnsafeBufferPointer { scalars in
            for i in 0..<scalars.count {
                let s = scalars[i]
                let v = s.value
                let isSpace: Bool
                let isPunct: Bool
                if v < 0x80 {
                    isSpace = v == 32 || (v >= 9 && v <= 13)
                    isPunct = (v >= 33 && v <= 47) || (v >= 58 && v <= 64) || (v >= 91 && v <= 96) || (v >= 123 && v <= 126)
                } else {
                    let f = UnicodeClasses.flags(s)
                    isSpace = f.contains(.whitespace)
                    isPunct = f.contains(.punctuation)
                }
                if isSpace || isPunct {
                    if start >= 0 {
                        words.append(start..<i)
                        start = -1
                    }
                    if isPunct { words.append(i..<(i + 1)) }
                } else if start < 0 {
                    start = i
                }
            }
            if start >= 0 { words.append(start..<scalars.count) }
        }
    }
}
