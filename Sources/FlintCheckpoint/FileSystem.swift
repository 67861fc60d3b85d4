#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import FlintCore
import FlintJSON

/// Small POSIX helpers (no Foundation): file kinds, whole-file reads, JSON files.
public enum FileSystem {
    enum Kind: Equatable {
        case missing, file, folder, other
        /// `stat` failed for another reason than absence (a symbolic-link loop, no permission).
        case inaccessible(String)
    }

    static func kind(_ path: String) -> Kind {
        switch BoundedFile.kind(path) {
        case .missing: return .missing
        case .file: return .file
        case .folder: return .folder
        case .notRegular: return .other
        case let .inaccessible(reason): return .inaccessible(reason)
        }
    }

    static func isFile(_ path: String) -> Bool { kind(path) == .file }

    static func errnoText(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }

    /// Joins a folder and a relative path ("" means the folder itself).
    public static func join(_ folder: String, _ relative: String) -> String {
        if relative.isEmpty || relative == "." { return folder }
        if folder.isEmpty { return relative }
        return folder.hasSuffix("/") ? folder + relative : folder + "/" + relative
    }

    /// The whole file, or `.unreadable` naming it. Refuses folders, devices and files over `limit` bytes.
    static func readAll(_ path: String, limit: Int = 1 << 30) throws(FlintError) -> [UInt8] {
        do {
            return try BoundedFile.contents(path, limit: limit)
        } catch {
            throw .unreadable(path: path, reason: error.reason)
        }
    }

    /// Parses a JSON file; syntax errors become `.badConfig` naming the file and the byte offset.
    public static func json(_ path: String) throws(FlintError) -> JSONValue {
        let bytes = try readAll(path, limit: 256 << 20)
        do {
            return try JSONParser.parse(bytes)
        } catch {
            throw .badConfig(path: path, reason: "invalid JSON at byte \(error.offset): \(error.reason)")
        }
    }
}
