import FlintJSON
@testable import FlintServe
import Hummingbird
import HummingbirdTesting
import Testing

/// KServe v2's binary tensor data extension (what tritonclient sends with `binary_data=True`).
@Suite(.serialized, .timeLimit(.minutes(2)))
struct KServeBinaryTests {
    static let texts = ["Flint serves embeddings.", "a", "naïve café"]

    /// A body of `json` and then `binary`, with the header that says where the JSON ends.
    static func infer(_ client: any TestClientProtocol, _ json: String, _ binary: [UInt8], headerLength: String? = nil,
                      model: String = "minilm") async throws -> TestResponse {
        let header = Array(json.utf8)
        var h: HTTPFields = [.contentType: "application/octet-stream"]
        h[KServeBinary.headerLength] = headerLength ?? String(header.count)
        return try await client.execute(uri: "/v2/models/\(model)/infer", method: .post, headers: h,
                                        body: ByteBuffer(bytes: header + binary))
    }

    /// BYTES elements as the extension lays them out: a little-endian u32 length, then the bytes.
    static func bytesTensor(_ strings: [String]) -> [UInt8] {
        strings.flatMap { s in withUnsafeBytes(of: UInt32(s.utf8.count).littleEndian, Array.init) + Array(s.utf8) }
    }

    static func int64Tensor(_ values: [Int]) -> [UInt8] {
        values.flatMap { withUnsafeBytes(of: Int64($0).littleEndian, Array.init) }
    }

    /// A binary response's JSON header and its f32 data.
    static func split(_ r: TestResponse) throws -> (header: JSONValue, floats: [Float]) {
        let field = r.headers[KServeBinary.headerLength]
        let n = try #require(field.flatMap { Int($0) }, "Inference-Header-Content-Length: \(r.headers)")
        let bytes = Array(r.body.readableBytesView)
        try #require(n <= bytes.count)
        let header = try JSONParser.parse(Array(bytes[..<n]))
        let data = Array(bytes[n...])
        let floats = stride(from: 0, to: data.count - 3, by: 4).map { i in
            Float(bitPattern: UInt32(data[i]) | UInt32(data[i + 1]) << 8 | UInt32(data[i + 2]) << 16 | UInt32(data[i + 3]) << 24)
        }
        #expect(data.count % 4 == 0, "whole f32 values")
        return (header, floats)
    }

    @Test(.enabled(if: Harness.available, serveSkipReason))
    func binaryTextInBinaryEmbeddingsOut() async throws {
        try await Harness.test(try Harness.server()) { client in
            let quoted = Self.texts.map { JSONValue.string($0).serialized }.joined(separator: ", ")
            let plain = try await client.post("/v2/models/minilm/infer", """
                {"inputs": [{"name": "TEXT", "shape": [3], "datatype": "BYTES", "data": [\(quoted)]}]}
                """)
            #expect(plain.status == .ok, "\(plain.text)")
            let expected = try #require(plain.json["outputs"]?.array?.first?["data"]?.floats)
            let binary = Self.bytesTensor(Self.texts)
            let r = try await Self.infer(client, """
                {"id": "b1", "inputs": [{"name": "TEXT", "shape": [3], "datatype": "BYTES",
                                         "parameters": {"binary_data_size": \(binary.count)}}],
                 "outputs": [{"name": "EMBEDDING", "parameters": {"binary_data": true}}]}
                """, binary)
            #expect(r.status == .ok, "\(r.text)")
            let (header, floats) = try Self.split(r)
            #expect(header["id"]?.string == "b1")
            let out = try #require(header["outputs"]?.array?.first)
            #expect(out["shape"]?.array?.compactMap(\.int) == [3, 384])
            #expect(out["parameters"]?["binary_data_size"]?.int == 3 * 384 * 4)
            #expect(out["data"] == nil, "binary outputs carry no JSON data")
            expectClose(floats, expected, "binary TEXT in, binary EMBEDDING out vs JSON tensors")
        }
    }

