import FlintCheckpoint
import FlintCore
import FlintTestSupport
import Testing

@Suite("checkpoint folders")
struct CheckpointTests {
    typealias S = Safetensors

    /// A file with `a` [2, 2] = 1...4 and `b` [3] = 5...7.
    static func smallFile() -> [UInt8] {
        S.image(header: S.header(S.entry("a", "F32", [2, 2], 0, 16), S.entry("b", "F32", [3], 16, 28)), data: S.f32([1, 2, 3, 4, 5, 6, 7]))
    }

    @Test func folderWithModelSafetensors() throws {
        let folder = TestPaths.temporaryFolder()
        _ = S.write(Self.smallFile(), in: folder)
        let checkpoint = try Checkpoint(path: folder)
        #expect(checkpoint.names == ["a", "b"])
        #expect(checkpoint.contains("a") && !checkpoint.contains("c"))
        #expect(checkpoint.info("b")?.shape == [3])
        #expect(checkpoint.files.count == 1)
        let weights: any WeightSource = checkpoint
        #expect(try weights.tensor("a", shape: [2, 2]).data == [1, 2, 3, 4])
        #expect(try checkpoint.tensor("b").data == [5, 6, 7])
    }

    @Test func singleFilePath() throws {
        let path = S.write(Self.smallFile(), name: "weights.safetensors")
        let checkpoint = try Checkpoint(path: path)
        #expect(checkpoint.names == ["a", "b"])
    }

    @Test func missingTensorAndWrongShape() throws {
        let folder = TestPaths.temporaryFolder()
        let file = S.write(Self.smallFile(), in: folder)
        let checkpoint = try Checkpoint(path: folder)
        expectFlintError("badTensor", [folder, "\"encoder.layer.0.output.dense.weight\"", "missing from the checkpoint"]) {
            () throws(FlintError) in
            _ = try checkpoint.tensor("encoder.layer.0.output.dense.weight", shape: [4, 4])
        }
        expectFlintError("badTensor", [file, "\"a\"", "has shape [2, 2], the model needs [4, 1]"]) { () throws(FlintError) in
            _ = try checkpoint.tensor("a", shape: [4, 1])
        }
    }

    @Test func corruptFileInFolderNamesTheFile() {
        let folder = TestPaths.temporaryFolder()
        let path = S.write(S.image(header: "{", data: []), in: folder)
        expectFlintError("corruptCheckpoint", [path, "not valid JSON"]) { () throws(FlintError) in _ = try Checkpoint(path: folder) }
    }

    @Test func pytorchOnlyFolderIsRefused() {
        let folder = TestPaths.temporaryFolder()
        TestPaths.write(bytes: [0x80, 0x02], to: folder + "/pytorch_model.bin")
        expectFlintError(
            "unsupportedModel", [folder, "pytorch_model.bin", "only safetensors checkpoints are supported", "safe_serialization=True"]
        ) {
            () throws(FlintError) in _ = try Checkpoint(path: folder)
        }
        expectFlintError("unsupportedModel", ["only safetensors checkpoints are supported"]) { () throws(FlintError) in
            _ = try Checkpoint(path: folder + "/pytorch_model.bin")
        }
    }

    @Test func emptyFolderAndMissingPath() {
        let folder = TestPaths.temporaryFolder()
        expectFlintError("unreadable", [folder, "no model.safetensors or model.safetensors.index.json"]) { () throws(FlintError) in
            _ = try Checkpoint(path: folder)
        }
        expectFlintError("unreadable", [folder + "/absent", "no such file"]) { () throws(FlintError) in
            _ = try Checkpoint(path: folder + "/absent")
        }
    }

    // MARK: sharded

