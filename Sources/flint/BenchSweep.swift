import FlintCore
import FlintJSON

/// One engine's latency over a batch × sequence grid: Flint's `flint bench --sweep` and the peers'
/// `scripts/peers` write the same JSON (`flint-sweep/1`), so sweeps compare and plot together.
struct Sweep {
    struct Point {
        var batch: Int
        var seq: Int
        var p50Ms: Double
        var avgMs: Double
        var p95Ms: Double
        var iters: Int
        /// GEMM FLOPs of the forward and the bytes it must read at least (its weights); 0 when unknown (peers).
        var flops: Double = 0
        var bytes: Double = 0

        var tokensPerSecond: Double { Double(batch * seq) / p50Ms * 1000 }
    }

    /// "flint", "torch-eager", "ort", ...
    var engine: String
    var model: String
    var device: String
    var dtype: String
    var machine: String
    var date: String
    /// The ceilings the floors are drawn from: GEMM GFLOP/s and copy GB/s (nil: no floors).
    var gemmGFLOPs: Double?
    var copyGBs: Double?
    var points: [Point]

    var seqs: [Int] { Array(Set(points.map(\.seq))).sorted() }
    var batches: [Int] { Array(Set(points.map(\.batch))).sorted() }

    /// The points of one sequence length, by batch.
    func line(seq: Int) -> [Point] { points.filter { $0.seq == seq }.sorted { $0.batch < $1.batch } }

    func point(batch: Int, seq: Int) -> Point? { points.first { $0.batch == batch && $0.seq == seq } }

    /// Milliseconds no implementation beats on the measured ceilings: FLOPs at the GEMM rate, and
    /// the weights' bytes at the copy bandwidth (nil without ceilings or costs).
    func flopsFloorMs(_ p: Point) -> Double? { gemmGFLOPs.flatMap { p.flops > 0 ? p.flops / ($0 * 1e6) : nil } }
    func bytesFloorMs(_ p: Point) -> Double? { copyGBs.flatMap { p.bytes > 0 ? p.bytes / ($0 * 1e6) : nil } }
}

// MARK: - The knee

/// Where a latency-vs-batch line leaves the overhead-bound plateau (the Framework Tax paper's knee).
///
/// Definition: with L(b) the p50 latency at batch b and b₀ the smallest batch measured, the knee is
/// the smallest batch b at which either
///   1. L(b) > 1.5 · L(b₀): latency has grown by half over the plateau's (`latency` rule), or
///   2. the FLOP floor (FLOPs / measured GEMM rate) exceeds 50% of L(b): the forward spends most of
///      its time on arithmetic it cannot avoid, so it is compute-bound (`compute` rule).
/// A knee at b₀ itself (rule 2 only) means no plateau: compute-bound from the smallest batch. No
/// knee means the whole line stays on the plateau: overhead-bound over the grid.
struct Knee: Equatable {
    enum Rule: String { case latency, compute }

    var seq: Int
    /// nil: the line never leaves the plateau.
    var batch: Int?
    var rule: Rule?
    var plateauMs: Double
    /// The FLOP floor's share of the latency at the smallest batch (nil without ceilings).
    var computeShareAtFirst: Double?

    static let latencyGrowth = 1.5
    static let computeShare = 0.5

    static func find(_ sweep: Sweep, seq: Int) -> Knee? {
        let line = sweep.line(seq: seq)
        guard let first = line.first else { return nil }
        let share = sweep.flopsFloorMs(first).map { $0 / first.p50Ms }
        for p in line {
            if let floor = sweep.flopsFloorMs(p), floor > computeShare * p.p50Ms {
                return Knee(seq: seq, batch: p.batch, rule: .compute, plateauMs: first.p50Ms, computeShareAtFirst: share)
            }
            if p.p50Ms > latencyGrowth * first.p50Ms {
                return Knee(seq: seq, batch: p.batch, rule: .latency, plateauMs: first.p50Ms, computeShareAtFirst: share)
            }
        }
        return Knee(seq: seq, batch: nil, rule: nil, plateauMs: first.p50Ms, computeShareAtFirst: share)
    }

