import FlintCore
import FlintJSON

/// A Hugging Face checkpoint: one `.safetensors` file or a sharded set, opened from a model folder
/// or a file path. Supplies weights by checkpoint key as f32 host tensors (`WeightSource`).
///
/// Opening a folder follows transformers' order: `model.safetensors`, else
/// `model.safetensors.index.json` (`{"metadata": ..., "weight_map": {tensor: shard file}}`). A
/// path to a `.safetensors` file or to an index file opens that. Every file is validated when the
/// checkpoint is opened (see `SafetensorsFile`); for a sharded checkpoint every shard named must
/// exist and hold each tensor mapped to it. Tensors a shard holds but the weight map does not list
/// are ignored, as transformers does. Folders with only PyTorch/TF/Flax weights are refused with
/// the command that converts them.
public final class Checkpoint: WeightSource, Sendable {
    public static let singleFileName = "model.safetensors"
    public static let indexFileName = "model.safetensors.index.json"

    /// The folder or file the checkpoint was opened from.
    public let path: String
    /// The `.safetensors` files, in the order first named (one for an unsharded checkpoint).
    public let files: [SafetensorsFile]
    /// Tensor names, sorted.
    public let names: [String]
    /// The single file's `__metadata__`, or the index's `metadata` members that are strings.
    public let metadata: [String: String]
    private let location: [String: Int]

    public init(path: String) throws(FlintError) {
        self.path = path
        let kind = FileSystem.kind(path)
        switch kind {
        case .missing: throw .unreadable(path: path, reason: "no such file or folder")
        case .other: throw .unreadable(path: path, reason: "is not a regular file or folder")
        case let .inaccessible(reason): throw .unreadable(path: path, reason: reason)
        case .file:
            if path.hasSuffix(".json") {
                (files, location, metadata) = try Self.openIndex(path)
            } else if path.hasSuffix(".bin") || path.hasSuffix(".pt") || path.hasSuffix(".pth") || path.hasSuffix(".h5")
                || path.hasSuffix(".msgpack")
            {
                throw .unsupportedModel(path: path, reason: Self.convertAdvice(path))
            } else {
                (files, location, metadata) = try Self.openSingle(path)
            }
        case .folder:
            let single = FileSystem.join(path, Self.singleFileName)
            let index = FileSystem.join(path, Self.indexFileName)
            // Something named model.safetensors that is not a file (a folder, a symbolic-link loop)
            // is reported as what it is, not as a missing checkpoint.
            if FileSystem.kind(single) != .missing {
                (files, location, metadata) = try Self.openSingle(single)
            } else if FileSystem.kind(index) != .missing {
                (files, location, metadata) = try Self.openIndex(index)
            } else {
                let others = ["pytorch_model.bin", "pytorch_model.bin.index.json", "tf_model.h5", "flax_model.msgpack"]
                    .filter { FileSystem.isFile(FileSystem.join(path, $0)) }
                if let found = others.first {
                    throw .unsupportedModel(
                        path: path, reason: "the folder has \(found) but no \(Self.singleFileName); " + Self.convertAdvice(path))
                }
                throw .unreadable(path: path, reason: "no \(Self.singleFileName) or \(Self.indexFileName) in the folder")
            }
        }
        names = location.keys.sorted()
    }

    static func convertAdvice(_ path: String) -> String {
        "only safetensors checkpoints are supported; convert with: python -c \"from transformers import AutoModel; "
            + "AutoModel.from_pretrained('\(path)').save_pretrained('OUT_FOLDER', safe_serialization=True)\" "
            + "(use the model's task class, e.g. AutoModelForSequenceClassification, to keep its head)"
    }

    private static func openSingle(_ file: String) throws(FlintError) -> ([SafetensorsFile], [String: Int], [String: String]) {
        let f = try SafetensorsFile(path: file)
        var location: [String: Int] = [:]
        for n in f.tensorNames { location[n] = 0 }
        return ([f], location, f.metadata)
    }

