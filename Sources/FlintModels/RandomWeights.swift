import FlintCore

/// Seeded random weights for built-in benchmark models (no download): matrices and embeddings
/// uniform in ±0.02·√3 (the standard deviation 0.02 of HF's `initializer_range`; uniform rather
/// than normal because it costs one multiply per value, and a benchmark only needs the scale),
/// ones for LayerNorm gains, zeros for biases. Shapes are taken as asked (GPT-2's Conv1D weights
/// come out `[in, out]`, as a checkpoint has them). The same name and seed always give the same tensor.
public struct RandomWeights: WeightSource {
    public let seed: UInt64

    public init(seed: UInt64 = 0) { self.seed = seed }

    public func tensor(_ name: String, shape: Shape) throws(FlintError) -> HostTensor {
        if Self.isLayerNormGain(name) { return HostTensor(shape: shape, data: [Float](repeating: 1, count: shape.count)) }
        if name.hasSuffix(".bias") { return HostTensor(zeros: shape) }
        var state = seed ^ name.utf8.reduce(0xcbf2_9ce4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
        let scale = Float(0.02 * 3.0.squareRoot()) / Float(1 << 23)
        let data = [Float](unsafeUninitializedCapacity: shape.count) { out, n in
            for i in 0..<shape.count {
                // 24 random bits as a signed integer in [-2^23, 2^23): exact in Float.
                out[i] = Float(Int32(truncatingIfNeeded: Self.next(&state) >> 40) - (1 << 23)) * scale
            }
            n = shape.count
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
