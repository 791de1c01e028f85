/*
 * numpy's shape and indexing ops: nb_permute, nb_expand_dims, nb_squeeze,
 * nb_slice (NB_NONE), nb_take, nb_concat, nb_stack.
 *
 *   values       against references computed here by index arithmetic, and
 *                slice bounds against a table printed by CPython
 *                (list(range(n))[slice(start, stop, step)]);
 *   gradients    nb_gradcheck and nb_gradgradcheck (finite differences) at
 *                0-d (where numpy allows it), 1-d, broadcast-involving and
 *                4-d shapes; take's repeated indices against the analytic
 *                count; concat and stack past 64 inputs;
 *   forward      <u, J v> by nb_dual against <J^T u, v> by nb_autograd, and
 *                J v against the op applied to v (the ops are linear);
 *   errors       messages start with the op's name and show the shapes;
 *   NaN / inf    pass through unchanged;
 *   memory       every allocation of a scenario fails in turn
 *                (nb__fail_alloc_after): NULL / -1 with "out of memory",
 *                nothing leaks, and a run that completes is exact.
 */
#include "internal.h"

#include "check.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SH(...) ((const int64_t[]){__VA_ARGS__})

static uint64_t seed_ = 777;
static nb_tensor *rnd(int nd, const int64_t *s) { return nb_randn(nd, s, seed_++); }

/* flat index -> multi-index, row-major */
static void unflat(int64_t f, int nd, const int64_t *s, int64_t *ix) {
    for (int d = nd - 1; d >= 0; d--) {
        ix[d] = s[d] ? f % s[d] : 0;
        f = s[d] ? f / s[d] : 0;
    }
}
static int64_t flat(int nd, const int64_t *s, const int64_t *ix) {
    int64_t f = 0;
    for (int d = 0; d < nd; d++) f = f * s[d] + ix[d];
    return f;
}
static bool has_shape(const nb_tensor *t, int nd, const int64_t *s) {
    if (!t || nb_ndim(t) != nd) return false;
    for (int i = 0; i < nd; i++)
        if (nb_shape(t)[i] != s[i]) return false;
    return true;
}
static bool err_has(const char *a, const char *b) {
    const char *m = nb_last_error();
    bool ok = m && (!a || strncmp(m, a, strlen(a)) == 0) && (!b || strstr(m, b));
    if (!ok) fprintf(stderr, "  message: %s (wanted prefix '%s' containing '%s')\n", m ? m : "(none)",
                     a ? a : "", b ? b : "");
    nb_clear_error();
    return ok;
}

/* the reference gather: out has a's shape with n along axis, out[.., k, ..] = a[.., rows[k], ..] */
static bool gather_matches(const nb_tensor *out, const nb_tensor *a, int axis, const int64_t *rows, int64_t n) {
    int nd = nb_ndim(a);
    int64_t s[NB_MAX_DIMS], ix[NB_MAX_DIMS];
    memcpy(s, nb_shape(a), (size_t)nd * sizeof *s);
    s[axis] = n;
    if (!has_shape(out, nd, s)) return false;
    for (int64_t f = 0; f < nb_numel(out); f++) {
        unflat(f, nd, s, ix);
        ix[axis] = rows[ix[axis]];
        if (nb_data(out)[f] != nb_data(a)[flat(nd, nb_shape(a), ix)]) return false;
    }
    return true;
}

/* ---- Python's slice semantics -------------------------------------------------------- */
/* The indices list(range(size))[start:stop:step] picks, from Python's rules:
   a negative bound counts from the end, then bounds are clamped to the
   range a walk in that direction can reach; None is the walk's own end. */
static int64_t ref_slice(int64_t size, int64_t start, int64_t stop, int64_t step, int64_t *out) {
    if (step == NB_NONE) step = 1;
    int64_t lo = step > 0 ? 0 : -1, hi = step > 0 ? size : size - 1;
    int64_t S = start == NB_NONE ? (step > 0 ? lo : hi) : (start < 0 ? start + size : start);
    int64_t E = stop == NB_NONE ? (step > 0 ? hi : lo) : (stop < 0 ? stop + size : stop);
    S = S < lo ? lo : S > hi ? hi : S;
    E = E < lo ? lo : E > hi ? hi : E;
    int64_t n = 0;
    for (int64_t i = S; step > 0 ? i < E : i > E; i += step) out[n++] = i;
    return n;
}

typedef struct {
    int64_t size, start, stop, step, n, idx[8];
} pycase;
/* printed by CPython 3.11: list(range(size))[slice(start, stop, step)] */
static const pycase PY[] = {
    {5, NB_NONE, NB_NONE, NB_NONE, 5, {0, 1, 2, 3, 4}},
    {5, 1, -1, 2, 2, {1, 3}},
    {5, -1, NB_NONE, -1, 5, {4, 3, 2, 1, 0}},
    {5, NB_NONE, NB_NONE, -2, 3, {4, 2, 0}},
    {5, 10, -10, -1, 5, {4, 3, 2, 1, 0}},
    {5, -10, 10, 1, 5, {0, 1, 2, 3, 4}},
    {5, -10, 10, 3, 2, {0, 3}},
    {5, 3, 1, 1, 0, {0}},
    {5, 3, 1, -1, 2, {3, 2}},
    {5, -2, -7, -2, 2, {3, 1}},
    {5, 0, 0, 1, 0, {0}},
    {5, 4, NB_NONE, -3, 2, {4, 1}},
    {5, -100, -99, 1, 0, {0}},
    {5, 100, 99, -1, 0, {0}},
    {5, NB_NONE, -6, -1, 5, {4, 3, 2, 1, 0}},
    {5, NB_NONE, -5, -1, 4, {4, 3, 2, 1}},
    {0, NB_NONE, NB_NONE, 1, 0, {0}},
    {0, NB_NONE, NB_NONE, -1, 0, {0}},
    {1, -1, NB_NONE, -1, 1, {0}},
    {7, 6, -8, -3, 3, {6, 3, 0}},
    {7, -8, 6, 4, 2, {0, 4}},
    {7, 2, NB_NONE, NB_NONE, 5, {2, 3, 4, 5, 6}},
    {3, -4, NB_NONE, -1, 0, {0}},
    {3, NB_NONE, -4, -1, 3, {2, 1, 0}},
    {5, INT64_MAX, INT64_MIN + 1, -1, 5, {4, 3, 2, 1, 0}},
    {5, INT64_MIN + 1, INT64_MAX, INT64_MAX, 1, {0}},
};

