import FlintCheckpoint
import FlintCore
import FlintTokenizers

/// An encoder model folder ready to use (any `EncoderFamily`, through `ModelFolder.encoder`):
/// tokenizer, checkpoint, plan prepared on a backend, and the sentence-transformers pooling when
/// the folder has one.
///
/// Inputs longer than the model allows (sentence-transformers' `max_seq_length`, else the position
/// table's rows past RoBERTa's offset) are truncated, and the result says so.
public final class EncoderPipeline: Sendable {
    public let model: Encoder
    public let tokenizer: Tokenizer
    public let prepared: any PreparedPlan
    public let sentenceConfig: SentenceTransformersConfig?
    /// Tokens per input, special tokens included.
    public let maxLength: Int
    public let folder: String

    /// One encoded input: ids, type ids, and whether truncation cut it.
    public typealias Encoded = TokenIds

    /// - Parameters:
    ///   - maxBatchTokens: the arena is sized for this many tokens per forward (inputs beyond it are
    ///     run in several forwards).
    ///   - normalize: L2-normalize sentence embeddings (nil: as the folder says). The server passes
    ///     false and normalizes per request (TEI's `normalize`).
    ///   - weightProgress: told of each checkpoint tensor loaded (front ends show it; servers pass nil).
    public init(folder: String, backend: any Backend, outputs: Set<Encoder.Output>, maxBatchTokens: Int = 8192,
                maxSequences: Int = 256, maxLength: Int? = nil, normalize: Bool? = nil,
                weightProgress: ProgressReport? = nil) throws(FlintError)
    {
        let loaded = try ModelFolder.encoder(folder)
        guard loaded.isFolder else { throw .invalidInput("\(folder) is a built-in model without a tokenizer; give a model folder") }
        let config = loaded.config
        let sentence = try SentenceTransformersConfig.load(folder: folder)
        do {
            tokenizer = try Tokenizer.load(folder)
        } catch {
            throw .unreadable(path: folder, reason: "tokenizer: \(error)")
        }
        var limit = min(sentence?.maxSeqLength ?? config.maxSequenceLength, config.maxSequenceLength)
        if let maxLength { limit = min(limit, maxLength) }
        guard limit >= 2 else { throw .invalidInput("max length \(limit) leaves no room for [CLS] and [SEP]") }
        self.maxLength = limit
        let tokens = max(maxBatchTokens, limit)
        // A plain BERT folder (no sentence-transformers files) gets mean pooling without normalization.
        let plan = try loaded.plan(outputs: outputs, maxTokens: tokens, maxSequences: maxSequences,
                                   pooling: sentence?.pooling ?? .mean, normalize: normalize ?? sentence?.normalize ?? false)
        prepared = try backend.prepare(plan, weights: weightProgress.map { ReportingWeightSource(loaded.weights, plan: plan, report: $0) }
                                       ?? loaded.weights)
        self.model = loaded.model
        self.sentenceConfig = sentence
        self.folder = folder
    }

    /// Tokenizes with truncation to `maxLength` (HF's longest-first rule for pairs), in one pass through the
    /// tokenizer's ids-only path: model inputs need no offsets, and an input over the limit is not tokenized twice.
    ///
    /// `truncated` is true exactly when the whole encoding is over the limit; a template that repeats an input can
    /// stay over the limit after cutting, which also counts as truncated. A limit below the special-token count
    /// leaves truncation nothing to cut to, so that case tokenizes in full first and cuts only when it must.
    public func encode(_ text: String, pair: String? = nil) throws(FlintError) -> Encoded {
        do {
            var result: TokenIds
            if maxLength >= tokenizer.specialTokenCount(isPair: pair != nil) {
                result = try tokenizer.encodeIds(text, pair: pair, truncation: Truncation(maxLength: maxLength))
                result.truncated = result.truncated || result.count > maxLength
            } else {
                result = try tokenizer.encodeIds(text, pair: pair)
                if result.count > maxLength {
                    result = try tokenizer.encodeIds(text, pair: pair, truncation: Truncation(maxLength: maxLength))
                    result.truncated = true
                }
            }
            return modelInput(ids: result.ids, typeIds: result.typeIds, truncated: result.truncated)
        } catch {
            throw .invalidInput("tokenizer: \(error)")
        }
    }

    /// A tokenizer's full encoding (question answering's windows need its offsets) as model input.
    public func encoded(_ encoding: Encoding) -> Encoded {
        modelInput(ids: encoding.ids, typeIds: encoding.typeIds, truncated: false)
    }

    /// Models with fewer than two token types (DistilBERT has none, RoBERTa one) get type 0 everywhere: HF does not
    /// pass them `token_type_ids`.
    private func modelInput(ids: [Int32], typeIds: [Int32], truncated: Bool) -> Encoded {
        let types = model.config.typeVocabSize > 1 ? typeIds : [Int32](repeating: 0, count: ids.count)
        return Encoded(ids: ids, typeIds: types, truncated: truncated)
    }

    /// Runs encoded inputs, splitting them into forwards that fit the plan. Returns, per output,
    /// one tensor per input: `[length, columns]` for token outputs, `[1, columns]` for pooled ones.
    public func run(_ inputs: [Encoded]) throws(FlintError) -> [String: [HostTensor]] {
        var results: [String: [HostTensor]] = [:]
        var i = 0
        while i < inputs.count {
            var sequences: [[Int32]] = []
            var types: [[Int32]] = []
            var tokens = 0
            while i < inputs.count, sequences.count < prepared.plan.maxSequences,
                  sequences.isEmpty || tokens + inputs[i].ids.count <= prepared.plan.maxTokens
            {
                sequences.append(inputs[i].ids)
                types.append(inputs[i].typeIds)
                tokens += inputs[i].ids.count
                i += 1
            }
            let batch = TokenBatch(sequences: sequences, typeIds: types)
            let out = try prepared.run(batch)
            for (name, buffer) in prepared.plan.outputs {
                let tensor = out[name]!
                let perToken = prepared.plan.buffers[buffer].rows == .tokens
                for s in 0..<batch.sequenceCount {
                    let rows = perToken ? Int(batch.starts[s])..<Int(batch.starts[s] + batch.lengths[s]) : s..<(s + 1)
                    results[name, default: []].append(tensor.rows(rows))
                }
            }
        }
        return results
    }

    /// Sentence embeddings for `texts`, pooled and normalized as the folder's sentence-transformers
    /// configuration says. Also reports which inputs were truncated.
    public func embed(_ texts: [String]) throws(FlintError) -> (embeddings: [[Float]], truncated: [Bool]) {
        var encoded: [Encoded] = []
        for t in texts { encoded.append(try encode(t)) }
        let out = try run(encoded)
        guard let e = out[Encoder.Output.sentenceEmbedding.rawValue] else {
            throw .invalidInput("this pipeline was built without sentence embeddings")
        }
        return (e.map(\.data), encoded.map(\.truncated))
    }
}
