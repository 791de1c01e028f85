/*
 * numpy's element-wise and reduction extras: minimum, clip, where, the six
 * comparisons, min, min_axis, argmax, argmin, logsumexp, var.  For each:
 *   1. forward values against plain-C references written here (loops and
 *      libm, with numpy's broadcasting; logsumexp by the naive formula, var
 *      by the one-pass formula in long double);
 *   2. nb_gradcheck and nb_gradgradcheck below 1e-6 at 0-d, 1-d, broadcast
 *      and 4-d shapes (inputs away from kinks and ties), every axis (negative
 *      ones too), with and without keepdims;
 *   3. forward mode against reverse: <u, J v> by JVP, by VJP (<J^T u, v>) and
 *      by a central difference;
 *   4. ties (halves, evenly split, first index), the clip bounds, where's
 *      condition without gradient, comparisons and argmax never recorded;
 *   5. error messages (exact), NULL arguments;
 *   6. NaN and +-inf as numpy gives them;
 *   7. allocation failure at every point of a forward + backward + double
 *      backward through all of them: an "out of memory" error, nothing
 *      leaked, and a completed run equal to the reference bit for bit.
 */
#include "internal.h"

#include "check.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-6    /* gradcheck / gradgradcheck */
#define FTOL 1e-12  /* forward values */

/* ---- shapes and broadcasting, written here ------------------------------------------ */
typedef struct shp {
    int nd;
    int64_t s[NB_MAX_DIMS];
} shp;
/* S(nd, d0, d1, ...): a shape of nd dimensions; S(0) is a 0-d scalar */
static shp S(int nd, ...) {
    shp r;
    memset(&r, 0, sizeof r);
    r.nd = nd;
    va_list ap;
    va_start(ap, nd);
    for (int i = 0; i < nd; i++) r.s[i] = va_arg(ap, int);
    va_end(ap);
    return r;
}
/* a reproducible number in [-1, 1) from the LCG state *lcg */
static double urand(uint64_t *lcg) {
    *lcg = *lcg * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*lcg >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}
/* an N(0, 1) input of shape s from nb_randn's seed *seed (then advanced) */
static nb_tensor *make_input(const shp *s, uint64_t *seed) { return nb_randn(s->nd, s->s, (*seed)++); }
/* a constant of t's shape with entries urand(lcg) */
static nb_tensor *random_like(const nb_tensor *t, uint64_t *lcg) {
    nb_tensor *r = nb_zeros(nb_ndim(t), nb_shape(t));
    if (r) {
        for (int64_t i = 0; i < nb_numel(r); i++) nb_data_mut(r)[i] = urand(lcg);
        nb_set_requires_grad(r, false);
    }
    return r;
}
/* a new leaf x + step v: a point of a central difference */
static nb_tensor *shifted(const nb_tensor *x, const nb_tensor *v, double step) {
    nb_tensor *r = nb_copy(x);
    if (r)
        for (int64_t j = 0; j < nb_numel(r); j++) nb_data_mut(r)[j] += step * nb_data(v)[j];
    return r;
}
static void step_failed(const char *name, const char *what) {
    check_failed_++;
    fprintf(stderr, "%s: %s failed: %s\n", name, what, nb_last_error());
    nb_clear_error();
}
static int64_t numel_of(const shp *s) {
    int64_t n = 1;
    for (int i = 0; i < s->nd; i++) n *= s->s[i];
    return n;
}
static bool bcast2(const shp *a, const shp *b, shp *out) {
    int nd = a->nd > b->nd ? a->nd : b->nd;
    out->nd = nd;
    for (int i = 0; i < nd; i++) {
        int ia = a->nd - nd + i, ib = b->nd - nd + i;
        int64_t da = ia >= 0 ? a->s[ia] : 1, db = ib >= 0 ? b->s[ib] : 1;
        if (da != db && da != 1 && db != 1) return false;
        out->s[i] = da == 1 ? db : da;
    }
    return true;
}
/* offset in row-major src (broadcast to out) of out's multi-index idx */
static int64_t boff(const shp *src, const shp *out, const int64_t *idx) {
    int64_t off = 0;
    for (int j = 0; j < src->nd; j++) {
        int k = out->nd - src->nd + j;
        off = off * src->s[j] + (src->s[j] == 1 ? 0 : idx[k]);
    }
    return off;
}
static void next_idx(const shp *s, int64_t *idx) {
    for (int k = s->nd - 1; k >= 0; k--) {
        if (++idx[k] < s->s[k]) return;
        idx[k] = 0;
    }
}
static bool same_shp(const nb_tensor *t, const shp *s) {
    if (nb_ndim(t) != s->nd) return false;
    for (int i = 0; i < s->nd; i++)
        if (nb_shape(t)[i] != s->s[i]) return false;
    return true;
}
static nb_tensor *tensor_of(const shp *s, const double *v) { return nb_new(v, s->nd, s->s); }
static nb_tensor *vec(int n, const double *v) { return nb_new(v, 1, (const int64_t[]){n}); }
static nb_tensor *cnst(nb_tensor *t) {
    if (t) nb_set_requires_grad(t, false);
    return t;
}

/* ---- the ops of this file ------------------------------------------------------------ */
enum { O_MINIMUM, O_CLIP, O_WHERE, O_MIN, O_MIN_AXIS, O_LSE, O_VAR, O_COUNT };
static const char *const ONAME[O_COUNT] = {"minimum", "clip", "where", "min", "min_axis",
                                           "logsumexp", "var"};

