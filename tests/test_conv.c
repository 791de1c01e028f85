/*
 * conv2d, max_pool2d, avg_pool2d: values against direct loops (the 7-loop
 * convolution), gradients against finite differences (first and second
 * order), forward mode against reverse mode and against finite differences
 * of the gradient (the JVPs of the internal gradient ops), the geometries
 * around the edges (kernel equal to the padded input, stride larger than the
 * kernel, 1x1, non-square), threads against one thread, errors, allocation
 * failure, and no growth of memory over a training loop.
 */
#include "check.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- references ----------------------------------------------------------------- */
static void ref_conv(const double *x, const double *w, const double *b, double *y, int64_t N,
                     int64_t C, int64_t H, int64_t W, int64_t K, int64_t R, int64_t S, int st, int pad) {
    int64_t OH = (H + 2 * pad - R) / st + 1, OW = (W + 2 * pad - S) / st + 1;
    for (int64_t n = 0; n < N; n++)
        for (int64_t k = 0; k < K; k++)
            for (int64_t i = 0; i < OH; i++)
                for (int64_t j = 0; j < OW; j++) {
                    double s = b ? b[k] : 0;
                    for (int64_t c = 0; c < C; c++)
                        for (int64_t r = 0; r < R; r++)
                            for (int64_t q = 0; q < S; q++) {
                                int64_t ih = i * st + r - pad, iw = j * st + q - pad;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                s += x[((n * C + c) * H + ih) * W + iw] * w[((k * C + c) * R + r) * S + q];
                            }
                    y[((n * K + k) * OH + i) * OW + j] = s;
                }
}

static void ref_pool(const double *x, double *y, int64_t P, int64_t H, int64_t W, int k, int st,
                     bool avg) {
    int64_t OH = (H - k) / st + 1, OW = (W - k) / st + 1;
    for (int64_t p = 0; p < P; p++)
        for (int64_t i = 0; i < OH; i++)
            for (int64_t j = 0; j < OW; j++) {
                double m = -INFINITY, s = 0;
                for (int r = 0; r < k; r++)
                    for (int c = 0; c < k; c++) {
                        double v = x[(p * H + i * st + r) * W + j * st + c];
                        s += v;
                        if (v > m) m = v;
                    }
                y[(p * OH + i) * OW + j] = avg ? s / (k * k) : m;
            }
}

static double max_abs_diff(const double *a, const double *b, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(a[i] - b[i]));
    return m;
}

/* geometries: N, C, H, W, K, R, S, stride, pad */
typedef struct { int64_t N, C, H, W, K, R, S; int st, pad; } geom;
static const geom G[] = {
    {2, 3, 5, 5, 4, 3, 3, 1, 1},    /* "same" 3x3 */
    {1, 2, 6, 7, 3, 3, 2, 2, 0},    /* non-square kernel and input, stride 2 */
    {2, 2, 4, 4, 2, 4, 4, 1, 0},    /* kernel equal to the input */
    {1, 2, 3, 3, 2, 5, 5, 1, 1},    /* kernel equal to the padded input */
    {1, 1, 7, 7, 2, 2, 2, 3, 0},    /* stride larger than the kernel */
    {2, 3, 4, 5, 4, 1, 1, 1, 0},    /* 1x1: the direct path */
    {1, 3, 4, 4, 2, 1, 1, 2, 1},    /* 1x1 with stride and padding */
    {1, 1, 1, 1, 1, 1, 1, 1, 0},    /* one pixel */
    {1, 2, 5, 5, 3, 3, 3, 4, 2},    /* stride 4, pad 2 */
    {3, 1, 6, 6, 1, 2, 3, 1, 2},    /* pad larger than needed */
};
#define NG ((int)(sizeof G / sizeof G[0]))

static nb_tensor *rnd(int64_t a, int64_t b, int64_t c, int64_t d, uint64_t seed) {
    return nb_randn(4, (int64_t[]){a, b, c, d}, seed);
}

