/// A tensor's dimensions, outermost first, printed as `[batch, seq, hidden]` values.
public struct Shape: Hashable, Sendable, CustomStringConvertible, ExpressibleByArrayLiteral {
    public var dims: [Int]

    public init(_ dims: [Int]) { self.dims = dims }
    public init(arrayLiteral elements: Int...) { dims = elements }

    public var rank: Int { dims.count }
    /// Number of elements (1 for a scalar).
    public var count: Int { dims.reduce(1, *) }
    public subscript(i: Int) -> Int { dims[i] }
    public var description: String { "[" + dims.map(String.init).joined(separator: ", ") + "]" }

    /// Element count, or nil if it overflows `Int` (hostile headers).
    public var checkedCount: Int? {
        var n = 1
        for d in dims {
            guard d >= 0 else { return nil }
            let (r, o) = n.multipliedReportingOverflow(by: d)
            if o { return nil }
            n = r
        }
        return n
    }
}
