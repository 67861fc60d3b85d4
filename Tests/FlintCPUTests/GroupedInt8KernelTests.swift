// Grouped int8 weights (`.int8Grouped`: one scale per 64 input features per output channel): the GEMM (the
// streaming GEMV for a few rows, the integer kernel on int16 activations for up to 127 rows on AVX2, widened tiles
// beyond and without AVX2) against a double-accumulating reference of the unpacked weights and of the activations
// as that path sees them, at row counts that take each path and depths with partial and single groups; the
// packing's per-group rounding; and the storage it takes.
import Testing
@testable import FlintCPU

@Suite("CPU grouped int8 kernels")
struct GroupedInt8KernelTests {
    /// 1-2 rows: the GEMV on AVX2 (up to 4); 5, 16 (all-MiniLM-L6-v2 at s16 b1), 127: int16 activations on AVX2;
    /// 128, 200: widened tiles.
    static let rows = [1, 2, 5, 16, 127, 128, 200]
    /// Less than a group, one group, a partial last group (100: 64 + 36; 70: 64 + 6, k % 4 != 0), several K
    /// blocks of the driver (1536: 24 groups over 6 blocks of 256).
    static let depths = [32, 64, 70, 100, 384, 1536]

    /// Weights whose groups differ 30x in magnitude (column j's group j % groups is scaled up), so a kernel
    /// applying one group's scale to another's values is far off.
    static func unevenWeights(n: Int, k: Int, rng: inout Rng) -> [Float] {
        var w = rng.array(n * k, scale: 0.2)
        let groups = (k + 63) / 64
        for j in 0..<n {
            let g = j % groups
            for kk in (g * 64)..<min(k, g * 64 + 64) { w[j * k + kk] *= 30 }
        }
        return w
    }

    @Test(arguments: CPUFeatures.supportedISAs, depths)
    func linearMatchesUnpackedWeights(isa: CPUISA, k: Int) throws {
        var rng = Rng(UInt64(k) * 13 + UInt64(isa.rawValue))
        let n = 40  // two full panels and a partial one
        let w = Self.unevenWeights(n: n, k: k, rng: &rng)
        let bias = rng.array(n)
        let packed = try PackedWeight(weight: w, n: n, k: k, isa: isa, format: .int8Grouped)
        let wq = packed.dequantized()
        for m in Self.rows {
            let lda = k + 3, ldc = n + 5
            var a = rng.array(m * lda, scale: 3)
            for i in stride(from: 0, to: m, by: 3) { a[i * lda + i % k] = 90 } // outliers set some rows' int16 scale
            let seen = CPUKernels.groupedInt8Activations(a, rows: m, lda: lda, k: k, isa: isa)
            for (act, useBias) in [(Activation.none, false), (.none, true), (.gelu, true)] {
                let pool = pools[m % 2 == 0 ? 3 : 1]!
                var c = [Float](repeating: .nan, count: m * ldc)
                a.withUnsafeBufferPointer { ap in
                    bias.withUnsafeBufferPointer { bp in
                        c.withUnsafeMutableBufferPointer { cp in
                            CPUKernels.linear(ap.baseAddress!, rows: m, lda: lda, weight: packed, bias: useBias ? bp.baseAddress! : nil,
                                              activation: act, out: cp.baseAddress!, ldc: ldc, pool: pool, isa: isa)
                        }
                    }
                }
                // Exact against the activations the path sees; within int16 rounding of A itself (int8 A: ~1e-2).
                var worst = 0.0, worstVsA = 0.0
                for i in 0..<m {
                    for j in 0..<n {
                        let bias = useBias ? bias : nil
                        let r = LowPrecisionKernelTests.reference(seen, m: m, lda: k, wq, n: n, k: k, bias: bias, act: act, j: j, i: i)
                        let err = abs(Double(c[i * ldc + j]) - r.value) / max(r.magnitude, 1e-3)
                        if !(err <= worst) { worst = err.isNaN ? .infinity : err }
                        let f = LowPrecisionKernelTests.reference(a, m: m, lda: lda, wq, n: n, k: k, bias: bias, act: act, j: j, i: i)
                        worstVsA = max(worstVsA, abs(Double(c[i * ldc + j]) - f.value) / max(f.magnitude, 1e-3))
                    }
                }
                #expect(worst <= 1e-5, "int8 g64 m \(m) k \(k) act \(act) bias \(useBias) isa \(isa): rel err \(worst)")
                #expect(worstVsA <= 1e-3, "int8 g64 m \(m) k \(k) act \(act) isa \(isa): rel err \(worstVsA) against unrounded A")
            }
        }
    }

    /// Every weight within half a step of its group's max|w|/127, an all-zero group stays zero while its column's
    /// other groups do not, and the storage is the int8 panels plus [panels][groups][16] f32 scales.
    @Test(arguments: [13, 64, 150])
    func packingRoundsPerGroup(k: Int) throws {
        var rng = Rng(17)
        let n = 21
        var w = Self.unevenWeights(n: n, k: k, rng: &rng)
        for kk in 0..<min(k, 64) { w[3 * k + kk] = 0 }
        let packed = try PackedWeight(weight: w, n: n, k: k, format: .int8Grouped)
        let q = packed.dequantized()
        let groups = (k + 63) / 64
        for j in 0..<n {
            for g in 0..<groups {
                let range = (j * k + g * 64)..<(j * k + min(k, g * 64 + 64))
                let step = Double(w[range].map { abs($0) }.max()!) / 127
                for i in range {
                    #expect(abs(Double(q[i]) - Double(w[i])) <= step / 2 * (1 + 1e-5) + 1e-12, "[\(j), \(i - j * k)]: \(w[i]) -> \(q[i])")
                }
            }
        }
        #expect(q[(3 * k)..<(3 * k + min(k, 64))].allSatisfy { $0 == 0 })
        if k > 64 { #expect(q[(3 * k + 64)..<(4 * k)].contains { $0 != 0 }) }
        let panels = (n + 15) / 16
        #expect(packed.byteCount == panels * ((k + 3) / 4 * 4) * 16 + panels * groups * 16 * 4)
    }
}
