import FlintJSON
import FlintTestSupport
import Testing
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `flint bench --sweep`, `--compare` and `flint bench ceilings` end to end: the knee rule on
/// synthetic sweeps (through `--load`), the SVG parsed as XML, the JSON and CSV schemas, a real
/// sweep of a tiny model on the CPU and on the emulated CUDA driver, and the ceilings cache.
@Suite("flint bench --sweep and ceilings")
struct SweepCLITests {
    /// One cache folder for the whole process, so tests never touch ~/.cache/flint.
    static let cacheFolder: String = {
        let folder = TestPaths.temporaryFolder()
        setenv("FLINT_CACHE_DIR", folder, 1)
        return folder
    }()

    static let csvHeader =
        "engine,model,device,dtype,batch,seq,p50_ms,avg_ms,p95_ms,iters,tokens_per_s,flops,bytes,flops_floor_ms,bytes_floor_ms"

    /// A synthetic Flint sweep: seq 16 rises past 1.5x at batch 8 (latency rule); seq 64's FLOP
    /// floor (at 100 GFLOP/s) passes 50% of latency at batch 2 (compute rule); seq 256 stays flat.
    static func synthetic(engine: String = "flint", scale: Double = 1) -> JSONValue {
        var points: [JSONValue] = []
        func add(_ b: Int, _ s: Int, _ ms: Double, flops: Double) {
            points.append(.object([("batch", .number(Double(b))), ("seq", .number(Double(s))), ("p50_ms", .number(ms * scale)),
                                   ("avg_ms", .number(ms * scale)), ("p95_ms", .number(ms * scale * 1.1)), ("iters", .number(5)),
                                   ("flops", .number(flops)), ("bytes", .number(4e6))]))
        }
        for (b, ms) in [(1, 2.0), (2, 2.1), (4, 2.9), (8, 4.0), (16, 8.0)] { add(b, 16, ms, flops: 1e6) }
        for (b, ms) in [(1, 5.0), (2, 6.0), (4, 10.0), (8, 19.0), (16, 37.0)] { add(b, 64, ms, flops: Double(b) * 1.6e8) }
        for (b, ms) in [(1, 3.0), (2, 3.2), (4, 3.4), (8, 3.6), (16, 4.0)] { add(b, 256, ms, flops: 0) }
        return .object([("schema", .string("flint-sweep/1")), ("engine", .string(engine)), ("model", .string("bert-base")),
                         ("device", .string("cpu (test)")), ("dtype", .string("f32")), ("machine", .string("synthetic")),
                         ("date", .string("2026-12-02")),
                         ("ceilings", .object([("gemm_gflops", .number(100)), ("copy_gbps", .number(10))])), ("points", .array(points))])
    }

    /// The SVG's elements: (name, attributes) in document order, through Foundation's XMLParser.
    final class Elements: NSObject, XMLParserDelegate {
        var all: [(String, [String: String])] = []
        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                    attributes: [String: String] = [:]) {
            all.append((name, attributes))
        }

        static func parse(_ bytes: [UInt8]) throws -> Elements {
            let parser = XMLParser(data: Data(bytes))
            let e = Elements()
            parser.delegate = e
            try #require(parser.parse(), "the SVG is not well-formed XML: \(String(describing: parser.parserError))")
            return e
        }

