import FlintJSON
extension JSONValue {
    /// Offsets as `[[start, end], ...]`, the layout HF's Python API and `flint tokenize` use.
    public init(_ spans: [TokenSpan]) { self = .array(spans.map { .array([.number(Double($0.start)), .number(Double($0.end))]) }) }
}
