/*
 * The hand-written C baselines: the same computations as bench_nabla.c and
 * bench_torch.py, with every derivative coded by hand and cblas_dgemm for
 * the matrix products.  Same timing method (median of repetitions after
 * warm-up), same output format ("W1 c ns_per_op 3.1").
 *
 * Beside them, what the machine can do, for the table's "limit" column:
 *   DGEMM   OpenBLAS's dgemm rate at 512^3 on N threads (GFLOP/s)
 *   STREAM  memory bandwidth at W4's size: copy and triad over 10^6 doubles
 *           on N threads (GB/s, bytes counted as STREAM counts them)
 *
 *   bench_baseline [--threads N] [--quick] [--only W1,W2,W3,W4,SCALE,DGEMM,STREAM]
 */
#include "bench_common.h"

#include <cblas.h>
#include <pthread.h>

static volatile double g_sink; /* keeps results observable */

/* ===================================================================== */
/* W1: scalar chain y <- tanh(y*w + b), `steps` times; backward of sum(y).
   The forward keeps every y (as an autodiff tape would); the backward
   walks them in reverse:  d = g (1 - y_{i+1}^2);  dw += d y_i;  db += d;
   g = d w. */
static void w1_run(int64_t steps, double *ys, double *gw, double *gb) {
    const double w = W1_W, b = W1_B;
    ys[0] = W1_Y0;
    for (int64_t i = 0; i < steps; i++) ys[i + 1] = tanh(ys[i] * w + b);
    double loss = ys[steps]; /* sum over the one element */
    double g = 1.0, dw = 0.0, db = 0.0;
    for (int64_t i = steps - 1; i >= 0; i--) {
        double d = g * (1.0 - ys[i + 1] * ys[i + 1]);
        dw += d * ys[i];
        db += d;
        g = d * w;
    }
    *gw += dw;
    *gb += db;
    g_sink += loss;
}

static void bench_w1(const bench_opts *o) {
    bench_reps r = bench_r(o, 5, 21);
    double *ys = bench_xmalloc(sizeof(double) * (W1_STEPS + 1));
    double *t = bench_xmalloc(sizeof(double) * (size_t)r.reps);
    double gw = 0, gb = 0;
    for (int i = 0; i < r.warm + r.reps; i++) {
        gw = gb = 0; /* gradients start at zero each repetition */
        double t0 = bench_now();
        w1_run(W1_STEPS, ys, &gw, &gb);
        double t1 = bench_now();
        if (i >= r.warm) t[i - r.warm] = t1 - t0;
    }
    double med = bench_median(t, r.reps);
    printf("W1 c ns_per_op %.4f\n", med * 1e9 / (3.0 * W1_STEPS));
    printf("W1 c check %.12g\n", gw + gb);
    free(ys);
    free(t);
}

static void bench_scale(const bench_opts *o) {
    int64_t max_steps = o->quick ? 100000 : 1000000;
    for (int64_t steps = 1000; steps <= max_steps; steps *= 10) {
        int reps = o->quick ? 3 : (steps >= 1000000 ? 3 : 7);
        double *ys = bench_xmalloc(sizeof(double) * (size_t)(steps + 1));
        double *t = bench_xmalloc(sizeof(double) * (size_t)reps);
        double gw = 0, gb = 0;
        w1_run(steps, ys, &gw, &gb); /* warm-up */
        for (int i = 0; i < reps; i++) {
            double t0 = bench_now();
            w1_run(steps, ys, &gw, &gb);
            t[i] = bench_now() - t0;
        }
        printf("S%lld c ms %.4f\n", (long long)steps, bench_median(t, reps) * 1e3);
        printf("S%lld c peak_bytes %lld\n", (long long)steps,
               (long long)(sizeof(double) * (size_t)(steps + 1)));
        free(ys);
        free(t);
    }
}

/* ===================================================================== */
/* W2: one SGD step of X (64, 64) -> Linear 128 -> ReLU -> Linear 10 ->
   cross-entropy (mean over the batch) with labels. */
