import FlintJSON
import FlintModels
@testable import FlintServe
import FlintTestSupport
import Hummingbird
import HummingbirdTesting
import Testing

/// Errors, limits, API key, drain, model listing and the KServe v2 routes.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct ServerLimitTests {
    @Test(.enabled(if: Harness.available, serveSkipReason))
    func modelsAndUnknownRoutes() async throws {
        try await Harness.test(try Harness.server()) { client in
            let r = try await client.get("/v1/models")
            #expect(r.json["data"]?.array?.compactMap { $0["id"]?.string } == ["minilm", "tiny-gpt2"])
            let unknown = try await client.post("/v1/embeddings", #"{"model": "nope", "input": "x"}"#)
            #expect(unknown.status == .notFound)
            #expect(unknown.openAIError?.code == "model_not_found")
            #expect(unknown.openAIError?.message.contains("minilm") == true, "names the served models")
            let noRoute = try await client.get("/v1/nothing")
            #expect(noRoute.status == .notFound)
            #expect(noRoute.openAIError != nil, "JSON even for an unknown route: \(noRoute.text)")
        }
    }

    @Test(.enabled(if: Harness.available, serveSkipReason))
    func malformedBodiesNameTheField() async throws {
        try await Harness.test(try Harness.server()) { client in
            let broken = try await client.post("/v1/embeddings", #"{"model": "minilm", "input": "#)
            #expect(broken.status == .badRequest)
            #expect(broken.openAIError?.message.contains("not valid JSON") == true)
            let notObject = try await client.post("/v1/embeddings", "[1, 2]")
            #expect(notObject.status == .badRequest)
            let cases: [(String, String)] = [
                (#"{"model": "minilm", "input": 5}"#, "input"),
                (#"{"model": "minilm"}"#, "input"),
                (#"{"model": "minilm", "input": ["a", 3]}"#, "input[1]"),
                (#"{"model": "minilm", "input": "a", "encoding_format": "hex"}"#, "encoding_format"),
                (#"{"model": "minilm", "input": "a", "dimensions": 999}"#, "dimensions"),
                (#"{"model": 3, "input": "a"}"#, "model"),
                (#"{"model": "minilm", "input": [1, 99999999]}"#, "input"),
            ]
            for (body, param) in cases {
                let r = try await client.post("/v1/embeddings", body)
                #expect(r.status == .badRequest, "\(body) -> \(r.status)")
                #expect(r.openAIError?.param == param, "\(body): param \(r.openAIError?.param ?? "nil"), expected \(param)")
                #expect(r.json["error"]?["type"]?.string == "invalid_request_error")
            }
        }
    }

    @Test(.enabled(if: Harness.available, serveSkipReason))
    func bodyOverTheLimitIs413() async throws {
        let server = try Harness.server(ServeOptions(limits: Harness.limits, maxBodyBytes: 256))
        try await Harness.test(server) { client in
            let big = String(repeating: "x", count: 1000)
            let r = try await client.post("/v1/embeddings", #"{"model": "minilm", "input": "\#(big)"}"#)
            #expect(r.status == .contentTooLarge)
            #expect(r.openAIError?.message.contains("256") == true)
            let small = try await client.post("/v1/embeddings", #"{"model": "minilm", "input": "ok"}"#)
            #expect(small.status == .ok, "a small body still passes")
        }
    }

    /// With the model held and `maxQueue` requests waiting, the next request gets 429 with
    /// Retry-After; the waiting ones still complete.
    @Test(.enabled(if: Harness.available, serveSkipReason))
    func fullQueueIs429() async throws {
        let model = try Harness.freshMiniLM(BatchLimits(maxBatchTokens: 4096, maxBatchRequests: 16, maxQueue: 2))
        let server = FlintServer(models: try ServedModels([("minilm", .encoder(model))]), options: ServeOptions(limits: model.limits))
        model.setPaused(true)
        try await Harness.test(server) { client in
            try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<2 {
                    group.addTask { Int(try await client.post("/v1/embeddings", #"{"model": "minilm", "input": "wait"}"#).status.code) }
                }
                #expect(await eventually { model.queueDepth == 2 })
                let full = try await client.post("/v1/embeddings", #"{"model": "minilm", "input": "one too many"}"#)
                #expect(full.status == .tooManyRequests)
                #expect(full.headers[.retryAfter] == "1")
                #expect(full.openAIError?.code == "queue_full")
                #expect(full.openAIError?.message.contains("\"minilm\"") == true, "names the model as served")
                model.setPaused(false)
                for try await code in group { #expect(code == 200) }
            }
        }
    }

    @Test(.enabled(if: Harness.available, serveSkipReason))
    func apiKeyGuardsAllButHealth() async throws {
        let server = try Harness.server(ServeOptions(limits: Harness.limits, apiKey: "s3cret"))
        try await Harness.test(server) { client in
            let missing = try await client.get("/v1/models")
            #expect(missing.status == .unauthorized)
            #expect(missing.openAIError?.code == "invalid_api_key")
            let wrong = try await client.get("/v1/models", headers: [.authorization: "Bearer nope"])
            #expect(wrong.status == .unauthorized)
            #expect(try await client.get("/info").status == .unauthorized)
            #expect(try await client.get("/v2/models/minilm").json["error"]?.string != nil)
            #expect(try await client.get("/v1/models", headers: [.authorization: "Bearer s3cret"]).status == .ok)
            for open in ["/health", "/v2/health/live", "/v2/health/ready"] {
                #expect(try await client.get(open).status == .ok, "\(open) stays open")
            }
        }
    }

    @Test(.enabled(if: Harness.available, serveSkipReason))
    func drainingTurnsReadinessAndNewRequestsTo503() async throws {
        let server = try Harness.server(ServeOptions(limits: Harness.limits, drainTimeout: 5))
        try await Harness.test(server) { client in
            #expect(try await client.get("/v2/health/ready").status == .ok)
            await server.drain()
            #expect(try await client.get("/health").status == .serviceUnavailable)
            #expect(try await client.get("/v2/health/ready").status == .serviceUnavailable)
            #expect(try await client.get("/v2/health/live").status == .ok, "still alive while draining")
            let r = try await client.post("/v1/embeddings", #"{"model": "minilm", "input": "late"}"#)
            #expect(r.status == .serviceUnavailable)
            #expect(r.openAIError?.code == "shutting_down")
        }
    }

    /// A stream that is running when the drain starts finishes, and the drain waits for it.
    @Test(.enabled(if: Harness.available, serveSkipReason))
    func drainWaitsForInFlightStreams() async throws {
        let server = try Harness.server(ServeOptions(limits: Harness.limits, drainTimeout: 20))
        try await Harness.test(server) { client in
            let stream = Task {
                try await client.post("/v1/completions", """
                    {"model": "tiny-gpt2", "prompt": "in the", "max_tokens": 100, "temperature": 0, "ignore_eos": true, "stream": true}
                    """)
            }
            #expect(await eventually { server.requestsInFlight == 1 })
            let started = ContinuousClock.now
            await server.drain()
            #expect(server.requestsInFlight == 0)
            #expect(ContinuousClock.now - started < .seconds(20), "finished before the drain timeout")
            let body = try await stream.value.text
            #expect(body.hasSuffix("data: [DONE]\n\n"), "the stream still ends with [DONE]")
        }
    }

    @Test(.enabled(if: Harness.available, serveSkipReason))
    func kserveV2() async throws {
        let model = try #require(Harness.miniLM)
        try await Harness.test(try Harness.server()) { client in
            #expect(try await client.get("/v2").json["name"]?.string == "flint")
            let meta = try await client.get("/v2/models/minilm")
            #expect(meta.json["outputs"]?.array?.first?["shape"]?.array?.last?.int == 384)
            #expect(try await client.get("/v2/models/minilm/ready").status == .ok)
            #expect(try await client.get("/v2/models/minilm/versions/1/ready").status == .ok)
            let text = try await client.post("/v2/models/minilm/infer", """
                {"inputs": [{"name": "TEXT", "shape": [2], "datatype": "BYTES", "data": ["Flint serves embeddings.", "a"]}]}
                """)
            #expect(text.status == .ok, "\(text.text)")
            let out = try #require(text.json["outputs"]?.array?.first)
            #expect(out["name"]?.string == "EMBEDDING")
            #expect(out["datatype"]?.string == "FP32")
            #expect(out["shape"]?.array?.compactMap(\.int) == [2, 384])
            let flat = try #require(out["data"]?.floats)
            expectClose(Array(flat.prefix(384)), try EmbeddingRouteTests.reference("Flint serves embeddings."),
                        "KServe TEXT vs the pipeline")
            // The same two inputs as padded INT64 ids with an attention mask.
            let a = try model.pipeline.encode("Flint serves embeddings.").ids
            let b = try model.pipeline.encode("a").ids
            let width = max(a.count, b.count)
            func row(_ ids: [Int32]) -> [Int] { ids.map(Int.init) + Array(repeating: 0, count: width - ids.count) }
            func mask(_ ids: [Int32]) -> [Int] { Array(repeating: 1, count: ids.count) + Array(repeating: 0, count: width - ids.count) }
            let idsBody = """
                {"inputs": [{"name": "input_ids", "shape": [2, \(width)], "datatype": "INT64", "data": \(row(a) + row(b))},
                            {"name": "attention_mask", "shape": [2, \(width)], "datatype": "INT64", "data": [\(mask(a)), \(mask(b))]}]}
                """
            let ids = try await client.post("/v2/models/minilm/infer", idsBody)
            #expect(ids.status == .ok, "\(ids.text)")
            expectClose(try #require(ids.json["outputs"]?.array?.first?["data"]?.floats), flat, "input_ids + mask vs TEXT")
            let unknown = try await client.post("/v2/models/nope/infer", #"{"inputs": []}"#)
            #expect(unknown.status == .notFound)
            #expect(unknown.json["error"]?.string?.contains("nope") == true)
            let badShape = try await client.post("/v2/models/minilm/infer",
                                                 #"{"inputs": [{"name": "TEXT", "shape": [3], "datatype": "BYTES", "data": ["a"]}]}"#)
            #expect(badShape.status == .badRequest)
            let hugeShape = try await client.post("/v2/models/minilm/infer", """
                {"inputs": [{"name": "TEXT", "shape": [4294967296, 4294967296], "datatype": "BYTES", "data": ["a"]}]}
                """)
            #expect(hugeShape.status == .badRequest, "a shape whose product overflows is refused, not a crash")
            let decoder = try await client.post("/v2/models/tiny-gpt2/infer", #"{"inputs": []}"#)
            #expect(decoder.status == .badRequest)
        }
    }

    @Test(.enabled(if: Harness.available, serveSkipReason))
    func prometheusMetrics() async throws {
        // Schedulers of its own: a server sets its models' metric observers.
        let models = try ServedModels([("minilm", .encoder(try Harness.freshMiniLM())),
                                       ("tiny-gpt2", .decoder(try Harness.freshTinyGPT2()))])
        let server = FlintServer(models: models, options: ServeOptions(limits: Harness.limits))
        try await Harness.test(server) { client in
            _ = try await client.post("/v1/embeddings", #"{"model": "minilm", "input": ["one", "two"]}"#)
            _ = try await client.post("/v1/embeddings", #"{"model": "nope", "input": "x"}"#)
            _ = try await client.post("/v1/completions",
                                      #"{"model": "tiny-gpt2", "prompt": "in the", "max_tokens": 5, "temperature": 0, "ignore_eos": true}"#)
            // A request is counted once its body is written, which may end after the client has it.
            var r = try await client.get("/metrics")
            for _ in 0..<100 where !r.text.contains(#"route="/v1/completions",status="200""#) {
                try await Task.sleep(for: .milliseconds(10))
                r = try await client.get("/metrics")
            }
            #expect(r.status == .ok)
            #expect(r.headers[.contentType]?.hasPrefix("text/plain") == true)
            let text = r.text
            func value(_ series: String) -> Double? {
                text.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.split(separator: " ").last!) }
            }
            #expect(value(#"flint_requests_total{route="/v1/embeddings",status="200"}"#) == 1, "\(text)")
            #expect(value(#"flint_requests_total{route="/v1/embeddings",status="404"}"#) == 1)
            #expect(value(#"flint_requests_total{route="/v1/completions",status="200"}"#) == 1)
            #expect(value(#"flint_queue_depth{model="minilm"}"#) == 0)
            #expect(value(#"flint_kv_slots_in_use{model="tiny-gpt2"}"#) == 0)
            #expect(value(#"flint_generated_tokens_total{model="tiny-gpt2"}"#) == 5)
            #expect(value(#"flint_batch_requests_count{model="minilm"}"#) == 1, "one batch for the two inputs")
            #expect(value(#"flint_batch_tokens_sum{model="minilm"}"#).map { $0 >= 6 } == true)
            #expect(value(#"flint_time_to_first_token_seconds_count{model="tiny-gpt2"}"#) == 1)
            #expect(value(#"flint_inter_token_latency_seconds_count{model="tiny-gpt2"}"#) == 4)
            for name in ["flint_queue_duration_seconds_count", "flint_inference_duration_seconds_count",
                         "flint_request_duration_seconds_count"] {
                #expect(text.contains(name), "\(name) is exported")
            }
            #expect(ServeMetrics.route(of: "/v2/models/minilm/infer") == "/v2/models/{name}/infer")
        }
    }

    @Test func modelOptionsAndByteCounts() {
        #expect(ServedModels.parseModelOption("mini=/models/all-MiniLM-L6-v2") == ("mini", "/models/all-MiniLM-L6-v2"))
        #expect(ServedModels.parseModelOption("/models/all-MiniLM-L6-v2/") == ("all-MiniLM-L6-v2", "/models/all-MiniLM-L6-v2/"))
        #expect(ServedModels.parseModelOption("gpt2") == ("gpt2", "gpt2"))
        #expect(ServeOptions.parseBytes("2MiB") == 2 << 20)
        #expect(ServeOptions.parseBytes("65536") == 65536)
        #expect(ServeOptions.parseBytes("1KB") == 1000)
        #expect(ServeOptions.parseBytes("lots") == nil)
        #expect(ServeOptions.parseBytes("-1") == nil)
    }
}
