import Testing
import FlintTokenizers

/// Asserts shared by the test targets. They take the caller's `sourceLocation` so a failure
/// points at the test, not at this file.
public enum Expect {
    /// Runs `body` and checks it throws a `TokenizerError` whose message contains every fragment.
    public static func tokenizerError(_ fragments: [String], sourceLocation: SourceLocation = #_sourceLocation,
                                      _ body: () throws -> Void)
    {
        do {
            try body()
            Issue.record("expected a TokenizerError mentioning \(fragments), but nothing was thrown", sourceLocation: sourceLocation)
        } catch let error as TokenizerError {
            let message = error.description
            for f in fragments where !message.contains(f) {
                Issue.record("error \"\(message)\" does not mention \"\(f)\"", sourceLocation: sourceLocation)
            }
        } catch {
            Issue.record("expected a TokenizerError, got \(error)", sourceLocation: sourceLocation)
        }
    }

    /// Compares two integer sequences and reports the first difference with context.
    public static func sameSequence<T: Equatable>(_ actual: [T], _ expected: [T], _ what: String, context: String,
                                                  sourceLocation: SourceLocation = #_sourceLocation) -> Bool
    {
        if actual == expected { return true }
        let i = (0..<min(actual.count, expected.count)).first { actual[$0] != expected[$0] } ?? min(actual.count, expected.count)
        Issue.record("""
            \(what) differ at index \(i) (\(actual.count) vs \(expected.count) items) for \(context)
              actual:   \(Array(actual[max(0, i - 3)..<min(actual.count, i + 4)]))
              expected: \(Array(expected[max(0, i - 3)..<min(expected.count, i + 4)]))
            """, sourceLocation: sourceLocation)
        return false
    }
}