typedef struct ecase {
    int op;
    int nin;       /* differentiable inputs (where: a and b; cond is `cond`) */
    shp in[2];
    shp cshape;    /* where's condition */
    nb_tensor *cond;
    int axis, ddof;
    bool keep;
    double lo, hi;
} ecase;

static nb_tensor *apply(int n, nb_tensor *const *x, void *vc) {
    const ecase *c = vc;
    switch (c->op) {
    case O_MINIMUM: return nb_minimum(x[0], x[1]);
    case O_CLIP: return nb_clip(x[0], c->lo, c->hi);
    case O_WHERE: return nb_where(c->cond, x[0], x[1]);
    case O_MIN: return nb_min(x[0]);
    case O_MIN_AXIS: return nb_min_axis(x[0], c->axis, c->keep);
    case O_LSE: return nb_logsumexp(x[0], c->axis, c->keep);
    case O_VAR: return nb_var(x[0], c->axis, c->keep, c->ddof);
    default: return NULL;
    }
}

/* the reduced shape and the (outer, n, inner) view of an axis */
static int rshape(const shp *a, int axis, bool keep, shp *os, int64_t *outer, int64_t *n,
                  int64_t *inner) {
    int ax = axis < 0 ? axis + a->nd : axis;
    *outer = *inner = 1;
    os->nd = 0;
    for (int i = 0; i < a->nd; i++) {
        if (i < ax) *outer *= a->s[i];
        if (i > ax) *inner *= a->s[i];
        if (i != ax) os->s[os->nd++] = a->s[i];
        else if (keep) os->s[os->nd++] = 1;
    }
    *n = a->s[ax];
    return ax;
}

/* the reference forward; *out malloc'ed */
static void reference(const ecase *c, const double *const *x, const double *cv, shp *os,
                      double **out) {
    const shp *a = &c->in[0];
    double *r = NULL;
    switch (c->op) {
    case O_MINIMUM: case O_WHERE: {
        shp t = *a;
        if (c->op == O_WHERE) bcast2(&c->cshape, a, &t);
        bcast2(&t, &c->in[1], os);
        int64_t n = numel_of(os), idx[NB_MAX_DIMS] = {0};
        r = calloc((size_t)(n ? n : 1), sizeof *r);
        for (int64_t i = 0; i < n; i++, next_idx(os, idx)) {
            double u = x[0][boff(a, os, idx)], v = x[1][boff(&c->in[1], os, idx)];
            if (c->op == O_MINIMUM) r[i] = u <= v ? u : v;
            else r[i] = cv[boff(&c->cshape, os, idx)] != 0 ? u : v;
        }
        break;
    }
    case O_CLIP: {
        *os = *a;
        int64_t n = numel_of(a);
        r = calloc((size_t)(n ? n : 1), sizeof *r);
        for (int64_t i = 0; i < n; i++) r[i] = fmin(fmax(x[0][i], c->lo), c->hi);
        break;
    }
    case O_MIN: {
        os->nd = 0;
        r = calloc(1, sizeof *r);
        r[0] = INFINITY;
        for (int64_t i = 0; i < numel_of(a); i++) r[0] = fmin(r[0], x[0][i]);
        break;
    }
    default: { /* along an axis */
        int64_t outer, n, inner;
        rshape(a, c->axis, c->keep, os, &outer, &n, &inner);
        r = calloc((size_t)(outer * inner > 0 ? outer * inner : 1), sizeof *r);
        for (int64_t o = 0; o < outer; o++)
            for (int64_t q = 0; q < inner; q++) {
                const double *p = x[0] + o * n * inner + q;
                double *d = r + o * inner + q;
                if (c->op == O_MIN_AXIS) {
                    *d = INFINITY;
                    for (int64_t k = 0; k < n; k++) *d = fmin(*d, p[k * inner]);
                } else if (c->op == O_LSE) { /* the naive formula: inputs are moderate */
                    double s = 0;
                    for (int64_t k = 0; k < n; k++) s += exp(p[k * inner]);
                    *d = log(s);
                } else { /* var: one pass, long double */
                    long double s = 0, s2 = 0;
                    for (int64_t k = 0; k < n; k++) {
                        s += p[k * inner];
                        s2 += (long double)p[k * inner] * p[k * inner];
                    }
                    *d = (double)((s2 - s * s / n) / (long double)(n - c->ddof));
                }
            }
    }
    }
    *out = r;
}

/* inputs away from kinks: clip's bounds, minimum's ties (where the two
   inputs meet after broadcasting, pushed apart by >= 0.05) */
static uint64_t seed_ = 777;
static uint64_t lcg_ = 99;

static void make_inputs(const ecase *c, nb_tensor **x) {
    for (int i = 0; i < c->nin; i++) x[i] = make_input(&c->in[i], &seed_);
    if (c->op == O_CLIP) {
        double *d = nb_data_mut(x[0]);
        for (int64_t i = 0; i < nb_numel(x[0]); i++)
            if (fabs(d[i] - c->lo) < 0.05 || fabs(d[i] - c->hi) < 0.05) d[i] += 0.1;
    }
    if (c->op == O_MINIMUM) { /* b's elements far from every a they meet */
        double *b = nb_data_mut(x[1]);
        const double *a = nb_data(x[0]);
        for (int64_t j = 0; j < nb_numel(x[1]); j++)
            for (int pass = 0; pass < 8; pass++) {
                bool near = false;
                for (int64_t i = 0; i < nb_numel(x[0]); i++) near |= fabs(a[i] - b[j]) < 0.05;
                if (!near) break;
                b[j] += 0.137;
            }
    }
}

