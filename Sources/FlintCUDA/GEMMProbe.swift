import FlintCore
#if canImport(Glibc)
import Glibc
#endif

/// `flint check --gemm-probe`: cuBLASLt's GEMMs alone, before any model runs, so a first GPU session
/// sees at once which types, epilogues and shapes work, eagerly and inside a graph capture.
///
/// Each row runs `C = act(A·Wᵀ + bias)` once eagerly (algorithm chosen, matmul, wait) and once
/// captured and replayed, and compares C with a float64 reference on up to 32 sampled rows (all
/// rows when m <= 32). A refused fused epilogue is a passing row (the backend falls back to its own
/// kernel and says so); a refused plain GEMM, an error or a wrong result fails.
public enum GEMMProbe {
    public enum Epilogue: String, CaseIterable, Sendable {
        case plain, bias, gelu, biasGelu = "bias+gelu"
        var hasBias: Bool { self == .bias || self == .biasGelu }
        var activation: GEMMActivation { self == .gelu || self == .biasGelu ? .geluTanh : .none }
    }

    public struct Shape: Sendable, Equatable, CustomStringConvertible {
        public var m: Int, n: Int, k: Int
        public init(m: Int, n: Int, k: Int) { (self.m, self.n, self.k) = (m, n, k) }
        public var description: String { "\(m)x\(n)x\(k)" }

        /// "1x50257x768" -> m 1, n 50257, k 768.
        public init?(_ text: String) {
            let parts = text.split(separator: "x").compactMap { Int($0) }
            guard parts.count == 3, parts.allSatisfy({ $0 > 0 && $0 <= 65536 }) else { return nil }
            (m, n, k) = (parts[0], parts[1], parts[2])
        }
    }

    /// GPT-2's next-token head on one sequence, tiny odd shapes, and a large square GEMM.
    public static let defaultShapes = [Shape(m: 1, n: 50257, k: 768), Shape(m: 16, n: 2, k: 32), Shape(m: 16, n: 99, k: 32),
                                       Shape(m: 4096, n: 4096, k: 4096)]

    public struct Row: Sendable {
        public var dtype: DType
        public var epilogue: Epilogue
        public var shape: Shape
        /// "eager" or "graph".
        public var mode: String
        /// "ok", "refused (CUBLAS_STATUS_...)", or the error.
        public var status: String
        public var maxError: Float?
        public var tolerance: Float
        public var ok: Bool
    }

    /// Error allowed relative to max(1, max |reference|): fp32 accumulation in every dtype, so the
    /// rounding of the inputs and of C to the dtype dominates (11-bit / 8-bit mantissas).
    public static func tolerance(_ dtype: DType) -> Float {
        switch dtype {
        case .f16: return 1e-2
        case .bf16: return 5e-2
        default: return 1e-4
        }
    }

    public static func run(driver: any CUDADriver, dtypes: [DType] = [.f32, .f16, .bf16], shapes: [Shape] = defaultShapes,
                           progress: (String) -> Void = { _ in }) -> [Row] {
        var rows: [Row] = []
        for shape in shapes {
            var rng = SplitMix(seed: UInt64(shape.m * 31 + shape.n * 7 + shape.k))
            let a = (0..<(shape.m * shape.k)).map { _ in rng.uniform() }
            let scale = 1 / Float(shape.k).squareRoot()
            let w = (0..<(shape.n * shape.k)).map { _ in rng.uniform() * scale }
            let bias = (0..<shape.n).map { _ in rng.uniform() * 0.5 }
            for dtype in dtypes {
                progress("probing cuBLASLt \(shape) \(dtype)...")
                rows += probe(driver: driver, shape: shape, dtype: dtype, a: a, w: w, bias: bias)
            }
        }
        return rows
    }

