/// Where a plan runs. Backends never import models and models never import a backend: the CLI
/// or server picks one and hands it to the model.
public protocol Backend: AnyObject, Sendable {
    /// "cpu (avx512, 2 threads)", "cuda:0 (NVIDIA H100, sm_90)".
    var deviceDescription: String { get }
    /// The precision activations are computed in.
    var dtype: DType { get }
    /// Loads the plan's weights from `weights` and lays out its arena.
    func prepare(_ plan: Plan, weights: any WeightSource) throws(FlintError) -> any PreparedPlan
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
}

extension PreparedPlan {
    /// Checks a batch against the plan's limits and the embedding tables' sizes.
    public func validate(_ batch: TokenBatch, vocabularySize: Int, maxPositions: Int, typeVocabularySize: Int) throws(FlintError) {
        guard batch.sequenceCount > 0 else { throw .invalidInput("empty batch") }
        guard batch.tokenCount <= plan.maxTokens else {
            throw .invalidInput("batch has \(batch.tokenCount) tokens, the plan was built for at most \(plan.maxTokens)")
        }
        guard batch.sequenceCount <= plan.maxSequences else {
            throw .invalidInput("batch has \(batch.sequenceCount) sequences, the plan was built for at most \(plan.maxSequences)")
        }
        for (i, l) in batch.lengths.enumerated() where l < 1 {
            throw .invalidInput("sequence \(i) is empty")
        }
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
}