static double dot(const nb_tensor *a, const nb_tensor *b) {
    double s = 0;
    for (int64_t i = 0; i < nb_numel(a); i++) s += nb_data(a)[i] * nb_data(b)[i];
    return s;
}

static int cases_run[O_COUNT];

static void run(ecase *c) {
    size_t mark = nb_scope_begin();
    const char *name = ONAME[c->op];
    char label[96];
    snprintf(label, sizeof label, "%s(nd=%d axis=%d keep=%d ddof=%d)", name, c->in[0].nd, c->axis,
             (int)c->keep, c->ddof);
    nb_tensor *x[2] = {NULL, NULL};
    make_inputs(c, x);
    double cv[256] = {0};
    if (c->op == O_WHERE) {
        for (int64_t i = 0; i < numel_of(&c->cshape); i++) cv[i] = (i % 3 == 0) ? 0.0 : (i % 3 == 1 ? 1.0 : -2.5);
        c->cond = cnst(tensor_of(&c->cshape, cv));
    }
    cases_run[c->op]++;
    /* 1. values */
    nb_tensor *y = apply(c->nin, x, c);
    if (!y) {
        step_failed(label, "forward");
        nb_scope_end(mark);
        return;
    }
    const double *xv[2] = {nb_data(x[0]), c->nin > 1 ? nb_data(x[1]) : NULL};
    shp os;
    double *want = NULL;
    reference(c, xv, cv, &os, &want);
    CHECK(same_shp(y, &os));
    bool ok = same_shp(y, &os);
    for (int64_t i = 0; ok && i < nb_numel(y); i++)
        ok = fabs(nb_data(y)[i] - want[i]) <= FTOL * fmax(1.0, fabs(want[i]));
    if (ok) check_passed_++;
    else {
        check_failed_++;
        fprintf(stderr, "%s: values differ from the reference\n", label);
    }
    free(want);
    /* 2. gradients against finite differences, first and second order */
    double err = NAN;
    if (nb_gradcheck(apply, c->nin, x, c, 1e-6, &err) == 0 && err < TOL) check_passed_++;
    else {
        check_failed_++;
        fprintf(stderr, "%s: gradcheck error %g %s\n", label, err, nb_last_error() ? nb_last_error() : "");
        nb_clear_error();
    }
    err = NAN;
    if (nb_gradgradcheck(apply, c->nin, x, c, 1e-6, &err) == 0 && err < TOL) check_passed_++;
    else {
        check_failed_++;
        fprintf(stderr, "%s: gradgradcheck error %g %s\n", label, err, nb_last_error() ? nb_last_error() : "");
        nb_clear_error();
    }
    /* every gradient has its input's shape */
    nb_tensor *g[2] = {NULL, NULL};
    nb_tensor *u = cnst(random_like(y, &lcg_));
    CHECK(nb_autograd(1, &y, &u, c->nin, x, g, false) == 0);
    for (int i = 0; i < c->nin; i++) CHECK(g[i] && nb_ndim(g[i]) == nb_ndim(x[i]) && nb_numel(g[i]) == nb_numel(x[i]));
    /* 3. forward mode against reverse mode and a central difference */
    nb_tensor *v[2] = {NULL, NULL}, *d[2] = {NULL, NULL};
    for (int i = 0; i < c->nin; i++) {
        v[i] = cnst(random_like(x[i], &lcg_));
        d[i] = nb_dual(x[i], v[i]);
    }
    nb_tensor *yd = apply(c->nin, d, c);
    nb_tensor *t = yd ? nb_tangent(yd) : NULL;
    if (!t || nb_numel(t) != nb_numel(y)) {
        check_failed_++;
        fprintf(stderr, "%s: no tangent (%s)\n", label, nb_last_error() ? nb_last_error() : "");
        nb_clear_error();
    } else {
        double jvp = dot(u, t), vjp = 0;
        for (int i = 0; i < c->nin; i++) vjp += g[i] ? dot(g[i], v[i]) : NAN;
        double l[2];
        for (int k = 0; k < 2; k++) {
            size_t m2 = nb_scope_begin();
            nb_tensor *xs[2] = {NULL, NULL};
            for (int i = 0; i < c->nin; i++) xs[i] = shifted(x[i], v[i], k ? -1e-6 : 1e-6);
            nb_tensor *ys = apply(c->nin, xs, c);
            l[k] = ys ? dot(u, ys) : NAN;
            nb_scope_end(m2);
        }
        double fd = (l[0] - l[1]) / 2e-6, scale = fmax(1.0, fabs(vjp));
        if (fabs(jvp - vjp) <= 1e-10 * scale && fabs(jvp - fd) <= 1e-6 * scale) check_passed_++;
        else {
            check_failed_++;
            fprintf(stderr, "%s: <u,Jv> = %.15g (JVP), %.15g (VJP), %.15g (FD)\n", label, jvp, vjp, fd);
        }
    }
    nb_scope_end(mark);
}