        func with(_ name: String, class cls: String) -> [[String: String]] {
            all.filter { $0.0 == name && $0.1["class"] == cls }.map(\.1)
        }
    }

    @Test func kneeAndFilesFromASyntheticSweep() throws {
        let folder = TestPaths.temporaryFolder()
        TestPaths.write(Self.synthetic().serialized, to: folder + "/in.json")
        let peers = JSONValue.object([("sweeps", .array([Self.synthetic(engine: "torch-eager", scale: 2),
                                                         Self.synthetic(engine: "ort", scale: 0.5)]))])
        TestPaths.write(peers.serialized, to: folder + "/peers.json")
        let args = ["bench", "--load", folder + "/in.json", "--compare", folder + "/peers.json", "--plot", folder + "/p.svg",
                    "--csv", folder + "/p.csv", "--json", folder + "/out.json"]
        guard let r = try HostileCLITests.flint(args) else { return }
        try #require(r.status == 0, "flint \(args.joined(separator: " ")): \(r.stderr.prefix(800))")
        #expect(r.stdout.contains("seq 16: knee at batch 8: latency above 1.5x"), "\(r.stdout)")
        #expect(r.stdout.contains("seq 64: knee at batch 2: FLOP floor above 50%"), "\(r.stdout)")
        #expect(r.stdout.contains("seq 256: no knee"), "\(r.stdout)")
        // The comparison: Flint at 1x, torch at 2x (ratio 0.50), ORT at 0.5x (ratio 2.00), every point.
        let rows = r.stdout.split(separator: "\n").filter { $0.hasPrefix("16 ") || $0.hasPrefix("64 ") || $0.hasPrefix("256 ") }
        #expect(rows.count == 15, "\(r.stdout)")
        for row in rows {
            let cells = row.split(separator: " ")
            #expect(cells.count == 7 && cells[4] == "0.50" && cells[6] == "2.00", "\(row)")
        }

        let out = try JSONParser.parse(try #require(TestPaths.read(folder + "/out.json")))
        #expect(out["schema"]?.string == "flint-sweep/1" && out["engine"]?.string == "flint")
        let knees = try #require(out["knees"]?.array)
        #expect(knees.map { $0["knee_batch"]?.int } == [8, 2, nil])
        #expect(knees.map { $0["rule"]?.string } == ["latency", "compute", nil])
        let points = try #require(out["points"]?.array)
        #expect(points.count == 15)
        for p in points {
            for key in ["batch", "seq", "p50_ms", "avg_ms", "p95_ms", "iters", "tokens_per_s", "flops", "bytes", "flops_floor_ms",
                        "bytes_floor_ms"] {
                #expect(p[key] != nil, "point without \(key)")
            }
            // 4 MB at 10 GB/s is 0.4 ms; FLOPs at 100 GFLOP/s.
            #expect(abs((p["bytes_floor_ms"]?.number ?? 0) - 0.4) < 1e-9)
            if p["flops"]?.number == 0 {
                #expect(p["flops_floor_ms"]?.isNull == true, "no FLOP floor without FLOPs")
            } else {
                #expect(abs((p["flops_floor_ms"]?.number ?? -1) - p["flops"]!.number! / 1e8) < 1e-9)
            }
        }

        let csv = String(decoding: try #require(TestPaths.read(folder + "/p.csv")), as: UTF8.self).split(separator: "\n")
        #expect(csv.first.map(String.init) == Self.csvHeader)
        #expect(csv.count == 1 + 3 * 15, "Flint's points and both peers'")
        #expect(csv.dropFirst().allSatisfy { $0.split(separator: ",", omittingEmptySubsequences: false).count == 15 })
        #expect(csv.filter { $0.hasPrefix("ort,") }.count == 15 && csv.filter { $0.hasPrefix("torch-eager,") }.count == 15)

        let svg = try Elements.parse(try #require(TestPaths.read(folder + "/p.svg")))
        #expect(svg.all.first?.0 == "svg")
        let latency = svg.with("polyline", class: "flint latency")
        #expect(latency.count == 3, "one Flint latency line per sequence length")
        #expect(Set(latency.compactMap { $0["data-seq"] }) == ["16", "64", "256"])
        #expect(latency.allSatisfy { ($0["points"] ?? "").split(separator: " ").count == 5 })
        #expect(svg.with("polyline", class: "flint throughput").count == 3)
        #expect(svg.with("polyline", class: "peer latency").count == 6, "two peers x three sequence lengths")
        #expect(Set(svg.with("polyline", class: "peer latency").compactMap { $0["data-engine"] }) == ["torch-eager", "ort"])
        // seq 256 has no FLOPs, so no FLOP floor; every line has its weights' bytes.
        #expect(svg.with("polyline", class: "floor flops").count == 2 && svg.with("polyline", class: "floor bytes").count == 3)
        #expect(svg.with("circle", class: "knee").map { $0["data-seq"] } == ["16", "64"])
        let texts = String(decoding: TestPaths.read(folder + "/p.svg")!, as: UTF8.self)
        for label in ["latency (ms)", "tokens/s", "batch size (sequences)", "knee b=8", "knee b=2", "torch-eager", "FLOP floor"] {
            #expect(texts.contains(label), "the plot lacks the label \(label)")
        }
    }

    @Test func badSweepFilesGetAnError() throws {
        let folder = TestPaths.temporaryFolder()
        TestPaths.write("{\"schema\": \"flint-sweep/1\", \"engine\": \"flint\", \"model\": \"m\", \"points\": [{\"batch\": 0}]}",
                        to: folder + "/bad.json")
        TestPaths.write("[1, 2", to: folder + "/broken.json")
        TestPaths.write(Self.synthetic().serialized, to: folder + "/flint.json")
        for (args, message) in [
            (["--load", folder + "/bad.json"], "point 0 needs positive integer"),
            (["--load", folder + "/broken.json"], "invalid JSON"),
            (["--load", folder + "/flint.json", "--compare", folder + "/flint.json"], "no peer sweeps of model"),
            (["--plot", folder + "/x.svg"], "--plot and --csv go with --sweep"),
            (["--sweep", "--model", "gpt2"], "--sweep times encoders"),
        ] {
            guard let r = try HostileCLITests.flint(["bench"] + args) else { return }
            #expect(r.status != 0 && r.stderr.contains(message), "flint bench \(args): \(r.stderr.prefix(400))")
        }
    }

    /// A real sweep of a tiny BERT, on the CPU and through the CUDA backend on the emulated driver.
    @Test(arguments: ["cpu", "cuda-emulated"])
    func measuredSweepOfATinyModel(device: String) throws {
        _ = Self.cacheFolder
        let folder = TestPaths.temporaryFolder()
        let args = ["bench", "--sweep", "--model", TestPaths.fixture("bert/tiny-bert-model"), "--device", device, "--threads", "1",
                    "--batch", "1,2,4", "--seq", "8,16", "--iters", "3", "--max-seconds", "1", "--json", folder + "/s.json",
                    "--csv", folder + "/s.csv", "--plot", folder + "/s.svg"]
        guard let r = try HostileCLITests.flint(args, timeout: 180) else { return }
        try #require(r.status == 0, "flint \(args.joined(separator: " ")): \(r.stderr.prefix(800))")
        let doc = try JSONParser.parse(try #require(TestPaths.read(folder + "/s.json")))
        let points = try #require(doc["points"]?.array)
        #expect(points.map { [$0["seq"]?.int, $0["batch"]?.int] } == [[8, 1], [8, 2], [8, 4], [16, 1], [16, 2], [16, 4]])
        // At most --iters timed runs, fewer once --max-seconds has passed (the emulated driver is slow).
        #expect(points.allSatisfy {
            ($0["p50_ms"]?.number ?? 0) > 0 && ($0["flops"]?.number ?? 0) > 0 && (1...3).contains($0["iters"]?.int ?? 0)
        })
        // FLOPs grow with the tokens; the weights' bytes do not.
        #expect(points[1]["flops"]!.number! > points[0]["flops"]!.number! && points[1]["bytes"] == points[0]["bytes"])
        #expect((doc["ceilings"]?["gemm_gflops"]?.number ?? 0) > 0 && (doc["ceilings"]?["copy_gbps"]?.number ?? 0) > 0)
        #expect(doc["knees"]?.array?.count == 2)
        #expect(r.stdout.contains("seq 8: ") && r.stdout.contains("seq 16: "), "\(r.stdout)")
        #expect(r.stderr.contains("[6/6] batch 4 x seq 16"), "plain progress lines off a terminal: \(r.stderr.suffix(400))")
        let svg = try Elements.parse(try #require(TestPaths.read(folder + "/s.svg")))
        #expect(svg.with("polyline", class: "flint latency").count == 2)
        let csv = String(decoding: try #require(TestPaths.read(folder + "/s.csv")), as: UTF8.self).split(separator: "\n")
        #expect(csv.count == 7 && csv[0] == Self.csvHeader[...])
    }

    /// `flint bench ceilings`: measured once, then read from the cache (same numbers), --refresh measures again.
    @Test(arguments: ["cpu", "cuda-emulated"])
    func ceilingsAreCached(device: String) throws {
        _ = Self.cacheFolder
        let folder = TestPaths.temporaryFolder()
        let args = ["bench", "ceilings", "--device", device, "--threads", "1", "--quick"]
        guard let first = try HostileCLITests.flint(args + ["--refresh", "--json", folder + "/a.json"], timeout: 180) else { return }
        try #require(first.status == 0, "\(first.stderr.prefix(800))")
        #expect(first.stdout.contains("measured now"), "\(first.stdout)")
        guard let second = try HostileCLITests.flint(args + ["--json", folder + "/b.json"], timeout: 180) else { return }
        try #require(second.status == 0, "\(second.stderr.prefix(800))")
        #expect(second.stdout.contains(": cached"), "\(second.stdout)")
        let a = try JSONParser.parse(try #require(TestPaths.read(folder + "/a.json")))
        let b = try JSONParser.parse(try #require(TestPaths.read(folder + "/b.json")))
        #expect(a == b, "the cache returns what was measured")
        #expect(a["schema"]?.string == "flint-ceilings/1" && a["kind"]?.string == (device == "cpu" ? "cpu" : "cuda"))
        #expect((a["copy_gbps"]?.number ?? 0) > 0 && (a["gemm_gflops"]?["f32"]?.number ?? 0) > 0)
        let key = try #require(a["machine_key"]?.string)
        #expect(access(Self.cacheFolder + "/ceilings-\(key).json", R_OK) == 0, "cached under FLINT_CACHE_DIR")
    }
}

private extension JSONValue {
    var number: Double? {
        if case let .number(d) = self { return d }
        return nil
    }
}
