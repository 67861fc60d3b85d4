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
        KernelSource(name: "layernorm", text: text(PackageResources.layernorm_cu), kernels: perType(["embedding_layernorm", "layernorm"])),
        KernelSource(name: "activation", text: text(PackageResources.activation_cu), kernels: perType(["bias_activation"])),
        KernelSource(name: "attention", text: text(PackageResources.attention_cu), kernels: perType(["attention", "cached_attention", "decode_attention"])),
        KernelSource(name: "pooling", text: text(PackageResources.pooling_cu),
                     kernels: perType(["first_token", "last_token", "mean_pool", "max_pool", "l2_normalize"])),
        KernelSource(name: "sampling", text: text(PackageResources.sampling_cu), kernels: perType(["sample_tokens"])),
        KernelSource(name: "convert", text: text(PackageResources.convert_cu),
                     kernels: dtypes.map { "convert_f32_to_\($0)" } + ["convert_f16_to_f32", "convert_bf16_to_f32"]),
    ]

    static func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }
}
