#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import FlintCore
import FlintJSON

/// One `.safetensors` file, memory-mapped read-only and validated completely before any tensor is
/// handed out.
///
/// Layout: 8 bytes little-endian header length `n`, `n` bytes of JSON header, then the data area.
/// The checks match Hugging Face's reference reader (`safetensors` 0.8, `Metadata::validate`):
/// the header length is at most 100,000,000 and fits in the file; the header is a JSON object whose
/// optional `__metadata__` maps strings to strings; every other member has a known `dtype`, a
/// `shape` of non-negative integers whose byte size does not overflow, and `data_offsets`
/// `[begin, end]` holding exactly that many bytes; sorted by offset, the tensors tile the data
/// area from 0 to its end with no overlap, no gap and no trailing bytes. Errors are
/// `FlintError.corruptCheckpoint` naming the file and, where there is one, the tensor.
///
/// Differences from the reference reader: duplicate tensor names are refused outright (serde keeps
/// the last one), and a shape entry written `4.0` is accepted as 4 (the JSON reader keeps numbers
/// as `Double`). Other dtypes the reference knows (U16, U32, U64, F8_*, C64...) are refused.
///
/// Buffers from `rawBytes` point into the mapping and are valid while this object is alive. As with
/// any mmap reader, truncating the file on disk while it is mapped makes later reads fault.
public final class SafetensorsFile: Sendable {
    /// The largest header accepted (the reference implementation's `MAX_HEADER_SIZE`).
    public static let maxHeaderBytes = 100_000_000

    struct Entry: Sendable {
        var dtype: DType
        var shape: Shape
        /// Offset of the first byte from the start of the file.
        var fileOffset: Int
        var byteCount: Int
    }

    /// The path the file was opened from (used in every error message).
    public let path: String
    /// Tensor names in header order (`__metadata__` excluded).
    public let tensorNames: [String]
    /// The header's `__metadata__` map (empty when absent).
    public let metadata: [String: String]
    /// Size of the whole file in bytes.
    public let fileSize: Int
    /// Length of the JSON header in bytes (the data area starts at `8 + headerLength`).
    public let headerLength: Int
    let entries: [String: Entry]
    nonisolated(unsafe) private let base: UnsafeMutableRawPointer

    /// Maps and validates `path`. Throws `.unreadable` when the file cannot be opened or mapped and
    /// `.corruptCheckpoint` when its contents are malformed.
    public init(path: String) throws(FlintError) {
        self.path = path
        switch FileSystem.kind(path) {
        case .missing: throw .unreadable(path: path, reason: "no such file")
        case .folder: throw .unreadable(path: path, reason: "is a folder, expected a .safetensors file")
        case .other: throw .unreadable(path: path, reason: "is not a regular file (a device, FIFO or socket)")
        case let .inaccessible(reason): throw .unreadable(path: path, reason: reason)
        case .file: break
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .unreadable(path: path, reason: FileSystem.errnoText()) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .unreadable(path: path, reason: FileSystem.errnoText()) }
        let size = Int(st.st_size)
        guard size >= 8 else {
            throw .corruptCheckpoint(path: path, reason: "file is \(size) bytes, too short for the 8-byte header length")
        }
        let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let mapped, mapped != MAP_FAILED else {
            throw .unreadable(path: path, reason: "mmap failed: \(FileSystem.errnoText())")
        }
        let parsed: Parsed
        do {
            parsed = try Self.parse(UnsafeRawBufferPointer(start: mapped, count: size), path: path)
        } catch {
            munmap(mapped, size)
            throw error
        }
        base = mapped
        fileSize = size
        headerLength = parsed.headerLength
        tensorNames = parsed.names
        metadata = parsed.metadata
        entries = parsed.entries
    }

    deinit {
        munmap(base, fileSize)
    }

    /// Whether the file holds a tensor named `name`.
    public func contains(_ name: String) -> Bool { entries[name] != nil }

    /// The dtype and shape of `name`, or nil if the file has no such tensor.
    public func info(_ name: String) -> (dtype: DType, shape: Shape)? {
        entries[name].map { ($0.dtype, $0.shape) }
    }

    /// The tensor's bytes as stored (little-endian, possibly unaligned), valid while `self` lives.
    public func rawBytes(_ name: String) -> UnsafeRawBufferPointer? {
        guard let e = entries[name] else { return nil }
        return UnsafeRawBufferPointer(start: UnsafeRawPointer(base) + e.fileOffset, count: e.byteCount)
    }

