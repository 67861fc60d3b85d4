/// The kernel sources compiled into the binary (SwiftPM `.embedInCode`), so a static binary
/// carries them to a GPU machine, with the `extern "C"` kernels each defines. Kernels are
/// instantiated per dtype by macros (`attention_##SUFFIX`), so the names are listed here rather
/// than scanned; tests check the list against the emulation build and NVRTC's output.
public enum KernelSources {
    static let dtypes = ["f32", "f16", "bf16"]

    static func perType(_ prefixes: [String]) -> [String] {
        prefixes.flatMap { p in dtypes.map { p + "_" + $0 } }
    }

    public static let all: [KernelSource] = [
        KernelSource(
            name: "layernorm", text: source(PackageResources.layernorm_cu, "layernorm.cu"),
            kernels: perType(["embedding_layernorm", "layernorm"])),
        KernelSource(
            name: "activation", text: source(PackageResources.activation_cu, "activation.cu"), kernels: perType(["bias_activation"])),
        KernelSource(
            name: "attention", text: source(PackageResources.attention_cu, "attention.cu"),
            kernels: perType(["attention", "cached_attention", "decode_attention"])),
        KernelSource(
            name: "pooling", text: source(PackageResources.pooling_cu, "pooling.cu"),
            kernels: perType(["first_token", "last_token", "mean_pool", "max_pool", "l2_normalize"])),
        KernelSource(name: "sampling", text: source(PackageResources.sampling_cu, "sampling.cu"), kernels: perType(["sample_tokens"])),
        KernelSource(name: "convert", text: source(PackageResources.convert_cu, "convert.cu"),
                     kernels: dtypes.map { "convert_f32_to_\($0)" } + ["convert_f16_to_f32", "convert_bf16_to_f32"]),
    ]

    static func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    /// A kernel file as NVRTC compiles it: common.cuh, then the file, with a `#line` so errors name
    /// the file's own lines.
    static func source(_ bytes: [UInt8], _ file: String) -> String {
        text(PackageResources.common_cuh) + "\n#line 1 \"\(file)\"\n" + text(bytes)
    }
}
