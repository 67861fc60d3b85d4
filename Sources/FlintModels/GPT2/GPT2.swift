import FlintCheckpoint
import FlintCore

/// GPT-2 (HF `GPT2LMHeadModel` / `GPT2Model`) described as a `Plan` with a KV cache.
///
/// Weight names are the checkpoint keys (`transformer.h.3.attn.c_attn.weight`), with the
/// `transformer.` prefix when the checkpoint has it. GPT-2's linear layers are `Conv1D`s, stored
/// `[in, out]`; the plan loads them transposed. The LM head is tied to the token embeddings unless
/// the checkpoint saved its own `lm_head.weight`. The plan per layer (pre-LN):
///   qkv = n · Wqkvᵀ + b                       c_attn: one GEMM
///   ctx = cachedAttention(qkv)                K/V appended to the slot's cache, causal over it
///   a   = ctx · Woᵀ + bo                      c_proj
///   x   = x + a;  n = LN2(x)                  one fused pass writes both
///   h   = gelu_new(n · W1ᵀ + b1)              c_fc, GELU in the epilogue
///   m   = h · W2ᵀ + b2                        mlp.c_proj
///   x   = x + m;  n = LN1'(x)                 the next layer's ln_1 (ln_f after the last layer)
/// One plan serves the prompt (prefill: many tokens per sequence) and every decode step (one token
/// per sequence): the batch's positions and slots say where each token goes in the cache.
public struct GPT2: Sendable {
    public let config: GPT2Config
    /// "transformer." or "": how this checkpoint names the decoder's weights.
    public let prefix: String
    /// Key of the LM head matrix: `lm_head.weight` when saved untied, else the token embeddings.
    public let lmHeadKey: String

    /// Results a plan can produce.
    public enum Output: String, Sendable, CaseIterable {
        /// `[tokens, n_embd]` after the final LayerNorm (HF's `last_hidden_state`).
        case lastHiddenState = "last_hidden_state"
        /// `[tokens, vocab]`: every token's next-token logits (prefill parity).
        case logits
        /// `[sequences, vocab]`: the last token's logits per sequence.
        case nextTokenLogits = "next_token_logits"
        /// `[sequences, 1]`: the next token id per sequence, chosen on the backend with the batch's
        /// sampling parameters (ids come back as exact floats).
        case nextToken = "next_token"
        /// `[sequences, SamplingParameters.maxLogprobs]`: with `nextToken`, for sequences whose
        /// sampling asks for logprobs, the most likely next tokens (largest first; -1 past those asked for).
        case nextTokenTopIds = "next_token_top_ids"
        /// `[sequences, 1 + SamplingParameters.maxLogprobs]` f32: with `nextToken`, the raw
        /// log-softmax of the chosen token, then of each `nextTokenTopIds` entry.
        case nextTokenLogprobs = "next_token_logprobs"
    }

    /// - Parameter hasTensor: whether the checkpoint holds a key (to find the prefix and the LM head).
    public init(config: GPT2Config, hasTensor: (String) -> Bool) {
        self.config = config
        prefix = hasTensor("wte.weight") && !hasTensor("transformer.wte.weight") ? "" : "transformer."
        lmHeadKey = !config.tieWordEmbeddings || hasTensor("lm_head.weight") ? "lm_head.weight" : prefix + "wte.weight"
    }

    /// The attention scale of layer `l`: 1/√head_dim (when `scale_attn_weights`), further divided by
    /// `l + 1` when `scale_attn_by_inverse_layer_idx`.
    public func attentionScale(layer l: Int) -> Float {
        var scale: Float = config.scaleAttnWeights ? 1 / Float(config.headSize).squareRoot() : 1
        if config.scaleAttnByInverseLayerIdx { scale /= Float(l + 1) }
        return scale
    }

