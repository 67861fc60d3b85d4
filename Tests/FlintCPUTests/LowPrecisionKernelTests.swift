// Low-precision GEMM kernels (bf16 weights, int8 weights weight-only and with dynamic int8
// activations) on every ISA path this CPU has, against a double-accumulating reference GEMM of the
// values the kernel is meant to multiply: the rounded / dequantized weights (and, for dynamic
// int8, the per-row quantized activations). Those products are exact in the kernels' arithmetic up
// to f32 accumulation, so the bound is tight (1e-5 of the sum of |products|); the formats' own
// rounding error is checked separately against the f32 weights with the bound the format allows.
import Testing
@testable import FlintCPU
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@Suite("CPU low-precision kernels")
struct LowPrecisionKernelTests {
    static let formats: [PackedWeight.Format] = [.bf16, .int8Dynamic, .int8WeightOnly, .int8Grouped]
    /// Every format, dynamic int8 in every scheme (each runs on every ISA: the AVX2 unsigned kernels
    /// with vpmaddubsw, S8S8 with vpmaddwd or VNNI, the portable one with the same integer sums).
    static let variants: [(PackedWeight.Format, Int8Scheme?)] =
        [(.bf16, nil), (.int8WeightOnly, nil), (.int8Grouped, nil)] + Int8Scheme.allCases.map { (.int8Dynamic, $0) }

    /// C = act(A · Wᵀ + bias) in double.
    static func reference(_ a: [Float], m: Int, lda: Int, _ w: [Float], n: Int, k: Int, bias: [Float]?, act: Activation,
                          j: Int, i: Int) -> (value: Double, magnitude: Double) {
        var sum = bias.map { Double($0[j]) } ?? 0, mag = abs(sum)
        for kk in 0..<k {
            let p = Double(a[i * lda + kk]) * Double(w[j * k + kk])
            sum += p
            mag += abs(p)
        }
        return (refActivation(sum, act), mag)
    }

    @Test(arguments: CPUFeatures.supportedISAs, variants.indices)
    func linearMatchesReferenceOfItsValues(isa: CPUISA, variant: Int) throws {
        let (format, scheme) = Self.variants[variant]
        var rng = Rng(UInt64(isa.rawValue) * 7 + 3)
        for threads in [1, 3] {
            let pool = pools[threads]!
            for (si, s) in KernelTests.gemmShapes.enumerated() {
                let lda = s.k + (si % 3), ldc = s.n + (si % 2) * 5
                var a = rng.array(s.m * lda, scale: 3)
                if si % 4 == 1 { for i in 0..<s.m { a[i * lda] = 40 } } // an outlier per row: the int8 scale follows it
                if si % 4 == 2 { for i in 0..<(s.m * lda) { a[i] = abs(a[i]) } } // all >= 0: the zero point at 0
                if si % 4 == 3 { for i in 0..<(s.m * lda) { a[i] = 3 } } // every activation at the top level
                var w = rng.array(s.n * s.k, scale: 0.2)
                let bias = rng.array(s.n)
                if si % 4 == 3 { // and two columns at ±the top weight level: the 16-bit pair sums' worst case
                    for kk in 0..<s.k { w[kk] = 0.15 }
                    if s.n > 1 { for kk in 0..<s.k { w[s.k + kk] = -0.15 } }
                }
                let packed = try PackedWeight(weight: w, n: s.n, k: s.k, isa: isa, format: format, scheme: scheme)
                #expect(packed.int8Scheme == scheme)
                let wq = packed.dequantized()
                let dense = (0..<s.m).flatMap { i in Array(a[(i * lda)..<(i * lda + s.k)]) }
                let aq = scheme.map { CPUKernels.int8Activations(dense, rows: s.m, k: s.k, scheme: $0) }
                    ?? (format == .int8Grouped ? CPUKernels.groupedInt8Activations(dense, rows: s.m, lda: s.k, k: s.k, isa: isa) : dense)
                for act in [Activation.none, .gelu] {
                    var c = [Float](repeating: .nan, count: s.m * ldc)
                    a.withUnsafeBufferPointer { ap in
                        bias.withUnsafeBufferPointer { bp in
                            c.withUnsafeMutableBufferPointer { cp in
                                CPUKernels.linear(ap.baseAddress!, rows: s.m, lda: lda, weight: packed, bias: bp.baseAddress!,
                                                  activation: act, out: cp.baseAddress!, ldc: ldc, pool: pool, isa: isa)
                            }
                        }
                    }
                    var worst = 0.0
                    for i in 0..<s.m {
                        for j in 0..<s.n {
                            let r = Self.reference(aq, m: s.m, lda: s.k, wq, n: s.n, k: s.k, bias: bias, act: act, j: j, i: i)
                            let err = abs(Double(c[i * ldc + j]) - r.value) / max(r.magnitude, 1e-3)
                            if !(err <= worst) { worst = err.isNaN ? .infinity : err }
                        }
                    }
                    let name = "\(format) \(scheme.map { "\($0)" } ?? "")"
                    #expect(worst <= 1e-5, "\(name) \(s) act \(act) isa \(isa) threads \(threads): rel err \(worst)")
                }
            }
        }
    }

