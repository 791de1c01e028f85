/*
 * Threads.  nb_set_num_threads() sets how many threads large kernels may use
 * (and OpenBLAS's count); nb_parallel_for() splits a range over them.
 *
 * The helpers are a persistent pool, started on first use and grown when a
 * larger count is asked for: a split then costs a wake-up, not a thread
 * creation (which is tens of microseconds, and the new stack's page faults).
 * One split runs on the pool at a time; a call that finds it busy (another
 * user thread's split, or a kernel nested inside a split) runs inline, which
 * gives the same result.  Chunk i always covers [n*i/k, n*(i+1)/k), whoever
 * runs it, so results do not depend on which thread ran what.
 */
#include "../internal.h"

#include <pthread.h>

static _Atomic int num_threads = 1;

int nb__num_threads(void) { return num_threads; }

int nb_set_num_threads(int n) {
    if (n < 1) n = 1;
    if (n > 64) n = 64;
    return atomic_exchange(&num_threads, n);
}

/* ---- the pool ----------------------------------------------------------------- */
static struct {
    pthread_mutex_t lock;      /* guards everything below                     */
    pthread_cond_t wake;       /* a new job (gen changed)                     */
    pthread_cond_t done;       /* the job's last chunk finished               */
    int workers;               /* helper threads started                      */
    uint64_t gen;              /* job number                                  */
    void (*fn)(int64_t, int64_t, void *);
    void *ctx;
    int64_t n;
    int chunks, next, left;    /* chunks in the job, next to take, not finished */
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0,
          NULL, NULL, 0, 0, 0, 0};

/* one split at a time */
static pthread_mutex_t pool_busy = PTHREAD_MUTEX_INITIALIZER;

/* Runs chunks of the current job until none is left (called with the lock). */
static void take_chunks(void) {
    while (pool.next < pool.chunks) {
        int i = pool.next++;
        void (*fn)(int64_t, int64_t, void *) = pool.fn;
        void *ctx = pool.ctx;
        int64_t n = pool.n, k = pool.chunks;
        pthread_mutex_unlock(&pool.lock);
        fn(n * i / k, n * (i + 1) / k, ctx);
        pthread_mutex_lock(&pool.lock);
        if (--pool.left == 0) pthread_cond_signal(&pool.done);
    }
}

static void *worker(void *unused) {
    (void)unused;
    pthread_mutex_lock(&pool.lock);
    uint64_t seen = pool.gen;
    for (;;) {
        while (pool.gen == seen) pthread_cond_wait(&pool.wake, &pool.lock);
        seen = pool.gen;
        take_chunks();
    }
    return NULL; /* not reached: helpers live as long as the process */
}

/* Starts helpers until there are `want` (fewer if the system refuses). */
static void grow_pool(int want) {
    while (pool.workers < want) {
        pthread_t th;
        pthread_attr_t attr;
        if (pthread_attr_init(&attr) != 0) return;
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&th, &attr, worker, NULL);
        pthread_attr_destroy(&attr);
        if (rc != 0) return;
        pool.workers++;
    }
}

void nb_parallel_for(int64_t n, int64_t min_per_thread,
                     void (*fn)(int64_t lo, int64_t hi, void *ctx), void *ctx) {
    int nt = nb__num_threads();
    if (min_per_thread < 1) min_per_thread = 1;
    if (nt > 1 && n / min_per_thread < nt) nt = (int)(n / min_per_thread);
    if (nt <= 1 || pthread_mutex_trylock(&pool_busy) != 0) {
        fn(0, n, ctx);
        return;
    }
    pthread_mutex_lock(&pool.lock);
    grow_pool(nt - 1); /* with fewer helpers, the caller takes more chunks */
    pool.fn = fn;
    pool.ctx = ctx;
    pool.n = n;
    pool.chunks = pool.left = nt;
    pool.next = 0;
    pool.gen++;
    pthread_cond_broadcast(&pool.wake);
    take_chunks();
    while (pool.left > 0) pthread_cond_wait(&pool.done, &pool.lock);
    pthread_mutex_unlock(&pool.lock);
    pthread_mutex_unlock(&pool_busy);
}
