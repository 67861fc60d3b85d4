import Dispatch
import FlintCore
import FlintJSON
import FlintModels
@testable import FlintServe
import FlintTestSupport
import Hummingbird
import HummingbirdTesting
import Testing

/// `/v1/completions` and the continuous-batching scheduler, on the tiny GPT-2 fixture.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct CompletionRouteTests {
    /// Parses an SSE body: the JSON of each `data:` event, and whether `[DONE]` ended it.
    static func events(_ body: String) -> (chunks: [JSONValue], done: Bool) {
        var chunks: [JSONValue] = []
        var done = false
        for event in body.split(separator: "\n\n", omittingEmptySubsequences: true) {
            guard event.hasPrefix("data: ") else { continue }
            let payload = event.dropFirst(6)
            if payload == "[DONE]" {
                done = true
            } else if let v = try? JSONParser.parse(String(payload)) {
                chunks.append(v)
            }
        }
        return (chunks, done)
    }

    @Test(.enabled(if: Harness.available, serveSkipReason))
    func greedyMatchesTransformers() async throws {
        let fixture = try GPT2Fixture("tiny-gpt2")
        let prompt = fixture.prompts[0]
        let expected = try #require(fixture.greedy?[0])
        let tokenizer = try #require(Harness.tinyGPT2).decoder.tokenizer
        try await Harness.test(try Harness.server()) { client in
            let ids = prompt.map(String.init).joined(separator: ",")
            let r = try await client.post("/v1/completions", """
                {"model": "tiny-gpt2", "prompt": [\(ids)], "max_tokens": 12, "temperature": 0, "ignore_eos": true}
                """)
            #expect(r.status == .ok, "\(r.text)")
            let choice = try #require(r.json["choices"]?.array?.first)
            #expect(choice["text"]?.string == tokenizer.decode(Array(expected.prefix(12)), skipSpecialTokens: true))
            #expect(choice["finish_reason"]?.string == "length")
            #expect(r.json["usage"]?["prompt_tokens"]?.int == prompt.count)
            #expect(r.json["usage"]?["completion_tokens"]?.int == 12)
            #expect(r.json["usage"]?["total_tokens"]?.int == prompt.count + 12)
            #expect(r.json["object"]?.string == "text_completion")
        }
    }

    @Test(.enabled(if: Harness.available, serveSkipReason))
    func streamedTextEqualsWholeText() async throws {
        try await Harness.test(try Harness.server()) { client in
            for sampling in [#""temperature": 0"#, #""temperature": 0.9, "top_k": 40, "top_p": 0.95, "seed": 7"#] {
                let request = #"{"model": "tiny-gpt2", "prompt": "in the is on", "max_tokens": 24, "ignore_eos": true, \#(sampling)"#
                let whole = try await client.post("/v1/completions", request + "}")
                let text = try #require(whole.json["choices"]?.array?.first?["text"]?.string)
                let streamOptions = #", "stream": true, "stream_options": {"include_usage": true}}"#
                let streamed = try await client.post("/v1/completions", request + streamOptions)
                #expect(streamed.headers[.contentType] == "text/event-stream")
                let (chunks, done) = Self.events(streamed.text)
                #expect(done, "the stream ends with [DONE]")
                let textChunks = chunks.filter { !($0["choices"]?.array?.isEmpty ?? true) }
                let joined = textChunks.compactMap { $0["choices"]?.array?.first?["text"]?.string }.joined()
                #expect(joined == text, "streamed chunks joined equal the whole text (\(sampling))")
                #expect(textChunks.last?["choices"]?.array?.first?["finish_reason"]?.string == "length")
                #expect(textChunks.dropLast().allSatisfy { $0["choices"]?.array?.first?["finish_reason"]?.isNull == true })
                #expect(chunks.last?["usage"]?["completion_tokens"]?.int == 24, "the usage chunk comes last")
                #expect(whole.json["usage"]?["prompt_tokens"]?.int == chunks.last?["usage"]?["prompt_tokens"]?.int)
            }
        }
    }

    /// A chunk never ends inside a UTF-8 character: the tiny model emits lone high bytes, so
    /// the text has U+FFFD, but a chunk never ends with one that later bytes would complete.
    @Test(.enabled(if: Harness.available, serveSkipReason))
    func textStreamHoldsBackPartialCharacters() throws {
        let tokenizer = try #require(Harness.tinyGPT2).decoder.tokenizer
        // GPT-2's byte-level tokens: "Ã" is byte C3, "©" A9, "¼" BC; "é" = C3 A9, "ü" = C3 BC.
        let ids = try ["Ã", "©", "Ã", "¼"].map { try #require(tokenizer.id(forToken: $0)) }
        var stream = TextStream(stopStrings: [])
        var pieces: [String] = []
        for id in ids {
            if let t = stream.append(id, tokenizer: tokenizer).text { pieces.append(t) }
        }
        let (rest, whole) = stream.finish(tokenizer: tokenizer)
        if let rest { pieces.append(rest) }
        #expect(whole == "éü")
        #expect(pieces == ["é", "ü"], "each character whole, in its own chunk")
    }

    @Test(.enabled(if: Harness.available, serveSkipReason))
    func stopStringsAndEcho() async throws {
        try await Harness.test(try Harness.server()) { client in
            let base = #"{"model": "tiny-gpt2", "prompt": "in the is on", "max_tokens": 24, "temperature": 0, "ignore_eos": true"#
            let full = try #require(try await client.post("/v1/completions", base + "}").json["choices"]?.array?.first?["text"]?.string)
            let scalars = Array(full.unicodeScalars)
            try #require(scalars.count >= 6)
            let stop = String(String.UnicodeScalarView(scalars[3..<5]))
            let cut = try await client.post("/v1/completions", base + #", "stop": ["\#(stop)"]}"#)
            let choice = try #require(cut.json["choices"]?.array?.first)
            #expect(choice["finish_reason"]?.string == "stop")
            let text = try #require(choice["text"]?.string)
            #expect(full.hasPrefix(text) && !text.contains(stop), "the text stops before \"\(stop)\"")
            let echo = try await client.post("/v1/completions", base + #", "echo": true}"#)
            #expect(echo.json["choices"]?.array?.first?["text"]?.string == "in the is on" + full)
            let sampled = #"{"model": "tiny-gpt2", "prompt": "in the is on", "max_tokens": 24, "temperature": 1, "ignore_eos": true"#
            let n = try await client.post("/v1/completions", sampled + #", "n": 3, "seed": 5}"#)
            let choices = try #require(n.json["choices"]?.array)
            #expect(choices.map { $0["index"]?.int } == [0, 1, 2])
            #expect(Set(choices.compactMap { $0["text"]?.string }).count > 1, "n choices are sampled with different seeds")
        }
    }

    /// Greedy and seeded requests give the same tokens alone and batched with others.
    @Test(.enabled(if: Harness.available, serveSkipReason))
    func batchedEqualsSingle() async throws {
        let model = try Harness.freshTinyGPT2()
        let fixture = try GPT2Fixture("tiny-gpt2")
        let samplings = [SamplingParameters.greedy, SamplingParameters(temperature: 0.8, topK: 20, seed: 11),
                         SamplingParameters(temperature: 1.2, topP: 0.9, repetitionPenalty: 1.3, seed: 3)]
        var sequences: [CompletionScheduler.Sequence] = []
        for (i, prompt) in fixture.prompts.enumerated() {
            for (j, s) in samplings.enumerated() {
                let parameters = GenerationParameters(maxNewTokens: 10 + 3 * i + j, sampling: s, ignoreEOS: true)
                sequences.append(.init(prompt: prompt, parameters: parameters,
                                       choice: sequences.count))
            }
        }
        func run(_ batch: [CompletionScheduler.Sequence], paused: Bool) async throws -> [String] {
            let events = try await model.collect(batch, together: paused)
            return sequences.indices.map { events[$0]?.text ?? "" }
        }
        var alone = [String](repeating: "", count: sequences.count)
        for q in sequences { alone[q.choice] = try await run([q], paused: false)[q.choice] }
        model.resetStepStats()
        let together = try await run(sequences, paused: true)
        #expect(together == alone)
        // 9 sequences, 8 KV slots: 8 prefills in the first step; the 9th joins when one leaves.
        #expect(model.stepStats.widest == 8, "sequences ran together")
        #expect(model.stepStats.steps < alone.count * 10, "fewer steps than one sequence at a time")
        #expect(await eventually { model.slotsInUse == 0 }, "every slot freed")
    }

    /// A consumer that goes away (the client disconnected) cancels its sequence; its slot frees.
    /// The model is held after its first step until the consumer has cancelled, so the sequence
    /// cannot finish first however loaded the machine is.
    @Test(.enabled(if: Harness.available, serveSkipReason))
    func cancellationFreesTheSlot() async throws {
        let model = try Harness.freshTinyGPT2()
        let hold = DispatchSemaphore(value: 0)
        model.afterStep.withLock { $0 = { step in if step == 1 { hold.wait() } } }
        let (events, sink) = AsyncStream.makeStream(of: CompletionScheduler.Event.self)
        let long = CompletionScheduler.Sequence(prompt: [1, 2, 3],
                                                parameters: GenerationParameters(maxNewTokens: 120, sampling: .greedy, ignoreEOS: true),
                                                choice: 0)
        let ids = try model.submit([long], sink: sink)
        sink.onTermination = { _ in model.cancel(ids) }
        let consumer = Task {
            var pieces = 0
            for await e in events {
                if case .done = e { return (pieces, true) }
                pieces += 1
            }
            return (pieces, false)
        }
        #expect(await eventually { model.slotsInUse == 1 })
        consumer.cancel()
        let (_, finished) = await consumer.value
        #expect(!finished, "cancelled before its 120 tokens")
        #expect(model.state.withLock { $0.cancelled.contains(ids[0]) }, "the consumer's end cancelled the sequence")
        hold.signal()
        #expect(await eventually { model.slotsInUse == 0 }, "the cancelled sequence left and freed its slot")
        // The model still serves.
        let (events2, sink2) = AsyncStream.makeStream(of: CompletionScheduler.Event.self)
        let short = CompletionScheduler.Sequence(prompt: [5], parameters: GenerationParameters(maxNewTokens: 2), choice: 0)
        _ = try model.submit([short], sink: sink2)
        var done = false
        for await e in events2 { if case .done = e { done = true; break } }
        #expect(done)
    }

    @Test(.enabled(if: Harness.available, serveSkipReason))
    func completionErrors() async throws {
        try await Harness.test(try Harness.server()) { client in
            let long = Array(repeating: "1", count: 200).joined(separator: ",")
            let tooLong = try await client.post("/v1/completions", #"{"model": "tiny-gpt2", "prompt": [\#(long)]}"#)
            #expect(tooLong.status == .badRequest)
            #expect(tooLong.openAIError?.message.contains("128") == true, "names the context: \(tooLong.text)")
            #expect(tooLong.openAIError?.param == "prompt")
            for field in [#""logit_bias": {"5": 1}"#, #""suffix": "x""#] {
                let r = try await client.post("/v1/completions", #"{"model": "tiny-gpt2", "prompt": "in", \#(field)}"#)
                #expect(r.status == .badRequest, "\(field) is refused, not ignored")
                #expect(r.openAIError?.message.contains("not supported") == true)
            }
            let vocab = try await client.post("/v1/completions", #"{"model": "tiny-gpt2", "prompt": [5, 400]}"#)
            #expect(vocab.status == .badRequest)
            #expect(vocab.openAIError?.message.contains("320") == true)
            let wrongType = try await client.post("/v1/completions", #"{"model": "tiny-gpt2", "prompt": "in", "max_tokens": "ten"}"#)
            #expect(wrongType.status == .badRequest)
            #expect(wrongType.openAIError?.param == "max_tokens")
            let encoder = try await client.post("/v1/completions", #"{"model": "minilm", "prompt": "in"}"#)
            #expect(encoder.status == .badRequest)
            #expect(encoder.openAIError?.param == "model")
            let decoder = try await client.post("/v1/embeddings", #"{"model": "tiny-gpt2", "input": "in"}"#)
            #expect(decoder.status == .badRequest)
        }
    }
}

