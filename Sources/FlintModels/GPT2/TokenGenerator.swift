import FlintCore

/// What to generate and when to stop.
public struct GenerationParameters: Sendable, Equatable {
    public var maxNewTokens: Int
    public var sampling: SamplingParameters
    /// Keep going past the end-of-text token (benchmarks, parity runs).
    public var ignoreEOS: Bool
    /// Text that ends a completion (not included in its text); checked by `TextGenerator`.
    public var stopStrings: [String]

    public init(maxNewTokens: Int = 64, sampling: SamplingParameters = .greedy, ignoreEOS: Bool = false, stopStrings: [String] = []) {
        self.maxNewTokens = maxNewTokens
        self.sampling = sampling
        self.ignoreEOS = ignoreEOS
        self.stopStrings = stopStrings
    }
}

/// Why a completion ended.
public enum FinishReason: String, Sendable, Equatable {
    /// The end-of-text token or a stop string.
    case stop
    /// `maxNewTokens` reached.
    case length
    /// The context window (prompt + completion) is full.
    case context
}

/// One prompt's completion at the token level.
public struct TokenCompletion: Sendable, Equatable {
    public var ids: [Int32]
    public var promptTokens: Int
    public var finishReason: FinishReason
    /// From the start of `generate` to this sequence's first new token.
    public var timeToFirstTokenMs: Double
    /// Mean time of the decode steps this sequence took part in (0 with a single token).
    public var msPerToken: Double
}

/// Autoregressive generation on a prepared GPT-2 plan (`GPT2.Output.nextToken`): the prompts of a
/// group run together as one prefill, then every active sequence advances by one token per decode
/// step, each step one plan run whose only result is the chosen ids. Sequences leave the batch when
/// they finish; their cache slots are reused by the next group.
public final class TokenGenerator: @unchecked Sendable {
    public let prepared: any PreparedPlan
    public let eosTokenIds: Set<Int32>
    /// Context positions per sequence (the plan's KV cache).
    public var maxContext: Int { prepared.plan.maxContext }

    public init(prepared: any PreparedPlan, eosTokenIds: [Int]) throws(FlintError) {
        guard prepared.plan.outputs.contains(where: { $0.name == GPT2.Output.nextToken.rawValue }) else {
            throw .invalidInput("the plan has no \(GPT2.Output.nextToken.rawValue) output")
        }
        self.prepared = prepared
        self.eosTokenIds = Set(eosTokenIds.map(Int32.init))
    }

    /// Generates a completion for every prompt (in input order). `onToken(prompt, id)` is called
    /// for each new token as soon as it exists; returning false ends that prompt's completion
    /// (finish reason `.stop`: the caller saw a stop string).
    public func generate(prompts: [[Int32]], parameters: GenerationParameters,
                         onToken: (Int, Int32) -> Bool = { _, _ in true }) throws(FlintError) -> [TokenCompletion]
    {
        guard parameters.maxNewTokens >= 1 else { throw .invalidInput("max new tokens must be at least 1, got \(parameters.maxNewTokens)") }
        try parameters.sampling.validate()
        let plan = prepared.plan
        for (i, p) in prompts.enumerated() {
            guard !p.isEmpty else { throw .invalidInput("prompt \(i) has no tokens") }
            guard p.count < maxContext else {
                throw .invalidInput(
                    "prompt \(i) has \(p.count) tokens; the context holds \(maxContext) (prompt + completion), so at most \(maxContext - 1)"
                )
            }
            guard p.count <= plan.maxTokens else {
                throw .invalidInput("prompt \(i) has \(p.count) tokens; the plan runs at most \(plan.maxTokens) per forward")
            }
        }
        var results: [TokenCompletion?] = Array(repeating: nil, count: prompts.count)
        // A decode step feeds one token per sequence: a group fits the plan's sequences and tokens.
        let groupSize = min(plan.maxSequences, plan.maxTokens)
        let started = ContinuousClock.now
        var next = 0
        while next < prompts.count {
            let group = Array(next..<min(prompts.count, next + groupSize))
            next = group.last! + 1
            for (i, c) in try generateGroup(group.map { prompts[$0] }, parameters, started: started, { onToken(group[$0], $1) })
                .enumerated()
            {
                results[group[i]] = c
            }
        }
        return results.map { $0! }
    }

    private struct Sequence {
        var tokens: [Int32]  // prompt + completion
        var promptTokens: Int
        var finish: FinishReason?
        var firstTokenMs: Double = 0
        var decodeMs: Double = 0
        var decodeSteps = 0
    }

