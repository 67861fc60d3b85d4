import FlintCore
import FlintModels

/// A model as the server runs it.
public enum ServedModel: Sendable {
    case encoder(EmbeddingScheduler)
    case decoder(CompletionScheduler)

    public var kind: ModelFolder.Kind {
        switch self {
        case .encoder: return .encoder
        case .decoder: return .decoder
        }
    }
}

/// The models a server serves, by name, in `--model` order.
public struct ServedModels: Sendable {
    public let entries: [(name: String, model: ServedModel)]

    public init(_ entries: [(name: String, model: ServedModel)]) throws(FlintError) {
        var seen: Set<String> = []
        for e in entries where !seen.insert(e.name).inserted {
            throw .invalidInput("two --model options are named \"\(e.name)\"; name them with NAME=PATH")
        }
        self.entries = entries
    }

    public var names: [String] { entries.map(\.name) }

    public func model(_ name: String) -> ServedModel? { entries.first { $0.name == name }?.model }

    /// The encoder called `name`; without a name, the first encoder served.
    func encoder(_ name: String?, route: String) throws(ServeError) -> (name: String, scheduler: EmbeddingScheduler) {
        guard let name else {
            for e in entries { if case let .encoder(s) = e.model { return (e.name, s) } }
            throw .invalid("no embedding model is served here", param: "model")
        }
        switch model(name) {
        case nil: throw .unknownModel(name, known: names)
        case let .encoder(s)?: return (name, s)
        case .decoder?: throw .wrongModelKind(name, route: route, needs: "an encoder (BERT) model")
        }
    }

    /// The decoder called `name`; without a name, the first decoder served.
    func decoder(_ name: String?, route: String) throws(ServeError) -> (name: String, scheduler: CompletionScheduler) {
        guard let name else {
            for e in entries { if case let .decoder(s) = e.model { return (e.name, s) } }
            throw .invalid("no completion model is served here", param: "model")
        }
        switch model(name) {
        case nil: throw .unknownModel(name, known: names)
        case let .decoder(s)?: return (name, s)
        case .encoder?: throw .wrongModelKind(name, route: route, needs: "a GPT-2 model")
        }
    }

    /// `--model [NAME=]PATH`: NAME defaults to PATH's last path component.
    public static func parseModelOption(_ option: String) -> (name: String, path: String) {
        if let eq = option.firstIndex(of: "="), !option[..<eq].contains("/") {
            return (String(option[..<eq]), String(option[option.index(after: eq)...]))
        }
        var path = option
        while path.count > 1, path.hasSuffix("/") { path.removeLast() }
        let name = path.split(separator: "/").last.map(String.init) ?? path
        return (name, option)
    }
}
