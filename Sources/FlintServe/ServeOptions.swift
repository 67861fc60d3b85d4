/// How `flint serve` listens and what it lets through (its command-line options).
public struct ServeOptions: Sendable {
    public var host: String
    /// 0 picks a free port (the `listening on` line says which).
    public var port: Int
    public var limits: BatchLimits
    public var maxBodyBytes: Int
    /// When set, every route but the health routes needs `Authorization: Bearer KEY`.
    public var apiKey: String?
    /// Seconds in-flight requests get to finish after SIGTERM/SIGINT.
    public var drainTimeout: Double

    public init(host: String = "127.0.0.1", port: Int = 8080, limits: BatchLimits = BatchLimits(), maxBodyBytes: Int = 2 << 20,
                apiKey: String? = nil, drainTimeout: Double = 30) {
        self.host = host
        self.port = port
        self.limits = limits
        self.maxBodyBytes = maxBodyBytes
        self.apiKey = apiKey
        self.drainTimeout = drainTimeout
    }

    /// Parses a byte count: a plain number or one with a KiB/MiB/GiB (or KB/MB/GB, K/M/G) suffix.
    public static func parseBytes(_ text: String) -> Int? {
        let units: [(String, Int)] = [("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("KB", 1000), ("MB", 1_000_000),
                                      ("GB", 1_000_000_000), ("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30), ("B", 1)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let n = Int(text.dropLast(suffix.count)), n >= 0 else { return nil }
            let (v, overflow) = n.multipliedReportingOverflow(by: scale)
            return overflow ? nil : v
        }
        return Int(text).flatMap { $0 >= 0 ? $0 : nil }
    }
}
