import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A shared work counter for batch loops.
final class AtomicCounter: Sendable {
    private let value = Atomic<Int>(0)
    /// Returns the value before incrementing.
    func increment() -> Int { value.add(1, ordering: .relaxed).oldValue }
}

/// Cores this process may use (respects CPU affinity where the OS reports it).
func activeProcessorCount() -> Int {
    Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
}
