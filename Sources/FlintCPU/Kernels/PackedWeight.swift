// A linear layer's weight W[n, k] (PyTorch nn.Linear layout, row-major [out, in]) packed once at
// load time into the panel layout the GEMM micro-kernel streams: ceil(n/NR) panels of [k][NR]
// floats, zero padded, 64-byte aligned. NR is chosen for the ISA at pack time (32 for AVX-512,
// 16 for AVX2); the portable kernel reads either layout.
import CFlintCPU
import FlintCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public struct PackedWeight: @unchecked Sendable {
    /// How the weights are stored (chosen when a plan is prepared).
    public enum Format: Sendable, Equatable, CustomStringConvertible {
        /// f32 panels of the ISA's width.
        case f32
        /// bf16 (round to nearest even), panels of 16; f32 accumulation.
        case bf16
        /// int8, symmetric per output channel, panels of 16 columns of 4-k groups; activations
        /// quantized per row at run time, s32 accumulation, in the `Int8Scheme` fixed at packing.
        case int8Dynamic
        /// The same int8 weights with f32 activations (weight-only: the GEMV of a decode step).
        case int8WeightOnly
        /// int8 with one symmetric scale per 64 consecutive input features (a last partial group when k % 64 != 0)
        /// per output channel: the int8 panels of `.int8WeightOnly`, streamed for up to 4 rows, multiplied by
        /// activations rounded to int16 per row for 5-127 rows on AVX2 (`CPUKernels.groupedInt8Activations`),
        /// widened to f32 per tile otherwise. Finer scales than one per channel, for layers whose weights are too uneven
        /// along k for a single scale (see `CPUPrecision.int8`).
        case int8Grouped

        public var description: String {
            switch self {
            case .f32: return "f32"
            case .bf16: return "bf16"
            case .int8Dynamic: return "int8 (dynamic activations)"
            case .int8WeightOnly: return "int8 (weight-only)"
            case .int8Grouped: return "int8 (weight-only, 64-k groups)"
            }
        }

        var code: Int32 {
            switch self {
            case .f32: return Int32(FLINT_W_F32)
            case .bf16: return Int32(FLINT_W_BF16)
            case .int8Dynamic: return Int32(FLINT_W_INT8_DYN)
            case .int8WeightOnly: return Int32(FLINT_W_INT8)
            case .int8Grouped: return Int32(FLINT_W_INT8_G64)
            }
        }
    }

    final class Storage: @unchecked Sendable {
        let pointer: UnsafeMutableRawPointer
        let bytes: Int
        init(bytes: Int, what: @autoclosure () -> String) throws(FlintError) {
            var raw: UnsafeMutableRawPointer?
            let size = max(64, bytes)
            // Refuse what cannot fit rather than let the OS kill the process on first touch (as the arena does).
            let physical = Int(sysconf(Int32(_SC_PHYS_PAGES))) * Int(sysconf(Int32(_SC_PAGESIZE)))
            guard size < physical, posix_memalign(&raw, 64, size) == 0, let raw else {
                throw .outOfMemory(device: "cpu", bytes: size, what: what())
            }
            pointer = raw
            self.bytes = bytes
        }
        deinit { free(pointer) }
    }

    /// Output features (rows of W).
    public let n: Int
    /// Input features (columns of W).
    public let k: Int
    /// Panel width of the layout.
    public let panelWidth: Int
    /// ISA the layout was packed for (resolved, never .auto).
    public let isa: CPUISA
    public let format: Format
    let storage: Storage
    /// int8: one scale per output column, padded to whole panels; `.int8Grouped`: one per (panel, 64-k group,
    /// column), [panels][groups][16] (nil for f32 and bf16).
    let scales: Storage?

    /// Packed floats (ceil(n/panelWidth) * k * panelWidth) of an `.f32` weight.
    public var packed: UnsafePointer<Float> {
        precondition(format == .f32, "PackedWeight.packed: the weight is \(format)")
        return UnsafePointer(storage.pointer.assumingMemoryBound(to: Float.self))
    }
    /// The arithmetic of an `.int8Dynamic` weight (nil for other formats).
    public var int8Scheme: Int8Scheme? {
        format == .int8Dynamic ? Int8Scheme(rawValue: flint_int8_dynamic_scheme(storage.pointer, n, k)) : nil
    }
    /// Bytes of packed storage (weights and scales).
    public var byteCount: Int { storage.bytes + (scales?.bytes ?? 0) }
    var scalePointer: UnsafePointer<Float>? { scales.map { UnsafePointer($0.pointer.assumingMemoryBound(to: Float.self)) } }

    /// Packs weight[n, k] with row stride ldw (default k) in `format`; `.int8Dynamic` in `scheme`
    /// (default: `Int8Scheme.cpuDefault`); `name` (a checkpoint key) is for the error when the packed
    /// copy cannot be allocated (`FlintError.outOfMemory`).
    public init(weight: UnsafePointer<Float>, n: Int, k: Int, ldw: Int? = nil, isa: CPUISA = .auto, format: Format = .f32,
                scheme: Int8Scheme? = nil, name: String? = nil) throws(FlintError) {
        precondition(n > 0 && k >= 0, "PackedWeight: bad shape [\(n), \(k)]")
        let resolved = isa == .auto ? CPUFeatures.gemmISA : isa.resolved
        let what = "weight " + (name.map { $0 + " " } ?? "") + "[\(n), \(k)] packed as \(format)"
        self.n = n
        self.k = k
        self.isa = resolved
        self.format = format
        if format == .f32 {
            let nr = Int(flint_pack_nr(resolved.rawValue))
            panelWidth = nr
            storage = try Storage(bytes: flint_pack_floats(Int32(nr), n, k) * MemoryLayout<Float>.stride, what: what)
            scales = nil
            flint_pack_weight(weight, n, k, ldw ?? k, Int32(nr), storage.pointer.assumingMemoryBound(to: Float.self))
        } else {
            panelWidth = 16
            storage = try Storage(bytes: flint_pack_lowp_bytes(format.code, n, k), what: what)
            let scaleBytes = flint_pack_lowp_scale_count(format.code, n, k) * MemoryLayout<Float>.stride
            let scales: Storage? = try format == .bf16 ? nil : Storage(bytes: scaleBytes, what: what)
            self.scales = scales
            let scalePointer = scales?.pointer.assumingMemoryBound(to: Float.self)
            if format == .int8Dynamic {
                flint_pack_weight_int8_dynamic((scheme ?? .cpuDefault).rawValue, weight, n, k, ldw ?? k, storage.pointer, scalePointer)
            } else {
                flint_pack_weight_lowp(format.code, weight, n, k, ldw ?? k, storage.pointer, scalePointer)
            }
        }
    }

    /// Packs a weight given as a Swift array (row-major [n, k]).
    public init(weight: [Float], n: Int, k: Int, isa: CPUISA = .auto, format: Format = .f32, scheme: Int8Scheme? = nil,
                name: String? = nil) throws(FlintError) {
        precondition(weight.count >= n * k, "PackedWeight: \(weight.count) floats for [\(n), \(k)]")
        self = try weight.withUnsafeBufferPointer { buffer throws(FlintError) in
            try PackedWeight(weight: buffer.baseAddress!, n: n, k: k, isa: isa, format: format, scheme: scheme, name: name)
        }
    }

    /// The weights this packing multiplies by, as row-major [n, k] f32: for a low-precision format
    /// the rounded or dequantized values (what a reference GEMM must use to check the kernels).
    public func dequantized() -> [Float] {
        precondition(format != .f32, "dequantized: the weight is f32")
        return [Float](unsafeUninitializedCapacity: n * k) { out, count in
            flint_unpack_weight_lowp(format.code, storage.pointer, scalePointer, n, k, out.baseAddress)
            count = n * k
        }
    }
}

