import FlintCore
import FlintJSON
import FlintModels
import Hummingbird
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A parsed `POST /v1/completions` request.
struct CompletionRequest {
    var model: String
    var scheduler: CompletionScheduler
    /// Per prompt: its ids and its text (for `echo`).
    var prompts: [(ids: [Int32], text: String)]
    var parameters: GenerationParameters
    var n: Int
    var stream: Bool
    var includeUsage: Bool
    var echo: Bool
    /// Whether choices carry `logprobs` (OpenAI's `logprobs`, 0...5, is in `parameters.sampling`);
    /// with `echo`, the prompt's tokens too.
    var wantsLogprobs: Bool { parameters.sampling.logprobs != nil }

    /// Fields OpenAI defines that Flint does not implement: refused unless absent or neutral.
    static let unsupported: [(field: String, isNeutral: @Sendable (JSONValue) -> Bool)] = [
        ("logit_bias", { $0.isNull || $0.object?.isEmpty == true }),
        ("suffix", { $0.isNull }),
    ]

    init(_ body: RequestJSON, models: ServedModels) throws(ServeError) {
        (model, scheduler) = try models.decoder(try body.string("model"), route: "/v1/completions")
        for (field, isNeutral) in Self.unsupported {
            if let v = body.value[field], !isNeutral(v) {
                throw .invalid("\(field) is not supported by this server", param: field)
            }
        }
        let config = scheduler.decoder.config
        let tokenizer = scheduler.decoder.tokenizer
        var prompts: [(ids: [Int32], text: String)] = []
        for (i, p) in try TextOrTokens.parse(body.value["prompt"], field: "prompt", vocabSize: config.vocabSize).enumerated() {
            switch p {
            case let .text(text):
                let ids: [Int32]
                do { ids = try TextGenerator.encode(text, tokenizer: tokenizer, bosTokenId: config.bosTokenId) } catch {
                    throw .invalid("prompt[\(i)]: \(error)", param: "prompt")
                }
                if let bad = ids.first(where: { $0 >= config.vocabSize }) {
                    throw .invalid("prompt[\(i)]: the tokenizer gives id \(bad), outside the model's vocabulary (0..<\(config.vocabSize))",
                                   param: "prompt")
                }
                prompts.append((ids, text))
            case let .tokens(ids):
                prompts.append((ids, tokenizer.decode(ids, skipSpecialTokens: false)))
            }
            let count = prompts.last!.ids.count
            guard count < scheduler.maxContext else {
                throw .invalid("prompt[\(i)] has \(count) tokens; the model's context holds \(scheduler.maxContext) (prompt and completion "
                    + "together), so at most \(scheduler.maxContext - 1)", param: "prompt")
            }
        }
        self.prompts = prompts
        n = try body.int("n", in: 1...max(1, scheduler.limits.maxBatchRequests)) ?? 1
        if let bestOf = try body.int("best_of", in: 1...Int(Int32.max)), bestOf != n {
            throw .invalid("best_of other than n is not supported by this server", param: "best_of")
        }
        echo = try body.bool("echo") ?? false
        // OpenAI and vLLM take max_tokens 0 with echo: the prompt alone (scored, with logprobs).
        let maxTokens = try body.int("max_tokens", in: 0...Int(Int32.max)) ?? 16
        guard maxTokens > 0 || echo else {
            throw .invalid("max_tokens must be at least 1 (0 only with echo: the prompt alone, scored when logprobs is set)",
                           param: "max_tokens")
        }
        let temperature = try body.number("temperature", in: 0...1000) ?? 1
        let topP = try body.number("top_p", in: 0...1) ?? 1
        guard topP > 0 else { throw .invalid("top_p must be in (0, 1], got 0", param: "top_p") }
        // vLLM's convention: -1 (or 0) turns top-k off.
        let topK = try body.int("top_k", in: -1...Int(Int32.max)) ?? 0
        let penalty = try body.number("repetition_penalty", in: 0...1000) ?? 1
        guard penalty > 0 else { throw .invalid("repetition_penalty must be > 0, got 0", param: "repetition_penalty") }
        // OpenAI's ranges; applied to the counts of tokens generated so far, as vLLM does.
        let presence = try body.number("presence_penalty", in: -2...2) ?? 0
        let frequency = try body.number("frequency_penalty", in: -2...2) ?? 0
        let logprobs = try body.int("logprobs", in: 0...SamplingParameters.maxLogprobs)
        let seed = try body.int("seed", in: Int(Int64.min / 2)...Int(Int64.max / 2)).map { UInt64(bitPattern: Int64($0)) }
            ?? UInt64.random(in: 0...UInt64.max)
        let stops = try body.strings("stop") ?? []
        guard stops.count <= 4 else { throw .invalid("stop takes at most 4 strings, got \(stops.count)", param: "stop") }
        parameters = GenerationParameters(
            maxNewTokens: maxTokens,
            sampling: SamplingParameters(temperature: Float(temperature), topK: max(0, topK), topP: Float(topP),
                                         repetitionPenalty: Float(penalty), presencePenalty: Float(presence),
                                         frequencyPenalty: Float(frequency), seed: seed, logprobs: logprobs),
            ignoreEOS: try body.bool("ignore_eos") ?? false, stopStrings: stops)
        stream = try body.bool("stream") ?? false
        includeUsage = false
        if let options = body.value["stream_options"], !options.isNull {
            guard case .object = options else { throw .badField("stream_options", "expected an object, got \(options.typeName)") }
            if let usage = options["include_usage"], !usage.isNull {
                guard let b = usage.bool else {
                    throw .badField("stream_options.include_usage", "expected a boolean, got \(usage.typeName)")
                }
                includeUsage = b
            }
        }
    }