static void bin_case(int op, shp a, shp b) {
    ecase c = {.op = op, .nin = 2, .in = {a, b}};
    run(&c);
}
static void where_case(shp cs, shp a, shp b) {
    ecase c = {.op = O_WHERE, .nin = 2, .in = {a, b}, .cshape = cs};
    run(&c);
}
static void un_case(int op, shp a, int axis, bool keep, int ddof) {
    ecase c = {.op = op, .nin = 1, .in = {a}, .axis = axis, .keep = keep, .ddof = ddof,
               .lo = -0.5, .hi = 0.7};
    run(&c);
}

static void all_cases(void) {
    const shp pairs[][2] = {{S(0), S(0)}, {S(1, 4), S(1, 4)}, {S(0), S(2, 2, 3)},
                            {S(2, 1, 3), S(2, 2, 1)}, {S(4, 2, 3, 2, 2), S(3, 3, 1, 2)},
                            {S(4, 2, 1, 2, 3), S(4, 2, 3, 2, 3)}};
    for (size_t k = 0; k < sizeof pairs / sizeof *pairs; k++) bin_case(O_MINIMUM, pairs[k][0], pairs[k][1]);
    where_case(S(0), S(0), S(0));
    where_case(S(1, 5), S(1, 5), S(1, 5));
    where_case(S(2, 1, 3), S(1, 3), S(2, 2, 1));
    where_case(S(0), S(1, 4), S(2, 3, 1));
    where_case(S(4, 2, 1, 2, 3), S(4, 2, 3, 2, 3), S(2, 1, 3));
    where_case(S(4, 2, 3, 2, 3), S(0), S(1, 3));
    const shp us[] = {S(0), S(1, 5), S(2, 3, 4), S(4, 2, 3, 2, 2)};
    for (size_t k = 0; k < sizeof us / sizeof *us; k++) {
        un_case(O_CLIP, us[k], 0, false, 0);
        un_case(O_MIN, us[k], 0, false, 0);
        for (int ax = -us[k].nd; ax < us[k].nd; ax++)
            for (int keep = 0; keep < 2; keep++) {
                un_case(O_MIN_AXIS, us[k], ax, keep, 0);
                un_case(O_LSE, us[k], ax, keep, 0);
                un_case(O_VAR, us[k], ax, keep, (ax + 8) % 3 == 2 ? -1 : (ax + 8) % 2);
            }
    }
    un_case(O_VAR, S(1, 5), 0, false, 3); /* divisor 2 */
    for (int o = 0; o < O_COUNT; o++) {
        if (cases_run[o] == 0) fprintf(stderr, "%s: no case ran\n", ONAME[o]);
        CHECK(cases_run[o] > 0);
    }
}

/* ---- 4. ties, bounds, no gradient -------------------------------------------------------- */
static nb_tensor *grad_of(nb_tensor *y, nb_tensor *x) {
    nb_tensor *g = NULL;
    if (nb_autograd(1, &y, NULL, 1, &x, &g, false) != 0) return NULL;
    return g;
}
static bool data_is(const nb_tensor *t, int n, const double *want) {
    if (!t || nb_numel(t) != n) return false;
    for (int i = 0; i < n; i++)
        if (!(fabs(nb_data(t)[i] - want[i]) <= 1e-15)) return false;
    return true;
}