/// The arithmetic of a dynamic int8 GEMM (activations x weights), fixed when the weight is packed.
/// On AVX2 without VNNI the unsigned schemes run on vpmaddubsw, whose 16-bit pair sums must not
/// saturate: one side gives up a bit. See CFlintCPU.h (FLINT_I8_*).
public enum Int8Scheme: Int32, Sendable, CaseIterable, CustomStringConvertible {
    /// Activations symmetric per row (-127...127), 8-bit weights (vpmaddwd / VNNI vpdpwssd).
    case s8s8 = 0
    /// Activations asymmetric per row (0...255 with a zero point), 7-bit weights (-63...63).
    case u8s7 = 1
    /// Activations asymmetric 0...127, 8-bit weights.
    case u7s8 = 2
    /// Activations asymmetric 0...127, 7-bit weights: two vpmaddubsw summed in 16 bits per vpmaddwd.
    case u7s7 = 3

    public var description: String { ["s8s8", "u8s7", "u7s8", "u7s7"][Int(rawValue)] }
    /// Largest quantized weight magnitude (127 or 63).
    public var weightMax: Int { self == .u8s7 || self == .u7s7 ? 63 : 127 }
    /// Quantized activation levels above the lowest (254 symmetric steps, 255 or 127).
    public var activationSteps: Int { [254, 255, 127, 127][Int(rawValue)] }
    /// What this CPU packs `.int8Dynamic` weights in (env FLINT_INT8_SCHEME overrides; a value it does
    /// not name keeps the CPU's choice and says so once on stderr).
    public static var cpuDefault: Int8Scheme {
        warnOnceAboutEnvironment
        return cpuChoice
    }

    private static var cpuChoice: Int8Scheme { Int8Scheme(rawValue: flint_int8_default_scheme()) ?? .s8s8 }

    /// The stderr line for a FLINT_INT8_SCHEME value that names no scheme (nil when unset or valid);
    /// the C layer matches the names exactly, so this does too.
    static func environmentWarning(value: String?, keeping kept: Int8Scheme) -> String? {
        guard let value, !allCases.contains(where: { $0.description == value }) else { return nil }
        let names = allCases.map(\.description).joined(separator: ", ")
        return "flint: FLINT_INT8_SCHEME=\(value) is not one of \(names); ignoring it (this CPU's int8 scheme: \(kept))\n"
    }

    private static let warnOnceAboutEnvironment: Void = {
        let value = getenv("FLINT_INT8_SCHEME").map { String(cString: $0) }
        if let line = environmentWarning(value: value, keeping: cpuChoice) { writeAll(line, to: 2) }
    }()
}