    /// The tensor converted to f32 (from F32, F16, BF16 or F64, bit-exact except F64 rounding).
    /// Throws `.badTensor` if it is missing, has an integer/bool dtype, or holds NaN or infinity.
    public func floatTensor(_ name: String) throws(FlintError) -> HostTensor {
        guard let e = entries[name] else { throw .badTensor(path: path, tensor: name, reason: "missing from the file") }
        guard e.dtype.isFloatingPoint else {
            throw .badTensor(path: path, tensor: name,
                             reason: "has dtype \(e.dtype.rawValue); only F32, F16, BF16 and F64 tensors can be loaded as floats")
        }
        let count = e.shape.count
        let src = UnsafeRawBufferPointer(start: UnsafeRawPointer(base) + e.fileOffset, count: e.byteCount)
        let data = [Float](unsafeUninitializedCapacity: count) { out, initialized in
            Self.convert(src, dtype: e.dtype, count: count, into: out)
            initialized = count
        }
        // A NaN or infinite weight makes every output NaN (or silently token 0): refuse it here, on
        // the load path every backend shares.
        if !data.withUnsafeBufferPointer({ FiniteCheck.allFinite($0) }) {
            let first = data.firstIndex { !$0.isFinite }!
            let f64 = e.dtype == .f64 ? ", or an F64 value beyond the f32 range" : ""
            throw .badTensor(path: path, tensor: name,
                             reason: "holds \(data.count { !$0.isFinite }) non-finite values (NaN or infinity; the first, "
                                 + "\(data[first]), at flat index \(first)\(f64)); the checkpoint is corrupt")
        }
        return HostTensor(shape: e.shape, data: data)
    }

