import FlintJSON
import Testing

/// What Perfetto's JSON importer (trace_processor: json_trace_tokenizer.cc, json_trace_parser_impl.cc,
/// json_utils, slice_tracker.cc in google/perfetto) needs for a Flint trace to load with every complete
/// event kept. Perfetto's own trace_processor cannot run here (its Python package downloads the
/// binary at run time), so the rules are restated from its source:
/// - the file is a JSON object whose first key is `traceEvents` (the tokenizer stops at a top-level
///   key it does not know, and older ones read only `traceEvents`, `systemTraceEvents`, `metadata`,
///   `displayTimeUnit` and `otherData`); `displayTimeUnit`, when present, is "ms" or "ns", or the
///   load fails;
/// - an event's `ph` is a one-character string; `pid` and `tid` are integers in 0..<2^32 (strings
///   are taken as names and interned, a number outside the range becomes 0); no top-level member of
///   an event is an array (the older tokenizer refuses the trace on one before `ts`); strings hold
///   no control characters;
/// - `ts` and `dur` are numbers of microseconds, read as nanoseconds by llround(x * 1000); an 'X'
///   event without a numeric `dur` is dropped, a negative one is an error;
/// - complete events on one thread track (pid, tid), taken in `ts` order, must nest or be disjoint
///   as half-open intervals [ts, ts + dur) in those nanoseconds: one that starts inside an open
///   slice and ends after it is dropped (slice_drop_overlapping_complete_event);
/// - 'M' events may omit `ts`; Flint writes thread_name/process_name ones with a string `args.name`.
enum PerfettoImportRules {
    struct Track: Hashable, CustomStringConvertible {
        let pid: Int, tid: Int
        var description: String { "pid \(pid) tid \(tid)" }
    }

    /// Checks the rules (each broken one is a test failure naming the event) and returns the
    /// complete events the importer keeps per thread track, after its nesting rule.
    @discardableResult
    static func slicesPerTrack(_ trace: JSONValue, sourceLocation: SourceLocation = #_sourceLocation) -> [Track: Int] {
        guard let top = trace.object, let events = trace["traceEvents"]?.array else {
            Issue.record("a trace is an object with a traceEvents array", sourceLocation: sourceLocation)
            return [:]
        }
        #expect(top.first?.key == "traceEvents", "traceEvents comes first: \(top.map(\.key))", sourceLocation: sourceLocation)
        let known: Set<String> = ["traceEvents", "systemTraceEvents", "metadata", "displayTimeUnit", "otherData"]
        #expect(top.allSatisfy { known.contains($0.key) }, "top-level keys \(top.map(\.key))", sourceLocation: sourceLocation)
        if let unit = trace["displayTimeUnit"] {
            #expect(unit.string == "ms" || unit.string == "ns", "displayTimeUnit \(unit.serialized)", sourceLocation: sourceLocation)
        }
        var slices: [Track: [(ts: Int64, dur: Int64, name: String)]] = [:]
        for e in events {
            let ph = e["ph"]?.string ?? ""
            #expect(ph.count == 1, "ph of \(e.serialized)", sourceLocation: sourceLocation)
            let pid = e["pid"]?.int, tid = e["tid"]?.int
            #expect(pid.map { (0..<(1 << 32)).contains($0) } == true && tid.map { (0..<(1 << 32)).contains($0) } == true,
                    "pid and tid are integers in 0..<2^32: \(e.serialized)", sourceLocation: sourceLocation)
            #expect(e.object?.allSatisfy { $0.value.array == nil } == true, "no array member: \(e.serialized)",
                    sourceLocation: sourceLocation)
            #expect(!hasControlCharacter(e), "control character in a string of \(e.serialized)", sourceLocation: sourceLocation)
            switch ph {
            case "M":
                #expect(["thread_name", "process_name"].contains(e["name"]?.string ?? "") && e["args"]?["name"]?.string != nil,
                        "metadata event \(e.serialized)", sourceLocation: sourceLocation)
            case "X":
                guard case let .number(ts)? = e["ts"], case let .number(dur)? = e["dur"], let pid, let tid else {
                    Issue.record("complete event without numeric ts and dur: \(e.serialized)", sourceLocation: sourceLocation)
                    continue
                }
                #expect(dur >= 0 && ts >= 0, "negative time in \(e.serialized)", sourceLocation: sourceLocation)
                slices[Track(pid: pid, tid: tid), default: []].append(
                    (Int64((ts * 1000).rounded()), Int64((dur * 1000).rounded()), e["name"]?.string ?? ""))
            default:
                Issue.record("Flint writes only X and M events: \(e.serialized)", sourceLocation: sourceLocation)
            }
        }
        var kept: [Track: Int] = [:]
        for (track, list) in slices {
            // The importer sorts by ts (stable); a parent written before its children keeps them nested.
            let ordered = list.enumerated().sorted { ($0.element.ts, $0.offset) < ($1.element.ts, $1.offset) }.map(\.element)
            var open: [(end: Int64, name: String)] = []
            var count = 0
            for s in ordered {
                // Closed on the left, open on the right: a slice ending where the next begins is closed.
                while let top = open.last, top.end <= s.ts { open.removeLast() }
                if let top = open.last, s.ts + s.dur > top.end {
                    let overlap = "\(track): \(s.name) [\(s.ts), \(s.ts + s.dur)) ns overlaps \(top.name) ending at \(top.end) ns"
                    Issue.record("\(overlap); Perfetto drops it", sourceLocation: sourceLocation)
                    continue
                }
                open.append((s.ts + s.dur, s.name))
                count += 1
            }
            kept[track] = count
        }
        return kept
    }

    static func hasControlCharacter(_ v: JSONValue) -> Bool {
        switch v {
        case let .string(s): return s.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }
        case let .array(a): return a.contains(where: hasControlCharacter)
        case let .object(o): return o.contains { hasControlCharacter(.string($0.key)) || hasControlCharacter($0.value) }
        default: return false
        }
    }
}
