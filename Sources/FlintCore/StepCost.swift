/// The work of one plan step for one batch: what a profile divides a step's time by.
public struct StepCost: Sendable, Equatable {
    /// Floating-point operations (a multiply-add counts 2).
    public var flops: Double
    /// Bytes read and written in memory: inputs, weights and outputs once each (fused kernels keep
    /// intermediates such as attention scores in cache, so they are not counted).
    public var bytes: Double

    public init(flops: Double, bytes: Double) {
        self.flops = flops
        self.bytes = bytes
    }

    /// FLOPs per byte moved.
    public var intensity: Double { bytes > 0 ? flops / bytes : 0 }

    /// Whether the step is limited by memory: its intensity is below the machine balance
    /// (`peakFlops / peakBytesPerSecond`, FLOPs per byte: the roofline's ridge point).
    public func isMemoryBound(balance: Double) -> Bool { intensity < balance }
}

extension Plan {
    /// A short label per step for profiles: the kind and what distinguishes it (a linear's weight
    /// without its layer prefix), and the transformer layer it belongs to (nil for steps outside
    /// the layers: embeddings, heads). Steps without weights take the layer of the step before.
    public func stepLabels() -> [(name: String, layer: Int?)] {
        var layer: Int?
        var seenLayer = false
        return steps.map { step in
            let weightName: String?
            let kind: String
            switch step {
            case let .embed(word, _, _, _, _, _, _): (kind, weightName) = ("embed", weights[word].name)
            case let .linear(_, w, _, _, _): (kind, weightName) = ("linear", weights[w].name)
            case .attention: (kind, weightName) = ("attention", nil)
            case .cachedAttention: (kind, weightName) = ("cached_attention", nil)
            case let .layerNorm(_, _, gamma, _, _, _, _): (kind, weightName) = ("layer_norm", weights[gamma].name)
            case .firstToken: (kind, weightName) = ("first_token", nil)
            case .lastToken: (kind, weightName) = ("last_token", nil)
            case .sample: (kind, weightName) = ("sample", nil)
            case let .pool(_, mode, _): (kind, weightName) = ("\(mode.rawValue)_pool", nil)
            case .l2Normalize: (kind, weightName) = ("l2_normalize", nil)
            }
            guard let weightName else { return (kind, seenLayer ? layer : nil) }
            let (found, rest) = Self.splitLayer(weightName)
            if let found {
                layer = found
                seenLayer = true
            } else if seenLayer {
                layer = nil  // past the last layer: the final LayerNorm, the heads
            }
            return (rest.isEmpty ? kind : "\(kind) \(rest)", found)
        }
    }

    /// `encoder.layer.3.attention.output.dense.weight` -> (3, `attention.output.dense`);
    /// `h.0.ln_1.weight` -> (0, `ln_1`); a name without a numeric component -> (nil, name less `.weight`).
    static func splitLayer(_ name: String) -> (Int?, String) {
        var parts = name.split(separator: ".").map(String.init)
        if let last = parts.last, last == "weight" || last == "bias" { parts.removeLast() }
        if let i = parts.firstIndex(where: { Int($0) != nil }) {
            return (Int(parts[i]), parts[(i + 1)...].joined(separator: "."))
        }
        return (nil, parts.joined(separator: "."))
    }

    /// FLOPs and bytes of step `index` over `batch`, with activations of `elementBytes` and
    /// weights of `weightBytes` bytes per value (the CPU: 4 and 4; CUDA f16: 2 and 2). Derived
    /// from the step's shapes only, so every backend reports the same work.
    public func cost(ofStep index: Int, batch: TokenBatch, elementBytes: Int = 4, weightBytes: Int = 4) -> StepCost {
        let tokens = Double(batch.tokenCount), sequences = Double(batch.sequenceCount)
        let e = Double(elementBytes), w = Double(weightBytes)
        func rows(_ b: Int) -> Double {
            switch buffers[b].rows {
            case .tokens: return tokens
            case .sequences, .slots: return sequences
            case .cache: return tokens  // only the batch's rows are written
            }
        }
        func cols(_ b: Int) -> Double { Double(buffers[b].columns) }
        switch steps[index] {
        case let .embed(_, _, tokenType, gamma, _, _, out):
            let c = cols(out), tables = tokenType == nil ? 2.0 : 3.0
            let indices = tokens * 4 * tables
            let flops = tokens * c * (tables - 1 + (gamma == nil ? 0 : 8))
            return StepCost(flops: flops, bytes: indices + tokens * c * (tables * w + e) + (gamma == nil ? 0 : 2 * c * w))
        case let .linear(_, weight, bias, _, out):
            let r = rows(out), n = Double(weights[weight].shape[0]), k = Double(weights[weight].shape.count) / n
            let biasBytes = bias == nil ? 0 : n * w
            return StepCost(flops: 2 * r * n * k, bytes: r * k * e + n * k * w + biasBytes + r * n * e)
        case let .attention(_, heads, headDim, causal, _):
            let hd = Double(heads * headDim)
            var flops = 0.0
            for l in batch.lengths.map(Double.init) { flops += causal ? 2 * l * (l + 1) * hd : 4 * l * l * hd }
            return StepCost(flops: flops, bytes: tokens * 3 * hd * e + tokens * hd * e)
        case let .cachedAttention(_, _, _, heads, headDim, _, _):
            let hd = Double(heads * headDim)
            var flops = 0.0, cacheReads = 0.0
            for s in 0..<batch.sequenceCount {
                let first = Int(batch.starts[s]), count = Int(batch.lengths[s])
                for t in first..<(first + count) { flops += 4 * Double(batch.positions[t] + 1) * hd }
                // K and V of the sequence's whole context, read once per sequence.
                cacheReads += 2 * Double(batch.positions[first + count - 1] + 1) * hd * e
            }
            // q, k, v in; k and v written to the cache; the output.
            return StepCost(flops: flops, bytes: tokens * 3 * hd * e + tokens * 2 * hd * e + cacheReads + tokens * hd * e)
        case let .layerNorm(_, residual, _, _, _, out, sum):
            let r = rows(out), c = cols(out)
            let streams = 2.0 + (residual == nil ? 0 : 1) + (sum == nil ? 0 : 1)
            return StepCost(flops: 8 * r * c, bytes: streams * r * c * e + 2 * c * w)
        case let .firstToken(_, out), let .lastToken(_, out):
            return StepCost(flops: 0, bytes: 2 * sequences * cols(out) * e)
        case let .sample(logits, seen, _, _, topIds, _):
            let v = cols(logits)
            // The counts row is read only with presence / frequency penalties: not counted here.
            return StepCost(flops: 2 * sequences * v, bytes: sequences * v * e + sequences * cols(seen) * 4 * 2
                + sequences * 4 * (1 + 2 * cols(topIds) + 1))
        case let .pool(input, _, out):
            return StepCost(flops: tokens * cols(input), bytes: tokens * cols(input) * e + sequences * cols(out) * e)
        case let .l2Normalize(b):
            let r = rows(b), c = cols(b)
            return StepCost(flops: 3 * r * c, bytes: 2 * r * c * e)
        }
    }
}
