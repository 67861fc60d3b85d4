import FlintModels
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import UnixSignals
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `flint serve`: the routes of the OpenAI, TEI and KServe v2 APIs over the models' batching
/// schedulers. Handlers parse, queue and write; forwards run on the models' threads (a lone request's on its own task).
public final class FlintServer: Sendable {
    public static let version = "0.1.0"
    public let models: ServedModels
    public let options: ServeOptions
    /// The activation dtype, as TEI's /info names it (`float32`, `float16`, `bfloat16`).
    let dtypeName: String
    /// Unix time the server was made (the models' `created`).
    let created: Int
    /// Set by SIGTERM/SIGINT: readiness and new requests answer 503 while in-flight ones finish.
    let draining = Atomic<Bool>(false)
    /// Requests whose response (body included) is not written yet.
    let inFlight = Atomic<Int>(0)
    let logger: Logger
    public let metrics = ServeMetrics()

    public init(models: ServedModels, options: ServeOptions, dtypeName: String = "float32", logger: Logger = Logger(label: "flint.serve")) {
        self.models = models
        self.options = options
        self.dtypeName = dtypeName
        self.logger = logger
        created = Int(time(nil))
        let metrics = metrics
        for (name, model) in models.entries {
            switch model {
            case let .encoder(s): s.observer.withLock { $0 = { metrics.encoderBatch(model: name, $0) } }
            case let .decoder(s): s.observer.withLock { $0 = { metrics.decoderStep(model: name, $0) } }
            }
        }
    }

    public var isDraining: Bool { draining.load(ordering: .relaxed) }
    public var requestsInFlight: Int { inFlight.load(ordering: .relaxed) }

    /// Every route, behind the API-key, drain and in-flight gate.
    public func router() -> Router<ServeContext> {
        let router = Router(context: ServeContext.self)
        router.add(middleware: GateMiddleware(server: self))
        router.get("/v1/models") { _, _ in self.listModels() }
        post(router, "/v1/embeddings", .openAI) { server, request, _ async throws(ServeError) in try await server.embeddings(request) }
        post(router, "/v1/completions", .openAI) { server, request, context async throws(ServeError) in
            try await server.completions(request, context: context)
        }
        post(router, "/embed", .tei) { server, request, _ async throws(ServeError) in try await server.teiEmbed(request) }
        post(router, "/tokenize", .tei) { server, request, _ async throws(ServeError) in try await server.teiTokenize(request) }
        router.get("/info") { _, _ in await Self.answer(.tei) { () async throws(ServeError) in try self.teiInfo() } }
        router.get("/health") { _, _ in self.readiness() }
        router.get("/v2/health/live") { _, _ in Response(status: .ok) }
        router.get("/v2/health/ready") { _, _ in self.readiness() }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: ResponseBody(byteBuffer: ByteBuffer(string: self.metrics.render(self.models))))
        }
        addKServeRoutes(to: router)
        addTaskRoutes(to: router)
        return router
    }

    private func post(_ router: Router<ServeContext>, _ path: String, _ style: APIStyle,
                      _ handler: @escaping @Sendable (FlintServer, Request, ServeContext) async throws(ServeError) -> Response) {
        router.post(RouterPath(path)) { request, context in
            await Self.answer(style) { () async throws(ServeError) in try await handler(self, request, context) }
        }
    }

    /// 200 while serving, 503 once draining.
    func readiness() -> Response {
        isDraining ? ServeError.draining.response(.tei) : Response(status: .ok)
    }

    static func answer(_ style: APIStyle, _ body: () async throws(ServeError) -> Response) async -> Response {
        do {
            return try await body()
        } catch {
            return error.response(style)
        }
    }

    /// Which error shape a path's API family uses.
    static func style(of path: String) -> APIStyle {
        if path.hasPrefix("/v1/") { return .openAI }
        if path == "/v2" || path.hasPrefix("/v2/") { return .kserve }
        return .tei
    }

    /// Serves until SIGTERM or SIGINT, then drains (see `drain`) and returns. `onListening`
    /// gets `http://HOST:PORT` once the socket is bound.
    public func run(onListening: @escaping @Sendable (String) -> Void) async throws {
        let group = ServiceGroup(configuration: .init(services: [application(onListening: onListening)], logger: logger))
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        // The signal task drains and then asks the group to stop; the server task ending (after
        // that, or on an error) ends the signal task.
        try await withThrowingTaskGroup(of: Bool.self) { tasks in
            tasks.addTask {
                try await group.run()
                return true
            }
            tasks.addTask {
                for await signal in signals {
                    self.logger.info("\(signal): draining (up to \(self.options.drainTimeout) s)")
                    await self.drain()
                    await group.triggerGracefulShutdown()
                    break
                }
                return false
            }
            while let serverEnded = try await tasks.next() {
                if serverEnded {
                    tasks.cancelAll()
                    return
                }
            }
        }
    }

    /// The HTTP/1.1 server on `options.host`:`options.port`, every connection watched for its client
    /// going away (`ClientDisconnect`).
    public func application(onListening: @escaping @Sendable (String) -> Void = { _ in }) -> some ApplicationProtocol {
        let host = options.host
        return Application(
            router: router(),
            server: .http1(configuration: .init(additionalChannelHandlers: [ClientDisconnect()])),
            configuration: .init(address: .hostname(host, port: options.port), serverName: nil),
            onServerRunning: { channel in onListening("http://\(host):\(channel.localAddress?.port ?? 0)") },
            logger: logger
        )
    }

    /// Turns readiness and new requests to 503 at once, then waits until every in-flight
    /// request and stream has finished, or `drainTimeout` has passed.
    public func drain() async {
        draining.store(true, ordering: .relaxed)
        let deadline = ContinuousClock.now + .milliseconds(Int64(options.drainTimeout * 1000))
        while requestsInFlight > 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        if requestsInFlight > 0 { logger.warning("drain timeout: \(requestsInFlight) requests still in flight") }
    }
}

