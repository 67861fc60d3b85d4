extension Duration {
    /// The duration in milliseconds (for latency reports).
    public var milliseconds: Double { Double(components.seconds) * 1000 + Double(components.attoseconds) * 1e-15 }
}
