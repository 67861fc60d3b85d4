import FlintJSON
import FlintTestSupport
import Testing

/// `flint profile` end to end on tiny models: the table's totals, the `--json` document, and the
/// Chrome trace's schema and its agreement with the table.
@Suite("flint profile")
struct ProfileCLITests {
    /// Runs a profile writing both files; returns (stdout, json, trace).
    static func profile(_ arguments: [String]) throws -> (String, JSONValue, JSONValue)? {
        let folder = TestPaths.temporaryFolder()
        let args = ["profile"] + arguments + ["--runs", "5", "--json", folder + "/p.json", "--trace", folder + "/t.json"]
        guard let r = try HostileCLITests.flint(args, timeout: 120) else { return nil }
        try #require(r.status == 0, "flint \(args.joined(separator: " ")): \(r.stderr.prefix(800))")
        let json = try JSONParser.parse(try #require(TestPaths.read(folder + "/p.json")))
        let trace = try JSONParser.parse(try #require(TestPaths.read(folder + "/t.json")))
        return (r.stdout, json, trace)
    }

    static func median(_ v: [Double]) -> Double {
        let s = v.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    /// The phase object's keys and totals: step times add up with the overhead to the wall time.
    static func checkPhase(_ p: JSONValue, batch: Int, seq: Int, steps expectedSteps: Int? = nil, ceilings: Bool = true) throws {
        for key in ["model", "device", "dtype", "batch", "seq", "wall_ms", "steps", "overhead_ms"] {
            #expect(p[key] != nil, "missing \(key)")
        }
        #expect(p["batch"]?.int == batch && p["seq"]?.int == seq)
        let steps = try #require(p["steps"]?.array)
        if let expectedSteps { #expect(steps.count == expectedSteps) }
        #expect(!steps.isEmpty)
        var sum = 0.0
        for s in steps {
            for key in ["name", "layer", "ms", "flops", "bytes", "gflops", "gbps", "bound"] {
                #expect(s[key] != nil, "step without \(key)")
            }
            let ms = try #require(s["ms"]?.number), flops = try #require(s["flops"]?.number), bytes = try #require(s["bytes"]?.number)
            #expect(ms > 0 && bytes > 0 && flops >= 0)
            #expect(abs(try #require(s["gbps"]?.number) - bytes / ms / 1e6) <= 1e-6 * max(1, bytes / ms / 1e6))
            if ceilings {
                #expect(["memory", "compute"].contains(s["bound"]?.string ?? "none"), "the CPU has measured ceilings")
            } else {
                #expect(s["bound"]?.isNull == true)
                #expect((s["device_ms"]?.number ?? -1) >= 0, "device time from events")
            }
            sum += ms
        }
        let wall = try #require(p["wall_ms"]?.number), overhead = try #require(p["overhead_ms"]?.number)
        #expect(wall > 0 && abs(sum + overhead - wall) < 1e-9 * max(1, wall))
        #expect(steps.contains { $0["name"]?.string?.hasPrefix("linear ") == true && $0["layer"]?.int == 0 })
    }

    /// Every event has the schema's fields; per phase (pid), each step's median duration over the
    /// runs is the table's ms and the steps of a run fit inside its forward span.
    static func checkTrace(_ trace: JSONValue, phases: [JSONValue], runs: Int) throws {
        let events = try #require(trace["traceEvents"]?.array)
        // Slices Perfetto's importer keeps per thread: each run's forward on tid 1, its steps on tid 2.
        let kept = PerfettoImportRules.slicesPerTrack(trace)
        for (index, phase) in phases.enumerated() {
            let steps = try #require(phase["steps"]?.array).count
            #expect(kept[.init(pid: index + 1, tid: 1)] == runs && kept[.init(pid: index + 1, tid: 2)] == runs * steps,
                    "phase \(index + 1): \(kept)")
        }
        for e in events {
            for key in ["name", "ph", "ts", "dur", "pid", "tid"] { #expect(e[key] != nil, "event without \(key): \(e.serialized)") }
            #expect(["X", "M"].contains(e["ph"]?.string ?? ""))
        }
        for (index, phase) in phases.enumerated() {
            let complete = events.filter { $0["ph"]?.string == "X" && $0["pid"]?.int == index + 1 }
            let forwards = complete.filter { $0["tid"]?.int == 1 }, steps = complete.filter { $0["tid"]?.int == 2 }
            let table = try #require(phase["steps"]?.array)
            #expect(forwards.count == runs && steps.count == runs * table.count)
            for (i, row) in table.enumerated() {
                let durations = steps.filter { $0["args"]?["step"]?.int == i }.map { $0["dur"]!.number! }
                #expect(durations.count == runs)
                // Durations are rounded to the nanosecond in the trace.
                #expect(abs(median(durations) / 1000 - row["ms"]!.number!) <= 2e-6, "step \(i)")
                #expect(steps.first { $0["args"]?["step"]?.int == i }?["name"]?.string == row["name"]?.string)
                let args = try #require(steps.first { $0["args"]?["step"]?.int == i }?["args"])
                #expect(args["flops"]?.number == row["flops"]?.number && args["bytes"]?.number == row["bytes"]?.number)
                #expect(args["shapes"]?.string?.contains("[") == true)
            }
            // Perfetto's JSON importer wants the complete events of a track to nest, never to overlap.
            for track in [forwards, steps] {
                let sorted = track.sorted { $0["ts"]!.number! < $1["ts"]!.number! }
                for (a, b) in zip(sorted, sorted.dropFirst()) {
                    #expect(
                        a["ts"]!.number! + a["dur"]!.number! <= b["ts"]!.number! + 1e-6,
                        "overlapping events \(a.serialized) \(b.serialized)")
                }
            }
            for f in forwards {
                let run = try #require(f["args"]?["run"]?.int)
                let inRun = steps.filter { $0["args"]?["run"]?.int == run }
                let stepSum = inRun.reduce(0.0) { $0 + $1["dur"]!.number! }
                #expect(stepSum <= f["dur"]!.number! + 0.01, "the steps of run \(run) fit in its forward")
                let start = f["ts"]!.number!, end = start + f["dur"]!.number!
                #expect(inRun.allSatisfy { $0["ts"]!.number! >= start - 0.01 && $0["ts"]!.number! + $0["dur"]!.number! <= end + 0.01 })
            }
        }
    }

    @Test func encoderProfile() throws {
        guard
            let (out, json, trace) = try Self.profile([
                "--model", TestPaths.fixture("bert/tiny-bert-model"), "--device", "cpu",
                "--batch", "2", "--seq", "8",
            ])
        else { return }
        try Self.checkPhase(json, batch: 2, seq: 8)
        #expect(json["phase"]?.string == "forward")
        #expect(out.contains("inside steps") && out.contains("Flint's overhead") && out.contains("ceilings (measured now)"))
        try Self.checkTrace(trace, phases: [json], runs: 5)
    }

    @Test func decoderProfileHasPrefillAndDecode() throws {
        guard
            let (out, json, trace) = try Self.profile([
                "--model", TestPaths.fixture("gpt2/tiny-gpt2"), "--device", "cpu",
                "--batch", "2", "--seq", "6",
            ])
        else { return }
        try Self.checkPhase(json, batch: 2, seq: 6)
        let decode = try #require(json["decode"])
        try Self.checkPhase(decode, batch: 2, seq: 6, steps: json["steps"]?.array?.count)
        #expect(json["phase"]?.string == "prefill" && decode["phase"]?.string == "decode")
        #expect(out.contains("prefill: batch 2") && out.contains("decode: batch 2"))
        // A decode step moves one token per sequence: its linears do a sixth of the prefill's work.
        let prefillQKV = try #require(json["steps"]?.array?.first { $0["name"]?.string?.hasPrefix("linear") == true })
        let decodeQKV = try #require(decode["steps"]?.array?.first { $0["name"]?.string?.hasPrefix("linear") == true })
        #expect(prefillQKV["flops"]!.number! == 6 * decodeQKV["flops"]!.number!)
        try Self.checkTrace(trace, phases: [json, decode], runs: 5)
    }

    @Test func emulatedCUDAProfileHasHostAndDeviceSpans() throws {
        guard
            let (out, json, trace) = try Self.profile([
                "--model", TestPaths.fixture("bert/tiny-bert-model"), "--device", "cuda-emulated",
                "--batch", "2", "--seq", "8",
            ])
        else { return }
        try Self.checkPhase(json, batch: 2, seq: 8, ceilings: false)
        #expect(out.contains("without the CUDA graph") && out.contains("device ms"))
        try Self.checkTrace(trace, phases: [json], runs: 5)
        let device = try #require(trace["traceEvents"]?.array).filter { $0["ph"]?.string == "X" && $0["tid"]?.int == 3 }
        #expect(device.count == 5 * (json["steps"]?.array?.count ?? 0))
        #expect(PerfettoImportRules.slicesPerTrack(trace)[.init(pid: 1, tid: 3)] == device.count, "Perfetto keeps every device span")
    }

    @Test func refusesBadArguments() throws {
        for args in [["--runs", "0"], ["--batch", "0"], ["--seq", "100000", "--model", TestPaths.fixture("bert/tiny-bert-model")]] {
            guard let r = try HostileCLITests.flint(["profile", "--device", "cpu"] + args) else { return }
            #expect(r.status != 0 && !r.stderr.isEmpty && r.status < 128, "flint profile \(args): \(r.status)")
        }
    }
}

private extension JSONValue {
    var number: Double? {
        if case let .number(d) = self { return d }
        return nil
    }
}