    private static func probe(driver: any CUDADriver, shape: Shape, dtype: DType, a: [Float], w: [Float], bias: [Float]) -> [Row] {
        var rows: [Row] = []
        var buffers: [DevicePointer] = []
        defer { for p in buffers { driver.free(p) } }
        func upload(_ values: [Float], _ what: String) throws(FlintError) -> DevicePointer {
            let bytes = CUDAPreparedPlan.encode(values, as: dtype)
            let p = try driver.allocate(bytes: bytes.count, what: what)
            buffers.append(p)
            try driver.copy(toDevice: p, bytes)
            return p
        }
        let dA: DevicePointer, dW: DevicePointer, dBias: DevicePointer, dC: DevicePointer
        do {
            dA = try upload(a, "GEMM probe A")
            dW = try upload(w, "GEMM probe W")
            dBias = try upload(bias, "GEMM probe bias")
            dC = try driver.allocate(bytes: shape.m * shape.n * dtype.byteSize, what: "GEMM probe C")
            buffers.append(dC)
        } catch {
            return Epilogue.allCases.map { Row(dtype: dtype, epilogue: $0, shape: shape, mode: "eager", status: "\(error)", maxError: nil,
                                               tolerance: tolerance(dtype), ok: false) }
        }
        let sampled = shape.m <= 32 ? Array(0..<shape.m) : (0..<32).map { $0 * (shape.m - 1) / 31 }
        let dots = products(roundTrip(a, dtype), roundTrip(w, dtype), rows: sampled, shape: shape)
        let roundedBias = roundTrip(bias, dtype)
        for epilogue in Epilogue.allCases {
            let g = GEMMDescriptor(m: shape.m, n: shape.n, k: shape.k, a: dA, lda: shape.k, w: dW, ldw: shape.k, c: dC, ldc: shape.n,
                                   bias: epilogue.hasBias ? dBias : nil, activation: epilogue.activation, dtype: dtype)
            let want = dots.enumerated().map { i, dot in
                var x = dot + (epilogue.hasBias ? Double(roundedBias[i % shape.n]) : 0)
                if epilogue.activation == .geluTanh { x = 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))) }
                return Float(x)
            }
            func row(_ mode: String, _ body: () throws(FlintError) -> Void) {
                var r = Row(dtype: dtype, epilogue: epilogue, shape: shape, mode: mode, status: "ok", maxError: nil,
                            tolerance: tolerance(dtype), ok: false)
                do {
                    try driver.zero(dC, bytes: shape.m * shape.n * dtype.byteSize)
                    try body()
                    try driver.synchronize()
                    let got = try sampledRows(driver, dC, sampled, shape: shape, dtype: dtype)
                    r.maxError = scaledDifference(got, want)
                    r.ok = r.maxError! <= r.tolerance
                } catch {
                    r.status = "\(error)"
                }
                rows.append(r)
            }
            let support: GEMMSupport
            do {
                support = try driver.prepareGEMM(g)
            } catch {
                rows.append(Row(dtype: dtype, epilogue: epilogue, shape: shape, mode: "eager", status: "\(error)", maxError: nil,
                                tolerance: tolerance(dtype), ok: false))
                continue
            }
            if case let .refused(status) = support {
                // A refused epilogue is what the backend's fallback is for; a refused plain GEMM is fatal.
                rows.append(Row(dtype: dtype, epilogue: epilogue, shape: shape, mode: "eager", status: "refused (\(status))", maxError: nil,
                                tolerance: tolerance(dtype), ok: epilogue != .plain))
                continue
            }
            row("eager") { () throws(FlintError) in try driver.gemm(g) }
            row("graph") { () throws(FlintError) in
                try driver.beginCapture()
                do throws(FlintError) { try driver.gemm(g) } catch {
                    _ = try? driver.endCapture()
                    throw error
                }
                let graph = try driver.endCapture()
                defer { driver.destroyGraph(graph) }
                try driver.replay(graph)
            }
        }
        return rows
    }

    private static func roundTrip(_ values: [Float], _ dtype: DType) -> [Float] {
        CUDAPreparedPlan.encode(values, as: dtype).withUnsafeBytes { CUDAPreparedPlan.decode($0, as: dtype, count: values.count) }
    }

    /// float64 A·Wᵀ for the sampled rows (the epilogues are applied per row of the probe; cuBLASLt's
    /// GELU is the tanh form).
    private static func products(_ a: [Float], _ w: [Float], rows: [Int], shape: Shape) -> [Double] {
        var out: [Double] = []
        out.reserveCapacity(rows.count * shape.n)
        for r in rows {
            for c in 0..<shape.n {
                var sum = 0.0
                for i in 0..<shape.k { sum += Double(a[r * shape.k + i]) * Double(w[c * shape.k + i]) }
                out.append(sum)
            }
        }
        return out
    }

    private static func sampledRows(_ driver: any CUDADriver, _ c: DevicePointer, _ rows: [Int], shape: Shape, dtype: DType)
        throws(FlintError) -> [Float]
    {
        var out: [Float] = []
        let rowBytes = shape.n * dtype.byteSize
        for r in rows {
            let raw = try driver.copyToHost(from: c + UInt64(r * rowBytes), bytes: rowBytes)
            out += raw.withUnsafeBytes { CUDAPreparedPlan.decode($0, as: dtype, count: shape.n) }
        }
        return out
    }

    /// max |a - b| / max(1, max |b|); infinity on NaN.
    private static func scaledDifference(_ a: [Float], _ b: [Float]) -> Float {
        let scale = b.reduce(Float(1)) { max($0, abs($1)) }
        return zip(a, b).reduce(0) { $1.0.isNaN ? .infinity : max($0, abs($1.0 - $1.1) / scale) }
    }
}

/// Seeded uniform values in [-1, 1) (the probe's inputs: the same on every machine).
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func uniform() -> Float {
        state = SamplingParameters.splitMix64(state)
        return Float(state >> 40) / 8_388_608 - 1
    }
}