    /// The summary's sentence for this sequence length.
    var sentence: String {
        let share = computeShareAtFirst.map { "; FLOP floor \(Table.fmt(100 * $0, 0))% of the smallest batch's latency" } ?? ""
        let plateau = "plateau \(Table.fmt(plateauMs, 2)) ms"
        guard let batch, let rule else { return "seq \(seq): no knee: latency stays within 1.5x of \(plateau) (overhead-bound)\(share)" }
        switch rule {
        case .latency:
            return "seq \(seq): knee at batch \(batch): latency above 1.5x the \(plateau)\(share)"
        case .compute:
            return "seq \(seq): knee at batch \(batch): FLOP floor above 50% of latency (compute-bound from here; \(plateau))\(share)"
        }
    }

    var json: JSONValue {
        .object([
            ("seq", .number(Double(seq))), ("knee_batch", batch.map { .number(Double($0)) } ?? .null),
            ("rule", rule.map { .string($0.rawValue) } ?? .null), ("plateau_ms", .number(plateauMs)),
            ("flop_floor_share_at_first_batch", computeShareAtFirst.map { .number($0) } ?? .null),
        ])
    }
}

// MARK: - JSON and CSV

extension Sweep {
    static let schema = "flint-sweep/1"
    static let knee =
        "knee: the smallest batch whose p50 latency exceeds 1.5x the smallest batch's, or whose FLOP floor "
        + "(FLOPs / GEMM rate) exceeds 50% of its latency"

    var json: JSONValue {
        let rows: [JSONValue] = points.map { p in
            .object(
                [
                    ("batch", .number(Double(p.batch))), ("seq", .number(Double(p.seq))), ("p50_ms", .number(p.p50Ms)),
                    ("avg_ms", .number(p.avgMs)), ("p95_ms", .number(p.p95Ms)), ("iters", .number(Double(p.iters))),
                    ("tokens_per_s", .number(p.tokensPerSecond)), ("flops", .number(p.flops)), ("bytes", .number(p.bytes)),
                    ("flops_floor_ms", flopsFloorMs(p).map { .number($0) } ?? .null),
                    ("bytes_floor_ms", bytesFloorMs(p).map { .number($0) } ?? .null),
                ])
        }
        return .object([
            ("schema", .string(Self.schema)), ("engine", .string(engine)), ("model", .string(model)), ("device", .string(device)),
            ("dtype", .string(dtype)), ("machine", .string(machine)), ("date", .string(date)),
            ("ceilings", .object([
                ("gemm_gflops", gemmGFLOPs.map { .number($0) } ?? .null), ("copy_gbps", copyGBs.map { .number($0) } ?? .null),
            ])),
            ("knee_rule", .string(Self.knee)), ("knees", .array(seqs.compactMap { Knee.find(self, seq: $0)?.json })),
            ("points", .array(rows)),
        ])
    }

    /// Reads one sweep document; the error says what is missing.
    init(json doc: JSONValue, source: String) throws {
        func fail(_ why: String) -> CommandError { CommandError("\(source): not a \(Self.schema) sweep: \(why)") }
        guard doc["schema"]?.string == Self.schema else { throw fail("\"schema\" is not \"\(Self.schema)\"") }
        guard let engine = doc["engine"]?.string, let model = doc["model"]?.string else { throw fail("no \"engine\" or \"model\"") }
        guard let rows = doc["points"]?.array, !rows.isEmpty else { throw fail("no \"points\"") }
        self.engine = engine
        self.model = model
        device = doc["device"]?.string ?? "?"
        dtype = doc["dtype"]?.string ?? "?"
        machine = doc["machine"]?.string ?? "?"
        date = doc["date"]?.string ?? "?"
        gemmGFLOPs = doc["ceilings"]?["gemm_gflops"]?.double.flatMap { $0 > 0 ? $0 : nil }
        copyGBs = doc["ceilings"]?["copy_gbps"]?.double.flatMap { $0 > 0 ? $0 : nil }
        points = try rows.enumerated().map { (i, r) throws -> Point in
            guard let b = r["batch"]?.int, let s = r["seq"]?.int, b > 0, s > 0, let p50 = r["p50_ms"]?.double, p50 > 0, p50.isFinite else {
                throw fail("point \(i) needs positive integer \"batch\" and \"seq\" and a positive \"p50_ms\"")
            }
            return Point(
                batch: b, seq: s, p50Ms: p50, avgMs: r["avg_ms"]?.double ?? p50, p95Ms: r["p95_ms"]?.double ?? p50,
                iters: r["iters"]?.int ?? 0, flops: max(0, r["flops"]?.double ?? 0), bytes: max(0, r["bytes"]?.double ?? 0))
        }
    }

