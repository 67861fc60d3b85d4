import FlintJSON
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Model folders made hostile on purpose: a fixture copied to a temporary folder with config.json
/// fields replaced, one float of a tensor overwritten in model.safetensors, or tokenizer files added.
public enum HostileFolders {
    /// Copies `Tests/Fixtures/<fixture>` (config.json and model.safetensors) to a new temporary
    /// folder and returns its path.
    /// - Parameters:
    ///   - config: members of config.json to replace or add.
    ///   - poke: writes the f32 `value` over element `index` of the (F32) tensor.
    ///   - vocabulary: when given, a `vocab.txt` with these tokens (a BERT tokenizer).
    public static func copy(_ fixture: String, config: [(String, JSONValue)] = [],
                            poke: (tensor: String, index: Int, value: Float)? = nil, vocabulary: [String]? = nil) throws -> String {
        let source = TestPaths.fixture(fixture)
        let folder = TestPaths.temporaryFolder()
        var json = try JSONParser.parse(try required(TestPaths.read(source + "/config.json"), source + "/config.json"))
        if case var .object(members) = json {
            for (key, value) in config {
                if let i = members.firstIndex(where: { $0.key == key }) { members[i].value = value } else { members.append((key, value)) }
            }
            json = .object(members)
        }
        TestPaths.write(json.serialized, to: folder + "/config.json")
        var weights = try required(TestPaths.read(source + "/model.safetensors"), source + "/model.safetensors")
        if let poke {
            let offset = try dataOffset(of: poke.tensor, in: weights) + 4 * poke.index
            withUnsafeBytes(of: poke.value.bitPattern.littleEndian) { weights.replaceSubrange(offset..<(offset + 4), with: $0) }
        }
        TestPaths.write(bytes: weights, to: folder + "/model.safetensors")
        if let vocabulary { TestPaths.write(vocabulary.joined(separator: "\n") + "\n", to: folder + "/vocab.txt") }
        return folder
    }

    /// A small BERT vocabulary (ids below the tiny fixtures' 99): the specials and a few words.
    public static let tinyVocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "flint", "the", "a"]

    /// The file offset of the first byte of `tensor`'s data in a safetensors image.
    static func dataOffset(of tensor: String, in image: [UInt8]) throws -> Int {
        let n = image[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header = try JSONParser.parse(Array(image[8..<(8 + n)]))
        guard let begin = header[tensor]?["data_offsets"]?.array?.first?.int, header[tensor]?["dtype"]?.string == "F32" else {
            throw HostileFolderError(message: "no F32 tensor \(tensor) in the checkpoint")
        }
        return 8 + n + begin
    }

    static func required(_ bytes: [UInt8]?, _ path: String) throws -> [UInt8] {
        guard let bytes else { throw HostileFolderError(message: "cannot read \(path)") }
        return bytes
    }
}

public struct HostileFolderError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
