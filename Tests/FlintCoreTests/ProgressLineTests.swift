import FlintCore
import Synchronization
import Testing

/// `ProgressLine` on a clock the test moves: what plain lines and the live line say, and when.
@Suite("Progress lines")
struct ProgressLineTests {
    /// A clock and a sink the test reads back.
    final class Screen: Sendable {
        let now = Mutex(0.0)
        let written = Mutex<[String]>([])
        var clock: @Sendable () -> Double { { self.now.withLock { $0 } } }
        var sink: @Sendable (String) -> Void { { text in self.written.withLock { $0.append(text) } } }
        func advance(_ seconds: Double) { now.withLock { $0 += seconds } }
        var text: [String] { written.withLock { $0 } }
    }

    @Test func durationsReadAsSecondsMinutesOrHours() {
        #expect(ProgressLine.duration(0.4) == "0 s")
        #expect(ProgressLine.duration(59.4) == "59 s")
        #expect(ProgressLine.duration(65) == "1m05s")
        #expect(ProgressLine.duration(600) == "10m00s")
        #expect(ProgressLine.duration(7380) == "2h03m")
        #expect(ProgressLine.duration(-3) == "0 s")
    }

    @Test func plainLinesSayDoneOfTotalAndTheTimeLeftByWeight() {
        let screen = Screen()
        // The second item weighs three times the first: after the first (1 s), 3 + 1 units are left at 1 s a unit.
        let line = ProgressLine(total: 3, weights: [1, 3, 1], live: false, clock: screen.clock, sink: screen.sink)
        line.update(done: 0, "a")  // plain mode shows items when they end, not when they start
        #expect(screen.text.isEmpty)
        screen.advance(1)
        line.finish(index: 0, "a done")
        screen.advance(3)
        line.finish(index: 1, "b done")
        screen.advance(1)
        line.finish(index: 2, "c done")
        line.close()  // nothing to clear in plain mode
        #expect(screen.text == ["[1/3] a done, about 4 s left\n", "[2/3] b done, about 1 s left\n", "[3/3] c done\n"])
    }

    @Test func quickWorkPrintsNothing() {
        let screen = Screen()
        let line = ProgressLine(total: 50, live: false, delay: 0.5, interval: 2, clock: screen.clock, sink: screen.sink)
        for i in 1...50 {
            screen.advance(0.009)  // 0.45 s in all, under the delay
            line.report(done: i, total: 50, item: "t\(i)")
        }
        line.close()
        #expect(screen.text.isEmpty)
        #expect(!line.shown)
    }

    @Test func slowWorkPrintsAfterTheDelayAtMostOncePerIntervalAndAlwaysTheEnd() {
        let screen = Screen()
        let line = ProgressLine(total: 100, live: false, delay: 0.5, interval: 2, clock: screen.clock, sink: screen.sink)
        for i in 1...100 {
            screen.advance(0.125)  // 12.5 s in all, in steps a Double holds exactly
            line.report(done: i, total: 100, item: "t\(i)")
        }
        let lines = screen.text
        // Items 4 (0.5 s), 20 (2.5 s), 36, 52, 68, 84, then the last one regardless of the interval.
        #expect(lines.map { String($0.prefix(while: { $0 != " " })) }
                == ["[4/100]", "[20/100]", "[36/100]", "[52/100]", "[68/100]", "[84/100]", "[100/100]"])
        #expect(lines.first == "[4/100] t4, about 12 s left\n")
        #expect(lines.last == "[100/100] t100\n")
        #expect(lines.allSatisfy { $0.hasSuffix("\n") && !$0.contains("\u{1B}") })
    }

    @Test func theLiveLineRewritesInPlaceAndIsClearedBeforeOtherOutput() {
        let screen = Screen()
        let line = ProgressLine(total: 2, live: true, clock: screen.clock, sink: screen.sink)
        line.update(done: 0, "first")
        screen.advance(2)
        line.finish(index: 0, "first done")  // clears, so a row printed to stdout now starts a clean line
        line.update(done: 1, "second")
        line.close()
        line.close()  // clears once
        #expect(screen.text == ["\r\u{1B}[K[1/2] first", "\r\u{1B}[K", "\r\u{1B}[K[2/2] second, about 2 s left", "\r\u{1B}[K"])
    }

    @Test func aReporterStartsALinePerRunAndClosesItAtTheEnd() {
        let screen = Screen()
        // Only the sink is injectable here: a zero delay makes every report show.
        let report = ProgressLine.reporter("loading: ", delay: 0, live: true, sink: screen.sink)
        report(0, 2, "")
        report(1, 2, "a")
        report(2, 2, "b")
        let first = screen.text
        #expect(first.count == 3)
        #expect(first[0].hasPrefix("\r\u{1B}[K[1/2] loading: a"))
        #expect(first[1].hasPrefix("\r\u{1B}[K[2/2] loading: b"))
        #expect(first[2] == "\r\u{1B}[K")  // closed at done == total
        report(1, 1, "c")  // a new run without a done-0 report still gets its own line
        #expect(screen.text.dropFirst(3).map { String($0.prefix(14)) } == ["\r\u{1B}[K[1/1] load", "\r\u{1B}[K"])
    }
}