    @Test(.enabled(if: Harness.available, serveSkipReason))
    func binaryIdsWithMaskAndBinaryDataOutput() async throws {
        let model = try #require(Harness.miniLM)
        try await Harness.test(try Harness.server()) { client in
            let a = try model.pipeline.encode(Self.texts[0]).ids.map(Int.init)
            let b = try model.pipeline.encode(Self.texts[1]).ids.map(Int.init)
            let width = max(a.count, b.count)
            let ids = Self.int64Tensor(a + Array(repeating: 0, count: width - a.count) + b + Array(repeating: 0, count: width - b.count))
            let maskValues = [a.count, b.count].flatMap { Array(repeating: 1, count: $0) + Array(repeating: 0, count: width - $0) }
            let mask = Self.int64Tensor(maskValues)
            // Mixed: ids binary, the mask as JSON data; every output binary through binary_data_output.
            let idsInput = """
                {"name": "input_ids", "shape": [2, \(width)], "datatype": "INT64", "parameters": {"binary_data_size": \(ids.count)}}
                """
            let r = try await Self.infer(client, """
                {"inputs": [\(idsInput), {"name": "attention_mask", "shape": [2, \(width)], "datatype": "INT64", "data": \(maskValues)}],
                 "parameters": {"binary_data_output": true}}
                """, ids)
            #expect(r.status == .ok, "\(r.text)")
            let (_, floats) = try Self.split(r)
            let text = try await client.post("/v2/models/minilm/infer", """
                {"inputs": [{"name": "TEXT", "shape": [2], "datatype": "BYTES", "data": ["\(Self.texts[0])", "\(Self.texts[1])"]}]}
                """)
            expectClose(floats, try #require(text.json["outputs"]?.array?.first?["data"]?.floats), "binary ids + JSON mask vs TEXT")
            // binary_data false on the output: JSON data back.
            let maskInput = """
                {"name": "attention_mask", "shape": [2, \(width)], "datatype": "INT64", "parameters": {"binary_data_size": \(mask.count)}}
                """
            let json = try await Self.infer(client, """
                {"inputs": [\(idsInput), \(maskInput)], "outputs": [{"name": "EMBEDDING", "parameters": {"binary_data": false}}]}
                """, ids + mask)
            #expect(json.status == .ok, "\(json.text)")
            #expect(json.headers[KServeBinary.headerLength] == nil)
            expectClose(try #require(json.json["outputs"]?.array?.first?["data"]?.floats), floats, "JSON out vs binary out")
        }
    }

    @Test(.enabled(if: Harness.available, serveSkipReason))
    func malformedBinaryIsA400() async throws {
        try await Harness.test(try Harness.server()) { client in
            let one = Self.bytesTensor(["hello"])
            func text(size: Int) -> String {
                #"{"inputs": [{"name": "TEXT", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": \#(size)}}]}"#
            }
            let cases: [(String, TestResponse, String)] = [
                ("header past the body", try await Self.infer(client, text(size: one.count), one, headerLength: "99999"),
                 "Inference-Header-Content-Length"),
                ("header not a number", try await Self.infer(client, text(size: one.count), one, headerLength: "ten"),
                 "Inference-Header-Content-Length"),
                ("size past the data", try await Self.infer(client, text(size: one.count + 1), one), "binary_data_size"),
                ("bytes left over", try await Self.infer(client, text(size: one.count), one + [0, 0]), "bytes of binary data follow"),
                ("element cut short", try await Self.infer(client, text(size: 6), Array(one.prefix(6))), "runs past"),
                ("length cut short", try await Self.infer(client, text(size: 2), [5, 0]), "4-byte length"),
                ("not UTF-8", try await Self.infer(client, text(size: 6), [2, 0, 0, 0, 0xFF, 0xFE]), "UTF-8"),
                ("FP32 input", try await Self.infer(client, """
                    {"inputs": [{"name": "TEXT", "shape": [1], "datatype": "FP32", "parameters": {"binary_data_size": 4}}]}
                    """, [0, 0, 0, 0]), "FP32"),
                ("unknown output", try await client.post("/v2/models/minilm/infer", """
                    {"inputs": [{"name": "TEXT", "shape": [1], "datatype": "BYTES", "data": ["a"]}], "outputs": [{"name": "LOGITS"}]}
                    """), "EMBEDDING"),
            ]
            for (what, r, says) in cases {
                #expect(r.status == .badRequest, "\(what): \(r.status) \(r.text)")
                #expect(r.json["error"]?.string?.contains(says) == true, "\(what): \(r.text)")
            }
        }
    }
}
