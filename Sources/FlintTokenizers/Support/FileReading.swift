import FlintJSON
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Whole-file reads with errors that name the path (no Foundation needed).
enum FileReading {
    static func bytes(_ path: String) throws(TokenizerError) -> [UInt8] {
        guard let f = fopen(path, "rb") else {
            throw .unreadableFile(path: path, reason: String(cString: strerror(errno)))
        }
        defer { fclose(f) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
            if n > 0 { out.append(contentsOf: chunk[0..<n]) }
            if n < chunk.count {
                if ferror(f) != 0 { throw .unreadableFile(path: path, reason: "read error (is it a directory?)") }
                break
            }
        }
        return out
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