static void test_slice_values(void) {
    size_t mark = nb_scope_begin();
    /* the CPython table, on a 1-d tensor and along the middle axis of a 3-d one */
    for (size_t c = 0; c < sizeof PY / sizeof *PY; c++) {
        const pycase *p = &PY[c];
        int64_t got[64];
        CHECK(ref_slice(p->size, p->start, p->stop, p->step, got) == p->n);
        for (int64_t k = 0; k < p->n; k++) CHECK(got[k] == p->idx[k]);
        nb_tensor *a = rnd(1, SH(p->size)), *b = rnd(3, SH(2, p->size, 3));
        nb_tensor *y = nb_slice(a, 0, p->start, p->stop, p->step);
        nb_tensor *z = nb_slice(b, -2, p->start, p->stop, p->step);
        CHECK(gather_matches(y, a, 0, p->idx, p->n));
        CHECK(gather_matches(z, b, 1, p->idx, p->n));
        if (!gather_matches(y, a, 0, p->idx, p->n))
            fprintf(stderr, "  slice case %zu: size %lld\n", c, (long long)p->size);
    }
    /* a sweep of every bound and step on sizes 0..6, every axis of a 3-d tensor */
    const int64_t bounds[] = {NB_NONE, -9, -7, -6, -5, -2, -1, 0, 1, 2, 4, 5, 6, 7, 9, INT64_MAX};
    const int64_t steps[] = {NB_NONE, -7, -3, -2, -1, 1, 2, 3, 7};
    int bad = 0;
    for (int64_t size = 0; size <= 6; size++)
        for (int axis = 0; axis < 3; axis++) {
            size_t m2 = nb_scope_begin();
            int64_t s[3] = {2, 3, 2};
            s[axis] = size;
            nb_tensor *a = rnd(3, s);
            for (size_t i = 0; i < sizeof bounds / sizeof *bounds; i++)
                for (size_t j = 0; j < sizeof bounds / sizeof *bounds; j++)
                    for (size_t k = 0; k < sizeof steps / sizeof *steps; k++) {
                        int64_t rows[16];
                        int64_t n = ref_slice(size, bounds[i], bounds[j], steps[k], rows);
                        size_t m3 = nb_scope_begin();
                        nb_tensor *y = nb_slice(a, axis - 3 * (int)(k % 2), bounds[i], bounds[j], steps[k]);
                        if (!gather_matches(y, a, axis, rows, n)) bad++;
                        nb_scope_end(m3);
                    }
            nb_scope_end(m2);
        }
    CHECK(bad == 0);
    /* 4-d, unit and negative steps on the first and last axes */
    nb_tensor *a = rnd(4, SH(3, 4, 5, 6));
    CHECK(gather_matches(nb_slice(a, 0, 1, NB_NONE, 1), a, 0, SH(1, 2), 2));
    CHECK(gather_matches(nb_slice(a, -1, -2, 0, -2), a, 3, SH(4, 2), 2));
    CHECK(gather_matches(nb_slice(a, 2, NB_NONE, NB_NONE, -1), a, 2, SH(4, 3, 2, 1, 0), 5));
    nb_scope_end(mark);
}

/* ---- take ------------------------------------------------------------------------------ */
static void test_take_values(void) {
    size_t mark = nb_scope_begin();
    nb_tensor *a = rnd(4, SH(3, 4, 2, 5));
    const int64_t idx[] = {0, -1, 2, 2, -4, 3, 0};
    const int64_t norm[] = {0, 3, 2, 2, 0, 3, 0};
    CHECK(gather_matches(nb_take(a, idx, 7, 1), a, 1, norm, 7));
    CHECK(gather_matches(nb_take(a, idx, 7, -3), a, 1, norm, 7));
    const int64_t i3[] = {4, -5, 0, -1};
    CHECK(gather_matches(nb_take(a, i3, 4, -1), a, 3, SH(4, 0, 0, 4), 4));
    /* no indices: an empty axis */
    CHECK(has_shape(nb_take(a, NULL, 0, 0), 4, SH(0, 4, 2, 5)));
    nb_tensor *v = rnd(1, SH(6));
    CHECK(gather_matches(nb_take(v, SH(5, -6, 1), 3, 0), v, 0, SH(5, 0, 1), 3));
    /* the gradient of a repeated index accumulates: d sum(take(x, idx)) / dx = counts */
    nb_tensor *x = nb_vector((const double[]){1, 2, 3, 4}, 4);
    nb_tensor *y = nb_sum(nb_take(x, SH(0, 2, 2, -1, 2), 5, 0));
    CHECK(y && nb_backward(y, NULL) == 0);
    const double counts[] = {1, 0, 3, 1};
    for (int i = 0; i < 4; i++) CHECK(nb_grad(x) && nb_data(nb_grad(x))[i] == counts[i]);
    nb_scope_end(mark);
}

