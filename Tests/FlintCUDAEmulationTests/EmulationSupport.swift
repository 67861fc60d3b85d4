// Helpers for running the CUDA kernels under the emulation (CFlintCUDAEmulation): "device" buffers
// in each dtype's storage format, cuLaunchKernel-style argument packing, and the error metric.
//
// Tolerances (max |got - ref| / max |ref| over the output, the CPU backend as reference, both fed
// the same inputs already rounded to the dtype, so the error is the kernel's fp32 arithmetic plus
// the rounding of its outputs):
// - f32: 1e-5. The kernels and the CPU backend differ only in summation order and in exp/erf/tanh
//   implementations (libm here, vectorized polynomials on the CPU side): ~1e-6 observed.
// - f16: 2e-3. The output is rounded to 11 significant bits: up to 2^-11 ≈ 4.9e-4 of the value,
//   plus fp32 noise; 2e-3 leaves 4x margin without hiding a real bug (an error of one element
//   in a reduction, a wrong row, a missing bias term all give >= 1e-2).
// - bf16: 1.6e-2. Output rounded to 8 significant bits: up to 2^-8 / 2 ≈ 2e-3 of the value (the
//   largest outputs round by up to ~4e-3 of max|ref|); 1.6e-2 = 4 bf16 ulps of the largest value.
import CFlintCUDAEmulation
import FlintCPU
import Testing

enum EmuDType: String, CaseIterable, CustomStringConvertible, Sendable {
    case f32, f16, bf16
    var description: String { rawValue }
    var size: Int { self == .f32 ? 4 : 2 }
    var tolerance: Double {
        switch self {
        case .f32: return 1e-5
        case .f16: return 2e-3
        case .bf16: return 1.6e-2
        }
    }

    /// values as the kernel sees them once stored in this dtype.
    func rounded(_ values: [Float]) -> [Float] {
        switch self {
        case .f32: return values
        case .f16: return values.map { flint_emu_half_to_float(flint_emu_float_to_half($0)) }
        case .bf16: return values.map { flint_emu_bfloat16_to_float(flint_emu_float_to_bfloat16($0)) }
        }
    }
}

struct EmuRng {
    var state: UInt64
    init(_ seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }
    mutating func next() -> Float {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Float(Int32(truncatingIfNeeded: state >> 33)) / Float(Int32.max)  // [-1, 1]
    }
    mutating func array(_ n: Int, scale: Float = 1) -> [Float] { (0..<n).map { _ in next() * scale } }
    /// Uniform in 0..<bound.
    mutating func index(_ bound: Int) -> Int32 {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Int32((state >> 33) % UInt64(bound))
    }
}

/// Host memory standing in for device memory, in a dtype's storage format.
final class DeviceBuffer {
    let raw: UnsafeMutableRawPointer
    let count: Int
    let dtype: EmuDType

    init(count: Int, dtype: EmuDType) {
        self.count = count
        self.dtype = dtype
        raw = UnsafeMutableRawPointer.allocate(byteCount: max(1, count) * dtype.size, alignment: 16)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: max(1, count) * dtype.size)
    }

    convenience init(_ values: [Float], dtype: EmuDType) {
        self.init(count: values.count, dtype: dtype)
        store(values)
    }

    func store(_ values: [Float]) {
        precondition(values.count == count)
        values.withUnsafeBufferPointer { src in
            switch dtype {
            case .f32: raw.copyMemory(from: src.baseAddress!, byteCount: 4 * count)
            case .f16: flint_emu_floats_to_half(src.baseAddress, raw.assumingMemoryBound(to: UInt16.self), count)
            case .bf16: flint_emu_floats_to_bfloat16(src.baseAddress, raw.assumingMemoryBound(to: UInt16.self), count)
            }
        }
    }

    var floats: [Float] {
        var out = [Float](repeating: 0, count: count)
        out.withUnsafeMutableBufferPointer { dst in
            switch dtype {
            case .f32: dst.baseAddress!.update(from: raw.assumingMemoryBound(to: Float.self), count: count)
            case .f16: flint_emu_half_to_floats(raw.assumingMemoryBound(to: UInt16.self), dst.baseAddress, count)
            case .bf16: flint_emu_bfloat16_to_floats(raw.assumingMemoryBound(to: UInt16.self), dst.baseAddress, count)
            }
        }
        return out
    }

    deinit { raw.deallocate() }
}

