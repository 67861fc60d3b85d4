import FlintCore

extension Plan.Epilogue {
    /// The epilogue for a transformers activation name (`hidden_act`, `activation_function`).
    init(huggingFace name: String, field: String, path: String) throws(FlintError) {
        switch name {
        case "gelu": self = .gelu
        case "gelu_new", "gelu_pytorch_tanh", "gelu_fast": self = .geluTanh
        case "relu": self = .relu
        case "tanh": self = .tanh
        default: throw .unsupportedModel(path: path, reason: "\(field) \"\(name)\" is not implemented (gelu, gelu_new, relu, tanh)")
        }
    }
}
