#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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
            guard let bytes = Scratch.read(path) else {
                print("cannot read \(path)")
                exit(1)
            }
            target.run(bytes)
            count += 1
        }
        print("\(target.rawValue): \(count) inputs replayed, no failure")
        exit(0)
    }
}
