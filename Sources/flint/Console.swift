import FlintCore
import FlintJSON
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser
import FlintTokenizers
/// A failure while running a command (bad file, bad line): printed as "Error: ...", without the usage text
/// that ArgumentParser adds for `ValidationError` (which is kept for bad command-line arguments).
struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// Output helpers shared by the subcommands: results to stdout, progress to stderr.
enum Console {
    static func progress(_ message: String) { writeAll(message + "\n", to: 2) }

    /// Progress of a weight load (tensors done/total, time left) on stderr once it has taken half a second.
    static func weightProgress() -> ProgressReport { ProgressLine.reporter("loading weights: ") }

    /// `source` reporting each tensor `Backend.prepare` reads for `plan` (see `weightProgress`).
    static func loading(_ source: any WeightSource, _ plan: Plan) -> any WeightSource {
        ReportingWeightSource(source, plan: plan, report: weightProgress())
    }

    /// Writes to stdout unbuffered (streamed text shows as it is produced); do not mix with print.
    static func output(_ text: String) { writeAll(text, to: 1) }

    /// The largest input file read whole (--jsonl).
    static let maxInputBytes = 1 << 30

    /// Reads a whole regular file of at most `maxInputBytes`, with an error naming it.
    static func readFile(_ path: String) throws -> [UInt8] {
        do {
            return try BoundedFile.contents(path, limit: maxInputBytes)
        } catch {
            throw CommandError("\(path): cannot read: \(error.reason)")
        }
    }

    static func writeFile(_ path: String, _ text: String) throws {
        guard let f = fopen(path, "wb") else {
            throw CommandError("\(path): cannot write: \(String(cString: strerror(errno)))")
        }
        defer { fclose(f) }
        var t = text
        let ok = t.withUTF8 { fwrite($0.baseAddress, 1, $0.count, f) == $0.count }
        if !ok { throw CommandError("\(path): write failed") }
    }

    /// JSON Lines input (`JSONLines`): errors name the file and line.
    static func readJSONLines(_ path: String) throws -> [(line: Int, value: JSONValue)] {
        do {
            return try JSONLines.parse(try readFile(path))
        } catch let error as JSONLines.Failure {
            throw CommandError("\(path):\(error.line): invalid JSON at byte \(error.offset): \(error.reason)")
        }
    }
}
