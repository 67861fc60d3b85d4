import FlintBackendChecks
import FlintCPU
import FlintCUDA
import FlintCUDAEmulation
import FlintCheckpoint
import FlintCore
import FlintModels
import FlintTestSupport
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// What a first GPU session would otherwise find out the hard way (issue 9): cuBLASLt's algorithm
/// choice outside capture, one-row GEMMs, eager mode, attention's grid, library discovery, and what
/// a released plan leaves behind. The emulated driver refuses what a GPU would refuse.
@Suite("CUDA backend: ready for a real GPU")
struct CUDAReadinessTests {
    static let cpu = CPUBackend(threads: 1)

    static func tinyBert() throws -> (Plan, any WeightSource) {
        let loaded = try ModelFolder.encoder(TestPaths.fixture("bert/tiny-bert-model"))
        return (try loaded.plan(outputs: [.lastHiddenState, .sentenceEmbedding], maxTokens: 96, maxSequences: 8, normalize: true),
                loaded.weights)
    }

    static let batch = TokenBatch(sequences: [[2, 17, 45, 9, 3], [2, 8, 8, 71, 30, 12, 55, 3], [2, 3]])

    @Test func gemmAlgorithmsAreChosenBeforeCaptureOncePerShape() throws {
        let (plan, checkpoint) = try Self.tinyBert()
        let driver = EmulatedCUDADriver()
        let gpu = try CUDABackend(driver: driver).prepare(plan, weights: checkpoint)
        // The emulated cuBLASLt fails a heuristic query inside a capture, as recent cuBLASLt does:
        // the run getting through means every query came before it.
        _ = try gpu.run(Self.batch)
        let queries = driver.heuristicQueryCount
        #expect(queries >= 4 && queries <= 8, "QKV, attention output, FFN in, FFN out (+ their plain fallbacks): \(queries)")
        #expect(driver.graphCount == 1)
        _ = try gpu.run(TokenBatch(sequences: [[2, 9, 3], [2, 7, 7, 7, 3], [2, 5, 3]]))
        #expect(driver.heuristicQueryCount == queries, "the same bucket asks cuBLASLt nothing new")
        #expect(driver.replayCount == 1)

        let g = GEMMDescriptor(m: 2, n: 3, k: 4, a: 0, lda: 4, w: 0, ldw: 4, c: 0, ldc: 3, dtype: .f32)
        try driver.beginCapture()
        #expect(throws: FlintError.self, "a heuristic query inside a capture") { _ = try driver.prepareGEMM(g) }
        _ = try driver.endCapture()
    }

    @Test func kernelLoadsReportProgressOncePerDriver() throws {
        let (plan, checkpoint) = try Self.tinyBert()
        final class Reports: Sendable { let seen = Mutex<[(done: Int, total: Int, item: String)]>([]) }
        let reports = Reports()
        let backend = try CUDABackend(driver: EmulatedCUDADriver(),
                                      compileProgress: { d, t, i in reports.seen.withLock { $0.append((d, t, i)) } })
        _ = try backend.prepare(plan, weights: checkpoint)
        let first = reports.seen.withLock { $0 }
        let n = KernelSources.all.count
        #expect(first.map { $0.done } == Array(0...n) && first.allSatisfy { $0.total == n }, "0 then each of \(n) kernel files")
        #expect(first.dropFirst().map { $0.item } == KernelSources.all.map { $0.name + ".cu" })
        _ = try backend.prepare(plan, weights: checkpoint)
        #expect(reports.seen.withLock { $0.count } == first.count, "a second plan on the driver loads nothing, so reports nothing")
    }

    @Test func aGEMMWithoutAChosenAlgorithmIsRefused() throws {
        let driver = EmulatedCUDADriver()
        let bytes = 64 * 4
        let a = try driver.allocate(bytes: bytes, what: "a"), w = try driver.allocate(bytes: bytes, what: "w")
        let c = try driver.allocate(bytes: bytes, what: "c")
        let g = GEMMDescriptor(m: 4, n: 4, k: 4, a: a, lda: 4, w: w, ldw: 4, c: c, ldc: 4, dtype: .f32)
        let error = #expect(throws: FlintError.self) { try driver.gemm(g) }
        #expect("\(error.map { "\($0)" } ?? "")".contains("4x4x4 f32"))
        let support = try driver.prepareGEMM(g)
        #expect(support == .supported)
        try driver.gemm(g)
    }