    static func convert(_ src: UnsafeRawBufferPointer, dtype: DType, count: Int, into out: UnsafeMutableBufferPointer<Float>) {
        guard count > 0 else { return }
        switch dtype {
        case .f32:
            #if _endian(little)
            UnsafeMutableRawPointer(out.baseAddress!).copyMemory(from: src.baseAddress!, byteCount: count * 4)
            #else
                for i in 0..<count {
                    out[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
                }
            #endif
        case .f16:
            for i in 0..<count {
                out[i] = FloatConversion.float(fromHalf: UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
            }
        case .bf16:
            for i in 0..<count {
                out[i] = FloatConversion.float(
                    fromBFloat16: UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
            }
        case .f64:
            for i in 0..<count {
                out[i] = Float(Double(bitPattern: UInt64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))))
            }
        default:
            preconditionFailure("convert called with non-float dtype \(dtype)")
        }
    }

    // MARK: - Header validation

    struct Parsed {
        var headerLength: Int
        var names: [String]
        var metadata: [String: String]
        var entries: [String: Entry]
    }

    /// Validates a whole file image as `init` does, without a file (for fuzzing and callers that
    /// hold the bytes); `path` is used in error messages.
    public static func validate(image: UnsafeRawBufferPointer, path: String) throws(FlintError) {
        _ = try parse(image, path: path)
    }

    /// Validates a whole file image. Separate from `init` so tests and callers can check bytes
    /// without a file.
    static func parse(_ file: UnsafeRawBufferPointer, path: String) throws(FlintError) -> Parsed {
        func corrupt(_ reason: String) -> FlintError { .corruptCheckpoint(path: path, reason: reason) }
        let size = file.count
        guard size >= 8 else { throw corrupt("file is \(size) bytes, too short for the 8-byte header length") }
        let n = UInt64(littleEndian: file.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        guard n > 0 else { throw corrupt("header length is 0") }
        guard n <= UInt64(maxHeaderBytes) else {
            throw corrupt("header length \(n) is larger than the \(maxHeaderBytes)-byte limit")
        }
        let headerLength = Int(n)
        guard 8 + headerLength <= size else {
            throw corrupt("header length \(headerLength) runs past the end of the file (8 + \(headerLength) > \(size) bytes)")
        }
        let header = [UInt8](UnsafeRawBufferPointer(rebasing: file[8..<(8 + headerLength)]))
        let json: JSONValue
        do {
            json = try JSONParser.parse(header)
        } catch {
            throw corrupt("header is not valid JSON (byte \(error.offset) of \(headerLength)): \(error.reason)")
        }
        guard let members = json.object else { throw corrupt("header is \(json.typeName), expected a JSON object") }

        let dataStart = 8 + headerLength
        let dataSize = size - dataStart
        var names: [String] = []
        var entries: [String: Entry] = [:]
        var metadata: [String: String] = [:]
        var sawMetadata = false
        var ranges: [(begin: Int, end: Int, name: String)] = []

        for (name, value) in members {
            if name == "__metadata__" {
                guard !sawMetadata else { throw corrupt("__metadata__ appears twice in the header") }
                sawMetadata = true
                if value.isNull { continue }
                guard let map = value.object else { throw corrupt("__metadata__ is \(value.typeName), expected an object of strings") }
                for (key, v) in map {
                    guard let s = v.string else {
                        throw corrupt("__metadata__ \"\(key)\" is \(v.typeName), expected a string")
                    }
                    metadata[key] = s
                }
                continue
            }
            func bad(_ reason: String) -> FlintError { corrupt("tensor \"\(name)\": \(reason)") }
            guard entries[name] == nil else { throw bad("appears twice in the header") }
            guard value.object != nil else { throw bad("entry is \(value.typeName), expected an object") }

            guard let dtypeValue = value["dtype"] else { throw bad("dtype is missing") }
            guard let dtypeName = dtypeValue.string else { throw bad("dtype is \(dtypeValue.typeName), expected a string") }
            guard let dtype = DType(rawValue: dtypeName) else {
                throw bad("dtype \"\(dtypeName)\" is not supported (\(DType.allCases.map(\.rawValue).joined(separator: ", ")))")
            }

            guard let shapeValue = value["shape"] else { throw bad("shape is missing") }
            guard let shapeItems = shapeValue.array else { throw bad("shape is \(shapeValue.typeName), expected an array") }
            var dims: [Int] = []
            for item in shapeItems {
                guard let d = item.int, d >= 0 else {
                    throw bad("shape \(shapeValue.serialized) is not a list of non-negative integers")
                }
                dims.append(d)
            }
            let shape = Shape(dims)
            guard let count = shape.checkedCount else { throw bad("shape \(shape) has more elements than fit in 64 bits") }
            let (needed, overflow) = count.multipliedReportingOverflow(by: dtype.byteSize)
            guard !overflow else { throw bad("shape \(shape) of \(dtypeName) has more bytes than fit in 64 bits") }

            guard let offsetsValue = value["data_offsets"] else { throw bad("data_offsets is missing") }
            guard let offsetItems = offsetsValue.array, offsetItems.count == 2,
                  let begin = offsetItems[0].int, let end = offsetItems[1].int, begin >= 0, end >= 0
            else { throw bad("data_offsets \(offsetsValue.serialized) is not [begin, end] of non-negative integers") }
            guard begin <= end else { throw bad("data_offsets [\(begin), \(end)]: begin is after end") }
            guard end <= dataSize else {
                throw bad("data_offsets [\(begin), \(end)] run past the end of the data area (\(dataSize) bytes)")
            }
            guard end - begin == needed else {
                throw bad("data_offsets [\(begin), \(end)] hold \(end - begin) bytes but shape \(shape) of \(dtypeName) needs \(needed)")
            }
            names.append(name)
            entries[name] = Entry(dtype: dtype, shape: shape, fileOffset: dataStart + begin, byteCount: needed)
            ranges.append((begin, end, name))
        }

        // The reference reader sorts by (begin, end) and requires each tensor to start where the
        // previous one ended, the first at 0, and the last to end at the end of the file.
        ranges.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var covered = 0
        var previous: String?
        for r in ranges {
            if r.begin < covered, let previous {
                throw corrupt(
                    "tensor \"\(r.name)\": data_offsets [\(r.begin), \(r.end)] overlap tensor \"\(previous)\", which ends at \(covered)")
            }
            if r.begin > covered {
                let after = previous.map { "after tensor \"\($0)\"" } ?? "at the start of the data area"
                throw corrupt(
                    "tensor \"\(r.name)\": data_offsets [\(r.begin), \(r.end)] leave bytes \(covered)..<\(r.begin) unused \(after) (tensors must be packed without gaps)"
                )
            }
            covered = r.end
            previous = r.name
        }
        guard covered == dataSize else {
            throw corrupt(
                "the tensors cover \(covered) of the \(dataSize) bytes of the data area; \(dataSize - covered) trailing bytes are not part of any tensor"
            )
        }
        return Parsed(headerLength: headerLength, names: names, metadata: metadata, entries: entries)
    }
}
