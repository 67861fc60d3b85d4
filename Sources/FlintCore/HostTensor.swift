/// A tensor in host memory: f32 data (what the CPU backend computes in and what outputs come
/// back as), with its shape. Checkpoint tensors of other dtypes are converted on load.
public struct HostTensor: Sendable, Equatable {
    public var shape: Shape
    public var data: [Float]

    public init(shape: Shape, data: [Float]) {
        precondition(shape.count == data.count, "shape \(shape) does not match \(data.count) elements")
        self.shape = shape
        self.data = data
    }

    public init(zeros shape: Shape) {
        self.init(shape: shape, data: [Float](repeating: 0, count: shape.count))
    }

    /// Row `i` of a 2-D tensor.
    public func row(_ i: Int) -> ArraySlice<Float> {
        let cols = shape.dims.last ?? 1
        return data[(i * cols)..<((i + 1) * cols)]
    }

    /// Rows `range` of a 2-D tensor as a new tensor.
    public func rows(_ range: Range<Int>) -> HostTensor {
        let cols = shape.dims.last ?? 1
        return HostTensor(shape: [range.count, cols], data: Array(data[(range.lowerBound * cols)..<(range.upperBound * cols)]))
    }
}