    /// The formats round as specified: bf16 to nearest (relative error <= 2^-8), ties to even, int8 to the
    /// nearest step of max|row|/127 (max|row|/63 for the 7-bit schemes; error <= half a step), and an
    /// all-zero row stays zero.
    @Test(arguments: variants.indices)
    func packingRoundsAsSpecified(variant: Int) throws {
        let (format, scheme) = Self.variants[variant]
        var rng = Rng(11)
        let n = 37, k = 29
        var w = rng.array(n * k, scale: 2)
        for kk in 0..<k { w[5 * k + kk] = 0 }
        let q = try PackedWeight(weight: w, n: n, k: k, format: format, scheme: scheme).dequantized()
        for j in 0..<n {
            let row = w[(j * k)..<(j * k + k)]
            let step = Double(row.map { abs($0) }.max()!) / Double(scheme?.weightMax ?? 127)
            for kk in 0..<k {
                let x = Double(w[j * k + kk]), y = Double(q[j * k + kk])
                if format == .bf16 {
                    #expect(abs(y - x) <= abs(x) * 0x1p-8, "bf16 of \(x) is \(y)")  // half of 2^-7, the ulp at 1
                    #expect(Float(y).bitPattern & 0xFFFF == 0)
                } else {
                    #expect(abs(y - x) <= step / 2 * (1 + 1e-5) + 1e-12, "int8 of \(x) is \(y) (step \(step))")
                }
            }
        }
        #expect(q[(5 * k)..<(6 * k)].allSatisfy { $0 == 0 })
        #expect(FlintCPUTestRounding.bf16(1 + 0x1p-8) == 1, "a tie rounds to even")
    }

