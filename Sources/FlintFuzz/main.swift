// flint-fuzz: libFuzzer entry points for every reader of untrusted input (FuzzTargets.swift).
//
// Built by scripts/fuzz with `swift build --sanitize=fuzzer --sanitize=address`: SwiftPM then
// compiles this file as a library and libFuzzer supplies `main`, running the target named by
// FLINT_FUZZ_TARGET. In a normal build this file's one global below runs instead, as a replayer:
// `FlintFuzz TARGET FILE...` runs each file through the target once, uninstrumented.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size == 0 || data == nil ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    FuzzTarget.selected.run(bytes)
    return 0
}

/// Top-level code only in a normal build (a fuzzer build parses this file as a library, where a
/// global's initializer runs only when the global is used, and this one never is).
let replayed: Void = Replay.main(CommandLine.arguments)
