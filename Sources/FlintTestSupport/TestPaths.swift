#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where tests find committed fixtures and fetched assets.
public enum TestPaths {
    /// The repository root, derived from this file's location (no Bundle needed).
    public static let repositoryRoot: String = {
        var path = #filePath
        for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }  // Sources/FlintTestSupport/TestPaths.swift
        return path
    }()

    /// `Tests/Fixtures/<name>`.
    public static func fixture(_ name: String) -> String { repositoryRoot + "/Tests/Fixtures/" + name }

    /// The tiny DistilBERT, RoBERTa and XLM-RoBERTa folders of `scripts/gen_encoder_fixtures.py`,
    /// relative to `Tests/Fixtures` (each has expected.json).
    public static let tinyEncoders: [String] = ["distilbert", "roberta", "xlm-roberta"].flatMap { family in
        ["model", "seqcls", "tokcls", "qa"].map { "encoders/tiny-\(family)-\($0)" }
    } + ["encoders/tiny-distilbert-sinusoidal"]

    /// The folder `scripts/fetch-assets` fills: `$FLINT_ASSETS`, else `<repo>/.cache/assets`.
    public static var assets: String {
        if let p = getenv("FLINT_ASSETS") { return String(cString: p) }
        return repositoryRoot + "/.cache/assets"
    }

    /// `assets/<relative>` if it exists, else nil (tests then skip, saying why).
    public static func asset(_ relative: String) -> String? {
        let p = assets + "/" + relative
        return access(p, R_OK) == 0 ? p : nil
    }

    public static let missingAssetsReason = "assets not fetched: run scripts/fetch-assets (or set FLINT_ASSETS)"

    /// A fresh temporary folder for files a test writes.
    public static func temporaryFolder() -> String {
        var template = Array("/tmp/flint-test-XXXXXX".utf8CString)
        let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        return String(cString: p!)
    }

    public static func write(_ text: String, to path: String) {
        let f = fopen(path, "wb")!
        defer { fclose(f) }
        var t = text
        t.withUTF8 { _ = fwrite($0.baseAddress, 1, $0.count, f) }
    }

    public static func write(bytes: [UInt8], to path: String) {
        let f = fopen(path, "wb")!
        defer { fclose(f) }
        bytes.withUnsafeBufferPointer { _ = fwrite($0.baseAddress, 1, $0.count, f) }
    }

    public static func read(_ path: String) -> [UInt8]? {
        guard let f = fopen(path, "rb") else { return nil }
        defer { fclose(f) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
            out.append(contentsOf: chunk[0..<n])
            if n < chunk.count { return out }
        }
    }
}
