import FlintCore
import FlintJSON
import Synchronization

/// Times one forward (a "phase": an encoder forward, a GPT-2 prefill or decode step) step by step
/// over several runs, through the prepared plan's step timer, and turns the spans into the
/// profile table, the `--json` object and Chrome trace events.
struct StepProfiler {
    /// The machine's ceilings: the roofline a step's FLOPs and bytes are held against.
    struct Ceilings {
        var gflops: Double
        var gbps: Double
        /// FLOPs per byte where the roofline bends: below it a step is memory-bound.
        var balance: Double { gflops / gbps }
    }

    struct Phase {
        var name: String
        var batch: Int
        var seq: Int
        /// Host wall time of each `run` call, ms; `spans[r][i]` the start and end of step i of run r,
        /// in µs since `origin`; `runStarts[r]` run r's start in µs since `origin`.
        var wallMs: [Double]
        var runStarts: [Double]
        var spans: [[(start: Double, end: Double)]]
        /// Per run, each step's device ms from events (CUDA); empty where the backend has none.
        var deviceMs: [[Double]] = []
        var labels: [(name: String, layer: Int?)]
        var costs: [StepCost]
        var shapes: [String]

        var medianWallMs: Double { Self.median(wallMs) }
        /// The median over runs of each step's time, ms.
        var stepMs: [Double] { labels.indices.map { i in Self.median(spans.map { ($0[i].end - $0[i].start) / 1000 }) } }
        /// The median over runs of each step's device time, ms (nil without device events).
        var deviceStepMs: [Double]? {
            deviceMs.isEmpty ? nil : labels.indices.map { i in Self.median(deviceMs.map { $0[i] }) }
        }

        static func median(_ v: [Double]) -> Double {
            let s = v.sorted()
            return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
        }
    }

    let prepared: any StepTimedPlan
    let runs: Int
    let origin: ContinuousClock.Instant

    /// Warm-up runs (untimed, then one timed), then `runs` timed runs of `batch`; `before` runs
    /// ahead of each, outside the clock.
    func profile(
        _ name: String, batch: TokenBatch, seq: Int, elementBytes: Int, weightBytes: Int,
        before: () throws -> Void = {}
    ) throws -> Phase {
        let plan = prepared.plan
        for _ in 0..<3 {
            try before()
            _ = try prepared.run(batch)
        }
        let collected = Mutex<[(Int, ContinuousClock.Instant, ContinuousClock.Instant)]>([])
        collected.withLock { $0.reserveCapacity(plan.steps.count) }
        let timer: StepTimer = { i, start, end in collected.withLock { $0.append((i, start, end)) } }
        var phase = Phase(
            name: name, batch: batch.sequenceCount, seq: seq, wallMs: [], runStarts: [], spans: [],
            labels: plan.stepLabels(),
            costs: plan.steps.indices.map { plan.cost(ofStep: $0, batch: batch, elementBytes: elementBytes, weightBytes: weightBytes) },
            shapes: plan.steps.indices.map { Self.shape(plan, $0, batch) })
        prepared.stepTimer = timer
        defer { prepared.stepTimer = nil }
        for r in -1..<runs {
            try before()
            collected.withLock { $0.removeAll(keepingCapacity: true) }
            let t0 = ContinuousClock.now
            _ = try prepared.run(batch)
            let t1 = ContinuousClock.now
            guard r >= 0 else { continue }  // the first timed run warms the timer's path
            let steps = collected.withLock { $0 }
            guard steps.count == plan.steps.count else {
                throw CommandError("the backend timed \(steps.count) of \(plan.steps.count) steps")
            }
            phase.wallMs.append((t1 - t0).milliseconds)
            phase.runStarts.append(micros(t0))
            phase.spans.append(steps.sorted { $0.0 < $1.0 }.map { (micros($0.1), micros($0.2)) })
            if let device = prepared.lastDeviceStepMs, device.count == plan.steps.count { phase.deviceMs.append(device) }
        }
        return phase
    }

