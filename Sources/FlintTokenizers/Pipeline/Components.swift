/// The stages of a tokenizer pipeline, in the order Hugging Face `tokenizers` runs them:
/// normalizer -> pre-tokenizer -> model -> post-processor, and a decoder for the way back.
/// Each concrete stage lives in its own file; `Tokenizer` wires them together.

/// Rewrites text before it is split (lowercasing, accent stripping, ...), keeping origins.
public protocol Normalizer: Sendable {
    func normalize(_ text: inout NormalizedText)
}

/// Splits normalized text into words; the model never sees across a word boundary.
public protocol PreTokenizer: Sendable {
    /// Appends the word ranges (indices into `text.scalars`) to `words`, in order.
    /// May edit `text` first (ByteLevel's prefix space), which is why it is `inout`.
    func preTokenize(_ text: inout NormalizedText, into words: inout [Range<Int>])
}

/// One token produced by a model: its id and the range of normalized scalars it covers.
public struct ModelToken: Sendable, Equatable {
    public var id: Int32
    /// Normalized-scalar range `start ..< end` (never empty).
    public var start: Int32
    public var end: Int32
    public init(id: Int32, start: Int32, end: Int32) {
        self.id = id
        self.start = start
        self.end = end
    }
}

/// Reusable buffers for a model's inner loop, so that tokenizing a word allocates nothing.
/// One scratch per thread; `Tokenizer` creates them.
public struct ModelScratch {
    public var bytes: [UInt8] = []
    public var positions: [Int32] = []
    public var symbols: [Int32] = []
    public var links: [Int32] = []
    /// Best path scores (Unigram's Viterbi).
    public var scores: [Double] = []
    public init() {
        bytes.reserveCapacity(256)
        positions.reserveCapacity(256)
        symbols.reserveCapacity(256)
        links.reserveCapacity(256)
    }
}

/// Turns one word into vocabulary ids (WordPiece, BPE).
public protocol TokenizationModel: Sendable {
    /// Appends the tokens of `text.scalars[word]` to `tokens`.
    func tokenize(_ text: NormalizedText, word: Range<Int>, into tokens: inout [ModelToken], scratch: inout ModelScratch)
    func id(forToken token: String) -> Int32?
    func token(forId id: Int32) -> String?
    /// Number of ids in the model's vocabulary (added tokens excluded).
    var vocabularySize: Int { get }
}

/// Turns tokens back into text (the inverse of pre-tokenizer + model, as far as possible).
public protocol TokenDecoder: Sendable {
    /// `tokens` are vocabulary strings, special tokens already removed if asked.
    func decode(_ tokens: [String]) -> String
}
