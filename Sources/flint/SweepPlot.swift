#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The sweep's figure as SVG, written by hand (no plotting dependency): left, p50 latency vs batch
/// (log-log, one line per sequence length) with the floor lines and the knee marked; right,
/// throughput (tokens/s) vs batch. Peers' curves are drawn dashed in the same colour per sequence.
///
/// Element classes (what tests and readers key on): `polyline.flint.latency` one per sequence
/// length, `polyline.flint.throughput`, `polyline.peer.latency` / `.peer.throughput` with
/// `data-engine`, `polyline.floor.flops` / `.floor.bytes`, `circle.knee`.
struct SweepPlot {
    let flint: Sweep
    let peers: [Sweep]

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
    static let peerDashes = ["9 5", "3 4", "12 4 3 4", "2 7"]
    static let width = 1240.0, height = 700.0
    static let plotTop = 90.0, plotHeight = 400.0, plotWidth = 480.0
    static let panelLeft = [90.0, 700.0]

    /// A log-scale axis over [lo, hi].
    struct LogAxis {
        let lo: Double, hi: Double, start: Double, length: Double, flipped: Bool

        init(values: [Double], start: Double, length: Double, flipped: Bool) {
            let v = values.filter { $0 > 0 && $0.isFinite }
            let lo = v.min() ?? 1, hi = v.max() ?? 10
            // 15% of a decade's margin each side, and never a zero-width range.
            let span = max(log10(hi / lo), 0.3)
            let mid = (log10(lo) + log10(hi)) / 2
            self.lo = pow(10, mid - span / 2 - 0.15 * max(span, 1) / 2)
            self.hi = pow(10, mid + span / 2 + 0.15 * max(span, 1) / 2)
            self.start = start
            self.length = length
            self.flipped = flipped
        }

        func position(_ v: Double) -> Double {
            let f = (log10(max(v, lo)) - log10(lo)) / (log10(hi) - log10(lo))
            return flipped ? start + length * (1 - f) : start + length * f
        }

        /// Ticks at 1, 2, 5 × powers of ten (1 × only when the range spans over three decades).
        var ticks: [Double] {
            let steps = log10(hi / lo) > 3 ? [1.0] : [1.0, 2.0, 5.0]
            var out: [Double] = []
            var decade = pow(10, floor(log10(lo)))
            while decade <= hi {
                for s in steps where s * decade >= lo && s * decade <= hi { out.append(s * decade) }
                decade *= 10
            }
            return out
        }
    }

    func color(seq: Int) -> String { Self.palette[(flint.seqs.firstIndex(of: seq) ?? 0) % Self.palette.count] }

    func svg() -> String {
        let seqs = flint.seqs
        let allBatches = Array(Set(flint.batches + peers.flatMap(\.batches))).sorted()
        var latencies = flint.points.map(\.p50Ms) + peers.flatMap { $0.points.map(\.p50Ms) }
        latencies += flint.points.compactMap { flint.flopsFloorMs($0) } + flint.points.compactMap { flint.bytesFloorMs($0) }
        let throughputs = flint.points.map(\.tokensPerSecond) + peers.flatMap { $0.points.map(\.tokensPerSecond) }
        let xAxes = Self.panelLeft.map { LogAxis(values: allBatches.map(Double.init), start: $0, length: Self.plotWidth, flipped: false) }
        let yLatency = LogAxis(values: latencies, start: Self.plotTop, length: Self.plotHeight, flipped: true)
        let yThroughput = LogAxis(values: throughputs, start: Self.plotTop, length: Self.plotHeight, flipped: true)

        var out = [
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(Self.width))\" height=\"\(Int(Self.height))\" "
                + "viewBox=\"0 0 \(Int(Self.width)) \(Int(Self.height))\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"13\">",
            "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
            text(Self.width / 2, 28, "\(flint.model) on \(flint.device), \(flint.dtype): latency and throughput vs batch", size: 17,
                 anchor: "middle", weight: "bold"),
            text(Self.width / 2, 50, subtitle(), size: 12, anchor: "middle", fill: "#444"),
        ]
        out += panel(x: xAxes[0], y: yLatency, xTicks: allBatches, title: "p50 latency (ms), log-log", yLabel: "latency (ms)")
        out += panel(x: xAxes[1], y: yThroughput, xTicks: allBatches, title: "throughput (tokens/s), log-log", yLabel: "tokens/s")

