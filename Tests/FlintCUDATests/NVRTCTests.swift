import FlintCore
import FlintTestSupport
import Testing

@testable import FlintCUDA

/// NVRTC through dlopen, with no GPU: compile to CUBIN, errors carry the log, and the disk cache
/// is hit on a second compile. Skips (saying why) where NVRTC cannot be found.
@Suite("NVRTC")
struct NVRTCTests {
    static let source = KernelSource(name: "probe", text: """
        #include <cuda_fp16.h>
        extern "C" __global__ void scale_f16(__half* x, float s, int n) {
            int i = blockIdx.x * blockDim.x + threadIdx.x;
            if (i < n) x[i] = __float2half(__half2float(x[i]) * s);
        }
        """, kernels: ["scale_f16"])

    static func compiler(cache: String?) -> KernelCompiler? {
        do {
            return KernelCompiler(nvrtc: try NVRTC(), cacheFolder: cache)
        } catch {
            print("skipped NVRTC tests: \(error) (scripts/fetch-cuda fetches NVRTC; scripts/test sets FLINT_CUDA_PATH)")
            return nil
        }
    }

    @Test func compilesToCubinForSm80AndSm90() throws {
        guard let c = Self.compiler(cache: nil) else { return }
        #expect(c.nvrtc.version.major >= 12)
        for arch in ["sm_80", "sm_90"] {
            let r = try c.compile(Self.source, arch: arch, verbose: true)
            #expect(r.cubin.starts(with: [0x7F, 0x45, 0x4C, 0x46]), "CUBIN is an ELF file")
            #expect(!r.fromCache)
            #expect((r.registers["scale_f16"] ?? 0) > 0, "ptxas reports registers: \(r.log)")
        }
    }

    /// Every CI run: each embedded kernel compiles for sm_80 and sm_90, and every kernel the host
    /// launches is in the CUBIN (ptxas reports it).
    @Test(arguments: ["sm_80", "sm_90"])
    func everyEmbeddedKernelCompiles(_ arch: String) throws {
        guard let c = Self.compiler(cache: nil) else { return }
        #expect(KernelSources.all.count >= 5)
        for source in KernelSources.all {
            let r = try c.compile(source, arch: arch, verbose: true)
            for k in source.kernels {
                #expect(r.registers[k] != nil, "\(k) missing from \(source.name).cu's CUBIN for \(arch)")
            }
            #expect(Set(r.registers.keys) == Set(source.kernels), "\(source.name).cu defines kernels the host does not list")
        }
    }

    @Test func compileErrorsCarryTheLog() throws {
        guard let c = Self.compiler(cache: nil) else { return }
        let broken = KernelSource(
            name: "broken", text: "extern \"C\" __global__ void k(float* x) { x[0] = undefined_name; }", kernels: ["k"])
        do {
            _ = try c.compile(broken, arch: "sm_90")
            Issue.record("a broken kernel compiled")
        } catch {
            #expect("\(error)".contains("undefined_name"), "\(error)")
            #expect("\(error)".contains("broken.cu"))
        }
    }

    @Test func secondCompileComesFromTheDiskCache() throws {
        let folder = TestPaths.temporaryFolder() + "/kernels"
        guard let c = Self.compiler(cache: folder) else { return }
        let first = try c.compile(Self.source, arch: "sm_90")
        let second = try c.compile(Self.source, arch: "sm_90")
        let (firstCached, secondCached, same) = (first.fromCache, second.fromCache, first.cubin == second.cubin)
        #expect(!firstCached)
        #expect(secondCached, "second compile should load \(folder)")
        #expect(same)
        // A different option set (another arch) is a different key.
        let otherArchCached = try c.compile(Self.source, arch: "sm_80").fromCache
        #expect(!otherArchCached)
    }

    @Test func missingLibraryIsATypedError() {
        do {
            _ = try DynamicLibrary("/nonexistent/libcuda.so.1")
            Issue.record("opened a missing library")
        } catch {
            #expect("\(error)".hasPrefix("CUDA unavailable: cannot load /nonexistent/libcuda.so.1"))
        }
    }
}
