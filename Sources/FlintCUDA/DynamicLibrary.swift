#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import FlintCore
import Synchronization

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
/// `$CUDA_HOME`, `$CUDA_PATH`, `/usr/local/cuda`, then the `nvidia/cu13` (CUDA 13 wheels) and
/// `nvidia/*/lib` (CUDA 12 wheels: `nvidia/cublas/lib`, ...) folders of the site-packages of
/// `$VIRTUAL_ENV`, of every `python3` on `$PATH`, of common venvs (`./.venv`, `./venv`, `~/.venv`),
/// and of the system, user and pyenv Pythons; last, the loader's own search path (bare sonames).
public enum CUDALocations {
    public struct Folder: Sendable, Equatable {
        public var lib: String
        public var include: String?
    }

    /// The process environment, as `candidates` reads it.
    public static func environment() -> [String: String] {
        var env: [String: String] = [:]
        for name in ["FLINT_CUDA_PATH", "CUDA_HOME", "CUDA_PATH", "VIRTUAL_ENV", "PATH", "HOME"] {
            if let v = getenv(name) { env[name] = String(cString: v) }
        }
        return env
    }

    public static func candidates(environment env: [String: String] = environment()) -> [Folder] {
        var roots = ["FLINT_CUDA_PATH", "CUDA_HOME", "CUDA_PATH"].compactMap { env[$0] }.filter { !$0.isEmpty }
        roots.append("/usr/local/cuda")
        var folders: [Folder] = []
        func add(_ f: Folder) { if !folders.contains(where: { $0.lib == f.lib }) { folders.append(f) } }
        for root in roots {
            for lib in [root + "/lib", root + "/lib64", root + "/targets/x86_64-linux/lib"] where isDirectory(lib) {
                add(Folder(lib: lib, include: [root + "/include", root + "/targets/x86_64-linux/include"].first(where: isDirectory)))
            }
        }
        for site in sitePackages(environment: env) {
            let cu13 = site + "/nvidia/cu13"
            if isDirectory(cu13 + "/lib") {
                add(Folder(lib: cu13 + "/lib", include: isDirectory(cu13 + "/include") ? cu13 + "/include" : nil))
            }
            for lib in glob(site + "/nvidia/*/lib").sorted() where !lib.hasPrefix(cu13) {
                let include = String(lib.dropLast(4)) + "/include"
                add(Folder(lib: lib, include: isDirectory(include) ? include : nil))
            }
        }
        return folders
    }

    /// site-packages folders, most specific first: the active virtualenv, each `python3` on PATH
    /// (a venv's or a toolkit's bin/ sits beside its lib/), common venv folders, then the system,
    /// user and pyenv Pythons.
    static func sitePackages(environment env: [String: String]) -> [String] {
        var prefixes: [String] = []
        if let venv = env["VIRTUAL_ENV"], !venv.isEmpty { prefixes.append(venv) }
        for dir in (env["PATH"] ?? "").split(separator: ":").map(String.init) where access(dir + "/python3", X_OK) == 0 {
            if dir.hasSuffix("/bin") { prefixes.append(String(dir.dropLast(4))) }
        }
        let home = env["HOME"]
        prefixes += [".venv", "venv"] + (home.map { [$0 + "/.venv", $0 + "/venv"] } ?? [])
        var patterns = prefixes.map { $0 + "/lib/python3*/site-packages" }
        patterns += ["/usr/lib/python3*/site-packages", "/usr/lib/python3/dist-packages", "/usr/local/lib/python3*/site-packages",
                     "/usr/local/lib/python3*/dist-packages"]
        if let home { patterns += [home + "/.local/lib/python3*/site-packages", home + "/.pyenv/versions/*/lib/python3*/site-packages"] }
        var seen = Set<String>()
        return patterns.flatMap(glob).filter { seen.insert($0).inserted }
    }

    /// The libraries Flint opens, by what they are for, with the names it tries.
    public static let libraries: [(what: String, names: [String])] = [
        ("CUDA driver", ["libcuda.so.1", "libcuda.so"]),
        ("cuBLASLt", ["libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"]),
        ("NVRTC", ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"]),
        ("NVRTC builtins", ["libnvrtc-builtins.so.13.0", "libnvrtc-builtins.so.12.9", "libnvrtc-builtins.so"]),
    ]

    /// Where each library would be found, without loading any: the first candidate folder holding
    /// one of its names, "loader path" when only a bare soname might resolve, or nil.
    public static func report(environment env: [String: String] = environment()) -> [(what: String, found: String?)] {
        let folders = candidates(environment: env)
        return libraries.map { library in
            for folder in folders {
                for name in library.names where access(folder.lib + "/" + name, R_OK) == 0 {
                    return (library.what, folder.lib + "/" + name)
                }
            }
            for name in library.names {
                if let h = dlopen(name, RTLD_LAZY | RTLD_NOLOAD) {  // already mapped: ask where from
                    dlclose(h)
                    return (library.what, "\(name) (already loaded)")
                }
            }
            return (library.what, nil)
        }
    }

    /// What `open` loaded so far, and from where (`flint check --device cuda` prints it).
    public static var openedLibraries: [(what: String, path: String)] { opened.withLock { $0 } }
    private static let opened = Mutex<[(what: String, path: String)]>([])

    /// The first loadable `name` (e.g. "libnvrtc.so.13") among the candidate folders, then the
    /// loader path.
    static func open(_ names: [String], global: Bool = false, what: String) throws(FlintError) -> (DynamicLibrary, Folder?) {
        var tried: [String] = []
        for folder in candidates() {
            for name in names {
                let p = folder.lib + "/" + name
                guard access(p, R_OK) == 0 else { continue }
                do {
                    let library = try DynamicLibrary(p, global: global)
                    opened.withLock { $0.append((what, p)) }
                    return (library, folder)
                } catch {
                    tried.append("\(p) (\(error))")
                }
            }
        }
        for name in names {
            if let lib = try? DynamicLibrary(name, global: global) {
                opened.withLock { $0.append((what, name + " (loader path)")) }
                return (lib, nil)
            }
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
