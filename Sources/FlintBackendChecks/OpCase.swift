import FlintCore

/// One op of a backend checked against the CPU backend, as ggml's test-backend-ops does: a small
/// plan around one step kind (fed by an embedding lookup, the only way data enters a plan), seeded
/// random weights of odd sizes, and the batches to run in order (KV-cache cases carry state from one
/// batch to the next).
public struct OpCase: Sendable {
    public enum Comparison: Sendable {
        /// max |got - want| / max(1, max |want|) over each output, against `OpChecks.tolerance`.
        case values
        /// Token ids: the fraction that differ, which must be 0.
        case exact
    }

    public let name: String
    public let plan: Plan
    public let weights: TensorDictionary
    public let batches: [TokenBatch]
    public let comparison: Comparison
    /// The activation dtypes the case is meaningful for (sampled ids need identical logits: f32).
    public let dtypes: [DType]

    public init(name: String, plan: Plan, weights: TensorDictionary, batches: [TokenBatch], comparison: Comparison = .values,
                dtypes: [DType] = [.f32, .f16, .bf16]) {
        self.name = name
        self.plan = plan
        self.weights = weights
        self.batches = batches
        self.comparison = comparison
        self.dtypes = dtypes
    }

    /// The largest error of `backend` against `reference` over every batch and output
    /// (`Comparison` says which error).
    public func maxError(on backend: any Backend, reference: any Backend) throws(FlintError) -> Float {
        let device = try backend.prepare(plan, weights: weights)
        let cpu = try reference.prepare(plan, weights: weights)
        var worst: Float = 0
        for batch in batches {
            let got = try device.run(batch), want = try cpu.run(batch)
            for (name, w) in want {
                guard let g = got[name], g.shape == w.shape else { return .infinity }
                switch comparison {
                case .values: worst = max(worst, scaledError(g.data, w.data))
                case .exact: worst = max(worst, Float(zip(g.data, w.data).filter { $0 != $1 }.count) / Float(max(w.data.count, 1)))
                }
            }
        }
        return worst
    }
}

/// max |a - b| / max(1, max |b|): an error relative to the output's scale (infinity on NaN or a
/// count mismatch).
public func scaledError(_ a: [Float], _ b: [Float]) -> Float {
    guard a.count == b.count else { return .infinity }
    let scale = b.reduce(Float(1)) { max($0, abs($1)) }
    return zip(a, b).reduce(0) { $1.0.isNaN ? .infinity : max($0, abs($1.0 - $1.1) / scale) }
}

/// Weights held in memory by name (op cases; tests).
public struct TensorDictionary: WeightSource {
    public var tensors: [String: HostTensor]

    public init(_ tensors: [String: HostTensor] = [:]) { self.tensors = tensors }

    public func tensor(_ name: String, shape: Shape) throws(FlintError) -> HostTensor {
        guard let t = tensors[name] else { throw .badTensor(path: "memory", tensor: name, reason: "missing") }
        guard t.shape == shape else { throw .badTensor(path: "memory", tensor: name, reason: "shape \(t.shape), expected \(shape)") }
        return t
    }
}
