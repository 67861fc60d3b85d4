import FlintCPU
import FlintCore
import FlintModels
import FlintTestSupport
import Synchronization
import Testing

/// The opt-in step timer of `flint profile` on the CPU backend: one span per step, in plan order,
/// and the same results as without it.
@Suite("CPU step timer")
struct StepTimerTests {
    static let backend = CPUBackend(threads: 2)

    /// Runs `batch` with and without a timer; returns the spans (step, start, end) of the timed run.
    static func timedRun(_ prepared: any PreparedPlan, _ batch: TokenBatch)
        throws -> (spans: [(Int, ContinuousClock.Instant, ContinuousClock.Instant)], same: Bool)
    {
        let timed = try #require(prepared as? any StepTimedPlan)
        let plain = try prepared.run(batch)
        let spans = Mutex<[(Int, ContinuousClock.Instant, ContinuousClock.Instant)]>([])
        timed.stepTimer = { i, s, e in spans.withLock { $0.append((i, s, e)) } }
        let profiled = try prepared.run(batch)
        timed.stepTimer = nil
        let count = spans.withLock { $0.count }
        _ = try prepared.run(batch)
        #expect(spans.withLock { $0.count } == count, "a cleared timer is not called")
        return (spans.withLock { $0 }, plain == profiled)
    }

    static func checkSpans(_ spans: [(Int, ContinuousClock.Instant, ContinuousClock.Instant)], steps: Int) {
        #expect(spans.map(\.0) == Array(0..<steps), "one span per step, in plan order")
        for (a, b) in zip(spans, spans.dropFirst()) { #expect(a.2 <= b.1, "steps \(a.0) and \(b.0) overlap") }
        #expect(spans.allSatisfy { $0.1 <= $0.2 })
    }

    @Test func encoderStepsAreTimedInOrderWithoutChangingResults() throws {
        let loaded = try ModelFolder.encoder(TestPaths.fixture("bert/tiny-bert-model"))
        let plan = try loaded.plan(outputs: [.lastHiddenState], maxTokens: 16, maxSequences: 2)
        let prepared = try Self.backend.prepare(plan, weights: loaded.weights)
        let (spans, same) = try Self.timedRun(prepared, TokenBatch(sequences: [[1, 5, 9, 2], [3, 4, 7, 8, 10, 2]]))
        Self.checkSpans(spans, steps: plan.steps.count)
        #expect(same)
    }

    @Test func decoderPrefillAndDecodeStepsAreTimed() throws {
        let loaded = try ModelFolder.decoder(TestPaths.fixture("gpt2/tiny-gpt2"), tokenizerFallback: nil)
        let plan = try loaded.model.plan(outputs: [.nextToken], maxTokens: 16, maxSequences: 2, maxContext: 16)
        let prepared = try Self.backend.prepare(plan, weights: loaded.weights)
        let (prefill, samePrefill) = try Self.timedRun(prepared, TokenBatch(sequences: [[1, 2, 3], [4, 5]]))
        Self.checkSpans(prefill, steps: plan.steps.count)
        #expect(samePrefill)
        let (decode, sameDecode) = try Self.timedRun(prepared, TokenBatch(sequences: [[6], [7]], positionOffsets: [3, 2]))
        Self.checkSpans(decode, steps: plan.steps.count)
        #expect(sameDecode)
    }
}
