import FlintCUDA
import FlintCore

/// The extra columns of `flint bench` on CUDA: device time per forward by CUDA events, host enqueue
/// time per forward (the framework overhead that CUDA graphs remove), and the floor: the larger of
/// bytes / measured copy bandwidth and FLOPs / measured GEMM rate, the time no implementation can
/// beat on this device.
struct DeviceReport {
    let bandwidthGBs: Double
    let gemmTFLOPs: Double

    /// Measures the ceilings when `backend` is CUDA; nil otherwise.
    static func make(for backend: any Backend) throws -> DeviceReport? {
        guard let cuda = backend as? CUDABackend else { return nil }
        Console.progress("measuring the device's copy bandwidth and \(cuda.dtype) GEMM rate for the floors...")
        let emulated = cuda.driver.architecture == nil  // the emulated driver times the host: keep it short
        let c = try cuda.measureCeilings(copyBytes: emulated ? 16 << 20 : 256 << 20, gemmSize: emulated ? 256 : 4096)
        let report = DeviceReport(bandwidthGBs: c.bandwidthGBs, gemmTFLOPs: c.gemmTFLOPs)
        print("device ceilings: copy \(Table.fmt(c.bandwidthGBs, 0)) GB/s, \(cuda.dtype) GEMM \(Table.fmt(c.gemmTFLOPs, 1)) TFLOP/s"
            + (emulated ? " (emulated driver: host numbers)" : ""))
        return report
    }

    static let header = ["gpu ms", "enqueue us", "floor ms"]

    /// Milliseconds to move `bytes` and to compute `flops` at the measured ceilings.
    func floors(bytes: Double, flops: Double) -> (bytesMs: Double, flopsMs: Double) {
        (bytes / (bandwidthGBs * 1e9) * 1000, flops / (gemmTFLOPs * 1e12) * 1000)
    }

    /// Cells and JSON fields for a row whose timed runs left `profiles`.
    func row(_ profiles: [RunProfile], bytes: Double, flops: Double) -> (cells: [String], json: [(String, Double)]) {
        let gpu = Stats(profiles.map(\.deviceMs)), enqueue = Stats(profiles.map(\.hostEnqueueMs))
        let f = floors(bytes: bytes, flops: flops)
        return ([Table.fmt(gpu.p50, 3), Table.fmt(enqueue.p50 * 1000, 1), Table.fmt(max(f.bytesMs, f.flopsMs), 3)],
                [("gpu_p50_ms", gpu.p50), ("gpu_avg_ms", gpu.avg), ("enqueue_p50_us", enqueue.p50 * 1000),
                 ("floor_ms", max(f.bytesMs, f.flopsMs)), ("bytes_floor_ms", f.bytesMs), ("flops_floor_ms", f.flopsMs)])
    }
}

/// Collects the profiles of a prepared plan's timed runs (empty for plans that do not measure).
struct ProfileLog {
    let plan: (any ProfiledPlan)?
    private(set) var profiles: [RunProfile] = []

    init(_ prepared: any PreparedPlan) { plan = prepared as? any ProfiledPlan }

    mutating func record() { if let p = plan?.lastProfile { profiles.append(p) } }

    /// The profiles of the last `count` runs (the timed ones; warm-ups came first).
    func last(_ count: Int) -> [RunProfile] { Array(profiles.suffix(count)) }
}

extension Plan {
    /// Bytes a forward must read at least: every weight a GEMM streams, in `dtype`.
    func weightBytes(_ dtype: DType) -> Int {
        weights.indices.filter { weights[$0].usage == .linear }.reduce(0) { $0 + weights[$1].shape.count * dtype.byteSize }
    }
}
