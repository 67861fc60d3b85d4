import FlintTestSupport
import FlintTokenizers
import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Tokenizer files that are not files, never end, or carry absurd lines (issue 10): each is refused
/// at once with a message that names the file and quotes at most a short prefix of the bad input.
@Suite("Hostile tokenizer files")
struct HostileTokenizerFileTests {
    @Test func deviceFilesAreRefusedWithoutReading() {
        // /dev/zero never ends: reading it used to abort with "failed to allocate".
        Expect.tokenizerError(["/dev/zero", "not a regular file"]) { _ = try Tokenizer.load("/dev/zero") }
        let folder = TestPaths.temporaryFolder()
        symlink("/dev/zero", folder + "/vocab.txt")
        Expect.tokenizerError(["vocab.txt", "not a regular file"]) { _ = try Tokenizer.load(folder) }
        let gpt2 = TestPaths.temporaryFolder()
        TestPaths.write(#"{"a": 0, "b": 1, "ab": 2}"#, to: gpt2 + "/vocab.json")
        #expect(mkfifo(gpt2 + "/merges.txt", 0o600) == 0)
        Expect.tokenizerError(["merges.txt", "not a regular file"]) { _ = try Tokenizer.load(gpt2 + "/vocab.json") }
    }

    @Test func aFolderNamedLikeATokenizerFileIsReportedAsOne() {
        let folder = TestPaths.temporaryFolder()
        TestPaths.write(#"{"a": 0}"#, to: folder + "/vocab.json")
        mkdir(folder + "/merges.txt", 0o700)
        Expect.tokenizerError(["merges.txt", "is a folder"]) { _ = try Tokenizer.load(folder + "/vocab.json") }
    }

    @Test func aHugeMergesLineIsRefusedQuicklyAndNotQuoted() {
        let folder = TestPaths.temporaryFolder()
        TestPaths.write(#"{"a": 0, "b": 1, "ab": 2}"#, to: folder + "/vocab.json")
        let line = String(repeating: "x", count: 5_000_000)
        TestPaths.write("#version: 0.2\na b\n" + line + " y\n", to: folder + "/merges.txt")
        do {
            _ = try Tokenizer.load(folder + "/vocab.json")
            Issue.record("a 5 MB merges line was accepted")
        } catch {
            let message = "\(error)"
            #expect(message.contains("line 3 is 5000002 bytes long") && message.contains("merges.txt"), "\(message.prefix(300))")
            #expect(message.utf8.count < 400, "the message is \(message.utf8.count) bytes")
        }
    }

    @Test func aLongBadMergeIsQuotedAsAShortPrefix() {
        let folder = TestPaths.temporaryFolder()
        TestPaths.write(#"{"a": 0, "b": 1, "ab": 2}"#, to: folder + "/vocab.json")
        TestPaths.write("a b\n" + String(repeating: "z", count: 30_000) + "\n", to: folder + "/merges.txt")
        do {
            _ = try Tokenizer.load(folder + "/vocab.json")
            Issue.record("a merge without a space was accepted")
        } catch {
            let message = "\(error)"
            #expect(message.contains("line 2: expected two tokens") && message.contains("(30000 bytes in all)"), "\(message.prefix(300))")
            #expect(message.utf8.count < 400, "the message is \(message.utf8.count) bytes")
        }
    }

    @Test func aHugeVocabularyLineIsRefused() {
        let folder = TestPaths.temporaryFolder()
        TestPaths.write("[PAD]\n[UNK]\n[CLS]\n[SEP]\n" + String(repeating: "w", count: 100_000) + "\n", to: folder + "/vocab.txt")
        Expect.tokenizerError(["vocab.txt", "line 5 is 100000 bytes long"]) { _ = try Tokenizer.load(folder) }
    }
}

/// Regressions from fuzzing (scripts/fuzz, target `tokenizers`).
@Suite("Fuzzing regressions")
struct FuzzingRegressionTests {
    /// Found by the fuzzer's truncation check: with no room left for text (max length 0, no special
    /// tokens), the whole text moves into one overflowing window longer than the limit. That is
    /// Hugging Face's `Encoding::truncate` for `max_len == 0`, so the check, not the tokenizer, was
    /// changed; this pins the behaviour.
    @Test func truncationToZeroMovesEverythingIntoOneWindow() throws {
        let model = try WordPiece(vocabulary: ["[UNK]", "hello", "world", "!"].enumerated().map { ($1, Int32($0)) }, path: "test")
        let t = Tokenizer(normalizer: BertNormalizer(), preTokenizer: BertPreTokenizer(), model: model, postProcessor: nil,
                          decoder: WordPieceDecoder(), addedTokens: [], source: "test")
        let e = try t.encode("hello world!", addSpecialTokens: false, truncation: Truncation(maxLength: 0))
        #expect(e.ids.isEmpty)
        #expect(e.overflowing.map(\.ids) == [[1, 2, 3]])
        let windows = try t.encode("hello world!", addSpecialTokens: false, truncation: Truncation(maxLength: 2, stride: 1))
        #expect(([windows] + windows.overflowing).allSatisfy { $0.count <= 2 })
    }
}