/* ---- permute, expand_dims, squeeze ----------------------------------------------------- */
static bool permute_matches(const nb_tensor *out, const nb_tensor *a, const int *axes) {
    int nd = nb_ndim(a);
    int64_t s[NB_MAX_DIMS], ix[NB_MAX_DIMS], jx[NB_MAX_DIMS];
    int ax[NB_MAX_DIMS];
    for (int k = 0; k < nd; k++) {
        ax[k] = axes ? (axes[k] < 0 ? axes[k] + nd : axes[k]) : nd - 1 - k;
        s[k] = nb_shape(a)[ax[k]];
    }
    if (!has_shape(out, nd, s)) return false;
    for (int64_t f = 0; f < nb_numel(out); f++) {
        unflat(f, nd, s, ix);
        for (int k = 0; k < nd; k++) jx[ax[k]] = ix[k];
        if (nb_data(out)[f] != nb_data(a)[flat(nd, nb_shape(a), jx)]) return false;
    }
    return true;
}

static void test_permute_values(void) {
    size_t mark = nb_scope_begin();
    nb_tensor *a4 = rnd(4, SH(2, 3, 4, 5));
    const int p4[][4] = {{0, 1, 2, 3}, {3, 2, 1, 0}, {2, -4, 3, 1}, {-1, 0, -2, 1}, {1, 0, 2, 3}, {0, 1, 3, 2}};
    for (int i = 0; i < 6; i++) CHECK(permute_matches(nb_permute(a4, p4[i]), a4, p4[i]));
    CHECK(permute_matches(nb_permute(a4, NULL), a4, NULL));
    nb_tensor *a8 = rnd(8, SH(2, 1, 3, 1, 2, 2, 1, 3));
    const int p8[8] = {7, 0, 6, 1, 5, 2, 4, 3};
    CHECK(permute_matches(nb_permute(a8, p8), a8, p8));
    nb_tensor *s0 = nb_scalar(2.5);
    CHECK(has_shape(nb_permute(s0, NULL), 0, NULL) && nb_item(nb_permute(s0, NULL)) == 2.5);
    nb_tensor *v = rnd(1, SH(4));
    CHECK(permute_matches(nb_permute(v, (const int[]){-1}), v, (const int[]){0}));
    nb_tensor *e = rnd(3, SH(2, 0, 3));
    CHECK(has_shape(nb_permute(e, (const int[]){2, 0, 1}), 3, SH(3, 2, 0)));

    /* expand_dims at every axis, negative ones counting in the result */
    nb_tensor *m = rnd(2, SH(2, 3));
    const int64_t want[3][3] = {{1, 2, 3}, {2, 1, 3}, {2, 3, 1}};
    for (int ax = -3; ax < 3; ax++) {
        nb_tensor *y = nb_expand_dims(m, ax);
        int k = ax < 0 ? ax + 3 : ax;
        CHECK(has_shape(y, 3, want[k]) && memcmp(nb_data(y), nb_data(m), 6 * sizeof(double)) == 0);
        nb_tensor *z = nb_squeeze(y, ax);
        CHECK(has_shape(z, 2, SH(2, 3)) && memcmp(nb_data(z), nb_data(m), 6 * sizeof(double)) == 0);
    }
    CHECK(has_shape(nb_expand_dims(s0, 0), 1, SH(1)) && has_shape(nb_expand_dims(s0, -1), 1, SH(1)));
    CHECK(has_shape(nb_squeeze(nb_expand_dims(s0, 0), 0), 0, NULL));
    nb_scope_end(mark);
}

/* ---- concat and stack ------------------------------------------------------------------- */
/* the reference concat: element f of out comes from the input whose rows along axis hold it */
static bool concat_matches(const nb_tensor *out, int n, nb_tensor *const *ts, int axis) {
    int nd = nb_ndim(ts[0]);
    int64_t s[NB_MAX_DIMS], ix[NB_MAX_DIMS];
    memcpy(s, nb_shape(ts[0]), (size_t)nd * sizeof *s);
    s[axis] = 0;
    for (int i = 0; i < n; i++) s[axis] += nb_shape(ts[i])[axis];
    if (!has_shape(out, nd, s)) return false;
    for (int64_t f = 0; f < nb_numel(out); f++) {
        unflat(f, nd, s, ix);
        int i = 0;
        while (ix[axis] >= nb_shape(ts[i])[axis]) ix[axis] -= nb_shape(ts[i++])[axis];
        if (nb_data(out)[f] != nb_data(ts[i])[flat(nd, nb_shape(ts[i]), ix)]) return false;
    }
    return true;
}
/* the reference stack: out[.., i, ..] = ts[i][..] */
static bool stack_matches(const nb_tensor *out, int n, nb_tensor *const *ts, int axis) {
    int nd = nb_ndim(ts[0]);
    int64_t s[NB_MAX_DIMS], ix[NB_MAX_DIMS], jx[NB_MAX_DIMS];
    for (int d = 0, k = 0; d <= nd; d++) s[d] = d == axis ? n : nb_shape(ts[0])[k++];
    if (!has_shape(out, nd + 1, s)) return false;
    for (int64_t f = 0; f < nb_numel(out); f++) {
        unflat(f, nd + 1, s, ix);
        for (int d = 0, k = 0; d <= nd; d++)
            if (d != axis) jx[k++] = ix[d];
        if (nb_data(out)[f] != nb_data(ts[ix[axis]])[flat(nd, nb_shape(ts[0]), jx)]) return false;
    }
    return true;
}

