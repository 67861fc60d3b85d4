// Persistent thread pool for the CPU kernels: threadCount-1 worker threads plus the calling
// thread. Work indices are handed out by an atomic counter; idle workers spin briefly (~300 µs)
// then sleep, so back-to-back kernel calls dispatch in well under a microsecond. The pool runs
// one job at a time: a concurrent or nested parallelFor on a busy pool runs serially on the
// caller (correct, just not parallel). Implemented in C (CFlintCPU/pool.c) so the GEMM and
// attention drivers dispatch without crossing into Swift.
import CFlintCPU

public final class ThreadPool: @unchecked Sendable {
    let raw: OpaquePointer?

    /// threads: total threads including the caller; nil = the CPUs this process may use.
    public init(threads: Int? = nil) {
        raw = flint_pool_create(Int32(clamping: max(1, threads ?? CPUFeatures.cpuCount)))
    }

    deinit { flint_pool_destroy(raw) }

    /// Threads that run a job, the caller included.
    public var threadCount: Int { Int(flint_pool_threads(raw)) }

    /// No job follows soon: workers spinning for the next one sleep now instead of holding a core.
    public func park() { flint_pool_park(raw) }

    /// Runs body(i) for every i in 0..<count across the pool; returns when all are done.
    public func parallelFor(_ count: Int, _ body: (Int) -> Void) {
        if count <= 0 { return }
        if count == 1 || threadCount == 1 {
            for i in 0..<count { body(i) }
            return
        }
        withoutActuallyEscaping(body) { escaping in
            var closure = escaping
            withUnsafeMutablePointer(to: &closure) { ctx in
                flint_pool_run(raw, count, { ctx, index in
                    ctx!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(index)
                }, ctx)
            }
        }
    }
}
