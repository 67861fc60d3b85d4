/// How to cut inputs that are too long, as HF's `TruncationParams`.
///
/// With `stride > 0` the cut-off part is not lost: it comes back as `Encoding.overflowing`
/// windows of `maxLength` tokens that overlap by `stride` tokens (SQuAD's doc stride).
public struct Truncation: Sendable, Equatable {
    public enum Strategy: String, Sendable, CaseIterable {
        /// Remove tokens from the longer of the two sequences first.
        case longestFirst = "longest_first"
        case onlyFirst = "only_first"
        case onlySecond = "only_second"
    }
    public enum Direction: String, Sendable, CaseIterable {
        case right, left
    }

    /// Maximum tokens in the result, special tokens included.
    public var maxLength: Int
    public var strategy: Strategy
    public var stride: Int
    public var direction: Direction

    public init(maxLength: Int, strategy: Strategy = .longestFirst, stride: Int = 0, direction: Direction = .right) {
        self.maxLength = maxLength
        self.strategy = strategy
        self.stride = stride
        self.direction = direction
    }

    /// Truncates one sequence (or a pair) to `maxLength` model tokens (special tokens already
    /// subtracted by the caller), with HF's rules for splitting the budget between a pair.
    static func apply(_ maxLength: Int, _ params: Truncation, _ a: inout Encoding, _ b: inout Encoding?) throws(TokenizerError) {
        if maxLength == 0 {
            try a.truncate(to: 0, stride: params.stride, direction: params.direction)
            try b?.truncate(to: 0, stride: params.stride, direction: params.direction)
            return
        }
        let total = a.count + (b?.count ?? 0)
        guard total > maxLength else { return }
        let toRemove = total - maxLength
        switch params.strategy {
        case .longestFirst:
            if var second = b {
                var n1 = a.count
                var n2 = second.count
                let swap = n1 > n2
                if swap { (n1, n2) = (n2, n1) }
                n2 = n1 > maxLength ? n1 : max(n1, maxLength - n1)
                if n1 + n2 > maxLength {
                    n1 = maxLength / 2
                    n2 = n1 + maxLength % 2
                }
                if swap { (n1, n2) = (n2, n1) }
                try a.truncate(to: n1, stride: params.stride, direction: params.direction)
                try second.truncate(to: n2, stride: params.stride, direction: params.direction)
                b = second
            } else {
                try a.truncate(to: total - toRemove, stride: params.stride, direction: params.direction)
            }
        case .onlyFirst, .onlySecond:
            if params.strategy == .onlySecond, b == nil {
                throw .truncation("strategy only_second needs a second sequence")
            }
            let length = params.strategy == .onlyFirst ? a.count : b!.count
            guard length > toRemove else {
                throw .truncation(
                    "the \(params.strategy == .onlyFirst ? "first" : "second") sequence has \(length) tokens, too short to remove the \(toRemove) needed to fit max_length"
                )
            }
            if params.strategy == .onlyFirst {
                try a.truncate(to: length - toRemove, stride: params.stride, direction: params.direction)
            } else {
                try b!.truncate(to: length - toRemove, stride: params.stride, direction: params.direction)
            }
        }
    }
}

extension Encoding {
    /// Keeps `maxLength` tokens and moves the rest into `overflowing` windows (HF `Encoding::truncate`).
    mutating func truncate(to maxLength: Int, stride: Int, direction: Truncation.Direction) throws(TokenizerError) {
        let n = count
        if maxLength >= n { return }
        if maxLength == 0 {
            var whole = self
            whole.overflowing = []
            self = Encoding(detailed: detailed)
            overflowing = [whole]
            return
        }
        guard stride < maxLength else {
            throw .truncation("stride (\(stride)) must be smaller than the tokens left for the text (\(maxLength), after special tokens)")
        }
        let step = maxLength - stride
        var parts: [Range<Int>] = []
        switch direction {
        case .right:
            var start = 0
            while true {
                let stop = min(start + maxLength, n)
                parts.append(start..<stop)
                if stop == n { break }
                start += step
            }
        case .left:
            var last = n - 1
            while last >= 0 {
                let stop = last + 1
                let start = max(stop - maxLength, 0)
                parts.append(start..<stop)
                if start == 0 { break }
                last -= step
            }
        }
        var first = slice(parts[0])
        first.overflowing = parts.dropFirst().map { slice($0) }
        self = first
    }
}
