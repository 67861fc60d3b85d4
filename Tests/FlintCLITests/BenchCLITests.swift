import FlintJSON
import FlintTestSupport
import Testing

/// `flint bench` on encoder folders with heads: each row times the head's own output (the start/end
/// logits of a QA model, the class logits of a classifier), as the JSON's `output` says.
@Suite("flint bench on task heads")
struct BenchCLITests {
    @Test(arguments: [
        ("bert/tiny-bert-qa", "span_logits"), ("bert/tiny-bert-seqcls", "logits"), ("bert/tiny-bert-tokcls", "logits"),
        ("bert/tiny-bert-model", "last_hidden_state"), ("bert/tiny-bert-mlm", "last_hidden_state"),
    ])
    func timesTheHeadOutput(folder: String, output: String) throws {
        let json = TestPaths.temporaryFolder() + "/bench.json"
        let args = ["bench", "--model", TestPaths.fixture(folder), "--device", "cpu", "--threads", "1", "--iters", "2",
                    "--seq", "8,16", "--batch", "1,2", "--json", json]
        guard let r = try HostileCLITests.flint(args) else { return }
        #expect(r.status == 0, "flint \(args.joined(separator: " ")): \(r.stderr.prefix(500))")
        let doc = try JSONParser.parse(try #require(TestPaths.read(json)))
        #expect(doc["output"]?.string == output, "\(doc.serialized.prefix(300))")
        #expect(r.stdout.contains("output \(output)"), "\(r.stdout.prefix(500))")
        let rows = try #require(doc["rows"]?.array)
        #expect(rows.map { [$0["seq"]?.int, $0["batch"]?.int] } == [[8, 1], [8, 2], [16, 1], [16, 2]])
        for row in rows {
            guard case let .number(p50)? = row["p50_ms"] else { Issue.record("no p50_ms in \(row.serialized)"); continue }
            #expect(row["iters"]?.int == 2 && p50 > 0, "\(row.serialized)")
        }
    }
}