    /// One-row GEMMs never ask for cuBLASLt's epilogue; a refusal elsewhere is said once per shape.
    @Test func refusedEpiloguesAreSaidOnceAndOneRowGEMMsAvoidThem() throws {
        let c = try #require(OpChecks.cases().first { $0.name.hasPrefix("linear 1x96x64 on sequence rows geluTanh + bias") })
        let quiet = try CUDABackend(driver: EmulatedCUDADriver(refusesOneRowEpilogues: true))
        #expect(try c.maxError(on: quiet, reference: Self.cpu) <= OpChecks.tolerance(.f32))
        let oneRow = quiet.notices
        #expect(oneRow.isEmpty, "m = 1 takes the plain GEMM without asking: \(oneRow)")

        let refusing = try CUDABackend(driver: EmulatedCUDADriver(refusesGEMMEpilogues: true))
        #expect(try c.maxError(on: refusing, reference: Self.cpu) <= OpChecks.tolerance(.f32))
        let prepared = try refusing.prepare(c.plan, weights: c.weights)
        for b in c.batches + c.batches { _ = try prepared.run(b) }
        let notices = refusing.notices
        #expect(notices.count == 1, "the 4-row GEMM's refusal, said once: \(notices)")
        let notice = notices.first ?? ""
        #expect(notice.contains("4x96x64 f32 bias+gelu_tanh") && notice.contains("CUBLAS_STATUS_NOT_SUPPORTED"), "\(notice)")
    }

