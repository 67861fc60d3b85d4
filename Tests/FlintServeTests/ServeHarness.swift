import FlintCPU
import FlintCore
import FlintJSON
import FlintModels
@testable import FlintServe
import FlintTestSupport
import Hummingbird
import HummingbirdTesting
import Testing

/// The models the server tests share (loading MiniLM once), and helpers to call routes.
enum Harness {
    static let backend = CPUBackend(threads: 2)
    static let limits = BatchLimits(maxBatchTokens: 4096, maxBatchRequests: 16, maxQueue: 64)

    /// MiniLM (from `scripts/fetch-assets`), or nil when the assets are missing.
    static let miniLM: EmbeddingScheduler? = {
        guard let folder = TestPaths.asset("all-MiniLM-L6-v2") else { return nil }
        return try? EmbeddingScheduler(pipeline: ModelFolder.openEncoder(folder, backend: backend, maxBatchTokens: 4096, maxSequences: 16,
                                                                           normalize: false), limits: limits)
    }()

    /// The tiny GPT-2 fixture with GPT-2's tokenizer (ids 0..<320 only).
    static let tinyGPT2: CompletionScheduler? = {
        guard let tokenizer = TestPaths.asset("gpt2-hf") else { return nil }
        let decoder = try? ModelFolder.openDecoder(TestPaths.fixture("gpt2/tiny-gpt2"), backend: backend, maxSequences: 8, maxTokens: 512,
                                                   tokenizerFallback: tokenizer)
        return decoder.map { CompletionScheduler(decoder: $0, limits: limits) }
    }()

    static var available: Bool { miniLM != nil && tinyGPT2 != nil }

    /// MiniLM as `flint embed` runs it (its own plan, normalized as the folder says): the reference.
    static let embedReference: EncoderPipeline? = {
        guard let folder = TestPaths.asset("all-MiniLM-L6-v2") else { return nil }
        return try? EncoderPipeline(folder: folder, backend: backend, outputs: [.sentenceEmbedding])
    }()

    /// A MiniLM scheduler of its own (own plan and arena: suites run in parallel, and two
    /// schedulers must never run one prepared plan at once).
    static func freshMiniLM(_ limits: BatchLimits = limits) throws -> EmbeddingScheduler {
        EmbeddingScheduler(pipeline: try ModelFolder.openEncoder(try #require(TestPaths.asset("all-MiniLM-L6-v2")), backend: backend,
                                                                  maxBatchTokens: 4096, maxSequences: 16, normalize: false), limits: limits)
    }

    static func freshTinyGPT2() throws -> CompletionScheduler {
        let decoder = try ModelFolder.openDecoder(TestPaths.fixture("gpt2/tiny-gpt2"), backend: backend, maxSequences: 8, maxTokens: 512,
                                                  tokenizerFallback: TestPaths.asset("gpt2-hf"))
        return CompletionScheduler(decoder: decoder, limits: limits)
    }

    static func server(_ options: ServeOptions = ServeOptions(limits: limits)) throws -> FlintServer {
        let models = try ServedModels([("minilm", .encoder(try #require(miniLM))), ("tiny-gpt2", .decoder(try #require(tinyGPT2)))])
        return FlintServer(models: models, options: options)
    }

    /// Runs `body` against `server`'s router in process.
    static func test(_ server: FlintServer, _ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let app = Application(router: server.router())
        try await app.test(.router, body)
    }
}

/// What a `CompletionScheduler` sent for one choice.
struct ChoiceEvents {
    /// `.promptLogprobs`, when the sequence asked for its prompt's.
    var promptLogprobs: [TokenGenerator.Sampled]?
    /// `.logprobs` in order, one per generated token (when asked).
    var logprobs: [TokenGenerator.Sampled] = []
    /// The whole completion `.done` reported (nil: not done).
    var text: String?
    /// `.failed`'s message.
    var failure: String?
}

extension CompletionScheduler {
    /// Submits `batch` and collects its events per choice until every sequence is done or failed.
    /// `together`: the scheduler is paused while the batch is queued, so its first step takes them all.
    func collect(_ batch: [Sequence], together: Bool = true) async throws -> [Int: ChoiceEvents] {
        let (events, sink) = AsyncStream.makeStream(of: Event.self)
        if together { setPaused(true) }
        _ = try submit(batch, sink: sink)
        if together { setPaused(false) }
        var out: [Int: ChoiceEvents] = [:]
        var remaining = batch.count
        for await e in events {
            switch e {
            case let .promptLogprobs(choice, tokens): out[choice, default: ChoiceEvents()].promptLogprobs = tokens
            case let .logprobs(choice, token): out[choice, default: ChoiceEvents()].logprobs.append(token)
            case let .done(choice, _, _, text, _, _):
                out[choice, default: ChoiceEvents()].text = text
                remaining -= 1
            case let .failed(choice, message):
                out[choice, default: ChoiceEvents()].failure = message
                remaining -= 1
            case .text: break
            }
            if remaining == 0 { break }
        }
        return out
    }
}

extension TestClientProtocol {
    /// POSTs a JSON body.
    func post(_ uri: String, _ json: String, headers: HTTPFields = [:]) async throws -> TestResponse {
        var h = headers
        h[.contentType] = "application/json"
        return try await execute(uri: uri, method: .post, headers: h, body: ByteBuffer(string: json))
    }

    func get(_ uri: String, headers: HTTPFields = [:]) async throws -> TestResponse {
        try await execute(uri: uri, method: .get, headers: headers)
    }
}

extension TestResponse {
    var text: String { String(buffer: body) }
    var json: JSONValue { (try? JSONParser.parse(text)) ?? .null }

    /// The OpenAI error's fields, or nil.
    var openAIError: (message: String, param: String?, code: String?)? {
        guard let e = json["error"], let m = e["message"]?.string else { return nil }
        return (m, e["param"]?.string, e["code"]?.string)
    }
}

/// Float vectors equal within `tolerance`, element by element.
func expectClose(_ a: [Float], _ b: [Float], tolerance: Float = 1e-5, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    guard a.count == b.count else {
        Issue.record("\(what): \(a.count) vs \(b.count) values", sourceLocation: sourceLocation)
        return
    }
    let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
    #expect(worst <= tolerance, "\(what): largest difference \(worst)", sourceLocation: sourceLocation)
}

/// Decodes base64 little-endian f32 (the inverse of the server's `encoding_format: "base64"`).
func decodeBase64Floats(_ text: String) -> [Float] {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    var lookup = [UInt8: UInt32]()
    for (i, c) in alphabet.enumerated() { lookup[c] = UInt32(i) }
    var bytes: [UInt8] = []
    var buffer: UInt32 = 0
    var bits = 0
    for c in text.utf8 where c != UInt8(ascii: "=") {
        buffer = buffer << 6 | lookup[c]!
        bits += 6
        if bits >= 8 {
            bits -= 8
            bytes.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits)))
        }
    }
    return stride(from: 0, to: bytes.count - 3, by: 4).map { i in
        Float(bitPattern: UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24)
    }
}

/// Polls `condition` every 10 ms for at most `seconds`.
func eventually(seconds: Double = 10, _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}

let serveSkipReason: Comment = "needs MiniLM and the GPT-2 tokenizer: \(TestPaths.missingAssetsReason)"