static void test_concat_stack_values(void) {
    size_t mark = nb_scope_begin();
    nb_tensor *c4[3] = {rnd(4, SH(2, 3, 1, 2)), rnd(4, SH(2, 3, 4, 2)), rnd(4, SH(2, 3, 0, 2))};
    CHECK(concat_matches(nb_concat(3, c4, 2), 3, c4, 2));
    CHECK(concat_matches(nb_concat(3, c4, -2), 3, c4, 2));
    nb_tensor *c0[2] = {rnd(2, SH(1, 3)), rnd(2, SH(2, 3))};
    CHECK(concat_matches(nb_concat(2, c0, -2), 2, c0, 0));
    CHECK(concat_matches(nb_concat(1, c0, 1), 1, c0, 1));
    /* past one node's 64 inputs: a tree, same values */
    enum { MANY = 200 };
    nb_tensor *many[MANY];
    for (int i = 0; i < MANY; i++) many[i] = rnd(2, SH(i % 3, 2));
    CHECK(concat_matches(nb_concat(MANY, many, 0), MANY, many, 0));
    for (int i = 0; i < MANY; i++) many[i] = rnd(1, SH(3));
    CHECK(concat_matches(nb_concat(MANY, many, -1), MANY, many, 0));
    CHECK(stack_matches(nb_stack(MANY, many, 1), MANY, many, 1));
    CHECK(stack_matches(nb_stack(MANY, many, -2), MANY, many, 0));
    nb_tensor *s4[3] = {rnd(3, SH(2, 3, 4)), rnd(3, SH(2, 3, 4)), rnd(3, SH(2, 3, 4))};
    for (int ax = -4; ax < 4; ax++) CHECK(stack_matches(nb_stack(3, s4, ax), 3, s4, ax < 0 ? ax + 4 : ax));
    nb_tensor *sc[3] = {nb_scalar(1), nb_scalar(2), nb_scalar(3)};
    nb_tensor *st = nb_stack(3, sc, -1);
    CHECK(has_shape(st, 1, SH(3)) && nb_data(st)[0] == 1 && nb_data(st)[2] == 3);
    /* more inputs than a node keeps inline: nb_parent finds them in the side record */
    nb_tensor *five[5] = {rnd(1, SH(1)), rnd(1, SH(2)), rnd(1, SH(3)), rnd(1, SH(1)), rnd(1, SH(2))};
    nb_tensor *c5 = nb_concat(5, five, 0);
    CHECK(c5 && nb_num_parents(c5) == 5);
    for (int i = 0; c5 && i < 5; i++) CHECK(nb_parent(c5, i) == five[i]);
    CHECK(nb_parent(c5, 5) == NULL);
    /* inputs that do not require grad mix with those that do */
    nb_set_requires_grad(c0[0], false);
    nb_tensor *y = nb_concat(2, c0, 0);
    CHECK(y && nb_requires_grad(y));
    CHECK(nb_backward(nb_sum(y), NULL) == 0 && nb_grad(c0[0]) == NULL && nb_grad(c0[1]) != NULL);
    nb_scope_end(mark);
}

/* ---- gradients: nb_gradcheck / nb_gradgradcheck ------------------------------------------ */
enum gop { G_PERMUTE, G_EXPAND, G_SQUEEZE, G_SLICE, G_TAKE, G_CONCAT, G_STACK };
static const char *const GNAME[] = {"permute", "expand_dims", "squeeze", "slice", "take", "concat", "stack"};
typedef struct {
    enum gop op;
    int axis;
    int axes[NB_MAX_DIMS];
    int64_t start, stop, step;
    const int64_t *idx;
    int64_t n;
    bool bcast; /* the op's input is x0 * x1 (broadcast), so gradients are summed back */
    int rep;    /* concat / stack of rep inputs, cycling over the n given (past 64 nodes' inputs) */
} gcase;

static nb_tensor *apply_g(int n, nb_tensor *const *in, const gcase *c) {
    switch (c->op) {
    case G_PERMUTE: return nb_permute(in[0], c->axes[0] == 99 ? NULL : c->axes);
    case G_EXPAND: return nb_expand_dims(in[0], c->axis);
    case G_SQUEEZE: return nb_squeeze(in[0], c->axis);
    case G_SLICE: return nb_slice(in[0], c->axis, c->start, c->stop, c->step);
    case G_TAKE: return nb_take(in[0], c->idx, c->n, c->axis);
    case G_CONCAT:
    case G_STACK: {
        nb_tensor *r[4200];
        int m = c->rep ? c->rep : n;
        for (int i = 0; i < m; i++) r[i] = in[i % n];
        return c->op == G_CONCAT ? nb_concat(m, r, c->axis) : nb_stack(m, r, c->axis);
    }
    }
    return NULL;
}
/* op(x) squared, so that second derivatives flow through the op's rules */
static nb_tensor *gfun(int n, nb_tensor *const *in, void *ctx) {
    const gcase *c = ctx;
    nb_tensor *b[1];
    if (c->bcast) {
        b[0] = nb_prod(in[0], in[1]);
        in = b;
        n = 1;
    }
    nb_tensor *y = apply_g(n, in, c);
    return nb_prod(y, nb_sin(y));
}