static void conv_values(void) {
    for (int gi = 0; gi < NG; gi++) {
        const geom *g = &G[gi];
        size_t mark = nb_scope_begin();
        nb_tensor *x = rnd(g->N, g->C, g->H, g->W, 10 + gi), *w = rnd(g->K, g->C, g->R, g->S, 20 + gi);
        nb_tensor *b = nb_randn(1, (int64_t[]){g->K}, 30 + gi);
        for (int wb = 0; wb < 2; wb++) {
            nb_tensor *y = nb_conv2d(x, w, wb ? b : NULL, g->st, g->pad);
            int64_t OH = (g->H + 2 * g->pad - g->R) / g->st + 1, OW = (g->W + 2 * g->pad - g->S) / g->st + 1;
            CHECK(y && nb_ndim(y) == 4 && nb_shape(y)[0] == g->N && nb_shape(y)[1] == g->K &&
                  nb_shape(y)[2] == OH && nb_shape(y)[3] == OW);
            if (!y) continue;
            double *ref = malloc(sizeof(double) * (size_t)nb_numel(y));
            ref_conv(nb_data(x), nb_data(w), wb ? nb_data(b) : NULL, ref, g->N, g->C, g->H, g->W,
                     g->K, g->R, g->S, g->st, g->pad);
            double d = max_abs_diff(nb_data(y), ref, nb_numel(y));
            if (d > 1e-12) fprintf(stderr, "conv geometry %d bias %d: differs by %g\n", gi, wb, d);
            CHECK(d <= 1e-12);
            free(ref);
        }
        nb_scope_end(mark);
    }
}

static void pool_values(void) {
    static const int cases[][4] = {{4, 4, 2, 2}, {5, 7, 2, 2}, {5, 5, 3, 1}, {7, 6, 2, 3},
                                   {3, 3, 3, 1}, {4, 4, 1, 1}, {6, 6, 1, 2}, {5, 5, 2, 5}};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        int H = cases[ci][0], W = cases[ci][1], k = cases[ci][2], st = cases[ci][3];
        size_t mark = nb_scope_begin();
        nb_tensor *x = rnd(2, 3, H, W, 40 + ci);
        for (int avg = 0; avg < 2; avg++) {
            nb_tensor *y = avg ? nb_avg_pool2d(x, k, st) : nb_max_pool2d(x, k, st);
            CHECK(y && nb_shape(y)[2] == (H - k) / st + 1 && nb_shape(y)[3] == (W - k) / st + 1);
            if (!y) continue;
            double *ref = malloc(sizeof(double) * (size_t)nb_numel(y));
            ref_pool(nb_data(x), ref, 6, H, W, k, st, avg);
            CHECK(max_abs_diff(nb_data(y), ref, nb_numel(y)) <= 1e-14);
            free(ref);
        }
        nb_scope_end(mark);
    }
    /* ties go to the first element: a constant window sends its gradient to (0, 0) */
    size_t mark = nb_scope_begin();
    nb_tensor *x = nb_full(4, (int64_t[]){1, 1, 2, 2}, 3.0);
    nb_tensor *y = nb_max_pool2d(x, 2, 2);
    CHECK(y && nb_backward(y, NULL) == 0);
    const double *gx = nb_data(nb_grad(x));
    CHECK(gx[0] == 1 && gx[1] == 0 && gx[2] == 0 && gx[3] == 0);
    nb_scope_end(mark);
}

/* ---- gradients ------------------------------------------------------------------------- */
typedef struct { int st, pad, k, kind; } fctx; /* kind 0: conv+bias, 1: conv no bias, 2: max, 3: avg, 4: CNN block */
static nb_tensor *f_op(int n, nb_tensor *const *x, void *ctx) {
    (void)n;
    const fctx *c = ctx;
    nb_tensor *y;
    switch (c->kind) {
    case 0: y = nb_conv2d(x[0], x[1], x[2], c->st, c->pad); break;
    case 1: y = nb_conv2d(x[0], x[1], NULL, c->st, c->pad); break;
    case 2: y = nb_max_pool2d(x[0], c->k, c->st); break;
    case 3: y = nb_avg_pool2d(x[0], c->k, c->st); break;
    default: /* conv -> tanh -> max pool -> conv: the chain of a CNN */
        y = nb_conv2d(nb_max_pool2d(nb_tanh(nb_conv2d(x[0], x[1], x[2], 1, 1)), 2, 2), x[3], NULL, 1, 0);
        break;
    }
    return nb_tanh(y); /* non-linear, so second order sees every rule */
}