/// int32 array in "device" memory.
final class IntBuffer {
    let raw: UnsafeMutablePointer<Int32>
    let count: Int
    init(_ values: [Int32]) {
        count = values.count
        raw = .allocate(capacity: max(1, values.count))
        raw.initialize(repeating: 0, count: max(1, values.count))
        for (i, v) in values.enumerated() { raw[i] = v }
    }
    var values: [Int32] { (0..<count).map { raw[$0] } }
    deinit { raw.deallocate() }
}

/// One kernel argument, passed by value like cuLaunchKernel's params.
enum KernelArg {
    case buffer(DeviceBuffer?)
    case ints(IntBuffer?)
    case pointer(UnsafeMutableRawPointer?)
    case i32(Int32)
    case f32(Float)
    case i64(Int)
}

extension KernelArg {
    static func int(_ v: Int) -> KernelArg { .i32(Int32(v)) }
}

@discardableResult
func emuLaunch(_ name: String, grid: (Int, Int, Int), block: (Int, Int, Int), shared: Int = 0,
               _ args: [KernelArg]) -> Int32 {
    let slots = args.map { arg -> UnsafeMutableRawPointer in
        let p = UnsafeMutableRawPointer.allocate(byteCount: 8, alignment: 8)
        switch arg {
        case .buffer(let b): p.storeBytes(of: b?.raw, as: UnsafeMutableRawPointer?.self)
        case .ints(let b): p.storeBytes(of: b.map { UnsafeMutableRawPointer($0.raw) }, as: UnsafeMutableRawPointer?.self)
        case .pointer(let v): p.storeBytes(of: v, as: UnsafeMutableRawPointer?.self)
        case .i32(let v): p.storeBytes(of: v, as: Int32.self)
        case .f32(let v): p.storeBytes(of: v, as: Float.self)
        case .i64(let v): p.storeBytes(of: v, as: Int.self)
        }
        return p
    }
    defer { slots.forEach { $0.deallocate() } }
    var params: [UnsafeMutableRawPointer?] = slots
    let rc = params.withUnsafeMutableBufferPointer { p in
        flint_emu_launch(name, UInt32(grid.0), UInt32(grid.1), UInt32(grid.2), UInt32(block.0), UInt32(block.1),
                         UInt32(block.2), UInt32(shared), p.baseAddress, Int32(p.count))
    }
    return rc
}

/// Launches and records a test failure (with the emulation's message) unless it succeeds.
func emuRun(_ name: String, grid: (Int, Int, Int), block: (Int, Int, Int), _ args: [KernelArg],
            sourceLocation: SourceLocation = #_sourceLocation) {
    let rc = emuLaunch(name, grid: grid, block: block, args)
    #expect(rc == 0, "\(name): \(String(cString: flint_emu_last_error()))", sourceLocation: sourceLocation)
}

/// max |got - ref| / max |ref| (ref all zero: absolute error).
func relativeError(_ got: [Float], _ ref: [Float]) -> Double {
    precondition(got.count == ref.count)
    var maxRef = 0.0, maxErr = 0.0
    for i in 0..<ref.count {
        maxRef = max(maxRef, abs(Double(ref[i])))
        let e = abs(Double(got[i]) - Double(ref[i]))
        maxErr = got[i].isNaN || ref[i].isNaN ? .infinity : max(maxErr, e)
    }
    return maxRef > 0 ? maxErr / maxRef : maxErr
}

func expectClose(_ got: [Float], _ ref: [Float], _ dtype: EmuDType, _ what: String,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    let err = relativeError(got, ref)
    #expect(err <= dtype.tolerance, "\(what) [\(dtype)]: error \(err) > \(dtype.tolerance)", sourceLocation: sourceLocation)
}

/// Rows of a [rows, ld] matrix, first `cols` columns of each, packed.
func packRows(_ m: [Float], rows: Int, cols: Int, ld: Int) -> [Float] {
    var out = [Float]()
    out.reserveCapacity(rows * cols)
    for r in 0..<rows { out += m[(r * ld)..<(r * ld + cols)] }
    return out
}

let cpuPool = ThreadPool(threads: 1)
