#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A private folder for the files the file-based readers need (a checkpoint index and its shards,
/// tokenizer files), made once per process under $TMPDIR.
enum Scratch {
    static let folder: String = {
        let base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array((base + "/flint-fuzz-XXXXXX").utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            fatalError("flint-fuzz: cannot create a scratch folder under \(base)")
        }
        return String(cString: made)
    }()

    /// Writes `bytes` to `name` in the scratch folder (replacing it) and returns the path.
    @discardableResult
    static func save(_ bytes: [UInt8], as name: String) -> String {
        let path = folder + "/" + name
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { fatalError("flint-fuzz: cannot write \(path)") }
        defer { close(fd) }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, bytes.count - done) }
            guard n > 0 else { fatalError("flint-fuzz: short write to \(path)") }
            done += n
        }
        return path
    }

    static func save(_ text: String, as name: String) { save(Array(text.utf8), as: name) }

    static func remove(_ name: String) { unlink(folder + "/" + name) }
}