    /// One sequence per prompt and choice; choice `p · n + j` (OpenAI's order), seed `seed + j`.
    var sequences: [CompletionScheduler.Sequence] {
        prompts.indices.flatMap { p in
            (0..<n).map { j in
                var params = parameters
                params.sampling.seed = parameters.sampling.seed &+ UInt64(j)
                return CompletionScheduler.Sequence(prompt: prompts[p].ids, parameters: params, choice: p * n + j,
                                                   promptLogprobs: echo ? parameters.sampling.logprobs : nil)
            }
        }
    }
}

extension FlintServer {
    /// `POST /v1/completions`, whole or as Server-Sent Events.
    func completions(_ request: Request, context: ServeContext) async throws(ServeError) -> Response {
        let body = try await RequestJSON.read(request, limit: options.maxBodyBytes)
        let parsed = try CompletionRequest(body, models: models)
        let (events, sink) = AsyncStream.makeStream(of: CompletionScheduler.Event.self)
        let sequences = parsed.sequences
        let ids: [Int]
        do {
            ids = try parsed.scheduler.submit(sequences, sink: sink)
        } catch where error.code == "queue_full" {
            throw .queueFull(model: parsed.model, limit: parsed.scheduler.limits.maxQueue)
        }
        let scheduler = parsed.scheduler
        sink.onTermination = { _ in scheduler.cancel(ids) }
        let id = "cmpl-\(String(UInt64.random(in: 0...UInt64.max), radix: 16))"
        let created = Int(time(nil))
        if parsed.stream {
            return streamed(parsed, events: events, ids: ids, id: id, created: created)
        }
        // Nothing is written until the whole completion is done, so only the connection can tell that
        // the client left: then the events end, the sequences are cancelled and their slots freed.
        let watcher = await context.clientDisconnect()
        let watch = watcher?.onDisconnect { sink.finish() }
        defer { watcher?.remove(watch) }
        var texts = [String](repeating: "", count: sequences.count)
        let tokenizer = parsed.scheduler.decoder.tokenizer
        var logprobs = [CompletionLogprobs](repeating: CompletionLogprobs(), count: sequences.count)
        var reasons = [String](repeating: "", count: sequences.count)
        var usage = (prompt: 0, completion: 0)
        var remaining = sequences.count
        await withTaskCancellationHandler {
            for await event in events {
                switch event {
                case .text: break
                case let .promptLogprobs(choice, prompt):
                    logprobs[choice].appendPrompt(prompt, promptText: parsed.prompts[choice / parsed.n].text, tokenizer: tokenizer)
                case let .logprobs(choice, token): logprobs[choice].append(token, tokenizer: tokenizer)
                case let .done(choice, reason, _, text, promptTokens, completionTokens):
                    (texts[choice], reasons[choice]) = (text, reason)
                    usage.prompt += choice % parsed.n == 0 ? promptTokens : 0
                    usage.completion += completionTokens
                    remaining -= 1
                case let .failed(choice, message):
                    (texts[choice], reasons[choice]) = ("", "error: \(message)")
                    remaining -= 1
                }
                if remaining == 0 { break }
            }
        } onCancel: {
            scheduler.cancel(ids)
        }
        if let failure = reasons.first(where: { $0.hasPrefix("error: ") }) { throw .internalError(String(failure.dropFirst(7))) }
        guard remaining == 0 else { throw .clientClosed }
        let choices: [JSONOut] = texts.indices.map { c in
            let text = parsed.echo ? parsed.prompts[c / parsed.n].text + texts[c] : texts[c]
            return .object([("index", .int(c)), ("text", .string(text)), ("logprobs", parsed.wantsLogprobs ? logprobs[c].json : .null),
                            ("finish_reason", .string(reasons[c]))])
        }
        return .json(.object([
            ("id", .string(id)), ("object", .string("text_completion")), ("created", .int(created)), ("model", .string(parsed.model)),
            ("choices", .array(choices)), ("usage", Self.usage(usage.prompt, usage.completion)),
        ]))
    }

