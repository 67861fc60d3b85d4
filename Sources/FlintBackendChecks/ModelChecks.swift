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

/// max |a - b| / max(1, |b|) over all elements (infinity when the counts differ or `a` has a NaN).
public func maxRelativeError(_ a: [Float], _ b: [Float]) -> Float {
    guard a.count == b.count else { return .infinity }
    return zip(a, b).reduce(0) { $1.0.isNaN ? .infinity : max($0, abs($1.0 - $1.1) / max(1, abs($1.1))) }
}