static void gradients(void) {
    int tested = 0;
    for (int gi = 0; gi < NG; gi++) {
        const geom *g = &G[gi];
        if (g->N * g->C * g->H * g->W > 80) continue; /* finite differences are O(n^2) */
        size_t mark = nb_scope_begin();
        nb_tensor *x[3] = {rnd(g->N, g->C, g->H, g->W, 50 + gi), rnd(g->K, g->C, g->R, g->S, 60 + gi),
                           nb_randn(1, (int64_t[]){g->K}, 70 + gi)};
        for (int kind = 0; kind < 2; kind++) {
            fctx c = {g->st, g->pad, 0, kind};
            double e1 = -1, e2 = -1;
            CHECK(nb_gradcheck(f_op, kind ? 2 : 3, x, &c, 1e-6, &e1) == 0);
            CHECK(nb_gradgradcheck(f_op, kind ? 2 : 3, x, &c, 1e-5, &e2) == 0);
            if (!(e1 < 1e-6 && e2 < 1e-5))
                fprintf(stderr, "conv geometry %d kind %d: errors %g %g\n", gi, kind, e1, e2);
            CHECK(e1 < 1e-6);
            CHECK(e2 < 1e-5);
            tested++;
        }
        nb_scope_end(mark);
    }
    CHECK(tested >= 10);
    static const int pc[][4] = {{4, 4, 2, 2}, {5, 5, 3, 1}, {5, 6, 2, 3}, {3, 3, 3, 1}, {4, 4, 1, 1}};
    for (size_t i = 0; i < sizeof pc / sizeof pc[0]; i++) {
        size_t mark = nb_scope_begin();
        nb_tensor *x = rnd(2, 2, pc[i][0], pc[i][1], 80 + i);
        for (int kind = 2; kind < 4; kind++) {
            fctx c = {pc[i][3], 0, pc[i][2], kind};
            double e1 = -1, e2 = -1;
            CHECK(nb_gradcheck(f_op, 1, &x, &c, 1e-6, &e1) == 0);
            CHECK(nb_gradgradcheck(f_op, 1, &x, &c, 1e-5, &e2) == 0);
            CHECK(e1 < 1e-6);
            CHECK(e2 < 1e-5);
        }
        nb_scope_end(mark);
    }
    /* a CNN block: conv, tanh, pool, conv */
    size_t mark = nb_scope_begin();
    nb_tensor *x[4] = {rnd(1, 2, 4, 4, 90), rnd(3, 2, 3, 3, 91), nb_randn(1, (int64_t[]){3}, 92),
                       rnd(2, 3, 2, 2, 93)};
    fctx c = {1, 0, 0, 4};
    double e1 = -1, e2 = -1;
    CHECK(nb_gradcheck(f_op, 4, x, &c, 1e-6, &e1) == 0 && e1 < 1e-6);
    CHECK(nb_gradgradcheck(f_op, 4, x, &c, 1e-5, &e2) == 0 && e2 < 1e-5);
    nb_scope_end(mark);
}

/* ---- forward mode ----------------------------------------------------------------------- */
static double dot(const nb_tensor *a, const nb_tensor *b) {
    double s = 0;
    for (int64_t i = 0; i < nb_numel(a); i++) s += nb_data(a)[i] * nb_data(b)[i];
    return s;
}

