import FlintBackendChecks
import FlintCore
import Testing

/// ModelChecks.compareGreedy: a divergence of greedy ids is accepted (and reported) only where the
/// CPU's logits nearly tie between the two picks.
@Suite("Greedy ids: near-ties against real divergences")
struct GreedyNearTieTests {
    static let prompts: [[Int32]] = [[1, 2, 3], [4, 5]]

    @Test func identicalIdsNeverAskForLogits() throws {
        let ids: [[Int32]] = [[7, 8, 9], [3, 3]]
        let result = try ModelChecks.compareGreedy(device: ids, cpu: ids, prompts: Self.prompts, margin: 1e-3) { _ throws(FlintError) in
            Issue.record("logits asked for without a divergence")
            return []
        }
        #expect(result.passed && result.nearTies.isEmpty && result.failures.isEmpty)
    }

    /// Logits over 6 ids with the CPU's best at id 2 and the given value at id 4.
    static func logits(second: Float) -> [Float] { [-3, 0.5, 10, 1, second, -8] }

    @Test func aNearTieIsAcceptedAndReported() throws {
        var contexts: [[Int32]] = []
        let result = try ModelChecks.compareGreedy(device: [[7, 4, 0], [3, 3]], cpu: [[7, 2, 2], [3, 3]], prompts: Self.prompts,
                                                   margin: 1e-3) { (context) throws(FlintError) in
            contexts.append(context)
            return Self.logits(second: 9.995)  // 5e-3 below the top: 5e-4 of max |logit| 10
        }
        #expect(result.passed)
        #expect(result.failures.isEmpty)
        let tie = try #require(result.nearTies.first)
        #expect(result.nearTies.count == 1 && tie.prompt == 0 && tie.step == 1 && tie.cpuId == 2 && tie.deviceId == 4)
        #expect(abs(tie.gap - 5e-4) < 1e-6)
        #expect(contexts == [[1, 2, 3, 7]], "the CPU's logits after the prompt and the agreed tokens")
        #expect(result.nearTieNote.contains("1 near-tie accepted (prompt 0 token 1"))
    }

    @Test func aClearGapFails() throws {
        let result = try ModelChecks.compareGreedy(device: [[7, 8, 9], [3, 4]], cpu: [[7, 8, 9], [3, 2]], prompts: Self.prompts,
                                                   margin: 1e-3) { _ throws(FlintError) in Self.logits(second: 9) }
        #expect(!result.passed)
        let failure = try #require(result.failures.first)
        #expect(failure.prompt == 1 && failure.step == 1 && abs(failure.gap - 0.1) < 1e-6)
        #expect(result.nearTies.isEmpty)
    }

    /// The margin decides: the same logits pass with a wider margin (fp16's), fail with fp32's.
    @Test func theMarginIsPerDType() throws {
        let logits = Self.logits(second: 9.9)  // gap 1e-2 of max |logit|
        func compare(_ dtype: DType) throws -> Bool {
            try ModelChecks.compareGreedy(device: [[4]], cpu: [[2]], prompts: [[1]], margin: ModelChecks.nearTieMargin(dtype)) {
                _ throws(FlintError) in logits
            }.passed
        }
        #expect(try compare(.f16))
        #expect(try !compare(.f32))
    }

    /// A sequence that stops early, an id outside the logits or NaN logits are never ties.
    @Test func lengthsAndBadLogitsFail() throws {
        let shorter = try ModelChecks.compareGreedy(device: [[7]], cpu: [[7, 8]], prompts: [[1]], margin: 1) { _ throws(FlintError) in
            [0, 0]
        }
        #expect(!shorter.passed)
        #expect(ModelChecks.nearTieGap(cpuLogits: [1, 2], deviceId: 5) == .infinity)
        #expect(ModelChecks.nearTieGap(cpuLogits: [.nan, .nan], deviceId: 0) == .infinity)
        #expect(ModelChecks.nearTieGap(cpuLogits: [1, 2], deviceId: 1) == 0)
    }
}
