import FlintCPU
import FlintCheckpoint
import FlintCore
@testable import FlintModels
import FlintTestSupport
import Synchronization
import Testing

/// Weight loads report progress tensor by tensor, ending at done == total, and the total is what
/// the backend really reads (counted separately, beneath the reporting wrapper).
@Suite("Weight load progress")
struct WeightLoadProgressTests {
    /// Every report, in order.
    final class Reports: Sendable {
        let seen = Mutex<[(done: Int, total: Int, item: String)]>([])
        var report: ProgressReport { { done, total, item in self.seen.withLock { $0.append((done, total, item)) } } }
        var all: [(done: Int, total: Int, item: String)] { seen.withLock { $0 } }
    }

    /// Counts the tensors the backend takes from the source.
    final class CountingSource: WeightSource {
        let base: any WeightSource
        let names = Mutex<[String]>([])
        init(_ base: any WeightSource) { self.base = base }
        func tensor(_ name: String, shape: Shape) throws(FlintError) -> HostTensor {
            names.withLock { $0.append(name) }
            return try base.tensor(name, shape: shape)
        }
    }

    static func expectOneReportPerTensorEndingAtTotal(_ reports: [(done: Int, total: Int, item: String)], read: [String],
                                                     sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(!read.isEmpty, sourceLocation: sourceLocation)
        #expect(reports.map { $0.done } == Array(1...read.count), sourceLocation: sourceLocation)
        #expect(reports.allSatisfy { $0.total == read.count }, "total is the tensors prepare reads", sourceLocation: sourceLocation)
        #expect(reports.map { $0.item } == read, sourceLocation: sourceLocation)
        #expect(reports.last.map { $0.done == $0.total } == true, sourceLocation: sourceLocation)
    }

    @Test func aCheckpointLoadOnTheCPUEndsAtDoneEqualsTotal() throws {
        let loaded = try ModelFolder.encoder(TestPaths.fixture("bert/tiny-bert-model"))
        let plan = try loaded.plan(outputs: [.sentenceEmbedding], maxTokens: 32, maxSequences: 2, normalize: false)
        for precision in [CPUPrecision.f32, .int8] {
            let reports = Reports(), counting = CountingSource(loaded.weights)
            let source = ReportingWeightSource(counting, plan: plan, report: reports.report)
            _ = try CPUBackend(threads: 1, precision: precision).prepare(plan, weights: source)
            Self.expectOneReportPerTensorEndingAtTotal(reports.all, read: counting.names.withLock { $0 })
            #expect(source.supplied == source.total)
            #expect(ReportingWeightSource.tensorSizes(plan).count == source.total)
        }
    }

    @Test func aGPT2WithFusedAndTiedWeightsCountsEveryPart() throws {
        // GPT-2's plan fuses and ties weights: the count is of checkpoint tensors read, not of plan weights.
        let config = GPT2Config(vocabSize: 64, nPositions: 16, nEmbd: 8, nLayer: 2, nHead: 2)
        let plan = try GPT2(config: config, hasTensor: { _ in false })
            .plan(outputs: [.nextToken], maxTokens: 16, maxSequences: 2, maxContext: 16)
        let reports = Reports(), counting = CountingSource(RandomWeights(seed: 1))
        _ = try CPUBackend(threads: 1).prepare(plan, weights: ReportingWeightSource(counting, plan: plan, report: reports.report))
        Self.expectOneReportPerTensorEndingAtTotal(reports.all, read: counting.names.withLock { $0 })
    }

    @Test func theEncoderPipelineReportsEachTensorWhenAsked() throws {
        let reports = Reports()
        _ = try EncoderPipeline(folder: TestPaths.fixture("qa/tiny-bert-qa"), backend: CPUBackend(threads: 1),
                                outputs: [.spanLogits], maxBatchTokens: 32, maxSequences: 2, weightProgress: reports.report)
        let all = reports.all
        #expect(all.count > 10 && all.last.map { $0.done == $0.total } == true,
                "\(all.count) reports, last \(String(describing: all.last))")
    }
}
