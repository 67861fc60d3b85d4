import FlintJSON
import FlintTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The `flint` binary on the hostile inputs of issue 10: each must exit non-zero with a clear
/// message on stderr (and nothing that looks like a result on stdout), within seconds.
@Suite("Hostile input to the flint CLI")
struct HostileCLITests {
    /// `flint` beside the test bundle (`swift build --build-tests` builds both into one folder).
    static let binary: String? = {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        let exe = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let candidate = String(exe[..<exe.lastIndex(of: "/")!]) + "/flint"
        return access(candidate, X_OK) == 0 ? candidate : nil
    }()

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs flint with `arguments`, killing it after `timeout` seconds (a hang fails the test).
    static func flint(_ arguments: [String], timeout: Double = 60, sourceLocation: SourceLocation = #_sourceLocation) throws -> Result? {
        guard let binary else {
            print("skipped: no flint binary beside the test bundle (build it with swift build --build-tests)")
            return nil
        }
        let folder = TestPaths.temporaryFolder()
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, folder + "/out", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, folder + "/err", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let argv = ([binary] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, binary, &actions, nil, argv, environ)
        try #require(spawned == 0, "posix_spawn failed: \(spawned)", sourceLocation: sourceLocation)
        var status: Int32 = 0
        var waited = 0.0
        while waitpid(pid, &status, WNOHANG) == 0 {
            if waited > timeout {
                kill(pid, SIGKILL)
                waitpid(pid, &status, 0)
                Issue.record("flint \(arguments.joined(separator: " ")) ran over \(timeout) s", sourceLocation: sourceLocation)
                break
            }
            usleep(20_000)
            waited += 0.02
        }
        func text(_ name: String) -> String { String(decoding: TestPaths.read(folder + "/" + name) ?? [], as: UTF8.self) }
        let exit: Int32 = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        return Result(status: exit, stdout: text("out"), stderr: text("err"))
    }

