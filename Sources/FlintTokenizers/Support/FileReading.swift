import FlintJSON
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Whole-file reads with errors that name the path (no Foundation needed).
enum FileReading {
    /// The largest tokenizer file read (tokenizer.json of a 250k-token vocabulary is ~20 MB).
    static let maxFileBytes = 512 << 20

    /// The file's bytes; refuses folders, devices, FIFOs and files over `maxFileBytes`.
    static func bytes(_ path: String) throws(TokenizerError) -> [UInt8] {
        do {
            return try BoundedFile.contents(path, limit: maxFileBytes)
        } catch {
            throw .unreadableFile(path: path, reason: error.reason)
        }
    }

    static func text(_ path: String) throws(TokenizerError) -> String {
        let b = try bytes(path)
        guard let s = String(validating: b, as: UTF8.self) else {
            throw .malformedFile(path: path, reason: "not valid UTF-8")
        }
        return s
    }

    static func json(_ path: String) throws(TokenizerError) -> JSONValue {
        let b = try bytes(path)
        do {
            return try JSONParser.parse(b)
        } catch {
            throw .malformedFile(path: path, reason: "invalid JSON at byte \(error.offset): \(error.reason)")
        }
    }

    static func exists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0
    }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }
}
