import FlintCore

/// Finite weights whose products overflow f32: every element of one tensor set to ±3e38, the rest
/// from `base`. A forward through that tensor produces infinity, then NaN (hostile-input tests).
public struct OverflowingWeights: WeightSource {
    public let base: any WeightSource
    public let tensor: String

    public init(base: any WeightSource, tensor: String) {
        self.base = base
        self.tensor = tensor
    }

    public func tensor(_ name: String, shape: Shape) throws(FlintError) -> HostTensor {
        var t = try base.tensor(name, shape: shape)
        if name == tensor { t.data = t.data.map { $0 < 0 ? -3e38 : 3e38 } }
        return t
    }
}