    /// The dynamic activation quantization: per row, S8S8 q = round(a / (max|a|/127)); the unsigned
    /// schemes spread [min(0, min a), max(0, max a)] over 255 or 127 steps with an integer zero point.
    /// Every value is within half a step, the extreme value comes back (up to the scale's rounding),
    /// zero stays exactly zero.
    @Test(arguments: Int8Scheme.allCases)
    func activationQuantization(scheme: Int8Scheme) {
        var rng = Rng(5)
        let rows = 5, k = 50
        var a = rng.array(rows * k, scale: 5)
        a[3] = -9
        for kk in 0..<k { a[2 * k + kk] = 0 }
        for kk in 0..<k { a[4 * k + kk] = abs(a[4 * k + kk]) + 0.5 } // all positive: the range starts at 0
        a[4 * k + 7] = 0
        let q = CPUKernels.int8Activations(a, rows: rows, k: k, scheme: scheme)
        var steps: [Double] = []
        for i in 0..<rows {
            let row = a[(i * k)..<(i * k + k)].map { Double($0) }
            let span = scheme == .s8s8 ? 2 * row.map { abs($0) }.max()! : max(0, row.max()!) - min(0, row.min()!)
            let step = span / Double(scheme.activationSteps)
            steps.append(step)
            for kk in 0..<k { #expect(abs(Double(q[i * k + kk]) - row[kk]) <= step / 2 * (1 + 1e-5) + 1e-12, "\(scheme) [\(i), \(kk)]") }
        }
        // S8S8's scale is the largest |value| itself; an asymmetric range's ends sit on the zero point's grid.
        let extremeBound = scheme == .s8s8 ? 1e-5 * 9 : steps[0] / 2 * (1 + 1e-5)
        #expect(abs(Double(q[3]) + 9) <= extremeBound, "\(scheme): the row's extreme value comes back: \(q[3])")
        #expect(q[(2 * k)..<(3 * k)].allSatisfy { $0 == 0 })
        #expect(q[4 * k + 7] == 0, "\(scheme): zero is exact with a zero point")
    }

    /// FLINT_INT8_SCHEME: a scheme's exact name is taken silently; anything else (unset aside) gets one
    /// line naming every accepted value and the scheme kept.
    @Test func int8SchemeEnvironmentWarning() throws {
        for scheme in Int8Scheme.allCases {
            #expect(Int8Scheme.environmentWarning(value: scheme.description, keeping: .s8s8) == nil, "\(scheme)")
        }
        #expect(Int8Scheme.environmentWarning(value: nil, keeping: .u7s7) == nil)
        for bad in ["U7S7", "u7s9", "", " s8s8", "int8"] {
            let line = try #require(Int8Scheme.environmentWarning(value: bad, keeping: .u7s7), "\(bad)")
            #expect(line.hasPrefix("flint: FLINT_INT8_SCHEME=\(bad) is not one of s8s8, u8s7, u7s8, u7s7;"), "\(line)")
            #expect(line.hasSuffix("(this CPU's int8 scheme: u7s7)\n"), "\(line)")
        }
    }

    /// Low-precision GEMMs stay close to the f32 GEMM of the original weights (the format's error,
    /// not a kernel's): bf16 within 2^-8 of the |products|, int8 within 2 steps of them (a step: 1/127,
    /// or 1/63 where weights are 7-bit or activations take 127 levels over their whole range).
    @Test(arguments: variants.indices)
    func closeToF32(variant: Int) throws {
        let (format, scheme) = Self.variants[variant]
        var rng = Rng(9)
        let m = 8, n = 40, k = 300
        let a = rng.array(m * k), w = rng.array(n * k)
        let packed = try PackedWeight(weight: w, n: n, k: k, format: format, scheme: scheme)
        var c = [Float](repeating: 0, count: m * n)
        c.withUnsafeMutableBufferPointer { cp in
            CPUKernels.linear(a, rows: m, lda: k, weight: packed, bias: nil, activation: .none, out: cp.baseAddress!, ldc: n,
                              pool: pools[2]!)
        }
        let coarsest = scheme.map { min($0.weightMax, $0 == .s8s8 ? 127 : $0.activationSteps / 2) } ?? 127
        let bound = format == .bf16 ? 0x1p-8 : 2.0 / Double(coarsest)
        for i in 0..<m {
            for j in 0..<n {
                let r = Self.reference(a, m: m, lda: k, w, n: n, k: k, bias: nil, act: .none, j: j, i: i)
                #expect(abs(Double(c[i * n + j]) - r.value) <= bound * r.magnitude, "\(format) [\(i), \(j)]")
            }
        }
    }
}

/// bf16 rounding as the packing does it, through the public dequantization.
enum FlintCPUTestRounding {
    static func bf16(_ x: Float) -> Float {
        try! PackedWeight(weight: [x], n: 1, k: 1, format: .bf16).dequantized()[0]
    }
}
