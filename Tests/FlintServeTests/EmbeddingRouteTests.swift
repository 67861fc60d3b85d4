import FlintJSON
import FlintModels
@testable import FlintServe
import FlintTestSupport
import Hummingbird
import HummingbirdTesting
import Testing

/// `/v1/embeddings`, TEI's `/embed`, `/tokenize`, `/info` and the encoder scheduler.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct EmbeddingRouteTests {
    static let texts = ["The quick brown fox jumps over the lazy dog.", "Flint serves embeddings.", "a",
                        "Ünïcödé text, 漢字 and emoji 🦊"]

    /// What `flint embed` computes for `text`.
    static func reference(_ text: String) throws -> [Float] {
        try #require(Harness.embedReference).embed([text]).embeddings[0]
    }

    @Test(.enabled(if: Harness.available, serveSkipReason))
    func floatAndBase64MatchTheEngine() async throws {
        let server = try Harness.server()
        try await Harness.test(server) { client in
            let r = try await client.post("/v1/embeddings",
                                          #"{"model": "minilm", "input": "\#(Self.texts[0])", "encoding_format": "float"}"#)
            #expect(r.status == .ok)
            let data = try #require(r.json["data"]?.array)
            #expect(data.count == 1)
            let v = try #require(data[0]["embedding"]?.floats)
            #expect(v.count == 384)
            expectClose(v, try Self.reference(Self.texts[0]), "float embedding vs the pipeline")
            let tokens = try #require(Harness.miniLM).pipeline.encode(Self.texts[0]).ids.count
            #expect(r.json["usage"]?["prompt_tokens"]?.int == tokens)
            #expect(r.json["model"]?.string == "minilm")
            // The openai client's default: base64 little-endian f32, the same numbers.
            let b = try await client.post("/v1/embeddings",
                                          #"{"model": "minilm", "input": ["\#(Self.texts[0])"], "encoding_format": "base64"}"#)
            let encoded = try #require(b.json["data"]?.array?.first?["embedding"]?.string)
            expectClose(decodeBase64Floats(encoded), v, tolerance: 0, "base64 vs float")
        }
    }

    @Test(.enabled(if: Harness.available, serveSkipReason))
    func everyInputFormAndDimensions() async throws {
        let server = try Harness.server()
        let model = try #require(Harness.miniLM)
        let ids = try model.pipeline.encode(Self.texts[1]).ids
        let idList = ids.map(String.init).joined(separator: ",")
        try await Harness.test(server) { client in
            let many = try await client.post("/v1/embeddings", #"{"model": "minilm", "input": ["\#(Self.texts[1])", "\#(Self.texts[2])"]}"#)
            let rows = try #require(many.json["data"]?.array)
            #expect(rows.count == 2)
            #expect(rows.map { $0["index"]?.int } == [0, 1])
            let fromText = try #require(rows[0]["embedding"]?.floats)
            let oneIds = try await client.post("/v1/embeddings", #"{"model": "minilm", "input": [\#(idList)]}"#)
            expectClose(try #require(oneIds.json["data"]?.array?.first?["embedding"]?.floats), fromText, "ids vs text")
            #expect(oneIds.json["usage"]?["prompt_tokens"]?.int == ids.count)
            let nested = try await client.post("/v1/embeddings", #"{"model": "minilm", "input": [[\#(idList)], [\#(idList)]]}"#)
            #expect(nested.json["data"]?.array?.count == 2)
            expectClose(try #require(nested.json["data"]?.array?[1]["embedding"]?.floats), fromText, "array of id arrays vs text")
            let short = try await client.post("/v1/embeddings", #"{"model": "minilm", "input": "\#(Self.texts[1])", "dimensions": 8}"#)
            let cut = try #require(short.json["data"]?.array?.first?["embedding"]?.floats)
            expectClose(cut, Vectors.normalized(Array(fromText.prefix(8))), "dimensions: truncate + renormalize")
        }
    }

    @Test(.enabled(if: Harness.available, serveSkipReason))
    func longInputsAreTruncatedToTheFolderLimit() async throws {
        let server = try Harness.server()
        let long = Array(repeating: "word", count: 600).joined(separator: " ")
        try await Harness.test(server) { client in
            let r = try await client.post("/v1/embeddings", #"{"model": "minilm", "input": "\#(long)"}"#)
            #expect(r.status == .ok)
            // sentence_bert_config.json: max_seq_length 256.
            #expect(r.json["usage"]?["prompt_tokens"]?.int == 256)
            let tei = try await client.post("/embed", #"{"inputs": "\#(long)", "truncate": false}"#)
            #expect(tei.status == .badRequest)
            #expect(tei.json["error"]?.string?.contains("256") == true)
        }
    }

    /// Requests that queue while the model is held form one batch, and each result equals the
    /// request run alone.
    @Test(.enabled(if: Harness.available, serveSkipReason))
    func batchedEqualsSingle() async throws {
        let model = try Harness.freshMiniLM()
        var alone: [[Float]] = []
        for t in Self.texts { alone.append(try await model.embed([try model.pipeline.encode(t)])[0]) }
        let before = model.batchStats.batches
        model.setPaused(true)
        let results = try await withThrowingTaskGroup(of: (Int, [Float]).self) { group in
            for (i, t) in Self.texts.enumerated() {
                group.addTask { (i, try await model.embed([try model.pipeline.encode(t)])[0]) }
            }
            #expect(await eventually { model.queueDepth == Self.texts.count })
            model.setPaused(false)
            var out = [[Float]](repeating: [], count: Self.texts.count)
            for try await (i, v) in group { out[i] = v }
            return out
        }
        #expect(model.batchStats.batches == before + 1, "the queued requests ran as one batch")
        #expect(model.batchStats.largest >= Self.texts.count)
        for i in Self.texts.indices { expectClose(results[i], alone[i], "input \(i) batched vs alone") }
    }

    @Test(.enabled(if: Harness.available, serveSkipReason))
    func batchesRespectTheRequestLimit() async throws {
        let model = try Harness.freshMiniLM(BatchLimits(maxBatchTokens: 4096, maxBatchRequests: 2, maxQueue: 16))
        let pipeline = model.pipeline
        model.setPaused(true)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for t in Self.texts { group.addTask { _ = try await model.embed([try pipeline.encode(t)]) } }
            #expect(await eventually { model.queueDepth == Self.texts.count })
            model.setPaused(false)
            try await group.waitForAll()
        }
        #expect(model.batchStats.largest == 2, "4 requests, at most 2 per batch")
        #expect(model.batchStats.batches == 2)
    }

    @Test(.enabled(if: Harness.available, serveSkipReason))
    func teiRoutes() async throws {
        let server = try Harness.server()
        let model = try #require(Harness.miniLM)
        try await Harness.test(server) { client in
            let r = try await client.post("/embed", #"{"inputs": ["\#(Self.texts[0])", "\#(Self.texts[1])"]}"#)
            #expect(r.status == .ok)
            let rows = try #require(r.json.array)
            #expect(rows.count == 2)
            expectClose(try #require(rows[0].floats), try Self.reference(Self.texts[0]), "TEI /embed vs the pipeline")
            let raw = try await client.post("/embed", #"{"inputs": "\#(Self.texts[0])", "normalize": false}"#)
            let v = try #require(raw.json.array?.first?.floats)
            #expect(abs(v.reduce(0) { $0 + $1 * $1 }.squareRoot() - 1) > 1e-3, "normalize: false keeps the pooled norm")
            expectClose(Vectors.normalized(v), try Self.reference(Self.texts[0]), "normalize: false, normalized by hand")
            let tok = try await client.post("/tokenize", #"{"inputs": "Hello wörld"}"#)
            let tokens = try #require(tok.json.array?.first?.array)
            #expect(tokens.first?["text"]?.string == "[CLS]")
            #expect(tokens.first?["special"]?.bool == true)
            #expect(tokens[1]["text"]?.string == "Hello", "the input's own text, as TEI")
            let hello = model.pipeline.tokenizer.id(forToken: "hello").map(Int.init)
            #expect(tokens[1]["id"]?.int == hello)
            #expect(tokens[1]["start"]?.int == 0)
            #expect(tokens[1]["stop"]?.int == 5)
            // "wörld": UTF-8 byte offsets 6..<12.
            #expect(tokens.dropFirst(2).first?["start"]?.int == 6)
            let info = try await client.get("/info")
            #expect(info.json["model_id"]?.string == "minilm")
            #expect(info.json["max_input_length"]?.int == 256)
            #expect(info.json["model_type"]?["embedding"]?["pooling"]?.string == "mean")
            #expect(try await client.get("/health").status == .ok)
            let wrongType = try await client.post("/embed", #"{"inputs": 5}"#)
            #expect(wrongType.status == .unprocessableContent)
            #expect(wrongType.json["error"]?.string?.contains("inputs") == true)
        }
    }
}