    private func micros(_ t: ContinuousClock.Instant) -> Double { (t - origin).milliseconds * 1000 }

    /// `[rows, columns]` of what a step writes, for the trace's args.
    static func shape(_ plan: Plan, _ i: Int, _ batch: TokenBatch) -> String {
        Plan.uses(plan.steps[i]).writes.map { b in
            let rows: Int
            switch plan.buffers[b].rows {
            case .tokens, .cache: rows = batch.tokenCount
            case .sequences, .slots: rows = batch.sequenceCount
            }
            return "\(plan.buffers[b].name)[\(rows), \(plan.buffers[b].columns)]"
        }.joined(separator: " ")
    }
}

extension StepProfiler.Phase {
    /// The table `flint profile` prints.
    func table(_ ceilings: StepProfiler.Ceilings?) -> String {
        let ms = stepMs, wall = medianWallMs
        let inside = ms.reduce(0, +)
        var lines = ["\(name): batch \(batch), seq \(seq), median of \(wallMs.count) runs"]
        let device = deviceStepMs
        let header =
            ["step", "layer", "ms", "share %", "GFLOP", "MB", "GFLOP/s", "GB/s"] + (ceilings == nil ? [] : ["% ceiling", "bound"])
            + (device == nil ? [] : ["device ms"])
        let nameWidth = max(34, (labels.map(\.name.count).max() ?? 0) + 2)
        lines.append(Self.pad("#", 5) + Self.pad("name", nameWidth) + Self.pad("layer", 6) + Table.row(Array(header.dropFirst(2))))
        for i in ms.indices {
            let c = costs[i]
            var cells = [
                Table.fmt(ms[i], 3), Table.fmt(100 * ms[i] / wall, 1), Table.fmt(c.flops / 1e9, 3), Table.fmt(c.bytes / 1e6, 2),
                Table.fmt(c.flops / ms[i] / 1e6, 1), Table.fmt(c.bytes / ms[i] / 1e6, 1),
            ]
            if let ceilings {
                let memoryBound = c.isMemoryBound(balance: ceilings.balance)
                let achieved = memoryBound ? c.bytes / ms[i] / 1e6 / ceilings.gbps : c.flops / ms[i] / 1e6 / ceilings.gflops
                cells += [Table.fmt(100 * achieved, 1), memoryBound ? "memory" : "compute"]
            }
            if let device { cells.append(Table.fmt(device[i], 3)) }
            lines.append(
                Self.pad(String(i), 5) + Self.pad(labels[i].name, nameWidth) + Self.pad(labels[i].layer.map(String.init) ?? "-", 6)
                    + Table.row(cells))
        }
        lines.append(
            "wall \(Table.fmt(wall, 3)) ms; inside steps \(Table.fmt(inside, 3)) ms (\(Table.fmt(100 * inside / wall, 1))%); "
                + "Flint's overhead \(Self.signed(wall - inside)) ms (\(Self.signed(100 * (wall - inside) / wall, 1))%)")
        return lines.joined(separator: "\n")
    }

