// Execution model of the CUDA emulation (see cuda_emulation.h for what the kernels see).
//
// Grid: blocks are handed out by an atomic counter to up to N OS threads (the caller plus N-1
// std::threads; N = flint_emu_set_threads / FLINT_EMU_THREADS / min(CPUs, 8)). Each OS thread runs
// whole blocks, one after another.
// Block: every CUDA thread is a fiber (ucontext makecontext/swapcontext) with its own 64 KB stack
// (mmap'd, with a PROT_NONE guard page below it so an overflow faults instead of corrupting a
// neighbour). Scheduling is cooperative round-robin: a fiber runs until it finishes or waits at a
// synchronization point, then the block's scheduler context resumes the next runnable fiber.
// - __syncthreads: a fiber arriving at the barrier waits; the last of ALL the block's threads to
//   arrive releases every waiter. A thread that has exited never arrives (strict: CUDA calls a
//   barrier not reached by every thread undefined), so such a barrier is reported as a deadlock.
// - Warp collectives (__syncwarp, __shfl*_sync, __ballot/__any/__all_sync): each lane of the mask
//   publishes its value and source lane, and waits; the last lane of the mask (restricted to lanes
//   that exist in a partial last warp) computes every lane's result at once, so a lane that
//   resumes early and publishes again cannot clobber a value another lane has not read yet. Lanes
//   of one warp meeting at different collectives (op or mask differ) are an error.
// - Deadlock: a pass over the block that finds no runnable fiber while some have not finished.
//   The launch then fails with FLINT_EMU_ERR_SYNC and a message that says which threads wait where
//   (also printed to stderr); it never hangs. The stuck fibers are simply abandoned: kernels own no
//   resources, and their stacks are reused by the next block.
// Runners (an OS thread's fiber stacks and scheduler state) are pooled and reused across launches.
// Bounds checks (checked launches): each OS thread running blocks works from a copy of the sorted
// registry of allocations, refreshed when the registry changed (a generation counter); a violation
// faults the fiber like a synchronization error, with FLINT_EMU_ERR_OUT_OF_BOUNDS.
#include "cuda_emulation.h"
#include "include/CFlintCUDAEmulation.h"
#include "emulation_internal.h"

#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace flint_emu {

thread_local uint3 tl_threadIdx;
thread_local uint3 tl_blockIdx;
thread_local dim3 tl_blockDim;
thread_local dim3 tl_gridDim;
thread_local bool tl_checking = false;
thread_local Span tl_last_span = {0, 0};

namespace {

constexpr size_t kStackSize = 64 * 1024;
constexpr size_t kGuard = 4096;
constexpr unsigned kMaxThreads = 1024;

enum FiberState { kRunnable, kAtBarrier, kAtWarp, kDone, kFaulted };

const char* op_name(int op) {
    switch (op) {
    case kSyncWarp: return "__syncwarp";
    case kShfl: return "__shfl_sync";
    case kShflUp: return "__shfl_up_sync";
    case kShflDown: return "__shfl_down_sync";
    case kShflXor: return "__shfl_xor_sync";
    case kBallot: return "__ballot_sync";
    case kAny: return "__any_sync";
    case kAll: return "__all_sync";
    default: return "?";
    }
}

struct Fiber {
    ucontext_t ctx;
    uint3 tid;
    unsigned lane, warp;
    int state;
    uint64_t result;
};

struct Warp {
    unsigned present;  // lanes that exist (a partial last warp has fewer)
    unsigned arrived;  // lanes waiting at the current collective
    unsigned mask;
    int op;
    uint64_t values[32];
    int sources[32];
};

struct Runner {
    char* stacks = nullptr;  // kMaxThreads * (kGuard + kStackSize), mapped once
    std::vector<Fiber> fibers;
    std::vector<Warp> warps;
    ucontext_t scheduler;
    Fiber* current = nullptr;
    unsigned threads = 0, live = 0, barrier_arrived = 0;
    bool faulted = false;
    int fault_code = FLINT_EMU_ERR_SYNC;
    std::string error;
    void (*entry)(void*) = nullptr;
    void* context = nullptr;