static void ties(void) {
    size_t mark = nb_scope_begin();
    /* minimum: a tie sends half to each; otherwise all to the smaller */
    nb_tensor *a = vec(4, (const double[]){1, 2, 3, -1}), *b = vec(4, (const double[]){1, 0, 5, -1});
    nb_tensor *ga = NULL, *gb = NULL, *ab[2] = {a, b}, *gs[2] = {NULL, NULL};
    nb_tensor *m = nb_sum(nb_minimum(a, b));
    CHECK(nb_autograd(1, &m, NULL, 2, ab, gs, false) == 0);
    ga = gs[0];
    gb = gs[1];
    CHECK(data_is(ga, 4, (const double[]){0.5, 0, 1, 0.5}));
    CHECK(data_is(gb, 4, (const double[]){0.5, 1, 0, 0.5}));
    /* minimum(x, x): the halves add up to 1 */
    CHECK(data_is(grad_of(nb_sum(nb_minimum(a, a)), a), 4, (const double[]){1, 1, 1, 1}));
    /* a broadcast tie: a 0-d against a vector, its gradient summed back */
    nb_tensor *s = nb_scalar(2.0);
    CHECK(data_is(grad_of(nb_sum(nb_minimum(s, a)), s), 1, (const double[]){0.5 + 0 + 1 + 0}));
    /* min: the gradient split evenly among the minima; min_axis per slice */
    nb_tensor *x = vec(5, (const double[]){3, -2, 4, -2, -2});
    CHECK(data_is(grad_of(nb_min(x), x), 5, (const double[]){0, 1.0 / 3, 0, 1.0 / 3, 1.0 / 3}));
    nb_tensor *X = nb_matrix((const double[]){1, 1, 2, 0, 5, 0}, 2, 3);
    CHECK(data_is(grad_of(nb_sum(nb_min_axis(X, 1, false)), X), 6, (const double[]){0.5, 0.5, 0, 0.5, 0, 0.5}));
    CHECK(data_is(grad_of(nb_sum(nb_min_axis(X, 0, true)), X), 6, (const double[]){0, 1, 0, 1, 0, 1}));
    /* the JVP splits ties the same way */
    nb_tensor *xd = nb_dual(x, vec(5, (const double[]){1, 2, 3, 4, 6}));
    nb_tensor *md = nb_min(xd);
    CHECK(md && nb_tangent(md) && fabs(nb_item(nb_tangent(md)) - 4.0) < 1e-15);
    /* argmax / argmin: the first of ties, along each axis, keepdims */
    nb_tensor *T = nb_matrix((const double[]){1, 7, 7, 0, -3, 2, -3, 9}, 2, 4);
    CHECK(data_is(nb_argmax(T, 1, false), 2, (const double[]){1, 3}));
    CHECK(data_is(nb_argmin(T, -1, false), 2, (const double[]){3, 0}));
    nb_tensor *am = nb_argmax(T, 0, true);
    CHECK(am && nb_ndim(am) == 2 && nb_shape(am)[0] == 1 && nb_shape(am)[1] == 4);
    CHECK(data_is(am, 4, (const double[]){0, 0, 0, 1}));
    CHECK(data_is(nb_argmin(T, 0, false), 4, (const double[]){1, 1, 1, 0}));
    /* argmax of a 4-d tensor along an inner axis against a loop written here */
    int64_t s4[4] = {2, 3, 4, 2};
    nb_tensor *R = nb_randn(4, s4, 5);
    nb_tensor *ar = nb_argmax(R, 2, false), *an = nb_argmin(R, -2, true);
    bool ok = ar && an && nb_numel(ar) == 12 && nb_ndim(an) == 4 && nb_shape(an)[2] == 1;
    for (int i = 0; ok && i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 2; k++) {
                int bi = 0, bj = 0;
                for (int q = 1; q < 4; q++) {
                    if (nb_data(R)[((i * 3 + j) * 4 + q) * 2 + k] > nb_data(R)[((i * 3 + j) * 4 + bi) * 2 + k]) bi = q;
                    if (nb_data(R)[((i * 3 + j) * 4 + q) * 2 + k] < nb_data(R)[((i * 3 + j) * 4 + bj) * 2 + k]) bj = q;
                }
                ok &= nb_data(ar)[(i * 3 + j) * 2 + k] == bi && nb_data(an)[(i * 3 + j) * 2 + k] == bj;
            }
    CHECK(ok);
    /* clip: gradient 1 inside and at the bounds, 0 outside */
    nb_tensor *c = vec(6, (const double[]){-2, -1, 0, 0.5, 1, 3});
    nb_tensor *cl = nb_clip(c, -1, 1);
    CHECK(data_is(cl, 6, (const double[]){-1, -1, 0, 0.5, 1, 1}));
    CHECK(data_is(grad_of(nb_sum(cl), c), 6, (const double[]){0, 1, 1, 1, 1, 0}));
    /* lo > hi: hi everywhere (numpy), no gradient anywhere */
    nb_tensor *cr = nb_clip(c, 1, -1);
    CHECK(data_is(cr, 6, (const double[]){-1, -1, -1, -1, -1, -1}));
    CHECK(data_is(grad_of(nb_sum(cr), c), 6, (const double[]){0, 0, 0, 0, 0, 0}));
    /* where: the condition gets a zero gradient of its shape, even when it requires grad */
    nb_tensor *cond = vec(3, (const double[]){0, 1, -0.5});
    nb_tensor *wa = nb_matrix((const double[]){1, 2, 3, 4, 5, 6}, 2, 3), *wb = nb_scalar(10);
    nb_tensor *w = nb_where(cond, wa, wb);
    CHECK(data_is(w, 6, (const double[]){10, 2, 3, 10, 5, 6}));
    nb_tensor *win[3] = {cond, wa, wb}, *wg[3] = {NULL, NULL, NULL};
    nb_tensor *ws = nb_sum(w);
    CHECK(nb_autograd(1, &ws, NULL, 3, win, wg, false) == 0);
    CHECK(data_is(wg[0], 3, (const double[]){0, 0, 0}) && nb_ndim(wg[0]) == 1);
    CHECK(data_is(wg[1], 6, (const double[]){0, 1, 1, 0, 1, 1}));
    CHECK(data_is(wg[2], 1, (const double[]){2}) && nb_ndim(wg[2]) == 0);
    CHECK(nb_num_parents(w) == 3);
    /* comparisons and argmax/argmin: never recorded, no tangent, whatever the inputs */
    nb_tensor *p = vec(4, (const double[]){1, 2, 3, 4}), *q = nb_scalar(2.5);
    nb_tensor *pd = nb_dual(p, vec(4, (const double[]){1, 1, 1, 1}));
    nb_tensor *(*cmp[6])(nb_tensor *, nb_tensor *) = {nb_eq, nb_ne, nb_lt, nb_le, nb_gt, nb_ge};
    for (int k = 0; k < 6; k++) {
        nb_tensor *r = cmp[k](pd, q);
        CHECK(r && !nb_requires_grad(r) && nb_num_parents(r) == 0 && !nb_tangent(r));
    }
    nb_tensor *amx = nb_argmax(pd, 0, false), *amn = nb_argmin(p, 0, true);
    CHECK(amx && !nb_requires_grad(amx) && !nb_tangent(amx) && nb_item(amx) == 3);
    CHECK(amn && !nb_requires_grad(amn) && nb_item(amn) == 0);
    CHECK(nb_op_name(amx) && strcmp(nb_op_name(amx), "argmax") == 0);
    /* an expression using a comparison as a mask: the gradient flows through the product only */
    nb_tensor *mk = nb_prod(p, nb_gt(p, q));
    CHECK(data_is(grad_of(nb_sum(mk), p), 4, (const double[]){0, 0, 1, 1}));
    /* logsumexp: analytic values and gradient (softmax) */
    nb_tensor *L = vec(3, (const double[]){0, log(2.0), log(5.0)});
    nb_tensor *lse = nb_logsumexp(L, 0, false);
    CHECK(lse && nb_ndim(lse) == 0 && fabs(nb_item(lse) - log(8.0)) < 1e-15);
    CHECK(data_is(grad_of(lse, L), 3, (const double[]){1.0 / 8, 2.0 / 8, 5.0 / 8}));
    /* var: analytic values and gradient */
    nb_tensor *V = vec(4, (const double[]){1, 2, 3, 6}); /* mean 3, deviations -2 -1 0 3 */
    CHECK(data_is(nb_var(V, 0, false, 0), 1, (const double[]){14.0 / 4}));
    CHECK(data_is(nb_var(V, -1, true, 1), 1, (const double[]){14.0 / 3}));
    CHECK(data_is(grad_of(nb_var(V, 0, false, 1), V), 4, (const double[]){-4.0 / 3, -2.0 / 3, 0, 2}));
    nb_scope_end(mark);
}

