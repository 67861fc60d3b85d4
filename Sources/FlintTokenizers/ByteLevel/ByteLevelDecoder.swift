/// GPT-2's byte-level decoder (Hugging Face `decoders::ByteLevel`).
///
/// Each token's scalars are mapped back to the bytes they stand for, all tokens' bytes are
/// joined, and the result is read as UTF-8 with invalid sequences replaced by U+FFFD (like
/// Rust's `String::from_utf8_lossy`). As in HF, a token with any scalar outside the byte-level
/// alphabet (an added token such as "<|endoftext|>" written with other characters) contributes
/// its own UTF-8 bytes unchanged, as a whole.
public struct ByteLevelDecoder: TokenDecoder {
    public init() {}

    public func decode(_ tokens: [String]) -> String {
        String(decoding: decodeBytes(tokens), as: UTF8.self)
    }

    /// The exact bytes the tokens stand for (possibly not valid UTF-8).
    public func decodeBytes(_ tokens: [String]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(tokens.reduce(0) { $0 + $1.utf8.count })
        for token in tokens {
            let mark = out.count
            var inAlphabet = true
            for s in token.unicodeScalars {
                guard let b = ByteLevelAlphabet.byte(for: s) else {
                    inAlphabet = false
                    break
                }
                out.append(b)
            }
            if !inAlphabet {
                out.removeSubrange(mark...)
                out.append(contentsOf: token.utf8)
            }
        }
        return out
    }
}
