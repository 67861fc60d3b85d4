import FlintCore
import FlintModels
import NIOPosix
import Synchronization

/// Limits the schedulers share (the `flint serve` options).
public struct BatchLimits: Sendable, Equatable {
    /// Real tokens per formed batch (padding is never computed: batches are packed).
    public var maxBatchTokens: Int
    /// Requests per formed batch (encoders); KV slots, i.e. sequences generated at once (GPT-2).
    public var maxBatchRequests: Int
    /// Requests waiting (not running) before new ones get 429.
    public var maxQueue: Int

    public init(maxBatchTokens: Int = 16384, maxBatchRequests: Int = 64, maxQueue: Int = 512) {
        self.maxBatchTokens = maxBatchTokens
        self.maxBatchRequests = maxBatchRequests
        self.maxQueue = maxQueue
    }
}

/// Dynamic batching for a sentence-embedding model. Requests queue; whenever the model is idle
/// the worker takes the queued requests, oldest first, up to `maxBatchTokens` real tokens and
/// `maxBatchRequests` requests, and runs them as one packed batch on the model's own thread. No
/// fixed delay: a lone request runs at once, and batches grow only when requests arrive while
/// the model is busy.
///
/// A request that finds the model idle and nobody waiting runs its forward on its own task instead: handing it
/// to the model's thread and back costs two thread wake-ups (0.06 ms of a lone request's ~0.35 ms overhead on a
/// 2-vCPU VM). Requests arriving meanwhile queue, and the model's thread takes them over afterwards, so at
/// most one task computes at a time.
public final class EmbeddingScheduler: Sendable {
    public let pipeline: EncoderPipeline
    public let limits: BatchLimits
    let thread: NIOThreadPool
    let state = Mutex(State())
    let observer = Mutex<(@Sendable (BatchEvent) -> Void)?>(nil)

    struct Job {
        var inputs: [EncoderPipeline.Encoded]
        /// What the request reads from the batch's forward (every output of the plan is computed).
        var output: Encoder.Output
        var tokens: Int
        var enqueued: ContinuousClock.Instant
        var continuation: CheckedContinuation<[[Float]], any Error>
    }

    struct State {
        var queue: [Job] = []
        var running = false
        /// Tests hold the worker to let a batch form deterministically.
        var paused = false
        var batches = 0
        var largestBatch = 0
    }

    /// What a formed batch looked like (for metrics).
    public struct BatchEvent: Sendable {
        public var requests: Int
        public var tokens: Int
        public var queueSeconds: [Double]
        public var inferenceSeconds: Double
    }

    public init(pipeline: EncoderPipeline, limits: BatchLimits) {
        self.pipeline = pipeline
        self.limits = limits
        thread = NIOThreadPool(numberOfThreads: 1)
        thread.start()
    }

    deinit { try? thread.syncShutdownGracefully() }

    /// Requests waiting (not running).
    public var queueDepth: Int { state.withLock { $0.queue.count } }

    /// Sentence embeddings of `inputs` (already encoded and truncated), one per input, batched
    /// with whatever else is queued. Throws 429 when `maxQueue` requests are already waiting.
    public func embed(_ inputs: [EncoderPipeline.Encoded]) async throws -> [[Float]] {
        try await forward(inputs, output: .sentenceEmbedding)
    }

    /// The model's `output` for each of `inputs`, batched like `embed`: one row-major `[Float]` per
    /// input, `[columns]` for per-sequence outputs (sentence embeddings, sequence-classification
    /// logits `[labels]`), `[tokens * columns]` for per-token ones (span logits `[tokens, 2]`).
    /// Requests for different outputs share batches: the plan computes all of its outputs.
    public func forward(_ inputs: [EncoderPipeline.Encoded], output: Encoder.Output) async throws -> [[Float]] {
        let tokens = inputs.reduce(0) { $0 + $1.ids.count }
        return try await withCheckedThrowingContinuation { continuation in
            let outcome: Result<Start, ServeError> = state.withLock { s in
                guard s.queue.count < limits.maxQueue else { return .failure(.queueFull(model: pipeline.folder, limit: limits.maxQueue)) }
                s.queue.append(Job(inputs: inputs, output: output, tokens: tokens, enqueued: .now, continuation: continuation))
                guard !s.running, !s.paused else { return .success(.none) }
                s.running = true
                return .success(s.queue.count == 1 ? .here : .worker)
            }
            switch outcome {
            case let .failure(error): continuation.resume(throwing: error)
            case .success(.none): break
            case .success(.worker): startWorker()
            case .success(.here): work(handOff: true)
            }
        }
    }