/* ---- 5. errors -------------------------------------------------------------------------- */
static void errors(void) {
    size_t mark = nb_scope_begin();
    nb_tensor *a = nb_zeros(2, (const int64_t[]){3, 1}), *b = nb_zeros(2, (const int64_t[]){4, 1});
    nb_tensor *v2 = nb_zeros(1, (const int64_t[]){2}), *v3 = nb_zeros(1, (const int64_t[]){3});
    nb_tensor *v4 = nb_zeros(1, (const int64_t[]){4});
    nb_tensor *e = nb_zeros(2, (const int64_t[]){0, 3}), *s = nb_scalar(1);
#define EXPECT_ERR(call, msg)            \
    do {                                 \
        nb_clear_error();                \
        CHECK((call) == NULL);           \
        CHECK_STR(nb_last_error(), msg); \
    } while (0)
    EXPECT_ERR(nb_minimum(a, b), "minimum: shapes (3, 1) and (4, 1) cannot be broadcast");
    EXPECT_ERR(nb_eq(a, b), "eq: shapes (3, 1) and (4, 1) cannot be broadcast");
    EXPECT_ERR(nb_ne(v2, v3), "ne: shapes (2,) and (3,) cannot be broadcast");
    EXPECT_ERR(nb_lt(a, b), "lt: shapes (3, 1) and (4, 1) cannot be broadcast");
    EXPECT_ERR(nb_le(a, b), "le: shapes (3, 1) and (4, 1) cannot be broadcast");
    EXPECT_ERR(nb_gt(a, b), "gt: shapes (3, 1) and (4, 1) cannot be broadcast");
    EXPECT_ERR(nb_ge(a, b), "ge: shapes (3, 1) and (4, 1) cannot be broadcast");
    EXPECT_ERR(nb_where(v2, v3, v4), "where: shapes (2,), (3,) and (4,) cannot be broadcast");
    EXPECT_ERR(nb_where(v2, v2, v4), "where: shapes (2,), (2,) and (4,) cannot be broadcast");
    EXPECT_ERR(nb_min(e), "min: a tensor of shape (0, 3) has no elements to take the min of");
    EXPECT_ERR(nb_min_axis(e, 0, false), "min_axis: axis 0 of shape (0, 3) has no elements");
    EXPECT_ERR(nb_min_axis(a, 2, false), "min_axis: axis 2 is out of range for a tensor of shape (3, 1)");
    EXPECT_ERR(nb_argmax(e, -2, false), "argmax: axis -2 of shape (0, 3) has no elements");
    EXPECT_ERR(nb_argmin(a, -3, true), "argmin: axis -3 is out of range for a tensor of shape (3, 1)");
    EXPECT_ERR(nb_argmax(s, 0, false), "argmax: axis 0 is out of range for a tensor of shape ()");
    EXPECT_ERR(nb_logsumexp(s, 0, false), "logsumexp: axis 0 is out of range for a tensor of shape ()");
    EXPECT_ERR(nb_logsumexp(a, 5, true), "logsumexp: axis 5 is out of range for a tensor of shape (3, 1)");
    EXPECT_ERR(nb_var(a, 1, false, 1), "var: ddof 1 leaves no degrees of freedom: axis 1 of shape (3, 1) has length 1");
    EXPECT_ERR(nb_var(a, 0, false, 3), "var: ddof 3 leaves no degrees of freedom: axis 0 of shape (3, 1) has length 3");
    EXPECT_ERR(nb_var(e, 0, true, 0), "var: ddof 0 leaves no degrees of freedom: axis 0 of shape (0, 3) has length 0");
    EXPECT_ERR(nb_var(a, -3, false, 0), "var: axis -3 is out of range for a tensor of shape (3, 1)");
    /* NULL arguments: "<op>: NULL argument N", and the first error is kept */
    EXPECT_ERR(nb_minimum(a, NULL), "minimum: NULL argument 2");
    EXPECT_ERR(nb_clip(NULL, 0, 1), "clip: NULL argument 1");
    EXPECT_ERR(nb_where(a, NULL, a), "where: NULL argument 2");
    EXPECT_ERR(nb_ge(NULL, a), "ge: NULL argument 1");
    EXPECT_ERR(nb_min(NULL), "min: NULL argument 1");
    EXPECT_ERR(nb_argmin(NULL, 0, false), "argmin: NULL argument 1");
    EXPECT_ERR(nb_logsumexp(NULL, 0, false), "logsumexp: NULL argument 1");
    EXPECT_ERR(nb_var(NULL, 0, false, 0), "var: NULL argument 1");
    nb_clear_error();
    CHECK(nb_var(nb_logsumexp(nb_where(nb_lt(a, b), a, b), 0, false), 0, false, 0) == NULL);
    CHECK_STR(nb_last_error(), "lt: shapes (3, 1) and (4, 1) cannot be broadcast");
    nb_clear_error();
    /* valid edge cases are accepted: ddof < 0, an empty tensor's other axes */
    nb_tensor *vv = nb_var(nb_zeros(1, (const int64_t[]){0}), 0, false, -1);
    CHECK(vv && nb_item(vv) == 0.0); /* numpy: var([], ddof=-1) = 0 */
    nb_tensor *ev = nb_var(e, 1, false, 1);
    CHECK(ev && nb_ndim(ev) == 1 && nb_shape(ev)[0] == 0);
    nb_tensor *el = nb_logsumexp(e, 0, false);
    CHECK(el && nb_numel(el) == 3 && nb_data(el)[0] == -INFINITY); /* log of an empty sum */
    nb_tensor *ea = nb_argmax(e, 1, true);
    CHECK(ea && nb_ndim(ea) == 2 && nb_shape(ea)[0] == 0 && nb_shape(ea)[1] == 1);
    nb_scope_end(mark);
}

