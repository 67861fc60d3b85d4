import FlintCore

/// Seeded random weights for built-in benchmark models (no download): N(0, 0.02) for matrices
/// and embeddings like HF's `initializer_range`, ones for LayerNorm gains, zeros for biases.
/// Shapes are taken as asked (GPT-2's Conv1D weights come out `[in, out]`, as a checkpoint has them).
/// The same name and seed always give the same tensor.
public struct RandomWeights: WeightSource {
    public let seed: UInt64

    public init(seed: UInt64 = 0) { self.seed = seed }

    public func tensor(_ name: String, shape: Shape) throws(FlintError) -> HostTensor {
        if Self.isLayerNormGain(name) { return HostTensor(shape: shape, data: [Float](repeating: 1, count: shape.count)) }
        if name.hasSuffix(".bias") { return HostTensor(zeros: shape) }
        var state = seed ^ name.utf8.reduce(0xcbf2_9ce4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
        var data = [Float](repeating: 0, count: shape.count)
        var i = 0
        while i < data.count {
            // Box-Muller on two uniforms from SplitMix64.
            let u1 = max(Double(Self.next(&state) >> 11) / Double(1 << 53), 1e-300)
            let u2 = Double(Self.next(&state) >> 11) / Double(1 << 53)
            let r = (-2 * _log(u1)).squareRoot() * 0.02
            data[i] = Float(r * _cos(2 * .pi * u2))
            if i + 1 < data.count { data[i + 1] = Float(r * _sin(2 * .pi * u2)) }
            i += 2
        }
        return HostTensor(shape: shape, data: data)
    }

    /// BERT's `*.LayerNorm.weight`, GPT-2's `ln_1` / `ln_2` / `ln_f` `.weight`.
    static func isLayerNormGain(_ name: String) -> Bool {
        guard name.hasSuffix(".weight") else { return false }
        let module = name.dropLast(".weight".count).split(separator: ".").last ?? ""
        return module == "LayerNorm" || module.hasPrefix("ln_")
    }

    static func next(_ state: inout UInt64) -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

#if canImport(Glibc)
import Glibc
@inline(__always) func _log(_ x: Double) -> Double { Glibc.log(x) }
@inline(__always) func _cos(_ x: Double) -> Double { Glibc.cos(x) }
@inline(__always) func _sin(_ x: Double) -> Double { Glibc.sin(x) }
#elseif canImport(Darwin)
import Darwin
@inline(__always) func _log(_ x: Double) -> Double { Darwin.log(x) }
@inline(__always) func _cos(_ x: Double) -> Double { Darwin.cos(x) }
@inline(__always) func _sin(_ x: Double) -> Double { Darwin.sin(x) }
#endif
