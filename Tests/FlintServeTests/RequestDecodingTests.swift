import FlintJSON
@testable import FlintServe
import FlintTestSupport
import Testing

/// `FlintServer.decode`, the handlers' own decoding that FlintFuzz's `serve` target drives: the
/// committed seeds decode to what their routes promise, and refusals are the routes' errors.
@Suite(.timeLimit(.minutes(2)))
struct RequestDecodingTests {
    /// A seed of Fuzz/corpus/serve: its first byte picks the route (and KServe's model), the rest is the body.
    static func seed(_ name: String) throws -> (route: ServeRoute, model: String, body: [UInt8]) {
        let bytes = try #require(TestPaths.read(TestPaths.repositoryRoot + "/Fuzz/corpus/serve/" + name))
        let first = Int(try #require(bytes.first))
        return (ServeRoute.allCases[first % 5], ["minilm", "tiny-gpt2", "missing"][first / 5 % 3], Array(bytes.dropFirst()))
    }

    static func decode(_ name: String) throws -> Result<DecodedRequest, ServeError> {
        let (route, model, body) = try seed(name)
        let server = try Harness.server()
        do {
            return .success(try server.decode(route, body: body, model: model))
        } catch {
            return .failure(error)
        }
    }

    @Test(.enabled(if: Harness.available, serveSkipReason))
    func seedsDecodeAsTheirRoutesPromise() throws {
        let text = try Self.decode("embeddings-text").get()
        #expect(text.model == "minilm" && text.inputs.count == 1 && text.inputs[0].first == 101 && text.inputs[0].last == 102)
        let ids = try Self.decode("embeddings-ids").get()
        #expect(ids.inputs == [[101, 7592, 2088, 102]] && ids.truncated == [false])
        #expect(try Self.decode("embeddings-id-arrays").get().inputs == [[101, 7592], [2088, 102, 0]])
        let completion = try Self.decode("completions-ids").get()
        #expect(completion.inputs == [[5, 17, 3], [8]] && completion.sequences.map(\.choice) == [0, 1])
        #expect(completion.sequences.allSatisfy { $0.parameters.ignoreEOS && $0.parameters.sampling.repetitionPenalty == 1.2 })
        let kserve = try Self.decode("kserve-ids").get()
        #expect(kserve.inputs == [[101, 7592, 102], [101, 102]], "the attention mask drops the padding")
        let tokenized = try Self.decode("tokenize-many").get()
        #expect(tokenized.tokenized.count == 2 && tokenized.tokenized.allSatisfy { !$0.tokens.isEmpty })
        for (count, tokens) in tokenized.tokenized {
            #expect(tokens.allSatisfy { $0.start <= $0.stop && $0.stop <= count })
        }
    }

    @Test(.enabled(if: Harness.available, serveSkipReason))
    func refusalsAreTheRoutesErrors() throws {
        guard case let .failure(wrongModel) = try Self.decode("embeddings-wrong-model") else {
            Issue.record("an embedding request for the GPT-2 model decoded")
            return
        }
        #expect(wrongModel.status == .badRequest && wrongModel.param == "model")
        guard case let .failure(missing) = try Self.decode("kserve-missing") else {
            Issue.record("KServe infer for an unknown model decoded")
            return
        }
        #expect(missing.status == .notFound)
        // logprobs and the penalties in it are supported; logit_bias is not.
        guard case let .failure(unsupported) = try Self.decode("completions-unsupported") else {
            Issue.record("logit_bias decoded")
            return
        }
        #expect(unsupported.param == "logit_bias")
        // A wrong type on a TEI route is TEI's 422, and the body carries the message.
        let server = try Harness.server()
        do {
            _ = try server.decode(.teiEmbed, body: Array(#"{"inputs": 5}"#.utf8))
            Issue.record("inputs: 5 decoded")
        } catch {
            let (status, body) = error.rendered(.tei)
            #expect(status == .unprocessableContent)
            #expect(body.serialized.contains("inputs"))
        }
    }
}