    /// Two shards: shard 1 holds `a`, shard 2 holds `b` and `c`.
    static func shardedFolder(weightMap: String) -> String {
        let folder = TestPaths.temporaryFolder()
        _ = S.write(S.image(header: S.header(S.entry("a", "F32", [2], 0, 8)), data: S.f32([1, 2])),
                    name: "model-00001-of-00002.safetensors", in: folder)
        _ = S.write(S.image(header: S.header(S.entry("b", "BF16", [2], 0, 4), S.entry("c", "F16", [1], 4, 6)),
                            data: S.littleEndian([UInt16(0x3F80), 0x4000, 0x3C00])),
                    name: "model-00002-of-00002.safetensors", in: folder)
        TestPaths.write(#"{"metadata": {"total_size": 18}, "weight_map": \#(weightMap)}"#, to: folder + "/model.safetensors.index.json")
        return folder
    }

    static let goodMap =
        #"{"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors", "c": "model-00002-of-00002.safetensors"}"#

    @Test func shardedIndex() throws {
        let folder = Self.shardedFolder(weightMap: Self.goodMap)
        let checkpoint = try Checkpoint(path: folder)
        #expect(checkpoint.names == ["a", "b", "c"])
        #expect(checkpoint.files.count == 2)
        #expect(checkpoint.metadata == ["total_size": "18"])
        #expect(try checkpoint.tensor("a", shape: [2]).data == [1, 2])
        #expect(try checkpoint.tensor("b", shape: [2]).data == [1, 2])
        #expect(try checkpoint.tensor("c", shape: [1]).data == [1])
        #expect(checkpoint.file(containing: "c")?.path == folder + "/model-00002-of-00002.safetensors")
        // Opening the index file directly works too.
        #expect(try Checkpoint(path: folder + "/model.safetensors.index.json").names == ["a", "b", "c"])
    }

    @Test func shardedIndexWithMissingShard() {
        let folder = Self.shardedFolder(weightMap: #"{"a": "model-00001-of-00002.safetensors", "d": "model-00003-of-00003.safetensors"}"#)
        expectFlintError(
            "corruptCheckpoint",
            [folder + "/model.safetensors.index.json", "shard \"model-00003-of-00003.safetensors\"", "tensor \"d\"", "missing"]
        ) {
            () throws(FlintError) in _ = try Checkpoint(path: folder)
        }
    }

    @Test func shardedIndexWithTensorMissingFromItsShard() {
        let folder = Self.shardedFolder(weightMap: #"{"a": "model-00001-of-00002.safetensors", "b": "model-00001-of-00002.safetensors"}"#)
        expectFlintError(
            "corruptCheckpoint",
            ["model.safetensors.index.json", "tensor \"b\"", "shard \"model-00001-of-00002.safetensors\"", "does not contain it"]
        ) {
            () throws(FlintError) in _ = try Checkpoint(path: folder)
        }
    }

    @Test func shardedIndexMalformed() {
        expectFlintError("corruptCheckpoint", ["weight_map is empty"]) { () throws(FlintError) in
            _ = try Checkpoint(path: Self.shardedFolder(weightMap: "{}"))
        }
        expectFlintError("corruptCheckpoint", ["weight_map[\"a\"] is a number"]) { () throws(FlintError) in
            _ = try Checkpoint(path: Self.shardedFolder(weightMap: #"{"a": 1}"#))
        }
        expectFlintError("corruptCheckpoint", ["\"../x.safetensors\"", "not a file name inside the checkpoint folder"]) {
            () throws(FlintError) in
            _ = try Checkpoint(path: Self.shardedFolder(weightMap: #"{"a": "../x.safetensors"}"#))
        }
        let folder = TestPaths.temporaryFolder()
        TestPaths.write(#"{"metadata": {}}"#, to: folder + "/model.safetensors.index.json")
        expectFlintError("corruptCheckpoint", ["weight_map is missing"]) { () throws(FlintError) in _ = try Checkpoint(path: folder) }
    }

    @Test func shardedIndexWithCorruptShardNamesTheShard() {
        let folder = Self.shardedFolder(weightMap: Self.goodMap)
        TestPaths.write(bytes: [1, 2, 3], to: folder + "/model-00002-of-00002.safetensors")
        expectFlintError("corruptCheckpoint", [folder + "/model-00002-of-00002.safetensors", "3 bytes"]) { () throws(FlintError) in
            _ = try Checkpoint(path: folder)
        }
    }

    @Test func realMiniLMCheckpoint() throws {
        guard TestPaths.asset("all-MiniLM-L6-v2/model.safetensors") != nil else {
            print("skipped realMiniLMCheckpoint: \(TestPaths.missingAssetsReason)")
            return
        }
        let folder = TestPaths.assets + "/all-MiniLM-L6-v2"
        let checkpoint = try Checkpoint(path: folder)
        #expect(checkpoint.names.count == 104)
        let config = try EncoderConfig.load(path: folder + "/config.json")
        #expect(config == EncoderConfig.miniLML6)
        // Every weight the BERT encoder needs is there with the shape the config implies.
        let h = config.hiddenSize
        #expect(try checkpoint.tensor("embeddings.word_embeddings.weight", shape: [config.vocabSize, h]).shape.count == 30522 * 384)
        for l in 0..<config.numHiddenLayers {
            let p = "encoder.layer.\(l)."
            _ = try checkpoint.tensor(p + "attention.self.query.weight", shape: [h, h])
            _ = try checkpoint.tensor(p + "intermediate.dense.weight", shape: [config.intermediateSize, h])
            _ = try checkpoint.tensor(p + "output.LayerNorm.bias", shape: [h])
        }
        expectFlintError("badTensor", ["embeddings.position_ids", "I64"]) { () throws(FlintError) in
            _ = try checkpoint.tensor("embeddings.position_ids", shape: [1, 512])
        }
        let sentence = try #require(try SentenceTransformersConfig.load(folder: folder))
        #expect(sentence.pooling == .mean)
        #expect(sentence.normalize)
        #expect(sentence.maxSeqLength == 256)
        #expect(!sentence.doLowerCase)
        #expect(sentence.wordEmbeddingDimension == 384)
    }
}
