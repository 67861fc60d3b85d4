import Testing

@testable import FlintCore

@Suite("Finite checks")
struct FiniteCheckTests {
    @Test func allFiniteSeesEveryNonFiniteValueAnywhere() {
        let finite: [Float] = [0, -0, 1, -1, .greatestFiniteMagnitude, -.greatestFiniteMagnitude, .leastNonzeroMagnitude, 1e-40]
        #expect(finite.withUnsafeBufferPointer { FiniteCheck.allFinite($0) })
        #expect([Float]().withUnsafeBufferPointer { FiniteCheck.allFinite($0) })
        for bad in [Float.nan, .infinity, -.infinity, .signalingNaN, Float(bitPattern: 0xFFFF_FFFF)] {
            for position in [0, 7, 100, 1022] {
                var values = [Float](repeating: 0.5, count: 1023)
                values[position] = bad
                #expect(!values.withUnsafeBufferPointer { FiniteCheck.allFinite($0) }, "\(bad) at \(position)")
                #expect(values.withUnsafeBufferPointer { FiniteCheck.nonFiniteCount($0) } == 1)
            }
        }
    }

    /// A plan of two steps; the error names the output and the step that wrote it last.
    @Test func requireFiniteNamesTheOutputAndItsStep() throws {
        var plan = Plan(maxTokens: 4, maxSequences: 1)
        let x = plan.buffer("hidden", columns: 2)
        let e = plan.buffer("embedding", columns: 2, rows: .sequences)
        plan.append(.embed(word: plan.weight("wte", [10, 2], .table), position: plan.weight("wpe", [4, 2], .table),
                           tokenType: nil, gamma: nil, beta: nil, eps: 0, out: x))
        plan.append(.pool(input: x, mode: .mean, out: e))
        plan.output("sentence_embedding", e)
        #expect(plan.resultBuffers == [e])
        #expect(plan.lastWriter(of: e) == 1 && plan.lastWriter(of: x) == 0)
        let error = plan.nonFiniteError(buffer: e, count: 1, of: 2)
        #expect(error == .nonFinite(buffer: "output \"sentence_embedding\" (1 of 2 values)",
                                    step: "step 2 of 2 (mean pooling -> \"embedding\")"))
        #expect(plan.describe(step: 0) == "step 1 of 2 (embedding wte -> \"hidden\")")
    }
}
