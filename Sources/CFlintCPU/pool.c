// Persistent thread pool: threads-1 workers plus the calling thread. A job is (fn, ctx, count);
// indices are handed out by an atomic counter (dynamic scheduling). Idle workers spin (with
// pause) for ~300 µs after a job, then sleep on a condition variable; the caller only signals
// when someone sleeps, so back-to-back kernels dispatch in well under a microsecond.
// One job at a time: a concurrent or nested call finds the pool busy and runs serially.
// On a machine with more runnable threads than cores a worker may get the CPU long after the
// caller has done every index itself: the caller closes the job when its loop ends and waits
// only for the workers that joined it (a late one sees the job closed and skips it), yielding
// the CPU while it waits, so one descheduled worker no longer stalls every kernel for a time slice.
// flint_pool_park tells spinning workers that no job follows soon (a server between requests):
// they sleep at once instead of holding a core for 300 µs that the request's reply needs.
#define _GNU_SOURCE
#include "flint_internal.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FLINT_PAUSE() _mm_pause()
#else
#define FLINT_PAUSE() ((void)0)
#endif

struct flint_pool {
    int threads;
    pthread_t *tids;
    pthread_mutex_t busy;      // held by the thread running a job
    pthread_mutex_t m;
    pthread_cond_t cv;
    _Atomic unsigned gen;      // bumped per job
    _Atomic int sleeping;
    _Atomic int stop;
    flint_task_fn fn;
    void *ctx;
    long count;
    _Atomic long next;
    _Atomic unsigned open;     // gen of the job workers may still join; 0 once the caller closed it
    _Atomic int active;        // workers inside a job (joined, or checking whether it is open)
    _Atomic unsigned park;     // bumped by flint_pool_park: spinning workers go to sleep
};

static double flint_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void *flint_worker(void *arg) {
    flint_pool *p = arg;
    unsigned seen = 0; // gen is 0 at creation; a job published before this thread runs is still seen
    unsigned parked = 0; // the park count when this worker last woke for a job
    for (;;) {
        // spin, then sleep
        unsigned g;
        double t0 = 0;
        for (long spins = 0;; spins++) {
            g = atomic_load_explicit(&p->gen, memory_order_acquire);
            if (g != seen) break;
            if (atomic_load_explicit(&p->park, memory_order_relaxed) != parked) break;
            FLINT_PAUSE();
            if ((spins & 255) == 255) {
                double t = flint_now();
                if (t0 == 0) t0 = t;
                else if (t - t0 > 300e-6) break;
            }
        }
        if (g == seen) {
            pthread_mutex_lock(&p->m);
            atomic_fetch_add(&p->sleeping, 1);
            while ((g = atomic_load(&p->gen)) == seen) pthread_cond_wait(&p->cv, &p->m);
            atomic_fetch_sub(&p->sleeping, 1);
            pthread_mutex_unlock(&p->m);
        }
        seen = g;
        parked = atomic_load_explicit(&p->park, memory_order_relaxed);
        if (atomic_load(&p->stop)) return NULL;
        // seq_cst pair with the caller's close (store open = 0, then load active): either this
        // worker sees the job closed, or the caller sees it active and waits for it.
        atomic_fetch_add(&p->active, 1);
        if (atomic_load(&p->open) == g) {
            flint_task_fn fn = p->fn;
            void *ctx = p->ctx;
            long count = p->count;
            for (;;) {
                long i = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
                if (i >= count) break;
                fn(ctx, i);
            }
        }
        atomic_fetch_sub_explicit(&p->active, 1, memory_order_release);
    }
}

flint_pool *flint_pool_create(int threads) {
    if (threads <= 0) threads = flint_cpu_count();
    flint_pool *p = calloc(1, sizeof(*p));
    if (!p) return NULL;
    p->threads = threads;
    pthread_mutex_init(&p->busy, NULL);
    pthread_mutex_init(&p->m, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->tids = calloc((size_t)threads, sizeof(pthread_t));
    int started = 1;
    for (int i = 1; i < threads; i++) {
        if (pthread_create(&p->tids[i], NULL, flint_worker, p) != 0) break;
        started++;
    }
    p->threads = started;
    return p;
}

void flint_pool_destroy(flint_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->busy);
    atomic_store(&p->stop, 1);
    pthread_mutex_lock(&p->m);
    atomic_fetch_add(&p->gen, 1);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->m);
    for (int i = 1; i < p->threads; i++) pthread_join(p->tids[i], NULL);
    pthread_mutex_unlock(&p->busy);
    pthread_mutex_destroy(&p->busy);
    pthread_mutex_destroy(&p->m);
    pthread_cond_destroy(&p->cv);
    free(p->tids);
    free(p);
}

int flint_pool_threads(const flint_pool *p) { return p ? p->threads : 1; }

void flint_pool_park(flint_pool *p) {
    if (p) atomic_fetch_add_explicit(&p->park, 1, memory_order_relaxed);
}

void flint_pool_run(flint_pool *p, long count, flint_task_fn fn, void *ctx) {
    if (count <= 0) return;
    if (!p || p->threads <= 1 || count == 1 || pthread_mutex_trylock(&p->busy) != 0) {
        for (long i = 0; i < count; i++) fn(ctx, i);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    p->count = count;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    // Only the thread holding `busy` changes gen; 0 is never a job's gen (it means closed).
    unsigned g = atomic_load(&p->gen) + 1;
    if (g == 0) g = 1;
    atomic_store(&p->open, g);
    atomic_store(&p->gen, g); // seq_cst: publishes the job
    if (atomic_load(&p->sleeping) > 0) {
        pthread_mutex_lock(&p->m);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->m);
    }
    for (;;) {
        long i = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (i >= count) break;
        fn(ctx, i);
    }
    atomic_store(&p->open, 0);
    for (long spins = 0; atomic_load_explicit(&p->active, memory_order_acquire) > 0; spins++) {
        // A joined worker is finishing an index, or was preempted: after a short spin, let it run.
        if (spins < 2048) FLINT_PAUSE();
        else sched_yield();
    }
    pthread_mutex_unlock(&p->busy);
}

// ---- thread-local scratch ---------------------------------------------------------------
static pthread_key_t flint_scratch_key;
static pthread_once_t flint_scratch_once = PTHREAD_ONCE_INIT;
typedef struct { float *data; size_t cap; } flint_scratch_t;
static void flint_scratch_free(void *v) {
    flint_scratch_t *s = v;
    if (s) { free(s->data); free(s); }
}
static void flint_scratch_init(void) { pthread_key_create(&flint_scratch_key, flint_scratch_free); }

float *flint__scratch(size_t floats) {
    pthread_once(&flint_scratch_once, flint_scratch_init);
    flint_scratch_t *s = pthread_getspecific(flint_scratch_key);
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s) abort();
        pthread_setspecific(flint_scratch_key, s);
    }
    if (s->cap < floats) {
        free(s->data);
        size_t cap = floats + floats / 2 + 1024;
        void *d = NULL;
        if (posix_memalign(&d, 64, cap * sizeof(float)) != 0) abort();
        s->data = d;
        s->cap = cap;
    }
    return s->data;
}
