/// Where a plan runs. Backends never import models and models never import a backend: the CLI
/// or server picks one and hands it to the model.
public protocol Backend: AnyObject, Sendable {
    /// "cpu (avx512, 2 threads)", "cuda:0 (NVIDIA H100, sm_90)".
    var deviceDescription: String { get }
    /// The precision activations are computed in.
    var dtype: DType { get }
    /// Loads the plan's weights from `weights` and lays out its arena.
    func prepare(_ plan: Plan, weights: any WeightSource) throws(FlintError) -> any PreparedPlan
    /// `prepare(_:weights:)` for a second plan of the model `other` was prepared for, from the same
    /// `weights`: the new plan may read `other`'s copy of each weight the two plans load alike
    /// (read-only, kept alive by either plan) instead of holding one of its own.
    func prepare(_ plan: Plan, weights: any WeightSource, sharingWeightsOf other: any PreparedPlan) throws(FlintError)
        -> any PreparedPlan
}

extension Backend {
    /// Loads a copy of its own: what a backend does unless it shares weights between plans (the CPU
    /// backend does; the CUDA backend's device weights belong to the plan that uploaded them).
    public func prepare(_ plan: Plan, weights: any WeightSource, sharingWeightsOf other: any PreparedPlan) throws(FlintError)
        -> any PreparedPlan {
        try prepare(plan, weights: weights)
    }
}

/// Supplies weights by checkpoint key, converted to f32 host tensors.
public protocol WeightSource: Sendable {
    /// The tensor `name`; throws `FlintError.badTensor` if it is missing or not of `shape`.
    func tensor(_ name: String, shape: Shape) throws(FlintError) -> HostTensor
}

/// A plan loaded on a backend, ready to run batches up to its limits.
public protocol PreparedPlan: AnyObject, Sendable {
    var plan: Plan { get }
    /// Bytes of the activation arena.
    var arenaBytes: Int { get }
    /// Runs one batch; returns each plan output as `[rows, columns]` (rows = tokens or sequences).
    func run(_ batch: TokenBatch) throws(FlintError) -> [String: HostTensor]
    /// Says no run follows soon (a server whose queue is empty), so the backend can stop threads
    /// that wait busily for the next kernel and give their cores to the rest of the process.
    func idle()
}

extension PreparedPlan {
    public func idle() {}
}

/// Where the time of a plan's last run went, for backends that can tell.
public struct RunProfile: Sendable, Equatable {
    /// Host time from the start of `run` until the forward was queued (checks, the input copy, the
    /// graph launch): the framework overhead per forward.
    public var hostEnqueueMs: Double
    /// Device time of the forward itself, by events around it.
    public var deviceMs: Double

    public init(hostEnqueueMs: Double, deviceMs: Double) {
        self.hostEnqueueMs = hostEnqueueMs
        self.deviceMs = deviceMs
    }
}

/// A prepared plan that measures its runs (the CUDA backend).
public protocol ProfiledPlan: PreparedPlan {
    /// The profile of the last completed `run` (nil before the first).
    var lastProfile: RunProfile? { get }
}

