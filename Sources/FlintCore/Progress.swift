#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// How far long work has got: `done` of `total` items finished, the last one named by `item`.
/// Library code (backends, the weight loader) calls it and never prints; a front end that wants
/// progress on screen passes one (usually `ProgressLine.report`), servers pass none.
public typealias ProgressReport = @Sendable (_ done: Int, _ total: Int, _ item: String) -> Void

/// Progress of long work on stderr: on a terminal one live line rewritten in place ("[3/12] what,
/// about 40 s left"); otherwise plain lines. Time left is extrapolated from the time so far over the
/// work done, each item weighted by its expected cost (a sweep point: tokens; a weight: elements).
///
/// Quick work stays quiet: nothing shows before `delay` has passed, and after that a line at most
/// every `interval` (the last item always, once anything showed), so a load that takes 0.1 s prints
/// nothing and one with 400 tensors does not print 400 lines.
public final class ProgressLine: Sendable {
    public let total: Int
    public let weights: [Double]
    public let live: Bool
    public let delay: Double
    public let interval: Double
    private let clock: @Sendable () -> Double
    private let sink: @Sendable (String) -> Void
    private let started: Double
    private struct State {
        var done = 0
        var doneWeight = 0.0
        var lastShown: Double?
        /// Whether the live line holds text that `close` must clear.
        var drawn = false
    }
    private let state = Mutex(State())

    /// - Parameters:
    ///   - weights: expected cost of each item (nil: all equal).
    ///   - live: rewrite one line in place (default: stderr is a terminal).
    ///   - delay: seconds before anything shows.
    ///   - interval: least seconds between two lines (the last item excepted).
    ///   - clock: seconds on a monotonic clock (tests pass their own).
    ///   - sink: where the text goes (default: stderr, unbuffered).
    public init(total: Int, weights: [Double]? = nil, live: Bool = isatty(2) == 1, delay: Double = 0, interval: Double = 0,
                clock: (@Sendable () -> Double)? = nil, sink: (@Sendable (String) -> Void)? = nil) {
        self.total = total
        self.weights = weights ?? Array(repeating: 1, count: total)
        self.live = live
        self.delay = delay
        self.interval = interval
        let clock = clock ?? { (ContinuousClock.now - Self.epoch).milliseconds / 1000 }
        self.clock = clock
        self.sink = sink ?? { Self.standardError($0) }
        started = clock()
    }

    private static let epoch = ContinuousClock.now

    /// "about 1m20s left" for the state given, or "" before any item has finished.
    private func timeLeft(_ s: State, now: Double) -> String {
        guard s.doneWeight > 0 else { return "" }
        let remaining = weights.reduce(0, +) - s.doneWeight
        guard s.done < total, remaining > 0 else { return "" }
        return ", about " + Self.duration((now - started) / s.doneWeight * remaining) + " left"
    }

