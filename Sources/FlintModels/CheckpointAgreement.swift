import FlintCheckpoint
import FlintCore

/// config.json checked against the checkpoint before anything is planned or allocated: the layer
/// count, the optional token-type table, and the sizes that set the arena (vocabulary, width,
/// context, feed-forward width) must be what the checkpoint's tensors say. A config that disagrees
/// with its checkpoint is an error, never a model that silently drops or invents weights.
enum CheckpointAgreement {
    /// The number of layers the checkpoint holds: one more than the largest `N` in `<layers>N.`.
    static func layerCount(in checkpoint: Checkpoint, layers: String) -> Int {
        var count = 0
        for name in checkpoint.names where name.hasPrefix(layers) {
            let rest = name.utf8.dropFirst(layers.utf8.count)
            guard let dot = rest.firstIndex(of: UInt8(ascii: ".")),
                  let n = Int(String(decoding: rest[..<dot], as: UTF8.self)), n >= 0, n < Int.max
            else { continue }
            count = max(count, n + 1)
        }
        return count
    }

    /// Throws `.badConfig` unless `field` (as config.json gives it) matches the checkpoint's
    /// `layers` count.
    static func requireLayers(_ expected: Int, field: String, layers: String, checkpoint: Checkpoint,
                              configPath: String) throws(FlintError) {
        let found = layerCount(in: checkpoint, layers: layers)
        guard found == expected else {
            throw .badConfig(path: configPath, reason: "\(field) is \(expected), but the checkpoint \(checkpoint.path) has "
                + "\(found) layer\(found == 1 ? "" : "s") (\(layers)0 ... ); config.json and the checkpoint disagree")
        }
    }

    /// Throws `.badConfig` when the checkpoint holds `tensor` with another shape than the config
    /// implies (`fields` names the config fields that set it). A missing tensor is left to the load,
    /// which names it.
    static func requireShape(_ tensor: String, _ shape: Shape, fields: String, checkpoint: Checkpoint,
                             configPath: String) throws(FlintError) {
        guard let info = checkpoint.info(tensor), info.shape != shape else { return }
        throw .badConfig(path: configPath, reason: "\(fields) give \(tensor) the shape \(shape), but the checkpoint's is "
            + "\(info.shape); config.json and the checkpoint disagree")
    }
}

extension Encoder {
    /// Checks config.json against `checkpoint` (see `CheckpointAgreement`); call before `plan`.
    public func requireAgreement(with checkpoint: Checkpoint, configPath: String) throws(FlintError) {
        let c = config, l = layout
        let (width, layers, inner) = c.family == .distilBert ? ("dim", "n_layers", "hidden_dim")
            : ("hidden_size", "num_hidden_layers", "intermediate_size")
        try CheckpointAgreement.requireShape(prefix + l.wordEmbeddings + ".weight", [c.vocabSize, c.hiddenSize],
                                             fields: "vocab_size and \(width)", checkpoint: checkpoint, configPath: configPath)
        try CheckpointAgreement.requireShape(positionTableKey, [c.maxPositionEmbeddings, c.hiddenSize],
                                             fields: "max_position_embeddings and \(width)", checkpoint: checkpoint,
                                             configPath: configPath)
        if let types = l.tokenTypeEmbeddings.map({ prefix + $0 + ".weight" }) {
            if c.typeVocabSize == 0, let info = checkpoint.info(types) {
                throw .badConfig(path: configPath, reason: "type_vocab_size is 0, but the checkpoint has \(types) of shape "
                    + "\(info.shape); config.json and the checkpoint disagree")
            }
            try CheckpointAgreement.requireShape(types, [c.typeVocabSize, c.hiddenSize], fields: "type_vocab_size and \(width)",
                                                 checkpoint: checkpoint, configPath: configPath)
        }
        try CheckpointAgreement.requireLayers(c.numHiddenLayers, field: layers, layers: prefix + l.layers,
                                              checkpoint: checkpoint, configPath: configPath)
        try CheckpointAgreement.requireShape(prefix + l.layers + "0." + l.intermediate + ".weight", [c.intermediateSize, c.hiddenSize],
                                             fields: "\(inner) and \(width)", checkpoint: checkpoint, configPath: configPath)
    }
}

extension GPT2 {
    /// Checks config.json against `checkpoint` (see `CheckpointAgreement`); call before `plan`.
    public func requireAgreement(with checkpoint: Checkpoint, configPath: String) throws(FlintError) {
        let c = config
        try CheckpointAgreement.requireShape(prefix + "wte.weight", [c.vocabSize, c.nEmbd], fields: "vocab_size and n_embd",
                                             checkpoint: checkpoint, configPath: configPath)
        try CheckpointAgreement.requireShape(prefix + "wpe.weight", [c.nPositions, c.nEmbd], fields: "n_positions and n_embd",
                                             checkpoint: checkpoint, configPath: configPath)
        try CheckpointAgreement.requireLayers(c.nLayer, field: "n_layer", layers: prefix + "h.", checkpoint: checkpoint,
                                              configPath: configPath)
        // Conv1D: stored [in, out].
        try CheckpointAgreement.requireShape(prefix + "h.0.mlp.c_fc.weight", [c.nEmbd, c.nInner], fields: "n_embd and n_inner",
                                             checkpoint: checkpoint, configPath: configPath)
    }
}
