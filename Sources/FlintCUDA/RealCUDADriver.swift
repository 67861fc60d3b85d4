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
    private typealias FnGetFunction =
        @convention(c) (UnsafeMutablePointer<OpaquePointer?>, OpaquePointer?, UnsafePointer<CChar>) -> CUresult
    private typealias FnLaunch =
        @convention(c) (
            OpaquePointer?, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, OpaquePointer?,
            UnsafeMutablePointer<UnsafeMutableRawPointer?>?, UnsafeMutablePointer<UnsafeMutableRawPointer?>?
        ) -> CUresult
    private typealias FnStreamCreate = @convention(c) (UnsafeMutablePointer<OpaquePointer?>, UInt32) -> CUresult
    private typealias FnStream = @convention(c) (OpaquePointer?) -> CUresult
    private typealias FnBeginCapture = @convention(c) (OpaquePointer?, Int32) -> CUresult
    private typealias FnEndCapture = @convention(c) (OpaquePointer?, UnsafeMutablePointer<OpaquePointer?>) -> CUresult
    private typealias FnInstantiate = @convention(c) (UnsafeMutablePointer<OpaquePointer?>, OpaquePointer?, UInt64) -> CUresult
    private typealias FnGraphLaunch = @convention(c) (OpaquePointer?, OpaquePointer?) -> CUresult
    private typealias FnErrorName = @convention(c) (CUresult, UnsafeMutablePointer<UnsafePointer<CChar>?>) -> CUresult
    private typealias FnHostFree = @convention(c) (UnsafeMutableRawPointer?) -> CUresult
    private typealias FnDeviceRelease = @convention(c) (Int32) -> CUresult
    private typealias FnMemInfo = @convention(c) (UnsafeMutablePointer<Int>, UnsafeMutablePointer<Int>) -> CUresult
    // cuBLASLt
    private typealias FnLtCreate = @convention(c) (UnsafeMutablePointer<OpaquePointer?>) -> Int32
    private typealias FnLtDescCreate = @convention(c) (UnsafeMutablePointer<OpaquePointer?>, Int32, Int32) -> Int32
    private typealias FnLtDescSet = @convention(c) (OpaquePointer?, Int32, UnsafeRawPointer, Int) -> Int32
    private typealias FnLtLayoutCreate = @convention(c) (UnsafeMutablePointer<OpaquePointer?>, Int32, UInt64, UInt64, Int64) -> Int32
    private typealias FnLtDestroy = @convention(c) (OpaquePointer?) -> Int32
    private typealias FnLtPrefCreate = @convention(c) (UnsafeMutablePointer<OpaquePointer?>) -> Int32
    private typealias FnLtPrefSet = @convention(c) (OpaquePointer?, Int32, UnsafeRawPointer, Int) -> Int32
    private typealias FnLtHeuristic =
        @convention(c) (
            OpaquePointer?, OpaquePointer?, OpaquePointer?, OpaquePointer?, OpaquePointer?,
            OpaquePointer?, OpaquePointer?, Int32, UnsafeMutableRawPointer, UnsafeMutablePointer<Int32>
        ) -> Int32
    private typealias FnLtStatusName = @convention(c) (Int32) -> UnsafePointer<CChar>?
    private typealias FnLtMatmul =
        @convention(c) (
            OpaquePointer?, OpaquePointer?, UnsafeRawPointer, UInt64, OpaquePointer?, UInt64, OpaquePointer?,
            UnsafeRawPointer, UInt64, OpaquePointer?, UInt64, OpaquePointer?, UnsafeRawPointer?, UInt64, Int,
            OpaquePointer?
        ) -> Int32

    private let cuda: DynamicLibrary
    private let lt: DynamicLibrary
    public let deviceName: String
    public let architecture: String?
    public let driverVersion: Int
    public var cudaVersion: Int? { driverVersion }
    private let stream: OpaquePointer?
    private let ltHandle: OpaquePointer?
    private let workspace: UInt64
    private static let workspaceBytes = 32 << 20

    private let alloc: FnAlloc, freeFn: FnFree, htod: FnHtoD, dtoh: FnDtoH, dtod: FnDtoD, memset: FnMemset, moduleLoad: FnModuleLoad
    private let eventCreate: FnEventCreate, eventRecord: FnEventRecord, eventElapsed: FnEventElapsed
    /// The primary context, made current on whichever thread calls in (it is per thread in CUDA).
    private let context: UInt
    private let ctxSetCurrent: FnCtxSet, ctxGetCurrent: FnCtxGet
    private let graphDestroy: FnStream, graphExecDestroy: FnStream
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
    private let ltPrefCreate: FnLtPrefCreate, ltPrefSet: FnLtPrefSet, ltPrefDestroy: FnLtDestroy, ltHeuristic: FnLtHeuristic
    private let ltStatusName: FnLtStatusName?
    private let moduleUnload: FnStream, eventDestroy: FnStream, streamDestroy: FnStream, hostFree: FnHostFree
    private let ltDestroy: FnLtDestroy, primaryRelease: FnDeviceRelease, device: Int32
    /// Loaded modules by kernel file name (each loaded once for the driver's life).
    private let modules = Mutex<[String: UInt]>([:])
    /// cuBLASLt's chosen algorithm per GEMM shape (`cublasLtMatmulAlgo_t`, 64 bytes), or nil when
    /// it has none for that shape.
    private let algorithms = Mutex<[GEMMShapeKey: [UInt64]?]>([:])
    /// `cublasLtMatmulHeuristicResult_t`: algo (64 bytes), workspaceSize, state, wavesCount, reserved[4].
    private static let heuristicResultBytes = 96

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
        self.device = device
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
        graphExecDestroy = try cuda.symbol("cuGraphExecDestroy")
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
        moduleUnload = try cuda.symbol("cuModuleUnload")
        eventDestroy = try cuda.symbol("cuEventDestroy_v2")
        streamDestroy = try cuda.symbol("cuStreamDestroy_v2")
        hostFree = try cuda.symbol("cuMemFreeHost")
        primaryRelease = try cuda.symbol("cuDevicePrimaryCtxRelease_v2")
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
        ltPrefCreate = try lt.symbol("cublasLtMatmulPreferenceCreate")
        ltPrefSet = try lt.symbol("cublasLtMatmulPreferenceSetAttribute")
        ltPrefDestroy = try lt.symbol("cublasLtMatmulPreferenceDestroy")
        ltHeuristic = try lt.symbol("cublasLtMatmulAlgoGetHeuristic")
        ltStatusName = try? lt.symbol("cublasLtGetStatusName")
        ltDestroy = try lt.symbol("cublasLtDestroy")
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

    public func hasLoaded(_ name: String) -> Bool { modules.withLock { $0[name] != nil } }

    public func destroyEvent(_ event: Int) {
        bind()
        let bits = events.withLock { (e: inout [UInt]) -> UInt in
            guard e.indices.contains(event) else { return 0 }
            defer { e[event] = 0 }
            return e[event]
        }
        if bits != 0 { _ = eventDestroy(OpaquePointer(bitPattern: bits)) }
    }

    public func load(_ source: KernelSource, cubin: [UInt8]?) throws(FlintError) {
        bind()
        guard !hasLoaded(source.name) else { return }
        guard let cubin else { throw .backend("\(source.name).cu: the real driver needs a CUBIN") }
        var module: OpaquePointer?
        let rc = cubin.withUnsafeBytes { moduleLoad(&module, $0.baseAddress!) }
        if rc == 222 || rc == 209 || rc == 218 {  // UNSUPPORTED_PTX_VERSION, NO_BINARY_FOR_GPU, INVALID_PTX
            let cuda = "CUDA \(driverVersion / 1000).\(driverVersion % 1000 / 10)"
            try check(rc, "cuModuleLoadData(\(source.name).cu) (the CUBIN does not fit this driver, \(cuda))")
        }
        try check(rc, "cuModuleLoadData(\(source.name).cu)")
        var found: [String: UInt] = [:]
        for k in source.kernels {
            var f: OpaquePointer?
            let rc = getFunction(&f, module, k)
            if rc != 0 { _ = moduleUnload(module) }
            try check(rc, "cuModuleGetFunction(\(k))")
            found[k] = UInt(bitPattern: f)
        }
        functions.withLock { $0.merge(found) { $1 } }
        modules.withLock { $0[source.name] = UInt(bitPattern: module) }
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

    /// cuBLASLt's name for a status ("CUBLAS_STATUS_NOT_SUPPORTED"), or its number.
    func statusName(_ status: Int32) -> String {
        ltStatusName?(status).map { String(cString: $0) } ?? "cuBLAS status \(status)"
    }

    /// Row-major `C[m,n] = A[m,k]·W[n,k]ᵀ` is column-major `Cᵀ[n,m] = op(W)·A` with op = transpose:
    /// cuBLASLt's A operand is W (k×n, ld ldw, transposed), B is A (k×m, ld lda), C/D is n×m.
    /// Creates the operation and layout descriptors of `g` (host-only calls, fine inside a capture).
    private func withDescriptors<R>(_ g: GEMMDescriptor, _ call: String,
                                    _ body: (OpaquePointer?, OpaquePointer?, OpaquePointer?, OpaquePointer?) throws(FlintError) -> R)
        throws(FlintError) -> R
    {
        let type: Int32 = g.dtype == .f16 ? 2 : g.dtype == .bf16 ? 14 : 0
        var desc: OpaquePointer?
        // CUBLAS_COMPUTE_32F (68) with fp32 scales (CUDA_R_32F = 0): fp32 accumulation, no TF32.
        var rc = ltDescCreate(&desc, 68, 0)
        guard rc == 0 else { throw .backend("\(call): cublasLtMatmulDescCreate failed: \(statusName(rc))") }
        defer { _ = ltDescDestroy(desc) }
        var transA: Int32 = 1, transB: Int32 = 0
        _ = ltDescSet(desc, 3, &transA, 4)  // CUBLASLT_MATMUL_DESC_TRANSA
        _ = ltDescSet(desc, 4, &transB, 4)  // CUBLASLT_MATMUL_DESC_TRANSB
        var la: OpaquePointer?, lb: OpaquePointer?, lc: OpaquePointer?
        defer { _ = ltLayoutDestroy(la); _ = ltLayoutDestroy(lb); _ = ltLayoutDestroy(lc) }
        for (layout, rows, cols, ld) in [(0, g.k, g.n, g.ldw), (1, g.k, g.m, g.lda), (2, g.n, g.m, g.ldc)] {
            var l: OpaquePointer?
            rc = ltLayoutCreate(&l, type, UInt64(rows), UInt64(cols), Int64(ld))
            guard rc == 0 else {
                throw .backend("\(call): cublasLtMatrixLayoutCreate(\(rows)x\(cols), ld \(ld)) failed: \(statusName(rc))")
            }
            if layout == 0 { la = l } else if layout == 1 { lb = l } else { lc = l }
        }
        // Bias and tanh-GELU in cuBLASLt's epilogue (CUBLASLT_MATMUL_DESC_EPILOGUE = 7, BIAS_POINTER = 8;
        // CUBLASLT_EPILOGUE_DEFAULT 1, BIAS 4, GELU 32, GELU_BIAS 36); the bias has D's type.
        var epilogue: UInt32 = g.activation == .geluTanh ? (g.bias == nil ? 32 : 36) : (g.bias == nil ? 1 : 4)
        rc = ltDescSet(desc, 7, &epilogue, 4)
        guard rc == 0 else { throw .backend("\(call): cublasLtMatmulDescSetAttribute(EPILOGUE \(epilogue)) failed: \(statusName(rc))") }
        if var bias = g.bias {
            rc = ltDescSet(desc, 8, &bias, 8)
            guard rc == 0 else { throw .backend("\(call): cublasLtMatmulDescSetAttribute(BIAS_POINTER) failed: \(statusName(rc))") }
        }
        return try body(desc, la, lb, lc)
    }

    public func prepareGEMM(_ g: GEMMDescriptor) throws(FlintError) -> GEMMSupport {
        bind()
        let key = g.shapeKey
        if let known = algorithms.withLock({ $0[key] }) {
            return known == nil ? .refused(status: "no algorithm (cached)") : .supported
        }
        var refusal: String?
        let algo = try withDescriptors(g, "cuBLASLt heuristic for \(g.summary)") { (desc, la, lb, lc) throws(FlintError) -> [UInt64]? in
            var pref: OpaquePointer?
            var rc = ltPrefCreate(&pref)
            guard rc == 0 else { throw .backend("cublasLtMatmulPreferenceCreate failed: \(statusName(rc))") }
            defer { _ = ltPrefDestroy(pref) }
            var workspaceLimit = UInt64(Self.workspaceBytes)  // the default, 0, would rule out split-K and most kernels
            rc = ltPrefSet(pref, 1, &workspaceLimit, 8)  // CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES
            guard rc == 0 else { throw .backend("cublasLtMatmulPreferenceSetAttribute(MAX_WORKSPACE_BYTES) failed: \(statusName(rc))") }
            var alignment = UInt32(key.alignment)
            for attribute: Int32 in 5...8 {  // CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_{A,B,C,D}_BYTES
                rc = ltPrefSet(pref, attribute, &alignment, 4)
                guard rc == 0 else {
                    throw .backend("cublasLtMatmulPreferenceSetAttribute(MIN_ALIGNMENT \(attribute)) failed: \(statusName(rc))")
                }
            }
            let result = UnsafeMutableRawPointer.allocate(byteCount: Self.heuristicResultBytes, alignment: 8)
            defer { result.deallocate() }
            result.initializeMemory(as: UInt8.self, repeating: 0, count: Self.heuristicResultBytes)
            var count: Int32 = 0
            rc = ltHeuristic(ltHandle, desc, la, lb, lc, lc, pref, 1, result, &count)
            let state = result.load(fromByteOffset: 72, as: Int32.self)
            // No algorithm (NOT_SUPPORTED, or INVALID_VALUE as cuBLASLt answers one-row bias
            // epilogues): the caller falls back; anything else is a failure.
            if rc == 15 || rc == 7 || (rc == 0 && (count == 0 || state != 0)) {
                refusal = statusName(rc != 0 ? rc : count == 0 ? 15 : state)
                return nil
            }
            guard rc == 0 else { throw .backend("cublasLtMatmulAlgoGetHeuristic(\(g.summary)) failed: \(statusName(rc))") }
            let workspaceNeeded = result.load(fromByteOffset: 64, as: Int.self)
            guard workspaceNeeded <= Self.workspaceBytes else {
                throw .backend("cuBLASLt's algorithm for \(g.summary) needs \(workspaceNeeded) bytes of workspace, "
                    + "more than the \(Self.workspaceBytes) allowed")
            }
            return (0..<8).map { result.load(fromByteOffset: 8 * $0, as: UInt64.self) }
        }
        algorithms.withLock { $0[key] = .some(algo) }
        return refusal.map { .refused(status: $0) } ?? .supported
    }

    public func gemm(_ g: GEMMDescriptor) throws(FlintError) {
        bind()
        guard let prepared = algorithms.withLock({ $0[g.shapeKey] }) else {
            throw .backend("cublasLtMatmul(\(g.summary)): no algorithm was chosen for this shape "
                + "(prepareGEMM must run first, outside capture)")
        }
        guard var algo = prepared else { throw .backend("cublasLtMatmul(\(g.summary)): cuBLASLt has no algorithm for it") }
        try withDescriptors(g, "cublasLtMatmul(\(g.summary))") { (desc, la, lb, lc) throws(FlintError) in
            var alpha: Float = 1, beta: Float = 0
            let rc = algo.withUnsafeMutableBytes { a in
                ltMatmul(ltHandle, desc, &alpha, g.w, la, g.a, lb, &beta, g.c, lc, g.c, lc, a.baseAddress, workspace, Self.workspaceBytes,
                         stream)
            }
            guard rc == 0 else { throw .backend("cublasLtMatmul(\(g.summary)) failed: \(statusName(rc))") }
        }
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
        guard let bits = graphs.withLock({ graph >= 0 && graph < $0.count ? $0[graph] : nil }), bits != 0 else {
            throw .backend("no graph \(graph)")
        }
        try check(graphLaunch(OpaquePointer(bitPattern: bits), stream), "cuGraphLaunch")
    }

    public func destroyGraph(_ graph: Int) {
        bind()
        let bits = graphs.withLock { (g: inout [UInt]) -> UInt in
            guard g.indices.contains(graph) else { return 0 }
            defer { g[graph] = 0 }
            return g[graph]
        }
        if bits != 0 { _ = graphExecDestroy(OpaquePointer(bitPattern: bits)) }
    }

    deinit {
        bind()
        _ = streamSync(stream)
        for bits in graphs.withLock({ $0 }) where bits != 0 { _ = graphExecDestroy(OpaquePointer(bitPattern: bits)) }
        for bits in events.withLock({ $0 }) where bits != 0 { _ = eventDestroy(OpaquePointer(bitPattern: bits)) }
        for bits in modules.withLock({ $0.values }) { _ = moduleUnload(OpaquePointer(bitPattern: bits)) }
        _ = freeFn(workspace)
        if let staging { _ = hostFree(staging) }
        _ = ltDestroy(ltHandle)
        _ = streamDestroy(stream)
        _ = primaryRelease(device)
    }
}