extension PreparedPlan {
    /// Checks a batch against the plan: limits, the packed layout, the embedding tables' sizes, and
    /// for plans with a KV cache the slots, positions and sampling parameters. Backends call it
    /// before touching any memory, so a bad batch leaves caches and arena untouched.
    public func validate(_ batch: TokenBatch) throws(FlintError) {
        guard batch.sequenceCount > 0 else { throw .invalidInput("empty batch") }
        guard batch.tokenCount <= plan.maxTokens else {
            throw .invalidInput("batch has \(batch.tokenCount) tokens, the plan was built for at most \(plan.maxTokens)")
        }
        guard batch.sequenceCount <= plan.maxSequences else {
            throw .invalidInput("batch has \(batch.sequenceCount) sequences, the plan was built for at most \(plan.maxSequences)")
        }
        guard batch.starts.count == batch.sequenceCount, batch.slots.count == batch.sequenceCount,
              batch.sampling.count == batch.sequenceCount, batch.positions.count == batch.tokenCount,
              batch.typeIds.count == batch.tokenCount
        else {
            throw .invalidInput("batch arrays disagree: \(batch.tokenCount) ids, \(batch.positions.count) positions, "
                + "\(batch.typeIds.count) type ids; \(batch.sequenceCount) lengths, \(batch.starts.count) starts, "
                + "\(batch.slots.count) slots, \(batch.sampling.count) sampling parameters")
        }
        var next = 0
        for s in 0..<batch.sequenceCount {
            guard batch.lengths[s] >= 1 else { throw .invalidInput("sequence \(s) is empty") }
            guard Int(batch.starts[s]) == next else {
                throw .invalidInput("sequence \(s) starts at token \(batch.starts[s]), expected \(next) (packed layout)")
            }
            next += Int(batch.lengths[s])
        }
        guard next == batch.tokenCount else { throw .invalidInput("the sequences cover \(next) tokens, the batch has \(batch.tokenCount)") }

        for case let .embed(word, position, tokenType, _, _, _, _) in plan.steps {
            let vocabularySize = plan.weights[word].shape[0], maxPositions = plan.weights[position].shape[0]
            let typeVocabularySize = tokenType.map { plan.weights[$0].shape[0] } ?? 1
            if let bad = batch.ids.first(where: { $0 < 0 || Int($0) >= vocabularySize }) {
                throw .invalidInput("token id \(bad) is outside the vocabulary (0..<\(vocabularySize))")
            }
            if let bad = batch.positions.first(where: { $0 < 0 || Int($0) >= maxPositions }) {
                throw .invalidInput("position \(bad) is beyond max_position_embeddings (\(maxPositions)); truncate the input")
            }
            if let bad = batch.typeIds.first(where: { $0 < 0 || Int($0) >= typeVocabularySize }) {
                throw .invalidInput("token type id \(bad) is outside 0..<\(typeVocabularySize)")
            }
        }

        let usesCache = plan.steps.contains { if case .cachedAttention = $0 { return true } else { return false } }
        let samples = plan.steps.contains { if case .sample = $0 { return true } else { return false } }
        guard usesCache || samples else { return }
        var used = Set<Int32>()
        for s in 0..<batch.sequenceCount {
            let slot = batch.slots[s]
            guard slot >= 0, Int(slot) < plan.maxSequences else {
                throw .invalidInput("sequence \(s) uses cache slot \(slot); the plan has slots 0..<\(plan.maxSequences)")
            }
            guard used.insert(slot).inserted else { throw .invalidInput("two sequences of one batch use cache slot \(slot)") }
            let first = Int(batch.starts[s]), count = Int(batch.lengths[s])
            let p0 = batch.positions[first]
            for i in 0..<count where batch.positions[first + i] != p0 + Int32(i) {
                throw .invalidInput(
                    "sequence \(s): positions must be consecutive (token \(i) is at \(batch.positions[first + i]), expected \(p0 + Int32(i)))"
                )
            }
            if usesCache, Int(p0) + count > plan.maxContext {
                throw .invalidInput(
                    "sequence \(s) reaches position \(Int(p0) + count - 1), the KV cache holds \(plan.maxContext) positions per sequence")
            }
            if samples { try batch.sampling[s].validate() }
        }
    }
}

/// Called after each plan step of a profiled run with the step's index and its host start and
/// end times (the CPU backend: on the thread that runs the forward).
public typealias StepTimer = @Sendable (_ step: Int, _ start: ContinuousClock.Instant, _ end: ContinuousClock.Instant) -> Void

/// A prepared plan that can time its steps (`flint profile`). Profiling is opt-in: with no timer
/// (the default) the run loop is the plain one.
public protocol StepTimedPlan: PreparedPlan {
    /// Set before runs to time each step; nil to stop. Not changed while a run is in flight.
    var stepTimer: StepTimer? { get set }
    /// Device milliseconds of each step of the last timed run, from events around each step (CUDA);
    /// nil where the backend has no device clock (the CPU).
    var lastDeviceStepMs: [Double]? { get }
}

extension StepTimedPlan {
    public var lastDeviceStepMs: [Double]? { nil }
}
