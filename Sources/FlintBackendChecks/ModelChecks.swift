import FlintCore

/// What whole-model comparisons of a backend against the CPU backend share (`flint check` and the
/// emulated-driver tests): the error measure, its tolerances, and the KV-cache scenario.
public enum ModelChecks {
    /// Tolerances of `maxRelativeError` per dtype: fp32 as DESIGN.md asks; fp16 / bf16 from their
    /// 11- / 8-bit mantissas accumulated over two small layers (measured, with margin).
    public static func tolerance(_ dtype: DType) -> Float {
        switch dtype {
        case .f16: return 2e-2
        case .bf16: return 1e-1
        default: return 1e-4
        }
    }

    /// A prefill of `prompts` into slots 0, 1, ..., then `steps` decode steps of one token per
    /// sequence, each batch listing the slots rotated by one (so slots and batch order differ).
    public static func prefillAndDecode(prompts: [[Int32]], steps: Int = 3) -> [TokenBatch] {
        let n = prompts.count
        let order = (0..<n).map { Int32(($0 + n - 1) % n) }
        var batches = [TokenBatch(sequences: prompts)]
        for step in 0..<steps {
            batches.append(TokenBatch(sequences: order.map { [Int32(10 + step) + $0] },
                                      positionOffsets: order.map { Int32(prompts[Int($0)].count + step) }, slots: order))
        }
        return batches
    }
}

/// Greedy ids chosen on a device against the CPU's. On hardware, fused multiply-adds and
/// cuBLASLt's summation order move logits by a few ulps, so two candidates whose logits nearly tie
/// may swap; from there the sequences differ entirely. A divergence is a near-tie (reported, not a
/// failure) when, at the first differing step, the CPU's logit for the device's pick is within
/// `margin` x max |logit| of the CPU's top logit (so the CPU's two best were at least that close,
/// and the device picked one of them). Any other divergence fails.
public struct GreedyComparison: Sendable {
    public struct Divergence: Sendable, CustomStringConvertible {
        public var prompt: Int
        /// Index of the first differing generated token.
        public var step: Int
        public var cpuId: Int32
        public var deviceId: Int32
        /// (CPU top logit - CPU logit of the device's pick) / max |logit|.
        public var gap: Float
        public var description: String {
            "prompt \(prompt) token \(step): device \(deviceId), CPU \(cpuId), gap \(gap) of max |logit|"
        }
    }

    public var prompts = 0
    public var nearTies: [Divergence] = []
    public var failures: [Divergence] = []
    public var passed: Bool { failures.isEmpty }
    /// "2 near-ties accepted (prompt 1 token 17: ...)" or "".
    public var nearTieNote: String {
        guard !nearTies.isEmpty else { return "" }
        let list = nearTies.map(\.description).joined(separator: "; ")
        return "\(nearTies.count) near-tie\(nearTies.count == 1 ? "" : "s") accepted (\(list))"
    }
}

extension ModelChecks {
    /// Margin of a greedy near-tie, relative to max |logit|: fp32 logits of device and CPU differ
    /// by ~1e-6 of their scale, so 1e-3 only admits real ties; fp16 / bf16 use their model tolerance.
    public static func nearTieMargin(_ dtype: DType) -> Float {
        dtype == .f32 ? 1e-3 : tolerance(dtype)
    }

    /// (max logit - logits[deviceId]) / max |logit|: how far the device's pick is from the CPU's
    /// best (0 when it is the best; infinity for an id outside the logits or non-finite logits).
    public static func nearTieGap(cpuLogits logits: [Float], deviceId: Int32) -> Float {
        guard logits.indices.contains(Int(deviceId)), let top = logits.max(), top.isFinite else { return .infinity }
        let scale = logits.reduce(Float(0)) { max($0, abs($1)) }
        let gap = (top - logits[Int(deviceId)]) / max(scale, .leastNormalMagnitude)
        return gap.isNaN ? .infinity : gap
    }

    /// The next-token logits of a prepared decoder plan (output "next_token_logits") after `context`,
    /// run as one fresh sequence in slot 0: `cpuLogits` of `compareGreedy`.
    public static func nextTokenLogits(of prepared: any PreparedPlan, after context: [Int32]) throws(FlintError) -> [Float] {
        guard let logits = try prepared.run(TokenBatch(sequences: [context]))["next_token_logits"] else {
            throw .invalidInput("the plan has no next_token_logits output")
        }
        return logits.data
    }

    /// Compares greedy completions (`device[p]`, `cpu[p]`: ids generated after `prompts[p]`).
    /// `cpuLogits(context)` returns the CPU's next-token logits after `context` (prompt + the
    /// tokens both agreed on); it is called only at divergences.
    public static func compareGreedy(device: [[Int32]], cpu: [[Int32]], prompts: [[Int32]], margin: Float,
                                     cpuLogits: ([Int32]) throws(FlintError) -> [Float]) throws(FlintError) -> GreedyComparison
    {
        var result = GreedyComparison()
        result.prompts = prompts.count
        for p in prompts.indices {
            let d = p < device.count ? device[p] : [], c = p < cpu.count ? cpu[p] : []
            guard d != c else { continue }
            let step = zip(d, c).prefix { $0.0 == $0.1 }.count
            guard step < d.count, step < c.count else {  // one is a prefix of the other: a length difference, never a tie
                result.failures.append(.init(prompt: p, step: step, cpuId: step < c.count ? c[step] : -1,
                                             deviceId: step < d.count ? d[step] : -1, gap: .infinity))
                continue
            }
            let gap = nearTieGap(cpuLogits: try cpuLogits(prompts[p] + c.prefix(step)), deviceId: d[step])
            let divergence = GreedyComparison.Divergence(prompt: p, step: step, cpuId: c[step], deviceId: d[step], gap: gap)
            if gap <= margin { result.nearTies.append(divergence) } else { result.failures.append(divergence) }
        }
        return result
    }
}

/// max |a - b| / max(1, |b|) over all elements (infinity when the counts differ or `a` has a NaN).
public func maxRelativeError(_ a: [Float], _ b: [Float]) -> Float {
    guard a.count == b.count else { return .infinity }
    return zip(a, b).reduce(0) { $1.0.isNaN ? .infinity : max($0, abs($1.0 - $1.1) / max(1, abs($1.1))) }
}