typedef struct {
    int nd;
    int64_t s[NB_MAX_DIMS];
} shape_t;

static double dotp(const nb_tensor *a, const nb_tensor *b) {
    double s = 0;
    for (int64_t i = 0; i < nb_numel(a); i++) s += nb_data(a)[i] * nb_data(b)[i];
    return s;
}

/* the linear map of a case: the op itself, or the op of x0 * x1 */
static nb_tensor *lin(int n, nb_tensor *const *in, void *ctx) {
    const gcase *c = ctx;
    if (c->bcast) {
        nb_tensor *b[1] = {nb_prod(in[0], in[1])};
        return apply_g(1, b, c);
    }
    return apply_g(n, in, c);
}

static void grad_case(const gcase *c, int n, const shape_t *sh) {
    size_t mark = nb_scope_begin();
    nb_tensor *x[256], *v[256], *d[256];
    for (int i = 0; i < n; i++) x[i] = rnd(sh[i].nd, sh[i].s);
    double err = -1, err2 = -1;
    int rc = nb_gradcheck(gfun, n, x, (void *)c, 1e-6, &err);
    int rc2 = nb_gradgradcheck(gfun, n, x, (void *)c, 1e-5, &err2);
    bool ok = rc == 0 && err < 1e-6 && rc2 == 0 && err2 < 1e-5;
    CHECK(ok);
    if (!ok)
        fprintf(stderr, "  %s (case of %d inputs, axis %d): gradcheck rc %d err %g, gradgradcheck rc %d err %g: %s\n",
                GNAME[c->op], n, c->axis, rc, err, rc2, err2, nb_last_error() ? nb_last_error() : "");
    /* forward against reverse: <u, J v> = <J^T u, v>; J v = the op of v when linear */
    for (int i = 0; i < n; i++) {
        v[i] = rnd(sh[i].nd, sh[i].s);
        d[i] = nb_dual(x[i], v[i]);
    }
    nb_tensor *yd = lin(n, d, (void *)c), *y = lin(n, x, (void *)c);
    nb_tensor *t = yd ? nb_tangent(yd) : NULL;
    CHECK(t && y && nb_numel(t) == nb_numel(y));
    if (t && y) {
        nb_tensor *u = rnd(nb_ndim(y), nb_shape(y));
        nb_tensor *g[256];
        double vjp = NAN;
        if (nb_autograd(1, &y, &u, n, x, g, false) == 0) {
            vjp = 0;
            for (int i = 0; i < n; i++) vjp += dotp(g[i], v[i]);
        }
        double jvp = dotp(u, t);
        bool agree = fabs(jvp - vjp) <= 1e-10 * fmax(1, fabs(vjp));
        CHECK(agree);
        if (!agree) fprintf(stderr, "  %s: <u,Jv> %.15g (JVP) vs %.15g (VJP)\n", GNAME[c->op], jvp, vjp);
        if (!c->bcast) {
            nb_tensor *ov = apply_g(n, v, c);
            bool same = ov && nb_numel(ov) == nb_numel(t);
            for (int64_t i = 0; same && i < nb_numel(t); i++) same = nb_data(ov)[i] == nb_data(t)[i];
            CHECK(same);
        }
    }
    /* with only some inputs carrying a tangent (the others count as zero) */
    if (n > 1) {
        nb_tensor *mixed[256];
        for (int i = 0; i < n; i++) mixed[i] = i == 1 ? d[i] : x[i];
        nb_tensor *ym = lin(n, mixed, (void *)c);
        nb_tensor *tm = ym ? nb_tangent(ym) : NULL;
        CHECK(tm != NULL);
        if (tm && !c->bcast) {
            for (int i = 0; i < n; i++) mixed[i] = i == 1 ? v[i] : nb_zeros(sh[i].nd, sh[i].s);
            nb_tensor *ref = apply_g(n, mixed, c);
            bool same = ref && nb_numel(ref) == nb_numel(tm);
            for (int64_t i = 0; same && i < nb_numel(tm); i++) same = nb_data(ref)[i] == nb_data(tm)[i];
            CHECK(same);
        }
    }
    nb_scope_end(mark);
}

#define SHP(nd, ...) ((shape_t){nd, {__VA_ARGS__}})

