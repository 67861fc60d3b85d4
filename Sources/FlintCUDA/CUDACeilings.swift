import FlintCore

extension CUDABackend {
    /// What this device reaches, for the benchmark's floors: device-to-device copy bandwidth (GB/s of
    /// bytes read + written) and the GEMM rate in the backend's dtype (TFLOP/s of a square GEMM),
    /// each timed by events over 5 runs after one warm-up. The emulated driver measures the host.
    public func measureCeilings(copyBytes: Int = 256 << 20, gemmSize n: Int = 4096) throws(FlintError) -> (
        bandwidthGBs: Double, gemmTFLOPs: Double
    ) {
        let start = try driver.makeEvent(), end = try driver.makeEvent()
        func timed(_ body: () throws(FlintError) -> Void) throws(FlintError) -> Double {
            try body()
            try driver.record(start)
            for _ in 0..<5 { try body() }
            try driver.record(end)
            try driver.synchronize()
            return try driver.elapsedMilliseconds(from: start, to: end) / 5
        }
        let a = try driver.allocate(bytes: copyBytes, what: "the bandwidth probe")
        defer { driver.free(a) }
        let b = try driver.allocate(bytes: copyBytes, what: "the bandwidth probe")
        defer { driver.free(b) }
        try driver.zero(a, bytes: copyBytes)
        let copyMs = try timed { () throws(FlintError) in try driver.copy(deviceToDevice: b, from: a, bytes: copyBytes) }

        let bytes = n * n * dtype.byteSize
        let x = try driver.allocate(bytes: bytes, what: "the GEMM probe"), w = try driver.allocate(bytes: bytes, what: "the GEMM probe")
        let c = try driver.allocate(bytes: bytes, what: "the GEMM probe")
        defer { driver.free(x); driver.free(w); driver.free(c) }
        try driver.zero(x, bytes: bytes)
        try driver.zero(w, bytes: bytes)
        let g = GEMMDescriptor(m: n, n: n, k: n, a: x, lda: n, w: w, ldw: n, c: c, ldc: n, bias: nil, dtype: dtype)
        guard try driver.prepareGEMM(g) == .supported else { throw .backend("cuBLASLt has no algorithm for the \(g.summary) GEMM probe") }
        let gemmMs = try timed { () throws(FlintError) in try driver.gemm(g) }
        return (2 * Double(copyBytes) / (copyMs / 1000) / 1e9, 2 * Double(n) * Double(n) * Double(n) / (gemmMs / 1000) / 1e12)
    }
}
