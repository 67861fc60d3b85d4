#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import FlintJSON

/// The uninstrumented build's command line: replays files (a corpus, a crash) through one target.
enum Replay {
    static func main(_ arguments: [String]) {
        guard arguments.count >= 3, let target = FuzzTarget(rawValue: arguments[1]) else {
            print("usage: \(arguments.first ?? "FlintFuzz") TARGET FILE...   (targets: "
                  + FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ") + ")")
            print("to fuzz, run scripts/fuzz (a build with --sanitize=fuzzer --sanitize=address)")
            exit(arguments.count == 1 ? 0 : 2)
        }
        var count = 0
        for path in arguments.dropFirst(2) {
            let bytes: [UInt8]
            do {
                bytes = try BoundedFile.contents(path, limit: 1 << 30)
            } catch {
                print("cannot read \(path): \(error.reason)")
                exit(1)
            }
            target.run(bytes)
            count += 1
        }
        print("\(target.rawValue): \(count) inputs replayed, no failure")
        exit(0)
    }
}