static void test_gradients(void) {
    /* permute: 0-d, 1-d, 4-d, broadcast (3,1,2) * (4,1) -> (3,4,2) */
    grad_case(&(gcase){G_PERMUTE, .axes = {99}}, 1, (shape_t[]){SHP(0, 0)});
    grad_case(&(gcase){G_PERMUTE, .axes = {-1}}, 1, (shape_t[]){SHP(1, 5)});
    grad_case(&(gcase){G_PERMUTE, .axes = {2, 0, 3, 1}}, 1, (shape_t[]){SHP(4, 2, 3, 2, 3)});
    grad_case(&(gcase){G_PERMUTE, .axes = {1, -1, 0}, .bcast = true}, 2, (shape_t[]){SHP(3, 3, 1, 2), SHP(2, 4, 1)});
    /* expand_dims / squeeze */
    grad_case(&(gcase){G_EXPAND, .axis = 0}, 1, (shape_t[]){SHP(0, 0)});
    grad_case(&(gcase){G_EXPAND, .axis = -1}, 1, (shape_t[]){SHP(1, 4)});
    grad_case(&(gcase){G_EXPAND, .axis = 2}, 1, (shape_t[]){SHP(4, 2, 3, 2, 2)});
    grad_case(&(gcase){G_EXPAND, .axis = -2, .bcast = true}, 2, (shape_t[]){SHP(2, 3, 1), SHP(1, 4)});
    grad_case(&(gcase){G_SQUEEZE, .axis = 0}, 1, (shape_t[]){SHP(1, 1)});
    grad_case(&(gcase){G_SQUEEZE, .axis = -1}, 1, (shape_t[]){SHP(2, 4, 1)});
    grad_case(&(gcase){G_SQUEEZE, .axis = 1}, 1, (shape_t[]){SHP(4, 2, 1, 3, 2)});
    grad_case(&(gcase){G_SQUEEZE, .axis = 1, .bcast = true}, 2, (shape_t[]){SHP(3, 3, 1, 1), SHP(1, 4)});
    /* slice: unit, strided, negative steps; 1-d, 4-d, broadcast */
    grad_case(&(gcase){G_SLICE, .axis = 0, .start = 1, .stop = -1, .step = 2}, 1, (shape_t[]){SHP(1, 7)});
    grad_case(&(gcase){G_SLICE, .axis = 0, .start = NB_NONE, .stop = NB_NONE, .step = -1}, 1, (shape_t[]){SHP(1, 5)});
    grad_case(&(gcase){G_SLICE, .axis = 2, .start = 1, .stop = 3, .step = 1}, 1, (shape_t[]){SHP(4, 2, 2, 4, 3)});
    grad_case(&(gcase){G_SLICE, .axis = -1, .start = -1, .stop = NB_NONE, .step = -2}, 1, (shape_t[]){SHP(4, 2, 2, 2, 5)});
    grad_case(&(gcase){G_SLICE, .axis = 0, .start = NB_NONE, .stop = 100, .step = 3, .bcast = true}, 2,
              (shape_t[]){SHP(2, 5, 1), SHP(1, 3)});
    /* take: negative and repeated indices */
    static const int64_t ti[] = {2, -1, 0, 2, 2};
    grad_case(&(gcase){G_TAKE, .axis = 0, .idx = ti, .n = 5}, 1, (shape_t[]){SHP(1, 4)});
    grad_case(&(gcase){G_TAKE, .axis = -2, .idx = ti, .n = 5}, 1, (shape_t[]){SHP(4, 2, 3, 3, 2)});
    grad_case(&(gcase){G_TAKE, .axis = 1, .idx = ti, .n = 4, .bcast = true}, 2, (shape_t[]){SHP(2, 2, 1), SHP(1, 3)});
    /* concat / stack: 1-d, 4-d, negative axes, > 64 inputs */
    grad_case(&(gcase){G_CONCAT, .axis = 0}, 3, (shape_t[]){SHP(1, 2), SHP(1, 1), SHP(1, 3)});
    grad_case(&(gcase){G_CONCAT, .axis = -3}, 2, (shape_t[]){SHP(4, 2, 1, 2, 2), SHP(4, 2, 2, 2, 2)});
    grad_case(&(gcase){G_STACK, .axis = 0}, 3, (shape_t[]){SHP(0, 0), SHP(0, 0), SHP(0, 0)});
    grad_case(&(gcase){G_STACK, .axis = -1}, 2, (shape_t[]){SHP(1, 3), SHP(1, 3)});
    grad_case(&(gcase){G_STACK, .axis = 2}, 2, (shape_t[]){SHP(3, 2, 2, 2), SHP(3, 2, 2, 2)});
    /* 150 and 4100 inputs (trees of two and three levels), cycling over three tensors */
    grad_case(&(gcase){G_CONCAT, .axis = -1, .rep = 150}, 3, (shape_t[]){SHP(2, 2, 1), SHP(2, 2, 2), SHP(2, 2, 1)});
    grad_case(&(gcase){G_STACK, .axis = 1, .rep = 150}, 3, (shape_t[]){SHP(1, 2), SHP(1, 2), SHP(1, 2)});
    grad_case(&(gcase){G_STACK, .axis = 0, .rep = 4100}, 2, (shape_t[]){SHP(0, 0), SHP(0, 0)});
}

/* the gradient of each of many inputs is its own part of the seed */
static void test_many_inputs_gradients(void) {
    size_t mark = nb_scope_begin();
    enum { M = 131 };
    nb_tensor *xs[M];
    for (int i = 0; i < M; i++) xs[i] = rnd(2, SH(2, 1 + i % 3));
    nb_tensor *y = nb_concat(M, xs, 1);
    nb_tensor *w = y ? rnd(2, nb_shape(y)) : NULL;
    CHECK(w && nb_backward(y, w) == 0);
    int bad = 0;
    for (int i = 0, off = 0; w && i < M; off += 1 + i % 3, i++)
        for (int r = 0; r < 2; r++)
            for (int k = 0; k < 1 + i % 3; k++)
                if (!nb_grad(xs[i]) || nb_data(nb_grad(xs[i]))[r * (1 + i % 3) + k] !=
                                           nb_data(w)[r * nb_shape(y)[1] + off + k])
                    bad++;
    CHECK(bad == 0);
    nb_tensor *z = nb_stack(M, xs + 0, -1);
    CHECK(z == NULL); /* unequal shapes */
    nb_clear_error();
    for (int i = 0; i < M; i++) xs[i] = rnd(1, SH(3));
    z = nb_stack(M, xs, 0);
    w = z ? rnd(2, nb_shape(z)) : NULL;
    CHECK(w && nb_backward(z, w) == 0);
    bad = 0;
    for (int i = 0; w && i < M; i++)
        for (int k = 0; k < 3; k++)
            if (!nb_grad(xs[i]) || nb_data(nb_grad(xs[i]))[k] != nb_data(w)[i * 3 + k]) bad++;
    CHECK(bad == 0);
    nb_scope_end(mark);
}