/* <u, J v> (forward) == <J^T u, v> (reverse) for every op, every geometry */
static void forward_vs_reverse(void) {
    for (int gi = 0; gi < NG; gi++) {
        const geom *g = &G[gi];
        for (int kind = 0; kind < 4; kind++) {
            size_t mark = nb_scope_begin();
            nb_tensor *x[3] = {rnd(g->N, g->C, g->H, g->W, 100 + gi), rnd(g->K, g->C, g->R, g->S, 110 + gi),
                               nb_randn(1, (int64_t[]){g->K}, 120 + gi)};
            nb_tensor *v[3] = {rnd(g->N, g->C, g->H, g->W, 130 + gi), rnd(g->K, g->C, g->R, g->S, 140 + gi),
                               nb_randn(1, (int64_t[]){g->K}, 150 + gi)};
            int n = kind == 0 ? 3 : kind == 1 ? 2 : 1;
            int k = (int)(g->H < g->W ? g->H : g->W);
            k = k < 2 ? k : 2;
            fctx c = {g->st, g->pad, k, kind};
            nb_tensor *d[3];
            for (int i = 0; i < n; i++) d[i] = nb_dual(x[i], v[i]);
            nb_tensor *y = f_op(n, d, &c);
            CHECK(y && nb_tangent(y));
            if (!y || !nb_tangent(y)) { nb_scope_end(mark); continue; }
            nb_tensor *u = nb_randn(nb_ndim(y), nb_shape(y), 160 + gi);
            double fwd = dot(u, nb_tangent(y));
            nb_tensor *y2 = f_op(n, x, &c), *gr[3];
            CHECK(nb_autograd(1, &y2, &u, n, x, gr, false) == 0);
            double rev = 0;
            for (int i = 0; i < n; i++) rev += dot(gr[i], v[i]);
            CHECK_NEAR(fwd, rev, 1e-10 * (1 + fabs(rev)));
            nb_scope_end(mark);
        }
    }
}

/* The tangent of a gradient (forward over reverse: the JVPs of conv2d_input_grad,
   conv2d_weight_grad, pool_scatter, avg_pool_grad) against finite differences of
   the gradient along the direction. */
static void jvp_of_gradients(void) {
    for (int kind = 0; kind < 4; kind++) {
        size_t mark = nb_scope_begin();
        int n = kind == 0 ? 3 : kind == 1 ? 2 : 1;
        nb_tensor *x[3] = {rnd(2, 2, 5, 5, 200), rnd(3, 2, 3, 3, 201), nb_randn(1, (int64_t[]){3}, 202)};
        nb_tensor *v[3] = {rnd(2, 2, 5, 5, 203), rnd(3, 2, 3, 3, 204), nb_randn(1, (int64_t[]){3}, 205)};
        fctx c = {2, 1, 2, kind};
        nb_tensor *d[3], *gd[3], *gp[3], *gm[3];
        for (int i = 0; i < n; i++) d[i] = nb_dual(x[i], v[i]);
        nb_tensor *y = f_op(n, d, &c);
        CHECK(y && nb_autograd(1, &y, NULL, n, d, gd, true) == 0);
        double eps = 1e-6;
        nb_tensor *xp[3], *xm[3];
        for (int i = 0; i < n; i++) {
            xp[i] = nb_add(nb_detach(x[i]), nb_scale(v[i], eps));
            xm[i] = nb_add(nb_detach(x[i]), nb_scale(v[i], -eps));
            nb_set_requires_grad(xp[i], true);
            nb_set_requires_grad(xm[i], true);
        }
        nb_tensor *yp = f_op(n, xp, &c), *ym = f_op(n, xm, &c);
        CHECK(nb_autograd(1, &yp, NULL, n, xp, gp, false) == 0);
        CHECK(nb_autograd(1, &ym, NULL, n, xm, gm, false) == 0);
        for (int i = 0; i < n; i++) {
            nb_tensor *t = nb_tangent(gd[i]);
            CHECK(t != NULL);
            if (!t) continue;
            double worst = 0;
            for (int64_t q = 0; q < nb_numel(t); q++) {
                double fd = (nb_data(gp[i])[q] - nb_data(gm[i])[q]) / (2 * eps);
                worst = fmax(worst, fabs(nb_data(t)[q] - fd));
            }
            if (worst > 1e-6) fprintf(stderr, "jvp of gradient, kind %d input %d: off by %g\n", kind, i, worst);
            CHECK(worst < 1e-6);
        }
        nb_scope_end(mark);
    }
}

/* ---- threads: the split over images gives the one-thread result ---------------------- */
static void threads(void) {
    size_t mark = nb_scope_begin();
    nb_tensor *x = rnd(8, 16, 12, 12, 300), *w = rnd(16, 16, 3, 3, 301);
    nb_tensor *b = nb_randn(1, (int64_t[]){16}, 302);
    nb_tensor *r[2][4];
    for (int t = 0; t < 2; t++) {
        nb_set_num_threads(t ? 2 : 1);
        nb_tensor *y = nb_conv2d(x, w, b, 1, 1);
        nb_tensor *in[3] = {x, w, b};
        nb_tensor *s = nb_sum(nb_prod(y, y));
        CHECK(nb_autograd(1, &s, NULL, 3, in, r[t] + 1, false) == 0);
        r[t][0] = y;
    }
    nb_set_num_threads(1);
    for (int i = 0; i < 4; i++)
        CHECK(max_abs_diff(nb_data(r[0][i]), nb_data(r[1][i]), nb_numel(r[0][i])) <= 1e-9 * (1 + fabs(nb_data(r[0][i])[0])));
    nb_scope_end(mark);
}