    /// Expects exit `status` (1: a failure while running; 64: a bad command-line value), an "Error:"
    /// line mentioning every fragment, and no crash report.
    static func expectRefusal(_ arguments: [String], _ fragments: [String], status: Int32 = 1,
                              sourceLocation: SourceLocation = #_sourceLocation) throws {
        guard let r = try flint(arguments, sourceLocation: sourceLocation) else { return }
        #expect(r.status == status, "exit \(r.status) for \(arguments); stderr: \(r.stderr.prefix(500))", sourceLocation: sourceLocation)
        #expect(r.stderr.hasPrefix("Error: "), "stderr: \(r.stderr.prefix(500))", sourceLocation: sourceLocation)
        #expect(!r.stderr.contains("Fatal error") && !r.stderr.contains("Crash"), "stderr: \(r.stderr.prefix(500))",
                sourceLocation: sourceLocation)
        for f in fragments {
            #expect(r.stderr.contains(f), "stderr lacks \"\(f)\": \(r.stderr.prefix(500))", sourceLocation: sourceLocation)
        }
        #expect(r.stderr.utf8.count < 2000, "stderr is \(r.stderr.utf8.count) bytes", sourceLocation: sourceLocation)
    }

    static var bertFolder: String { TestPaths.fixture("bert/tiny-bert-model") }

    @Test func embedRefusesANaNWeightNamingTheTensor() throws {
        let folder = try HostileFolders.copy("bert/tiny-bert-model", poke: ("encoder.layer.0.attention.self.value.weight", 3, .nan),
                                             vocabulary: HostileFolders.tinyVocabulary)
        try Self.expectRefusal(["embed", "--model", folder, "--device", "cpu", "hello world"],
                               ["encoder.layer.0.attention.self.value.weight", "non-finite"])
        // The same folder without the NaN embeds: the refusal is about the weight, not the folder.
        let healthy = try HostileFolders.copy("bert/tiny-bert-model", vocabulary: HostileFolders.tinyVocabulary)
        guard let r = try Self.flint(["embed", "--model", healthy, "--device", "cpu", "hello world"]) else { return }
        #expect(r.status == 0, "\(r.stderr)")
        let embedding = try JSONParser.parse(r.stdout.split(separator: "\n").first.map(String.init) ?? "").floats
        #expect(embedding?.count == 32 && embedding?.allSatisfy(\.isFinite) == true, "\(r.stdout.prefix(200))")
    }

    @Test func endlessAndNonRegularFilesAreRefused() throws {
        try Self.expectRefusal(["tokenize", "--tokenizer", "/dev/zero", "hello"], ["/dev/zero", "not a regular file"])
        let folder = try HostileFolders.copy("bert/tiny-bert-model", vocabulary: HostileFolders.tinyVocabulary)
        try Self.expectRefusal(["tokenize", "--tokenizer", folder, "--jsonl", "/dev/zero"], ["/dev/zero", "not a regular file"])
        try Self.expectRefusal(["embed", "--model", folder, "--device", "cpu", "--jsonl", "/dev/zero"], ["/dev/zero", "not a regular file"])
        try Self.expectRefusal(["tokenize", "--tokenizer", folder, "--jsonl", folder], ["is a folder"])
    }

    @Test func hugeLayerCountsFailFastAgainstTheCheckpoint() throws {
        for layers in [1_000_000_000.0, 3.0] {
            let folder = try HostileFolders.copy("bert/tiny-bert-model", config: [("num_hidden_layers", .number(layers))],
                                                 vocabulary: HostileFolders.tinyVocabulary)
            try Self.expectRefusal(["embed", "--model", folder, "--device", "cpu", "hello"], ["num_hidden_layers is \(Int(layers))"])
            try Self.expectRefusal(["bench", "--model", folder, "--device", "cpu", "--iters", "1", "--seq", "8", "--batch", "1"],
                                   ["num_hidden_layers is \(Int(layers))"])
        }
        let gpt2 = try HostileFolders.copy("gpt2/tiny-gpt2", config: [("n_layer", .number(1e9))])
        try Self.expectRefusal(["bench", "--model", gpt2, "--device", "cpu", "--iters", "1", "--seq", "8", "--batch", "1"],
                               ["n_layer is 1000000000"])
    }

    @Test func threadCountsAreBounded() throws {
        for threads in ["0", "10000", "-3"] {
            try Self.expectRefusal(["embed", "--model", Self.bertFolder, "--threads=\(threads)", "hello"],
                                   ["--threads must be between 1 and"], status: 64)
        }
        try Self.expectRefusal(["bench", "gemm", "--threads", "100000"], ["--threads must be between 1 and"], status: 64)
        try Self.expectRefusal(["bench", "tokenizer", "--threads", "100000"], ["--threads must be between 1 and"], status: 64)
    }

    @Test func typeVocabSizeZeroIsADisagreement() throws {
        let folder = try HostileFolders.copy("bert/tiny-bert-model", config: [("type_vocab_size", .number(0))],
                                             vocabulary: HostileFolders.tinyVocabulary)
        try Self.expectRefusal(["embed", "--model", folder, "--device", "cpu", "hello"], ["type_vocab_size is 0", "token_type_embeddings"])
    }

    @Test func badOptionValuesAreNamed() throws {
        try Self.expectRefusal(["bench", "--dtype", "bogus", "--model", Self.bertFolder], ["--dtype must be auto, f32, f16, bf16 or int8"],
                               status: 64)
        try Self.expectRefusal(["embed", "--device", "tpu", "--model", Self.bertFolder, "x"],
                               ["--device must be auto, cpu, cuda, cuda-emulated"], status: 64)
        try Self.expectRefusal(["embed", "--device", "cpu", "--dtype", "f16", "--model", Self.bertFolder, "x"],
                               ["the CPU backend runs --dtype f32, bf16 or int8, not f16"], status: 64)
    }

    @Test func aModelSafetensorsThatIsNotAFileIsNamedAsSuch() throws {
        let asFolder = try HostileFolders.copy("bert/tiny-bert-model", vocabulary: HostileFolders.tinyVocabulary)
        unlink(asFolder + "/model.safetensors")
        mkdir(asFolder + "/model.safetensors", 0o700)
        try Self.expectRefusal(["embed", "--model", asFolder, "--device", "cpu", "hello"], ["model.safetensors", "is a folder"])
        let loop = try HostileFolders.copy("bert/tiny-bert-model", vocabulary: HostileFolders.tinyVocabulary)
        unlink(loop + "/model.safetensors")
        symlink(loop + "/model.safetensors", loop + "/model.safetensors")
        try Self.expectRefusal(["embed", "--model", loop, "--device", "cpu", "hello"],
                               ["model.safetensors", String(cString: strerror(ELOOP))])
    }
}
