import Testing

@testable import FlintCore

@Suite("Arena planning")
struct ArenaTests {
    @Test func buffersAliveTogetherNeverOverlap() {
        // Random lifetimes and sizes: any two buffers alive at the same step must be disjoint.
        var state: UInt64 = 7
        func next(_ n: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int(state >> 33) % n
        }
        for _ in 0..<50 {
            let requests = (0..<30).map { _ -> ArenaLayout.Request in
                let first = next(20)
                return ArenaLayout.Request(bytes: 1 + next(5000), firstStep: first, lastStep: first + next(6))
            }
            let layout = ArenaLayout(requests)
            for i in requests.indices {
                #expect(layout.offsets[i] % ArenaLayout.alignment == 0)
                #expect(layout.offsets[i] + requests[i].bytes <= layout.totalBytes)
                for j in requests.indices where j > i {
                    let a = requests[i], b = requests[j]
                    guard a.firstStep <= b.lastStep && b.firstStep <= a.lastStep else { continue }
                    let disjoint = layout.offsets[i] + a.bytes <= layout.offsets[j] || layout.offsets[j] + b.bytes <= layout.offsets[i]
                    #expect(disjoint, "buffers \(i) and \(j) overlap while both alive")
                }
            }
        }
    }

    @Test func buffersWithDisjointLifetimesShareMemory() {
        let layout = ArenaLayout([
            .init(bytes: 1024, firstStep: 0, lastStep: 1), .init(bytes: 1024, firstStep: 2, lastStep: 3),
            .init(bytes: 512, firstStep: 1, lastStep: 2),
        ])
        #expect(layout.offsets[0] == layout.offsets[1])
        #expect(layout.totalBytes == 1024 + 512)
    }

    @Test func planLifetimesKeepOutputsToTheEnd() {
        var p = Plan(maxTokens: 8, maxSequences: 2)
        let w = p.weight("w", [4, 4], .linear)
        let a = p.buffer("a", columns: 4)
        let b = p.buffer("b", columns: 4)
        let c = p.buffer("c", columns: 4)
        p.append(.linear(input: a, weight: w, bias: nil, epilogue: .none, out: b))
        p.append(.linear(input: b, weight: w, bias: nil, epilogue: .none, out: c))
        p.append(.linear(input: c, weight: w, bias: nil, epilogue: .none, out: a))
        p.output("b", b)
        let layout = p.arenaLayout()
        // b is an output: it must not share memory with a or c, which are written after it.
        let size = 8 * 4 * 4
        for other in [a, c] {
            #expect(layout.offsets[b] + size <= layout.offsets[other] || layout.offsets[other] + size <= layout.offsets[b])
        }
        #expect(p.flops(lengths: [3, 5]) == 3 * 2 * 8 * 16)
    }

    @Test func halfAndBFloatConversionIsExact() {
        #expect(FloatConversion.float(fromHalf: 0x3C00) == 1)
        #expect(FloatConversion.float(fromHalf: 0x0001) == Float(Float16(bitPattern: 1)))
        #expect(FloatConversion.float(fromHalf: 0x7C00) == .infinity)
        #expect(FloatConversion.float(fromBFloat16: 0x3F80) == 1)
        #expect(FloatConversion.float(fromBFloat16: 0xC0A0) == -5)
        #expect(FloatConversion.bfloat16(from: 1.00390625) == 0x3F80)  // ties to even
        #expect(Shape([3, 4]).count == 12)
        #expect(Shape([Int.max, 3]).checkedCount == nil)
    }
}
