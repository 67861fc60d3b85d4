import FlintCore

/// How each plan step becomes kernel launches and cuBLASLt GEMMs for one shape bucket.
extension CUDAPreparedPlan {
    func staged(_ offset: KeyPath<InputLayout, Int>, _ b: Bucket) -> DevicePointer {
        inputs + UInt64(InputLayout(b)[keyPath: offset])
    }

    func address(_ buffer: Int) -> DevicePointer { arena + UInt64(layout.offsets[buffer]) }

    func rows(_ buffer: Int, _ b: Bucket) -> Int32 {
        switch plan.buffers[buffer].rows {
        case .tokens: return Int32(b.tokens)
        case .sequences: return Int32(b.sequences)
        case .slots, .cache: return Int32(plan.rowCapacity(plan.buffers[buffer].rows))
        }
    }

    /// The GEMM of linear step `i` in bucket `b`, without its bias and activation.
    private func plainGEMM(_ i: Int, _ b: Bucket) -> GEMMDescriptor? {
        guard case let .linear(input, weight, _, _, out) = plan.steps[i] else { return nil }
        let shape = plan.weights[weight].shape
        let (n, k) = (shape[0], shape.count / shape[0])
        return GEMMDescriptor(m: Int(rows(out, b)), n: n, k: k, a: address(input), lda: plan.buffers[input].columns, w: weights[weight],
                              ldw: k, c: address(out), ldc: plan.buffers[out].columns, bias: nil, dtype: dtype)
    }

    /// The GEMM of linear step `i` with the bias and activation cuBLASLt's epilogue can apply, or
    /// nil when the step's epilogue is Flint's own (exact GELU, tanh) or there is nothing to fuse.
    private func fusedGEMM(_ i: Int, _ b: Bucket) -> GEMMDescriptor? {
        guard case let .linear(_, _, bias, epilogue, _) = plan.steps[i], var g = plainGEMM(i, b),
              epilogue == .none || epilogue == .geluTanh, bias != nil || epilogue == .geluTanh
        else { return nil }
        g.bias = bias.map { weights[$0] }
        g.activation = epilogue == .geluTanh ? .geluTanh : .none
        return g
    }

    /// Chooses, outside any capture, cuBLASLt's algorithm for every GEMM of bucket `b` and whether
    /// each linear step's bias/activation runs in cuBLASLt's epilogue. One-row GEMMs (one sequence
    /// through a pooler, classifier or LM head) never ask for the epilogue: cuBLASLt's heuristic
    /// rejects it there (PyTorch avoids it for the same reason). A refusal elsewhere is said once.
    func settle(_ b: Bucket) throws(FlintError) -> BucketState {
        var settled = BucketState()
        for i in plan.steps.indices {
            guard let plain = plainGEMM(i, b) else { continue }
            try named(i) { () throws(FlintError) in
                var fused = false
                if let g = fusedGEMM(i, b), g.m > 1 {
                    switch try driver.prepareGEMM(g) {
                    case .supported: fused = true
                    case let .refused(status):
                        backend.notice("cuBLASLt refused the fused epilogue of GEMM \(g.summary) (\(status)); "
                            + "a plain GEMM and Flint's bias/activation kernel run instead")
                    }
                }
                if !fused, case let .refused(status) = try driver.prepareGEMM(plain) {
                    throw .backend("cuBLASLt has no algorithm for GEMM \(plain.summary) (\(status))")
                }
                settled.fusedEpilogue[i] = fused
            }
        }
        return settled
    }

