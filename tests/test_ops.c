/* Every op of nabla.h, at several shapes (broadcast ones included):
     1. forward values against a plain-C reference written here (loops, libm);
     2. nb_gradcheck (the library's central-difference check) below 1e-6;
     3. an independent central-difference check written here: the gradient of
        <u, f(x)> from nb_backward(f(x), u) against (L(x+h) - L(x-h)) / 2h;
     4. every gradient has its input's shape (broadcast operands summed back).
   Plus softmax/log_softmax at inputs of +-1000 (finite values and gradients),
   and a check that nb_gradcheck itself reports a wrong gradient. */
#include "nabla.h"
#include "check.h"
#include "opcases.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define EPS 1e-6
#define GTOL 1e-6  /* gradient tolerance (relative to max(1, |numeric|)) */
#define FTOL 1e-12 /* forward tolerance (relative to max(1, |expected|)) */

static int cases_run[K_NSINGLE];

/* ---- shapes --------------------------------------------------------------- */
static int64_t numel_of(const shp *s) {
    int64_t n = 1;
    for (int i = 0; i < s->nd; i++) n *= s->s[i];
    return n;
}
static void shp_str(const shp *s, char *buf, size_t size) {
    size_t k = (size_t)snprintf(buf, size, "(");
    for (int i = 0; i < s->nd && k < size; i++)
        k += (size_t)snprintf(buf + k, size - k, i ? ", %lld" : "%lld", (long long)s->s[i]);
    if (k < size) snprintf(buf + k, size - k, s->nd == 1 ? ",)" : ")");
}
static bool bcast(const shp *a, const shp *b, shp *out) {
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
/* offset in a row-major src (broadcast to out's shape) of out's multi-index */
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
static int norm_axis(int axis, int nd) { return axis < 0 ? axis + nd : axis; }

/* ---- the reference forward: plain C ------------------------------------- */
static double sigmoid_ref(double x) { return 1.0 / (1.0 + exp(-x)); }

static double unary_ref(const tcase *c, double x) {
    switch (c->op) {
    case K_NEG: return -x;
    case K_SIN: return sin(x);
    case K_COS: return cos(x);
    case K_EXP: return exp(x);
    case K_LOG: return log(x);
    case K_SQRT: return sqrt(x);
    case K_SQUARE: return x * x;
    case K_RELU: return x > 0 ? x : 0.0;
    case K_SIGMOID: return sigmoid_ref(x);
    case K_TANH: return tanh(x);
    case K_POW: return pow(x, c->p);
    case K_SCALE: return c->p * x;
    default: return NAN;
    }
}
static double binary_ref(int op, double x, double y) {
    switch (op) {
    case K_ADD: return x + y;
    case K_SUB: return x - y;
    case K_PROD: return x * y;
    case K_DIV: return x / y;
    case K_MAXIMUM: return x > y ? x : y;
    default: return NAN;
    }
}

static double *alloc_n(int64_t n) { return calloc((size_t)(n > 0 ? n : 1), sizeof(double)); }

/* Computes the expected output shape and values (*out malloc'ed). */
static bool ref_forward(const tcase *c, const double *const *x, shp *os, double **out) {
    const shp *a = &c->in[0];
    int64_t na = numel_of(a);
    double *r = NULL;
    switch (c->op) {
    case K_ADD: case K_SUB: case K_PROD: case K_DIV: case K_MAXIMUM: {
        if (!bcast(a, &c->in[1], os)) return false;
        int64_t n = numel_of(os), idx[NB_MAX_DIMS] = {0};
        r = malloc(sizeof(double) * (size_t)(n ? n : 1));
        for (int64_t i = 0; i < n; i++, next_idx(os, idx))
            r[i] = binary_ref(c->op, x[0][boff(a, os, idx)], x[1][boff(&c->in[1], os, idx)]);
        break;
    }
    case K_NEG: case K_SIN: case K_COS: case K_EXP: case K_LOG: case K_SQRT: case K_SQUARE:
    case K_RELU: case K_SIGMOID: case K_TANH: case K_POW: case K_SCALE:
        *os = *a;
        r = malloc(sizeof(double) * (size_t)(na ? na : 1));
        for (int64_t i = 0; i < na; i++) r[i] = unary_ref(c, x[0][i]);
        break;
    case K_SUM: case K_MEAN: case K_MAX: {
        os->nd = 0;
        r = malloc(sizeof(double));
        double acc = c->op == K_MAX ? -INFINITY : 0.0;
        for (int64_t i = 0; i < na; i++)
            acc = c->op == K_MAX ? (x[0][i] > acc ? x[0][i] : acc) : acc + x[0][i];
        r[0] = c->op == K_MEAN ? acc / (double)na : acc;
        break;
    }
    case K_SUM_AXIS: case K_MEAN_AXIS: case K_MAX_AXIS: case K_SOFTMAX: case K_LOG_SOFTMAX: {
        int ax = norm_axis(c->axis, a->nd);
        int64_t outer = 1, inner = 1, n = a->s[ax];
        for (int i = 0; i < ax; i++) outer *= a->s[i];
        for (int i = ax + 1; i < a->nd; i++) inner *= a->s[i];
        bool red = c->op == K_SUM_AXIS || c->op == K_MEAN_AXIS || c->op == K_MAX_AXIS;
        if (red) {
            os->nd = 0;
            for (int i = 0; i < a->nd; i++) {
                if (i == ax) {
                    if (c->keep) os->s[os->nd++] = 1;
                } else {
                    os->s[os->nd++] = a->s[i];
                }
            }
            r = alloc_n(outer * inner);
        } else {
            *os = *a;
            r = malloc(sizeof(double) * (size_t)(na ? na : 1));
        }
        for (int64_t o = 0; o < outer; o++)
            for (int64_t q = 0; q < inner; q++) {
                const double *p = x[0] + o * n * inner + q;
                if (red) {
                    double acc = c->op == K_MAX_AXIS ? -INFINITY : 0.0;
                    for (int64_t k = 0; k < n; k++) {
                        double v = p[k * inner];
                        acc = c->op == K_MAX_AXIS ? (v > acc ? v : acc) : acc + v;
                    }
                    r[o * inner + q] = c->op == K_MEAN_AXIS ? acc / (double)n : acc;
                } else {
                    double m = -INFINITY, z = 0;
                    for (int64_t k = 0; k < n; k++) m = p[k * inner] > m ? p[k * inner] : m;
                    for (int64_t k = 0; k < n; k++) z += exp(p[k * inner] - m);
                    for (int64_t k = 0; k < n; k++) {
                        double v = p[k * inner] - m;
                        r[o * n * inner + k * inner + q] =
                            c->op == K_SOFTMAX ? exp(v) / z : v - log(z);
                    }
                }
            }
        break;
    }
    case K_MATMUL: {
        const shp *b = &c->in[1];
        bool sqm = a->nd == 1, sqn = b->nd == 1;
        int64_t m = sqm ? 1 : a->s[a->nd - 2], k = a->s[a->nd - 1];
        int64_t kb = sqn ? b->s[0] : b->s[b->nd - 2], n = sqn ? 1 : b->s[b->nd - 1];
        if (k != kb) return false;
        shp ba = {0, {0}}, bb = {0, {0}}, bo;
        if (a->nd > 2) { ba.nd = a->nd - 2; memcpy(ba.s, a->s, sizeof(int64_t) * (size_t)ba.nd); }
        if (b->nd > 2) { bb.nd = b->nd - 2; memcpy(bb.s, b->s, sizeof(int64_t) * (size_t)bb.nd); }
        if (!bcast(&ba, &bb, &bo)) return false;
        *os = bo;
        if (!sqm) os->s[os->nd++] = m;
        if (!sqn) os->s[os->nd++] = n;
        int64_t nbatch = numel_of(&bo), idx[NB_MAX_DIMS] = {0};
        r = alloc_n(nbatch * m * n);
        for (int64_t t = 0; t < nbatch; t++, next_idx(&bo, idx)) {
            const double *A = x[0] + boff(&ba, &bo, idx) * m * k;
            const double *B = x[1] + boff(&bb, &bo, idx) * k * n;
            for (int64_t i = 0; i < m; i++)
                for (int64_t j = 0; j < n; j++) {
                    double acc = 0;
                    for (int64_t l = 0; l < k; l++) acc += A[i * k + l] * B[l * n + j];
                    r[t * m * n + i * n + j] = acc;
                }
        }
        break;
    }
    case K_TRANSPOSE: {
        *os = *a;
        r = malloc(sizeof(double) * (size_t)(na ? na : 1));
        if (a->nd < 2) {
            memcpy(r, x[0], sizeof(double) * (size_t)na);
            break;
        }
        int64_t R = a->s[a->nd - 2], C = a->s[a->nd - 1], nbatch = na / (R * C);
        os->s[a->nd - 2] = C;
        os->s[a->nd - 1] = R;
        for (int64_t t = 0; t < nbatch; t++)
            for (int64_t i = 0; i < R; i++)
                for (int64_t j = 0; j < C; j++) r[t * R * C + j * R + i] = x[0][t * R * C + i * C + j];
        break;
    }
    case K_RESHAPE: {
        *os = c->target;
        int64_t known = 1;
        int neg = -1;
        for (int i = 0; i < os->nd; i++) {
            if (os->s[i] == -1) neg = i;
            else known *= os->s[i];
        }
        if (neg >= 0) os->s[neg] = na / known;
        r = malloc(sizeof(double) * (size_t)(na ? na : 1));
        memcpy(r, x[0], sizeof(double) * (size_t)na);
        break;
    }
    case K_BROADCAST_TO: {
        *os = c->target;
        int64_t n = numel_of(os), idx[NB_MAX_DIMS] = {0};
        r = malloc(sizeof(double) * (size_t)(n ? n : 1));
        for (int64_t i = 0; i < n; i++, next_idx(os, idx)) r[i] = x[0][boff(a, os, idx)];
        break;
    }
    case K_SUM_TO: {
        *os = c->target;
        int64_t n = numel_of(os), idx[NB_MAX_DIMS] = {0};
        r = calloc((size_t)(n ? n : 1), sizeof(double));
        for (int64_t i = 0; i < na; i++, next_idx(a, idx)) r[boff(os, a, idx)] += x[0][i];
        break;
    }
    default: return false;
    }
    *out = r;
    return true;
}

/* ---- inputs ----------------------------------------------------------------- */
static uint64_t seed_ = 12345; /* inputs */
static uint64_t lcg_ = 99;     /* directions */

static bool same_shape(const nb_tensor *t, const shp *s) {
    if (!t || nb_ndim(t) != s->nd) return false;
    for (int i = 0; i < s->nd; i++)
        if (nb_shape(t)[i] != s->s[i]) return false;
    return true;
}

static void describe(const tcase *c, char *buf, size_t size) {
    char s0[96], s1[96] = "", tg[96] = "";
    shp_str(&c->in[0], s0, sizeof s0);
    if (c->nin > 1) shp_str(&c->in[1], s1, sizeof s1);
    if (c->op == K_RESHAPE || c->op == K_BROADCAST_TO || c->op == K_SUM_TO)
        shp_str(&c->target, tg, sizeof tg);
    snprintf(buf, size, "%s(%s%s%s axis=%d keep=%d p=%g%s%s)", KNAME[c->op], s0,
             c->nin > 1 ? ", " : "", s1, c->axis, (int)c->keep, c->p, *tg ? " -> " : "", tg);
}

/* L(x) = <u, f(x)> with grad disabled */
static double inner_u(const tcase *c, nb_tensor *const *in, const double *u) {
    size_t mark = nb_scope_begin();
    bool prev = nb_set_grad_enabled(false);
    nb_tensor *y = apply_op(c->nin, in, (void *)c);
    double acc = NAN;
    if (y) {
        acc = 0;
        for (int64_t i = 0; i < nb_numel(y); i++) acc += u[i] * nb_data(y)[i];
    }
    nb_set_grad_enabled(prev);
    nb_scope_end(mark);
    return acc;
}

static void run_case(const tcase *c) {
    char what[512];
    describe(c, what, sizeof what);
    size_t mark = nb_scope_begin();
    cases_run[c->op]++;
    nb_tensor *in[2] = {NULL, NULL};
    const double *xd[2] = {NULL, NULL};
    for (int i = 0; i < c->nin; i++) {
        in[i] = make_input(&c->in[i], c->gen[i], &seed_);
        xd[i] = in[i] ? nb_data(in[i]) : NULL;
    }
    nb_clear_error();
    nb_tensor *y = apply_op(c->nin, in, (void *)c);
    if (!y) {
        check_failed_++;
        fprintf(stderr, "%s: returned NULL: %s\n", what,
                nb_last_error() ? nb_last_error() : "(no error)");
        nb_scope_end(mark);
        return;
    }
    /* 1. forward values */
    shp os;
    double *want = NULL;
    if (!ref_forward(c, xd, &os, &want)) {
        check_failed_++;
        fprintf(stderr, "%s: the test's reference refused the case\n", what);
        nb_scope_end(mark);
        return;
    }
    if (!same_shape(y, &os)) {
        char e[96];
        shp_str(&os, e, sizeof e);
        check_failed_++;
        fprintf(stderr, "%s: output has ndim %d, expected shape %s\n", what, nb_ndim(y), e);
    } else {
        bool ok = true;
        for (int64_t i = 0; i < numel_of(&os); i++) {
            double g = nb_data(y)[i], w = want[i];
            if (!(fabs(g - w) <= FTOL * fmax(1.0, fabs(w)))) {
                if (ok)
                    fprintf(stderr, "%s: forward[%lld] = %.17g, expected %.17g\n", what,
                            (long long)i, g, w);
                ok = false;
            }
        }
        CHECK(ok);
    }
    free(want);

    /* 2. the library's gradcheck */
    double err = -1;
    int rc = nb_gradcheck(apply_op, c->nin, in, (void *)c, EPS, &err);
    if (rc != 0 || !(err >= 0 && err < GTOL)) {
        check_failed_++;
        fprintf(stderr, "%s: nb_gradcheck rc=%d max_err=%g (%s)\n", what, rc, err,
                nb_last_error() ? nb_last_error() : "");
    } else {
        check_passed_++;
    }

    /* 3. an independent central difference of <u, f(x)> */
    int64_t ny = nb_numel(y);
    double *u = malloc(sizeof(double) * (size_t)(ny ? ny : 1));
    for (int64_t i = 0; i < ny; i++) u[i] = urand(&lcg_);
    nb_tensor *cp[2] = {NULL, NULL};
    for (int i = 0; i < c->nin; i++) {
        cp[i] = nb_copy(in[i]);
        nb_set_requires_grad(cp[i], true);
    }
    nb_tensor *y2 = apply_op(c->nin, cp, (void *)c);
    nb_tensor *useed = y2 ? nb_new(u, nb_ndim(y2), nb_shape(y2)) : NULL;
    if (useed) nb_set_requires_grad(useed, false);
    rc = y2 && useed ? nb_backward(y2, useed) : -1;
    CHECK(rc == 0);
    for (int i = 0; i < c->nin && rc == 0; i++) {
        nb_tensor *g = nb_grad(cp[i]);
        /* 4. the gradient has the input's shape */
        if (!same_shape(g, &c->in[i])) {
            check_failed_++;
            fprintf(stderr, "%s: gradient of input %d is %s with ndim %d\n", what, i,
                    g ? "present" : "missing", g ? nb_ndim(g) : -1);
            continue;
        }
        double worst = 0;
        int64_t worst_j = -1;
        double *d = nb_data_mut(in[i]);
        for (int64_t j = 0; j < nb_numel(in[i]); j++) {
            double keep = d[j];
            d[j] = keep + EPS;
            double lp = inner_u(c, in, u);
            d[j] = keep - EPS;
            double lm = inner_u(c, in, u);
            d[j] = keep;
            double num = (lp - lm) / (2 * EPS);
            double e = fabs(nb_data(g)[j] - num) / fmax(1.0, fabs(num));
            if (!(e <= worst)) {
                worst = e;
                worst_j = j;
            }
        }
        if (worst < GTOL) {
            check_passed_++;
        } else {
            check_failed_++;
            fprintf(stderr, "%s: d<u,f>/dx%d[%lld]: backward %.12g, finite difference err %g\n",
                    what, i, (long long)worst_j, nb_data(g)[worst_j], worst);
        }
    }
    free(u);
    nb_scope_end(mark);
}

/* ---- the case list ------------------------------------------------------- */
static void unary(int op, shp a, int gen, double p) { un(op, a, 0, false, p, gen); }

static void all_cases(void) {
    /* element-wise binary ops, broadcasting included */
    const shp pairs[][2] = {
        {S(1, 3), S(1, 3)},       {S(2, 3, 1), S(2, 3, 1)}, {S(0), S(2, 2, 3)},
        {S(2, 2, 3), S(0)},       {S(0), S(0)},             {S(2, 1, 4), S(2, 3, 1)},
        {S(3, 2, 3, 4), S(2, 3, 1)}, {S(1, 4), S(3, 2, 3, 4)}, {S(3, 2, 1, 4), S(3, 1, 3, 1)},
        {S(2, 5, 1), S(1, 1)},
    };
    const int bops[] = {K_ADD, K_SUB, K_PROD, K_DIV, K_MAXIMUM};
    for (size_t o = 0; o < sizeof bops / sizeof *bops; o++)
        for (size_t k = 0; k < sizeof pairs / sizeof *pairs; k++)
            bin(bops[o], pairs[k][0], pairs[k][1], G_NORMAL, bops[o] == K_DIV ? G_AWAY0 : G_NORMAL);

    /* element-wise unary ops */
    const shp ushapes[] = {S(0), S(1, 5), S(2, 3, 1), S(3, 2, 3, 4)};
    for (size_t k = 0; k < sizeof ushapes / sizeof *ushapes; k++) {
        shp s = ushapes[k];
        unary(K_NEG, s, G_NORMAL, 0);
        unary(K_SIN, s, G_NORMAL, 0);
        unary(K_COS, s, G_NORMAL, 0);
        unary(K_EXP, s, G_NORMAL, 0);
        unary(K_LOG, s, G_POSITIVE, 0);
        unary(K_SQRT, s, G_POSITIVE, 0);
        unary(K_SQUARE, s, G_NORMAL, 0);
        unary(K_RELU, s, G_AWAY0, 0);
        unary(K_SIGMOID, s, G_NORMAL, 0);
        unary(K_TANH, s, G_NORMAL, 0);
        const double scales[] = {2.5, -1.0, 0.0};
        for (int i = 0; i < 3; i++) unary(K_SCALE, s, G_NORMAL, scales[i]);
        const double ipow[] = {1.0, 2.0, 3.0, 4.0};
        for (int i = 0; i < 4; i++) unary(K_POW, s, G_NORMAL, ipow[i]);
        const double ppow[] = {0.0, 0.5, -1.0, -2.5, 1.7, 3.0};
        for (int i = 0; i < 6; i++) unary(K_POW, s, G_POSITIVE, ppow[i]);
    }

    /* reductions of all elements */
    const shp rshapes[] = {S(0), S(1, 5), S(2, 3, 1), S(2, 1, 4), S(3, 2, 3, 4)};
    for (size_t k = 0; k < sizeof rshapes / sizeof *rshapes; k++)
        whole_reductions(rshapes[k], G_NORMAL);
    /* reductions along every axis, with and without keepdims; softmax along each axis */
    const shp ashapes[] = {S(1, 5), S(2, 3, 4), S(2, 4, 1), S(3, 2, 3, 4)};
    for (size_t k = 0; k < sizeof ashapes / sizeof *ashapes; k++) axis_sweep(ashapes[k], G_NORMAL);

    /* matmul in all its forms */
    const shp mm[][2] = {
        {S(2, 3, 4), S(2, 4, 5)},       /* 2-D @ 2-D       */
        {S(1, 4), S(2, 4, 5)},          /* 1-D @ 2-D       */
        {S(2, 3, 4), S(1, 4)},          /* 2-D @ 1-D       */
        {S(1, 4), S(1, 4)},             /* 1-D @ 1-D -> () */
        {S(3, 2, 3, 4), S(2, 4, 5)},    /* batched         */
        {S(2, 3, 4), S(3, 2, 4, 5)},    /* batch on the right */
        {S(4, 2, 1, 3, 4), S(3, 3, 4, 2)}, /* broadcast batch */
        {S(3, 2, 3, 4), S(3, 2, 4, 5)}, /* same batch      */
        {S(3, 2, 3, 4), S(1, 4)},       /* batched @ 1-D   */
        {S(1, 4), S(3, 2, 4, 5)},       /* 1-D @ batched   */
        {S(2, 1, 4), S(2, 4, 1)},       /* (1,4)@(4,1)     */
        {S(2, 3, 1), S(2, 1, 3)},       /* outer product   */
    };
    for (size_t k = 0; k < sizeof mm / sizeof *mm; k++)
        bin(K_MATMUL, mm[k][0], mm[k][1], G_NORMAL, G_NORMAL);

    /* shape ops */
    const shp tshapes[] = {S(0), S(1, 5), S(2, 3, 4), S(3, 2, 3, 4), S(2, 1, 4)};
    for (size_t k = 0; k < sizeof tshapes / sizeof *tshapes; k++)
        tgt(K_TRANSPOSE, tshapes[k], S(0), G_NORMAL);
    tgt(K_RESHAPE, S(3, 2, 3, 4), S(2, 4, 6), G_NORMAL);
    tgt(K_RESHAPE, S(3, 2, 3, 4), S(1, -1), G_NORMAL);
    tgt(K_RESHAPE, S(3, 2, 3, 4), S(2, 3, -1), G_NORMAL);
    tgt(K_RESHAPE, S(3, 2, 3, 4), S(4, 2, -1, 3, 1), G_NORMAL);
    tgt(K_RESHAPE, S(1, 5), S(2, 5, 1), G_NORMAL);
    tgt(K_RESHAPE, S(0), S(2, 1, 1), G_NORMAL);
    tgt(K_RESHAPE, S(2, 1, 1), S(0), G_NORMAL);
    tgt(K_RESHAPE, S(2, 4, 6), S(3, 2, 3, 4), G_NORMAL);
    tgt(K_BROADCAST_TO, S(2, 3, 1), S(3, 2, 3, 4), G_NORMAL);
    tgt(K_BROADCAST_TO, S(0), S(2, 2, 3), G_NORMAL);
    tgt(K_BROADCAST_TO, S(1, 4), S(2, 3, 4), G_NORMAL);
    tgt(K_BROADCAST_TO, S(2, 1, 4), S(2, 1, 4), G_NORMAL);
    tgt(K_BROADCAST_TO, S(3, 2, 1, 4), S(4, 5, 2, 3, 4), G_NORMAL);
    tgt(K_SUM_TO, S(3, 2, 3, 4), S(2, 3, 1), G_NORMAL);
    tgt(K_SUM_TO, S(3, 2, 3, 4), S(0), G_NORMAL);
    tgt(K_SUM_TO, S(2, 3, 4), S(1, 4), G_NORMAL);
    tgt(K_SUM_TO, S(2, 3, 4), S(2, 1, 4), G_NORMAL);
    tgt(K_SUM_TO, S(2, 3, 4), S(2, 3, 4), G_NORMAL);
    tgt(K_SUM_TO, S(3, 2, 3, 4), S(3, 2, 1, 1), G_NORMAL);
}

/* ---- softmax / log_softmax at +-1000: finite values and gradients -------- */
static bool all_finite(const nb_tensor *t) {
    if (!t) return false;
    for (int64_t i = 0; i < nb_numel(t); i++)
        if (!isfinite(nb_data(t)[i])) return false;
    return true;
}
static void extreme_softmax(void) {
    size_t mark = nb_scope_begin();
    const double xv[] = {1000.0, -1000.0, 999.0, 0.5};
    double l1e = log1p(exp(-1.0)); /* log(e^1000 + e^999) - 1000 */
    const double ws[] = {1.0 / (1.0 + exp(-1.0)), 0.0, exp(-1.0) / (1.0 + exp(-1.0)), 0.0};
    const double wl[] = {-l1e, -2000.0 - l1e, -1.0 - l1e, 0.5 - 1000.0 - l1e};
    for (int which = 0; which < 2; which++) {
        nb_tensor *x = nb_vector(xv, 4);
        nb_tensor *y = which ? nb_log_softmax(x, 0) : nb_softmax(x, 0);
        CHECK(all_finite(y));
        if (!y) continue;
        for (int i = 0; i < 4; i++) CHECK_NEAR(nb_data(y)[i], which ? wl[i] : ws[i], 1e-12);
        const double sv[] = {0.3, -1.0, 2.0, 0.7};
        CHECK(nb_backward(y, nb_vector(sv, 4)) == 0);
        CHECK(all_finite(nb_grad(x)));
        /* analytic: softmax: s (v - <s,v>); log_softmax: v - s sum(v) */
        double sdot = 0, vsum = 0;
        for (int i = 0; i < 4; i++) {
            sdot += ws[i] * sv[i];
            vsum += sv[i];
        }
        if (nb_grad(x))
            for (int i = 0; i < 4; i++)
                CHECK_NEAR(nb_data(nb_grad(x))[i],
                           which ? sv[i] - ws[i] * vsum : ws[i] * (sv[i] - sdot), 1e-12);
    }
    /* 2-D, both axes, huge values of both signs */
    const double mv[] = {1000, -1000, 500, -1000, 1000, -500};
    for (int ax = 0; ax < 2; ax++) {
        for (int which = 0; which < 2; which++) {
            nb_tensor *m = nb_matrix(mv, 2, 3);
            nb_tensor *y = which ? nb_log_softmax(m, ax) : nb_softmax(m, ax);
            CHECK(all_finite(y));
            nb_tensor *l = nb_sum(nb_prod(y, y));
            CHECK(nb_backward(l, NULL) == 0);
            CHECK(all_finite(nb_grad(m)));
        }
    }
    nb_scope_end(mark);
}

/* nb_gradcheck must catch a wrong gradient: f(x) = x * detach(x) has true
   derivative 2x but backward sees only x. */
static nb_tensor *wrong_grad(int n, nb_tensor *const *in, void *ctx) {
    return nb_prod(in[0], nb_detach(in[0]));
}
static nb_tensor *fails(int n, nb_tensor *const *in, void *ctx) { return NULL; }
static void gradcheck_can_fail(void) {
    size_t mark = nb_scope_begin();
    const double xv[] = {1.0, -2.0, 3.0};
    nb_tensor *x = nb_vector(xv, 3);
    double err = 0;
    nb_clear_error();
    int rc = nb_gradcheck(wrong_grad, 1, &x, NULL, EPS, &err);
    CHECK(rc == 1 && err > 0.1); /* the check ran and failed */
    CHECK(nb_last_error() && strstr(nb_last_error(), "gradcheck: input 1, element") == nb_last_error());
    /* a function that fails: -1 with a message, even when f set none */
    nb_clear_error();
    CHECK(nb_gradcheck(fails, 1, &x, NULL, EPS, &err) == -1);
    CHECK(nb_last_error() != NULL);
    nb_clear_error();
    CHECK(nb_gradgradcheck(fails, 1, &x, NULL, EPS, &err) == -1);
    CHECK(nb_last_error() != NULL);
    nb_clear_error();
    nb_scope_end(mark);
}

/* zero-size tensors go through ops and backward like numpy's */
static void zero_size(void) {
    size_t mark = nb_scope_begin();
    nb_tensor *e = nb_zeros(2, (const int64_t[]){0, 3});
    nb_tensor *r = nb_ones(2, (const int64_t[]){1, 3});
    nb_tensor *s = nb_add(e, r);
    CHECK(s && nb_ndim(s) == 2 && nb_shape(s)[0] == 0 && nb_shape(s)[1] == 3);
    nb_tensor *t = nb_sum(nb_exp(s));
    CHECK(t && nb_item(t) == 0.0);
    CHECK(t && nb_backward(t, NULL) == 0);
    /* r gets a zero gradient of its own shape; e an empty one */
    CHECK(nb_grad(r) && nb_numel(nb_grad(r)) == 3 && nb_data(nb_grad(r))[0] == 0.0);
    CHECK(nb_grad(e) && nb_numel(nb_grad(e)) == 0);
    nb_tensor *sa = nb_sum_axis(e, 0, false);
    CHECK(sa && nb_numel(sa) == 3 && nb_data(sa)[2] == 0.0);
    /* (2, 0) @ (0, 3) is a (2, 3) of zeros */
    nb_tensor *a = nb_zeros(2, (const int64_t[]){2, 0}), *b = nb_zeros(2, (const int64_t[]){0, 3});
    nb_tensor *m = nb_matmul(a, b);
    CHECK(m && nb_numel(m) == 6 && nb_data(m)[5] == 0.0);
    CHECK(m && nb_backward(m, NULL) == 0);
    nb_clear_error();
    nb_scope_end(mark);
}

/* integer powers at 0 (and elsewhere), by every path: d/dx x^p = p x^(p-1),
   which is 0 everywhere for p = 0 (x^0 is the constant 1, numpy's 0**0 = 1)
   and 1 at x = 0 for p = 1 */
static void pow_at_zero(void) {
    size_t mark = nb_scope_begin();
    const double xv[] = {0.0, -1.5, 2.0};
    for (int p = 0; p <= 3; p++) {
        double want[3];
        for (int i = 0; i < 3; i++)
            want[i] = p == 0 ? 0.0 : p == 1 ? 1.0 : p * pow(xv[i], p - 1);
        for (int path = 0; path < 4; path++) {
            nb_tensor *x = nb_vector(xv, 3), *g = NULL;
            nb_tensor *y = nb_pow(path == 3 ? nb_dual(x, nb_ones(1, (const int64_t[]){3})) : x,
                                  (double)p);
            int rc = 0;
            if (path == 3) {
                g = nb_tangent(y); /* forward mode along ones: f'(x) */
            } else if (path == 0) {
                rc = nb_backward(y, NULL);
                g = nb_grad(x);
            } else {
                rc = nb_autograd(1, &y, NULL, 1, &x, &g, path == 2);
            }
            CHECK(rc == 0 && g != NULL);
            for (int i = 0; i < 3 && g; i++) {
                if (nb_data(y)[i] != pow(xv[i], p)) {
                    check_failed_++;
                    fprintf(stderr, "pow(%g, %d) = %g\n", xv[i], p, nb_data(y)[i]);
                }
                if (nb_data(g)[i] == want[i]) check_passed_++;
                else {
                    check_failed_++;
                    fprintf(stderr, "d/dx pow(x, %d) at x = %g by %s: %g, expected %g\n", p,
                            xv[i], path == 0 ? "nb_backward" : path == 1 ? "nb_autograd"
                                                   : path == 2 ? "nb_autograd(create_graph)"
                                                               : "nb_dual",
                            nb_data(g)[i], want[i]);
                }
            }
        }
    }
    nb_scope_end(mark);
}

/* maximum(a, a) ties everywhere: the halves add back up to one */
static void maximum_self(void) {
    size_t mark = nb_scope_begin();
    const double av[] = {-1, 0, 2};
    nb_tensor *a = nb_vector(av, 3);
    CHECK(nb_backward(nb_maximum(a, a), NULL) == 0);
    for (int i = 0; i < 3; i++) CHECK(nb_grad(a) && nb_data(nb_grad(a))[i] == 1.0);
    nb_scope_end(mark);
}

/* large tensors on several threads give the results of one thread */
static void threaded(void) {
    size_t mark = nb_scope_begin();
    const int64_t big[] = {300, 1000}, col[] = {300, 1};
    nb_tensor *x = nb_randn(2, big, 5), *c = nb_randn(2, col, 6);
    double res[2][6];
    double *grads[2] = {NULL, NULL};
    for (int run = 0; run < 2; run++) {
        int prev = nb_set_num_threads(run ? 4 : 1);
        (void)prev;
        nb_zero_grad(x);
        nb_zero_grad(c);
        nb_tensor *y = nb_tanh(nb_prod(nb_add(x, c), nb_sigmoid(x)));  /* (300, 1000) */
        nb_tensor *sm = nb_softmax(y, 1);
        nb_tensor *l = nb_add(nb_sum(nb_prod(sm, x)), nb_mean(nb_max_axis(y, 0, false)));
        nb_tensor *l2 = nb_add(l, nb_sum(nb_sum_axis(nb_exp(y), 1, true)));
        CHECK(l2 && nb_backward(l2, NULL) == 0);
        res[run][0] = l2 ? nb_item(l2) : NAN;
        res[run][1] = nb_item(nb_sum(y));
        res[run][2] = nb_item(nb_max(y));
        res[run][3] = nb_item(nb_mean(sm));
        res[run][4] = nb_grad(c) ? nb_data(nb_grad(c))[7] : NAN;
        res[run][5] = nb_item(nb_sum(nb_sum_to(y, 2, col)));
        grads[run] = malloc(sizeof(double) * 300000);
        if (nb_grad(x)) memcpy(grads[run], nb_data(nb_grad(x)), sizeof(double) * 300000);
    }
    nb_set_num_threads(1);
    for (int k = 0; k < 6; k++) CHECK_NEAR(res[1][k], res[0][k], 1e-9 * fmax(1.0, fabs(res[0][k])));
    double worst = 0;
    for (int i = 0; i < 300000; i++) worst = fmax(worst, fabs(grads[0][i] - grads[1][i]));
    CHECK(worst < 1e-12);
    free(grads[0]);
    free(grads[1]);
    nb_scope_end(mark);
}

int main(void) {
    size_t mark = nb_scope_begin();
    all_cases();
    extreme_softmax();
    gradcheck_can_fail();
    zero_size();
    maximum_self();
    pow_at_zero();
    threaded();
    for (int k = 0; k < K_NSINGLE; k++) {
        if (cases_run[k] == 0) fprintf(stderr, "op %s has no case\n", KNAME[k]);
        CHECK(cases_run[k] > 0);
    }
    nb_scope_end(mark);
    nb_cleanup();
    return check_report("ops");
}