    @Test func eagerModeRunsWithoutGraphsAndMatches() throws {
        let (plan, checkpoint) = try Self.tinyBert()
        let driver = EmulatedCUDADriver()
        let backend = try CUDABackend(driver: driver, graphs: false)
        #expect(!backend.usesGraphs && backend.deviceDescription.contains("graphs: off"))
        let eager = try backend.prepare(plan, weights: checkpoint)
        let want = try Self.cpu.prepare(plan, weights: checkpoint).run(Self.batch)
        for _ in 0..<2 {
            let got = try eager.run(Self.batch)
            for (key, w) in want { #expect(maxRelativeError(try #require(got[key]).data, w.data) <= 1e-4, "\(key)") }
        }
        #expect(driver.graphCount == 0 && driver.replayCount == 0)
    }

    /// A failing kernel is named with its plan step, in eager mode and in a bucket's first (eager) run.
    @Test(arguments: [false, true])
    func aFailureNamesItsStepAndKernel(_ graphs: Bool) throws {
        let (plan, checkpoint) = try Self.tinyBert()
        let backend = try CUDABackend(driver: EmulatedCUDADriver(failingKernel: "layernorm_f32"), graphs: graphs)
        let gpu = try backend.prepare(plan, weights: checkpoint)
        let error = #expect(throws: FlintError.self) { try gpu.run(Self.batch) }
        let message = error.map { "\($0)" } ?? ""
        #expect(message.hasPrefix("step ") && message.contains("(layer norm ") && message.contains("layernorm_f32"), "\(message)")
    }

    /// Attention launches one block per (sequence, 16 queries) the bucket can hold, not a
    /// longest-sequence grid for every sequence.
    @Test func attentionLaunchesAboutAsManyBlocksAsDoWork() throws {
        let (plan, checkpoint) = try Self.tinyBert()
        let driver = EmulatedCUDADriver()
        let gpu = try CUDABackend(driver: driver).prepare(plan, weights: checkpoint)
        let lengths = [1, 1, 1, 1, 1, 1, 1, 60]
        let batch = TokenBatch(sequences: lengths.enumerated().map { s, n in (0..<n).map { Int32(($0 * 7 + s) % 90 + 2) } })
        let got = try gpu.run(batch), want = try Self.cpu.prepare(plan, weights: checkpoint).run(batch)
        #expect(maxRelativeError(try #require(got["last_hidden_state"]).data, try #require(want["last_hidden_state"]).data) <= 1e-4)
        let heads = 4, layers = 2
        let working = lengths.reduce(0) { $0 + ($1 + 15) / 16 }  // 11
        let bucketTokens = 80, bucketSequences = 8
        let launched = driver.launchedBlocks("attention_f32")
        #expect(launched == (bucketTokens / 16 + bucketSequences) * heads * layers, "\(launched)")
        #expect(launched <= (working + bucketSequences) * heads * layers)
        #expect(launched < (bucketTokens / 16) * bucketSequences * heads * layers / 3, "the old grid launched \(40 * heads * layers)")
    }

    @Test func librariesAreLookedForInOrder() throws {
        let root = TestPaths.temporaryFolder()
        func folder(_ path: String) -> String {
            var partial = ""
            for part in path.split(separator: "/") {
                partial += "/" + part
                mkdir(partial, 0o755)
            }
            return path
        }
        let toolkit = folder(root + "/toolkit/lib"), home = folder(root + "/cudahome/lib64")
        let venv = folder(root + "/venv/lib/python3.11/site-packages/nvidia/cu13/lib")
        _ = folder(root + "/venv/lib/python3.11/site-packages/nvidia/cu13/include")
        let onPath = folder(root + "/py/lib/python3.12/site-packages/nvidia/cublas/lib")
        _ = folder(root + "/py/bin")
        TestPaths.write("#!/bin/sh\n", to: root + "/py/bin/python3")
        chmod(root + "/py/bin/python3", 0o755)
        TestPaths.write("", to: onPath + "/libcublasLt.so.12")
        let env = ["FLINT_CUDA_PATH": root + "/toolkit", "CUDA_HOME": root + "/cudahome", "VIRTUAL_ENV": root + "/venv",
                   "PATH": "/nonexistent:" + root + "/py/bin", "HOME": root]
        let found = CUDALocations.candidates(environment: env).filter { $0.lib.hasPrefix(root) }
        #expect(found.map(\.lib) == [toolkit, home, venv, onPath])
        #expect(found[2].include == root + "/venv/lib/python3.11/site-packages/nvidia/cu13/include")
        let report = CUDALocations.report(environment: env)
        #expect(report.first { $0.what == "cuBLASLt" }?.found == onPath + "/libcublasLt.so.12")
    }

    /// Modules load once per driver; a released plan destroys its graphs and events and frees its memory.
    @Test func releasedPlansLeaveNothingBehind() throws {
        let (plan, checkpoint) = try Self.tinyBert()
        let driver = EmulatedCUDADriver()
        do {
            let backend = try CUDABackend(driver: driver)
            let first = try backend.prepare(plan, weights: checkpoint)
            _ = try first.run(Self.batch)
            _ = try first.run(TokenBatch(sequences: [[2, 3]]))
            let second = try CUDABackend(driver: driver, dtype: .f16).prepare(plan, weights: checkpoint)
            _ = try second.run(Self.batch)
            #expect(driver.moduleLoadCount == KernelSources.all.count)
            #expect(driver.liveGraphCount == 3 && driver.liveEventCount == 4)
        }
        #expect(driver.liveGraphCount == 0 && driver.liveEventCount == 0)
        #expect(driver.liveAllocationBytes == 0)
    }

    @Test func kernelsFromANewerNVRTCThanTheDriverAreRefused() throws {
        guard let nvrtc = try? NVRTC() else {
            print("skipped: NVRTC not found (scripts/test fetches it; set FLINT_CUDA_PATH)")
            return
        }
        let compiler = KernelCompiler(nvrtc: nvrtc, cacheFolder: nil)
        let error = #expect(throws: FlintError.self) {
            _ = try CUDABackend(driver: EmulatedCUDADriver(cudaVersion: 12040), compiler: compiler)
        }
        #expect("\(error.map { "\($0)" } ?? "")".contains("newer CUDA than this driver supports (CUDA 12.4)"))
        let supported = nvrtc.version.major * 1000 + nvrtc.version.minor * 10
        _ = try CUDABackend(driver: EmulatedCUDADriver(cudaVersion: supported), compiler: compiler)
    }

    @Test func theGEMMProbeRunsEveryTypeAndEpilogue() throws {
        let shapes = [GEMMProbe.Shape(m: 1, n: 500, k: 76), GEMMProbe.Shape(m: 16, n: 2, k: 32), GEMMProbe.Shape(m: 16, n: 99, k: 32)]
        let rows = GEMMProbe.run(driver: EmulatedCUDADriver(), shapes: shapes)
        let failed = rows.filter { !$0.ok }
        #expect(failed.isEmpty, "\(failed)")
        // m = 1: only the plain GEMM runs (eager + graph); 3 epilogues refused. Others: 4 x 2 rows.
        #expect(rows.count == 3 * ((2 + 3) + 8 + 8))
        #expect(rows.filter { $0.shape.m == 1 && $0.epilogue != .plain }.allSatisfy { $0.status.hasPrefix("refused (CUBLAS_STATUS_") })
        #expect(rows.filter { $0.status == "ok" }.allSatisfy { ($0.maxError ?? .infinity) <= $0.tolerance })
        #expect(GEMMProbe.Shape("1x50257x768") == GEMMProbe.Shape(m: 1, n: 50257, k: 768) && GEMMProbe.Shape("1x2") == nil)
    }
}
