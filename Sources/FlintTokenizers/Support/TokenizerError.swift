/// Everything that can go wrong while loading or running a tokenizer.
///
/// Messages name the file and the problem so that a user can act on them; none of these
/// is a programmer error, so none of them traps.
public enum TokenizerError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A file could not be read (missing, unreadable, or a directory without tokenizer files).
    case unreadableFile(path: String, reason: String)
    /// A file was read but its content is not what the format requires.
    case malformedFile(path: String, reason: String)
    /// A `tokenizer.json` names a component type Flint does not implement.
    case unsupportedComponent(path: String, component: String, type: String)
    /// The input text cannot be encoded (for example it is not valid UTF-8).
    case invalidInput(String)
    /// Truncation cannot satisfy the requested limits.
    case truncation(String)

    public var description: String {
        switch self {
        case let .unreadableFile(path, reason): return "\(path): cannot read: \(reason)"
        case let .malformedFile(path, reason): return "\(path): \(reason)"
        case let .unsupportedComponent(path, component, type):
            return "\(path): unsupported \(component) type \"\(type)\" (Flint supports: \(Self.supported[component] ?? "none"))"
        case let .invalidInput(reason): return "invalid input: \(reason)"
        case let .truncation(reason): return "truncation: \(reason)"
        }
    }

    static let supported: [String: String] = [
        "normalizer": "BertNormalizer, Precompiled, Replace (literal or simple repeat regex), Strip, Lowercase, Sequence",
        "pre_tokenizer": "BertPreTokenizer, ByteLevel, Metaspace",
        "model": "WordPiece, BPE (byte-level), Unigram",
        "post_processor": "TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel",
        "decoder": "WordPiece, ByteLevel, Metaspace",
    ]
}