    private static func openIndex(_ indexPath: String) throws(FlintError) -> ([SafetensorsFile], [String: Int], [String: String]) {
        func bad(_ reason: String) -> FlintError { .corruptCheckpoint(path: indexPath, reason: reason) }
        let json = try FileSystem.json(indexPath)
        guard json.object != nil else { throw bad("index is \(json.typeName), expected a JSON object") }
        guard let weightMap = json["weight_map"] else { throw bad("weight_map is missing") }
        guard let entries = weightMap.object else { throw bad("weight_map is \(weightMap.typeName), expected an object") }
        guard !entries.isEmpty else { throw bad("weight_map is empty") }
        var metadata: [String: String] = [:]
        for (k, v) in json["metadata"]?.object ?? [] {
            if let s = v.string { metadata[k] = s } else if let i = v.int { metadata[k] = String(i) }
        }
        let folder = indexPath.lastIndex(of: "/").map { String(indexPath[..<$0]) } ?? "."

        var files: [SafetensorsFile] = []
        var fileIndex: [String: Int] = [:]
        var location: [String: Int] = [:]
        for (tensor, value) in entries {
            guard let shard = value.string else {
                throw bad("weight_map[\"\(tensor)\"] is \(value.typeName), expected a shard file name")
            }
            guard location[tensor] == nil else { throw bad("weight_map lists tensor \"\(tensor)\" twice") }
            guard !shard.isEmpty, !shard.hasPrefix("/"), !shard.split(separator: "/").contains("..") else {
                throw bad("weight_map puts tensor \"\(tensor)\" in \"\(shard)\", which is not a file name inside the checkpoint folder")
            }
            let index: Int
            if let i = fileIndex[shard] {
                index = i
            } else {
                let shardPath = FileSystem.join(folder, shard)
                guard FileSystem.isFile(shardPath) else {
                    throw bad("shard \"\(shard)\" (holding tensor \"\(tensor)\") is missing: no file \(shardPath)")
                }
                files.append(try SafetensorsFile(path: shardPath))
                index = files.count - 1
                fileIndex[shard] = index
            }
            guard files[index].contains(tensor) else {
                throw bad("weight_map puts tensor \"\(tensor)\" in shard \"\(shard)\", which does not contain it")
            }
            location[tensor] = index
        }
        return (files, location, metadata)
    }

    /// Whether the checkpoint holds `name`.
    public func contains(_ name: String) -> Bool { location[name] != nil }

    /// The dtype and shape of `name`, or nil if absent.
    public func info(_ name: String) -> (dtype: DType, shape: Shape)? {
        location[name].flatMap { files[$0].info(name) }
    }

    /// The file holding `name`.
    public func file(containing name: String) -> SafetensorsFile? {
        location[name].map { files[$0] }
    }

    /// Total bytes of tensor data.
    public var dataBytes: Int { files.reduce(0) { $0 + $1.fileSize - 8 - $1.headerLength } }

    /// The tensor `name` as f32, whatever its shape.
    public func tensor(_ name: String) throws(FlintError) -> HostTensor {
        guard let i = location[name] else { throw .badTensor(path: path, tensor: name, reason: "missing from the checkpoint") }
        return try files[i].floatTensor(name)
    }

    /// The tensor `name` as f32; throws `.badTensor` if it is missing, has another shape, or is
    /// not a floating-point tensor.
    public func tensor(_ name: String, shape: Shape) throws(FlintError) -> HostTensor {
        guard let i = location[name], let info = files[i].info(name) else {
            throw .badTensor(path: path, tensor: name, reason: "missing from the checkpoint")
        }
        guard info.shape == shape else {
            throw .badTensor(path: files[i].path, tensor: name, reason: "has shape \(info.shape), the model needs \(shape)")
        }
        return try files[i].floatTensor(name)
    }
}