    /// `started`: when `generate` began (time to first token counts from there, queueing included).
    private func generateGroup(_ prompts: [[Int32]], _ parameters: GenerationParameters, started: ContinuousClock.Instant,
                               _ onToken: (Int, Int32) -> Bool) throws(FlintError) -> [TokenCompletion]
    {
        var sequences = prompts.map { Sequence(tokens: $0, promptTokens: $0.count) }
        // Prefill, in forwards that fit the plan's token budget; slot = index in the group.
        var s = 0
        while s < prompts.count {
            var members: [Int] = []
            var tokens = 0
            while s < prompts.count, members.isEmpty || tokens + prompts[s].count <= prepared.plan.maxTokens {
                members.append(s)
                tokens += prompts[s].count
                s += 1
            }
            let ids = try step(members.map { sequences[$0].tokens }, offsets: members.map { _ in 0 }, slots: members, parameters)
            let elapsed = (ContinuousClock.now - started).milliseconds
            for (k, m) in members.enumerated() {
                sequences[m].firstTokenMs = elapsed
                accept(ids[k], into: &sequences[m], index: m, parameters, onToken)
            }
        }
        // Decode: every unfinished sequence feeds its newest token.
        while true {
            let active = sequences.indices.filter { sequences[$0].finish == nil }
            if active.isEmpty { break }
            let t0 = ContinuousClock.now
            let ids = try step(active.map { [sequences[$0].tokens.last!] }, offsets: active.map { Int32(sequences[$0].tokens.count - 1) },
                               slots: active, parameters)
            let elapsed = (ContinuousClock.now - t0).milliseconds
            for (k, m) in active.enumerated() {
                sequences[m].decodeMs += elapsed
                sequences[m].decodeSteps += 1
                accept(ids[k], into: &sequences[m], index: m, parameters, onToken)
            }
        }
        return sequences.map { q in
            TokenCompletion(ids: Array(q.tokens[q.promptTokens...]), promptTokens: q.promptTokens, finishReason: q.finish!,
                            timeToFirstTokenMs: q.firstTokenMs, msPerToken: q.decodeSteps > 0 ? q.decodeMs / Double(q.decodeSteps) : 0)
        }
    }

    private func step(_ inputs: [[Int32]], offsets: [Int32], slots: [Int], _ parameters: GenerationParameters) throws(FlintError) -> [Int32]
    {
        try step(
            inputs.indices.map { StepInput(tokens: inputs[$0], position: offsets[$0], slot: slots[$0], sampling: parameters.sampling) })
    }

    /// One sequence's share of a forward: a whole prompt at position 0 (prefill), or its newest
    /// token at the position after its cached ones (decode).
    public struct StepInput: Sendable, Equatable {
        public var tokens: [Int32]
        public var position: Int32
        public var slot: Int
        public var sampling: SamplingParameters

        public init(tokens: [Int32], position: Int32, slot: Int, sampling: SamplingParameters) {
            self.tokens = tokens
            self.position = position
            self.slot = slot
            self.sampling = sampling
        }
    }

    /// One forward of any mix of prefills and decodes, each sequence in its own KV slot with its
    /// own sampling (continuous batching: sequences join and leave between steps). Returns each
    /// sequence's next token. The caller keeps the slots apart and within the plan's limits.
    public func step(_ inputs: [StepInput]) throws(FlintError) -> [Int32] {
        try sample(inputs).map(\.id)
    }

    /// A sequence's next token, with the log-probabilities its sampling asked for.
    public struct Sampled: Sendable, Equatable {
        public var id: Int32
        /// The raw log-softmax of `id` (nil unless `SamplingParameters.logprobs` was set).
        public var logprob: Float?
        /// The `SamplingParameters.logprobs` most likely tokens and their log-probabilities, largest first.
        public var top: [TopToken]
    }

    public struct TopToken: Sendable, Equatable {
        public var id: Int32
        public var logprob: Float
    }

    /// `step`, with each sequence's log-probabilities when its sampling asks for them.
    public func sample(_ inputs: [StepInput]) throws(FlintError) -> [Sampled] {
        let batch = TokenBatch(
            sequences: inputs.map(\.tokens), positionOffsets: inputs.map(\.position), slots: inputs.map { Int32($0.slot) },
            sampling: inputs.map(\.sampling))
        let out = try prepared.run(batch)
        let ids = out[GPT2.Output.nextToken.rawValue]!.data
        guard inputs.contains(where: { $0.sampling.logprobs != nil }),
              let topIds = out[GPT2.Output.nextTokenTopIds.rawValue], let logprobs = out[GPT2.Output.nextTokenLogprobs.rawValue] else {
            return ids.map { Sampled(id: Int32($0), logprob: nil, top: []) }
        }
        let k = topIds.shape.count / max(inputs.count, 1)
        return inputs.indices.map { s in
            guard let n = inputs[s].sampling.logprobs else { return Sampled(id: Int32(ids[s]), logprob: nil, top: []) }
            let top = (0..<min(n, k)).compactMap { j -> TopToken? in
                let id = Int32(topIds.data[s * k + j])
                return id < 0 ? nil : TopToken(id: id, logprob: logprobs.data[s * (k + 1) + 1 + j])
            }
            return Sampled(id: Int32(ids[s]), logprob: logprobs.data[s * (k + 1)], top: top)
        }
    }

    private func accept(_ id: Int32, into q: inout Sequence, index: Int, _ parameters: GenerationParameters,
                        _ onToken: (Int, Int32) -> Bool) {
        q.tokens.append(id)
        let keepGoing = onToken(index, id)
        if !keepGoing || (!parameters.ignoreEOS && eosTokenIds.contains(id)) {
            q.finish = .stop
        } else if q.tokens.count - q.promptTokens >= parameters.maxNewTokens {
            q.finish = .length
        } else if q.tokens.count >= maxContext {
            q.finish = .context
        }
    }
}
