import FlintCore
import FlintModels
import FlintTokenizers
import NIOPosix
import Synchronization

/// Continuous (iteration-level) batching for a GPT-2: every step is one forward in which the
/// running sequences decode one token each and newly admitted ones run their whole prompt
/// (prefill), within the token budget and the KV slots. Each sequence samples with its own
/// parameters and stops by its own rules; a finished or cancelled sequence leaves at once and
/// its slot goes to the next one waiting. All of it runs on the model's own thread.
public final class CompletionScheduler: Sendable {
    public let decoder: ModelFolder.Decoder
    public let limits: BatchLimits
    let thread: NIOThreadPool
    let state = Mutex(State())

    /// What a sequence's consumer receives, in order: text pieces (never half a character), then
    /// one `done` (or `failed`). A sequence whose sampling asks for logprobs also gets one
    /// `logprobs` per generated token, before the text that token completes (so a text piece, or the
    /// `done` with the rest, follows the logprobs of the tokens it holds). A sequence that asks for
    /// its prompt's logprobs gets them first, in one `promptLogprobs`.
    public enum Event: Sendable, Equatable {
        /// One entry per prompt token (`PromptScorer.score`: the first without a logprob).
        case promptLogprobs(choice: Int, [TokenGenerator.Sampled])
        case text(choice: Int, String)
        case logprobs(choice: Int, TokenGenerator.Sampled)
        /// `rest`: the text not sent yet (the last text chunk); `text`: the whole completion.
        case done(choice: Int, finishReason: String, rest: String, text: String, promptTokens: Int, completionTokens: Int)
        case failed(choice: Int, String)
    }

    /// One sequence to generate.
    public struct Sequence: Sendable {
        public var prompt: [Int32]
        public var parameters: GenerationParameters
        /// Index of the choice this sequence fills in its response.
        public var choice: Int
        /// Report the prompt tokens' log-probabilities with this many top tokens each (0...5); nil: not at all.
        public var promptLogprobs: Int?

        /// `parameters.maxNewTokens` 0 generates nothing: the sequence only reports its prompt's
        /// logprobs (when asked) and is done with reason `length`.
        public init(prompt: [Int32], parameters: GenerationParameters, choice: Int, promptLogprobs: Int? = nil) {
            self.prompt = prompt
            self.parameters = parameters
            self.choice = choice
            self.promptLogprobs = promptLogprobs
        }
    }

    struct Pending {
        var id: Int
        var sequence: Sequence
        var sink: AsyncStream<Event>.Continuation
        var enqueued: ContinuousClock.Instant
    }

    /// What one step did (for metrics).
    public struct StepEvent: Sendable {
        /// Sequences in the forward, and its real tokens.
        public var sequences: Int
        public var tokens: Int
        public var inferenceSeconds: Double
        /// Of the sequences that joined: their wait for a slot, and arrival to first token.
        public var queueSeconds: [Double]
        public var firstTokenSeconds: [Double]
        /// Of the sequences that decoded: time since their previous token.
        public var interTokenSeconds: [Double]
    }

    let observer = Mutex<(@Sendable (StepEvent) -> Void)?>(nil)
    /// Tests: called on the model's thread after each step has handed out its tokens, with the
    /// number of steps run so far; blocking in it holds the model between two steps.
    let afterStep = Mutex<(@Sendable (Int) -> Void)?>(nil)

    struct State {
        var waiting: [Pending] = []
        var running = false
        var paused = false
        var cancelled: Set<Int> = []
        var nextId = 0
        var slotsInUse = 0
        /// Steps run and the most sequences in one (tests check batching happened).
        var steps = 0
        var widestStep = 0
    }

    /// A sequence on the model: its slot, tokens so far and text stream.
    private struct Active {
        var id: Int
        var choice: Int
        var slot: Int
        var tokens: [Int32]
        var promptTokens: Int
        var parameters: GenerationParameters
        var stream: TextStream
        var sink: AsyncStream<Event>.Continuation
        var enqueued: ContinuousClock.Instant
        var lastToken: ContinuousClock.Instant?
    }

    public init(decoder: ModelFolder.Decoder, limits: BatchLimits) {
        self.decoder = decoder
        self.limits = limits
        thread = NIOThreadPool(numberOfThreads: 1)
        thread.start()
    }

