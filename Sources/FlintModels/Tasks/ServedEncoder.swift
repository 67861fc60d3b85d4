import FlintCheckpoint
import FlintCore

extension ModelFolder {
    /// The output a task reads from an encoder with `head`: sequence-classification logits
    /// `[labels]` (classification, reranking), span logits `[tokens, 2]` (question answering);
    /// nil for heads that serve sentence embeddings only (base model, masked LM, token tagging).
    public static func taskOutput(for head: EncoderHead) -> Encoder.Output? {
        switch head {
        case .sequenceClassification: return .logits
        case .questionAnswering: return .spanLogits
        case .model, .maskedLM, .tokenClassification: return nil
        }
    }

    /// An encoder folder as `flint serve` runs it: one plan that computes the sentence embeddings
    /// (unnormalized: the routes normalize per request) and, for a classification or question-
    /// answering checkpoint, the head's `taskOutput` too, so that one scheduler batches embedding
    /// and task requests together. The heads cost little beside the layers (a `[labels, hidden]`
    /// GEMM per sequence, `[2, hidden]` per token).
    public static func openServedEncoder(
        _ path: String, backend: any Backend, maxBatchTokens: Int, maxSequences: Int, weightProgress: ProgressReport? = nil
    ) throws(FlintError) -> EncoderPipeline {
        var outputs: Set<Encoder.Output> = [.sentenceEmbedding]
        // A built-in has no tokenizer: the pipeline refuses it with the reason.
        if builtInEncoders[path] == nil,
            let task = taskOutput(for: try EncoderConfig.load(path: FileSystem.join(path, "config.json")).head)
        {
            outputs.insert(task)
        }
        return try EncoderPipeline(
            folder: path, backend: backend, outputs: outputs, maxBatchTokens: maxBatchTokens, maxSequences: maxSequences,
            normalize: false, weightProgress: weightProgress)
    }
}
