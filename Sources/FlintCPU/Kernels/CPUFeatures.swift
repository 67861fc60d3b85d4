// CPU feature detection for the kernel layer: which SIMD path (AVX-512, AVX2+FMA or portable C)
// the C kernels in CFlintCPU take on this machine. Every kernel also takes an `isa:` argument so
// tests (and benchmarks) can force a lower path; a request above what the CPU has is lowered.
import CFlintCPU

/// Instruction-set level of a kernel call.
public enum CPUISA: Int32, Sendable, CaseIterable, CustomStringConvertible {
    /// Best level the CPU supports.
    case auto = 0
    /// Plain C (any CPU).
    case portable = 1
    /// AVX2 + FMA (e.g. Zen 2/3, Haswell+).
    case avx2 = 2
    /// AVX-512 F/VL/BW/DQ (e.g. Zen 4/5, Skylake-SP+).
    case avx512 = 3

    public var description: String {
        switch self {
        case .auto: return "auto"
        case .portable: return "portable"
        case .avx2: return "avx2"
        case .avx512: return "avx512"
        }
    }

    /// The level a call with this request actually runs at on this CPU.
    public var resolved: CPUISA { CPUISA(rawValue: flint_resolve_isa(rawValue)) ?? .portable }
}

public enum CPUFeatures {
    /// Best ISA level of this CPU.
    public static var isa: CPUISA { CPUISA(rawValue: flint_cpu_isa()) ?? .portable }
    /// "avx512", "avx2" or "portable".
    public static var isaName: String { isa.description }
    /// Levels this CPU can run (always includes `.portable`), best last.
    public static var supportedISAs: [CPUISA] { [.portable, .avx2, .avx512].filter { $0.rawValue <= isa.rawValue } }
    /// ISA that GEMM and attention use by default: on AVX-512 CPUs the faster of the AVX-512 and
    /// AVX2 micro-kernels, timed once on first use (~2 ms; env FLINT_GEMM_ISA=avx2|avx512|portable
    /// overrides the timing).
    public static var gemmISA: CPUISA { CPUISA(rawValue: flint_gemm_isa()) ?? .portable }
    /// The dynamic-int8 GEMM micro-kernel at AVX2 level and above: "avx512vnni", "avxvnni" or "avx2".
    public static var int8KernelName: String { String(cString: flint_int8_kernel_name()) }
    /// CPUs this process may run on (affinity mask).
    public static var cpuCount: Int { Int(flint_cpu_count()) }
}
