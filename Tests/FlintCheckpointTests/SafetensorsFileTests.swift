import FlintCheckpoint
import FlintCore
import FlintTestSupport
import Testing

@Suite("safetensors reader")
struct SafetensorsFileTests {
    typealias S = Safetensors

    /// Writes `bytes` and checks opening it fails as corrupt, naming the file and the fragments.
    func expectCorrupt(_ bytes: [UInt8], _ fragments: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        let path = S.write(bytes)
        expectFlintError("corruptCheckpoint", [path] + fragments, sourceLocation: sourceLocation) { () throws(FlintError) in
            _ = try SafetensorsFile(path: path)
        }
    }

    // MARK: valid files

    @Test func readsNamesInfoMetadataAndValues() throws {
        let header = S.header(#""__metadata__":{"format":"pt","note":"hi"}"#,
                              S.entry("b.weight", "F32", [2, 2], 0, 16),
                              S.entry("a.bias", "F32", [2], 16, 24),
                              S.entry("ids", "I64", [1, 2], 24, 40),
                              S.entry("empty", "F32", [0, 3], 40, 40),
                              S.entry("scalar", "F64", [], 40, 48))
        var data = S.f32([1, -2, 3.5, 1e-3]) + S.f32([7, 8]) + S.littleEndian([Int64(5), Int64(-1)])
        data += S.littleEndian([(0.1 as Double).bitPattern])
        let file = try SafetensorsFile(path: S.write(S.image(header: header, data: data)))
        #expect(file.tensorNames == ["b.weight", "a.bias", "ids", "empty", "scalar"])
        #expect(file.metadata == ["format": "pt", "note": "hi"])
        #expect(file.info("b.weight")?.dtype == .f32)
        #expect(file.info("b.weight")?.shape == [2, 2])
        #expect(file.info("ids")?.dtype == .i64)
        #expect(file.info("nope") == nil)
        #expect(!file.contains("__metadata__"))
        #expect(try file.floatTensor("b.weight") == HostTensor(shape: [2, 2], data: [1, -2, 3.5, 1e-3]))
        #expect(try file.floatTensor("a.bias").data == [7, 8])
        #expect(try file.floatTensor("empty") == HostTensor(shape: [0, 3], data: []))
        #expect(try file.floatTensor("scalar") == HostTensor(shape: [], data: [Float(0.1 as Double)]))
        let raw = try #require(file.rawBytes("ids"))
        #expect(Array(raw) == S.littleEndian([Int64(5), Int64(-1)]))
        #expect(file.rawBytes("empty")?.count == 0)
    }

    @Test func unalignedDataIsReadSafely() throws {
        // Header length 45 puts the data area at byte 53: every f32 and f16 is misaligned.
        var header = S.header(S.entry("x", "F32", [3], 0, 12), S.entry("h", "F16", [2], 12, 16))
        while (8 + header.utf8.count) % 4 != 1 { header += " " }
        let file = try SafetensorsFile(
            path: S.write(S.image(header: header, data: S.f32([1.5, -0.25, 3e7]) + S.littleEndian([UInt16(0x3C00), 0xC000]))))
        #expect(try file.floatTensor("x").data == [1.5, -0.25, 3e7])
        #expect(try file.floatTensor("h").data == [1, -2])
    }

    @Test func halfToFloatIsExact() throws {
        let cases: [(UInt16, Float)] = [
            (0x0000, 0), (0x8000, -0.0), (0x3C00, 1), (0xC000, -2), (0x3555, 0.333251953125), (0x7BFF, 65504),
            (0x0001, 0x1p-24), (0x03FF, 1023 * 0x1p-24), (0x8001, -0x1p-24), (0x0400, 0x1p-14),
        ]
        let bits = cases.map(\.0)
        let header = S.header(S.entry("h", "F16", [bits.count], 0, 2 * bits.count))
        let file = try SafetensorsFile(path: S.write(S.image(header: header, data: S.littleEndian(bits))))
        let out = try file.floatTensor("h").data
        for (i, (b, want)) in cases.enumerated() {
            #expect(out[i].bitPattern == want.bitPattern, "f16 0x\(String(b, radix: 16)) gave \(out[i]), expected \(want)")
        }
        // Infinities and NaNs convert exactly too, but a checkpoint holding them is refused at load
        // (HostileCheckpointTests), so they are checked on the conversion itself.
        #expect(FloatConversion.float(fromHalf: 0x7C00) == .infinity && FloatConversion.float(fromHalf: 0xFC00) == -.infinity)
        #expect(FloatConversion.float(fromHalf: 0x7E00).isNaN && FloatConversion.float(fromHalf: 0xFE01).isNaN)
    }

