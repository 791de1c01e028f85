/*
 * Threads.  nb_set_num_threads() sets how many threads large kernels may use
 * (and OpenBLAS's count); nb__parallel_for() splits a range over them.
 */
#include "internal.h"

#include <pthread.h>

static _Atomic int num_threads = 1;

int nb__num_threads(void) { return num_threads; }

int nb_set_num_threads(int n) {
    if (n < 1) n = 1;
    if (n > 64) n = 64;
    return atomic_exchange(&num_threads, n);
}

typedef struct {
    void (*fn)(int64_t, int64_t, void *);
    void *ctx;
    int64_t lo, hi;
} chunk;

static void *run_chunk(void *p) {
    chunk *c = p;
    c->fn(c->lo, c->hi, c->ctx);
    return NULL;
}

void nb__parallel_for(int64_t n, int64_t min_per_thread,
                      void (*fn)(int64_t lo, int64_t hi, void *ctx), void *ctx) {
    int nt = nb__num_threads();
    if (min_per_thread < 1) min_per_thread = 1;
    if (nt > 1 && n / min_per_thread < nt) nt = (int)(n / min_per_thread);
    if (nt <= 1) {
        fn(0, n, ctx);
        return;
    }
    chunk c[64];
    pthread_t th[64];
    bool started[64] = {false};
    for (int i = 0; i < nt; i++) {
        c[i] = (chunk){fn, ctx, n * i / nt, n * (i + 1) / nt};
        if (i > 0) started[i] = pthread_create(&th[i], NULL, run_chunk, &c[i]) == 0;
    }
    run_chunk(&c[0]);
    for (int i = 1; i < nt; i++) {
        if (started[i]) pthread_join(th[i], NULL);
        else run_chunk(&c[i]); /* no thread to be had: do it here */
    }
}