    deinit { try? thread.syncShutdownGracefully() }

    /// KV slots (sequences generated at once).
    public var slots: Int { decoder.generator.prepared.plan.maxSequences }
    /// Context positions per sequence (prompt + completion).
    public var maxContext: Int { decoder.generator.maxContext }
    public var slotsInUse: Int { state.withLock { $0.slotsInUse } }
    /// Sequences waiting for a slot.
    public var queueDepth: Int { state.withLock { $0.waiting.count } }
    var stepStats: (steps: Int, widest: Int) { state.withLock { ($0.steps, $0.widestStep) } }

    func resetStepStats() { state.withLock { s in (s.steps, s.widestStep) = (0, 0) } }

    /// Queues `sequences`; their events go to `sink`. Returns their ids (for `cancel`). Throws
    /// 429 when the waiting sequences would pass `maxQueue`.
    public func submit(_ sequences: [Sequence], sink: AsyncStream<Event>.Continuation) throws(ServeError) -> [Int] {
        let outcome: Result<(ids: [Int], start: Bool), ServeError> = state.withLock { s in
            guard s.waiting.count + sequences.count <= limits.maxQueue else {
                return .failure(.queueFull(model: "this model", limit: limits.maxQueue))
            }
            var ids: [Int] = []
            for q in sequences {
                ids.append(s.nextId)
                s.waiting.append(Pending(id: s.nextId, sequence: q, sink: sink, enqueued: .now))
                s.nextId += 1
            }
            guard !s.running, !s.paused else { return .success((ids, false)) }
            s.running = true
            return .success((ids, true))
        }
        switch outcome {
        case let .failure(error): throw error
        case let .success((ids, start)):
            if start { startWorker() }
            return ids
        }
    }

    /// Stops these sequences (a client went away): they leave at the next step and free their slots.
    public func cancel(_ ids: [Int]) {
        state.withLock { s in
            s.cancelled.formUnion(ids)
            s.waiting.removeAll { ids.contains($0.id) }
        }
    }

    func setPaused(_ paused: Bool) {
        let start = state.withLock { s -> Bool in
            s.paused = paused
            guard !paused, !s.running, !s.waiting.isEmpty else { return false }
            s.running = true
            return true
        }
        if start { startWorker() }
    }

    private func startWorker() {
        thread.submit { [self] state in
            guard state == .active else { return }
            work()
        }
    }