/* ---- errors -------------------------------------------------------------------------------- */
static void test_errors(void) {
    size_t mark = nb_scope_begin();
    nb_tensor *a = rnd(2, SH(2, 3)), *s0 = nb_scalar(1.0), *v = rnd(1, SH(3));
    nb_clear_error();
    CHECK(nb_permute(a, (const int[]){0, 2}) == NULL);
    CHECK(err_has("permute: axis 2 is out of range", "(2, 3)"));
    CHECK(nb_permute(a, (const int[]){1, -1}) == NULL);
    CHECK(err_has("permute: axes (1, -1) are not a permutation", "(2, 3)"));
    CHECK(nb_expand_dims(a, 3) == NULL);
    CHECK(err_has("expand_dims: axis 3 is out of range", "(2, 3)"));
    CHECK(nb_expand_dims(a, -4) == NULL);
    CHECK(err_has("expand_dims:", "(2, 3)"));
    CHECK(nb_expand_dims(rnd(8, SH(1, 1, 1, 1, 1, 1, 1, 2)), 0) == NULL);
    CHECK(err_has("expand_dims:", "(1, 1, 1, 1, 1, 1, 1, 2)"));
    CHECK(nb_squeeze(a, 1) == NULL);
    CHECK(err_has("squeeze: axis 1 of a tensor of shape (2, 3) has size 3", NULL));
    CHECK(nb_squeeze(s0, 0) == NULL);
    CHECK(err_has("squeeze:", "()"));
    CHECK(nb_slice(a, 0, 0, 2, 0) == NULL);
    CHECK(err_has("slice: slice step cannot be zero", "(2, 3)"));
    CHECK(nb_slice(a, -3, 0, 2, 1) == NULL);
    CHECK(err_has("slice: axis -3 is out of range", "(2, 3)"));
    CHECK(nb_slice(s0, 0, 0, 1, 1) == NULL);
    CHECK(err_has("slice:", "()"));
    CHECK(nb_take(a, SH(0, 3), 2, 1) == NULL);
    CHECK(err_has("take: index 3 is out of bounds for axis 1 with size 3", "(2, 3)"));
    CHECK(nb_take(a, SH(-3), 1, 0) == NULL);
    CHECK(err_has("take: index -3 is out of bounds for axis 0 with size 2", "(2, 3)"));
    CHECK(nb_take(a, NULL, 2, 0) == NULL);
    CHECK(err_has("take: NULL indices", "(2, 3)"));
    CHECK(nb_take(a, SH(0), -1, 0) == NULL);
    CHECK(err_has("take: -1 indices", "(2, 3)"));
    CHECK(nb_take(s0, SH(0), 1, 0) == NULL);
    CHECK(err_has("take:", "()"));
    nb_tensor *pair[2] = {a, rnd(2, SH(2, 4))};
    CHECK(nb_concat(0, pair, 0) == NULL);
    CHECK(err_has("concat: need at least one array", NULL));
    CHECK(nb_concat(2, pair, 0) == NULL);
    CHECK(err_has("concat: all the input array dimensions except for the concatenation axis", "(2, 4)"));
    CHECK(nb_concat(2, pair, 2) == NULL);
    CHECK(err_has("concat: axis 2 is out of range", "(2, 3)"));
    nb_tensor *mixed[2] = {a, v};
    CHECK(nb_concat(2, mixed, 0) == NULL);
    CHECK(err_has("concat: all the input arrays must have the same number of dimensions", "(3,)"));
    nb_tensor *zeros_d[2] = {s0, s0};
    CHECK(nb_concat(2, zeros_d, 0) == NULL);
    CHECK(err_has("concat: zero-dimensional arrays cannot be concatenated", "()"));
    CHECK(nb_stack(0, pair, 0) == NULL);
    CHECK(err_has("stack: need at least one array", NULL));
    CHECK(nb_stack(2, pair, 0) == NULL);
    CHECK(err_has("stack: all input arrays must have the same shape", "(2, 4)"));
    CHECK(nb_stack(2, zeros_d, 1) == NULL);
    CHECK(err_has("stack: axis 1 is out of range", "()"));
    CHECK(nb_stack(2, zeros_d, -2) == NULL);
    CHECK(err_has("stack: axis -2", NULL));
    /* a NULL input: NULL, and the first error is kept */
    CHECK(nb_permute(NULL, NULL) == NULL && err_has("permute: NULL argument", NULL));
    CHECK(nb_slice(NULL, 0, 0, 1, 1) == NULL && err_has("slice: NULL argument", NULL));
    nb_tensor *withnull[3] = {a, NULL, a};
    CHECK(nb_concat(3, withnull, 0) == NULL && err_has("concat: NULL argument", NULL));
    CHECK(nb_stack(3, withnull, 0) == NULL && err_has("stack: NULL argument", NULL));
    CHECK(nb_take(a, SH(5), 1, 0) == NULL);
    CHECK(nb_squeeze(nb_expand_dims(nb_take(a, SH(5), 1, 0), 0), 0) == NULL);
    CHECK(err_has("take: index 5", NULL));
    nb_scope_end(mark);
}

