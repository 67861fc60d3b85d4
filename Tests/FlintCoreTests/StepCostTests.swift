import FlintCore
import Testing

/// The per-step work `flint profile` divides time by, derived from the plan's shapes.
@Suite("Step costs and labels")
struct StepCostTests {
    /// embed -> qkv linear -> attention -> output linear -> layer norm -> pooling, hidden 8, 2 heads.
    static func plan(causal: Bool = false) -> Plan {
        var p = Plan(maxTokens: 16, maxSequences: 2)
        let word = p.weight("embeddings.word_embeddings.weight", [50, 8], .table)
        let position = p.weight("embeddings.position_embeddings.weight", [16, 8], .table)
        let qkvW = p.weight("encoder.layer.3.attention.qkv.weight", [24, 8], .linear)
        let qkvB = p.weight("encoder.layer.3.attention.qkv.bias", [24], .vector)
        let outW = p.weight("encoder.layer.3.attention.output.dense.weight", [8, 8], .linear)
        let gamma = p.weight("encoder.layer.3.output.LayerNorm.weight", [8], .vector)
        let beta = p.weight("encoder.layer.3.output.LayerNorm.bias", [8], .vector)
        let x = p.buffer("x", columns: 8), qkv = p.buffer("qkv", columns: 24), a = p.buffer("a", columns: 8)
        let o = p.buffer("o", columns: 8), pooled = p.buffer("pooled", columns: 8, rows: .sequences)
        p.append(.embed(word: word, position: position, tokenType: nil, gamma: nil, beta: nil, eps: 0, out: x))
        p.append(.linear(input: x, weight: qkvW, bias: qkvB, epilogue: .none, out: qkv))
        p.append(.attention(qkv: qkv, heads: 2, headDim: 4, causal: causal, out: a))
        p.append(.linear(input: a, weight: outW, bias: nil, epilogue: .gelu, out: o))
        p.append(.layerNorm(input: o, residual: x, gamma: gamma, beta: beta, eps: 1e-5, out: o))
        p.append(.pool(input: o, mode: .mean, out: pooled))
        return p
    }

    static let batch = TokenBatch(sequences: [[1, 2, 3], [4, 5, 6, 7, 8]])  // 8 tokens, 2 sequences

    @Test func linearCountsTheGEMMAndEveryOperandOnce() {
        let c = Self.plan().cost(ofStep: 1, batch: Self.batch, elementBytes: 4, weightBytes: 2)
        #expect(c.flops == 2 * 8 * 24 * 8)
        // input [8, 8] f32, weight [24, 8] at 2 bytes, bias 24 at 2 bytes, output [8, 24] f32
        #expect(c.bytes == Double(8 * 8 * 4 + 24 * 8 * 2 + 24 * 2 + 8 * 24 * 4))
        let noBias = Self.plan().cost(ofStep: 3, batch: Self.batch)
        #expect(noBias.bytes == Double(8 * 8 * 4 + 8 * 8 * 4 + 8 * 8 * 4))
    }

    @Test func attentionFollowsEachSequenceLengthAndCausality() {
        let full = Self.plan().cost(ofStep: 2, batch: Self.batch)
        #expect(full.flops == Double(4 * (3 * 3 + 5 * 5) * 8))
        let causal = Self.plan(causal: true).cost(ofStep: 2, batch: Self.batch)
        #expect(causal.flops == Double(2 * (3 * 4 + 5 * 6) * 8))
        #expect(full.bytes == Double(8 * 24 * 4 + 8 * 8 * 4))
        // The forward's attention FLOPs agree with Plan.flops for the non-causal case.
        let plan = Self.plan()
        let linear = (0..<plan.steps.count).map { plan.cost(ofStep: $0, batch: Self.batch) }
        #expect(linear[1].flops + linear[2].flops + linear[3].flops == plan.flops(lengths: [3, 5]))
    }

    @Test func cachedAttentionReadsTheContextOfEveryToken() {
        var p = Plan(maxTokens: 4, maxSequences: 2, maxContext: 32)
        let qkv = p.buffer("qkv", columns: 24), k = p.buffer("k", columns: 8, rows: .cache)
        let v = p.buffer("v", columns: 8, rows: .cache), out = p.buffer("out", columns: 8)
        p.append(.cachedAttention(qkv: qkv, keys: k, values: v, heads: 2, headDim: 4, scale: 0.5, out: out))
        // Two decode tokens at positions 10 and 20: contexts of 11 and 21.
        let step = TokenBatch(sequences: [[1], [2]], positionOffsets: [10, 20])
        let c = p.cost(ofStep: 0, batch: step, elementBytes: 2)
        #expect(c.flops == Double(4 * (11 + 21) * 8))
        #expect(c.bytes == Double(2 * 24 * 2 + 2 * 16 * 2 + 2 * (11 + 21) * 8 * 2 + 2 * 8 * 2))
        #expect(c.isMemoryBound(balance: 10))
    }

    @Test func labelsNameTheWeightWithoutItsLayerAndCarryTheLayer() {
        let labels = Self.plan().stepLabels()
        #expect(
            labels.map(\.name) == [
                "embed embeddings.word_embeddings", "linear attention.qkv", "attention",
                "linear attention.output.dense", "layer_norm output.LayerNorm", "mean_pool",
            ])
        #expect(labels.map(\.layer) == [nil, 3, 3, 3, 3, 3])
    }

    @Test func roughCostsOfTheOtherSteps() {
        let p = Self.plan()
        let ln = p.cost(ofStep: 4, batch: Self.batch)
        // input, residual, output; gamma and beta
        #expect(ln.bytes == Double(3 * 8 * 8 * 4 + 2 * 8 * 4))
        let pool = p.cost(ofStep: 5, batch: Self.batch)
        #expect(pool.bytes == Double(8 * 8 * 4 + 2 * 8 * 4))
        #expect(pool.intensity > 0 && pool.isMemoryBound(balance: 1))
    }
}