    static func pad(_ s: String, _ width: Int) -> String { s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count) }

    static func signed(_ v: Double, _ decimals: Int = 3) -> String { v < 0 ? "-" + Table.fmt(-v, decimals) : Table.fmt(v, decimals) }

    /// The `--json` object of this phase.
    func json(model: String, device: String, dtype: String, ceilings: StepProfiler.Ceilings?) -> [(key: String, value: JSONValue)] {
        let ms = stepMs, wall = medianWallMs, deviceTimes = deviceStepMs
        let steps: [JSONValue] = ms.indices.map { i in
            let c = costs[i]
            let bound = ceilings.map { c.isMemoryBound(balance: $0.balance) ? "memory" : "compute" }
            return .object(
                [
                    ("name", .string(labels[i].name)), ("layer", labels[i].layer.map { .number(Double($0)) } ?? .null),
                    ("ms", .number(ms[i])), ("flops", .number(c.flops)), ("bytes", .number(c.bytes)),
                    ("gflops", .number(c.flops / ms[i] / 1e6)), ("gbps", .number(c.bytes / ms[i] / 1e6)),
                    ("bound", bound.map { .string($0) } ?? .null),
                ] + (deviceTimes.map { [("device_ms", .number($0[i]))] } ?? []))
        }
        return [
            ("model", .string(model)), ("device", .string(device)), ("dtype", .string(dtype)), ("phase", .string(name)),
            ("batch", .number(Double(batch))), ("seq", .number(Double(seq))), ("runs", .number(Double(wallMs.count))),
            ("wall_ms", .number(wall)), ("steps", .array(steps)), ("overhead_ms", .number(wall - ms.reduce(0, +))),
        ]
    }

    /// Chrome trace events (complete events, "ph": "X", times in µs) of every profiled run: on
    /// track (pid, 1) one "forward" span per run (the host's wall time of `run`), on (pid, 2) its
    /// steps, on the host thread that ran them.
    func traceEvents(pid: Int) -> [JSONValue] {
        func meta(_ name: String, tid: Int, _ value: String) -> JSONValue {
            .object([
                ("name", .string(name)), ("ph", .string("M")), ("ts", .number(0)), ("dur", .number(0)), ("pid", .number(Double(pid))),
                ("tid", .number(Double(tid))), ("args", .object([("name", .string(value))])),
            ])
        }
        var events = [
            meta("process_name", tid: 0, name), meta("thread_name", tid: 1, "forward (host wall)"),
            meta("thread_name", tid: 2, "plan steps (host thread)"),
        ]
        if !deviceMs.isEmpty {
            events.append(meta("thread_name", tid: 3, "device time per step (events; drawn from the step's host start)"))
        }
        for r in wallMs.indices {
            events.append(
                Self.complete(
                    "forward", ts: runStarts[r], dur: wallMs[r] * 1000, pid: pid, tid: 1,
                    args: [("run", .number(Double(r)))]))
            for (i, span) in spans[r].enumerated() {
                let c = costs[i]
                events.append(
                    Self.complete(
                        labels[i].name, ts: span.start, dur: span.end - span.start, pid: pid, tid: 2,
                        args: [
                            ("run", .number(Double(r))), ("step", .number(Double(i))),
                            ("layer", labels[i].layer.map { .number(Double($0)) } ?? .null),
                            ("shapes", .string(shapes[i])), ("flops", .number(c.flops)), ("bytes", .number(c.bytes)),
                        ]))
                if r < deviceMs.count {
                    events.append(
                        Self.complete(
                            labels[i].name, ts: span.start, dur: min(deviceMs[r][i] * 1000, span.end - span.start), pid: pid, tid: 3,
                            args: [("run", .number(Double(r))), ("step", .number(Double(i))), ("device_ms", .number(deviceMs[r][i]))]))
                }
            }
        }
        return events
    }

    static func complete(_ name: String, ts: Double, dur: Double, pid: Int, tid: Int, args: [(String, JSONValue)]) -> JSONValue {
        // Whole nanoseconds: the JSON stays short. Start and end are rounded (not start and duration), so
        // spans that are disjoint or nested stay so in the nanoseconds Perfetto reads: it drops a span that
        // overlaps the end of another on its thread.
        let start = (ts * 1000).rounded(), end = ((ts + dur) * 1000).rounded()
        return .object([
            ("name", .string(name)), ("ph", .string("X")), ("ts", .number(start / 1000)),
            ("dur", .number((end - start) / 1000)), ("pid", .number(Double(pid))), ("tid", .number(Double(tid))),
            ("args", .object(args.map { (key: $0.0, value: $0.1) })),
        ])
    }
}
