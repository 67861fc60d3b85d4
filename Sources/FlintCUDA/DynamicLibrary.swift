#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import FlintCore

/// A shared library opened with `dlopen`, and typed symbol lookup.
///
/// Flint has no link-time CUDA dependency: the driver, NVRTC and cuBLASLt are opened at run time,
/// so the same binary runs (CPU only) on machines without CUDA and uses the GPU where it exists.
final class DynamicLibrary: @unchecked Sendable {
    let path: String
    private let handle: UnsafeMutableRawPointer

    /// Opens `path` (a full path or a bare soname for the loader's search path).
    init(_ path: String, global: Bool = false) throws(FlintError) {
        guard let h = dlopen(path, RTLD_NOW | (global ? RTLD_GLOBAL : RTLD_LOCAL)) else {
            let why = dlerror().map { String(cString: $0) } ?? "unknown dlopen error"
            throw .cudaUnavailable("cannot load \(path): \(why)")
        }
        self.path = path
        handle = h
    }

    /// The function `name` as a C function pointer of type `T`.
    func symbol<T>(_ name: String, as _: T.Type = T.self) throws(FlintError) -> T {
        guard let p = dlsym(handle, name) else {
            throw .cudaUnavailable("\(path) has no symbol \(name) (too old a version?)")
        }
        return unsafeBitCast(p, to: T.self)
    }

    func hasSymbol(_ name: String) -> Bool { dlsym(handle, name) != nil }
}

/// Where CUDA libraries and headers are looked for, in order:
/// `$FLINT_CUDA_PATH` (a folder with lib/ and include/: a toolkit, or pip's `nvidia/cu13`),
/// `$CUDA_HOME`, `/usr/local/cuda`, the loader's own search path (bare sonames), and the
/// `nvidia/cu13` folder of pip's `nvidia-cuda-*` wheels in the usual site-packages places.
public enum CUDALocations {
    public struct Folder: Sendable, Equatable {
        public var lib: String
        public var include: String?
    }

    public static func candidates() -> [Folder] {
        var roots: [String] = []
        for variable in ["FLINT_CUDA_PATH", "CUDA_HOME", "CUDA_PATH"] {
            if let v = getenv(variable) { roots.append(String(cString: v)) }
        }
        roots.append("/usr/local/cuda")
        var folders: [Folder] = []
        for root in roots {
            for lib in [root + "/lib", root + "/lib64", root + "/targets/x86_64-linux/lib"] where isDirectory(lib) {
                let include = [root + "/include", root + "/targets/x86_64-linux/include"].first(where: isDirectory)
                folders.append(Folder(lib: lib, include: include))
            }
        }
        for site in sitePackages() {
            let root = site + "/nvidia/cu13"
            if isDirectory(root + "/lib") {
                folders.append(Folder(lib: root + "/lib", include: isDirectory(root + "/include") ? root + "/include" : nil))
            }
        }
        return folders
    }

    /// site-packages folders of system, user, virtualenv and pyenv Pythons.
    static func sitePackages() -> [String] {
        var patterns = ["/usr/lib/python3*/site-packages", "/usr/lib/python3/dist-packages", "/usr/local/lib/python3*/site-packages",
                        "/usr/local/lib/python3*/dist-packages"]
        if let home = getenv("HOME").map({ String(cString: $0) }) {
            patterns += [home + "/.local/lib/python3*/site-packages", home + "/.pyenv/versions/*/lib/python3*/site-packages"]
        }
        if let venv = getenv("VIRTUAL_ENV").map({ String(cString: $0) }) { patterns.append(venv + "/lib/python3*/site-packages") }
        return patterns.flatMap(glob)
    }

    /// The first loadable `name` (e.g. "libnvrtc.so.13") among the candidate folders, then the
    /// loader path.
    static func open(_ names: [String], global: Bool = false, what: String) throws(FlintError) -> (DynamicLibrary, Folder?) {
        var tried: [String] = []
        for folder in candidates() {
            for name in names {
                let p = folder.lib + "/" + name
                guard access(p, R_OK) == 0 else { continue }
                do {
                    return (try DynamicLibrary(p, global: global), folder)
                } catch {
                    tried.append("\(p) (\(error))")
                }
            }
        }
        for name in names {
            if let lib = try? DynamicLibrary(name, global: global) { return (lib, nil) }
        }
        let looked = candidates().map(\.lib)
        throw .cudaUnavailable("""
            \(what) not found (looked for \(names.joined(separator: ", ")) in \(looked.isEmpty ? "no CUDA folders" : looked.joined(separator: ", ")) \
            and on the loader path\(tried.isEmpty ? "" : "; failed: " + tried.joined(separator: "; "))). \
            Set FLINT_CUDA_PATH to a CUDA toolkit or to pip's nvidia/cu13 folder.
            """)
    }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    static func glob(_ pattern: String) -> [String] {
        var g = glob_t()
        defer { globfree(&g) }
        guard Glibc.glob(pattern, 0, nil, &g) == 0 else { return [] }
        return (0..<Int(g.gl_pathc)).compactMap { g.gl_pathv[$0].map { String(cString: $0) } }
    }
}
