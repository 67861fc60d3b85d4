import FlintJSON
import Hummingbird
import NIOCore

/// The KServe v2 / Triton binary tensor data extension: a body whose first
/// `Inference-Header-Content-Length` bytes are the JSON request, followed by the raw data of the
/// inputs that name a `binary_data_size` (in input order); and the same layout for outputs asked
/// for with `binary_data` (or `binary_data_output` for all of them).
enum KServeBinary {
    static let headerLength = HTTPFields.Element.Name("Inference-Header-Content-Length")!

    /// Splits a body into its JSON header and the binary data after it, as the header field says
    /// (no field: all JSON).
    static func split(_ body: [UInt8], headerField: String?)
        throws(ServeError) -> (json: ArraySlice<UInt8>, binary: ArraySlice<UInt8>)
    {
        guard let headerField else { return (body[...], []) }
        guard let n = Int(headerField), n >= 0, n <= body.count else {
            throw .invalid("Inference-Header-Content-Length must be an integer in 0...\(body.count) (the body's size), "
                + "got \"\(headerField)\"")
        }
        return (body[..<n], body[n...])
    }

    /// An input's elements decoded from its raw little-endian bytes, as the JSON tensor data would
    /// hold them: BYTES as strings (each a 4-byte length, then the bytes), INT64/INT32 as integers.
    static func elements(_ raw: ArraySlice<UInt8>, datatype: String, input: String) throws(ServeError) -> [JSONValue] {
        switch datatype {
        case "BYTES":
            var out: [JSONValue] = []
            var i = raw.startIndex
            while i < raw.endIndex {
                guard raw.endIndex - i >= 4 else {
                    throw .invalid("\(input): BYTES data ends inside an element's 4-byte length", param: input)
                }
                let length = Int(littleEndian(raw, at: i, bytes: 4))
                i += 4
                guard raw.endIndex - i >= length else {
                    throw .invalid("\(input): a BYTES element of \(length) bytes runs past the input's binary_data_size", param: input)
                }
                guard let s = String(validating: raw[i..<(i + length)], as: UTF8.self) else {
                    throw .invalid("\(input)[\(out.count)] is not valid UTF-8 text", param: input)
                }
                out.append(.string(s))
                i += length
            }
            return out
        case "INT64", "INT32":
            let width = datatype == "INT64" ? 8 : 4
            guard raw.count % width == 0 else {
                throw .invalid("\(input): \(raw.count) bytes of \(datatype) data is not a whole number of elements", param: input)
            }
            return stride(from: raw.startIndex, to: raw.endIndex, by: width).map { i in
                let bits = littleEndian(raw, at: i, bytes: width)
                let value = width == 8 ? Int(Int64(bitPattern: bits)) : Int(Int32(bitPattern: UInt32(truncatingIfNeeded: bits)))
                return .number(Double(value))
            }
        default:
            throw .invalid("\(input): binary data of type \(datatype) is not supported here (BYTES, INT64 or INT32)", param: input)
        }
    }

    private static func littleEndian(_ raw: ArraySlice<UInt8>, at i: Int, bytes: Int) -> UInt64 {
        var v: UInt64 = 0
        for b in 0..<bytes { v |= UInt64(raw[i + b]) << (8 * UInt64(b)) }
        return v
    }

    /// A binary response: the JSON header, then `data`; `Inference-Header-Content-Length` gives the
    /// header's size.
    static func response(header: JSONOut, data: [Float]) -> Response {
        let json = header.serialized
        var buffer = ByteBuffer()
        buffer.reserveCapacity(json.utf8.count + 4 * data.count)
        buffer.writeString(json)
        for f in data { buffer.writeInteger(f.bitPattern, endianness: .little) }
        return Response(status: .ok, headers: [.contentType: "application/octet-stream", headerLength: String(json.utf8.count)],
                        body: ResponseBody(byteBuffer: buffer))
    }
}