typedef struct w2_model {
    double W1[W2_HID * W2_IN], b1[W2_HID], W2[W2_OUT * W2_HID], b2[W2_OUT];
    double gW1[W2_HID * W2_IN], gb1[W2_HID], gW2[W2_OUT * W2_HID], gb2[W2_OUT];
    double X[W2_B * W2_IN];
    int y[W2_B];
    /* activations and their gradients */
    double Z1[W2_B * W2_HID], H[W2_B * W2_HID], Z2[W2_B * W2_OUT];
    double dZ2[W2_B * W2_OUT], dH[W2_B * W2_HID];
} w2_model;

static void w2_init(w2_model *m) {
    bench_fill_normal(m->X, W2_B * W2_IN, SEED_W2_X);
    bench_init_linear(m->W1, m->b1, W2_IN, W2_HID, SEED_W2_W1, SEED_W2_B1);
    bench_init_linear(m->W2, m->b2, W2_HID, W2_OUT, SEED_W2_W2, SEED_W2_B2);
    bench_fill_labels(m->y, W2_B, SEED_W2_LABELS, W2_OUT);
}

/* one step; returns the loss */
static double w2_step(w2_model *m) {
    const int B = W2_B, In = W2_IN, Hd = W2_HID, O = W2_OUT;
    /* forward: Z1 = X W1^T + b1  (B, Hd);  H = relu(Z1) */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, Hd, In, 1.0, m->X, In,
                m->W1, In, 0.0, m->Z1, Hd);
    for (int i = 0; i < B; i++)
        for (int j = 0; j < Hd; j++) {
            double z = m->Z1[i * Hd + j] + m->b1[j];
            m->Z1[i * Hd + j] = z;
            m->H[i * Hd + j] = z > 0 ? z : 0;
        }
    /* Z2 = H W2^T + b2  (B, O) */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, O, Hd, 1.0, m->H, Hd,
                m->W2, Hd, 0.0, m->Z2, O);
    /* loss = -mean_i log_softmax(Z2_i)[y_i];  dZ2 = (softmax - onehot) / B */
    double loss = 0;
    for (int i = 0; i < B; i++) {
        double *z = m->Z2 + i * O, *d = m->dZ2 + i * O;
        double mx = -INFINITY;
        for (int j = 0; j < O; j++) {
            z[j] += m->b2[j];
            if (z[j] > mx) mx = z[j];
        }
        double se = 0;
        for (int j = 0; j < O; j++) se += exp(z[j] - mx);
        double lse = mx + log(se);
        loss -= z[m->y[i]] - lse;
        for (int j = 0; j < O; j++) d[j] = exp(z[j] - lse) / B;
        d[m->y[i]] -= 1.0 / B;
    }
    loss /= B;
    /* backward: gW2 = dZ2^T H (O, Hd);  gb2 = colsum dZ2 */
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, O, Hd, B, 1.0, m->dZ2, O,
                m->H, Hd, 0.0, m->gW2, Hd);
    for (int j = 0; j < O; j++) m->gb2[j] = 0;
    for (int i = 0; i < B; i++)
        for (int j = 0; j < O; j++) m->gb2[j] += m->dZ2[i * O + j];
    /* dH = dZ2 W2 (B, Hd);  dZ1 = dH * (Z1 > 0), in place */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, Hd, O, 1.0, m->dZ2, O,
                m->W2, Hd, 0.0, m->dH, Hd);
    for (int k = 0; k < B * Hd; k++)
        if (!(m->Z1[k] > 0)) m->dH[k] = 0;
    /* gW1 = dZ1^T X (Hd, In);  gb1 = colsum dZ1 */
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Hd, In, B, 1.0, m->dH, Hd,
                m->X, In, 0.0, m->gW1, In);
    for (int j = 0; j < Hd; j++) m->gb1[j] = 0;
    for (int i = 0; i < B; i++)
        for (int j = 0; j < Hd; j++) m->gb1[j] += m->dH[i * Hd + j];
    /* SGD; the gradients are overwritten (beta = 0) by the next step, which
       is what zeroing them and accumulating would give */
    for (int k = 0; k < Hd * In; k++) m->W1[k] -= W2_LR * m->gW1[k];
    for (int k = 0; k < Hd; k++) m->b1[k] -= W2_LR * m->gb1[k];
    for (int k = 0; k < O * Hd; k++) m->W2[k] -= W2_LR * m->gW2[k];
    for (int k = 0; k < O; k++) m->b2[k] -= W2_LR * m->gb2[k];
    return loss;
}

