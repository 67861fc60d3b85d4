import FlintBackendChecks
import FlintCPU
import FlintCUDA
import FlintCUDAEmulation
import FlintCore
import Testing

/// Every op case of `flint check` (FlintBackendChecks) on the CUDA backend under the emulated
/// driver, in each dtype it applies to, against the CPU backend: the launch path of every step kind
/// (geometry, arena offsets, staging layout, graph capture) at odd sizes.
@Suite("Op cases on the CUDA backend under the emulated driver")
struct EmulatedOpTests {
    static let cpu = CPUBackend(threads: 1)

    @Test(arguments: [DType.f32, .f16, .bf16])
    func everyOpMatchesTheCPU(_ dtype: DType) throws {
        for c in OpChecks.cases() where c.dtypes.contains(dtype) {
            do {
                let err = try c.maxError(on: CUDABackend(driver: EmulatedCUDADriver(), dtype: dtype), reference: Self.cpu)
                let tolerance = c.comparison == .exact ? 0 : OpChecks.tolerance(dtype)
                #expect(err <= tolerance, "\(c.name) [\(dtype)]: error \(err) > \(tolerance)")
            } catch {
                Issue.record("\(c.name) [\(dtype)]: \(error)")
            }
        }
    }

    /// Where cuBLASLt refuses an epilogue, the bias and activation run in Flint's kernel instead.
    @Test func gemmsWithoutCuBLASLtEpiloguesStillMatch() throws {
        for c in OpChecks.cases() where c.name.hasPrefix("linear") {
            let err = try c.maxError(on: CUDABackend(driver: EmulatedCUDADriver(refusesGEMMEpilogues: true)), reference: Self.cpu)
            #expect(err <= OpChecks.tolerance(.f32), "\(c.name): error \(err)")
        }
    }

    /// The checks can fail: a wrong result is reported as an error above tolerance.
    @Test func aWrongWeightIsCaught() throws {
        let c = try #require(OpChecks.cases().first { $0.name.hasPrefix("linear 7x769x64") })
        var broken = c.weights
        broken.tensors["b"]!.data[5] += 0.5
        let wrong = OpCase(name: c.name, plan: c.plan, weights: broken, batches: c.batches)
        let device = try CUDABackend(driver: EmulatedCUDADriver()).prepare(wrong.plan, weights: wrong.weights)
        let reference = try Self.cpu.prepare(c.plan, weights: c.weights)
        let err = scaledError(try device.run(c.batches[0])["y"]!.data, try reference.run(c.batches[0])["y"]!.data)
        #expect(err > OpChecks.tolerance(.f32) * 10)
    }

    /// Each run leaves a profile (enqueue time, device time by events); the bench's ceilings run.
    @Test func runsAreProfiledAndCeilingsMeasured() throws {
        let c = OpChecks.cases()[0]
        let backend = try CUDABackend(driver: EmulatedCUDADriver())
        let prepared = try #require(try backend.prepare(c.plan, weights: c.weights) as? any ProfiledPlan)
        #expect(prepared.lastProfile == nil)
        _ = try prepared.run(c.batches[0])
        let profile = try #require(prepared.lastProfile)
        #expect(profile.deviceMs >= 0 && profile.hostEnqueueMs >= profile.deviceMs, "\(profile)")
        let ceilings = try backend.measureCeilings(copyBytes: 1 << 20, gemmSize: 64)
        #expect(ceilings.bandwidthGBs > 0 && ceilings.gemmTFLOPs > 0)
    }
}
