import FlintCore
import Synchronization

/// The log-probability of every prompt token given the tokens before it (OpenAI's legacy
/// completions with `echo` and `logprobs`): the prompt's prefill on a plan of its own whose `logits`
/// output keeps every position's next-token logits (`[tokens, vocab]`), which the generation plan
/// never materializes (it keeps only each sequence's last row). The prompt runs in chunks of
/// `chunkTokens` through a one-slot KV cache, so the arena holds `chunkTokens` rows of logits, not a
/// whole context's.
///
/// The plan is prepared on first use: a server whose clients never ask pays nothing. Given the
/// generation plan, it reads that plan's weights where the backend can share them (the CPU); elsewhere
/// (CUDA) it holds a second copy. Runs on the caller's thread (the completion scheduler's model
/// thread), one prompt at a time.
public final class PromptScorer: Sendable {
    public let chunkTokens: Int
    private let prepare: @Sendable () throws(FlintError) -> any PreparedPlan
    private let prepared = Mutex<(any PreparedPlan)?>(nil)

    /// - Parameter prepare: builds and prepares the scoring plan (`GPT2.Output.logits`, one
    ///   sequence, `chunkTokens` tokens per forward, the model's whole context).
    public init(chunkTokens: Int, prepare: @escaping @Sendable () throws(FlintError) -> any PreparedPlan) {
        self.chunkTokens = chunkTokens
        self.prepare = prepare
    }

    /// A scorer for `model` on `backend`, chunks of at most `chunkTokens` tokens; `sharingWeightsOf`:
    /// a plan of the same model and `weights` on `backend` (the generation plan) whose weights the
    /// scoring plan reads where the backend can share them.
    public convenience init(model: GPT2, weights: any WeightSource, backend: any Backend, chunkTokens: Int = 128,
                            configPath: String = "config.json", sharingWeightsOf generation: (any PreparedPlan)? = nil) {
        let context = model.config.nPositions
        let chunk = max(1, min(chunkTokens, context))
        self.init(chunkTokens: chunk) { () throws(FlintError) in
            let plan = try model.plan(outputs: [.logits], maxTokens: chunk, maxSequences: 1, maxContext: context, configPath: configPath)
            guard let generation else { return try backend.prepare(plan, weights: weights) }
            return try backend.prepare(plan, weights: weights, sharingWeightsOf: generation)
        }
    }

    /// Whether the scoring plan has been prepared (tests; memory accounting).
    public var isPrepared: Bool { prepared.withLock { $0 != nil } }

    /// One entry per prompt token: the first has no log-probability (`logprob` nil, no `top`); each
    /// later one its raw log-softmax given the tokens before it, and the `top` most likely tokens
    /// there (largest first, the lowest id on ties), as a sampled token's (`TokenGenerator.Sampled`).
    public func score(_ prompt: [Int32], top: Int) throws(FlintError) -> [TokenGenerator.Sampled] {
        guard !prompt.isEmpty else { return [] }
        guard (0...SamplingParameters.maxLogprobs).contains(top) else {
            throw .invalidInput("logprobs must be in 0...\(SamplingParameters.maxLogprobs), got \(top)")
        }
        let plan = try preparedPlan()
        guard prompt.count <= plan.plan.maxContext else {
            throw .invalidInput("a prompt of \(prompt.count) tokens is longer than the context (\(plan.plan.maxContext))")
        }
        var out = [TokenGenerator.Sampled(id: prompt[0], logprob: nil, top: [])]
        out.reserveCapacity(prompt.count)
        var start = 0
        // The last token's logits score nothing in the prompt: the chunks cover all but it.
        while start < prompt.count - 1 {
            let end = min(start + chunkTokens, prompt.count - 1)
            let batch = TokenBatch(sequences: [Array(prompt[start..<end])], positionOffsets: [Int32(start)], slots: [0])
            guard let logits = try plan.run(batch)[GPT2.Output.logits.rawValue] else {
                throw .invalidInput("the scoring plan has no \(GPT2.Output.logits.rawValue) output")
            }
            let vocab = logits.shape[1]
            logits.data.withUnsafeBufferPointer { rows in
                for r in 0..<(end - start) {
                    let next = prompt[start + r + 1]
                    let lp = RawLogprobs.of(logits: rows.baseAddress! + r * vocab, vocabularySize: vocab, chosen: next, top: top)
                    out.append(TokenGenerator.Sampled(id: next, logprob: lp.chosen,
                                                      top: lp.top.map { TokenGenerator.TopToken(id: $0.id, logprob: $0.logprob) }))
                }
            }
            start = end
        }
        return out
    }

    private func preparedPlan() throws(FlintError) -> any PreparedPlan {
        if let plan = prepared.withLock({ $0 }) { return plan }
        let plan = try prepare()
        prepared.withLock { $0 = plan }
        return plan
    }
}
