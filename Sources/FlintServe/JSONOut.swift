import FlintJSON
import Hummingbird

/// JSON the server writes. Floats print in their shortest round-trip form (an f32 embedding is
/// not widened to a 17-digit double), non-finite numbers as null.
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
        var out = ""
        write(to: &out)
        return out
    }

    public func write(to out: inout String) {
        switch self {
        case .null: out += "null"
        case let .bool(b): out += b ? "true" : "false"
        case let .int(i): out += String(i)
        case let .float(f): out += f.isFinite ? f.description : "null"
        case let .double(d): out += d.isFinite ? d.description : "null"
        case let .string(s): JSONValue.string(s).write(to: &out)
        case let .floats(values):
            out += "["
            for (i, f) in values.enumerated() {
                if i > 0 { out += "," }
                out += f.isFinite ? f.description : "null"
            }
            out += "]"
        case let .array(items):
            out += "["
            for (i, v) in items.enumerated() {
                if i > 0 { out += "," }
                v.write(to: &out)
            }
            out += "]"
        case let .object(members):
            out += "{"
            for (i, m) in members.enumerated() {
                if i > 0 { out += "," }
                JSONValue.string(m.0).write(to: &out)
                out += ":"
                m.1.write(to: &out)
            }
            out += "}"
        }
    }
}

extension Response {
    /// A JSON response (`application/json`).
    static func json(_ body: JSONOut, status: HTTPResponse.Status = .ok) -> Response {
        var buffer = ByteBuffer()
        buffer.writeString(body.serialized)
        return Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: buffer))
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
            for shift in [18, 12, 6, 0] { out.append(alphabet[Int(v >> UInt32(shift)) & 63]) }
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
            let b = v.bitPattern.littleEndian
            bytes += [UInt8(truncatingIfNeeded: b), UInt8(truncatingIfNeeded: b >> 8), UInt8(truncatingIfNeeded: b >> 16),
                      UInt8(truncatingIfNeeded: b >> 24)]
        }
        return encode(bytes)
    }
}
