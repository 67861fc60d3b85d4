import ArgumentParser
import FlintCore
import FlintModels
import FlintServe
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `flint serve`: an HTTP inference server (OpenAI, TEI and KServe v2 APIs) with dynamic batching
/// for encoders and continuous batching for GPT-2.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve models over HTTP: OpenAI /v1 (embeddings, completions, answer), TEI (/embed, /predict, /rerank, /tokenize, "
            + "/info, /health) and KServe v2.",
        discussion: """
            Each --model [NAME=]PATH is an encoder folder (BERT, DistilBERT, RoBERTa, XLM-RoBERTa: embeddings; with a \
            *ForSequenceClassification head also /predict, and /rerank for one label; *ForQuestionAnswering: /v1/answer) \
            or a GPT-2 folder or built-in size \
            (completions; built-ins use random weights and the GPT-2 tokenizer from .cache/assets/gpt2-hf). NAME defaults to \
            the folder's last path component. Each model runs on its own thread: encoder requests are batched whenever the \
            model is idle (up to --max-batch-tokens real tokens and --max-batch-requests requests); GPT-2 requests join and \
            leave the running batch between decode steps (--max-batch-requests KV slots of the model's whole context). \
            Prints `listening on http://HOST:PORT` when ready. SIGTERM/SIGINT: readiness turns 503, in-flight requests and \
            streams finish (up to --drain-timeout seconds), then the process exits 0.
            """
    )

    @Option(name: .long, help: "[NAME=]PATH: a model folder or a built-in GPT-2 name (repeatable).")
    var model: [String] = []

    @Option(name: .long, help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(name: .long, help: "Port to listen on (0: any free port).")
    var port = 8080

    @OptionGroup var device: DeviceOptions

    @Option(name: .long, help: "Real tokens per formed batch, at most.")
    var maxBatchTokens = 16384

    @Option(name: .long, help: "Requests per encoder batch; KV slots (sequences generated at once) per GPT-2.")
    var maxBatchRequests = 64

    @Option(name: .long, help: "Requests waiting (not running) per model before 429.")
    var maxQueue = 512

    @Option(name: .long, help: "Largest request body (bytes, or with KiB/MiB/GiB).")
    var maxBodyBytes = "2MiB"

    @Option(name: .long, help: "Require `Authorization: Bearer KEY` (health routes stay open).")
    var apiKey: String?

    @Option(name: .long, help: "Seconds in-flight requests get to finish after SIGTERM/SIGINT.")
    var drainTimeout: Double = 30

    func validate() throws {
        if model.isEmpty { throw ValidationError("give at least one --model [NAME=]PATH") }
        if !(0...65535).contains(port) { throw ValidationError("--port must be in 0...65535") }
        if maxBatchTokens < 1 { throw ValidationError("--max-batch-tokens must be >= 1") }
        if maxBatchRequests < 1 { throw ValidationError("--max-batch-requests must be >= 1") }
        if maxQueue < 0 { throw ValidationError("--max-queue must be >= 0") }
        if ServeOptions.parseBytes(maxBodyBytes) == nil {
            throw ValidationError("--max-body-bytes must be a byte count such as 2MiB or 65536")
        }
        if !(drainTimeout >= 0 && drainTimeout.isFinite) { throw ValidationError("--drain-timeout must be >= 0 seconds") }
        if let apiKey, apiKey.isEmpty { throw ValidationError("--api-key must not be empty") }
    }

    func run() async throws {
        FlintServer.bootstrapLogging()
        let backend = try device.backend()
        let limits = BatchLimits(maxBatchTokens: maxBatchTokens, maxBatchRequests: maxBatchRequests, maxQueue: maxQueue)
        var served: [(name: String, model: ServedModel)] = []
        for option in model {
            let (name, path) = ServedModels.parseModelOption(option)
            Console.progress("loading \(name) from \(path) on \(backend.deviceDescription)...")
            switch try ModelFolder.kind(of: path) {
            case .encoder:
                let pipeline = try ModelFolder.openServedEncoder(path, backend: backend, maxBatchTokens: maxBatchTokens,
                                                                 maxSequences: maxBatchRequests, weightProgress: Console.weightProgress())
                served.append((name, .encoder(EmbeddingScheduler(pipeline: pipeline, limits: limits))))
            case .decoder:
                let decoder = try ModelFolder.openDecoder(path, backend: backend, maxSequences: maxBatchRequests, maxTokens: maxBatchTokens,
                                                          tokenizerFallback: Assets.gpt2Tokenizer, weightProgress: Console.weightProgress())
                Console.progress("\(name): \(maxBatchRequests) KV slots of \(decoder.config.nPositions) positions, "
                    + FlintError.format(bytes: decoder.generator.prepared.arenaBytes) + " arena")
                served.append((name, .decoder(CompletionScheduler(decoder: decoder, limits: limits))))
            }
        }
        let dtype = switch backend.dtype {
        case .f16: "float16"
        case .bf16: "bfloat16"
        case .i8: "int8"
        default: "float32"
        }
        let server = FlintServer(models: try ServedModels(served),
                                 options: ServeOptions(host: host, port: port, limits: limits,
                                                       maxBodyBytes: ServeOptions.parseBytes(maxBodyBytes)!, apiKey: apiKey,
                                                       drainTimeout: drainTimeout),
                                 dtypeName: dtype)
        try await server.run { url in Console.output("listening on \(url)\n") }
    }
}