/* ---- 6. NaN and infinities, as numpy ------------------------------------------------------ */
static bool same(double a, double b) { return (isnan(a) && isnan(b)) || a == b; }
static bool values_are(const nb_tensor *t, int n, const double *want) {
    if (!t || nb_numel(t) != n) return false;
    for (int i = 0; i < n; i++)
        if (!same(nb_data(t)[i], want[i])) {
            fprintf(stderr, "  element %d: %.17g, expected %.17g\n", i, nb_data(t)[i], want[i]);
            return false;
        }
    return true;
}

static void nonfinite(void) {
    size_t mark = nb_scope_begin();
    const double I = INFINITY, N = NAN;
    nb_tensor *a = vec(6, (const double[]){N, 1, N, I, -I, 0});
    nb_tensor *b = vec(6, (const double[]){1, N, N, 2, 3, -0.0});
    CHECK(values_are(nb_minimum(a, b), 6, (const double[]){N, N, N, 2, -I, 0}));
    CHECK(values_are(nb_eq(a, b), 6, (const double[]){0, 0, 0, 0, 0, 1}));
    CHECK(values_are(nb_ne(a, b), 6, (const double[]){1, 1, 1, 1, 1, 0}));
    CHECK(values_are(nb_lt(a, b), 6, (const double[]){0, 0, 0, 0, 1, 0}));
    CHECK(values_are(nb_le(a, b), 6, (const double[]){0, 0, 0, 0, 1, 1}));
    CHECK(values_are(nb_gt(a, b), 6, (const double[]){0, 0, 0, 1, 0, 0}));
    CHECK(values_are(nb_ge(a, b), 6, (const double[]){0, 0, 0, 1, 0, 1}));
    CHECK(values_are(nb_clip(a, -1, 1), 6, (const double[]){N, 1, N, 1, -1, 0}));
    CHECK(values_are(nb_clip(b, N, 1), 6, (const double[]){N, N, N, N, N, N}));
    CHECK(values_are(nb_clip(b, -I, I), 6, (const double[]){1, N, N, 2, 3, -0.0}));
    /* a NaN condition is true (numpy's bool(nan)) */
    CHECK(values_are(nb_where(a, nb_scalar(7), nb_scalar(8)), 6, (const double[]){7, 7, 7, 7, 7, 8}));
    /* min and min_axis propagate NaN; argmax/argmin give the first NaN */
    CHECK(values_are(nb_min(vec(3, (const double[]){-I, N, 0})), 1, (const double[]){N}));
    CHECK(values_are(nb_min(vec(3, (const double[]){I, -I, 0})), 1, (const double[]){-I}));
    nb_tensor *M = nb_matrix((const double[]){1, N, -I, N, 2, I, 3, 0, 1}, 3, 3);
    CHECK(values_are(nb_min_axis(M, 1, false), 3, (const double[]){N, N, 0}));
    CHECK(values_are(nb_argmax(M, 1, false), 3, (const double[]){1, 0, 0}));
    CHECK(values_are(nb_argmin(M, 0, false), 3, (const double[]){1, 0, 0}));
    CHECK(values_are(nb_argmax(vec(3, (const double[]){-I, I, I}), 0, false), 1, (const double[]){1}));
    /* (the gradient exp(x - out) carries out's rounding, one ulp of 1000: ~1e-13) */
    /* logsumexp: finite at +-1000, +inf wins, all -inf is -inf, NaN is NaN */
    nb_tensor *L = nb_matrix((const double[]){1000, 1000, -1000, -1000, I, 1, -I, -I, N, 1, -I, 0}, 6, 2);
    CHECK(values_are(nb_logsumexp(L, 1, false), 6,
                     (const double[]){1000 + log(2.0), -1000 + log(2.0), I, -I, N, 0}));
    nb_tensor *big = vec(2, (const double[]){1000, 999});
    nb_tensor *gb = grad_of(nb_logsumexp(big, 0, false), big);
    CHECK(gb && fabs(nb_data(gb)[0] - 1 / (1 + exp(-1.0))) < 1e-12 && fabs(nb_data(gb)[1] - 1 / (1 + exp(1.0))) < 1e-12);
    /* var: inf - inf is NaN, as numpy */
    CHECK(values_are(nb_var(vec(2, (const double[]){I, 1}), 0, false, 0), 1, (const double[]){N}));
    CHECK(values_are(nb_var(vec(2, (const double[]){N, 1}), 0, false, 0), 1, (const double[]){N}));
    CHECK(values_are(nb_var(vec(2, (const double[]){1e300, -1e300}), 0, false, 0), 1, (const double[]){I}));
    /* NaN gradients flow as IEEE says: var's gradient at a NaN element is NaN */
    nb_tensor *vn = vec(3, (const double[]){N, 1, 2});
    nb_tensor *gv = grad_of(nb_var(vn, 0, false, 0), vn);
    CHECK(gv && isnan(nb_data(gv)[0]) && isnan(nb_data(gv)[1]));
    /* clip's gradient at NaN is 0 (NaN is not inside [lo, hi]); minimum's NaN gate */
    nb_tensor *cn = vec(2, (const double[]){N, 0.5});
    CHECK(values_are(grad_of(nb_sum(nb_clip(cn, 0, 1)), cn), 2, (const double[]){0, 1}));
    nb_scope_end(mark);
}