    /// Builds the plan for batches of up to `maxTokens` tokens in `maxSequences` sequences (= cache
    /// slots), each holding up to `maxContext` positions (at most `n_positions`).
    public func plan(outputs: Set<Output>, maxTokens: Int, maxSequences: Int, maxContext: Int,
                     configPath: String = "config.json") throws(FlintError) -> Plan
    {
        let c = config
        let h = c.nEmbd
        guard maxContext >= 1, maxContext <= c.nPositions else {
            throw .invalidInput("a context of \(maxContext) positions is outside 1...\(c.nPositions) (n_positions)")
        }
        guard maxTokens >= 1, maxSequences >= 1 else { throw .invalidInput("a plan needs room for at least one token and one sequence") }
        let act = try Plan.Epilogue(huggingFace: c.activationFunction, field: "activation_function", path: configPath)
        let eps = Float(c.layerNormEpsilon)
        var p = Plan(maxTokens: maxTokens, maxSequences: maxSequences, maxContext: maxContext)
        func vector(_ key: String, _ n: Int) -> Int { p.weight(prefix + key, [n], .vector) }
        // Conv1D: stored [in, out], used as [out, in].
        func conv(_ key: String, out: Int, in k: Int) -> Int { p.weight(prefix + key, [out, k], .linear, transposed: true) }

        let x = p.buffer("residual", columns: h)
        let n = p.buffer("normed", columns: h)
        let qkv = p.buffer("qkv", columns: 3 * h)
        let context = p.buffer("context", columns: h)
        let attended = p.buffer("attention_output", columns: h)
        let intermediate = p.buffer("intermediate", columns: c.nInner)
        let mlp = p.buffer("mlp_output", columns: h)

        p.append(
            .embed(
                word: p.weight(prefix + "wte.weight", [c.vocabSize, h], .table),
                position: p.weight(prefix + "wpe.weight", [c.nPositions, h], .table),
                tokenType: nil, gamma: nil, beta: nil, eps: 0, out: x))
        p.append(
            .layerNorm(input: x, residual: nil, gamma: vector("h.0.ln_1.weight", h), beta: vector("h.0.ln_1.bias", h), eps: eps, out: n))
        for l in 0..<c.nLayer {
            let layer = "h.\(l)."
            let keys = p.buffer("keys.\(l)", columns: h, rows: .cache)
            let values = p.buffer("values.\(l)", columns: h, rows: .cache)
            p.append(
                .linear(
                    input: n, weight: conv(layer + "attn.c_attn.weight", out: 3 * h, in: h),
                    bias: vector(layer + "attn.c_attn.bias", 3 * h),
                    epilogue: .none, out: qkv))
            p.append(
                .cachedAttention(
                    qkv: qkv, keys: keys, values: values, heads: c.nHead, headDim: c.headSize,
                    scale: attentionScale(layer: l), out: context))
            p.append(
                .linear(
                    input: context, weight: conv(layer + "attn.c_proj.weight", out: h, in: h), bias: vector(layer + "attn.c_proj.bias", h),
                    epilogue: .none, out: attended))
            p.append(
                .layerNorm(
                    input: attended, residual: x, gamma: vector(layer + "ln_2.weight", h), beta: vector(layer + "ln_2.bias", h),
                    eps: eps, out: n, sum: x))
            p.append(
                .linear(
                    input: n, weight: conv(layer + "mlp.c_fc.weight", out: c.nInner, in: h),
                    bias: vector(layer + "mlp.c_fc.bias", c.nInner),
                    epilogue: act, out: intermediate))
            p.append(
                .linear(
                    input: intermediate, weight: conv(layer + "mlp.c_proj.weight", out: h, in: c.nInner),
                    bias: vector(layer + "mlp.c_proj.bias", h), epilogue: .none, out: mlp))
            let last = l == c.nLayer - 1
            let next = last ? "ln_f." : "h.\(l + 1).ln_1."
            p.append(
                .layerNorm(
                    input: mlp, residual: x, gamma: vector(next + "weight", h), beta: vector(next + "bias", h), eps: eps, out: n,
                    sum: last ? nil : x))
        }
        if outputs.contains(.lastHiddenState) { p.output(Output.lastHiddenState.rawValue, n) }

        // The head is a GEMM operand even when tied: a plan weight of its own (backends may share storage).
        let head = p.weight("lm_head.weight", [c.vocabSize, h], .linear, parts: [lmHeadKey])
        if outputs.contains(.logits) {
            let logits = p.buffer("logits", columns: c.vocabSize)
            p.append(.linear(input: n, weight: head, bias: nil, epilogue: .none, out: logits))
            p.output(Output.logits.rawValue, logits)
        }
        let sampled = outputs.contains(.nextToken) || outputs.contains(.nextTokenTopIds) || outputs.contains(.nextTokenLogprobs)
        if outputs.contains(.nextTokenLogits) || sampled {
            let lastHidden = p.buffer("last_hidden", columns: h, rows: .sequences)
            let nextLogits = p.buffer("next_token_logits", columns: c.vocabSize, rows: .sequences)
            p.append(.lastToken(input: n, out: lastHidden))
            p.append(.linear(input: lastHidden, weight: head, bias: nil, epilogue: .none, out: nextLogits))
            if outputs.contains(.nextTokenLogits) { p.output(Output.nextTokenLogits.rawValue, nextLogits) }
            if sampled {
                let seen = p.buffer("seen_tokens", columns: (c.vocabSize + 31) / 32, rows: .slots, element: .int32)
                let counts = p.buffer("generated_counts", columns: c.vocabSize, rows: .slots, element: .int32)
                let next = p.buffer("next_token", columns: 1, rows: .sequences, element: .int32)
                let k = SamplingParameters.maxLogprobs
                let topIds = p.buffer("next_token_top_ids", columns: k, rows: .sequences, element: .int32)
                let logprobs = p.buffer("next_token_logprobs", columns: 1 + k, rows: .sequences, element: .float32)
                p.append(.sample(logits: nextLogits, seen: seen, counts: counts, out: next, topIds: topIds, logprobs: logprobs))
                p.output(Output.nextToken.rawValue, next)
                p.output(Output.nextTokenTopIds.rawValue, topIds)
                p.output(Output.nextTokenLogprobs.rawValue, logprobs)
            }
        }
        return p
    }
}
