/// JSON Lines (`--jsonl` inputs): one JSON value per line; blank lines (spaces, tabs, a CR) are
/// skipped. Kept apart from the CLI so it can be fuzzed and tested on bytes.
public enum JSONLines {
    public struct Failure: Error, Equatable, Sendable {
        /// 1-based line number.
        public var line: Int
        /// Byte offset within the line.
        public var offset: Int
        public var reason: String
    }

    /// Every non-blank line parsed, with its 1-based line number.
    public static func parse(_ bytes: [UInt8]) throws(Failure) -> [(line: Int, value: JSONValue)] {
        var out: [(line: Int, value: JSONValue)] = []
        var lineNumber = 0
        for line in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }) { continue }
            do {
                out.append((lineNumber, try JSONParser.parse(Array(line))))
            } catch {
                throw Failure(line: lineNumber, offset: error.offset, reason: error.reason)
            }
        }
        return out
    }
}