    @Test func bfloat16ToFloatIsExact() throws {
        let cases: [(UInt16, Float)] = [
            (0x0000, 0), (0x8000, -0.0), (0x3F80, 1), (0xC000, -2), (0x4049, 3.140625),
            (0x7F7F, Float(bitPattern: 0x7F7F_0000)), (0x0001, Float(bitPattern: 0x0001_0000)), (0x807F, Float(bitPattern: 0x807F_0000)),
            (0x0080, .leastNormalMagnitude),
        ]
        let bits = cases.map(\.0)
        let header = S.header(S.entry("b", "BF16", [bits.count], 0, 2 * bits.count))
        let file = try SafetensorsFile(path: S.write(S.image(header: header, data: S.littleEndian(bits))))
        let out = try file.floatTensor("b").data
        for (i, (b, want)) in cases.enumerated() {
            #expect(out[i].bitPattern == want.bitPattern, "bf16 0x\(String(b, radix: 16)) gave \(out[i]), expected \(want)")
        }
        #expect(Float(bitPattern: 0x0001_0000).isSubnormal)
        #expect(FloatConversion.float(fromBFloat16: 0x7F80) == .infinity && FloatConversion.float(fromBFloat16: 0xFF80) == -.infinity)
        #expect(FloatConversion.float(fromBFloat16: 0x7FC0).isNaN)
    }

    @Test func integerTensorsAreRefusedAsFloats() throws {
        let path = S.write(S.image(header: S.header(S.entry("ids", "I32", [2], 0, 8), S.entry("mask", "BOOL", [2], 8, 10)),
                                   data: [UInt8](repeating: 1, count: 10)))
        let file = try SafetensorsFile(path: path)
        expectFlintError("badTensor", [path, "\"ids\"", "I32", "F32, F16, BF16"]) { () throws(FlintError) in _ = try file.floatTensor("ids")
        }
        expectFlintError("badTensor", [path, "\"mask\"", "BOOL"]) { () throws(FlintError) in _ = try file.floatTensor("mask") }
        expectFlintError("badTensor", [path, "\"gone\"", "missing"]) { () throws(FlintError) in _ = try file.floatTensor("gone") }
    }

    @Test func emptyHeaderObjectIsAValidEmptyFile() throws {
        let file = try SafetensorsFile(path: S.write(S.image(header: "{}")))
        #expect(file.tensorNames.isEmpty)
    }

    @Test func headerWhitespacePaddingIsAccepted() throws {
        // The reference writer pads the header with spaces to a multiple of 8.
        let file = try SafetensorsFile(path: S.write(S.image(header: S.header(S.entry("x", "F32", [1], 0, 4)) + "     ", data: S.f32([2]))))
        #expect(try file.floatTensor("x").data == [2])
    }

    // MARK: hostile files: one test per problem

    @Test func missingFileAndFolder() {
        let folder = TestPaths.temporaryFolder()
        expectFlintError("unreadable", [folder + "/nope.safetensors", "no such file"]) { () throws(FlintError) in
            _ = try SafetensorsFile(path: folder + "/nope.safetensors")
        }
        expectFlintError("unreadable", [folder, "folder"]) { () throws(FlintError) in _ = try SafetensorsFile(path: folder) }
    }

    @Test func fileShorterThan8Bytes() {
        expectCorrupt([1, 0, 0, 0, 0], ["5 bytes", "8-byte header length"])
        expectCorrupt([], ["0 bytes"])
    }

    @Test func headerLengthZero() {
        expectCorrupt(S.image(header: "", data: [0, 0, 0, 0]), ["header length is 0"])
    }

    @Test func headerLengthPastTheEnd() {
        expectCorrupt(S.image(header: "{}", headerLength: 100), ["header length 100 runs past the end of the file", "8 + 100 > 10"])
    }

