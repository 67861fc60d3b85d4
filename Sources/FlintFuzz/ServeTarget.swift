import FlintCPU
import FlintJSON
import FlintModels
import FlintServe
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The `serve` target: request bodies of every route FlintServe decodes (OpenAI embeddings and
/// completions, TEI embed and tokenize, KServe v2 infer), through `FlintServer.decode`, the code
/// the handlers run, up to the point where a request would be queued.
enum ServeTarget {
    /// MiniLM ("minilm") and the tiny GPT-2 fixture with GPT-2's tokenizer ("tiny-gpt2"), as the
    /// server tests serve them; loaded once. Needs scripts/fetch-assets.
    static let server: FlintServer = {
        let assets = getenv("FLINT_ASSETS").map { String(cString: $0) } ?? ".cache/assets"
        let fixtures = getenv("FLINT_FIXTURES").map { String(cString: $0) } ?? "Tests/Fixtures"
        let limits = BatchLimits(maxBatchTokens: 4096, maxBatchRequests: 16, maxQueue: 64)
        let backend = CPUBackend(threads: 1)
        do {
            let encoder = try ModelFolder.openEncoder(assets + "/all-MiniLM-L6-v2", backend: backend, maxBatchTokens: 4096,
                                                      maxSequences: 16)
            let decoder = try ModelFolder.openDecoder(fixtures + "/gpt2/tiny-gpt2", backend: backend, maxSequences: 2, maxTokens: 64,
                                                      tokenizerFallback: assets + "/gpt2-hf")
            let models = try ServedModels([("minilm", .encoder(EmbeddingScheduler(pipeline: encoder, limits: limits))),
                                           ("tiny-gpt2", .decoder(CompletionScheduler(decoder: decoder, limits: limits)))])
            return FlintServer(models: models, options: ServeOptions(limits: limits))
        } catch {
            fatalError("flint-fuzz: the serve target needs the test assets (scripts/fetch-assets) and Tests/Fixtures: \(error)")
        }
    }()

    /// First byte: the route (value % 5, in `ServeRoute.allCases` order) and, for KServe, the model
    /// in the path (value / 5 % 3: minilm, tiny-gpt2, an unknown name); then the body.
    static func run(_ bytes: [UInt8]) {
        guard let first = bytes.first else { return }
        let route = ServeRoute.allCases[Int(first) % ServeRoute.allCases.count]
        let model = ["minilm", "tiny-gpt2", "missing"][Int(first) / 5 % 3]
        do {
            verify(try server.decode(route, body: Array(bytes.dropFirst()), model: model), route)
        } catch {
            verify(error, route)
        }
    }

    /// A decoded request keeps every limit a model relies on.
    static func verify(_ r: DecodedRequest, _ route: ServeRoute) {
        FuzzTarget.check(route == .teiTokenize ? r.inputs.isEmpty : !r.inputs.isEmpty, "\(route): \(r.inputs.count) inputs")
        for input in r.inputs {
            FuzzTarget.check(!input.isEmpty && input.count <= r.maxInputTokens,
                             "\(route): an input of \(input.count) tokens (limit \(r.maxInputTokens))")
            FuzzTarget.check(input.allSatisfy { $0 >= 0 && Int($0) < r.vocabSize }, "\(route): an id outside 0..<\(r.vocabSize)")
        }
        switch route {
        case .embeddings, .teiEmbed, .kserveInfer:
            FuzzTarget.check(r.truncated.count == r.inputs.count && r.sequences.isEmpty, "\(route): decoded shape")
        case .completions:
            let n = r.sequences.count / max(1, r.inputs.count)
            FuzzTarget.check(n >= 1 && n <= 16 && r.sequences.count == n * r.inputs.count, "completions: \(r.sequences.count) sequences")
            for (k, q) in r.sequences.enumerated() {
                FuzzTarget.check(q.choice == k && q.prompt == r.inputs[k / n], "completions: sequence \(k) is choice \(q.choice)")
                // max_tokens 0 only scores the prompt, which takes echo: the sequence then reports the prompt's logprobs or nothing.
                FuzzTarget.check((q.parameters.maxNewTokens >= 1 || q.promptLogprobs == q.parameters.sampling.logprobs)
                                 && q.parameters.stopStrings.count <= 4, "completions: parameters")
                FuzzTarget.check(q.promptLogprobs == nil || q.promptLogprobs == q.parameters.sampling.logprobs,
                                 "completions: prompt logprobs \(String(describing: q.promptLogprobs))")
                FuzzTarget.check((try? q.parameters.sampling.validate()) != nil,
                                 "completions: sampling \(q.parameters.sampling) is invalid")
            }
        case .teiTokenize:
            for (utf8Count, tokens) in r.tokenized {
                for t in tokens {
                    FuzzTarget.check(t.id >= 0 && Int(t.id) < r.vocabSize, "tokenize: id \(t.id)")
                    FuzzTarget.check(t.special || (0 <= t.start && t.start <= t.stop && t.stop <= utf8Count),
                                     "tokenize: span \(t.start)..<\(t.stop)")
                }
            }
        }
    }

    /// A refusal is a client error, and its JSON body (in the route's shape) parses back to the message.
    static func verify(_ error: ServeError, _ route: ServeRoute) {
        let (status, body) = error.rendered(route.style)
        FuzzTarget.check((400..<500).contains(Int(status.code)), "\(route): status \(status.code) for \(error.message)")
        FuzzTarget.check(!error.message.isEmpty, "\(route): an empty error message")
        let text = body.serialized
        guard let json = try? JSONParser.parse(text) else {
            return FuzzTarget.check(false, "\(route): the error body is not JSON: \(text.prefix(200))")
        }
        let message = route.style == .openAI ? json["error"]?["message"] : json["error"]
        FuzzTarget.check(message?.string == error.message, "\(route): the error body lost its message: \(text.prefix(200))")
    }
}
