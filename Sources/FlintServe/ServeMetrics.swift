import Hummingbird
import Prometheus

/// The server's Prometheus metrics (`GET /metrics`), in a registry of its own (no process-wide
/// bootstrap, so several servers, e.g. in tests, keep separate counts).
public final class ServeMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()

    static let latencyBuckets: [Duration] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
        .map { .nanoseconds(Int64($0 * 1e9)) }

    private func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "flint", metricName: metric, unitName: unit, helpText: help)
    }

    private func histogram(_ metric: String, _ help: String, model: String) -> DurationHistogram {
        registry.makeDurationHistogram(descriptor: name(metric, "seconds", help), labels: [("model", model)], buckets: Self.latencyBuckets)
    }

    /// A request answered: counted by route and status, its end-to-end time (body included) recorded.
    func request(route: String, status: Int, duration: Duration) {
        registry.makeCounter(descriptor: name("requests", "total", "HTTP requests by route and status"),
                             labels: [("route", route), ("status", String(status))]).increment()
        registry.makeDurationHistogram(descriptor: name("request_duration", "seconds", "End-to-end request time, streamed bodies included"),
                                       labels: [("route", route)], buckets: Self.latencyBuckets).record(duration)
    }

    func encoderBatch(model: String, _ e: EmbeddingScheduler.BatchEvent) {
        batch(model: model, requests: e.requests, tokens: e.tokens, inferenceSeconds: e.inferenceSeconds, queueSeconds: e.queueSeconds)
    }

    func decoderStep(model: String, _ e: CompletionScheduler.StepEvent) {
        batch(model: model, requests: e.sequences, tokens: e.tokens, inferenceSeconds: e.inferenceSeconds, queueSeconds: e.queueSeconds)
        let ttft = histogram("time_to_first_token", "From a sequence's arrival to its first token", model: model)
        for s in e.firstTokenSeconds { ttft.record(.nanoseconds(Int64(s * 1e9))) }
        let itl = histogram("inter_token_latency", "Between a sequence's consecutive tokens", model: model)
        for s in e.interTokenSeconds { itl.record(.nanoseconds(Int64(s * 1e9))) }
        registry.makeCounter(descriptor: name("generated_tokens", "total", "Tokens generated"), labels: [("model", model)])
            .increment(by: Int64(e.firstTokenSeconds.count + e.interTokenSeconds.count))
    }

    private func batch(model: String, requests: Int, tokens: Int, inferenceSeconds: Double, queueSeconds: [Double]) {
        registry.makeValueHistogram(descriptor: name("batch_requests", "", "Requests (GPT-2: sequences) per formed batch"),
                                    labels: [("model", model)], buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256]).record(Double(requests))
        registry.makeValueHistogram(descriptor: name("batch_tokens", "", "Real tokens per formed batch"),
                                    labels: [("model", model)], buckets: [1, 16, 64, 256, 1024, 4096, 16384, 65536]).record(Double(tokens))
        histogram("inference_duration", "One forward of a formed batch", model: model).record(.nanoseconds(Int64(inferenceSeconds * 1e9)))
        let queue = histogram("queue_duration", "From a request's arrival to its batch's start", model: model)
        for s in queueSeconds { queue.record(.nanoseconds(Int64(s * 1e9))) }
    }

    /// The exposition text, with the gauges read now.
    func render(_ models: ServedModels) -> String {
        for (model, served) in models.entries {
            let depth = registry.makeGauge(descriptor: name("queue_depth", "", "Requests (GPT-2: sequences) waiting, not running"),
                                           labels: [("model", model)])
            switch served {
            case let .encoder(s): depth.set(Double(s.queueDepth))
            case let .decoder(s):
                depth.set(Double(s.queueDepth))
                let inUse = name("kv_slots_in_use", "", "KV cache slots holding a running sequence")
                registry.makeGauge(descriptor: inUse, labels: [("model", model)]).set(Double(s.slotsInUse))
                registry.makeGauge(descriptor: name("kv_slots", "", "KV cache slots"), labels: [("model", model)]).set(Double(s.slots))
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