    @Test func headerLengthHuge() {
        expectCorrupt(S.image(header: "{}", headerLength: 1 << 63), ["header length 9223372036854775808", "100000000-byte limit"])
        expectCorrupt(S.image(header: "{}", headerLength: UInt64.max), ["header length 18446744073709551615"])
    }

    @Test func headerNotJSON() {
        expectCorrupt(S.image(header: "hello, world"), ["header is not valid JSON"])
        expectCorrupt(S.image(header: "{\"a\":1} trailing"), ["header is not valid JSON", "after the JSON value"])
    }

    @Test func headerTruncatedJSON() {
        let full = S.header(S.entry("x", "F32", [1], 0, 4))
        expectCorrupt(S.image(header: String(full.prefix(20)), data: S.f32([1])), ["header is not valid JSON", "truncated"])
    }

    @Test func headerNotAnObject() {
        expectCorrupt(S.image(header: "[1, 2]"), ["header is an array, expected a JSON object"])
    }

    @Test func headerInvalidUTF8() {
        expectCorrupt(S.image(header: "{\"x\u{00e9}\":1}").map { $0 == 0xA9 ? 0xFF : $0 }, ["header is not valid JSON"])
    }

    @Test func tensorEntryNotAnObject() {
        expectCorrupt(S.image(header: #"{"w":[1,2]}"#), ["tensor \"w\"", "entry is an array"])
    }

    @Test func unknownDType() {
        expectCorrupt(S.image(header: S.header(S.entry("bert.w", "F8_E4M3", [2], 0, 2)), data: [0, 0]),
                      ["tensor \"bert.w\"", "dtype \"F8_E4M3\" is not supported", "F32, F16, BF16"])
        expectCorrupt(S.image(header: #"{"w":{"dtype":"float32","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
                      ["tensor \"w\"", "\"float32\""])
        expectCorrupt(S.image(header: #"{"w":{"dtype":4,"shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
                      ["tensor \"w\"", "dtype is a number"])
    }

    @Test func missingFields() {
        expectCorrupt(
            S.image(header: #"{"w":{"shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), ["tensor \"w\"", "dtype is missing"])
        expectCorrupt(
            S.image(header: #"{"w":{"dtype":"F32","data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), ["tensor \"w\"", "shape is missing"])
        expectCorrupt(
            S.image(header: #"{"w":{"dtype":"F32","shape":[1]}}"#, data: [0, 0, 0, 0]), ["tensor \"w\"", "data_offsets is missing"])
    }

    @Test func negativeShapeEntry() {
        expectCorrupt(S.image(header: #"{"w":{"dtype":"F32","shape":[-1, 4],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
                      ["tensor \"w\"", "shape [-1, 4] is not a list of non-negative integers"])
    }

    @Test func fractionalAndNonNumericShapeEntries() {
        expectCorrupt(S.image(header: #"{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
                      ["tensor \"w\"", "shape [1.5]", "non-negative integers"])
        expectCorrupt(S.image(header: #"{"w":{"dtype":"F32","shape":["4"],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
                      ["tensor \"w\"", "non-negative integers"])
        expectCorrupt(S.image(header: #"{"w":{"dtype":"F32","shape":4,"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
                      ["tensor \"w\"", "shape is a number, expected an array"])
    }

    @Test func shapeProductOverflow() {
        expectCorrupt(S.image(header: S.header(S.entry("w", "F32", [4_294_967_296, 4_294_967_296, 4], 0, 0))),
                      ["tensor \"w\"", "shape [4294967296, 4294967296, 4] has more elements than fit in 64 bits"])
        // The element count fits but its byte size does not.
        expectCorrupt(S.image(header: S.header(S.entry("w", "F64", [1 << 31, 1 << 30], 0, 0))),
                      ["tensor \"w\"", "more bytes than fit in 64 bits"])
    }

    @Test func malformedOffsets() {
        expectCorrupt(S.image(header: #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}}"#, data: [0, 0, 0, 0]),
                      ["tensor \"w\"", "data_offsets [0] is not [begin, end]"])
        expectCorrupt(S.image(header: #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}"#, data: [0, 0, 0, 0]),
                      ["tensor \"w\"", "non-negative integers"])
    }

    @Test func offsetsPastTheEnd() {
        expectCorrupt(S.image(header: S.header(S.entry("w", "F32", [100], 0, 400)), data: S.f32([1, 2])),
                      ["tensor \"w\"", "data_offsets [0, 400] run past the end of the data area (8 bytes)"])
    }

    @Test func beginAfterEnd() {
        expectCorrupt(S.image(header: S.header(S.entry("w", "F32", [1], 8, 4)), data: S.f32([1, 2])),
                      ["tensor \"w\"", "data_offsets [8, 4]: begin is after end"])
    }

    @Test func byteCountDiffersFromShape() {
        let data = [UInt8](repeating: 0, count: 20)
        expectCorrupt(S.image(header: S.header(S.entry("bert.pooler.dense.weight", "F32", [4, 4], 10, 20),
                                               S.entry("pad", "U8", [10], 0, 10)), data: data),
                      [#"tensor "bert.pooler.dense.weight": data_offsets [10, 20] hold 10 bytes but shape [4, 4] of F32 needs 64"#])
    }

    @Test func overlappingRanges() {
        expectCorrupt(S.image(header: S.header(S.entry("a", "F32", [2], 0, 8), S.entry("b", "F32", [1], 4, 8)), data: S.f32([1, 2])),
                      ["tensor \"b\"", "data_offsets [4, 8] overlap tensor \"a\", which ends at 8"])
    }

    @Test func gapBetweenRanges() {
        // Hugging Face's reader refuses this ("invalid offset for tensor `b`").
        expectCorrupt(S.image(header: S.header(S.entry("a", "F32", [1], 0, 4), S.entry("b", "F32", [1], 8, 12)), data: S.f32([1, 2, 3])),
                      ["tensor \"b\"", "leave bytes 4..<8 unused after tensor \"a\""])
    }

    @Test func firstTensorNotAtStart() {
        expectCorrupt(S.image(header: S.header(S.entry("a", "F32", [1], 4, 8)), data: S.f32([1, 2])),
                      ["tensor \"a\"", "leave bytes 0..<4 unused at the start of the data area"])
    }

    @Test func trailingBytesAfterLastTensor() {
        // Hugging Face's reader refuses this ("incomplete metadata, file not fully covered").
        expectCorrupt(S.image(header: S.header(S.entry("a", "F32", [1], 0, 4)), data: S.f32([1, 2])),
                      ["the tensors cover 4 of the 8 bytes", "4 trailing bytes"])
    }

    @Test func duplicateTensorName() {
        expectCorrupt(S.image(header: S.header(S.entry("a", "F32", [1], 0, 4), S.entry("a", "F32", [1], 4, 8)), data: S.f32([1, 2])),
                      ["tensor \"a\"", "appears twice"])
    }

    @Test func metadataNotAStringMap() {
        expectCorrupt(
            S.image(header: S.header(#""__metadata__":{"format":"pt","step":1000}"#, S.entry("a", "F32", [1], 0, 4)), data: S.f32([1])),
            ["__metadata__ \"step\" is a number, expected a string"])
        expectCorrupt(
            S.image(header: S.header(#""__metadata__":["pt"]"#, S.entry("a", "F32", [1], 0, 4)), data: S.f32([1])),
            ["__metadata__ is an array"])
    }

    // MARK: the real checkpoint

    @Test func realMiniLMFile() throws {
        guard let path = TestPaths.asset("all-MiniLM-L6-v2/model.safetensors") else {
            print("skipped realMiniLMFile: \(TestPaths.missingAssetsReason)")
            return
        }
        let file = try SafetensorsFile(path: path)
        #expect(file.tensorNames.count == 104)
        #expect(file.metadata == ["format": "pt"])
        #expect(file.info("embeddings.position_ids")?.dtype == .i64)
        #expect(file.info("embeddings.word_embeddings.weight")?.shape == [30522, 384])
        let ln = try file.floatTensor("embeddings.LayerNorm.weight")
        #expect(ln.shape == [384])
        #expect(ln.data[0..<4].map(\.bitPattern) == [0x3F19_535E, 0x3F15_6678, 0x3F22_2FBF, 0x3F1F_DCA7])
        let w = try file.floatTensor("encoder.layer.5.output.dense.weight")
        let sum = w.data.reduce(0.0) { $0 + Double($1) }
        #expect(abs(sum - -53.19849107446487) < 1e-6, "sum \(sum) (numpy: -53.19849107446487)")
    }
}