/// API key, drain and in-flight accounting for every route; unknown routes answer JSON errors.
struct GateMiddleware: RouterMiddleware {
    typealias Context = ServeContext
    let server: FlintServer

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        let style = FlintServer.style(of: path)
        // Probes and the Prometheus scrape need no key and answer while draining.
        let isHealth = path == "/health" || path.hasPrefix("/v2/health") || path == "/metrics"
        let started = ContinuousClock.now
        let route = ServeMetrics.route(of: path)
        if !isHealth, let key = server.options.apiKey, request.headers[.authorization] != "Bearer \(key)" {
            server.metrics.request(route: route, status: 401, duration: ContinuousClock.now - started)
            return ServeError.unauthorized.response(style)
        }
        if !isHealth, server.isDraining {
            server.metrics.request(route: route, status: 503, duration: ContinuousClock.now - started)
            return ServeError.draining.response(style)
        }
        server.inFlight.add(1, ordering: .relaxed)
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            server.inFlight.subtract(1, ordering: .relaxed)
            if let e = error as? any HTTPResponseError {
                server.metrics.request(route: route, status: Int(e.status.code), duration: ContinuousClock.now - started)
                let message = e.status == .notFound ? "no route \(request.method) \(path)" : "\(e.status)"
                let type = e.status == .notFound ? "not_found_error" : "invalid_request_error"
                return ServeError(status: e.status, message: message, type: type).response(style)
            }
            throw error
        }
        let body = response.body
        let server = server
        let status = Int(response.status.code)
        response.body = ResponseBody(contentLength: body.contentLength) { writer in
            defer {
                server.inFlight.subtract(1, ordering: .relaxed)
                server.metrics.request(route: route, status: status, duration: ContinuousClock.now - started)
            }
            try await body.write(writer)
        }
        return response
    }
}

extension FlintServer {
    /// Logs to standard error (standard output carries the `listening on` line).
    public static func bootstrapLogging() {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .info
            return handler
        }
    }
}
