// The emulation's math functions have the error CUDA documents (CUDA C Programming Guide, math
// functions appendix), not libm's: moved off the correctly rounded result, within the bound, the
// same bits on every run.
import CFlintCUDAEmulation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("Device-like math in the emulation")
struct DeviceMathTests {
    /// ulps between `got` and the correctly rounded `exact` (same sign, finite), or nil to skip.
    static func ulps(_ got: Float, _ exact: Double) -> Int? {
        let want = Float(exact)
        guard want.isFinite, want.isNormal || want == 0, got.isFinite else { return nil }
        if got == want { return 0 }
        guard got.sign == want.sign else { return Int.max }
        return abs(Int(got.bitPattern) - Int(want.bitPattern))
    }

    static let inputs: [Float] = (0..<3001).map { -30 + 60 * Float($0) / 3000 } + [1e-3, 0.7, 1.3, 5e3, 1e20, 3e-30]

    static func run() -> [Float] {
        let input = DeviceBuffer(inputs, dtype: .f32)
        let out = DeviceBuffer(count: 7 * inputs.count, dtype: .f32)
        emuRun("emu_test_math", grid: (4, 1, 1), block: (128, 1, 1), [.buffer(input), .buffer(out), .int(inputs.count)])
        return out.floats
    }

    @Test func withinCUDAsDocumentedErrorAndMovedOffLibm() throws {
        let out = Self.run()
        var moved = [Int](repeating: 0, count: 7), worst = [Int](repeating: 0, count: 7)
        for (i, x) in Self.inputs.enumerated() {
            let d = Double(x)
            let o = Array(out[(7 * i)..<(7 * i + 7)])
            #expect(abs(o[3]) <= 1 && abs(o[4]) <= 1, "tanhf / erff(\(x)) past 1: \(o[3]), \(o[4])")
            var checks: [(Int, Int?, Int)] = [
                (1, Self.ulps(o[1], exp(d)), 2),
                (2, Self.ulps(o[2], exp(d)), 2 + Int(min(1.173 * abs(d), 1e6).rounded(.down))),
                (3, Self.ulps(o[3], tanh(d)), 2),
                (4, Self.ulps(o[4], erf(d)), 2),
                (6, Self.ulps(o[6], d / 3), 2),
            ]
            if x > 0 {
                checks.append((0, Self.ulps(o[0], 1 / d.squareRoot()), 2))
                if x < 0.5 || x > 2 {
                    checks.append((5, Self.ulps(o[5], log(d)), 3))
                } else {
                    #expect(abs(Double(o[5]) - log(d)) <= pow(2, -21.41), "__logf(\(x)) = \(o[5])")
                }
            }
            for (f, u, bound) in checks {
                guard let u else { continue }
                #expect(u <= bound, "function \(f) at \(x): \(u) ulp > \(bound)")
                if u > 0 { moved[f] += 1 }
                worst[f] = max(worst[f], u)
            }
        }
        // Not libm in disguise: a good share of the results sit off the correctly rounded value.
        for f in [0, 1, 2, 3, 4, 6] { #expect(moved[f] > 100, "function \(f): only \(moved[f]) results moved (worst \(worst[f]) ulp)") }
        #expect(worst[2] > 2, "__expf's error grows with |x| as on the device")
    }

    @Test func theSameBitsOnEveryRun() {
        #expect(Self.run().map(\.bitPattern) == Self.run().map(\.bitPattern))
    }

    @Test func edgeCasesStayExact() {
        let input = DeviceBuffer([0, -1, .infinity, -.infinity, 200], dtype: .f32)
        let out = DeviceBuffer(count: 35, dtype: .f32)
        emuRun("emu_test_math", grid: (1, 1, 1), block: (32, 1, 1), [.buffer(input), .buffer(out), .int(5)])
        let o = out.floats
        #expect(o[0] == .infinity)           // rsqrtf(0)
        #expect(o[7].isNaN)                  // rsqrtf(-1)
        #expect(o[14] == 0 && o[15] == .infinity)  // rsqrtf(inf), expf(inf)
        #expect(o[22] == 0 && o[23] == 0)    // expf(-inf), __expf(-inf)
        #expect(o[28].isFinite && o[28] > 0)  // rsqrtf(200)
        #expect(o[29] == .infinity)          // expf(200) overflows
        #expect(o[31] == 1 && o[32] == 1)    // tanhf(200), erff(200): never past 1
    }
}
