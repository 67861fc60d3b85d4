#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Whole-file reads for everything Flint reads from the user (configs, tokenizer files, JSON Lines):
/// regular files only, with a size limit checked before any memory is taken, so a device file
/// (`/dev/zero`), a FIFO or a huge file is refused with a message instead of exhausting memory.
/// It lives here, in the module every reader depends on; each caller maps `Failure` to its own
/// error type.
public enum BoundedFile {
    /// What a path is, by `stat` (symbolic links followed).
    public enum Kind: Equatable, Sendable {
        case missing, file, folder
        /// A device, FIFO or socket.
        case notRegular
        /// `stat` failed for another reason than absence (a symbolic-link loop, no permission...).
        case inaccessible(reason: String)
    }

    public enum Failure: Error, Equatable, Sendable {
        case missing
        case folder
        case notRegular
        case inaccessible(reason: String)
        case tooLarge(bytes: Int, limit: Int)

        /// The reason, for a message that already names the path.
        public var reason: String {
            switch self {
            case .missing: return "no such file"
            case .folder: return "is a folder, expected a file"
            case .notRegular: return "is not a regular file (a device, FIFO or socket)"
            case let .inaccessible(reason): return reason
            case let .tooLarge(bytes, limit):
                return "file is \(BoundedFile.format(bytes)), more than the \(BoundedFile.format(limit)) allowed"
            }
        }
    }

    public static func kind(_ path: String) -> Kind {
        var st = stat()
        guard stat(path, &st) == 0 else {
            let code = errno
            return code == ENOENT ? .missing : .inaccessible(reason: String(cString: strerror(code)))
        }
        switch st.st_mode & S_IFMT {
        case S_IFREG: return .file
        case S_IFDIR: return .folder
        default: return .notRegular
        }
    }

    /// The whole file: at most `limit` bytes, else `.tooLarge` without reading it.
    public static func contents(_ path: String, limit: Int) throws(Failure) -> [UInt8] {
        switch kind(path) {
        case .missing: throw .missing
        case .folder: throw .folder
        case .notRegular: throw .notRegular
        case let .inaccessible(reason): throw .inaccessible(reason: reason)
        case .file: break
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .inaccessible(reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        // The descriptor's own stat: the path may have been swapped for something else since.
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .inaccessible(reason: String(cString: strerror(errno))) }
        guard st.st_mode & S_IFMT == S_IFREG else { throw .notRegular }
        let size = Int(st.st_size)
        guard size <= limit else { throw .tooLarge(bytes: size, limit: limit) }
        var out = [UInt8](repeating: 0, count: size)
        var done = 0
        while done < size {
            let n = out.withUnsafeMutableBytes { read(fd, $0.baseAddress! + done, size - done) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .inaccessible(reason: String(cString: strerror(errno)))
            }
            if n == 0 { break }  // shrank while reading
            done += n
        }
        return done == size ? out : Array(out[0..<done])
    }

    /// "12.5 MiB".
    public static func format(_ bytes: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var v = Double(bytes)
        var u = 0
        while v >= 1024, u < units.count - 1 {
            v /= 1024
            u += 1
        }
        return u == 0 ? "\(bytes) B" : "\(Double(Int(v * 10)) / 10) \(units[u])"
    }
}