/* ---- errors ------------------------------------------------------------------------------ */
static void expect_err(nb_tensor *r, const char *msg) {
    CHECK(r == NULL);
    CHECK_STR(nb_last_error(), msg);
    nb_clear_error();
}
static void errors(void) {
    size_t mark = nb_scope_begin();
    nb_tensor *x = rnd(1, 3, 5, 5, 1), *w = rnd(4, 3, 3, 3, 2), *b = nb_randn(1, (int64_t[]){4}, 3);
    nb_tensor *x3 = nb_randn(3, (int64_t[]){3, 5, 5}, 4), *w2 = rnd(4, 2, 3, 3, 5);
    expect_err(nb_conv2d(x3, w, b, 1, 0),
               "conv2d: input (3, 5, 5) and weight (4, 3, 3, 3): needs a 4-d input (N, C, H, W) and a "
               "4-d weight (K, C, R, S)");
    expect_err(nb_conv2d(x, w2, NULL, 1, 0),
               "conv2d: input (1, 3, 5, 5) and weight (4, 2, 3, 3): the input has 3 channels, the weight 2");
    expect_err(nb_conv2d(x, w, nb_randn(1, (int64_t[]){3}, 6), 1, 0),
               "conv2d: bias (3,) for weight (4, 3, 3, 3): needs shape (4,)");
    expect_err(nb_conv2d(x, w, b, 0, 0), "conv2d: stride 0 and padding 0: needs stride >= 1 and padding >= 0");
    expect_err(nb_conv2d(x, w, b, 1, -1), "conv2d: stride 1 and padding -1: needs stride >= 1 and padding >= 0");
    expect_err(nb_conv2d(rnd(1, 3, 2, 5, 7), w, b, 1, 0),
               "conv2d: input (1, 3, 2, 5) with padding 0 is smaller than the kernel of weight (4, 3, 3, 3)");
    expect_err(nb_conv2d(NULL, w, b, 1, 0), "conv2d: NULL argument 1");
    expect_err(nb_conv2d(x, NULL, b, 1, 0), "conv2d: NULL argument 2");
    expect_err(nb_max_pool2d(x3, 2, 2), "max_pool2d: input (3, 5, 5): needs a 4-d input (N, C, H, W)");
    expect_err(nb_avg_pool2d(x, 0, 1), "avg_pool2d: kernel 0 and stride 1: both must be >= 1");
    expect_err(nb_max_pool2d(x, 2, 0), "max_pool2d: kernel 2 and stride 0: both must be >= 1");
    expect_err(nb_max_pool2d(x, 6, 1), "max_pool2d: input (1, 3, 5, 5) is smaller than the kernel 6 x 6");
    expect_err(nb_avg_pool2d(NULL, 2, 2), "avg_pool2d: NULL argument 1");
    /* a NULL argument keeps the first error */
    CHECK(nb_conv2d(x3, w, NULL, 1, 0) == NULL);
    CHECK(nb_max_pool2d(nb_conv2d(x3, w, NULL, 1, 0), 2, 2) == NULL);
    CHECK(strncmp(nb_last_error(), "conv2d: input (3, 5, 5)", 23) == 0);
    nb_clear_error();
    /* a NULL bias while an error is pending is a failed bias expression (the
       error is kept), not "no bias"; once the error is cleared it is no bias */
    nb_tensor *bad = nb_reshape(b, 1, (int64_t[]){5});
    CHECK(bad == NULL);
    CHECK(nb_conv2d(x, w, bad, 1, 0) == NULL);
    CHECK(nb_last_error() && strstr(nb_last_error(), "conv2d: the bias is NULL while an error is "
                                                     "pending (reshape: ") == nb_last_error());
    nb_clear_error();
    CHECK(nb_conv2d(x, w, NULL, 1, 0) != NULL && nb_last_error() == NULL);
    nb_scope_end(mark);
}

