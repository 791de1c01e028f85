/*
 * W1 with ADOL-C (operator overloading onto a tape): y = tanh(y*w + b), 3333
 * steps from the constant y0, gradient of y with respect to (w, b), the same
 * repetitions, timing and check value as bench_nabla.c.  Two ways:
 *
 *   adolc        every repetition records the tape again (trace_on ...
 *                trace_off) and evaluates it with gradient(): what a
 *                define-by-run library does, graph built per step
 *   adolc_reuse  the tape is recorded once, untimed; every repetition calls
 *                gradient() on it at new inputs: how ADOL-C users run a
 *                fixed graph
 *
 *   bench_adolc [--quick] [--only W1]      (one thread; --threads is accepted)
 */
#include "bench_common.h"

#include <adolc/adolc.h>

#include <vector>

#ifndef BENCH_ADOLC_VERSION
#define BENCH_ADOLC_VERSION "?"
#endif

enum { TAG_RETAPE = 1, TAG_REUSE = 2 };

/* records W1's chain at (w, b) on tape `tag`; returns y */
static double w1_tape(short tag, double w, double b) {
    double out = 0;
    trace_on(tag);
    {
        adouble aw, ab;
        aw <<= w; /* the independents: w, b */
        ab <<= b;
        adouble y = W1_Y0; /* a constant start */
        for (int k = 0; k < W1_STEPS; k++) y = tanh(y * aw + ab);
        y >>= out; /* the dependent */
    }
    trace_off();
    return out;
}

static double median(std::vector<double> &v) {
    return bench_median(v.data(), static_cast<int>(v.size()));
}

static void bench_w1(const bench_opts *o) {
    bench_reps r = bench_r(o, 5, 21);
    std::vector<double> t(static_cast<size_t>(r.reps));
    double g[2] = { 0, 0 };

    /* retaping every repetition */
    for (int i = 0; i < r.warm + r.reps; i++) {
        double t0 = bench_now();
        w1_tape(TAG_RETAPE, W1_W, W1_B);
        const double x[2] = { W1_W, W1_B };
        if (gradient(TAG_RETAPE, 2, x, g) < 0) {
            fprintf(stderr, "bench_adolc: gradient failed\n");
            exit(1);
        }
        double t1 = bench_now();
        if (i >= r.warm) t[static_cast<size_t>(i - r.warm)] = t1 - t0;
    }
    printf("W1 adolc ns_per_op %.4f\n", median(t) * 1e9 / (3.0 * W1_STEPS));
    printf("W1 adolc check %.12g\n", g[0] + g[1]);
    fflush(stdout);

    /* one tape, reused: the inputs alternate between a nearby point and
       W1's own (w, b), so no repetition repeats the one before it; the last
       repetition is at W1's inputs, and its gradient is the check */
    w1_tape(TAG_REUSE, W1_W, W1_B);
    int last = r.warm + r.reps - 1;
    for (int i = 0; i <= last; i++) {
        double shift = (last - i) % 2 ? 1e-3 : 0.0;
        const double x[2] = { W1_W + shift, W1_B - shift };
        double t0 = bench_now();
        if (gradient(TAG_REUSE, 2, x, g) < 0) {
            fprintf(stderr, "bench_adolc: gradient failed\n");
            exit(1);
        }
        double t1 = bench_now();
        if (i >= r.warm) t[static_cast<size_t>(i - r.warm)] = t1 - t0;
    }
    printf("W1 adolc_reuse ns_per_op %.4f\n", median(t) * 1e9 / (3.0 * W1_STEPS));
    printf("W1 adolc_reuse check %.12g\n", g[0] + g[1]);

    /* the tape's size: operations and locations */
    size_t stats[STAT_SIZE];
    tapestats(TAG_REUSE, stats);
    printf("# ADOL-C tape of W1: %zu operations, %zu locations, %zu values\n",
           stats[NUM_OPERATIONS], stats[NUM_LOCATIONS], stats[NUM_VALUES]);
}

int main(int argc, char **argv) {
    bench_opts o;
    if (bench_parse(argc, argv, &o)) return 2;
    printf("# ADOL-C %s, threads 1%s\n", BENCH_ADOLC_VERSION, o.quick ? ", quick" : "");
    fflush(stdout);
    if (bench_want(&o, "W1")) bench_w1(&o);
    fflush(stdout);
    return 0;
}
