/// SentencePiece's precompiled normalization map (`precompiled_charsmap`), as the `spm_precompiled`
/// crate behind Hugging Face's `Precompiled` normalizer reads it: a little-endian `u32` byte size,
/// a darts-clone double-array trie over UTF-8 keys of that size, then the replacement strings,
/// each ended by a NUL byte, which the trie's values index.
struct PrecompiledCharsMap: Sendable {
    let units: [UInt32]
    let replacements: [UInt8]

    init(base64: String, path: String) throws(TokenizerError) {
        guard let blob = Base64.decode(base64) else {
            throw .malformedFile(path: path, reason: "normalizer.precompiled_charsmap is not valid base64")
        }
        guard blob.count >= 4 else { throw .malformedFile(path: path, reason: "normalizer.precompiled_charsmap is too short") }
        let trieBytes = Int(blob[0]) | Int(blob[1]) << 8 | Int(blob[2]) << 16 | Int(blob[3]) << 24
        guard trieBytes <= blob.count - 4 else {
            throw .malformedFile(path: path,
                                 reason: "normalizer.precompiled_charsmap announces a \(trieBytes)-byte trie in \(blob.count - 4) bytes")
        }
        var units: [UInt32] = []
        units.reserveCapacity(trieBytes / 4)
        for i in 0..<(trieBytes / 4) {
            let b = 4 + 4 * i
            units.append(UInt32(blob[b]) | UInt32(blob[b + 1]) << 8 | UInt32(blob[b + 2]) << 16 | UInt32(blob[b + 3]) << 24)
        }
        let replacements = Array(blob[(4 + trieBytes)...])
        guard String(validating: replacements, as: UTF8.self) != nil else {
            throw .malformedFile(path: path, reason: "normalizer.precompiled_charsmap's replacement strings are not valid UTF-8")
        }
        guard !units.isEmpty else { throw .malformedFile(path: path, reason: "normalizer.precompiled_charsmap has an empty trie") }
        self.units = units
        self.replacements = replacements
    }

    /// The replacement for the shortest key that prefixes `key` (HF takes the first of the
    /// common-prefix results, i.e. the shortest), or nil. An index the trie's values would put
    /// outside the map (where Rust would panic) counts as no match.
    func replacement(for key: some Collection<UInt8>) -> Substring.UnicodeScalarView? {
        guard let value = shortestPrefixValue(key) else { return nil }
        guard value <= replacements.count else { return nil }
        var end = value
        while end < replacements.count, replacements[end] != 0 { end += 1 }
        guard let s = String(validating: replacements[value..<end], as: UTF8.self) else { return nil }
        return Substring(s).unicodeScalars
    }

    /// darts-clone's `commonPrefixSearch`, stopped at the first result.
    private func shortestPrefixValue(_ key: some Collection<UInt8>) -> Int? {
        @inline(__always) func offset(_ u: UInt32) -> Int { Int((u >> 10) << ((u & (1 << 9)) >> 6)) }
        @inline(__always) func label(_ u: UInt32) -> UInt32 { u & ((1 << 31) | 0xFF) }
        @inline(__always) func hasLeaf(_ u: UInt32) -> Bool { (u >> 8) & 1 == 1 }
        var pos = offset(units[0])
        for c in key {
            if c == 0 { break }
            pos ^= Int(c)
            guard pos < units.count else { return nil }
            let unit = units[pos]
            if label(unit) != UInt32(c) { return nil }
            pos ^= offset(unit)
            if hasLeaf(unit) {
                guard pos < units.count else { return nil }
                return Int(units[pos] & ((1 << 31) - 1))
            }
        }
        return nil
    }
}

/// Standard base64 (RFC 4648, `=` padding optional), as `tokenizer.json` stores binary blobs.
enum Base64 {
    static func decode(_ text: String) -> [UInt8]? {
        var table = [Int8](repeating: -1, count: 128)
        for (i, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() { table[Int(c)] = Int8(i) }
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count * 3 / 4)
        var buffer: UInt32 = 0, bits = 0, padding = 0
        for c in text.utf8 {
            if c == UInt8(ascii: "=") {
                padding += 1
                continue
            }
            guard padding == 0, c < 128, table[Int(c)] >= 0 else { return nil }
            buffer = buffer << 6 | UInt32(table[Int(c)])
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8((buffer >> UInt32(bits)) & 0xFF))
            }
        }
        return padding <= 2 ? out : nil
    }
}
