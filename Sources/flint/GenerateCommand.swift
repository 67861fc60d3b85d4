import ArgumentParser
import FlintCore
import FlintJSON
import FlintModels
import FlintTokenizers
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `flint generate`: text generation with a GPT-2 model, streamed as it is produced.
struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate text with a GPT-2 model (a folder, or gpt2 / gpt2-medium / gpt2-large / gpt2-xl with random weights).",
        discussion: """
            Greedy unless --temperature, --top-k or --top-p is given (then sampling, temperature 1 by default, \
            seeded by --seed: the same seed gives the same text, alone or in a batch). --prompt streams the \
            completion to stdout, then prints the timings to stderr; --json prints {"text", "ids", "prompt_tokens", \
            "completion_tokens", "ttft_ms", "ms_per_token", "finish_reason"} instead (text and ids: the completion \
            only). --jsonl FILE reads lines {"prompt": ...}, generates them together as one batch (of up to \
            --max-batch; more run in several) and writes one such JSON line per prompt, in input order. \
            A completion ends at <|endoftext|> (unless --ignore-eos), at a --stop string (left out of the text), \
            after --max-new-tokens, or when prompt + completion fill the model's context (n_positions); \
            finish_reason says which: stop, length or context.
            """
    )

    @Option(name: .long, help: "GPT-2 model folder, or a built-in size (random weights): gpt2, gpt2-medium, gpt2-large, gpt2-xl.")
    var model: String

    @Option(name: .long, help: "The prompt.")
    var prompt: String?

    @Option(name: .long, help: "JSON Lines file of prompts {\"prompt\": ...}, generated as one batch.")
    var jsonl: String?

    @Option(name: .long, help: "Tokenizer folder or file (default: the model folder; built-in models: .cache/assets/gpt2-hf).")
    var tokenizer: String?

    @OptionGroup var options: DeviceOptions

    @Option(name: .long, help: "New tokens per prompt, at most.")
    var maxNewTokens = 64

    @Option(name: .long, help: "Sampling temperature (> 0; implies sampling).")
    var temperature: Float?

    @Option(name: .long, help: "Keep the K most likely tokens (implies sampling).")
    var topK: Int?

    @Option(name: .long, help: "Keep the smallest set of tokens whose probability reaches P (implies sampling).")
    var topP: Float?

    @Option(name: .long, help: "Repetition penalty (> 0; 1 = off), as transformers' repetition_penalty.")
    var repetitionPenalty: Float = 1

    @Option(name: .long, help: "Seed of the sampler.")
    var seed: UInt64 = 0

    @Flag(name: .long, help: "Always take the most likely token (the default).")
    var greedy = false

    @Flag(name: .long, help: "Keep generating past <|endoftext|>.")
    var ignoreEos = false

    @Option(name: .long, help: "Stop when the completion contains this text (repeatable).")
    var stop: [String] = []

    @Option(name: .long, help: "Prompts generated together at most (--jsonl runs more in several batches).")
    var maxBatch = 32

    @Flag(name: .long, help: "Print the result as JSON (see above).")
    var json = false

    var samples: Bool { temperature != nil || topK != nil || topP != nil }

    func validate() throws {
        if (prompt == nil) == (jsonl == nil) { throw ValidationError("give either --prompt TEXT or --jsonl FILE") }
        if maxNewTokens < 1 { throw ValidationError("--max-new-tokens must be >= 1") }
        if maxBatch < 1 { throw ValidationError("--max-batch must be >= 1") }
        if greedy && samples { throw ValidationError("--greedy cannot be combined with --temperature, --top-k or --top-p") }
        if let temperature, !(temperature > 0 && temperature.isFinite) {
            throw ValidationError("--temperature must be > 0 (use --greedy for 0)")
        }
        if let topK, topK < 1 { throw ValidationError("--top-k must be >= 1") }
        if let topP, !(topP > 0 && topP <= 1) { throw ValidationError("--top-p must be in (0, 1]") }
        if !(repetitionPenalty > 0 && repetitionPenalty.isFinite) { throw ValidationError("--repetition-penalty must be > 0") }
    }

    func run() throws {
        var texts: [String] = []
        if let prompt { texts = [prompt] }
        if let jsonl {
            texts = try Console.readJSONLines(jsonl).map { line, value in
                guard let t = value["prompt"]?.string else { throw CommandError("\(jsonl):\(line): expected {\"prompt\": ...}") }
                return t
            }
            if texts.isEmpty { throw CommandError("\(jsonl): no prompts") }
        }
        let m = try ModelFolder.decoder(model, tokenizerFallback: Assets.gpt2Tokenizer)
        guard let tokenizerPath = tokenizer ?? m.tokenizerPath else {
            throw CommandError(
                "no tokenizer for \(model): pass --tokenizer (built-in models use \(Assets.folder)/gpt2-hf from scripts/fetch-assets)")
        }
        let tok: Tokenizer
        do { tok = try Tokenizer.load(tokenizerPath) } catch { throw CommandError("\(error)") }
        let prompts = try texts.map { try TextGenerator.encode($0, tokenizer: tok, bosTokenId: m.config.bosTokenId) }

        let c = m.config
        let longest = prompts.map(\.count).max()!
        if longest >= c.nPositions {
            let i = prompts.firstIndex { $0.count == longest }!
            throw CommandError(
                "prompt \(i) has \(longest) tokens; \(model)'s context holds \(c.nPositions) (n_positions), prompt and completion together")
        }
        let backend = try options.backend()
        // One batch of up to --max-batch prompts; its prefill runs in forwards of up to 8192 tokens.
        let batch = min(prompts.count, maxBatch)
        let prefillTokens = prompts.map(\.count).sorted(by: >).prefix(batch).reduce(0, +)
        let plan = try m.model.plan(outputs: [.nextToken], maxTokens: max(longest, batch, min(prefillTokens, 8192)), maxSequences: batch,
                                    maxContext: min(c.nPositions, longest + min(maxNewTokens, c.nPositions)), configPath: m.configPath)
        if !json { Console.progress("loading \(m.path) on \(backend.deviceDescription)...") }
        let prepared = try backend.prepare(plan, weights: Console.loading(m.weights, plan))
        let generator = TextGenerator(tokenizer: tok, generator: try TokenGenerator(prepared: prepared, eosTokenIds: c.eosTokenIds))
        let sampling =
            samples
            ? SamplingParameters(
                temperature: temperature ?? 1, topK: topK ?? 0, topP: topP ?? 1, repetitionPenalty: repetitionPenalty, seed: seed)
            : SamplingParameters(temperature: 0, repetitionPenalty: repetitionPenalty, seed: seed)
        let parameters = GenerationParameters(maxNewTokens: maxNewTokens, sampling: sampling, ignoreEOS: ignoreEos, stopStrings: stop)
        let streaming = jsonl == nil && !json
        let completions = try generator.generate(prompts: prompts, parameters: parameters) { _, text in
            if streaming { Console.output(text) }
        }
        if streaming {
            Console.output("\n")
            let r = completions[0]
            Console.progress(
                "[\(r.promptTokens) prompt tokens, \(r.ids.count) generated (\(r.finishReason.rawValue)); "
                    + "time to first token \(Table.fmt(r.timeToFirstTokenMs)) ms, \(Table.fmt(r.msPerToken)) ms/token on \(backend.deviceDescription)]"
            )
            return
        }
        for r in completions {
            let doc = JSONValue.object([
                ("text", .string(r.text)), ("ids", .array(r.ids.map { .number(Double($0)) })),
                ("prompt_tokens", .number(Double(r.promptTokens))), ("completion_tokens", .number(Double(r.ids.count))),
                ("ttft_ms", .number(r.timeToFirstTokenMs)), ("ms_per_token", .number(r.msPerToken)),
                ("finish_reason", .string(r.finishReason.rawValue)),
            ])
            Console.output(doc.serialized + "\n")
        }
    }
}
