import FlintCheckpoint
import FlintCore
import FlintTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Checkpoints and configs an attacker or a broken conversion could hand over (issue 10).
@Suite("Hostile checkpoints and configs")
struct HostileCheckpointTests {
    @Test(arguments: [Float.nan, .infinity, -.infinity])
    func nonFiniteValuesAreRefusedNamingTheTensor(_ bad: Float) throws {
        let data = Safetensors.f32([1, 2, bad, 4, bad, 6])
        let path = Safetensors.write(Safetensors.image(header: Safetensors.header(
            Safetensors.entry("ok", "F32", [1], 0, 4), Safetensors.entry("bad.weight", "F32", [2, 3], 4, 28)),
            data: Safetensors.f32([0.5]) + data))
        let checkpoint = try Checkpoint(path: path)
        #expect(try checkpoint.tensor("ok").data == [0.5])
        expectFlintError("badTensor", ["bad.weight", "2 non-finite values", "flat index 2", "corrupt"]) { () throws(FlintError) in
            _ = try checkpoint.tensor("bad.weight", shape: [2, 3])
        }
    }

    @Test func f64BeyondTheF32RangeIsRefused() throws {
        let path = Safetensors.write(Safetensors.image(header: Safetensors.header(Safetensors.entry("big", "F64", [2], 0, 16)),
                                                       data: Safetensors.littleEndian([(1.0).bitPattern, (1e300).bitPattern])))
        expectFlintError("badTensor", ["big", "1 non-finite value", "F64 value beyond the f32 range"]) { () throws(FlintError) in
            _ = try Checkpoint(path: path).tensor("big")
        }
    }

    @Test func nonFiniteF16AndBF16AreRefused() throws {
        // f16 0x7C00 = +inf, bf16 0x7FC0 = NaN.
        let path = Safetensors.write(Safetensors.image(header: Safetensors.header(
            Safetensors.entry("h", "F16", [2], 0, 4), Safetensors.entry("b", "BF16", [2], 4, 8)),
            data: Safetensors.littleEndian([UInt16(0x3C00), 0x7C00, 0x3F80, 0x7FC0])))
        let checkpoint = try Checkpoint(path: path)
        expectFlintError("badTensor", ["\"h\"", "inf"]) { () throws(FlintError) in _ = try checkpoint.tensor("h") }
        expectFlintError("badTensor", ["\"b\"", "nan"]) { () throws(FlintError) in _ = try checkpoint.tensor("b") }
    }

    @Test func aFolderNamedModelSafetensorsIsReportedAsAFolder() {
        let folder = TestPaths.temporaryFolder()
        mkdir(folder + "/model.safetensors", 0o700)
        expectFlintError("unreadable", ["model.safetensors", "is a folder"]) { () throws(FlintError) in _ = try Checkpoint(path: folder) }
    }

    @Test func aSymbolicLinkLoopNamedModelSafetensorsIsReportedAsOne() {
        let folder = TestPaths.temporaryFolder()
        symlink(folder + "/model.safetensors", folder + "/model.safetensors")
        expectFlintError("unreadable", ["model.safetensors", String(cString: strerror(ELOOP))]) { () throws(FlintError) in
            _ = try Checkpoint(path: folder)
        }
    }

    @Test func configsThatAreNotRegularFilesAreRefused() {
        expectFlintError("unreadable", ["/dev/zero", "not a regular file"]) { () throws(FlintError) in
            _ = try EncoderConfig.load(path: "/dev/zero")
        }
        let folder = TestPaths.temporaryFolder()
        mkdir(folder + "/config.json", 0o700)
        expectFlintError("unreadable", ["config.json", "is a folder"]) { () throws(FlintError) in
            _ = try GPT2Config.load(path: folder + "/config.json")
        }
    }

    @Test func sizesBeyondTheLimitsAreRefused() throws {
        let base = #""model_type": "bert", "vocab_size": 99, "hidden_size": 32, "num_attention_heads": 4, "#
            + #""intermediate_size": 64, "max_position_embeddings": 64"#
        let folder = TestPaths.temporaryFolder()
        let cases = [(#""num_hidden_layers": 4097"#, "num_hidden_layers is 4097, more than the 4096"),
                     (#""num_hidden_layers": 2, "type_vocab_size": 100000000"#, "type_vocab_size is 100000000, more than the 16777216")]
        for (extra, message) in cases {
            TestPaths.write("{" + base + ", " + extra + "}", to: folder + "/config.json")
            expectFlintError("badConfig", [message]) { () throws(FlintError) in
                _ = try EncoderConfig.load(path: folder + "/config.json")
            }
        }
        TestPaths.write(#"{"model_type": "gpt2", "n_positions": 1e12}"#, to: folder + "/config.json")
        expectFlintError("badConfig", ["n_positions is 1000000000000, more than"]) { () throws(FlintError) in
            _ = try GPT2Config.load(path: folder + "/config.json")
        }
    }
}
