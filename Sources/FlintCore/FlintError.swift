/// Errors a user can cause and act on. Messages name the file, tensor, field or limit involved.
/// Programmer errors (broken invariants) trap instead; user input never does.
public enum FlintError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A file or folder is missing or unreadable.
    case unreadable(path: String, reason: String)
    /// A checkpoint file is structurally broken (header, offsets, dtypes, sizes).
    case corruptCheckpoint(path: String, reason: String)
    /// A tensor the model needs is missing, or has the wrong shape or dtype.
    case badTensor(path: String, tensor: String, reason: String)
    /// `config.json` (or another config file) is missing a field or has a wrong value.
    case badConfig(path: String, reason: String)
    /// The model type or architecture is not one Flint implements.
    case unsupportedModel(path: String, reason: String)
    /// An input is out of range (too long, bad shape, bad token id...).
    case invalidInput(String)
    /// Allocation failed on a device.
    case outOfMemory(device: String, bytes: Int, what: String)
    /// CUDA could not be loaded or used.
    case cudaUnavailable(String)
    /// A backend failure with its native error name.
    case backend(String)
    /// A forward produced NaN or infinity: `buffer` names where it was found, `step` the plan step
    /// that wrote it. Never reported as a result.
    case nonFinite(buffer: String, step: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): return "\(path): cannot read: \(reason)"
        case let .corruptCheckpoint(path, reason): return "\(path): corrupt checkpoint: \(reason)"
        case let .badTensor(path, tensor, reason): return "\(path): tensor \"\(tensor)\": \(reason)"
        case let .badConfig(path, reason): return "\(path): \(reason)"
        case let .unsupportedModel(path, reason): return "\(path): unsupported model: \(reason)"
        case let .invalidInput(reason): return "invalid input: \(reason)"
        case let .outOfMemory(device, bytes, what):
            // Weights are fixed by the model: only a smaller encoding of them helps, not a smaller batch.
            let advice = what.hasPrefix("weight ")
                ? "the model's weights do not fit: try --dtype bf16 or int8 (half or a quarter of the bytes) or a smaller model"
                : "try a smaller --batch or --max-length"
            return "out of memory on \(device): \(what) needs \(Self.format(bytes: bytes)); \(advice)"
        case let .cudaUnavailable(why): return "CUDA unavailable: \(why)"
        case let .backend(message): return message
        case let .nonFinite(buffer, step):
            return "the forward produced NaN or infinity in \(buffer), written by \(step); "
                + "a weight or an activation is out of range, so no result is reported"
        }
    }

    public static func format(bytes: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var v = Double(bytes)
        var u = 0
        while v >= 1024, u < units.count - 1 {
            v /= 1024
            u += 1
        }
        return u == 0 ? "\(bytes) B" : "\(Double(Int(v * 10)) / 10) \(units[u])"
    }
}