    /// The sweeps in a file: one sweep document, or `{"sweeps": [...]}` (what `scripts/peers` writes).
    static func load(_ path: String) throws -> [Sweep] {
        let doc: JSONValue
        do {
            doc = try JSONParser.parse(try Console.readFile(path))
        } catch let error as JSONParser.Failure {
            throw CommandError("\(path): invalid JSON at byte \(error.offset): \(error.reason)")
        }
        if let list = doc["sweeps"]?.array {
            guard !list.isEmpty else { throw CommandError("\(path): \"sweeps\" is empty") }
            return try list.enumerated().map { try Sweep(json: $0.element, source: "\(path) sweeps[\($0.offset)]") }
        }
        return [try Sweep(json: doc, source: path)]
    }

    static let csvHeader =
        "engine,model,device,dtype,batch,seq,p50_ms,avg_ms,p95_ms,iters,tokens_per_s,flops,bytes,flops_floor_ms,bytes_floor_ms"

    /// CSV rows (no header), one per point.
    var csvRows: [String] {
        func quoted(_ s: String) -> String {
            s.contains(where: { $0 == "," || $0 == "\"" }) ? "\"" + s.replacing("\"", with: "\"\"") + "\"" : s
        }
        func num(_ v: Double?) -> String { v.map { "\($0)" } ?? "" }
        return points.map { p in
            ([engine, model, device, dtype].map(quoted) + [
                String(p.batch), String(p.seq), num(p.p50Ms), num(p.avgMs), num(p.p95Ms), String(p.iters), num(p.tokensPerSecond),
                num(p.flops), num(p.bytes), num(flopsFloorMs(p)), num(bytesFloorMs(p)),
            ]).joined(separator: ",")
        }
    }
}

// MARK: - Text

extension Sweep {
    /// The summary: the knee per sequence length, then the floors' meaning.
    func summary() -> String {
        var lines = ["knees (\(Self.knee)):"]
        lines += seqs.compactMap { Knee.find(self, seq: $0)?.sentence }.map { "  " + $0 }
        if let g = gemmGFLOPs, let c = copyGBs {
            lines.append(
                "floors: FLOPs / \(Table.fmt(g, 1)) GFLOP/s (GEMM ceiling) and weight bytes / \(Table.fmt(c, 1)) GB/s (copy ceiling)")
        }
        return lines.joined(separator: "\n")
    }

    /// Flint beside each peer at every point both measured: p50 ms and Flint's time over the peer's.
    func comparison(_ peers: [Sweep]) -> String {
        let header = ["seq", "batch", "flint ms"] + peers.flatMap { ["\($0.engine) ms", "flint/\($0.engine)"] }
        var lines = [Table.row(header)]
        for p in points.sorted(by: { ($0.seq, $0.batch) < ($1.seq, $1.batch) }) {
            var cells = [String(p.seq), String(p.batch), Table.fmt(p.p50Ms, 2)]
            for peer in peers {
                if let q = peer.point(batch: p.batch, seq: p.seq) {
                    cells += [Table.fmt(q.p50Ms, 2), Table.fmt(p.p50Ms / q.p50Ms, 2)]
                } else {
                    cells += ["-", "-"]
                }
            }
            lines.append(Table.row(cells))
        }
        lines.append("p50 latency; flint/peer < 1: Flint is faster")
        return lines.joined(separator: "\n")
    }
}

extension JSONValue {
    /// The value as a number, if it is one.
    var double: Double? {
        if case let .number(d) = self { return d }
        return nil
    }
}
