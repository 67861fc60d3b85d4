import FlintCheckpoint
import FlintCore
import FlintTestSupport
import Testing

/// Builds `.safetensors` images by hand: an 8-byte little-endian header length, the header JSON
/// (text given verbatim so hostile headers can be written), then the data bytes.
enum Safetensors {
    static func image(header: String, data: [UInt8] = [], headerLength: UInt64? = nil) -> [UInt8] {
        let h = Array(header.utf8)
        let n = headerLength ?? UInt64(h.count)
        return withUnsafeBytes(of: n.littleEndian) { Array($0) } + h + data
    }

    /// One header member: `"name":{"dtype":...,"shape":[...],"data_offsets":[b,e]}`.
    static func entry(_ name: String, _ dtype: String, _ shape: [Int], _ begin: Int, _ end: Int) -> String {
        "\"\(name)\":{\"dtype\":\"\(dtype)\",\"shape\":[\(shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(begin),\(end)]}"
    }

    static func header(_ entries: String...) -> String { "{" + entries.joined(separator: ",") + "}" }

    /// Writes `bytes` to a fresh temporary folder as `name`; returns the path.
    static func write(_ bytes: [UInt8], name: String = "model.safetensors", in folder: String? = nil) -> String {
        let path = (folder ?? TestPaths.temporaryFolder()) + "/" + name
        TestPaths.write(bytes: bytes, to: path)
        return path
    }

    static func littleEndian<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
        values.flatMap { v in withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    }

    static func f32(_ values: [Float]) -> [UInt8] { littleEndian(values.map(\.bitPattern)) }
}

/// Runs `body`, expecting a `FlintError` of the given kind whose message mentions every fragment.
func expectFlintError(_ kind: String, _ fragments: [String], sourceLocation: SourceLocation = #_sourceLocation,
                      _ body: () throws(FlintError) -> Void)
{
    do {
        try body()
        Issue.record("expected a \(kind) error mentioning \(fragments), but nothing was thrown", sourceLocation: sourceLocation)
    } catch {
        let actualKind: String
        switch error {
        case .unreadable: actualKind = "unreadable"
        case .corruptCheckpoint: actualKind = "corruptCheckpoint"
        case .badTensor: actualKind = "badTensor"
        case .badConfig: actualKind = "badConfig"
        case .unsupportedModel: actualKind = "unsupportedModel"
        default: actualKind = "other"
        }
        if actualKind != kind {
            Issue.record("expected a \(kind) error, got \(actualKind): \(error)", sourceLocation: sourceLocation)
        }
        let message = error.description
        for f in fragments where !message.contains(f) {
            Issue.record("error \"\(message)\" does not mention \"\(f)\"", sourceLocation: sourceLocation)
        }
    }
}