/* the five GEMMs of a step, nothing else (the values are those of the last
   step: the time does not depend on them) */
static void w2_gemms(w2_model *m) {
    const int B = W2_B, In = W2_IN, Hd = W2_HID, O = W2_OUT;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, Hd, In, 1.0, m->X, In,
                m->W1, In, 0.0, m->Z1, Hd);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, O, Hd, 1.0, m->H, Hd,
                m->W2, Hd, 0.0, m->Z2, O);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, O, Hd, B, 1.0, m->dZ2, O,
                m->H, Hd, 0.0, m->gW2, Hd);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, Hd, O, 1.0, m->dZ2, O,
                m->W2, Hd, 0.0, m->dH, Hd);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Hd, In, B, 1.0, m->dH, Hd,
                m->X, In, 0.0, m->gW1, In);
}

static void bench_w2(const bench_opts *o) {
    w2_model *m = bench_xmalloc(sizeof *m);
    /* check: the loss of the 50th step from the initial parameters */
    w2_init(m);
    double loss = 0;
    for (int s = 0; s < 50; s++) loss = w2_step(m);
    printf("W2 c check %.12g\n", loss);

    bench_reps r = bench_r(o, 3, 15);
    int steps = o->quick ? 50 : 500;
    double *t = bench_xmalloc(sizeof(double) * (size_t)r.reps);
    for (int i = 0; i < r.warm + r.reps; i++) {
        double t0 = bench_now();
        for (int s = 0; s < steps; s++) g_sink += w2_step(m);
        double t1 = bench_now();
        if (i >= r.warm) t[i - r.warm] = (t1 - t0) / steps;
    }
    printf("W2 c us_per_step %.4f\n", bench_median(t, r.reps) * 1e6);
    /* the step's five GEMMs alone, at their own shapes (what BLAS takes for
       them, small as they are; the table's limit uses the 512^3 rate) */
    for (int i = 0; i < r.warm + r.reps; i++) {
        double t0 = bench_now();
        for (int s = 0; s < steps; s++) w2_gemms(m);
        double t1 = bench_now();
        if (i >= r.warm) t[i - r.warm] = (t1 - t0) / steps;
    }
    printf("W2 c gemm_us_per_step %.4f\n", bench_median(t, r.reps) * 1e6);
    free(t);
    free(m);
}

/* ===================================================================== */
/* W3: C = A B (N, N); backward of sum(C): G = ones;  dA = G B^T;  dB = A^T G.
   Three GEMMs. */
static void bench_w3(const bench_opts *o) {
    const int n = W3_N;
    size_t nn = (size_t)n * n;
    double *A = bench_xmalloc(nn * sizeof(double)), *B = bench_xmalloc(nn * sizeof(double));
    double *C = bench_xmalloc(nn * sizeof(double)), *G = bench_xmalloc(nn * sizeof(double));
    double *dA = bench_xmalloc(nn * sizeof(double)), *dB = bench_xmalloc(nn * sizeof(double));
    bench_fill_normal(A, (int64_t)nn, SEED_W3_A);
    bench_fill_normal(B, (int64_t)nn, SEED_W3_B);
    bench_reps r = bench_r(o, 3, 15);
    double *t = bench_xmalloc(sizeof(double) * (size_t)r.reps);
    double s = 0;
    for (int i = 0; i < r.warm + r.reps; i++) {
        double t0 = bench_now();
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, A, n, B, n,
                    0.0, C, n);
        s = 0;
        for (size_t k = 0; k < nn; k++) s += C[k];
        for (size_t k = 0; k < nn; k++) G[k] = 1.0;
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0, G, n, B, n,
                    0.0, dA, n);
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, n, n, 1.0, A, n, G, n,
                    0.0, dB, n);
        double t1 = bench_now();
        if (i >= r.warm) t[i - r.warm] = t1 - t0;
    }
    double med = bench_median(t, r.reps);
    printf("W3 c gflops %.4f\n", 3.0 * 2.0 * n * (double)n * n / med * 1e-9);
    printf("W3 c ms %.4f\n", med * 1e3);
    printf("W3 c check %.12g\n", s + dA[1] + dB[2]);
    free(A); free(B); free(C); free(G); free(dA); free(dB); free(t);
}