    private func work() {
        var active: [Active] = []
        var freeSlots = Array((0..<slots).reversed())
        let plan = decoder.generator.prepared.plan
        while true {
            let taken: (admitted: [Pending], cancelled: Set<Int>)? = state.withLock { s in
                let cancelled = s.cancelled
                s.cancelled = []
                let running = active.filter { !cancelled.contains($0.id) }.count
                if running == 0 && (s.paused || s.waiting.isEmpty) {
                    s.running = false
                    s.slotsInUse = 0
                    return nil
                }
                var budget = plan.maxTokens - running
                var free = freeSlots.count + (active.count - running)
                var admitted: [Pending] = []
                while !s.paused, let next = s.waiting.first, free > 0, next.sequence.prompt.count <= budget {
                    admitted.append(next)
                    s.waiting.removeFirst()
                    budget -= next.sequence.prompt.count
                    free -= 1
                }
                s.slotsInUse = running + admitted.count
                return (admitted, cancelled)
            }
            guard let taken else {
                decoder.generator.prepared.idle()
                return
            }
            let (admitted, cancelled) = (taken.admitted, taken.cancelled)
            if !cancelled.isEmpty {
                for a in active where cancelled.contains(a.id) { freeSlots.append(a.slot) }
                active.removeAll { cancelled.contains($0.id) }
            }
            var scored: [[Int32]: [TokenGenerator.Sampled]] = [:]  // n choices of one prompt score it once
            var joined = 0
            for p in admitted {
                if let top = p.sequence.promptLogprobs {
                    let key = p.sequence.prompt + [Int32(-1 - top)]
                    do {
                        if scored[key] == nil { scored[key] = try decoder.scorer.score(p.sequence.prompt, top: top) }
                        p.sink.yield(.promptLogprobs(choice: p.sequence.choice, scored[key]!))
                    } catch {
                        p.sink.yield(.failed(choice: p.sequence.choice, "\(error)"))
                        continue
                    }
                }
                if p.sequence.parameters.maxNewTokens <= 0 {
                    p.sink.yield(.done(choice: p.sequence.choice, finishReason: "length", rest: "", text: "",
                                       promptTokens: p.sequence.prompt.count, completionTokens: 0))
                    continue
                }
                joined += 1
                active.append(Active(id: p.id, choice: p.sequence.choice, slot: freeSlots.removeLast(), tokens: p.sequence.prompt,
                                     promptTokens: p.sequence.prompt.count, parameters: p.sequence.parameters,
                                     stream: TextStream(stopStrings: p.sequence.parameters.stopStrings), sink: p.sink,
                                     enqueued: p.enqueued, lastToken: nil))
            }
            let decoding = active.count - joined
            if active.isEmpty {
                state.withLock { $0.slotsInUse = 0 }
                continue
            }
            let inputs = active.indices.map { i in
                i < decoding
                    ? TokenGenerator.StepInput(tokens: [active[i].tokens.last!], position: Int32(active[i].tokens.count - 1),
                                               slot: active[i].slot, sampling: active[i].parameters.sampling)
                    : TokenGenerator.StepInput(tokens: active[i].tokens, position: 0, slot: active[i].slot,
                                               sampling: active[i].parameters.sampling)
            }
            state.withLock { s in
                s.steps += 1
                s.widestStep = max(s.widestStep, inputs.count)
            }
            let next: [TokenGenerator.Sampled]
            let started = ContinuousClock.now
            do {
                next = try decoder.generator.sample(inputs)
            } catch {
                for a in active {
                    a.sink.yield(.failed(choice: a.choice, "\(error)"))
                    freeSlots.append(a.slot)
                }
                active = []
                continue
            }
            let now = ContinuousClock.now
            if let observe = observer.withLock({ $0 }) {
                let joined = active[decoding...]
                observe(StepEvent(sequences: inputs.count, tokens: inputs.reduce(0) { $0 + $1.tokens.count },
                                  inferenceSeconds: (now - started).seconds, queueSeconds: joined.map { (started - $0.enqueued).seconds },
                                  firstTokenSeconds: joined.map { (now - $0.enqueued).seconds },
                                  interTokenSeconds: active[..<decoding].map { (now - ($0.lastToken ?? started)).seconds }))
            }
            var finished: [(index: Int, done: Event)] = []
            for i in active.indices {
                active[i].lastToken = now
                if let done = accept(next[i], into: &active[i]) { finished.append((i, done)) }
            }
            let sinks = finished.map { active[$0.index].sink }
            for (i, _) in finished.reversed() {
                freeSlots.append(active[i].slot)
                active.remove(at: i)
            }
            // The slots are free before anyone hears that their sequences are done.
            let running = active.count
            state.withLock { $0.slotsInUse = running }
            for (k, f) in finished.enumerated() { sinks[k].yield(f.done) }
            if let hook = afterStep.withLock({ $0 }) { hook(state.withLock { $0.steps }) }
        }
    }

    /// Adds a token to a sequence and sends the text it makes final; returns the sequence's
    /// `done` event when it ended (sent by the caller once its slot is free).
    private func accept(_ sampled: TokenGenerator.Sampled, into q: inout Active) -> Event? {
        let id = sampled.id
        q.tokens.append(id)
        if sampled.logprob != nil { q.sink.yield(.logprobs(choice: q.choice, sampled)) }
        let generated = q.tokens.count - q.promptTokens
        let (text, stopped) = q.stream.append(id, tokenizer: decoder.tokenizer)
        if let text { q.sink.yield(.text(choice: q.choice, text)) }
        let reason: String
        if stopped || (!q.parameters.ignoreEOS && decoder.generator.eosTokenIds.contains(id)) {
            reason = "stop"
        } else if generated >= q.parameters.maxNewTokens || q.tokens.count >= maxContext {
            reason = "length"
        } else {
            return nil
        }
        let (rest, whole) = q.stream.finish(tokenizer: decoder.tokenizer)
        return .done(choice: q.choice, finishReason: reason, rest: rest ?? "", text: whole, promptTokens: q.promptTokens,
                     completionTokens: generated)
    }
}
