/// GPT-2's byte-to-unicode alphabet (`bytes_to_unicode` in OpenAI's `encoder.py`).
///
/// Byte-level BPE vocabularies are written with one printable scalar per byte so that every
/// token is a readable string: the printable Latin-1 bytes `!`...`~`, `¡`...`¬` and `®`...`ÿ`
/// stand for themselves, and the other 68 bytes (controls, space, DEL, NBSP, soft hyphen) are
/// given the scalars U+0100, U+0101, ... in increasing byte order. So the space byte 0x20 is
/// written `Ġ` (U+0120) and newline 0x0A is `Ċ` (U+010A).
///
/// Every scalar of the alphabet is below U+0144, so the inverse is a 324-entry table.
public enum ByteLevelAlphabet {
    /// Number of scalars the inverse table covers (U+0000 ..< U+0144).
    static let inverseCount = 0x144

    /// `scalarValues[b]` is the scalar value that writes byte `b`.
    public static let scalarValues: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            if printable(UInt8(b)) {
                table[b] = UInt32(b)
            } else {
                table[b] = next
                next += 1
            }
        }
        return table
    }()

    /// `byteOf[s]` is the byte written by scalar value `s`, or -1 when `s` is not in the alphabet.
    static let byteOf: [Int16] = {
        var table = [Int16](repeating: -1, count: inverseCount)
        for b in 0..<256 { table[Int(scalarValues[b])] = Int16(b) }
        return table
    }()

    @inline(__always)
    static func printable(_ b: UInt8) -> Bool {
        (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
    }

    /// The scalar that writes `byte`.
    @inline(__always)
    public static func scalar(for byte: UInt8) -> Unicode.Scalar {
        Unicode.Scalar(scalarValues[Int(byte)])!
    }

    /// The byte written by `scalar`, or nil when `scalar` is not one of the 256 alphabet scalars.
    @inline(__always)
    public static func byte(for scalar: Unicode.Scalar) -> UInt8? {
        let v = Int(scalar.value)
        guard v < inverseCount else { return nil }
        let b = byteOf[v]
        return b < 0 ? nil : UInt8(b)
    }

    /// `bytes` written in the alphabet, e.g. `[0x20, 0x61]` -> "Ġa".
    public static func encode<S: Sequence<UInt8>>(_ bytes: S) -> String {
        var view = String.UnicodeScalarView()
        for b in bytes { view.append(scalar(for: b)) }
        return String(view)
    }

    /// The bytes an alphabet string stands for, or nil if it has a scalar outside the alphabet.
    public static func decode(_ text: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(text.unicodeScalars.count)
        for s in text.unicodeScalars {
            guard let b = byte(for: s) else { return nil }
            out.append(b)
        }
        return out
    }
}
