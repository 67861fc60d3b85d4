// A linear layer's weight W[n, k] (PyTorch nn.Linear layout, row-major [out, in]) packed once at
// load time into the panel layout the GEMM micro-kernel streams: ceil(n/NR) panels of [k][NR]
// floats, zero padded, 64-byte aligned. NR is chosen for the ISA at pack time (32 for AVX-512,
// 16 for AVX2); the portable kernel reads either layout.
import CFlintCPU
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public struct PackedWeight: @unchecked Sendable {
    final class Storage: @unchecked Sendable {
        let pointer: UnsafeMutablePointer<Float>
        let count: Int
        init(count: Int) {
            var raw: UnsafeMutableRawPointer?
            let bytes = max(64, count * MemoryLayout<Float>.stride)
            guard posix_memalign(&raw, 64, bytes) == 0, let raw else {
                fatalError("PackedWeight: cannot allocate \(bytes) bytes")
            }
            pointer = raw.bindMemory(to: Float.self, capacity: max(16, count))
            self.count = count
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
    let storage: Storage

    /// Packed floats (ceil(n/panelWidth) * k * panelWidth).
    public var packed: UnsafePointer<Float> { UnsafePointer(storage.pointer) }
    /// Bytes of packed storage.
    public var byteCount: Int { storage.count * MemoryLayout<Float>.stride }

    /// Packs weight[n, k] with row stride ldw (default k).
    public init(weight: UnsafePointer<Float>, n: Int, k: Int, ldw: Int? = nil, isa: CPUISA = .auto) {
        precondition(n > 0 && k >= 0, "PackedWeight: bad shape [\(n), \(k)]")
        let resolved = isa == .auto ? CPUFeatures.gemmISA : isa.resolved
        let nr = Int(flint_pack_nr(resolved.rawValue))
        self.n = n
        self.k = k
        self.panelWidth = nr
        self.isa = resolved
        storage = Storage(count: flint_pack_floats(Int32(nr), n, k))
        flint_pack_weight(weight, n, k, ldw ?? k, Int32(nr), storage.pointer)
    }

    /// Packs a weight given as a Swift array (row-major [n, k]).
    public init(weight: [Float], n: Int, k: Int, isa: CPUISA = .auto) {
        precondition(weight.count >= n * k, "PackedWeight: \(weight.count) floats for [\(n), \(k)]")
        self = weight.withUnsafeBufferPointer { PackedWeight(weight: $0.baseAddress!, n: n, k: k, isa: isa) }
    }
}