    bool reserve() {
        if (stacks) return true;
        const size_t total = kMaxThreads * (kGuard + kStackSize);
        void* p = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) return false;
        stacks = static_cast<char*>(p);
        for (unsigned i = 0; i < kMaxThreads; ++i) mprotect(stacks + i * (kGuard + kStackSize), kGuard, PROT_NONE);
        fibers.resize(kMaxThreads);
        warps.resize(kMaxThreads / 32);
        return true;
    }
};

thread_local Runner* tl_runner = nullptr;

std::mutex pool_mutex;
std::vector<Runner*> pool;  // idle runners (never freed: their stacks are reused)

Runner* acquire_runner() {
    {
        std::lock_guard<std::mutex> lock(pool_mutex);
        if (!pool.empty()) {
            Runner* r = pool.back();
            pool.pop_back();
            return r;
        }
    }
    Runner* r = new Runner();
    if (!r->reserve()) {
        delete r;
        return nullptr;
    }
    return r;
}

void release_runner(Runner* r) {
    std::lock_guard<std::mutex> lock(pool_mutex);
    pool.push_back(r);
}

std::string format(const char* fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return buf;
}

Runner* running(const char* what) {
    Runner* r = tl_runner;
    if (!r || !r->current) {
        fprintf(stderr, "flint CUDA emulation: %s called outside a kernel launch\n", what);
        abort();
    }
    return r;
}

// Back to the scheduler; returns when this fiber is resumed.
void yield(Runner* r) {
    Fiber* f = r->current;
    swapcontext(&f->ctx, &r->scheduler);
}

// Stops the launch from inside a fiber: never returns.
[[noreturn]] void fault(Runner* r, const std::string& message, int code = FLINT_EMU_ERR_SYNC) {
    r->faulted = true;
    r->fault_code = code;
    r->error = message;
    r->current->state = kFaulted;
    yield(r);
    abort();  // unreachable: a faulted fiber is never resumed
}

void fiber_main() {
    Runner* r = tl_runner;
    r->entry(r->context);
    r->current->state = kDone;
    r->live--;
    // returning resumes uc_link = the scheduler
}

std::string describe_thread(const Fiber& f) { return format("(%u,%u,%u)", f.tid.x, f.tid.y, f.tid.z); }

std::string deadlock_message(Runner* r) {
    unsigned at_barrier = 0, at_warp = 0, done = 0;
    const Fiber* first_done = nullptr;
    const Fiber* first_barrier = nullptr;
    for (unsigned i = 0; i < r->threads; ++i) {
        const Fiber& f = r->fibers[i];
        if (f.state == kAtBarrier) {
            at_barrier++;
            if (!first_barrier) first_barrier = &f;
        } else if (f.state == kAtWarp) {
            at_warp++;
        } else if (f.state == kDone) {
            done++;
            if (!first_done) first_done = &f;
        }
    }
    std::string m = format("deadlock in block (%u,%u,%u) of %u threads: ", tl_blockIdx.x, tl_blockIdx.y,
                           tl_blockIdx.z, r->threads);
    if (at_barrier)
        m += format("__syncthreads reached by %u of %u threads (first: thread %s); ", at_barrier, r->threads,
                    describe_thread(*first_barrier).c_str());
    for (unsigned w = 0; w * 32 < r->threads; ++w) {
        const Warp& wp = r->warps[w];
        if (!wp.arrived) continue;
        const unsigned needed = wp.mask & wp.present;
        m += format("warp %u waits in %s(mask 0x%08x): lanes 0x%08x arrived, 0x%08x missing; ", w, op_name(wp.op),
                    wp.mask, wp.arrived, needed & ~wp.arrived);
    }
    if (at_warp) m += format("(%u threads in warp collectives); ", at_warp);
    if (done)
        m += format("%u threads already exited (first: thread %s)", done, describe_thread(*first_done).c_str());
    return m;
}

