import FlintJSON
import Hummingbird

/// JSON the server writes. Floats print in their shortest round-trip form (an f32 embedding is
/// not widened to a 17-digit double), non-finite numbers as null.
///
/// Written as UTF-8 bytes straight into one buffer: a response is built once per request on the
/// request path, and going through `String` (a scalar at a time for strings, a copy at the end)
/// costs more than the writing itself.
public indirect enum JSONOut: Sendable {
    case null
    case bool(Bool)
    case int(Int)
    case float(Float)
    case double(Double)
    case string(String)
    case floats([Float])
    case array([JSONOut])
    case object([(String, JSONOut)])

    public var serialized: String {
        var out: [UInt8] = []
        write(to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    public func write(to out: inout [UInt8]) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case let .bool(b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case let .int(i): out.append(contentsOf: String(i).utf8)
        case let .float(f): Self.write(f, to: &out)
        case let .double(d): out.append(contentsOf: (d.isFinite ? d.description : "null").utf8)
        case let .string(s): Self.write(s, to: &out)
        case let .floats(values):
            // Shortest round-trip digits take at most 15 bytes, and a comma.
            out.reserveCapacity(out.count + values.count * 16 + 2)
            out.append(UInt8(ascii: "["))
            for (i, f) in values.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                Self.write(f, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case let .array(items):
            out.append(UInt8(ascii: "["))
            for (i, v) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                v.write(to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case let .object(members):
            out.append(UInt8(ascii: "{"))
            for (i, m) in members.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                Self.write(m.0, to: &out)
                out.append(UInt8(ascii: ":"))
                m.1.write(to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// `Float.description` (shortest round-trip), or null.
    private static func write(_ f: Float, to out: inout [UInt8]) {
        guard f.isFinite else { return out.append(contentsOf: "null".utf8) }
        // A short String's bytes are inline: no allocation.
        var text = f.description
        text.withUTF8 { out.append(contentsOf: $0) }
    }

    /// A JSON string, escaped as `JSONValue`'s writer does: `\"`, `\\`, `\n`, `\r`, `\t`, other
    /// control characters and DEL as `\u00XX`; everything else (UTF-8 included) as is.
    private static func write(_ s: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var s = s
        s.withUTF8 { bytes in
            var clean = 0  // start of the run not written yet
            for (i, b) in bytes.enumerated() where b < 0x20 || b == 0x7F || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") {
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[clean..<i]))
                clean = i + 1
                switch b {
                case UInt8(ascii: "\""): out.append(contentsOf: #"\""#.utf8)
                case UInt8(ascii: "\\"): out.append(contentsOf: #"\\"#.utf8)
                case UInt8(ascii: "\n"): out.append(contentsOf: #"\n"#.utf8)
                case UInt8(ascii: "\r"): out.append(contentsOf: #"\r"#.utf8)
                case UInt8(ascii: "\t"): out.append(contentsOf: #"\t"#.utf8)
                default:
                    let hex = Array("0123456789abcdef".utf8)
                    out.append(contentsOf: #"\u00"#.utf8)
                    out.append(hex[Int(b >> 4)])
                    out.append(hex[Int(b & 15)])
                }
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[clean...]))
        }
        out.append(UInt8(ascii: "\""))
    }
}

extension Response {
    /// A JSON response (`application/json`).
    static func json(_ body: JSONOut, status: HTTPResponse.Status = .ok) -> Response {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(1024)
        body.write(to: &bytes)
        return Response(status: status, headers: [.contentType: "application/json"],
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

/// Standard base64 (RFC 4648, with padding), for OpenAI's `encoding_format: "base64"`.
enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i + 3 <= bytes.count {
            let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out.append(alphabet[Int(v >> 18) & 63])
            out.append(alphabet[Int(v >> 12) & 63])
            out.append(alphabet[Int(v >> 6) & 63])
            out.append(alphabet[Int(v) & 63])
            i += 3
        }
        let rest = bytes.count - i
        if rest > 0 {
            let v = UInt32(bytes[i]) << 16 | (rest == 2 ? UInt32(bytes[i + 1]) << 8 : 0)
            out.append(alphabet[Int(v >> 18) & 63])
            out.append(alphabet[Int(v >> 12) & 63])
            out.append(rest == 2 ? alphabet[Int(v >> 6) & 63] : UInt8(ascii: "="))
            out.append(UInt8(ascii: "="))
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Little-endian f32 bytes of `values`, encoded.
    static func encode(littleEndian values: [Float]) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(values.count * 4)
        for v in values {
            let b = v.bitPattern
            bytes.append(UInt8(truncatingIfNeeded: b))
            bytes.append(UInt8(truncatingIfNeeded: b >> 8))
            bytes.append(UInt8(truncatingIfNeeded: b >> 16))
            bytes.append(UInt8(truncatingIfNeeded: b >> 24))
        }
        return encode(bytes)
    }
}