    /// Queues plan step `i` for bucket `b`; returns what it queued (kernel names, GEMM shapes), for
    /// error messages.
    func enqueue(_ i: Int, _ b: Bucket, _ settled: BucketState) throws(FlintError) -> [String] {
        let t = dtype.kernelSuffix
        let null = KernelArgument.pointer(0)
        let ids = staged(\.ids, b), positions = staged(\.positions, b), typeIds = staged(\.typeIds, b)
        let starts = staged(\.starts, b), lengths = staged(\.lengths, b)
        switch plan.steps[i] {
        case let .embed(word, position, tokenType, gamma, beta, eps, out):
            let cols = plan.buffers[out].columns
            return try launchRows("embedding_layernorm_\(t)", rows: b.tokens, [
                .pointer(ids), .pointer(positions), tokenType == nil ? null : .pointer(typeIds), .pointer(weights[word]),
                .pointer(weights[position]), tokenType.map { .pointer(weights[$0]) } ?? null, gamma.map { .pointer(weights[$0]) } ?? null,
                beta.map { .pointer(weights[$0]) } ?? null, .float(eps), .int32(Int32(b.tokens)), .int32(Int32(cols)),
                .pointer(address(out)),
            ])
        case let .linear(_, _, bias, epilogue, out):
            if settled.fusedEpilogue[i] == true, let g = fusedGEMM(i, b) {
                try driver.gemm(g)
                return ["cublasLtMatmul \(g.summary)"]
            }
            guard let plain = plainGEMM(i, b) else { return [] }
            try driver.gemm(plain)
            guard bias != nil || epilogue != .none else { return ["cublasLtMatmul \(plain.summary)"] }
            let code: Int32 = switch epilogue {
            case .none: 0
            case .gelu: 1
            case .geluTanh: 2
            case .tanh: 3
            case .relu: 4
            }
            return ["cublasLtMatmul \(plain.summary)"] + (try launchRows("bias_activation_\(t)", rows: plain.m, [
                .pointer(address(out)), bias.map { .pointer(weights[$0]) } ?? null, .int32(Int32(plain.m)), .int32(Int32(plain.n)),
                .int32(Int32(plan.buffers[out].columns)), .int32(code),
            ]))
        case let .attention(qkv, heads, headDim, causal, out):
            let geometry = KernelGeometry.attention(queryBlocks: InputLayout(b).queryBlockCapacity, heads: heads)
            return try launch("attention_\(t)", geometry, [
                .pointer(address(qkv)), .int32(Int32(plan.buffers[qkv].columns)), .pointer(starts), .pointer(lengths), .int32(Int32(heads)),
                .int32(Int32(headDim)), .float(1 / Float(headDim).squareRoot()), .int32(causal ? 1 : 0), .pointer(address(out)),
                .int32(Int32(plan.buffers[out].columns)), .pointer(staged(\.queryBlocks, b)),
            ])
        case let .cachedAttention(qkv, keys, values, heads, headDim, scale, out):
            let arguments: [KernelArgument] = [
                .pointer(address(qkv)), .int32(Int32(plan.buffers[qkv].columns)), .pointer(starts), .pointer(lengths), .pointer(positions),
                .pointer(staged(\.slots, b)), .int32(Int32(heads)), .int32(Int32(headDim)), .float(scale), .pointer(address(keys)),
                .pointer(address(values)), .int32(Int32(plan.maxContext)), .pointer(address(out)), .int32(Int32(plan.buffers[out].columns)),
            ]
            if b.singleTokens {
                return try launch("decode_attention_\(t)", KernelGeometry.decodeAttention(heads: heads, sequences: b.sequences), arguments)
            }
            let geometry = KernelGeometry.attention(queryBlocks: InputLayout(b).queryBlockCapacity, heads: heads)
            return try launch("cached_attention_\(t)", geometry, arguments + [.pointer(staged(\.queryBlocks, b))])
        case let .layerNorm(input, residual, gamma, beta, eps, out, sum):
            let r = rows(out, b)
            return try launchRows("layernorm_\(t)", rows: Int(r), [
                .pointer(address(input)), residual.map { .pointer(address($0)) } ?? null, null, .pointer(weights[gamma]),
                .pointer(weights[beta]),
                .float(eps), .int32(r), .int32(Int32(plan.buffers[out].columns)), .int32(Int32(plan.buffers[input].columns)),
                .pointer(address(out)), .int32(Int32(plan.buffers[out].columns)),
                residual == nil ? null : sum.map { .pointer(address($0)) } ?? null,
            ])
        case let .lastToken(input, out):
            return try launchRows("last_token_\(t)", rows: b.sequences, [
                .pointer(address(input)), .int32(Int32(plan.buffers[input].columns)), .pointer(starts), .pointer(lengths),
                .int32(Int32(b.sequences)), .int32(Int32(plan.buffers[out].columns)), .pointer(address(out)),
            ])
        case let .sample(logits, seen, counts, out, topIds, logprobs):
            return try launch("sample_tokens_\(t)", KernelGeometry.sampling(sequences: b.sequences), [
                .pointer(address(logits)), .int32(Int32(plan.buffers[logits].columns)), .int32(Int32(plan.buffers[logits].columns)),
                .pointer(ids), .pointer(starts), .pointer(lengths), .pointer(positions), .pointer(staged(\.slots, b)),
                .pointer(address(seen)), .int32(Int32(plan.buffers[seen].columns)), .pointer(address(counts)),
                .pointer(staged(\.sampling, b)), .pointer(address(out)), .pointer(address(topIds)),
                .int32(Int32(plan.buffers[topIds].columns)), .pointer(address(logprobs)),
            ])
        case let .firstToken(input, out):
            return try firstToken(input, out, b)
        case let .pool(input, mode, out):
            if mode == .cls { return try firstToken(input, out, b) }
            return try launchRows("\(mode == .mean ? "mean" : "max")_pool_\(t)", rows: b.sequences, [
                .pointer(address(input)), .int32(Int32(plan.buffers[input].columns)), .pointer(starts), .pointer(lengths),
                .int32(Int32(b.sequences)), .int32(Int32(plan.buffers[out].columns)), .pointer(address(out)),
            ])
        case let .l2Normalize(buffer):
            return try launchRows("l2_normalize_\(t)", rows: Int(rows(buffer, b)), [
                .pointer(address(buffer)), .int32(rows(buffer, b)), .int32(Int32(plan.buffers[buffer].columns)),
            ])
        }
    }

    private func firstToken(_ input: Int, _ out: Int, _ b: Bucket) throws(FlintError) -> [String] {
        try launchRows("first_token_\(dtype.kernelSuffix)", rows: b.sequences, [
            .pointer(address(input)), .int32(Int32(plan.buffers[input].columns)), .pointer(staged(\.starts, b)), .int32(Int32(b.sequences)),
            .int32(Int32(plan.buffers[out].columns)), .pointer(address(out)),
        ])
    }

    private func launch(_ kernel: String, _ g: KernelGeometry.Launch, _ arguments: [KernelArgument]) throws(FlintError) -> [String] {
        try driver.launch(kernel, grid: g.grid, block: g.block, sharedBytes: g.shared, arguments: arguments)
        return [kernel]
    }

    /// Row kernels: one block per row.
    private func launchRows(_ kernel: String, rows: Int, _ arguments: [KernelArgument]) throws(FlintError) -> [String] {
        try launch(kernel, KernelGeometry.rows(rows), arguments)
    }
}