/* ---- allocation failure: every allocation of a conv step fails once, cleanly -------- */
static int cnn_step(nb_tensor *const *p, nb_tensor *x, double *loss) {
    nb_tensor *h = nb_max_pool2d(nb_relu(nb_conv2d(x, p[0], p[1], 1, 1)), 2, 2);
    h = nb_avg_pool2d(nb_conv2d(h, p[2], NULL, 2, 0), 1, 1);
    nb_tensor *l = nb_sum(nb_prod(h, h));
    nb_tensor *g[3];
    if (!l || nb_autograd(1, &l, NULL, 3, p, g, false)) return -1;
    *loss = nb_item(l) + nb_item(nb_sum(g[0])) + nb_item(nb_sum(g[1])) + nb_item(nb_sum(g[2]));
    return isnan(*loss) ? -1 : 0;
}
static void alloc_failure(void) {
    nb_tensor *p[3] = {rnd(4, 2, 3, 3, 400), nb_randn(1, (int64_t[]){4}, 401), rnd(3, 4, 2, 2, 402)};
    nb_tensor *x = rnd(2, 2, 6, 6, 403);
    for (int i = 0; i < 3; i++) nb_retain(p[i]);
    nb_retain(x);
    nb_scope_end(0);
    double ref = 0, got = 0;
    size_t mark = nb_scope_begin();
    CHECK(cnn_step(p, x, &ref) == 0);
    nb_scope_end(mark);
    nb_mem_stats s0;
    int64_t N, fails = 0;
    for (N = 1; N < 10000; N++) {
        nb__conv_scratch_free(); /* so that the scratch's allocation is one of the points */
        nb_memory_stats(&s0);
        nb_clear_error();
        mark = nb_scope_begin();
        nb__fail_alloc_after(N);
        int rc = cnn_step(p, x, &got);
        bool fired = nb__fail_alloc_fired();
        nb__fail_alloc_after(0);
        nb_scope_end(mark);
        nb_mem_stats s1;
        nb_memory_stats(&s1);
        CHECK(s1.live_tensors == s0.live_tensors);
        if (rc == 0) {
            CHECK(got == ref);
            break;
        }
        fails++;
        CHECK(fired);
        CHECK(nb_last_error() != NULL);
    }
    printf("  alloc failure: %lld failure points, completes at N=%lld\n", (long long)fails, (long long)N);
    CHECK(fails > 10);
    for (int i = 0; i < 3; i++) nb_release(p[i]);
    nb_release(x);
}

/* ---- memory: a training loop does not grow the tensor memory ---------------------------- */
static void memory_steady(void) {
    nb_tensor *w = rnd(8, 3, 3, 3, 500), *b = nb_randn(1, (int64_t[]){8}, 501);
    nb_tensor *x = rnd(4, 3, 8, 8, 502);
    nb_retain(w), nb_retain(b), nb_retain(x);
    nb_scope_end(0);
    nb_mem_stats s[6];
    for (int step = 0; step < 6; step++) {
        size_t mark = nb_scope_begin();
        nb_tensor *y = nb_max_pool2d(nb_relu(nb_conv2d(x, w, b, 1, 1)), 2, 2);
        nb_tensor *l = nb_sum(nb_prod(y, y));
        CHECK(nb_backward(l, NULL) == 0);
        nb_zero_grad(w), nb_zero_grad(b);
        nb_scope_end(mark);
        nb_memory_stats(&s[step]);
    }
    CHECK(s[5].live_bytes == s[1].live_bytes);
    CHECK(s[5].live_tensors == s[1].live_tensors);
    CHECK(s[5].peak_bytes == s[1].peak_bytes);
    nb_release(w), nb_release(b), nb_release(x);
}

int main(void) {
    check_alarm(300, "test_conv: timed out\n");
    conv_values();
    pool_values();
    gradients();
    forward_vs_reverse();
    jvp_of_gradients();
    threads();
    errors();
    alloc_failure();
    memory_steady();
    nb_cleanup();
    return check_report("test_conv");
}