// Runs the current block (tl_blockIdx etc. are set). Returns false with r->error on failure.
bool run_block(Runner* r) {
    const dim3 bd = tl_blockDim;
    const unsigned n = bd.x * bd.y * bd.z;
    r->threads = n;
    r->live = n;
    r->barrier_arrived = 0;
    r->faulted = false;
    r->fault_code = FLINT_EMU_ERR_SYNC;
    for (unsigned w = 0; w * 32 < n; ++w) {
        Warp& wp = r->warps[w];
        const unsigned lanes = n - w * 32 >= 32 ? 32 : n - w * 32;
        wp.present = lanes == 32 ? 0xffffffffu : ((1u << lanes) - 1u);
        wp.arrived = 0;
    }
    for (unsigned i = 0; i < n; ++i) {
        Fiber& f = r->fibers[i];
        f.tid = uint3{i % bd.x, (i / bd.x) % bd.y, i / (bd.x * bd.y)};
        f.lane = i & 31;
        f.warp = i >> 5;
        f.state = kRunnable;
        getcontext(&f.ctx);
        f.ctx.uc_stack.ss_sp = r->stacks + i * (kGuard + kStackSize) + kGuard;
        f.ctx.uc_stack.ss_size = kStackSize;
        f.ctx.uc_link = &r->scheduler;
        makecontext(&f.ctx, fiber_main, 0);
    }
    while (r->live > 0) {
        bool progressed = false;
        for (unsigned i = 0; i < n; ++i) {
            Fiber& f = r->fibers[i];
            if (f.state != kRunnable) continue;
            r->current = &f;
            tl_threadIdx = f.tid;
            swapcontext(&r->scheduler, &f.ctx);
            r->current = nullptr;
            progressed = true;
            if (r->faulted) {
                r->error = format("block (%u,%u,%u) thread %s: ", tl_blockIdx.x, tl_blockIdx.y, tl_blockIdx.z,
                                  describe_thread(f).c_str()) + r->error;
                return false;
            }
        }
        if (!progressed && r->live > 0) {
            r->error = deadlock_message(r);
            return false;
        }
    }
    return true;
}

// Live allocations, sorted by base; spans never overlap (they are distinct host allocations).
std::mutex registry_mutex;
std::vector<Span> registry;
std::atomic<uint64_t> registry_generation{1};
thread_local std::vector<Span> tl_spans;  // this OS thread's copy, for the launch it runs
thread_local uint64_t tl_spans_generation = 0;
constexpr unsigned kRecentSpans = 4;
thread_local Span tl_recent_spans[kRecentSpans];  // cleared per launch (all {0, 0}: match nothing)
thread_local unsigned tl_recent_next = 0;

void refresh_spans() {
    if (tl_spans_generation == registry_generation.load(std::memory_order_acquire)) return;
    std::lock_guard<std::mutex> lock(registry_mutex);
    tl_spans = registry;
    tl_spans_generation = registry_generation.load(std::memory_order_relaxed);
}

// The span holding `address`, or null.
const Span* span_of(uintptr_t address) {
    auto it = std::upper_bound(tl_spans.begin(), tl_spans.end(), address,
                               [](uintptr_t a, const Span& s) { return a < s.lo; });
    if (it == tl_spans.begin()) return nullptr;
    --it;
    return address < it->hi || (address == it->lo && it->hi == it->lo) ? &*it : nullptr;
}

std::atomic<int> configured_threads{0};

unsigned worker_count(unsigned long blocks) {
    int t = configured_threads.load();
    if (t <= 0) {
        const char* env = getenv("FLINT_EMU_THREADS");
        t = env ? atoi(env) : 0;
    }
    if (t <= 0) {
        const unsigned hw = std::thread::hardware_concurrency();
        t = hw == 0 ? 1 : (hw > 8 ? 8 : (int)hw);
    }
    return (unsigned long)t < blocks ? (unsigned)t : (unsigned)blocks;
}

thread_local std::string last_error;

}  // namespace

void syncthreads() {
    Runner* r = running("__syncthreads");
    Fiber* f = r->current;
    f->state = kAtBarrier;
    if (++r->barrier_arrived == r->threads) {
        r->barrier_arrived = 0;
        for (unsigned i = 0; i < r->threads; ++i)
            if (r->fibers[i].state == kAtBarrier) r->fibers[i].state = kRunnable;
        return;  // the last arriver goes on; the others resume in the scheduler's next turns
    }
    yield(r);
}