/* ===================================================================== */
/* W4: y = sigmoid(x) * exp(-x*x); L = sum(y);
   dL/dx = e s (1 - s) - 2 x s e,  s = sigmoid(x), e = exp(-x^2).
   One fused pass writes y and dL/dx and accumulates L; with N threads each
   takes a contiguous slice. */
typedef struct w4_job {
    const double *x;
    double *y, *dx;
    int64_t lo, hi;
    double sum;
} w4_job;

static void *w4_kernel(void *arg) {
    w4_job *j = arg;
    const double *x = j->x;
    double *y = j->y, *dx = j->dx, acc = 0;
    for (int64_t i = j->lo; i < j->hi; i++) {
        double xi = x[i];
        double s = 1.0 / (1.0 + exp(-xi));
        double e = exp(-xi * xi);
        double yi = s * e;
        y[i] = yi;
        acc += yi;
        dx[i] = yi * (1.0 - s) - 2.0 * xi * yi; /* dL/dy = 1 */
    }
    j->sum = acc;
    return NULL;
}

static double w4_run(const double *x, double *y, double *dx, int64_t n, int threads) {
    enum { MAXT = 64 };
    w4_job jobs[MAXT];
    pthread_t th[MAXT];
    if (threads > MAXT) threads = MAXT;
    for (int k = 0; k < threads; k++)
        jobs[k] = (w4_job){ x, y, dx, n * k / threads, n * (k + 1) / threads, 0 };
    for (int k = 1; k < threads; k++) pthread_create(&th[k], NULL, w4_kernel, &jobs[k]);
    w4_kernel(&jobs[0]);
    double s = jobs[0].sum;
    for (int k = 1; k < threads; k++) {
        pthread_join(th[k], NULL);
        s += jobs[k].sum;
    }
    return s;
}

static void bench_w4(const bench_opts *o) {
    const int64_t n = W4_N;
    double *x = bench_xmalloc((size_t)n * sizeof(double));
    double *y = bench_xmalloc((size_t)n * sizeof(double));
    double *dx = bench_xmalloc((size_t)n * sizeof(double));
    bench_fill_normal(x, n, SEED_W4_X);
    bench_reps r = bench_r(o, 3, 21);
    double *t = bench_xmalloc(sizeof(double) * (size_t)r.reps);
    double s = 0;
    for (int i = 0; i < r.warm + r.reps; i++) {
        double t0 = bench_now();
        s = w4_run(x, y, dx, n, o->threads);
        double t1 = bench_now();
        if (i >= r.warm) t[i - r.warm] = t1 - t0;
    }
    printf("W4 c ns_per_elem %.4f\n", bench_median(t, r.reps) * 1e9 / (double)n);
    printf("W4 c check %.12g\n", s + dx[12345]);
    free(x); free(y); free(dx); free(t);
}

/* ===================================================================== */
/* DGEMM: C = A B at 512^3 (W3's matrices), OpenBLAS on N threads: the rate
   report.py divides each workload's GEMM FLOPs by for its limit. */
static void bench_dgemm(const bench_opts *o) {
    const int n = W3_N;
    size_t nn = (size_t)n * n;
    double *A = bench_xmalloc(nn * sizeof(double)), *B = bench_xmalloc(nn * sizeof(double));
    double *C = bench_xmalloc(nn * sizeof(double));
    bench_fill_normal(A, (int64_t)nn, SEED_W3_A);
    bench_fill_normal(B, (int64_t)nn, SEED_W3_B);
    bench_reps r = bench_r(o, 3, 15);
    double *t = bench_xmalloc(sizeof(double) * (size_t)r.reps);
    for (int i = 0; i < r.warm + r.reps; i++) {
        double t0 = bench_now();
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, A, n, B, n,
                    0.0, C, n);
        double t1 = bench_now();
        if (i >= r.warm) t[i - r.warm] = t1 - t0;
    }
    g_sink += C[1];
    printf("DGEMM c gflops_512 %.4f\n", 2.0 * n * (double)n * n / bench_median(t, r.reps) * 1e-9);
    free(A); free(B); free(C); free(t);
}

