import Hummingbird
import Prometheus
import Synchronization

/// The server's Prometheus metrics (`GET /metrics`), in a registry of its own (no process-wide
/// bootstrap, so several servers, e.g. in tests, keep separate counts).
///
/// The handles are looked up in the registry once per label set and kept: the registry's lookup
/// (name and label validation, a lock, a dictionary keyed by labels) costs microseconds, paid
/// several times per request otherwise.
public final class ServeMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let routes = Mutex<[String: RouteMetrics]>([:])
    private let models = Mutex<[String: ModelMetrics]>([:])

    static let latencyBuckets: [Duration] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
        .map { .nanoseconds(Int64($0 * 1e9)) }

    private static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "flint", metricName: metric, unitName: unit, helpText: help)
    }

    /// A route's end-to-end histogram and its counters by status.
    private struct RouteMetrics {
        let duration: DurationHistogram
        var requests: [Int: Counter] = [:]
    }

    /// One model's batch (and, for decoders, token) metrics.
    private struct ModelMetrics {
        let batchRequests: ValueHistogram
        let batchTokens: ValueHistogram
        let inference: DurationHistogram
        let queue: DurationHistogram
        /// Registered on a decoder's first step only (an encoder exports no token metrics).
        var tokens: (firstToken: DurationHistogram, interToken: DurationHistogram, generated: Counter)?
    }

    /// A request answered: counted by route and status, its end-to-end time (body included) recorded.
    func request(route: String, status: Int, duration: Duration) {
        let (histogram, counter) = routes.withLock { cache -> (DurationHistogram, Counter) in
            var entry = cache[route] ?? RouteMetrics(duration: registry.makeDurationHistogram(
                descriptor: Self.name("request_duration", "seconds", "End-to-end request time, streamed bodies included"),
                labels: [("route", route)], buckets: Self.latencyBuckets))
            let counter = entry.requests[status] ?? registry.makeCounter(
                descriptor: Self.name("requests", "total", "HTTP requests by route and status"),
                labels: [("route", route), ("status", String(status))])
            entry.requests[status] = counter
            cache[route] = entry
            return (entry.duration, counter)
        }
        counter.increment()
        histogram.record(duration)
    }

    func encoderBatch(model: String, _ e: EmbeddingScheduler.BatchEvent) {
        batch(handles(model), requests: e.requests, tokens: e.tokens, inferenceSeconds: e.inferenceSeconds, queueSeconds: e.queueSeconds)
    }

    func decoderStep(model: String, _ e: CompletionScheduler.StepEvent) {
        let m = handles(model, tokens: true)
        batch(m, requests: e.sequences, tokens: e.tokens, inferenceSeconds: e.inferenceSeconds, queueSeconds: e.queueSeconds)
        guard let t = m.tokens else { return }
        for s in e.firstTokenSeconds { t.firstToken.record(.nanoseconds(Int64(s * 1e9))) }
        for s in e.interTokenSeconds { t.interToken.record(.nanoseconds(Int64(s * 1e9))) }
        t.generated.increment(by: Int64(e.firstTokenSeconds.count + e.interTokenSeconds.count))
    }

    private func handles(_ model: String, tokens: Bool = false) -> ModelMetrics {
        models.withLock { cache in
            let labels = [("model", model)]
            func latency(_ metric: String, _ help: String) -> DurationHistogram {
                registry.makeDurationHistogram(descriptor: Self.name(metric, "seconds", help), labels: labels, buckets: Self.latencyBuckets)
            }
            let perBatch = Self.name("batch_requests", "", "Requests (GPT-2: sequences) per formed batch")
            var m = cache[model] ?? ModelMetrics(
                batchRequests: registry.makeValueHistogram(descriptor: perBatch, labels: labels,
                                                           buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256]),
                batchTokens: registry.makeValueHistogram(descriptor: Self.name("batch_tokens", "", "Real tokens per formed batch"),
                                                         labels: labels, buckets: [1, 16, 64, 256, 1024, 4096, 16384, 65536]),
                inference: latency("inference_duration", "One forward of a formed batch"),
                queue: latency("queue_duration", "From a request's arrival to its batch's start"))
            if tokens, m.tokens == nil {
                m.tokens = (latency("time_to_first_token", "From a sequence's arrival to its first token"),
                            latency("inter_token_latency", "Between a sequence's consecutive tokens"),
                            registry.makeCounter(descriptor: Self.name("generated_tokens", "total", "Tokens generated"), labels: labels))
            }
            cache[model] = m
            return m
        }
    }

    private func batch(_ m: ModelMetrics, requests: Int, tokens: Int, inferenceSeconds: Double, queueSeconds: [Double]) {
        m.batchRequests.record(Double(requests))
        m.batchTokens.record(Double(tokens))
        m.inference.record(.nanoseconds(Int64(inferenceSeconds * 1e9)))
        for s in queueSeconds { m.queue.record(.nanoseconds(Int64(s * 1e9))) }
    }

    /// The exposition text, with the gauges read now.
    func render(_ models: ServedModels) -> String {
        for (model, served) in models.entries {
            let depth = registry.makeGauge(descriptor: Self.name("queue_depth", "", "Requests (GPT-2: sequences) waiting, not running"),
                                           labels: [("model", model)])
            switch served {
            case let .encoder(s): depth.set(Double(s.queueDepth))
            case let .decoder(s):
                depth.set(Double(s.queueDepth))
                let inUse = Self.name("kv_slots_in_use", "", "KV cache slots holding a running sequence")
                registry.makeGauge(descriptor: inUse, labels: [("model", model)]).set(Double(s.slotsInUse))
                registry.makeGauge(descriptor: Self.name("kv_slots", "", "KV cache slots"), labels: [("model", model)]).set(Double(s.slots))
            }
        }
        return registry.emitToString()
    }

    /// The route label of a path: the route's pattern (model names in KServe paths become `{name}`).
    static func route(of path: String) -> String {
        let known = ["/v1/models", "/v1/embeddings", "/v1/completions", "/embed", "/tokenize", "/info", "/health", "/metrics", "/v2",
                     "/v2/health/live", "/v2/health/ready", "/predict", "/rerank", "/v1/answer"]
        if known.contains(path) { return path }
        if path.hasPrefix("/v2/models/") {
            for suffix in ["/ready", "/infer"] where path.hasSuffix(suffix) { return "/v2/models/{name}" + suffix }
            return "/v2/models/{name}"
        }
        return "other"
    }
}
