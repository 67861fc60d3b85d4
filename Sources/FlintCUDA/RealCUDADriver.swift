import FlintCore
import Synchronization

/// The `CUDADriver` of a real GPU: libcuda (driver API) and libcublasLt opened with dlopen.
/// Every call is checked and failures become `FlintError` with CUDA's error name.
///
/// Checked without a GPU only as far as "CUDA unavailable" errors go; its GPU proof comes from
/// `scripts/gpu-check` in a session lent one.
public final class RealCUDADriver: CUDADriver, @unchecked Sendable {
    typealias CUresult = Int32
    private typealias Fn1U = @convention(c) (UInt32) -> CUresult
    private typealias FnPInt = @convention(c) (UnsafeMutablePointer<Int32>) -> CUresult
    private typealias FnDeviceGet = @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> CUresult
    private typealias FnDeviceName = @convention(c) (UnsafeMutablePointer<CChar>, Int32, Int32) -> CUresult
    private typealias FnDeviceAttr = @convention(c) (UnsafeMutablePointer<Int32>, Int32, Int32) -> CUresult
    private typealias FnCtxRetain = @convention(c) (UnsafeMutablePointer<OpaquePointer?>, Int32) -> CUresult
    private typealias FnCtxSet = @convention(c) (OpaquePointer?) -> CUresult
    private typealias FnCtxGet = @convention(c) (UnsafeMutablePointer<OpaquePointer?>) -> CUresult
    private typealias FnAlloc = @convention(c) (UnsafeMutablePointer<UInt64>, Int) -> CUresult
    private typealias FnFree = @convention(c) (UInt64) -> CUresult
    private typealias FnHtoD = @convention(c) (UInt64, UnsafeRawPointer, Int, OpaquePointer?) -> CUresult
    private typealias FnDtoH = @convention(c) (UnsafeMutableRawPointer, UInt64, Int, OpaquePointer?) -> CUresult
    private typealias FnMemset = @convention(c) (UInt64, UInt8, Int, OpaquePointer?) -> CUresult
    private typealias FnDtoD = @convention(c) (UInt64, UInt64, Int, OpaquePointer?) -> CUresult
    private typealias FnHostAlloc = @convention(c) (UnsafeMutablePointer<UnsafeMutableRawPointer?>, Int, UInt32) -> CUresult
    private typealias FnEventCreate = @convention(c) (UnsafeMutablePointer<OpaquePointer?>, UInt32) -> CUresult
    private typealias FnEventRecord = @convention(c) (OpaquePointer?, OpaquePointer?) -> CUresult
    private typealias FnEventElapsed = @convention(c) (UnsafeMutablePointer<Float>, OpaquePointer?, OpaquePointer?) -> CUresult
    private typealias FnModuleLoad = @convention(c) (UnsafeMutablePointer<OpaquePointer?>, UnsafeRawPointer) -> CUresult
    private typealias FnGetFunction = @convention(c) (UnsafeMutablePointer<OpaquePointer?>, OpaquePointer?, UnsafePointer<CChar>) -> CUresult
    private typealias FnLaunch = @convention(c) (OpaquePointer?, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, OpaquePointer?,
                                                 UnsafeMutablePointer<UnsafeMutableRawPointer?>?, UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> CUresult
    private typealias FnStreamCreate = @convention(c) (UnsafeMutablePointer<OpaquePointer?>, UInt32) -> CUresult
    private typealias FnStream = @convention(c) (OpaquePointer?) -> CUresult
    private typealias FnBeginCapture = @convention(c) (OpaquePointer?, Int32) -> CUresult
    private typealias FnEndCapture = @convention(c) (OpaquePointer?, UnsafeMutablePointer<OpaquePointer?>) -> CUresult
    private typealias FnInstantiate = @convention(c) (UnsafeMutablePointer<OpaquePointer?>, OpaquePointer?, UInt64) -> CUresult
    private typealias FnGraphLaunch = @convention(c) (OpaquePointer?, OpaquePointer?) -> CUresult
    private typealias FnErrorName = @convention(c) (CUresult, UnsafeMutablePointer<UnsafePointer<CChar>?>) -> CUresult
    private typealias FnMemInfo = @convention(c) (UnsafeMutablePointer<Int>, UnsafeMutablePointer<Int>) -> CUresult
    // cuBLASLt
    private typealias FnLtCreate = @convention(c) (UnsafeMutablePointer<OpaquePointer?>) -> Int32
    private typealias FnLtDescCreate = @convention(c) (UnsafeMutablePointer<OpaquePointer?>, Int32, Int32) -> Int32
    private typealias FnLtDescSet = @convention(c) (OpaquePointer?, Int32, UnsafeRawPointer, Int) -> Int32
    private typealias FnLtLayoutCreate = @convention(c) (UnsafeMutablePointer<OpaquePointer?>, Int32, UInt64, UInt64, Int64) -> Int32
    private typealias FnLtDestroy = @convention(c) (OpaquePointer?) -> Int32
    private typealias FnLtMatmul = @convention(c) (OpaquePointer?, OpaquePointer?, UnsafeRawPointer, UInt64, OpaquePointer?, UInt64, OpaquePointer?,
                                                   UnsafeRawPointer, UInt64, OpaquePointer?, UInt64, OpaquePointer?, UnsafeRawPointer?, UInt64, Int,
                                                   OpaquePointer?) -> Int32

    private let cuda: DynamicLibrary
    private let lt: DynamicLibrary
    public let deviceName: String
    public let architecture: String?
    public let driverVersion: Int
    private let stream: OpaquePointer?
    private let ltHandle: OpaquePointer?
    private let workspace: UInt64
    private static let workspaceBytes = 32 << 20

    private let alloc: FnAlloc, freeFn: FnFree, htod: FnHtoD, dtoh: FnDtoH, dtod: FnDtoD, memset: FnMemset, moduleLoad: FnModuleLoad
    private let eventCreate: FnEventCreate, eventRecord: FnEventRecord, eventElapsed: FnEventElapsed
    /// The primary context, made current on whichever thread calls in (it is per thread in CUDA).
    private let context: UInt
    private let ctxSetCurrent: FnCtxSet, ctxGetCurrent: FnCtxGet
    private let graphDestroy: FnStream
    private let events = Mutex<[UInt]>([])
    /// Pinned host memory that small copies go through (the per-forward inputs and outputs): a
    /// copy from pageable memory makes the driver stage it itself, synchronously and slower.
    private let staging: UnsafeMutableRawPointer?
    private static let stagingBytes = 4 << 20
    /// An async host-to-device copy from `staging` may still be reading it.
    private let stagingInFlight = Mutex(false)
    private let getFunction: FnGetFunction
    private let launchFn: FnLaunch, streamSync: FnStream, beginCaptureFn: FnBeginCapture, endCaptureFn: FnEndCapture
    private let instantiate: FnInstantiate, graphLaunch: FnGraphLaunch, errorName: FnErrorName, memInfo: FnMemInfo
    private let ltDescCreate: FnLtDescCreate, ltDescSet: FnLtDescSet, ltLayoutCreate: FnLtLayoutCreate
    private let ltDescDestroy: FnLtDestroy, ltLayoutDestroy: FnLtDestroy, ltMatmul: FnLtMatmul

    /// Function and graph handles, kept as bit patterns (OpaquePointer is not Sendable).
    private let functions = Mutex<[String: UInt]>([:])
    private let graphs = Mutex<[UInt]>([])

    /// Opens device `ordinal`. Throws `.cudaUnavailable` with the reason when there is no driver,
    /// no device or no cuBLASLt.
    public init(ordinal: Int32 = 0) throws(FlintError) {
        cuda = try CUDALocations.open(["libcuda.so.1", "libcuda.so"], what: "the CUDA driver (libcuda.so.1)").0
        lt = try CUDALocations.open(["libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"], what: "cuBLASLt (libcublasLt)").0
        errorName = try cuda.symbol("cuGetErrorName")
        let cuInit: Fn1U = try cuda.symbol("cuInit")
        let name = errorName
        func check(_ rc: CUresult, _ call: String) throws(FlintError) {
            guard rc != 0 else { return }
            var p: UnsafePointer<CChar>?
            _ = name(rc, &p)
            throw .cudaUnavailable("\(call) failed: \(p.map { String(cString: $0) } ?? "CUDA error \(rc)")")
        }
        try check(cuInit(0), "cuInit")
        var version: Int32 = 0
        try check((try cuda.symbol("cuDriverGetVersion") as FnPInt)(&version), "cuDriverGetVersion")
        driverVersion = Int(version)
        var device: Int32 = 0
        try check((try cuda.symbol("cuDeviceGet") as FnDeviceGet)(&device, ordinal), "cuDeviceGet(\(ordinal))")
        var nameBuffer = [CChar](repeating: 0, count: 256)
        try check((try cuda.symbol("cuDeviceGetName") as FnDeviceName)(&nameBuffer, 255, device), "cuDeviceGetName")
        let attribute: FnDeviceAttr = try cuda.symbol("cuDeviceGetAttribute")
        var major: Int32 = 0, minor: Int32 = 0
        try check(attribute(&major, 75, device), "cuDeviceGetAttribute(compute capability major)")
        try check(attribute(&minor, 76, device), "cuDeviceGetAttribute(compute capability minor)")
        architecture = "sm_\(major)\(minor)"
        deviceName = "\(String(decoding: nameBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)), sm_\(major)\(minor)"
        var context: OpaquePointer?
        try check((try cuda.symbol("cuDevicePrimaryCtxRetain") as FnCtxRetain)(&context, device), "cuDevicePrimaryCtxRetain")
        ctxSetCurrent = try cuda.symbol("cuCtxSetCurrent")
        ctxGetCurrent = try cuda.symbol("cuCtxGetCurrent")
        self.context = UInt(bitPattern: context)
        try check(ctxSetCurrent(context), "cuCtxSetCurrent")
        graphDestroy = try cuda.symbol("cuGraphDestroy")
        var s: OpaquePointer?
        try check((try cuda.symbol("cuStreamCreate") as FnStreamCreate)(&s, 1), "cuStreamCreate")
        stream = s
        alloc = try cuda.symbol("cuMemAlloc_v2")
        freeFn = try cuda.symbol("cuMemFree_v2")
        htod = try cuda.symbol("cuMemcpyHtoDAsync_v2")
        dtoh = try cuda.symbol("cuMemcpyDtoHAsync_v2")
        memset = try cuda.symbol("cuMemsetD8Async")
        dtod = try cuda.symbol("cuMemcpyDtoDAsync_v2")
        eventCreate = try cuda.symbol("cuEventCreate")
        eventRecord = try cuda.symbol("cuEventRecord")
        if let v2: FnEventElapsed = try? cuda.symbol("cuEventElapsedTime_v2") {  // CUDA 12.8+ name
            eventElapsed = v2
        } else {
            eventElapsed = try cuda.symbol("cuEventElapsedTime")
        }
        var pinned: UnsafeMutableRawPointer?
        staging = (try cuda.symbol("cuMemHostAlloc") as FnHostAlloc)(&pinned, Self.stagingBytes, 0) == 0 ? pinned : nil
        moduleLoad = try cuda.symbol("cuModuleLoadData")
        getFunction = try cuda.symbol("cuModuleGetFunction")
        launchFn = try cuda.symbol("cuLaunchKernel")
        streamSync = try cuda.symbol("cuStreamSynchronize")
        beginCaptureFn = try cuda.symbol("cuStreamBeginCapture_v2")
        endCaptureFn = try cuda.symbol("cuStreamEndCapture")
        instantiate = try cuda.symbol("cuGraphInstantiateWithFlags")
        graphLaunch = try cuda.symbol("cuGraphLaunch")
        memInfo = try cuda.symbol("cuMemGetInfo_v2")
        var handle: OpaquePointer?
        let ltCreate: FnLtCreate = try lt.symbol("cublasLtCreate")
        guard ltCreate(&handle) == 0 else { throw .cudaUnavailable("cublasLtCreate failed") }
        ltHandle = handle
        ltDescCreate = try lt.symbol("cublasLtMatmulDescCreate")
        ltDescSet = try lt.symbol("cublasLtMatmulDescSetAttribute")
        ltLayoutCreate = try lt.symbol("cublasLtMatrixLayoutCreate")
        ltDescDestroy = try lt.symbol("cublasLtMatmulDescDestroy")
        ltLayoutDestroy = try lt.symbol("cublasLtMatrixLayoutDestroy")
        ltMatmul = try lt.symbol("cublasLtMatmul")
        var w: UInt64 = 0
        try check(alloc(&w, Self.workspaceBytes), "cuMemAlloc(cuBLASLt workspace)")
        workspace = w
    }

    /// Makes the device's context current on the calling thread when it is not yet (threads other
    /// than the one that opened the driver start without it).
    private func bind() {
        var current: OpaquePointer?
        if ctxGetCurrent(&current) != 0 || UInt(bitPattern: current) != context { _ = ctxSetCurrent(OpaquePointer(bitPattern: context)) }
    }

    private func check(_ rc: CUresult, _ call: String) throws(FlintError) {
        guard rc != 0 else { return }
        var p: UnsafePointer<CChar>?
        _ = errorName(rc, &p)
        throw .backend("\(call) failed: \(p.map { String(cString: $0) } ?? "CUDA error \(rc)")")
    }

    public func allocate(bytes: Int, what: String) throws(FlintError) -> DevicePointer {
        bind()
        var p: UInt64 = 0
        let rc = alloc(&p, max(bytes, 1))
        if rc == 2 {  // CUDA_ERROR_OUT_OF_MEMORY
            var free = 0, total = 0
            _ = memInfo(&free, &total)
            throw .outOfMemory(device: "\(deviceName) (\(FlintError.format(bytes: free)) free of \(FlintError.format(bytes: total)))",
                               bytes: bytes, what: what)
        }
        try check(rc, "cuMemAlloc(\(bytes) bytes for \(what))")
        return p
    }

    public func free(_ pointer: DevicePointer) { bind(); _ = freeFn(pointer) }

    public func copy(toDevice destination: DevicePointer, from source: UnsafeRawPointer, bytes: Int) throws(FlintError) {
        bind()
        guard let staging, bytes <= Self.stagingBytes else {
            return try check(htod(destination, source, bytes, stream), "cuMemcpyHtoDAsync")
        }
        try stagingInFlight.withLock { (inFlight) throws(FlintError) in
            if inFlight { try synchronize() }  // the previous copy out of staging must be done
            staging.copyMemory(from: source, byteCount: bytes)
            try check(htod(destination, staging, bytes, stream), "cuMemcpyHtoDAsync")
            inFlight = true
        }
    }

    public func copy(deviceToDevice destination: DevicePointer, from source: DevicePointer, bytes: Int) throws(FlintError) {
        bind()
        try check(dtod(destination, source, bytes, stream), "cuMemcpyDtoDAsync")
    }

    public func zero(_ destination: DevicePointer, bytes: Int) throws(FlintError) {
        bind()
        try check(memset(destination, 0, bytes, stream), "cuMemsetD8Async")
    }

    public func copy(toHost destination: UnsafeMutableRawPointer, from source: DevicePointer, bytes: Int) throws(FlintError) {
        bind()
        guard let staging, bytes <= Self.stagingBytes else {
            try check(dtoh(destination, source, bytes, stream), "cuMemcpyDtoHAsync")
            return try synchronize()
        }
        try stagingInFlight.withLock { (inFlight) throws(FlintError) in
            try check(dtoh(staging, source, bytes, stream), "cuMemcpyDtoHAsync")
            try synchronize()
            inFlight = false
            destination.copyMemory(from: staging, byteCount: bytes)
        }
    }

    public func makeEvent() throws(FlintError) -> Int {
        bind()
        var e: OpaquePointer?
        try check(eventCreate(&e, 0), "cuEventCreate")
        let bits = UInt(bitPattern: e)
        return events.withLock {
            $0.append(bits)
            return $0.count - 1
        }
    }

    public func record(_ event: Int) throws(FlintError) {
        bind()
        guard let bits = events.withLock({ event >= 0 && event < $0.count ? $0[event] : nil }) else { throw .backend("no event \(event)") }
        try check(eventRecord(OpaquePointer(bitPattern: bits), stream), "cuEventRecord")
    }

    public func elapsedMilliseconds(from start: Int, to end: Int) throws(FlintError) -> Double {
        bind()
        let (a, b) = events.withLock { ($0.indices.contains(start) ? $0[start] : 0, $0.indices.contains(end) ? $0[end] : 0) }
        guard a != 0, b != 0 else { throw .backend("no events \(start), \(end)") }
        var ms: Float = 0
        try check(eventElapsed(&ms, OpaquePointer(bitPattern: a), OpaquePointer(bitPattern: b)), "cuEventElapsedTime")
        return Double(ms)
    }

    public func load(_ source: KernelSource, cubin: [UInt8]?) throws(FlintError) {
        bind()
        guard let cubin else { throw .backend("\(source.name).cu: the real driver needs a CUBIN") }
        var module: OpaquePointer?
        let rc = cubin.withUnsafeBytes { moduleLoad(&module, $0.baseAddress!) }
        try check(rc, "cuModuleLoadData(\(source.name).cu)")
        for k in source.kernels {
            var f: OpaquePointer?
            try check(getFunction(&f, module, k), "cuModuleGetFunction(\(k))")
            let bits = UInt(bitPattern: f)
            functions.withLock { $0[k] = bits }
        }
    }

    public func launch(_ kernel: String, grid: (UInt32, UInt32, UInt32), block: (UInt32, UInt32, UInt32), sharedBytes: UInt32,
                       arguments: [KernelArgument]) throws(FlintError)
    {
        bind()
        guard let bits = functions.withLock({ $0[kernel] }) else { throw .backend("kernel \(kernel) is not loaded") }
        let f = OpaquePointer(bitPattern: bits)
        let storage = UnsafeMutableRawPointer.allocate(byteCount: 8 * max(arguments.count, 1), alignment: 8)
        defer { storage.deallocate() }
        var params: [UnsafeMutableRawPointer?] = []
        for (i, a) in arguments.enumerated() {
            let slot = storage + 8 * i
            switch a {
            case let .pointer(p): slot.storeBytes(of: p, as: UInt64.self)
            case let .int32(v): slot.storeBytes(of: v, as: Int32.self)
            case let .int64(v): slot.storeBytes(of: v, as: Int64.self)
            case let .float(v): slot.storeBytes(of: v, as: Float.self)
            }
            params.append(slot)
        }
        let rc = params.withUnsafeMutableBufferPointer { p in
            launchFn(f, grid.0, grid.1, grid.2, block.0, block.1, block.2, sharedBytes, stream, p.baseAddress, nil)
        }
        try check(rc, "cuLaunchKernel(\(kernel), grid \(grid), block \(block))")
    }

    /// Row-major `C[m,n] = A[m,k]·W[n,k]ᵀ` is column-major `Cᵀ[n,m] = op(W)·A` with op = transpose:
    /// cuBLASLt's A operand is W (k×n, ld ldw, transposed), B is A (k×m, ld lda), C/D is n×m.
    public func gemm(_ g: GEMMDescriptor) throws(FlintError) {
        bind()
        let type: Int32 = g.dtype == .f16 ? 2 : g.dtype == .bf16 ? 14 : 0
        var desc: OpaquePointer?
        guard ltDescCreate(&desc, 68, 0) == 0 else { throw .backend("cublasLtMatmulDescCreate failed") }
        defer { _ = ltDescDestroy(desc) }
        var transA: Int32 = 1, transB: Int32 = 0
        _ = ltDescSet(desc, 3, &transA, 4)
        _ = ltDescSet(desc, 4, &transB, 4)
        var la: OpaquePointer?, lb: OpaquePointer?, lc: OpaquePointer?
        guard ltLayoutCreate(&la, type, UInt64(g.k), UInt64(g.n), Int64(g.ldw)) == 0,
              ltLayoutCreate(&lb, type, UInt64(g.k), UInt64(g.m), Int64(g.lda)) == 0,
              ltLayoutCreate(&lc, type, UInt64(g.n), UInt64(g.m), Int64(g.ldc)) == 0
        else { throw .backend("cublasLtMatrixLayoutCreate failed") }
        defer { _ = ltLayoutDestroy(la); _ = ltLayoutDestroy(lb); _ = ltLayoutDestroy(lc) }
        // Bias and tanh-GELU in cuBLASLt's epilogue (CUBLASLT_MATMUL_DESC_EPILOGUE = 7, BIAS_POINTER = 8;
        // CUBLASLT_EPILOGUE_DEFAULT 1, BIAS 4, GELU 32, GELU_BIAS 36); the bias has D's type.
        var epilogue: UInt32 = g.activation == .geluTanh ? (g.bias == nil ? 32 : 36) : (g.bias == nil ? 1 : 4)
        guard ltDescSet(desc, 7, &epilogue, 4) == 0 else { throw .backend("cublasLtMatmulDescSetAttribute(EPILOGUE \(epilogue)) failed") }
        if var bias = g.bias {
            guard ltDescSet(desc, 8, &bias, 8) == 0 else { throw .backend("cublasLtMatmulDescSetAttribute(BIAS_POINTER) failed") }
        }
        var alpha: Float = 1, beta: Float = 0
        let rc = ltMatmul(ltHandle, desc, &alpha, g.w, la, g.a, lb, &beta, g.c, lc, g.c, lc, nil, workspace, Self.workspaceBytes, stream)
        guard rc == 0 else { throw .backend("cublasLtMatmul(\(g.m)x\(g.n)x\(g.k), \(g.dtype)) failed with status \(rc)") }
    }

    public func synchronize() throws(FlintError) { bind(); try check(streamSync(stream), "cuStreamSynchronize") }

    public func beginCapture() throws(FlintError) { bind(); try check(beginCaptureFn(stream, 1), "cuStreamBeginCapture") }

    public func endCapture() throws(FlintError) -> Int {
        bind()
        var graph: OpaquePointer?
        try check(endCaptureFn(stream, &graph), "cuStreamEndCapture")
        var exec: OpaquePointer?
        try check(instantiate(&exec, graph, 0), "cuGraphInstantiate")
        _ = graphDestroy(graph)  // the executable graph keeps what it needs
        let bits = UInt(bitPattern: exec)
        return graphs.withLock {
            $0.append(bits)
            return $0.count - 1
        }
    }

    public func replay(_ graph: Int) throws(FlintError) {
        bind()
        guard let bits = graphs.withLock({ graph >= 0 && graph < $0.count ? $0[graph] : nil }) else { throw .backend("no graph \(graph)") }
        try check(graphLaunch(OpaquePointer(bitPattern: bits), stream), "cuGraphLaunch")
    }
}
