import Hummingbird

/// A request the server refuses, with everything each API family needs to say so.
///
/// OpenAI routes answer `{"error": {"message", "type", "param", "code"}}`, TEI routes
/// `{"error", "error_type"}`, KServe v2 routes `{"error"}`; the status code is the same for all.
public struct ServeError: Error, Sendable, Equatable {
    public var status: HTTPResponse.Status
    public var message: String
    /// OpenAI's error type (`invalid_request_error`, `not_found_error`, ...).
    public var type: String
    /// The request field at fault, when there is one.
    public var param: String?
    public var code: String?
    /// Seconds a client should wait before retrying (429, 503).
    public var retryAfter: Int?

    public init(status: HTTPResponse.Status, message: String, type: String, param: String? = nil, code: String? = nil,
                retryAfter: Int? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.retryAfter = retryAfter
    }

    /// Malformed or out-of-range input (400), naming `param`.
    public static func invalid(_ message: String, param: String? = nil) -> ServeError {
        ServeError(status: .badRequest, message: message, type: "invalid_request_error", param: param)
    }

    /// A field of the wrong type or missing: 400 on OpenAI routes, 422 on TEI routes (as TEI does).
    public static func badField(_ param: String, _ message: String) -> ServeError {
        ServeError(status: .badRequest, message: "\(param): \(message)", type: "invalid_request_error", param: param, code: "invalid_type")
    }

    public static func unknownModel(_ name: String, known: [String]) -> ServeError {
        ServeError(status: .notFound, message: "model \"\(name)\" is not served here (served: \(known.joined(separator: ", ")))",
                   type: "not_found_error", param: "model", code: "model_not_found")
    }

    public static func wrongModelKind(_ name: String, route: String, needs: String) -> ServeError {
        ServeError(status: .badRequest, message: "model \"\(name)\" cannot serve \(route): it needs \(needs)",
                   type: "invalid_request_error", param: "model", code: "model_not_supported")
    }

    public static func queueFull(model: String, limit: Int) -> ServeError {
        ServeError(status: .tooManyRequests, message: "model \"\(model)\" has \(limit) requests waiting (--max-queue); retry shortly",
                   type: "rate_limit_error", code: "queue_full", retryAfter: 1)
    }

    public static let unauthorized = ServeError(status: .unauthorized, message: "missing or wrong API key (Authorization: Bearer KEY)",
                                                type: "authentication_error", code: "invalid_api_key")

    public static func bodyTooLarge(limit: Int) -> ServeError {
        ServeError(status: .contentTooLarge, message: "request body over \(limit) bytes (--max-body-bytes)",
                   type: "invalid_request_error", code: "body_too_large")
    }

    public static let draining = ServeError(status: .serviceUnavailable, message: "the server is shutting down",
                                            type: "server_error", code: "shutting_down", retryAfter: 1)

    /// The client went away before its response was ready (nginx's 499: never sent, only counted).
    public static let clientClosed = ServeError(status: HTTPResponse.Status(code: 499, reasonPhrase: "Client Closed Request"),
                                                message: "the client closed the connection", type: "client_closed")

    public static func internalError(_ message: String) -> ServeError {
        ServeError(status: .internalServerError, message: message, type: "server_error")
    }

    /// `{"error": {"message", "type", "param", "code"}}`.
    var openAIBody: JSONOut {
        .object([("error", .object([("message", .string(message)), ("type", .string(type)),
                                    ("param", param.map(JSONOut.string) ?? .null), ("code", code.map(JSONOut.string) ?? .null)]))])
    }

    /// The status and JSON body `style` answers with (TEI turns a wrong type into 422).
    public func rendered(_ style: APIStyle) -> (status: HTTPResponse.Status, body: JSONOut) {
        switch style {
        case .openAI: return (status, openAIBody)
        case .tei:
            return (code == "invalid_type" ? .unprocessableContent : status,
                    .object([("error", .string(message)), ("error_type", .string(type))]))
        case .kserve: return (status, .object([("error", .string(message))]))
        }
    }

    /// The error as `style` writes it.
    public func response(_ style: APIStyle) -> Response {
        let (status, body) = rendered(style)
        var response = Response.json(body, status: status)
        if let retryAfter { response.headers[.retryAfter] = String(retryAfter) }
        return response
    }
}

/// Which API family's error shape a route uses.
public enum APIStyle: Sendable {
    case openAI, tei, kserve
}