uint64_t warp_collective(int op, unsigned mask, uint64_t value, int src_lane) {
    Runner* r = running(op_name(op));
    Fiber* f = r->current;
    Warp& w = r->warps[f->warp];
    const unsigned bit = 1u << f->lane;
    if (!(mask & bit))
        fault(r, format("%s(mask 0x%08x) called by lane %u, which the mask excludes", op_name(op), mask, f->lane));
    if (w.arrived == 0) {
        w.op = op;
        w.mask = mask;
    } else if (w.op != op || w.mask != mask) {
        fault(r, format("warp %u: lane %u calls %s(mask 0x%08x) while lanes 0x%08x wait in %s(mask 0x%08x)", f->warp,
                        f->lane, op_name(op), mask, w.arrived, op_name(w.op), w.mask));
    }
    w.values[f->lane] = value;
    w.sources[f->lane] = src_lane;
    w.arrived |= bit;
    const unsigned needed = mask & w.present;
    if (w.arrived != needed) {
        f->state = kAtWarp;
        yield(r);
        return f->result;
    }
    // Last lane: compute every participant's result, release the others.
    uint64_t vote = 0;
    if (op == kBallot || op == kAny || op == kAll) {
        unsigned ballot = 0;
        for (unsigned l = 0; l < 32; ++l)
            if ((needed >> l & 1u) && w.values[l]) ballot |= 1u << l;
        vote = op == kBallot ? ballot : op == kAny ? (ballot != 0) : (ballot == needed);
    }
    for (unsigned l = 0; l < 32; ++l) {
        if (!(needed >> l & 1u)) continue;
        Fiber& g = r->fibers[f->warp * 32 + l];
        if (op == kSyncWarp) {
            g.result = 0;
        } else if (op == kBallot || op == kAny || op == kAll) {
            g.result = vote;
        } else {
            const int s = w.sources[l];
            // A source lane outside the participating set gives an undefined value in CUDA: own value here.
            g.result = (s >= 0 && s < 32 && (needed >> s & 1u)) ? w.values[s] : w.values[l];
        }
        if (&g != f) g.state = kRunnable;
    }
    w.arrived = 0;
    return f->result;
}

unsigned lane_id() { return running("lane query")->current->lane; }

void check_access_slow(const void* base, uintptr_t address, size_t bytes, bool write) {
    const uintptr_t b = (uintptr_t)base;
    // Kernels alternate between a few allocations (activations, weights): the recent ones first.
    for (Span& recent : tl_recent_spans) {
        if (b >= recent.lo && b < recent.hi && address >= recent.lo && address + bytes >= address && address + bytes <= recent.hi) {
            tl_last_span = recent;
            return;
        }
    }
    const Span* s = span_of(b);
    if (s && address >= s->lo && address + bytes >= address && address + bytes <= s->hi) {
        tl_last_span = *s;
        tl_recent_spans[tl_recent_next++ % kRecentSpans] = *s;
        return;
    }
    Runner* r = running("a bounds check");
    const long index = (long)(address - b) / (long)(bytes ? bytes : 1);
    std::string where = s ? format("the allocation [0x%lx, +%lu bytes) that holds the pointer 0x%lx", (unsigned long)s->lo,
                                   (unsigned long)(s->hi - s->lo), (unsigned long)b)
                          : format("no allocation: the pointer 0x%lx lies outside every allocation", (unsigned long)b);
    fault(r, format("out-of-bounds %s of %lu bytes at 0x%lx (element %ld from the pointer), outside %s",
                    write ? "write" : "read", (unsigned long)bytes, (unsigned long)address, index, where.c_str()),
          FLINT_EMU_ERR_OUT_OF_BOUNDS);
}

