import ArgumentParser

/// The `flint` command line: one executable, one subcommand per job.
@main
struct Flint: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flint",
        abstract: "Transformer inference for BERT and GPT-2 models, on CPUs and NVIDIA GPUs.",
        version: "0.1.0",
        subcommands: [
            Bench.self, Embed.self, Answer.self, Eval.self, Classify.self, Rerank.self, Tag.self, Generate.self, Tokenize.self,
            Check.self, Serve.self, Profile.self,
        ]
    )
}
