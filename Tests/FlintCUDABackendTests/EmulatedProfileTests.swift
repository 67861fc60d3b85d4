import FlintCPU
import FlintCUDA
import FlintCUDAEmulation
import FlintCore
import FlintModels
import FlintTestSupport
import Synchronization
import Testing

/// `flint profile` on the CUDA backend: with a step timer every forward runs step by step (no
/// graph capture or replay), one host span per step, with the graph run's results.
@Suite("CUDA step timer under the emulated driver")
struct EmulatedProfileTests {
    @Test func timedForwardsRunStepByStepWithoutTheGraph() throws {
        let loaded = try ModelFolder.encoder(TestPaths.fixture("bert/tiny-bert-model"))
        let plan = try loaded.plan(outputs: [.lastHiddenState], maxTokens: 16, maxSequences: 2)
        let driver = EmulatedCUDADriver()
        let prepared = try CUDABackend(driver: driver, dtype: .f32).prepare(plan, weights: loaded.weights)
        let timed = try #require(prepared as? any StepTimedPlan)
        let batch = TokenBatch(sequences: [[1, 5, 9, 2], [3, 4, 7, 8, 10, 2]])
        let graphRun = try prepared.run(batch)
        _ = try prepared.run(batch)
        #expect(driver.graphCount == 1 && driver.replayCount == 1)
        let spans = Mutex<[Int]>([])
        timed.stepTimer = { i, start, end in
            precondition(start <= end)
            spans.withLock { $0.append(i) }
        }
        let profiled = try prepared.run(batch)
        timed.stepTimer = nil
        #expect(spans.withLock { $0 } == Array(plan.steps.indices))
        #expect(driver.replayCount == 1, "a timed forward does not replay the graph")
        #expect(profiled == graphRun)
        _ = try prepared.run(batch)
        #expect(driver.replayCount == 2, "without the timer the graph is back")
    }
}
