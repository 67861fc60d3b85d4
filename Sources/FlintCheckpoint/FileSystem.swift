#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import FlintCore
import FlintJSON

/// Small POSIX helpers (no Foundation): file kinds, whole-file reads, JSON files.
enum FileSystem {
    enum Kind { case missing, file, folder, other }

    static func kind(_ path: String) -> Kind {
        var st = stat()
        guard stat(path, &st) == 0 else { return .missing }
        switch st.st_mode & S_IFMT {
        case S_IFREG: return .file
        case S_IFDIR: return .folder
        default: return .other
        }
    }

    static func isFile(_ path: String) -> Bool { kind(path) == .file }

    static func errnoText(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }

    /// Joins a folder and a relative path ("" means the folder itself).
    static func join(_ folder: String, _ relative: String) -> String {
        if relative.isEmpty || relative == "." { return folder }
        if folder.isEmpty { return relative }
        return folder.hasSuffix("/") ? folder + relative : folder + "/" + relative
    }

    /// The whole file, or `.unreadable` naming it. Refuses folders and files over `limit` bytes.
    static func readAll(_ path: String, limit: Int = 1 << 30) throws(FlintError) -> [UInt8] {
        switch kind(path) {
        case .missing: throw .unreadable(path: path, reason: "no such file")
        case .folder: throw .unreadable(path: path, reason: "is a folder, expected a file")
        case .other: throw .unreadable(path: path, reason: "is not a regular file")
        case .file: break
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .unreadable(path: path, reason: errnoText()) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .unreadable(path: path, reason: errnoText()) }
        let size = Int(st.st_size)
        guard size <= limit else {
            throw .unreadable(path: path, reason: "file is \(FlintError.format(bytes: size)), more than the \(FlintError.format(bytes: limit)) allowed")
        }
        var out = [UInt8](repeating: 0, count: size)
        var done = 0
        while done < size {
            let n = out.withUnsafeMutableBytes { read(fd, $0.baseAddress! + done, size - done) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .unreadable(path: path, reason: errnoText())
            }
            if n == 0 { break }  // shrank while reading
            done += n
        }
        return done == size ? out : Array(out[0..<done])
    }

    /// Parses a JSON file; syntax errors become `.badConfig` naming the file and the byte offset.
    static func json(_ path: String) throws(FlintError) -> JSONValue {
        let bytes = try readAll(path, limit: 256 << 20)
        do {
            return try JSONParser.parse(bytes)
        } catch {
            throw .badConfig(path: path, reason: "invalid JSON at byte \(error.offset): \(error.reason)")
        }
    }
}
