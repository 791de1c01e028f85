/*
 * Shared by bench_nabla.c, bench_baseline.c and the peers bench_libtorch.cpp
 * and bench_adolc.cpp (each is its own executable, so everything here is
 * static inline, and it compiles as C11 and as C++17): options, timing,
 * medians, and the deterministic data every implementation (bench_torch.py
 * included) builds its inputs from, so they all compute exactly the same
 * thing.
 *
 * Output: one machine-readable line per figure,
 *     <workload> <implementation> <metric> <value>
 * e.g. "W1 nabla ns_per_op 42.1"; lines starting with '#' are comments.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>

/* ---- workload sizes (identical in bench_torch.py) */
#define W1_STEPS 3333          /* y = tanh(y*w + b), 3 ops per step        */
#define W1_W 0.5
#define W1_B 0.1
#define W1_Y0 1.0              /* the chain's input, a constant            */
#define W2_B 64                /* batch                                    */
#define W2_IN 64
#define W2_HID 128
#define W2_OUT 10
#define W2_LR 0.01
#define W3_N 512               /* (N, N) @ (N, N)                          */
#define W4_N 1000000           /* elements                                 */
#define W5_BATCH 64
#define W5_LR 1e-3             /* Adam, betas (0.9, 0.999), eps 1e-8       */
#define W5_DATA_DIR "/usr/share/datasets/fashion-mnist"
#define W6_N 64                /* conv2d x (N, C, H, H), w (K, C, R, R), pad 1 */
#define W6_C 32
#define W6_H 14
#define W6_K 64
#define W6_R 3
#define W7_BATCH 64            /* the CNN of fashion_mnist --model cnn, Adam 1e-3 */
#define W7_LR 1e-3

/* seeds of the generated inputs */
#define SEED_W2_X 1
#define SEED_W2_W1 2
#define SEED_W2_B1 3
#define SEED_W2_W2 4
#define SEED_W2_B2 5
#define SEED_W2_LABELS 6
#define SEED_W3_A 7
#define SEED_W3_B 8
#define SEED_W4_X 9
#define SEED_W5_BASE 20        /* layer l: weight 20+2l, bias 21+2l        */
#define SEED_W6_X 30
#define SEED_W6_W 31
#define SEED_W6_B 32
#define SEED_W7_BASE 40        /* conv1, conv2, fc1, fc2: weight 40+2l, bias 41+2l */

/* ---- options */
typedef struct bench_opts {
    int threads;
    int quick;
    char only[256];            /* "" = all; else a comma-separated list      */
} bench_opts;

static inline int bench_parse(int argc, char **argv, bench_opts *o) {
    o->threads = 1;
    o->quick = 0;
    o->only[0] = '\0';
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            o->threads = atoi(argv[++i]);
            if (o->threads < 1) o->threads = 1;
        } else if (!strcmp(argv[i], "--quick")) {
            o->quick = 1;
        } else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
            snprintf(o->only, sizeof o->only, "%s", argv[++i]);
        } else {
            fprintf(stderr, "usage: %s [--threads N] [--quick] [--only W1,W2,...]\n"
                            "  workloads: W1 W2 W3 W4 W5 W6 W7 SCALE MEM"
                            " (bench_baseline: also DGEMM STREAM)\n", argv[0]);
            return -1;
        }
    }
    return 0;
}

/* whether workload `name` was asked for */
static inline int bench_want(const bench_opts *o, const char *name) {
    if (!o->only[0]) return 1;
    size_t n = strlen(name);
    const char *p = o->only;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !strncmp(p, name, n)) return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

/* ---- timing */
static inline double bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline int bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* median of n values (sorts them) */
static inline double bench_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* peak resident set size of the process so far, in bytes */
static inline long long bench_maxrss_bytes(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (long long)ru.ru_maxrss * 1024LL;
}

/* ---- deterministic inputs (bench_torch.py implements the same formulas
   with numpy): counter-based splitmix64, so element i of stream `seed` does
   not depend on how many were drawn before. */
static inline uint64_t bench_mix(uint64_t seed, uint64_t i) {
    uint64_t z = seed * 0xD1B54A32D192ED03ULL + (i + 1) * 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
/* U[0, 1) */
static inline double bench_uniform(uint64_t seed, uint64_t i) {
    return (double)(bench_mix(seed, i) >> 11) * 0x1.0p-53;
}
/* fills v[0..n) with U[lo, hi) */
static inline void bench_fill_uniform(double *v, int64_t n, uint64_t seed, double lo, double hi) {
    for (int64_t i = 0; i < n; i++) v[i] = lo + (hi - lo) * bench_uniform(seed, (uint64_t)i);
}
/* fills v[0..n) with N(0, 1): Box-Muller, one normal per pair of uniforms */
static inline void bench_fill_normal(double *v, int64_t n, uint64_t seed) {
    const double two_pi = 6.283185307179586;
    for (int64_t i = 0; i < n; i++) {
        double u1 = bench_uniform(seed, 2 * (uint64_t)i);
        double u2 = bench_uniform(seed, 2 * (uint64_t)i + 1);
        v[i] = sqrt(-2.0 * log(1.0 - u1)) * cos(two_pi * u2);
    }
}
/* labels in [0, k) */
static inline void bench_fill_labels(int *v, int64_t n, uint64_t seed, int k) {
    for (int64_t i = 0; i < n; i++) {
        int c = (int)(bench_uniform(seed, (uint64_t)i) * k);
        v[i] = c < k ? c : k - 1;
    }
}
/* a Linear layer's parameters like torch.nn.Linear's default init:
   W (out, in) and b (out,) uniform in +-1/sqrt(in) */
static inline void bench_init_linear(double *W, double *b, int in, int out,
                                     uint64_t seed_w, uint64_t seed_b) {
    double k = 1.0 / sqrt((double)in);
    bench_fill_uniform(W, (int64_t)out * in, seed_w, -k, k);
    bench_fill_uniform(b, out, seed_b, -k, k);
}

static inline void *bench_xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

/* repetition counts: (warm-up, timed) */
typedef struct { int warm, reps; } bench_reps;
static inline bench_reps bench_r(const bench_opts *o, int warm, int reps) {
    bench_reps r = { warm, reps };
    if (o->quick) { r.warm = 1; r.reps = 3; }
    return r;
}

#endif /* BENCH_COMMON_H */