    /// "7 s", "1m05s", "2h03m".
    public static func duration(_ seconds: Double) -> String {
        let s = Int(max(0, seconds).rounded())
        func twoDigits(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return s < 60 ? "\(s) s" : s < 3600 ? "\(s / 60)m\(twoDigits(s % 60))s" : "\(s / 3600)h\(twoDigits((s % 3600) / 60))m"
    }

    /// Item `done` (0-based) starts: on a terminal, the live line says so (plain lines wait for its end).
    public func update(done: Int, _ what: String) {
        guard live else { return }
        let now = clock()
        let text: String? = state.withLock { s in
            guard shouldShow(&s, now: now, last: false) else { return nil }
            s.drawn = true
            return "\r\u{1B}[K[\(done + 1)/\(total)] \(what)\(timeLeft(s, now: now))"
        }
        if let text { sink(text) }
    }

    /// Item `index` (0-based, in order) finished: plain lines say so with the time left; on a
    /// terminal the live line is cleared, so what the caller prints next starts a clean line.
    public func finish(index: Int, _ what: String) {
        advance(to: index + 1, what, clearLive: true)
    }

    /// `done` items of `total` have finished, the last `item`: the form `ProgressReport` takes.
    public func report(done: Int, total _: Int, item: String) {
        advance(to: done, item, clearLive: false)
    }

    /// Ends the live line so later output starts on a fresh one.
    public func close() {
        let clear = state.withLock { s -> Bool in
            defer { s.drawn = false }
            return live && s.drawn
        }
        if clear { sink("\r\u{1B}[K") }
    }

    /// Whether anything has been shown so far.
    public var shown: Bool { state.withLock { $0.lastShown != nil } }

    private func advance(to done: Int, _ what: String, clearLive: Bool) {
        let now = clock()
        let text: String? = state.withLock { s in
            while s.done < min(done, total) {
                s.doneWeight += s.done < weights.count ? weights[s.done] : 1
                s.done += 1
            }
            let last = s.done >= total
            if live && clearLive {
                defer { s.drawn = false }
                return s.drawn ? "\r\u{1B}[K" : nil
            }
            guard shouldShow(&s, now: now, last: last) else { return nil }
            let line = "[\(s.done)/\(total)] \(what)\(timeLeft(s, now: now))"
            if live { s.drawn = true; return "\r\u{1B}[K" + line }
            return line + "\n"
        }
        if let text { sink(text) }
    }

    /// Applies `delay` and `interval`; the last item shows whenever anything showed before or the
    /// work as a whole took longer than `delay`.
    private func shouldShow(_ s: inout State, now: Double, last: Bool) -> Bool {
        guard now - started >= delay else { return false }
        if !last, let shown = s.lastShown, now - shown < interval { return false }
        s.lastShown = now
        return true
    }

    private static func standardError(_ text: String) { writeAll(text, to: 2) }
}

/// Writes all of `text` to file descriptor `fd` unbuffered (a short write or EINTR continues; any
/// other failure drops the rest: output to a closed pipe must not stop the work).
public func writeAll(_ text: String, to fd: Int32) {
    var t = text
    t.withUTF8 { bytes in
        var written = 0
        while written < bytes.count {
            let n = write(fd, bytes.baseAddress! + written, bytes.count - written)
            if n <= 0 { if errno == EINTR { continue }; return }
            written += n
        }
    }
}

/// The weights handed to `Backend.prepare`, reporting each checkpoint tensor as it is read (and
/// converted: `Plan.load` reads every part of every plan weight once, in order, and backends pack
/// or upload each weight before reading the next). Only front ends wrap a source; servers load silently.
public final class ReportingWeightSource: WeightSource {
    public let source: any WeightSource
    /// The checkpoint tensors `prepare` reads for the plan.
    public let total: Int
    private let report: ProgressReport
    private let done = Atomic<Int>(0)

    public init(_ source: any WeightSource, plan: Plan, report: @escaping ProgressReport) {
        self.source = source
        self.total = plan.weights.reduce(0) { $0 + $1.parts.count }
        self.report = report
    }

    /// Elements of each tensor in the order `prepare` reads them: `ProgressLine`'s weights.
    public static func tensorSizes(_ plan: Plan) -> [Double] {
        plan.weights.flatMap { w in Array(repeating: Double(w.shape.count / w.parts.count), count: w.parts.count) }
    }

    /// Tensors supplied so far.
    public var supplied: Int { done.load(ordering: .relaxed) }

    public func tensor(_ name: String, shape: Shape) throws(FlintError) -> HostTensor {
        let t = try source.tensor(name, shape: shape)
        let n = done.wrappingAdd(1, ordering: .relaxed).newValue
        report(n, total, name)
        return t
    }
}

extension ProgressLine {
    /// A `ProgressReport` for work reported in runs: a run starts a fresh line (on a report with
    /// `done == 0`, or the first report) and closes it when `done == total`, so each load or compile
    /// batch is timed from its own start. Items weigh the same.
    /// `label` starts every line ("loading weights: ").
    public static func reporter(_ label: String = "", delay: Double = 0.5, live: Bool = isatty(2) == 1,
                                sink: (@Sendable (String) -> Void)? = nil) -> ProgressReport {
        let current = CurrentLine()
        return { done, total, item in
            let line = current.slot.withLock { slot -> ProgressLine in
                if let existing = slot, done > 0, existing.total == total { return existing }
                slot?.close()
                let fresh = ProgressLine(total: total, live: live, delay: delay, interval: live ? 0.1 : 2, sink: sink)
                slot = fresh
                return fresh
            }
            if done > 0 { line.report(done: done, total: total, item: label + item) }
            if done >= total { current.slot.withLock { $0?.close(); $0 = nil } }
        }
    }
}

/// The line of a `ProgressLine.reporter`'s current run (a class: the closure shares it).
private final class CurrentLine: Sendable {
    let slot = Mutex<ProgressLine?>(nil)
}