    /// Who runs the queue after a request joins it: nobody new (the model is busy or held), the model's thread,
    /// or the request's own task (the model was idle and the queue empty).
    enum Start { case none, worker, here }

    func startWorker() {
        thread.submit { [self] state in
            guard state == .active else { return }
            work()
        }
    }

    /// Holds (true) or releases (false) the worker; while held, requests only queue.
    func setPaused(_ paused: Bool) {
        let start = state.withLock { s -> Bool in
            s.paused = paused
            guard !paused, !s.running, !s.queue.isEmpty else { return false }
            s.running = true
            return true
        }
        if start { startWorker() }
    }

    /// (batches run, the most requests in one).
    var batchStats: (batches: Int, largest: Int) { state.withLock { ($0.batches, $0.largestBatch) } }

    /// The worker loop: runs batches until the queue is empty. With `handOff` (a request's own task) it runs one
    /// batch and leaves whatever queued meanwhile to the model's thread.
    private func work(handOff: Bool = false) {
        while true {
            let batch: [Job]? = state.withLock { s in
                guard !s.queue.isEmpty, !s.paused else {
                    s.running = false
                    return nil
                }
                var taken = 0
                var tokens = 0
                while taken < s.queue.count, taken < limits.maxBatchRequests,
                      taken == 0 || tokens + s.queue[taken].tokens <= limits.maxBatchTokens
                {
                    tokens += s.queue[taken].tokens
                    taken += 1
                }
                let jobs = Array(s.queue.prefix(taken))
                s.queue.removeFirst(taken)
                s.batches += 1
                s.largestBatch = max(s.largestBatch, taken)
                return jobs
            }
            guard let batch else {
                // Replies are on their way: the kernel threads' cores are better spent sending them.
                pipeline.prepared.idle()
                return
            }
            run(batch)
            if handOff {
                let more = state.withLock { s -> Bool in
                    guard !s.queue.isEmpty, !s.paused else {
                        s.running = false
                        return false
                    }
                    return true
                }
                if more { startWorker() } else { pipeline.prepared.idle() }
                return
            }
        }
    }

    private func run(_ batch: [Job]) {
        let started = ContinuousClock.now
        let inputs = batch.flatMap(\.inputs)
        let result: Result<[String: [HostTensor]], any Error>
        do {
            result = .success(try pipeline.run(inputs))
        } catch {
            result = .failure(error)
        }
        // Recorded before anyone hears back, so a client's next scrape includes this batch.
        observer.withLock { $0 }?(BatchEvent(requests: batch.count, tokens: batch.reduce(0) { $0 + $1.tokens },
                                             queueSeconds: batch.map { (started - $0.enqueued).seconds },
                                             inferenceSeconds: (ContinuousClock.now - started).seconds))
        switch result {
        case let .success(outputs):
            var next = 0
            for job in batch {
                if let rows = outputs[job.output.rawValue] {
                    job.continuation.resume(returning: rows[next..<(next + job.inputs.count)].map(\.data))
                } else {
                    job.continuation.resume(throwing: ServeError.internalError("the model's plan has no \(job.output.rawValue) output"))
                }
                next += job.inputs.count
            }
        case let .failure(error):
            for job in batch { job.continuation.resume(throwing: error) }
        }
    }
}

extension Duration {
    var seconds: Double { milliseconds / 1000 }
}
