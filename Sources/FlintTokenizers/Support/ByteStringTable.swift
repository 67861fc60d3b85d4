/// A hash map from byte strings to token ids, looked up straight from a buffer.
///
/// Why not `[String: Int32]`: Swift `String` equality is canonical equivalence, so "é" (U+00E9)
/// and "e\u{301}" would be one key, while Hugging Face vocabularies treat them as different tokens.
/// Keys here are raw UTF-8 bytes. Lookups take an `UnsafeBufferPointer` so the WordPiece and BPE
/// inner loops can probe substrings of a word without building a `String` per candidate.
/// Open addressing, linear probing, load factor <= 0.5, FNV-1a hash.
public struct ByteStringTable: Sendable {
    private var keyBytes: [UInt8] = []
    /// Per entry: start of key in `keyBytes`, key length, value. Parallel arrays for locality.
    private var keyStart: [Int32] = []
    private var keyLength: [Int32] = []
    private var values: [Int32] = []
    /// Slot -> entry index + 1 (0 = empty).
    private var slots: [Int32]
    private var mask: Int
    /// Length in bytes of the longest key (bounds the WordPiece search).
    public private(set) var maxKeyLength = 0

    public init(capacity: Int = 16) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = [Int32](repeating: 0, count: size)
        mask = size - 1
    }

    public var count: Int { values.count }

    @inline(__always)
    static func hash(_ p: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in p {
            h ^= UInt64(b)
            h = h &* 0x100_0000_01b3
        }
        return h ^ (h >> 29)
    }

    /// Inserts or overwrites; returns false if the key was already present (value updated).
    @discardableResult
    public mutating func insert(_ key: String, value: Int32) -> Bool {
        var k = key
        return k.withUTF8 { insert(bytes: $0, value: value) }
    }

    @discardableResult
    public mutating func insert(bytes key: UnsafeBufferPointer<UInt8>, value: Int32) -> Bool {
        if let existing = entryIndex(key) {
            values[existing] = value
            return false
        }
        if (values.count + 1) * 2 > slots.count { grow() }
        keyStart.append(Int32(keyBytes.count))
        keyLength.append(Int32(key.count))
        keyBytes.append(contentsOf: key)
        values.append(value)
        maxKeyLength = max(maxKeyLength, key.count)
        place(entry: values.count - 1, hash: Self.hash(key))
        return true
    }

    private mutating func place(entry: Int, hash: UInt64) {
        var slot = Int(truncatingIfNeeded: hash) & mask
        while slots[slot] != 0 { slot = (slot + 1) & mask }
        slots[slot] = Int32(entry + 1)
    }

    private mutating func grow() {
        let size = slots.count * 2
        slots = [Int32](repeating: 0, count: size)
        mask = size - 1
        for e in 0..<values.count {
            let h = keyBytes.withUnsafeBufferPointer { all in
                Self.hash(UnsafeBufferPointer(rebasing: all[Int(keyStart[e])..<Int(keyStart[e] + keyLength[e])]))
            }
            place(entry: e, hash: h)
        }
    }

    @inline(__always)
    private func entryIndex(_ key: UnsafeBufferPointer<UInt8>) -> Int? {
        var slot = Int(truncatingIfNeeded: Self.hash(key)) & mask
        return keyBytes.withUnsafeBufferPointer { all -> Int? in
            slots.withUnsafeBufferPointer { slots -> Int? in
                while true {
                    let e = Int(slots[slot]) - 1
                    if e < 0 { return nil }
                    if Int(keyLength[e]) == key.count {
                        let start = Int(keyStart[e])
                        var equal = true
                        var i = 0
                        while i < key.count {
                            if all[start + i] != key[i] {
                                equal = false
                                break
                            }
                            i += 1
                        }
                        if equal { return e }
                    }
                    slot = (slot + 1) & mask
                }
            }
        }
    }

    /// The id stored for `key`, or nil.
    @inline(__always)
    public func lookup(_ key: UnsafeBufferPointer<UInt8>) -> Int32? {
        entryIndex(key).map { values[$0] }
    }

    public func lookup(_ key: String) -> Int32? {
        var k = key
        return k.withUTF8 { lookup($0) }
    }

    /// All (key, value) pairs in insertion order.
    public var entries: [(key: String, value: Int32)] {
        (0..<values.count).map { e in
            let bytes = keyBytes[Int(keyStart[e])..<Int(keyStart[e] + keyLength[e])]
            return (String(decoding: bytes, as: UTF8.self), values[e])
        }
    }
}
