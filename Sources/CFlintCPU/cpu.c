// CPU feature detection (ISA level) and CPU count for thread pools.
#define _GNU_SOURCE
#include "flint_internal.h"
#include <sched.h>
#include <unistd.h>

int flint_cpu_isa(void) {
    static int cached = 0;
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v) return v;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("fma"))
        v = FLINT_ISA_AVX512;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        v = FLINT_ISA_AVX2;
    else
        v = FLINT_ISA_PORTABLE;
#else
    v = FLINT_ISA_PORTABLE;
#endif
    __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    return v;
}

int flint_resolve_isa(int requested) {
    int best = flint_cpu_isa();
    if (requested <= 0 || requested > best) return best;
    return requested;
}

int flint_cpu_count(void) {
#ifdef __linux__
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}