/* ===================================================================== */
/* STREAM: the bandwidth a pass over W4's arrays gets, 10^6 doubles each,
   split over N pthreads as W4's pass is:  copy  b = a  (16 bytes per element:
   one read, one write, counted as STREAM counts them, without the
   write-allocate read) and triad  a = b + 3 c  (24 bytes).  W4's pass must
   read x and write dL/dx, a copy's traffic, so report.py takes its limit from
   the copy rate.  Median of the repetitions, as everywhere here. */
typedef struct stream_job {
    double *a, *b, *c;
    int64_t lo, hi;
    int triad;
} stream_job;

static void *stream_kernel(void *arg) {
    stream_job *j = arg;
    double *restrict a = j->a, *restrict b = j->b;
    const double *restrict c = j->c;
    if (j->triad)
        for (int64_t i = j->lo; i < j->hi; i++) a[i] = b[i] + 3.0 * c[i];
    else
        for (int64_t i = j->lo; i < j->hi; i++) b[i] = a[i];
    return NULL;
}

static void stream_run(double *a, double *b, double *c, int64_t n, int threads, int triad) {
    enum { MAXT = 64 };
    stream_job jobs[MAXT];
    pthread_t th[MAXT];
    if (threads > MAXT) threads = MAXT;
    for (int k = 0; k < threads; k++)
        jobs[k] = (stream_job){ a, b, c, n * k / threads, n * (k + 1) / threads, triad };
    for (int k = 1; k < threads; k++) pthread_create(&th[k], NULL, stream_kernel, &jobs[k]);
    stream_kernel(&jobs[0]);
    for (int k = 1; k < threads; k++) pthread_join(th[k], NULL);
}

static void bench_stream(const bench_opts *o) {
    const int64_t n = W4_N;
    double *a = bench_xmalloc((size_t)n * sizeof(double));
    double *b = bench_xmalloc((size_t)n * sizeof(double));
    double *c = bench_xmalloc((size_t)n * sizeof(double));
    bench_fill_normal(a, n, SEED_W4_X);
    for (int64_t i = 0; i < n; i++) b[i] = 0.0, c[i] = 1.0;
    bench_reps r = bench_r(o, 3, 21);
    double *t = bench_xmalloc(sizeof(double) * (size_t)r.reps);
    static const char *names[2] = { "copy_gbs", "triad_gbs" };
    for (int triad = 0; triad < 2; triad++) {
        for (int i = 0; i < r.warm + r.reps; i++) {
            double t0 = bench_now();
            stream_run(a, b, c, n, o->threads, triad);
            double t1 = bench_now();
            if (i >= r.warm) t[i - r.warm] = t1 - t0;
        }
        double bytes = (triad ? 24.0 : 16.0) * (double)n;
        printf("STREAM c %s %.4f\n", names[triad], bytes / bench_median(t, r.reps) * 1e-9);
    }
    g_sink += a[12345] + b[12345];
    free(a); free(b); free(c); free(t);
}

int main(int argc, char **argv) {
    bench_opts o;
    if (bench_parse(argc, argv, &o)) return 2;
    openblas_set_num_threads(o.threads);
    printf("# hand-written C, threads %d%s\n", o.threads, o.quick ? ", quick" : "");
    fflush(stdout);
    if (bench_want(&o, "W1")) bench_w1(&o);
    fflush(stdout);
    if (bench_want(&o, "W2")) bench_w2(&o);
    fflush(stdout);
    if (bench_want(&o, "W3")) bench_w3(&o);
    fflush(stdout);
    if (bench_want(&o, "W4")) bench_w4(&o);
    fflush(stdout);
    if (bench_want(&o, "SCALE")) bench_scale(&o);
    fflush(stdout);
    if (bench_want(&o, "DGEMM")) bench_dgemm(&o);
    fflush(stdout);
    if (bench_want(&o, "STREAM")) bench_stream(&o);
    if (g_sink == 12345.678) printf("#\n");
    return 0;
}