void register_allocation(const void* base, size_t bytes) {
    const Span span{(uintptr_t)base, (uintptr_t)base + bytes};
    std::lock_guard<std::mutex> lock(registry_mutex);
    auto it = std::lower_bound(registry.begin(), registry.end(), span.lo, [](const Span& s, uintptr_t a) { return s.lo < a; });
    if (it != registry.end() && it->lo == span.lo) {
        *it = span;
    } else {
        registry.insert(it, span);
    }
    registry_generation.fetch_add(1, std::memory_order_release);
}

void unregister_allocation(const void* base) {
    std::lock_guard<std::mutex> lock(registry_mutex);
    auto it = std::lower_bound(registry.begin(), registry.end(), (uintptr_t)base,
                               [](const Span& s, uintptr_t a) { return s.lo < a; });
    if (it != registry.end() && it->lo == (uintptr_t)base) registry.erase(it);
    registry_generation.fetch_add(1, std::memory_order_release);
}

int launch_grid(const char* name, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                unsigned shared_bytes, bool checked, void (*entry)(void*), void* context) {
    last_error.clear();
    const unsigned long threads = (unsigned long)bx * by * bz;
    if (gx == 0 || gy == 0 || gz == 0 || bx == 0 || by == 0 || bz == 0 || threads > kMaxThreads || bx > 1024 ||
        by > 1024 || bz > 64 || gy > 65535 || gz > 65535 || gx > 2147483647u) {
        last_error = format("%s: invalid launch grid (%u,%u,%u) block (%u,%u,%u)", name, gx, gy, gz, bx, by, bz);
        return FLINT_EMU_ERR_INVALID_CONFIG;
    }
    if (shared_bytes != 0) {
        last_error = format("%s: %u bytes of dynamic shared memory requested; the kernels use static shared "
                            "memory only (launch with 0)", name, shared_bytes);
        return FLINT_EMU_ERR_INVALID_CONFIG;
    }
    const unsigned long blocks = (unsigned long)gx * gy * gz;
    const unsigned workers = worker_count(blocks);
    std::atomic<unsigned long> next{0};
    std::atomic<int> status{FLINT_EMU_OK};
    std::mutex error_mutex;
    std::string error;

    auto work = [&]() {
        Runner* r = acquire_runner();
        if (!r) {
            int expected = FLINT_EMU_OK;
            if (status.compare_exchange_strong(expected, FLINT_EMU_ERR_RESOURCES)) {
                std::lock_guard<std::mutex> lock(error_mutex);
                error = "could not map fiber stacks";
            }
            return;
        }
        Runner* saved = tl_runner;
        const bool saved_checking = tl_checking;
        tl_runner = r;
        if (checked) refresh_spans();
        tl_checking = checked;
        tl_last_span = Span{0, 0};
        for (Span& recent : tl_recent_spans) recent = Span{0, 0};
        r->entry = entry;
        r->context = context;
        tl_blockDim = dim3{bx, by, bz};
        tl_gridDim = dim3{gx, gy, gz};
        for (;;) {
            if (status.load() != FLINT_EMU_OK) break;
            const unsigned long b = next.fetch_add(1);
            if (b >= blocks) break;
            tl_blockIdx = uint3{(unsigned)(b % gx), (unsigned)((b / gx) % gy), (unsigned)(b / ((unsigned long)gx * gy))};
            if (!run_block(r)) {
                int expected = FLINT_EMU_OK;
                if (status.compare_exchange_strong(expected, r->fault_code)) {
                    std::lock_guard<std::mutex> lock(error_mutex);
                    error = r->error;
                }
                break;
            }
        }
        tl_runner = saved;
        tl_checking = saved_checking;
        release_runner(r);
    };

    std::vector<std::thread> helpers;
    for (unsigned i = 1; i < workers; ++i) helpers.emplace_back(work);
    work();
    for (auto& t : helpers) t.join();

    const int rc = status.load();
    if (rc != FLINT_EMU_OK) {
        last_error = std::string(name) + ": " + error;
        fprintf(stderr, "flint CUDA emulation: %s\n", last_error.c_str());
    }
    return rc;
}

const char* last_error_message() { return last_error.c_str(); }
void set_last_error(const std::string& message) { last_error = message; }
void set_threads(int threads) { configured_threads.store(threads); }

}  // namespace flint_emu
