/// What a model needs of an encoding and no more: token ids and type ids, as `Encoding` has them
/// (special tokens included), and whether truncation cut tokens off.
public struct TokenIds: Sendable, Equatable {
    public var ids: [Int32]
    /// 0 for the first sequence, 1 for the second (BERT's token type / segment ids).
    public var typeIds: [Int32]
    /// Truncation removed tokens (the full `Encoding` has overflowing windows).
    public var truncated: Bool

    public init(ids: [Int32], typeIds: [Int32], truncated: Bool) {
        self.ids = ids
        self.typeIds = typeIds
        self.truncated = truncated
    }

    public var count: Int { ids.count }
}

extension Tokenizer {
    /// `encode`'s ids and type ids without its offsets, special-token masks, sequence and word ids
    /// (and, for byte-level BPE, without trimming offsets, which looks up each token's string): for
    /// callers that only feed a model, such as the server's embedding routes.
    ///
    /// The same pipeline runs (added tokens, normalizer, pre-tokenizer, model, truncation,
    /// post-processor), so ids, type ids and errors equal `encode`'s for every input; only the
    /// overflowing windows are not returned, `truncated` says whether there were any.
    public func encodeIds(_ text: String, pair: String? = nil, addSpecialTokens: Bool = true,
                          truncation: Truncation? = nil) throws(TokenizerError) -> TokenIds
    {
        var scratch = ModelScratch()
        let encoding = try encode(text, pair: pair, addSpecialTokens: addSpecialTokens, truncation: truncation, detailed: false,
                                  scratch: &scratch)
        return TokenIds(ids: encoding.ids, typeIds: encoding.typeIds, truncated: !encoding.overflowing.isEmpty)
    }
}
