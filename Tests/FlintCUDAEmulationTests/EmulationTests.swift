// The emulation of the CUDA execution model itself: barriers, warp collectives, atomics across
// blocks run by several OS threads, deadlock detection, launch errors, fp16/bf16 rounding.
import CFlintCUDAEmulation
import Testing

@Suite("CUDA execution-model emulation")
struct EmulationTests {
    @Test func kernelTable() {
        let names = Set((0..<flint_emu_kernel_count()).map { String(cString: flint_emu_kernel_name($0)) })
        for op in ["embedding_layernorm", "layernorm", "bias_activation", "attention", "first_token", "mean_pool",
                   "max_pool", "l2_normalize"] {
            for dtype in EmuDType.allCases { #expect(names.contains("\(op)_\(dtype)")) }
        }
        for name in ["convert_f32_to_f32", "convert_f32_to_f16", "convert_f16_to_f32", "convert_f32_to_bf16",
                     "convert_bf16_to_f32"] {
            #expect(names.contains(name))
        }
        #expect(flint_emu_kernel_name(-1) == nil)
        #expect(flint_emu_kernel_name(flint_emu_kernel_count()) == nil)
    }

    @Test func unknownKernelAndBadGeometry() {
        #expect(emuLaunch("no_such_kernel", grid: (1, 1, 1), block: (32, 1, 1), []) == Int32(FLINT_EMU_ERR_UNKNOWN_KERNEL))
        #expect(String(cString: flint_emu_last_error()).contains("no_such_kernel"))
        let out = DeviceBuffer(count: 64, dtype: .f32)
        #expect(emuLaunch("emu_test_atomic_add", grid: (1, 1, 1), block: (2048, 1, 1), [.buffer(out), .buffer(out)])
            == Int32(FLINT_EMU_ERR_INVALID_CONFIG))
        #expect(emuLaunch("emu_test_atomic_add", grid: (0, 1, 1), block: (32, 1, 1), [.buffer(out), .buffer(out)])
            == Int32(FLINT_EMU_ERR_INVALID_CONFIG))
        #expect(emuLaunch("emu_test_atomic_add", grid: (1, 1, 1), block: (32, 1, 1), shared: 1024,
                          [.buffer(out), .buffer(out)]) == Int32(FLINT_EMU_ERR_INVALID_CONFIG))
        #expect(flint_emu_launch("emu_test_atomic_add", 1, 1, 1, 32, 1, 1, 0, nil, 2) == Int32(FLINT_EMU_ERR_INVALID_CONFIG))
        // A parameter count that is not the kernel's (host code drifting from a kernel signature).
        #expect(emuLaunch("emu_test_atomic_add", grid: (1, 1, 1), block: (32, 1, 1), [.buffer(out)]) == Int32(FLINT_EMU_ERR_INVALID_CONFIG))
        #expect(String(cString: flint_emu_last_error()).contains("takes 2 parameters, 1 given"))
    }

    @Test(arguments: [(32, 1, 1), (256, 1, 1), (32, 3, 2), (16, 4, 4), (1024, 1, 1)])
    func blockReduction(bx: Int, by: Int, bz: Int) {
        let threads = bx * by * bz
        let grid = (3, 2, 1)
        let blocks = 6
        var rng = EmuRng(UInt64(threads))
        // small integers: every summation order gives the exact same float
        let input = (0..<(blocks * threads)).map { _ in Float(rng.index(201)) - 100 }
        let out = DeviceBuffer(count: 3 * blocks, dtype: .f32)
        emuRun("emu_test_block_reduce", grid: grid, block: (bx, by, bz), [.buffer(DeviceBuffer(input, dtype: .f32)), .buffer(out)])
        let got = out.floats
        for b in 0..<blocks {
            let want = input[(b * threads)..<((b + 1) * threads)].reduce(0, +)
            #expect(got[3 * b] == want, "block \(b): shuffle-xor reduction")
            #expect(got[3 * b + 1] == want, "block \(b): shuffle-down reduction")
            #expect(got[3 * b + 2] == 0, "block \(b): threads disagree on the block sum")
        }
    }

    @Test func warpShuffleSemantics() {
        let threads = 64
        let out = IntBuffer([Int32](repeating: -1, count: 8 * threads))
        emuRun("emu_test_warp_ops", grid: (1, 1, 1), block: (threads, 1, 1), [.ints(out)])
        let o = out.values
        for t in 0..<threads {
            let lane = t % 32, base = t - lane
            let v = { (l: Int) in Int32(10 * (base + l)) }
            let row = Array(o[(8 * t)..<(8 * t + 8)])
            let down = lane % 16 + 1 < 16 ? v(lane + 1) : v(lane)
            let expected: [Int32] = [
                v(3), lane >= 1 ? v(lane - 1) : v(lane), down, v(lane ^ 5),
                Int32(bitPattern: 0xAAAA_AAAA), 1, 1, v((lane & ~7) + 2),
            ]
            #expect(row == expected, "thread \(t)")
        }
    }

    @Test func atomicsAcrossBlocksAndOSThreads() {
        let sum = DeviceBuffer(count: 1, dtype: .f32)
        let count = IntBuffer([0])
        emuRun("emu_test_atomic_add", grid: (40, 1, 1), block: (64, 1, 1), [.buffer(sum), .ints(count)])
        #expect(sum.floats == [2560])
        #expect(count.values == [2560])
    }

    @Test func barrierDeadlockIsReportedNotHung() {
        let out = IntBuffer([Int32](repeating: 0, count: 64))
        let rc = emuLaunch("emu_test_barrier_deadlock", grid: (2, 1, 1), block: (64, 1, 1), [.ints(out)])
        #expect(rc == Int32(FLINT_EMU_ERR_SYNC))
        let message = String(cString: flint_emu_last_error())
        #expect(message.contains("deadlock") && message.contains("__syncthreads reached by 16 of 64 threads")
            && message.contains("48 threads already exited"), "\(message)")
        #expect(out.values.allSatisfy { $0 == 0 })
        // the emulation is usable again afterwards
        atomicsAcrossBlocksAndOSThreads()
    }

    @Test func mismatchedWarpCollectivesAreReported() {
        let out = IntBuffer([Int32](repeating: 0, count: 32))
        let rc = emuLaunch("emu_test_warp_mismatch", grid: (1, 1, 1), block: (32, 1, 1), [.ints(out)])
        #expect(rc == Int32(FLINT_EMU_ERR_SYNC))
        let message = String(cString: flint_emu_last_error())
        #expect(message.contains("__shfl_xor_sync") && message.contains("__syncwarp"), "\(message)")
    }

    @Test func halfConversionMatchesSwiftFloat16() {
        var rng = EmuRng(99)
        var values = rng.array(20000, scale: 70000) + rng.array(20000, scale: 1e-4) + rng.array(2000, scale: 1e-7)
        values += [0, -0.0, 65504, 65519.99, 65520, -65520, 1e10, .infinity, -.infinity, 5.960464477539063e-08,
                   2.980232238769531e-08, 2.9802326e-08, 1.00048828125, 1.00146484375]
        for v in values {
            let bits = flint_emu_float_to_half(v)
            #expect(bits == Float16(v).bitPattern, "float->half \(v)")
            #expect(flint_emu_half_to_float(bits) == Float(Float16(bitPattern: bits)), "half->float \(bits)")
        }
        #expect(flint_emu_float_to_half(.nan) == 0x7fff)
        #expect(flint_emu_half_to_float(0x7fff).isNaN)
    }

    @Test func bfloat16RoundsToNearestEven() {
        #expect(flint_emu_float_to_bfloat16(1) == 0x3f80)
        #expect(flint_emu_float_to_bfloat16(Float(bitPattern: 0x3f80_8000)) == 0x3f80)  // tie -> even
        #expect(flint_emu_float_to_bfloat16(Float(bitPattern: 0x3f81_8000)) == 0x3f82)  // tie -> even
        #expect(flint_emu_float_to_bfloat16(Float(bitPattern: 0x3f80_8001)) == 0x3f81)
        #expect(flint_emu_float_to_bfloat16(Float(bitPattern: 0x3f80_7fff)) == 0x3f80)
        #expect(flint_emu_float_to_bfloat16(Float(bitPattern: 0x7f7f_ffff)) == 0x7f80)  // overflow -> inf
        #expect(flint_emu_float_to_bfloat16(-.infinity) == 0xff80)
        #expect(flint_emu_float_to_bfloat16(.nan) == 0x7fff)
        #expect(flint_emu_bfloat16_to_float(0xc049) == Float(bitPattern: 0xc049_0000))
        var rng = EmuRng(7)
        for v in rng.array(10000, scale: 1000) {  // agrees with a straightforward double-based rounding
            let bits = v.bitPattern
            let lo = Float(bitPattern: bits & 0xffff_0000), hi = Float(bitPattern: (bits & 0xffff_0000) &+ 0x10000)
            let dl = abs(Double(v) - Double(lo)), dh = abs(Double(v) - Double(hi))
            let want = dl < dh ? lo : dh < dl ? hi : ((bits >> 16) & 1 == 0 ? lo : hi)
            #expect(flint_emu_bfloat16_to_float(flint_emu_float_to_bfloat16(v)) == want)
        }
    }
}
