import FlintCore

/// A device address (CUdeviceptr). Under the emulated driver it is a host address.
public typealias DevicePointer = UInt64

/// One kernel argument, passed by value as cuLaunchKernel's `kernelParams` expects.
public enum KernelArgument: Sendable, Equatable {
    case pointer(DevicePointer)
    case int32(Int32)
    case int64(Int64)
    case float(Float)
}

/// `C[m, n] = activation(A[m, k] · W[n, k]ᵀ + bias[n])`, all row-major in `dtype`, fp32
/// accumulation, one rounding to `dtype` at the end: the linear layers (cuBLASLt on a GPU, with
/// the bias and the activation in its epilogue).
public struct GEMMDescriptor: Sendable, Equatable {
    public var m: Int, n: Int, k: Int
    public var a: DevicePointer, lda: Int
    public var w: DevicePointer, ldw: Int
    public var c: DevicePointer, ldc: Int
    public var bias: DevicePointer?
    public var activation: GEMMActivation = .none
    public var dtype: DType

    public init(m: Int, n: Int, k: Int, a: DevicePointer, lda: Int, w: DevicePointer, ldw: Int, c: DevicePointer, ldc: Int,
                bias: DevicePointer? = nil, activation: GEMMActivation = .none, dtype: DType) {
        (self.m, self.n, self.k, self.a, self.lda, self.w, self.ldw, self.c, self.ldc) = (m, n, k, a, lda, w, ldw, c, ldc)
        (self.bias, self.activation, self.dtype) = (bias, activation, dtype)
    }

    /// What cuBLASLt's algorithm choice depends on: everything but the addresses. GEMMs of one
    /// shape (the same projection in every layer) share one heuristic query.
    public var shapeKey: GEMMShapeKey {
        // cuBLASLt's heuristic assumes 256-byte aligned operands unless told otherwise.
        var alignment = 256
        for p in [a, w, c, bias ?? 0] where p != 0 { alignment = Swift.min(alignment, 1 << p.trailingZeroBitCount) }
        return GEMMShapeKey(m: m, n: n, k: k, lda: lda, ldw: ldw, ldc: ldc, hasBias: bias != nil, activation: activation, dtype: dtype,
                            alignment: alignment)
    }

    /// "1x50257x768 f16 bias+gelu_tanh" (m x n x k): how errors and notices name a GEMM.
    public var summary: String {
        let epilogue = [bias == nil ? nil : "bias", activation == .geluTanh ? "gelu_tanh" : nil].compactMap { $0 }
        return "\(m)x\(n)x\(k) \(dtype)" + (epilogue.isEmpty ? "" : " " + epilogue.joined(separator: "+"))
    }
}

/// A GEMM's shape, types and epilogue, without its addresses (see `GEMMDescriptor.shapeKey`).
public struct GEMMShapeKey: Hashable, Sendable {
    public var m: Int, n: Int, k: Int, lda: Int, ldw: Int, ldc: Int
    public var hasBias: Bool
    public var activation: GEMMActivation
    public var dtype: DType
    /// The largest power of two (at most 256) that every operand's address is a multiple of.
    public var alignment: Int
}

/// Whether cuBLASLt runs a GEMM as described (`CUDADriver.prepareGEMM`).
public enum GEMMSupport: Sendable, Equatable {
    case supported
    /// cuBLASLt has no algorithm for it (typically a fused epilogue on one-row operands); `status`
    /// is cuBLASLt's status name ("CUBLAS_STATUS_NOT_SUPPORTED").
    case refused(status: String)
}

/// What a GEMM's epilogue can apply: cuBLASLt's GELU is the tanh form (GPT-2's gelu_new); the
/// exact (erf) GELU of BERT runs in Flint's own kernel.
public enum GEMMActivation: Sendable, Hashable {
    case none
    case geluTanh
}

/// Everything the CUDA backend needs from CUDA, as one protocol: the real implementation calls the
/// dlopen'd driver and cuBLASLt; the emulated one (FlintCUDAEmulation) keeps "device" memory on the
/// host, runs launches on the same .cu sources compiled for the CPU, uses a CPU GEMM for cuBLASLt,
/// and records/replays graph captures, so the whole plan runs in CI.
public protocol CUDADriver: AnyObject, Sendable {
    /// "NVIDIA H100 80GB HBM3 (sm_90)", "emulated".
    var deviceName: String { get }
    /// The real architecture kernels are compiled for ("sm_90"); nil when kernels need no compiling.
    var architecture: String? { get }
    /// The CUDA version the driver supports (`cuDriverGetVersion`: 13000 for 13.0); nil when emulated.
    var cudaVersion: Int? { get }