/* ---- 7. allocation failure ---------------------------------------------------------------- */
static int64_t live(void) {
    nb_mem_stats s;
    nb_memory_stats(&s);
    return s.live_tensors;
}

/* forward through every op, backward, and a double backward; out[0..12) */
static int scenario(nb_tensor *x, nb_tensor *w, double *out) {
    nb_tensor *mask = nb_ge(x, nb_scalar(0.0));
    nb_tensor *h = nb_where(mask, nb_clip(x, -0.8, 0.8), nb_minimum(x, w));
    nb_tensor *sel = nb_prod(h, nb_add(nb_lt(x, w), nb_eq(x, x)));
    nb_tensor *f = nb_add(nb_add(nb_sum(nb_logsumexp(sel, 1, false)), nb_sum(nb_var(sel, 0, true, 1))),
                          nb_add(nb_min(sel), nb_sum(nb_min_axis(nb_square(sel), -1, false))));
    nb_tensor *am = nb_argmax(sel, 1, false), *an = nb_argmin(sel, 0, true);
    nb_tensor *cmp = nb_add(nb_add(nb_ne(x, w), nb_le(x, w)), nb_gt(x, w));
    if (!f || !am || !an || !cmp) return -1;
    nb_tensor *g = NULL, *hh = NULL;
    if (nb_autograd(1, &f, NULL, 1, &x, &g, true) != 0) return -1;
    nb_tensor *gn = nb_sum(nb_prod(g, g));
    if (!gn || nb_autograd(1, &gn, NULL, 1, &x, &hh, false) != 0) return -1;
    out[0] = nb_item(f);
    for (int i = 0; i < 6; i++) out[1 + i] = nb_data(hh)[i];
    out[7] = nb_data(am)[0] + 3 * nb_data(an)[1] + nb_data(cmp)[2];
    for (int i = 0; i < 4; i++) out[8 + i] = nb_data(g)[i];
    return 0;
}

static void alloc_failure(void) {
    nb_tensor *x = nb_retain(nb_matrix((const double[]){0.3, -1.2, 0.9, -0.1, 1.7, -0.6}, 2, 3));
    nb_tensor *w = nb_retain(cnst(nb_matrix((const double[]){0.5, -2.0, 0.2, 0.4, 1.0, -0.5}, 2, 3)));
    double ref[12], got[12];
    size_t mark = nb_scope_begin();
    CHECK(scenario(x, w, ref) == 0);
    nb_scope_end(mark);
    int64_t base = live(), N;
    for (N = 1; N < 100000; N++) {
        nb_clear_error();
        mark = nb_scope_begin();
        nb__fail_alloc_after(N);
        int rc = scenario(x, w, got);
        bool fired = nb__fail_alloc_fired();
        nb__fail_alloc_after(0);
        nb_scope_end(mark);
        if (rc == 0) {
            CHECK(memcmp(ref, got, sizeof ref) == 0);
            break;
        }
        CHECK(fired);
        const char *m = nb_last_error();
        if (!m || !strstr(m, "out of memory")) {
            fprintf(stderr, "alloc failure N=%lld: message %s\n", (long long)N, m ? m : "(none)");
            CHECK(0);
        }
        CHECK(nb_grad(x) == NULL);
        if (live() != base) {
            fprintf(stderr, "alloc failure N=%lld: %lld tensors leaked\n", (long long)N,
                    (long long)(live() - base));
            CHECK(0);
        }
    }
    printf("  allocation failure: %lld failure points, completes at N=%lld\n", (long long)(N - 1),
           (long long)N);
    CHECK(N > 50);
    nb_release(x);
    nb_release(w);
    nb_scope_end(0);
}

int main(void) {
    all_cases();
    ties();
    errors();
    nonfinite();
    alloc_failure();
    nb_cleanup();
    CHECK(live() == 0);
    return check_report("test_ops_numpy_ew");
}
