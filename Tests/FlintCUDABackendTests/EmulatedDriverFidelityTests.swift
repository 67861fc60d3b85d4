import FlintCUDA
import FlintCUDAEmulation
import FlintCore
import Testing

/// The emulated driver behaves like device memory where a bug would otherwise hide: fresh
/// allocations hold NaN (not zeros), and each access of a kernel is checked against its allocation.
@Suite("Emulated driver: fresh memory and bounds checks")
struct EmulatedDriverFidelityTests {
    /// A driver with the conversion kernels loaded, and `floats` uploaded to a new allocation.
    static func driver() throws -> EmulatedCUDADriver {
        let driver = EmulatedCUDADriver()
        try driver.load(try #require(KernelSources.all.first { $0.name == "convert" }), cubin: nil)
        return driver
    }

    static func upload(_ floats: [Float], to driver: EmulatedCUDADriver) throws -> DevicePointer {
        let p = try driver.allocate(bytes: 4 * floats.count, what: "test input")
        try driver.copy(toDevice: p, floats.withUnsafeBytes { Array($0) })
        return p
    }

    static func copyKernel(_ driver: EmulatedCUDADriver, from source: DevicePointer, to destination: DevicePointer, count: Int) throws {
        try driver.launch("convert_f32_to_f32", grid: (1, 1, 1), block: (64, 1, 1), sharedBytes: 0,
                          arguments: [.pointer(source), .pointer(destination), .int64(Int64(count))])
    }

    @Test func freshAllocationsReadAsNaNAndMinusOne() throws {
        let driver = EmulatedCUDADriver()
        let p = try driver.allocate(bytes: 64, what: "never written")
        defer { driver.free(p) }
        let raw = try driver.copyToHost(from: p, bytes: 64)
        #expect(raw.allSatisfy { $0 == 0xFF })
        raw.withUnsafeBytes { r in
            #expect(r.load(as: Float.self).isNaN)
            #expect(Float16(bitPattern: r.load(fromByteOffset: 4, as: UInt16.self)).isNaN)
            #expect(FloatConversion.float(fromBFloat16: r.load(fromByteOffset: 6, as: UInt16.self)).isNaN)
            #expect(r.load(fromByteOffset: 8, as: Int32.self) == -1)
        }
        try driver.zero(p, bytes: 16)
        #expect(try driver.copyToHost(from: p, bytes: 32) == [UInt8](repeating: 0, count: 16) + [UInt8](repeating: 0xFF, count: 16))
    }

    /// A kernel that reads memory nobody wrote passes the NaN on, so a missing write shows up.
    @Test func aKernelReadingUnwrittenMemoryProducesNaN() throws {
        let driver = try Self.driver()
        let source = try driver.allocate(bytes: 4 * 8, what: "written in part")
        let destination = try driver.allocate(bytes: 4 * 8, what: "output")
        try driver.copy(toDevice: source, [Float](repeating: 2, count: 4).withUnsafeBytes { Array($0) })
        try Self.copyKernel(driver, from: source, to: destination, count: 8)
        let out = try driver.copyToHost(from: destination, bytes: 32).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        #expect(Array(out[..<4]) == [2, 2, 2, 2])
        #expect(out[4...].allSatisfy { $0.isNaN })
    }

    /// A launch whose count runs past its input: the read beyond the allocation fails the launch, naming the kernel.
    @Test func anOutOfBoundsReadIsReported() throws {
        let driver = try Self.driver()
        let source = try Self.upload([Float](repeating: 1, count: 16), to: driver)
        let destination = try driver.allocate(bytes: 4 * 64, what: "output")
        try Self.copyKernel(driver, from: source, to: destination, count: 16)  // the right count works
        do {
            try Self.copyKernel(driver, from: source, to: destination, count: 17)
            Issue.record("reading element 16 of a 16-element allocation was not reported")
        } catch {
            let message = "\(error)"
            #expect(message.contains("convert_f32_to_f32"), "\(message)")
            #expect(message.contains("out-of-bounds read of 4 bytes"), "\(message)")
            #expect(message.contains("element 16 from the pointer"), "\(message)")
            #expect(message.contains("+64 bytes"), "the allocation and its size: \(message)")
        }
    }

    @Test func anOutOfBoundsWriteIsReported() throws {
        let driver = try Self.driver()
        let source = try Self.upload([Float](repeating: 1, count: 64), to: driver)
        let destination = try driver.allocate(bytes: 4 * 10, what: "too small")
        #expect {
            try Self.copyKernel(driver, from: source, to: destination, count: 64)
        } throws: { "\($0)".contains("out-of-bounds write") && "\($0)".contains("element 10 from the pointer") }
    }

    /// A pointer into a freed allocation is refused at launch (its first byte is outside every allocation).
    @Test func aFreedAllocationIsNoLongerValid() throws {
        let driver = try Self.driver()
        let source = try Self.upload([1, 2, 3, 4], to: driver)
        let destination = try driver.allocate(bytes: 16, what: "output")
        driver.free(source)
        #expect(throws: FlintError.self) { try Self.copyKernel(driver, from: source, to: destination, count: 4) }
    }

    /// Captured launches are checked when the graph replays.
    @Test func replayedLaunchesAreChecked() throws {
        let driver = try Self.driver()
        let source = try Self.upload([Float](repeating: 1, count: 8), to: driver)
        let destination = try driver.allocate(bytes: 4 * 64, what: "output")
        try driver.beginCapture()
        try Self.copyKernel(driver, from: source, to: destination, count: 32)
        let graph = try driver.endCapture()
        #expect { try driver.replay(graph) } throws: { "\($0)".contains("out-of-bounds read") }
    }
}
