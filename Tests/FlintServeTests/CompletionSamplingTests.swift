import FlintCPU
import FlintCore
import FlintJSON
import FlintModels
@testable import FlintServe
import FlintTestSupport
import Hummingbird
import HummingbirdTesting
import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `presence_penalty`, `frequency_penalty` and `logprobs` on `/v1/completions`, against a plain
/// reference: the tiny GPT-2 run from scratch on the CPU for every prefix (no KV cache), the
/// penalties and the log-softmax computed here in Double.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct CompletionSamplingTests {
    /// The model's next-token logits after `ids` (a fresh prefill each time).
    final class Reference: @unchecked Sendable {
        let plan: any PreparedPlan

        init() throws {
            let loaded = try ModelFolder.decoder(TestPaths.fixture("gpt2/tiny-gpt2"), tokenizerFallback: TestPaths.asset("gpt2-hf"))
            let plan = try loaded.model.plan(outputs: [.nextTokenLogits], maxTokens: 128, maxSequences: 1, maxContext: 128)
            self.plan = try CPUBackend(threads: 1).prepare(plan, weights: loaded.weights)
        }

        func logits(_ ids: [Int32]) throws -> [Float] {
            try #require(try plan.run(TokenBatch(sequences: [ids]))[GPT2.Output.nextTokenLogits.rawValue]).data
        }

        /// log-softmax of a row, in Double.
        static func logSoftmax(_ x: [Float]) -> [Double] {
            let m = Double(x.max()!)
            let logSum = m + log(x.reduce(0.0) { $0 + exp(Double($1) - m) })
            return x.map { Double($0) - logSum }
        }

        /// OpenAI's penalties on the counts of generated tokens, then the largest (lowest id on ties).
        static func penalizedArgmax(_ x: [Float], counts: [Int32: Int], presence: Double, frequency: Double) -> Int32 {
            var best = 0, bestValue = -Double.infinity
            for (v, raw) in x.enumerated() {
                let c = Double(counts[Int32(v)] ?? 0)
                let value = Double(raw) - (c > 0 ? presence + frequency * c : 0)
                if value > bestValue { (best, bestValue) = (v, value) }
            }
            return Int32(best)
        }

        /// Greedy continuation of `prompt` under the penalties.
        func greedy(_ prompt: [Int32], count: Int, presence: Double, frequency: Double) throws -> [Int32] {
            var ids = prompt, counts: [Int32: Int] = [:]
            for _ in 0..<count {
                let next = Self.penalizedArgmax(try logits(ids), counts: counts, presence: presence, frequency: frequency)
                counts[next, default: 0] += 1
                ids.append(next)
            }
            return Array(ids[prompt.count...])
        }
    }

    static func idList(_ ids: [Int32]) -> String { ids.map(String.init).joined(separator: ",") }

    /// Greedy output under each penalty pair is the reference's, and the penalties change it.
    @Test(.enabled(if: Harness.available, serveSkipReason))
    func penaltiesFollowTheReference() async throws {
        let reference = try Reference()
        let tokenizer = try #require(Harness.tinyGPT2).decoder.tokenizer
        let prompt = try GPT2Fixture("tiny-gpt2").prompts[0]
        let plain = try reference.greedy(prompt, count: 16, presence: 0, frequency: 0)
        try await Harness.test(try Harness.server()) { client in
            for (presence, frequency) in [(2.0, 0.0), (0.0, 1.5), (-1.0, 0.5), (0.5, -2.0)] {
                let want = try reference.greedy(prompt, count: 16, presence: presence, frequency: frequency)
                let r = try await client.post("/v1/completions", """
                    {"model": "tiny-gpt2", "prompt": [\(Self.idList(prompt))], "max_tokens": 16, "temperature": 0, "ignore_eos": true,
                     "presence_penalty": \(presence), "frequency_penalty": \(frequency)}
                    """)
                #expect(r.status == .ok, "\(r.text)")
                let text = r.json["choices"]?.array?.first?["text"]?.string
                #expect(text == tokenizer.decode(want, skipSpecialTokens: true), "presence \(presence), frequency \(frequency)")
                if presence == 2 {
                    #expect(want != plain, "a presence penalty of 2 changes the tiny model's greedy output (the test means something)")
                }
            }
        }
    }

    /// The expected `top_logprobs` entry: the top `n` by raw log-softmax (lowest id on ties), the
    /// sampled token added, the first of equal texts kept.
    static func expectedTop(_ lsm: [Double], chosen: Int32, n: Int, decode: (Int32) -> String) -> [(String, Double)] {
        let order = lsm.indices.sorted { lsm[$0] != lsm[$1] ? lsm[$0] > lsm[$1] : $0 < $1 }
        var out: [(String, Double)] = []
        for id in order.prefix(n).map(Int32.init) + [chosen] {
            let key = decode(id)
            if !out.contains(where: { $0.0 == key }) { out.append((key, lsm[Int(id)])) }
        }
        return out
    }

    /// A choice's logprobs object checked token by token against the reference.
    static func expectLogprobs(_ logprobs: JSONValue?, prompt: [Int32], ids: [Int32], n: Int, reference: Reference,
                               decode: (Int32) -> String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let lp = try #require(logprobs, sourceLocation: sourceLocation)
        let tokens = try #require(lp["tokens"]?.array, sourceLocation: sourceLocation)
        let values = try #require(lp["token_logprobs"]?.array, sourceLocation: sourceLocation)
        let tops = try #require(lp["top_logprobs"]?.array, sourceLocation: sourceLocation)
        let offsets = try #require(lp["text_offset"]?.array, sourceLocation: sourceLocation)
        try #require(tokens.count == ids.count && values.count == ids.count && tops.count == ids.count && offsets.count == ids.count,
                     "one entry per generated token: \(tokens.count), \(values.count), \(tops.count), \(offsets.count) vs \(ids.count)",
                     sourceLocation: sourceLocation)
        var offset = 0
        for (i, id) in ids.enumerated() {
            let lsm = Reference.logSoftmax(try reference.logits(prompt + ids[..<i]))
            #expect(tokens[i].string == decode(id), sourceLocation: sourceLocation)
            #expect(offsets[i].int == offset, "text_offset \(i)", sourceLocation: sourceLocation)
            offset += decode(id).unicodeScalars.count
            expectEntry(value: values[i], top: tops[i], lsm: lsm, id: id, n: n, tolerance: 1e-4, label: "token \(i)",
                        decode: decode, sourceLocation: sourceLocation)
        }
    }

    /// One position of a logprobs object: `value` is the log-softmax `lsm` of token `id`, and `top` the
    /// top `n` (plus `id`) of `lsm` keyed by their text, each within `tolerance`.
    static func expectEntry(value: JSONValue, top: JSONValue, lsm: [Double], id: Int32, n: Int, tolerance: Double,
                            label: String, decode: (Int32) -> String, sourceLocation: SourceLocation) {
        guard case let .number(number) = value else {
            Issue.record("\(label): token_logprobs is \(value.typeName)", sourceLocation: sourceLocation)
            return
        }
        #expect(abs(number - lsm[Int(id)]) <= tolerance, "\(label): \(number) vs \(lsm[Int(id)])", sourceLocation: sourceLocation)
        let want = expectedTop(lsm, chosen: id, n: n, decode: decode)
        let got = top.object ?? []
        #expect(got.map(\.key) == want.map(\.0), "\(label): top_logprobs keys", sourceLocation: sourceLocation)
        for (g, w) in zip(got, want) {
            guard case let .number(v) = g.value else { continue }
            #expect(abs(v - w.1) <= tolerance, "\(label): top_logprobs \"\(w.0)\": \(v) vs \(w.1)", sourceLocation: sourceLocation)
        }
    }

    /// Greedy with a presence penalty and logprobs 5: the layout and every value are the raw
    /// log-softmax of the model's logits (not the penalized ones), within 1e-4.
    @Test(.enabled(if: Harness.available, serveSkipReason))
    func logprobsAreTheModelsLogSoftmax() async throws {
        let reference = try Reference()
        let tokenizer = try #require(Harness.tinyGPT2).decoder.tokenizer
        let decode: @Sendable (Int32) -> String = { tokenizer.decode([$0], skipSpecialTokens: false) }
        let prompt = try GPT2Fixture("tiny-gpt2").prompts[1]
        try await Harness.test(try Harness.server()) { client in
            for (n, presence) in [(5, 2.0), (0, 0.0), (2, 0.0)] {
                let ids = try reference.greedy(prompt, count: 10, presence: presence, frequency: 0)
                let r = try await client.post("/v1/completions", """
                    {"model": "tiny-gpt2", "prompt": [\(Self.idList(prompt))], "max_tokens": 10, "temperature": 0, "ignore_eos": true,
                     "presence_penalty": \(presence), "logprobs": \(n)}
                    """)
                #expect(r.status == .ok, "\(r.text)")
                let choice = try #require(r.json["choices"]?.array?.first)
                #expect(choice["text"]?.string == tokenizer.decode(ids, skipSpecialTokens: true))
                try Self.expectLogprobs(choice["logprobs"], prompt: prompt, ids: ids, n: n, reference: reference, decode: decode)
                if presence > 0 {
                    let overridden = try ids.indices.contains { i in
                        let x = try reference.logits(prompt + ids[..<i])
                        return x[Int(ids[i])] < x.max()!
                    }
                    #expect(overridden, "the penalty made some pick other than the raw top token (its raw logprob is what is reported)")
                }
            }
            let none = try await client.post("/v1/completions", #"{"model": "tiny-gpt2", "prompt": "in", "max_tokens": 2}"#)
            #expect(none.json["choices"]?.array?.first?["logprobs"]?.isNull == true, "no logprobs unless asked")
        }
    }

    /// Sampled with logprobs through the scheduler: alone and batched with other sequences give the
    /// same tokens and logprobs, and they match the reference for the tokens drawn.
    @Test(.enabled(if: Harness.available, serveSkipReason))
    func batchedLogprobsEqualSingle() async throws {
        let reference = try Reference()
        let model = try Harness.freshTinyGPT2()
        let prompts = try GPT2Fixture("tiny-gpt2").prompts
        let samplings = [SamplingParameters(temperature: 0.9, seed: 5, logprobs: 3),
                         SamplingParameters(temperature: 1.1, topK: 30, presencePenalty: 1, frequencyPenalty: 0.5, seed: 8, logprobs: 5),
                         SamplingParameters(temperature: 0, frequencyPenalty: 2, logprobs: 1),
                         SamplingParameters(temperature: 0.7, seed: 2)]
        var sequences: [CompletionScheduler.Sequence] = []
        for (i, s) in samplings.enumerated() {
            sequences.append(.init(prompt: prompts[i % prompts.count], parameters: GenerationParameters(maxNewTokens: 8 + i, sampling: s,
                                                                                                      ignoreEOS: true), choice: i))
        }
        /// The generated tokens' logprobs per choice (choices without them left out).
        func run(_ batch: [CompletionScheduler.Sequence]) async throws -> [Int: [TokenGenerator.Sampled]] {
            try await model.collect(batch).compactMapValues { $0.logprobs.isEmpty ? nil : $0.logprobs }
        }
        var alone: [Int: [TokenGenerator.Sampled]] = [:]
        for q in sequences { alone[q.choice] = try await run([q])[q.choice] }
        let together = try await run(sequences)
        for q in sequences {
            let a = alone[q.choice] ?? [], t = together[q.choice] ?? []
            #expect(a.map(\.id) == t.map(\.id) && a.map { $0.top.map(\.id) } == t.map { $0.top.map(\.id) },
                    "choice \(q.choice): same tokens")
            let worst = zip(a, t).flatMap { x, y in
                [abs(x.logprob! - y.logprob!)] + zip(x.top, y.top).map { abs($0.logprob - $1.logprob) }
            }
            #expect(worst.max() ?? 0 <= 1e-5, "choice \(q.choice): same logprobs alone and batched")
            guard let n = q.parameters.sampling.logprobs else {
                #expect(a.isEmpty, "no logprobs events unless asked")
                continue
            }
            #expect(a.count == q.parameters.maxNewTokens)
            for (i, token) in a.enumerated() {
                let lsm = Reference.logSoftmax(try reference.logits(q.prompt + a[..<i].map(\.id)))
                #expect(abs(Double(token.logprob!) - lsm[Int(token.id)]) <= 1e-4)
                let order = lsm.indices.sorted { lsm[$0] != lsm[$1] ? lsm[$0] > lsm[$1] : $0 < $1 }.prefix(n)
                #expect(token.top.map(\.id) == order.map(Int32.init), "choice \(q.choice) token \(i): top \(n)")
                #expect(zip(token.top, order).allSatisfy { abs(Double($0.logprob) - lsm[$1]) <= 1e-4 })
            }
        }
    }

    /// The logprobs of the streamed chunks, joined, equal the non-streamed ones.
    @Test(.enabled(if: Harness.available, serveSkipReason))
    func streamedLogprobsEqualWhole() async throws {
        try await Harness.test(try Harness.server()) { client in
            let request = #"{"model": "tiny-gpt2", "prompt": "in the is on", "max_tokens": 20, "ignore_eos": true, "temperature": 0.9, "#
                + #""seed": 4, "logprobs": 3, "frequency_penalty": 0.4"#
            let whole = try await client.post("/v1/completions", request + "}")
            #expect(whole.status == .ok, "\(whole.text)")
            let lp = try #require(whole.json["choices"]?.array?.first?["logprobs"])
            let streamed = try await client.post("/v1/completions", request + #", "stream": true}"#)
            let (chunks, done) = CompletionRouteTests.events(streamed.text)
            #expect(done)
            var joined: [String: [JSONValue]] = [:]
            for chunk in chunks {
                let c = try #require(chunk["choices"]?.array?.first)
                let piece = try #require(c["logprobs"]?.object, "every text chunk carries logprobs")
                for (key, value) in piece { joined[key, default: []] += value.array ?? [] }
            }
            for key in ["tokens", "token_logprobs", "top_logprobs", "text_offset"] {
                #expect(joined[key] == lp[key]?.array, "\(key): streamed == whole")
            }
            #expect(joined["tokens"]?.count == 20)
        }
    }

    /// The decoded sequences carry the fields (FlintFuzz's `serve` target drives the same decoding).
    @Test(.enabled(if: Harness.available, serveSkipReason))
    func decodedParameters() throws {
        let body = #"{"model": "tiny-gpt2", "prompt": "a", "n": 2, "logprobs": 4, "presence_penalty": 0.5, "frequency_penalty": -1.25}"#
        let decoded = try Harness.server().decode(.completions, body: Array(body.utf8))
        #expect(decoded.sequences.count == 2)
        for q in decoded.sequences {
            #expect(q.parameters.sampling.logprobs == 4)
            #expect(q.parameters.sampling.presencePenalty == 0.5 && q.parameters.sampling.frequencyPenalty == -1.25)
        }
        let plain = try Harness.server().decode(.completions, body: Array(#"{"model": "tiny-gpt2", "prompt": "a"}"#.utf8))
        #expect(plain.sequences.allSatisfy { $0.parameters.sampling.logprobs == nil && $0.parameters.sampling.presencePenalty == 0 })
    }

    @Test(.enabled(if: Harness.available, serveSkipReason))
    func rangesAndUnsupported() async throws {
        try await Harness.test(try Harness.server()) { client in
            for (field, value) in [("presence_penalty", "2.5"), ("presence_penalty", "-3"), ("frequency_penalty", "2.01"),
                                   ("frequency_penalty", "\"1\""), ("logprobs", "6"), ("logprobs", "-1"), ("logprobs", "true")] {
                let r = try await client.post("/v1/completions", #"{"model": "tiny-gpt2", "prompt": "in", "\#(field)": \#(value)}"#)
                #expect(r.status == .badRequest, "\(field): \(value)")
                #expect(r.openAIError?.param == field, "the error names \(field): \(r.text)")
            }
            for (field, value) in [("presence_penalty", "-2"), ("frequency_penalty", "2"), ("logprobs", "5"), ("logprobs", "0")] {
                let body = #"{"model": "tiny-gpt2", "prompt": "in", "max_tokens": 1, "\#(field)": \#(value)}"#
                let r = try await client.post("/v1/completions", body)
                #expect(r.status == .ok, "\(field): \(value) is in range: \(r.text)")
            }
            let echo = try await client.post("/v1/completions", #"{"model": "tiny-gpt2", "prompt": "in", "echo": true, "logprobs": 1}"#)
            #expect(echo.status == .ok, "echo with logprobs scores the prompt (PromptLogprobsTests): \(echo.text)")
        }
    }
}
