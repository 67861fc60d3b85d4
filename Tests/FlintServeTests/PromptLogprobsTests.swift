@testable import FlintCPU
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

/// `echo` with `logprobs` on `/v1/completions` (OpenAI's legacy layout, as vLLM): the prompt's tokens
/// come first, each scored given the tokens before it. The references: transformers' logits of the
/// fixture prompts (`expected.json`, computed by PyTorch) and the CPU GPT-2 run from scratch on every
/// prefix, the log-softmax taken here in Double.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct PromptLogprobsTests {
    typealias Reference = CompletionSamplingTests.Reference

    /// The fixture's 11-token prompt and transformers' logits for it (`[length, vocab]`).
    static func fixturePrompt() throws -> (ids: [Int32], logits: [[Float]]) {
        let fixture = try GPT2Fixture("tiny-gpt2")
        let ids = fixture.prompts[1]
        let flat = try #require(fixture.logits)[1]
        let vocab = flat.count / ids.count
        return (ids, (0..<ids.count).map { Array(flat[($0 * vocab)..<(($0 + 1) * vocab)]) })
    }

    static func decode(_ id: Int32) throws -> String {
        try #require(Harness.tinyGPT2).decoder.tokenizer.decode([id], skipSpecialTokens: false)
    }

    /// The prompt part of a choice's logprobs against transformers' logits: the first token null,
    /// then each token's log-softmax and the top `n` (plus the token itself) at the position before.
    static func expectPromptLogprobs(_ lp: JSONValue, prompt: [Int32], logits: [[Float]], n: Int,
                                     sourceLocation: SourceLocation = #_sourceLocation) throws {
        let tokens = try #require(lp["tokens"]?.array, sourceLocation: sourceLocation)
        let values = try #require(lp["token_logprobs"]?.array, sourceLocation: sourceLocation)
        let tops = try #require(lp["top_logprobs"]?.array, sourceLocation: sourceLocation)
        let offsets = try #require(lp["text_offset"]?.array, sourceLocation: sourceLocation)
        try #require(tokens.count >= prompt.count && values.count == tokens.count && tops.count == tokens.count
                     && offsets.count == tokens.count, "an entry per prompt token at least", sourceLocation: sourceLocation)
        #expect(values[0].isNull && tops[0].isNull, "nothing precedes the first prompt token", sourceLocation: sourceLocation)
        var offset = 0
        for (i, id) in prompt.enumerated() {
            #expect(tokens[i].string == (try decode(id)), "token \(i)", sourceLocation: sourceLocation)
            #expect(offsets[i].int == offset, "text_offset \(i)", sourceLocation: sourceLocation)
            offset += try decode(id).unicodeScalars.count
            guard i > 0 else { continue }
            let lsm = Reference.logSoftmax(logits[i - 1])
            CompletionSamplingTests.expectEntry(value: values[i], top: tops[i], lsm: lsm, id: id, n: n, tolerance: 3e-4,
                                                label: "prompt token \(i)", decode: { (try? decode($0)) ?? "" },
                                                sourceLocation: sourceLocation)
        }
    }

    /// max_tokens 0 scores the prompt alone; with max_tokens 6 the generated tokens follow, as
    /// without echo, their offsets counted from the end of the echoed prompt.
    @Test(.enabled(if: Harness.available, serveSkipReason))
    func echoedPromptIsScored() async throws {
        let (prompt, logits) = try Self.fixturePrompt()
        let ids = CompletionSamplingTests.idList(prompt)
        let promptText = try #require(Harness.tinyGPT2).decoder.tokenizer.decode(prompt, skipSpecialTokens: false)
        try await Harness.test(try Harness.server()) { client in
            let scored = try await client.post("/v1/completions", """
                {"model": "tiny-gpt2", "prompt": [\(ids)], "max_tokens": 0, "echo": true, "logprobs": 3}
                """)
            #expect(scored.status == .ok, "\(scored.text)")
            let choice = try #require(scored.json["choices"]?.array?.first)
            #expect(choice["text"]?.string == promptText)
            #expect(choice["finish_reason"]?.string == "length")
            #expect(scored.json["usage"]?["completion_tokens"]?.int == 0)
            #expect(scored.json["usage"]?["prompt_tokens"]?.int == prompt.count)
            let lp = try #require(choice["logprobs"])
            #expect(lp["tokens"]?.array?.count == prompt.count, "max_tokens 0: the prompt's tokens only")
            try Self.expectPromptLogprobs(lp, prompt: prompt, logits: logits, n: 3)

            let base = #"{"model": "tiny-gpt2", "prompt": [\#(ids)], "max_tokens": 6, "temperature": 0, "ignore_eos": true, "logprobs": 2"#
            let plain = try await client.post("/v1/completions", base + "}")
            let echoed = try await client.post("/v1/completions", base + #", "echo": true}"#)
            #expect(plain.status == .ok && echoed.status == .ok, "\(plain.text) \(echoed.text)")
            let generated = try #require(plain.json["choices"]?.array?.first?["logprobs"])
            let whole = try #require(echoed.json["choices"]?.array?.first)
            #expect(whole["text"]?.string == promptText + (plain.json["choices"]?.array?.first?["text"]?.string ?? "?"))
            let all = try #require(whole["logprobs"])
            try Self.expectPromptLogprobs(all, prompt: prompt, logits: logits, n: 2)
            let shift = promptText.unicodeScalars.count
            #expect(all["tokens"]?.array?.count == prompt.count + 6)
            for key in ["tokens", "token_logprobs", "top_logprobs"] {
                #expect(Array(all[key]?.array?.dropFirst(prompt.count) ?? []) == generated[key]?.array, "\(key): the completion's follow")
            }
            let offsets = all["text_offset"]?.array?.dropFirst(prompt.count).map { ($0.int ?? -1) - shift }
            #expect(offsets == generated["text_offset"]?.array?.map { $0.int ?? -2 }, "completion offsets follow the echoed prompt")
        }
    }

    /// The scorer's values against the CPU model run from scratch on every prefix, in chunks of
    /// 4 tokens (three forwards through the KV cache) and in one.
    @Test(.enabled(if: Harness.available, serveSkipReason))
    func chunkedScoringMatchesEveryPrefix() throws {
        let (prompt, _) = try Self.fixturePrompt()
        let reference = try Reference()
        let loaded = try ModelFolder.decoder(TestPaths.fixture("gpt2/tiny-gpt2"), tokenizerFallback: TestPaths.asset("gpt2-hf"))
        let backend = CPUBackend(threads: 1)
        let chunked = PromptScorer(model: loaded.model, weights: loaded.weights, backend: backend, chunkTokens: 4)
        let whole = PromptScorer(model: loaded.model, weights: loaded.weights, backend: backend)
        #expect(!chunked.isPrepared, "the scoring plan waits for its first use")
        let a = try chunked.score(prompt, top: 5)
        let b = try whole.score(prompt, top: 5)
        try #require(a.count == prompt.count && b.count == prompt.count)
        #expect(a[0].logprob == nil && a[0].top.isEmpty && a[0].id == prompt[0])
        for i in 1..<prompt.count {
            let lsm = Reference.logSoftmax(try reference.logits(Array(prompt[..<i])))
            #expect(a[i].id == prompt[i])
            #expect(abs(Double(a[i].logprob ?? .nan) - lsm[Int(prompt[i])]) <= 1e-4, "token \(i)")
            #expect(abs((a[i].logprob ?? .nan) - (b[i].logprob ?? .infinity)) <= 1e-5, "token \(i): chunked == whole")
            let order = lsm.indices.sorted { lsm[$0] != lsm[$1] ? lsm[$0] > lsm[$1] : $0 < $1 }
            #expect(a[i].top.map(\.id) == order.prefix(5).map(Int32.init), "token \(i): top 5 ids")
            for t in a[i].top { #expect(abs(Double(t.logprob) - lsm[Int(t.id)]) <= 1e-4) }
        }
        #expect(try chunked.score(prompt, top: 0).dropFirst().allSatisfy { $0.top.isEmpty })
    }

    /// Prepared beside a generation plan, the scoring plan reads that plan's packed weights (no second
    /// copy) and scores exactly as with its own; a backend of another precision packs its own where
    /// its packing differs.
    @Test(.enabled(if: Harness.available, serveSkipReason))
    func scorerSharesTheGenerationPlansWeights() throws {
        let (prompt, _) = try Self.fixturePrompt()
        let loaded = try ModelFolder.decoder(TestPaths.fixture("gpt2/tiny-gpt2"), tokenizerFallback: TestPaths.asset("gpt2-hf"))
        let backend = CPUBackend(threads: 1)
        let context = loaded.model.config.nPositions
        let generationPlan = try loaded.model.plan(outputs: [.nextToken], maxTokens: 64, maxSequences: 2, maxContext: context)
        let generation = try backend.prepare(generationPlan, weights: loaded.weights)
        let own = PromptScorer(model: loaded.model, weights: loaded.weights, backend: backend, chunkTokens: 4)
        let shared = PromptScorer(model: loaded.model, weights: loaded.weights, backend: backend, chunkTokens: 4,
                                  sharingWeightsOf: generation)
        #expect(try shared.score(prompt, top: 5) == own.score(prompt, top: 5))

        let scoring = try loaded.model.plan(outputs: [.logits], maxTokens: 4, maxSequences: 1, maxContext: context)
        let generationWeights = try #require(generation as? CPUPreparedPlan).packedWeights.compactMap { $0?.storage }
        let reused = try #require(try backend.prepare(scoring, weights: loaded.weights, sharingWeightsOf: generation) as? CPUPreparedPlan)
        let packed = reused.packedWeights.compactMap { $0 }
        #expect(!packed.isEmpty && packed.count == generationWeights.count)
        #expect(packed.allSatisfy { p in generationWeights.contains { $0 === p.storage } },
                "every packed weight is the generation plan's")
        let bf16Backend = CPUBackend(threads: 1, precision: .bf16)
        let bf16 = try #require(try bf16Backend.prepare(scoring, weights: loaded.weights, sharingWeightsOf: generation) as? CPUPreparedPlan)
        // bf16 keeps a decoder's first MLP in f32: those (packed alike) are shared, the bf16 ones are not.
        let bf16Packed = bf16.packedWeights.compactMap { $0 }
        #expect(bf16Packed.contains { $0.format == .bf16 })
        #expect(bf16Packed.allSatisfy { p in (p.format == .f32) == generationWeights.contains { $0 === p.storage } },
                "shared exactly where the packing is the same")
    }

    /// Scored while other sequences are batched with it, the prompt's logprobs are those it gets alone.
    @Test(.enabled(if: Harness.available, serveSkipReason))
    func batchedScoringEqualsAlone() async throws {
        let scheduler = try Harness.freshTinyGPT2()
        let (prompt, _) = try Self.fixturePrompt()
        let others = try GPT2Fixture("tiny-gpt2").prompts
        /// The prompt logprobs each choice got (choices without them left out).
        func run(_ sequences: [CompletionScheduler.Sequence]) async throws -> [Int: [TokenGenerator.Sampled]] {
            try await scheduler.collect(sequences).compactMapValues(\.promptLogprobs)
        }
        var params = GenerationParameters(maxNewTokens: 5, sampling: SamplingParameters(temperature: 0, logprobs: 4), ignoreEOS: true)
        let alone = try await run([.init(prompt: prompt, parameters: params, choice: 0, promptLogprobs: 4)])
        params.sampling.logprobs = nil
        scheduler.resetStepStats()
        let sampled = GenerationParameters(maxNewTokens: 3, sampling: SamplingParameters(temperature: 0.8, seed: 3, logprobs: 4))
        let mixed = try await run(others.enumerated().map { .init(prompt: $1, parameters: params, choice: $0 + 1) }
            + [.init(prompt: prompt, parameters: sampled, choice: 0, promptLogprobs: 4)])
        #expect(scheduler.stepStats.widest >= 2, "the scored sequence shared steps with others")
        let a = try #require(alone[0]), b = try #require(mixed[0])
        #expect(mixed.count == 1, "only the sequence that asked gets its prompt's logprobs")
        #expect(a.map(\.id) == prompt && b.map(\.id) == prompt)
        for (x, y) in zip(a, b) {
            #expect(abs((x.logprob ?? 0) - (y.logprob ?? 0)) <= 1e-6 && x.top.map(\.id) == y.top.map(\.id))
        }
    }

    /// Streamed, the first chunk of a choice echoes the prompt with the prompt's logprobs; all chunks
    /// joined equal the whole response's logprobs.
    @Test(.enabled(if: Harness.available, serveSkipReason))
    func streamedPromptLogprobsComeFirst() async throws {
        let (prompt, logits) = try Self.fixturePrompt()
        try await Harness.test(try Harness.server()) { client in
            let request = #"{"model": "tiny-gpt2", "prompt": [\#(CompletionSamplingTests.idList(prompt))], "max_tokens": 5, "#
                + #""temperature": 0, "ignore_eos": true, "echo": true, "logprobs": 1"#
            let whole = try await client.post("/v1/completions", request + "}")
            let lp = try #require(whole.json["choices"]?.array?.first?["logprobs"])
            try Self.expectPromptLogprobs(lp, prompt: prompt, logits: logits, n: 1)
            let streamed = try await client.post("/v1/completions", request + #", "stream": true}"#)
            let (chunks, done) = CompletionRouteTests.events(streamed.text)
            #expect(done)
            let first = try #require(chunks.first?["choices"]?.array?.first)
            #expect(first["logprobs"]?["tokens"]?.array?.count == prompt.count, "the first chunk carries the prompt's tokens")
            let promptText = try #require(Harness.tinyGPT2).decoder.tokenizer.decode(prompt, skipSpecialTokens: false)
            #expect(first["text"]?.string == promptText, "the first chunk echoes the prompt")
            var joined: [String: [JSONValue]] = [:]
            for chunk in chunks {
                guard let c = chunk["choices"]?.array?.first, let piece = c["logprobs"]?.object else { continue }
                for (key, value) in piece { joined[key, default: []] += value.array ?? [] }
            }
            for key in ["tokens", "token_logprobs", "top_logprobs", "text_offset"] {
                #expect(joined[key] == lp[key]?.array, "\(key): streamed == whole")
            }
        }
    }

    /// max_tokens 0 needs echo; n choices of one prompt each carry its logprobs.
    @Test(.enabled(if: Harness.available, serveSkipReason))
    func limits() async throws {
        try await Harness.test(try Harness.server()) { client in
            let zero = try await client.post("/v1/completions", #"{"model": "tiny-gpt2", "prompt": "in", "max_tokens": 0}"#)
            #expect(zero.status == .badRequest)
            #expect(zero.openAIError?.param == "max_tokens")
            let two = try await client.post("/v1/completions", """
                {"model": "tiny-gpt2", "prompt": "in the", "max_tokens": 2, "n": 2, "echo": true, "logprobs": 0, "seed": 1}
                """)
            #expect(two.status == .ok, "\(two.text)")
            let choices = two.json["choices"]?.array ?? []
            #expect(choices.count == 2)
            let promptTokens = two.json["usage"]?["prompt_tokens"]?.int ?? -1
            for c in choices {
                #expect(c["logprobs"]?["tokens"]?.array?.count == promptTokens + 2)
                #expect(c["logprobs"]?["token_logprobs"]?.array?.first?.isNull == true)
            }
            #expect(choices.first?["logprobs"]?["token_logprobs"]?.array?.prefix(promptTokens)
                == choices.last?["logprobs"]?["token_logprobs"]?.array?.prefix(promptTokens))
        }
    }
}
