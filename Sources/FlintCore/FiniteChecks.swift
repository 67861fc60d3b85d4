/// Non-finite results (NaN, ±infinity) are errors, never answers: the checks every backend runs on
/// what a forward hands back, and the words that name the step at fault.
public enum FiniteCheck {
    /// Whether every value is finite. Compares exponent bits as integers, so the loop vectorizes
    /// (a scan of the outputs costs far less than the forward that produced them).
    @inlinable
    public static func allFinite(_ values: UnsafeBufferPointer<Float>) -> Bool {
        values.withMemoryRebound(to: UInt32.self) { bits in
            var largest: UInt32 = 0
            for b in bits { largest = Swift.max(largest, b & 0x7FFF_FFFF) }
            return largest < 0x7F80_0000
        }
    }

    /// The number of non-finite values (for messages; not on the hot path).
    public static func nonFiniteCount(_ values: UnsafeBufferPointer<Float>) -> Int {
        values.reduce(0) { $0 + ($1.isFinite ? 0 : 1) }
    }
}

extension Plan {
    /// The buffers whose values leave a forward: the float outputs, and the logits each `.sample`
    /// step picks from (a NaN row would otherwise quietly become token 0).
    public var resultBuffers: [Int] {
        var result: [Int] = []
        for (_, b) in outputs where buffers[b].element == .activation && !result.contains(b) { result.append(b) }
        for case let .sample(logits, _, _, _, _, _) in steps where !result.contains(logits) { result.append(logits) }
        return result
    }

    /// The index of the last step that writes `buffer`, or nil when no step does.
    public func lastWriter(of buffer: Int) -> Int? {
        steps.indices.last { Self.uses(steps[$0]).writes.contains(buffer) }
    }

    /// A step for messages: `step 12 of 45 (linear encoder.layer.1.output.dense.weight -> "ffn_output")`.
    public func describe(step index: Int) -> String {
        let what: String
        switch steps[index] {
        case let .embed(word, _, _, _, _, _, _): what = "embedding \(weights[word].name)"
        case let .linear(_, weight, _, _, _): what = "linear \(weights[weight].name)"
        case .attention: what = "attention"
        case .cachedAttention: what = "cached attention"
        case let .layerNorm(_, _, gamma, _, _, _, _): what = "layer norm \(weights[gamma].name)"
        case .firstToken: what = "first token"
        case .lastToken: what = "last token"
        case .sample: what = "sampling"
        case let .pool(_, mode, _): what = "\(mode.rawValue) pooling"
        case .l2Normalize: what = "L2 normalization"
        }
        let written = Self.uses(steps[index]).writes.map { "\"\(buffers[$0].name)\"" }.joined(separator: ", ")
        return "step \(index + 1) of \(steps.count) (\(what) -> \(written))"
    }

    /// The error for non-finite values found in `buffer` after a whole forward: names the buffer
    /// (and the output it is, if any) and the step that wrote it last.
    public func nonFiniteError(buffer: Int, count: Int, of total: Int) -> FlintError {
        let output = outputs.first { $0.buffer == buffer }.map { "output \"\($0.name)\"" } ?? "buffer \"\(buffers[buffer].name)\""
        let step = lastWriter(of: buffer).map { describe(step: $0) } ?? "no step"
        return .nonFinite(buffer: "\(output) (\(count) of \(total) values)", step: step)
    }
}

extension PreparedPlan {
    /// Throws `FlintError.nonFinite` when a float output of a run holds NaN or infinity, naming the
    /// output and the plan step that wrote it. Backends call it on what `run` is about to return.
    public func requireFinite(_ outputs: [String: HostTensor]) throws(FlintError) {
        for (name, b) in plan.outputs where plan.buffers[b].element == .activation {
            guard let t = outputs[name], !t.data.withUnsafeBufferPointer({ FiniteCheck.allFinite($0) }) else { continue }
            throw plan.nonFiniteError(buffer: b, count: t.data.count { !$0.isFinite }, of: t.data.count)
        }
    }

    /// Throws `FlintError.nonFinite` when `values` (the rows of plan buffer `buffer` a run used)
    /// hold NaN or infinity: for result buffers that stay on the device, such as sampled logits.
    public func requireFinite(_ values: UnsafeBufferPointer<Float>, buffer: Int) throws(FlintError) {
        if !FiniteCheck.allFinite(values) {
            throw plan.nonFiniteError(buffer: buffer, count: FiniteCheck.nonFiniteCount(values), of: values.count)
        }
    }

    /// `requireFinite(_:buffer:)` for values already copied to the host.
    public func requireFinite(_ values: [Float], buffer: Int) throws(FlintError) {
        if !values.withUnsafeBufferPointer({ FiniteCheck.allFinite($0) }) {
            throw plan.nonFiniteError(buffer: buffer, count: values.count { !$0.isFinite }, of: values.count)
        }
    }
}