    func allocate(bytes: Int, what: String) throws(FlintError) -> DevicePointer
    func free(_ pointer: DevicePointer)
    /// Host -> device copy (synchronous with respect to the stream's previous work).
    func copy(toDevice destination: DevicePointer, from source: UnsafeRawPointer, bytes: Int) throws(FlintError)
    /// Sets `bytes` bytes at `destination` to zero (queued on the stream).
    func zero(_ destination: DevicePointer, bytes: Int) throws(FlintError)
    /// Device -> device copy (queued on the stream).
    func copy(deviceToDevice destination: DevicePointer, from source: DevicePointer, bytes: Int) throws(FlintError)
    /// Device -> host copy after all queued work finished.
    func copy(toHost destination: UnsafeMutableRawPointer, from source: DevicePointer, bytes: Int) throws(FlintError)

    /// Makes the functions of `source` launchable (loads the CUBIN on a GPU). Loading a source
    /// that is already loaded does nothing: modules live as long as the driver.
    func load(_ source: KernelSource, cubin: [UInt8]?) throws(FlintError)
    /// Whether `load` already made the functions of the kernel file `name` launchable.
    func hasLoaded(_ name: String) -> Bool
    /// Queues `kernel` with the given launch geometry on the driver's stream.
    func launch(_ kernel: String, grid: (UInt32, UInt32, UInt32), block: (UInt32, UInt32, UInt32), sharedBytes: UInt32,
                arguments: [KernelArgument]) throws(FlintError)
    /// Chooses cuBLASLt's algorithm for `g`'s shape key (heuristic query with the workspace allowed)
    /// and caches it. Must run outside stream capture: cuBLASLt's heuristic query is not capturable.
    /// A configuration cuBLASLt has no algorithm for is `.refused`, not an error.
    func prepareGEMM(_ g: GEMMDescriptor) throws(FlintError) -> GEMMSupport
    /// Queues a GEMM on the driver's stream with the algorithm `prepareGEMM` chose for its shape
    /// (an unprepared shape is an error: a query inside a capture would break it).
    func gemm(_ g: GEMMDescriptor) throws(FlintError)
    /// Waits for all queued work.
    func synchronize() throws(FlintError)

    /// A new event for timing the stream (CUDA events: device time, not host time).
    func makeEvent() throws(FlintError) -> Int
    /// Queues `event` on the stream: it completes when the work queued before it has.
    func record(_ event: Int) throws(FlintError)
    /// Device time between two recorded events, after both completed (call `synchronize` first).
    func elapsedMilliseconds(from start: Int, to end: Int) throws(FlintError) -> Double
    /// Releases an event made by `makeEvent`.
    func destroyEvent(_ event: Int)

    /// Starts recording the stream's work into a graph instead of running it.
    func beginCapture() throws(FlintError)
    /// Stops recording; returns a graph handle to replay.
    func endCapture() throws(FlintError) -> Int
    /// Replays a captured graph (one launch on a GPU).
    func replay(_ graph: Int) throws(FlintError)
    /// Releases a graph made by `endCapture` (a prepared plan's graphs die with it).
    func destroyGraph(_ graph: Int)
}

extension DType {
    /// The kernel name suffix for activations of this type.
    var kernelSuffix: String {
        switch self {
        case .f16: return "f16"
        case .bf16: return "bf16"
        default: return "f32"
        }
    }
}

extension CUDADriver {
    /// Copies a host array to the device.
    public func copy(toDevice destination: DevicePointer, _ bytes: [UInt8]) throws(FlintError) {
        let r: Result<Void, FlintError> = bytes.withUnsafeBytes { raw in
            Result { () throws(FlintError) in try copy(toDevice: destination, from: raw.baseAddress!, bytes: raw.count) }
        }
        try r.get()
    }

    /// Copies `bytes` bytes from the device into a new host array.
    public func copyToHost(from source: DevicePointer, bytes: Int) throws(FlintError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: bytes)
        let r: Result<Void, FlintError> = out.withUnsafeMutableBytes { raw in
            Result { () throws(FlintError) in try copy(toHost: raw.baseAddress!, from: source, bytes: raw.count) }
        }
        try r.get()
        return out
    }
}