/* ---- NaN and inf pass through unchanged ------------------------------------------------------ */
static void test_nonfinite(void) {
    size_t mark = nb_scope_begin();
    nb_tensor *a = nb_vector((const double[]){NAN, INFINITY, -INFINITY, 1.0}, 4);
    nb_tensor *y[7] = {nb_slice(a, 0, NB_NONE, NB_NONE, -1), nb_take(a, SH(2, 1, 0), 3, 0),
                       nb_concat(2, (nb_tensor *[]){a, a}, 0), nb_stack(2, (nb_tensor *[]){a, a}, 1),
                       nb_permute(a, NULL), nb_expand_dims(a, 0), nb_squeeze(nb_expand_dims(a, 1), 1)};
    CHECK(y[0] && isnan(nb_data(y[0])[3]) && nb_data(y[0])[1] == -INFINITY);
    CHECK(y[1] && nb_data(y[1])[0] == -INFINITY && isnan(nb_data(y[1])[2]));
    CHECK(y[2] && isnan(nb_data(y[2])[4]) && nb_data(y[2])[5] == INFINITY);
    CHECK(y[3] && isnan(nb_data(y[3])[1]) && nb_data(y[3])[3] == INFINITY);
    for (int k = 4; k < 7; k++) CHECK(y[k] && isnan(nb_data(y[k])[0]) && nb_data(y[k])[2] == -INFINITY);
    /* a gradient seed with an inf lands where it belongs, and only there */
    nb_tensor *x = rnd(1, SH(4));
    nb_tensor *s = nb_slice(x, 0, 1, 3, 1);
    CHECK(s && nb_backward(s, nb_vector((const double[]){INFINITY, 2}, 2)) == 0);
    CHECK(nb_grad(x) && nb_data(nb_grad(x))[0] == 0 && nb_data(nb_grad(x))[1] == INFINITY &&
          nb_data(nb_grad(x))[2] == 2 && nb_data(nb_grad(x))[3] == 0);
    nb_scope_end(mark);
}

/* ---- allocation failure ------------------------------------------------------------------------ */
static int64_t live(void) {
    nb_mem_stats st;
    nb_memory_stats(&st);
    return st.live_tensors;
}

/* every op forward, forward mode, backward with create_graph, a double backward; the value */
static double scenario(nb_tensor *x, nb_tensor *w, bool *failed) {
    *failed = true;
    nb_tensor *d = nb_dual(x, w);
    nb_tensor *parts[70];
    for (int i = 0; i < 70; i++) parts[i] = nb_slice(d, 0, i % 3, NB_NONE, i % 2 ? -1 : 1);
    nb_tensor *c = nb_concat(70, parts, 0);
    nb_tensor *t = nb_take(c, SH(0, -1, 3, 3), 4, 0);
    nb_tensor *st = nb_stack(3, (nb_tensor *[]){t, t, t}, -1);
    nb_tensor *p = nb_squeeze(nb_expand_dims(nb_permute(st, NULL), 1), 1);
    nb_tensor *y = p ? nb_sum(nb_prod(p, p)) : NULL;
    if (!y || !nb_tangent(y)) return NAN;
    double tan = nb_item(nb_tangent(y));
    nb_tensor *g = NULL;
    if (nb_autograd(1, &y, NULL, 1, &x, &g, true) != 0) return NAN;
    nb_tensor *h = nb_sum(nb_prod(g, w));
    nb_tensor *gg = NULL;
    if (!h || nb_autograd(1, &h, NULL, 1, &x, &gg, false) != 0) return NAN;
    *failed = false;
    return nb_item(y) + tan + nb_data(gg)[0] + nb_data(gg)[2];
}

static void test_alloc_failure(void) {
    nb_tensor *x = nb_retain(rnd(1, SH(5))), *w = nb_retain(rnd(1, SH(5)));
    bool failed;
    size_t mark = nb_scope_begin();
    double ref = scenario(x, w, &failed);
    CHECK(!failed && isfinite(ref));
    nb_scope_end(mark);
    int64_t base = live();
    int points = 0;
    for (int64_t n = 1; n < 100000; n++) {
        mark = nb_scope_begin();
        nb_clear_error();
        nb__fail_alloc_after(n);
        double r = scenario(x, w, &failed);
        bool fired = nb__fail_alloc_fired();
        nb__fail_alloc_after(0);
        if (failed) {
            const char *m = nb_last_error();
            bool said = m && strstr(m, "out of memory");
            CHECK(said);
            if (!said) fprintf(stderr, "  N=%lld: %s\n", (long long)n, m ? m : "(no message)");
        } else {
            CHECK(r == ref);
        }
        nb_scope_end(mark);
        CHECK(live() == base);
        if (!fired && !failed) break;
        points++;
    }
    CHECK(points > 100);
    printf("allocation failure: %d failure points\n", points);
    nb_clear_error();
    nb_release(x);
    nb_release(w);
}

int main(void) {
    check_alarm(600, "test_ops_numpy_shape: timed out\n");
    test_slice_values();
    test_take_values();
    test_permute_values();
    test_concat_stack_values();
    test_gradients();
    test_many_inputs_gradients();
    test_errors();
    test_nonfinite();
    test_alloc_failure();
    nb_cleanup();
    return check_report("test_ops_numpy_shape");
}
