#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Progress of long work on stderr: on a terminal one live line rewritten in place ("[3/12] what,
/// about 40 s left"); otherwise one plain line per finished item. Time left is extrapolated from the
/// time so far over the work done, each item weighted by its expected cost (a sweep point: tokens).
struct ProgressLine {
    let total: Int
    let weights: [Double]
    let live: Bool
    private let started = ContinuousClock.now
    private var doneWeight = 0.0

    init(total: Int, weights: [Double]? = nil, live: Bool = isatty(2) == 1) {
        self.total = total
        self.weights = weights ?? Array(repeating: 1, count: total)
        self.live = live
    }

    /// "about 1m20s left", or nothing before any item has finished.
    var timeLeft: String {
        guard doneWeight > 0 else { return "" }
        let elapsed = (ContinuousClock.now - started).milliseconds / 1000
        let remaining = weights.reduce(0, +) - doneWeight
        return ", about " + Self.duration(elapsed / doneWeight * remaining) + " left"
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s < 60 ? "\(s) s" : s < 3600 ? "\(s / 60)m\(s % 60 < 10 ? "0" : "")\(s % 60)s" : "\(s / 3600)h\((s % 3600) / 60)m"
    }

    /// Item `done` (0-based) starts: on a terminal, the live line says so.
    func update(done: Int, _ what: String) {
        guard live else { return }
        Self.emit("\r\u{1B}[K[\(done + 1)/\(total)] \(what)\(timeLeft)")
    }

    /// Item `index` finished: plain lines say so with the time left.
    mutating func finish(index: Int, _ what: String) {
        doneWeight += index < weights.count ? weights[index] : 1
        if live {
            Self.emit("\r\u{1B}[K[\(index + 1)/\(total)] \(what)\(timeLeft)")
        } else {
            Self.emit("[\(index + 1)/\(total)] \(what)\(timeLeft)\n")
        }
    }

    /// Ends the live line so later output starts on a fresh one.
    func close() { if live { Self.emit("\r\u{1B}[K") } }

    private static func emit(_ text: String) {
        var t = text
        t.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    }
}
