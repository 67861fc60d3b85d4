import ArgumentParser
import FlintCore
import FlintJSON
import FlintModels

/// `flint eval`: task evaluations.
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Evaluate a model on a task's data set.", subcommands: [EvalSquad.self])
}

/// `flint eval squad`: the official SQuAD metrics of `flint answer`'s predictions.
struct EvalSquad: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "squad",
        abstract: "Exact match and F1 on a SQuAD v1.1 or v2.0 file, with latency and throughput.",
        discussion: """
            Answers every question as `flint answer` does (v2.0 files with the no-answer allowed), writes the \
            predictions in the official format ({"id": "answer text"}) and prints one JSON line: the official \
            script's exact_match, f1 and total (v2.0 also HasAns_* and NoAns_*), then questions, seconds, \
            questions_per_second and the per-question latency (p50_ms, p95_ms, p99_ms; one question per forward).
            """
    )

    @Option(name: .long, help: "Model folder with a *ForQuestionAnswering architecture.")
    var model: String

    @Option(name: .long, help: "SQuAD v1.1 or v2.0 JSON file.")
    var data: String

    @Option(name: .long, help: "Where to write the predictions (official format).")
    var predictions = "predictions.json"

    @OptionGroup var qa: AnswerOptions

    @OptionGroup var options: DeviceOptions

    func validate() throws { try qa.validate() }

    func run() throws {
        let json: JSONValue
        do { json = try JSONParser.parse(try Console.readFile(data)) } catch let e as JSONParser.Failure {
            throw CommandError("\(data): invalid JSON at byte \(e.offset): \(e.reason)")
        }
        let squad = try Squad(json: json, path: data)
        let answerer = try qa.open(model, backend: try options.backend(), handleImpossible: squad.isVersion2 || qa.handleImpossibleAnswer)
        Console.progress("answering \(squad.questions.count) questions (SQuAD \(squad.isVersion2 ? "v2.0" : "v1.1"))...")
        var predicted: [(key: String, value: JSONValue)] = []
        var byId: [String: String] = [:]
        var latencies: [Double] = []
        let started = ContinuousClock.now
        for q in squad.questions {
            let t0 = ContinuousClock.now
            let best = try answerer.answer([(q.question, q.context)])[0][0]
            latencies.append((ContinuousClock.now - t0).milliseconds)
            predicted.append((q.id, .string(best.text)))
            byId[q.id] = best.text
        }
        let seconds = (ContinuousClock.now - started).milliseconds / 1000
        try Console.writeFile(predictions, JSONValue.object(predicted).serialized + "\n")
        let latency = Stats(latencies)
        var out = squad.metrics(byId).map { (key: $0.key, value: JSONValue.number($0.value)) }
        out += [
            ("questions", .number(Double(squad.questions.count))), ("seconds", .number(seconds)),
            ("questions_per_second", .number(Double(squad.questions.count) / max(seconds, 1e-9))), ("p50_ms", .number(latency.p50)),
            ("p95_ms", .number(latency.p95)), ("p99_ms", .number(latency.p99)), ("predictions", .string(predictions)),
        ]
        print(JSONValue.object(out).serialized)
    }
}