    static func usage(_ prompt: Int, _ completion: Int) -> JSONOut {
        .object([("prompt_tokens", .int(prompt)), ("completion_tokens", .int(completion)), ("total_tokens", .int(prompt + completion))])
    }

    /// The SSE body: a chunk per text piece, the last text chunk of a choice with its
    /// finish_reason, a usage chunk when asked, then `[DONE]`. A client that goes away cancels
    /// the request's sequences.
    private func streamed(_ parsed: CompletionRequest, events: AsyncStream<CompletionScheduler.Event>, ids: [Int], id: String,
                          created: Int) -> Response {
        let scheduler = parsed.scheduler
        let head: [(String, JSONOut)] = [("id", .string(id)), ("object", .string("text_completion")), ("created", .int(created)),
                                         ("model", .string(parsed.model))]
        let chunk: @Sendable (Int, String, String?, JSONOut) -> ByteBuffer = { choice, text, reason, logprobs in
            let choices: JSONOut = .array([.object([("index", .int(choice)), ("text", .string(text)), ("logprobs", logprobs),
                                                    ("finish_reason", reason.map(JSONOut.string) ?? .null)])])
            return ByteBuffer(string: "data: " + JSONOut.object(head + [("choices", choices)]).serialized + "\n\n")
        }
        let total = ids.count
        let body = ResponseBody { writer in
            do {
                // With logprobs, a choice's echoed prompt waits for its prompt's logprobs (the chunk carries them).
                if parsed.echo && !parsed.wantsLogprobs {
                    for c in 0..<total { try await writer.write(chunk(c, parsed.prompts[c / parsed.n].text, nil, .null)) }
                }
                // Each text chunk carries the logprobs of the tokens whose text it completes.
                let tokenizer = scheduler.decoder.tokenizer
                var logprobs = [CompletionLogprobs](repeating: CompletionLogprobs(), count: total)
                func take(_ choice: Int) -> JSONOut { parsed.wantsLogprobs ? logprobs[choice].takeChunk() : .null }
                var remaining = total
                var usage = (prompt: 0, completion: 0)
                for await event in events {
                    switch event {
                    case let .promptLogprobs(choice, prompt):
                        let text = parsed.prompts[choice / parsed.n].text
                        logprobs[choice].appendPrompt(prompt, promptText: text, tokenizer: tokenizer)
                        try await writer.write(chunk(choice, text, nil, take(choice)))
                    case let .text(choice, text):
                        try await writer.write(chunk(choice, text, nil, take(choice)))
                    case let .logprobs(choice, token):
                        logprobs[choice].append(token, tokenizer: tokenizer)
                    case let .done(choice, reason, rest, _, promptTokens, completionTokens):
                        try await writer.write(chunk(choice, rest, reason, take(choice)))
                        usage.prompt += choice % parsed.n == 0 ? promptTokens : 0
                        usage.completion += completionTokens
                        remaining -= 1
                    case let .failed(_, message):
                        let error = ServeError.internalError(message)
                        try await writer.write(ByteBuffer(string: "data: " + error.openAIBody.serialized + "\n\n"))
                        remaining -= 1
                    }
                    if remaining == 0 { break }
                }
                if parsed.includeUsage {
                    let doc = JSONOut.object(head + [("choices", .array([])), ("usage", Self.usage(usage.prompt, usage.completion))])
                    try await writer.write(ByteBuffer(string: "data: " + doc.serialized + "\n\n"))
                }
                try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                try await writer.finish(nil)
            } catch {
                scheduler.cancel(ids)
                throw error
            }
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
    }
}