        for seq in seqs {
            let c = color(seq: seq), line = flint.line(seq: seq)
            let flops = line.compactMap { p in flint.flopsFloorMs(p).map { (Double(p.batch), $0) } }
            let bytes = line.compactMap { p in flint.bytesFloorMs(p).map { (Double(p.batch), $0) } }
            if flops.count == line.count {
                out.append(polyline(flops, xAxes[0], yLatency, cls: "floor flops", seq: seq, stroke: c, width: 1.2, dash: "5 4",
                                    opacity: 0.55))
            }
            if bytes.count == line.count {
                out.append(polyline(bytes, xAxes[0], yLatency, cls: "floor bytes", seq: seq, stroke: c, width: 1.2, dash: "1 3",
                                    opacity: 0.7))
            }
            for (i, peer) in peers.enumerated() {
                let pl = peer.line(seq: seq)
                guard !pl.isEmpty else { continue }
                let dash = Self.peerDashes[i % Self.peerDashes.count]
                out.append(polyline(pl.map { (Double($0.batch), $0.p50Ms) }, xAxes[0], yLatency, cls: "peer latency", seq: seq, stroke: c,
                                    width: 1.8, dash: dash, engine: peer.engine))
                out.append(polyline(pl.map { (Double($0.batch), $0.tokensPerSecond) }, xAxes[1], yThroughput, cls: "peer throughput",
                                    seq: seq, stroke: c, width: 1.8, dash: dash, engine: peer.engine))
            }
            out.append(polyline(line.map { (Double($0.batch), $0.p50Ms) }, xAxes[0], yLatency, cls: "flint latency", seq: seq, stroke: c,
                                width: 2.6))
            out.append(polyline(line.map { (Double($0.batch), $0.tokensPerSecond) }, xAxes[1], yThroughput, cls: "flint throughput",
                                seq: seq, stroke: c, width: 2.6))
            for p in line {
                out.append(circle(xAxes[0].position(Double(p.batch)), yLatency.position(p.p50Ms), r: 3.5, fill: c))
                out.append(circle(xAxes[1].position(Double(p.batch)), yThroughput.position(p.tokensPerSecond), r: 3.5, fill: c))
            }
            if let knee = Knee.find(flint, seq: seq), let b = knee.batch, let p = flint.point(batch: b, seq: seq) {
                let x = xAxes[0].position(Double(b)), y = yLatency.position(p.p50Ms)
                out.append("<circle class=\"knee\" data-seq=\"\(seq)\" cx=\"\(f(x))\" cy=\"\(f(y))\" r=\"9\" fill=\"none\" "
                           + "stroke=\"black\" "
                           + "stroke-width=\"1.8\"/>")
                out.append(text(x + 11, y - 8, "knee b=\(b)", size: 11, fill: c, weight: "bold"))
            }
        }
        out += legend(seqs: seqs)
        out.append("</svg>")
        return out.joined(separator: "\n") + "\n"
    }

    func subtitle() -> String {
        var parts = ["\(flint.machine)", flint.date]
        if let g = flint.gemmGFLOPs, let c = flint.copyGBs {
            parts.append("floors: FLOPs / \(Table.fmt(g, 1)) GFLOP/s GEMM, weight bytes / \(Table.fmt(c, 1)) GB/s copy")
        }
        return parts.joined(separator: " · ")
    }

    /// Frame, grid, ticks, axis titles of one panel.
    func panel(x: LogAxis, y: LogAxis, xTicks: [Int], title: String, yLabel: String) -> [String] {
        let left = x.start, right = x.start + x.length, top = y.start, bottom = y.start + y.length
        var out = ["<g class=\"panel\">", text((left + right) / 2, top - 12, title, size: 14, anchor: "middle", weight: "bold")]
        for t in xTicks {
            let px = x.position(Double(t))
            out.append(line(px, top, px, bottom, stroke: "#e4e4e4"))
            out.append(text(px, bottom + 18, String(t), size: 12, anchor: "middle"))
        }
        for t in y.ticks {
            let py = y.position(t)
            out.append(line(left, py, right, py, stroke: "#e4e4e4"))
            out.append(text(left - 8, py + 4, Self.label(t), size: 12, anchor: "end"))
        }
        out.append("<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(x.length))\" height=\"\(f(y.length))\" "
                   + "fill=\"none\" stroke=\"#333\"/>")
        out.append(text((left + right) / 2, bottom + 40, "batch size (sequences)", size: 13, anchor: "middle"))
        let cy = (top + bottom) / 2
        out.append("<text x=\"\(f(left - 62))\" y=\"\(f(cy))\" font-size=\"13\" text-anchor=\"middle\" "
                   + "transform=\"rotate(-90 \(f(left - 62)) \(f(cy)))\">\(Self.escape(yLabel))</text>")
        out.append("</g>")
        return out
    }

    func legend(seqs: [Int]) -> [String] {
        var out = ["<g class=\"legend\">"]
        var x = Self.panelLeft[0], y = Self.plotTop + Self.plotHeight + 78
        out.append(text(x, y, "sequence length:", size: 13, weight: "bold"))
        x += 120
        for seq in seqs {
            out.append(line(x, y - 4, x + 26, y - 4, stroke: color(seq: seq), width: 2.6))
            out.append(text(x + 32, y, "seq \(seq)", size: 13))
            x += 95
        }
        y += 26
        x = Self.panelLeft[0]
        var styles: [(String, String?, Double, Double)] = [("Flint (p50)", nil, 2.6, 1)]
        for (i, peer) in peers.enumerated() { styles.append((peer.engine, Self.peerDashes[i % Self.peerDashes.count], 1.8, 1)) }
        if flint.gemmGFLOPs != nil {
            styles += [("FLOP floor (FLOPs / GEMM rate)", "5 4", 1.2, 0.55), ("byte floor (weights / bandwidth)", "1 3", 1.2, 0.7)]
        }
        for (name, dash, width, opacity) in styles {
            out.append(line(x, y - 4, x + 34, y - 4, stroke: "#333", width: width, dash: dash, opacity: opacity))
            out.append(text(x + 40, y, name, size: 13))
            x += 60 + Double(name.count) * 7
            if x > Self.width - 200 { x = Self.panelLeft[0]; y += 22 }
        }
        y += 26
        out.append(text(Self.panelLeft[0], y, "○ " + Sweep.knee, size: 12, fill: "#333"))
        out.append("</g>")
        return out
    }

    // MARK: - Elements

    func polyline(_ pts: [(Double, Double)], _ x: LogAxis, _ y: LogAxis, cls: String, seq: Int, stroke: String, width: Double,
                  dash: String? = nil, opacity: Double = 1, engine: String? = nil) -> String {
        let points = pts.map { "\(f(x.position($0.0))),\(f(y.position($0.1)))" }.joined(separator: " ")
        return "<polyline class=\"\(cls)\" data-seq=\"\(seq)\"" + (engine.map { " data-engine=\"\(Self.escape($0))\"" } ?? "")
            + " points=\"\(points)\" fill=\"none\" stroke=\"\(stroke)\" stroke-width=\"\(f(width))\""
            + (dash.map { " stroke-dasharray=\"\($0)\"" } ?? "") + (opacity < 1 ? " stroke-opacity=\"\(f(opacity))\"" : "") + "/>"
    }

    func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, stroke: String, width: Double = 1, dash: String? = nil,
              opacity: Double = 1) -> String {
        "<line x1=\"\(f(x1))\" y1=\"\(f(y1))\" x2=\"\(f(x2))\" y2=\"\(f(y2))\" stroke=\"\(stroke)\" stroke-width=\"\(f(width))\""
            + (dash.map { " stroke-dasharray=\"\($0)\"" } ?? "") + (opacity < 1 ? " stroke-opacity=\"\(f(opacity))\"" : "") + "/>"
    }

    func circle(_ x: Double, _ y: Double, r: Double, fill: String) -> String {
        "<circle cx=\"\(f(x))\" cy=\"\(f(y))\" r=\"\(f(r))\" fill=\"\(fill)\"/>"
    }

    func text(_ x: Double, _ y: Double, _ s: String, size: Int, anchor: String = "start", fill: String = "#111",
              weight: String = "normal") -> String {
        "<text x=\"\(f(x))\" y=\"\(f(y))\" font-size=\"\(size)\" text-anchor=\"\(anchor)\" fill=\"\(fill)\" font-weight=\"\(weight)\">"
            + Self.escape(s) + "</text>"
    }

    func f(_ v: Double) -> String { Table.fmt(v, 1) }

    /// 0.5, 2, 50, 1k, 20k, 1M: short tick labels.
    static func label(_ v: Double) -> String {
        if v >= 1e6 { return trim(v / 1e6) + "M" }
        if v >= 1e3 { return trim(v / 1e3) + "k" }
        return trim(v)
    }

    static func trim(_ v: Double) -> String {
        if v == v.rounded() { return String(Int(v)) }
        var s = Table.fmt(v, v < 0.01 ? 4 : v < 0.1 ? 3 : v < 1 ? 2 : 1)
        while s.hasSuffix("0") { s.removeLast() }
        return s.hasSuffix(".") ? String(s.dropLast()) : s
    }

    static func escape(_ s: String) -> String {
        var out = ""
        for ch in s {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(ch)
            }
        }
        return out
    }
}
