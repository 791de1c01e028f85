/*
 * Element-wise ops: the broadcasting binary ops (add, sub, prod, div,
 * maximum) and the unary ops (neg, scale, sin, cos, exp, log, sqrt, square,
 * pow, relu, sigmoid, tanh), each with its VJP and JVP; numpy's extras
 * (minimum, clip, where) and the comparisons (eq, ne, lt, le, gt, ge: never
 * recorded, no gradient).
 *
 * Unary ops share one table of formulas: f (the kernel), f'(x) as a fused
 * kernel g*f'(x) (the unary_grad op, used by a plain backward: one pass, one
 * allocation), f'(x) as an expression of differentiable ops (used with
 * create_graph and by forward mode) and f''(x) as an expression (the
 * gradient rule of unary_grad itself, so even the fused kernel has one).
 */
#include "engine.h"
#include "kernels/kernels.h"
#include "kernels/vmath.h"

#include <math.h>
#include <string.h>

/* ---- broadcasting loops --------------------------------------------------------
 * o = EXPR(x, y) over out's index space.  Fast paths for equal shapes and a
 * one-element operand; the general path walks rows of the last axis with
 * per-operand strides (0 along broadcast axes). */
typedef struct { /* the general case's plan */
    int n;    /* out's ndim                                                     */
    int64_t shape[NB_MAX_DIMS], sa[NB_MAX_DIMS], sb[NB_MAX_DIMS];
} bcast;

static void strides_in(const nb_tensor *t, int n, const int64_t *oshape, int64_t *st) {
    int64_t s = 1;
    for (int d = n - 1; d >= 0; d--) {
        int td = d - (n - t->ndim);
        int64_t dim = td >= 0 ? t->shape[td] : 1;
        st[d] = dim == 1 ? 0 : s;
        s *= dim;
    }
}

static int bcast_mode(const nb_tensor *a, const nb_tensor *b) {
    return nb__same_shape(a, b) ? 0 : b->numel == 1 ? 1 : a->numel == 1 ? 2 : 3;
}

/* the strides of the general case (mode 3) */
static void bcast_plan(bcast *it, const nb_tensor *o, const nb_tensor *a, const nb_tensor *b) {
    it->n = o->ndim;
    memcpy(it->shape, o->shape, sizeof it->shape);
    strides_in(a, o->ndim, o->shape, it->sa);
    strides_in(b, o->ndim, o->shape, it->sb);
}

#define BCAST_LOOP(MODE, it, O, A, B, N, EXPR)                                                   \
    do {                                                                                   \
        if ((MODE) == 0) {                                                              \
            for (int64_t i_ = 0; i_ < (N); i_++) {                                         \
                double x = (A)[i_], y = (B)[i_];                                           \
                (O)[i_] = (EXPR);                                                          \
            }                                                                              \
        } else if ((MODE) == 1) {                                                       \
            const double y = (B)[0];                                                       \
            for (int64_t i_ = 0; i_ < (N); i_++) {                                         \
                double x = (A)[i_];                                                        \
                (O)[i_] = (EXPR);                                                          \
            }                                                                              \
        } else if ((MODE) == 2) {                                                       \
            const double x = (A)[0];                                                       \
            for (int64_t i_ = 0; i_ < (N); i_++) {                                         \
                double y = (B)[i_];                                                        \
                (O)[i_] = (EXPR);                                                          \
            }                                                                              \
        } else if ((N) > 0) {                                                              \
            int n_ = (it).n;                                                               \
            int64_t inner_ = (it).shape[n_ - 1], rows_ = (N) / inner_;                     \
            int64_t sa_ = (it).sa[n_ - 1], sb_ = (it).sb[n_ - 1], oa_ = 0, ob_ = 0;        \
            int64_t idx_[NB_MAX_DIMS] = {0};                                               \
            for (int64_t r_ = 0; r_ < rows_; r_++) {                                       \
                double *o_ = (O) + r_ * inner_;                                            \
                for (int64_t j_ = 0; j_ < inner_; j_++) {                                  \
                    double x = (A)[oa_ + j_ * sa_], y = (B)[ob_ + j_ * sb_];               \
                    o_[j_] = (EXPR);                                                       \
                }                                                                          \
                for (int d_ = n_ - 2; d_ >= 0; d_--) {                                     \
                    oa_ += (it).sa[d_];                                                    \
                    ob_ += (it).sb[d_];                                                    \
                    if (++idx_[d_] < (it).shape[d_]) break;                                \
                    oa_ -= (it).sa[d_] * (it).shape[d_];                                   \
                    ob_ -= (it).sb[d_] * (it).shape[d_];                                   \
                    idx_[d_] = 0;                                                          \
                }                                                                          \
            }                                                                              \
        }                                                                                  \
    } while (0)

enum { K_ADD, K_SUB, K_MUL, K_DIV, K_MAX, K_MASK_GT, K_MIN, K_EQ, K_NE, K_LT, K_LE, K_GT, K_GE };

/* Large element-wise work is split over nb_set_num_threads() threads. */
#define EW_GRAIN 65536 /* elements a thread must have before it is worth starting */

enum { EW_BINARY, EW_UNARY, EW_UNARY_GRAD, EW_UNARY_GRAD_ADD /* adding into o */ };
typedef struct {
    int kind; /* EW_... */
    int k;
    int mode; /* binary: 0 both advance, 1 b is one element, 2 a is */
    nb__op op;
    double p;
    double *o;
    const double *a, *b, *c;
} ew_job;

/* mode 0-2 need no plan (itp may be NULL); mode 3 walks the plan's strides */
static void binary_range(int k, int mode, const bcast *itp, double *O, const double *A,
                         const double *B, int64_t n) {
#define it (*itp)
    switch (k) {
    case K_ADD: BCAST_LOOP(mode, it, O, A, B, n, x + y); break;
    case K_SUB: BCAST_LOOP(mode, it, O, A, B, n, x - y); break;
    case K_MUL: BCAST_LOOP(mode, it, O, A, B, n, x * y); break;
    case K_DIV: BCAST_LOOP(mode, it, O, A, B, n, x / y); break;
    /* numpy's maximum propagates NaN from either side */
    case K_MAX: BCAST_LOOP(mode, it, O, A, B, n, (x > y || isnan(x)) ? x : y); break;
    case K_MASK_GT: BCAST_LOOP(mode, it, O, A, B, n, x > y ? 1.0 : (x == y ? 0.5 : 0.0)); break;
    /* numpy's minimum propagates NaN from either side */
    case K_MIN: BCAST_LOOP(mode, it, O, A, B, n, (x < y || isnan(x)) ? x : y); break;
    /* comparisons: IEEE's (NaN compares unequal to everything, itself included) */
    case K_EQ: BCAST_LOOP(mode, it, O, A, B, n, x == y ? 1.0 : 0.0); break;
    case K_NE: BCAST_LOOP(mode, it, O, A, B, n, x != y ? 1.0 : 0.0); break;
    case K_LT: BCAST_LOOP(mode, it, O, A, B, n, x < y ? 1.0 : 0.0); break;
    case K_LE: BCAST_LOOP(mode, it, O, A, B, n, x <= y ? 1.0 : 0.0); break;
    case K_GT: BCAST_LOOP(mode, it, O, A, B, n, x > y ? 1.0 : 0.0); break;
    case K_GE: BCAST_LOOP(mode, it, O, A, B, n, x >= y ? 1.0 : 0.0); break;
    }
#undef it
}

static void unary_kernel(nb__op op, double p, double *o, const double *a, int64_t n);
static void unary_grad_kernel(nb__op op, double p, double *o, const double *g, const double *x,
                              const double *y, int64_t n, bool add);
static void run_unary_grad(nb__op op, double p, double *o, const double *g, const double *x,
                           const double *y, int64_t n, bool add);

static void ew_chunk(int64_t lo, int64_t hi, void *ctx) {
    ew_job *j = ctx;
    int64_t n = hi - lo;
    switch (j->kind) {
    case EW_UNARY: unary_kernel(j->op, j->p, j->o + lo, j->a + lo, n); break;
    case EW_UNARY_GRAD:
    case EW_UNARY_GRAD_ADD:
        unary_grad_kernel(j->op, j->p, j->o + lo, j->a + lo, j->b + lo, j->c + lo, n,
                          j->kind == EW_UNARY_GRAD_ADD);
        break;
    case EW_BINARY: {
        int m = j->mode;
        binary_range(j->k, m, NULL, j->o + lo, m == 2 ? j->a : j->a + lo, m == 1 ? j->b : j->b + lo, n);
        break;
    }
    }
}

/* runs the job on threads when it is large enough, else right here */
static void ew_run(ew_job *j, int64_t n, int64_t grain) {
    if (n >= 2 * grain && nb__num_threads() > 1) nb_parallel_for(n, grain, ew_chunk, j);
    else ew_chunk(0, n, j);
}

static void binary_kernel(int k, nb_tensor *o, const nb_tensor *a, const nb_tensor *b) {
    if (o->numel == 1) { /* scalars (any shape of one element): no loop machinery */
        binary_range(k, 0, NULL, o->data, a->data, b->data, 1);
        return;
    }
    int mode = bcast_mode(a, b);
    if (mode != 3 && o->numel < 2 * EW_GRAIN) { /* one thread: no job */
        binary_range(k, mode, NULL, o->data, a->data, b->data, o->numel);
        return;
    }
    if (mode == 3) {
        bcast it;
        bcast_plan(&it, o, a, b);
        binary_range(k, 3, &it, o->data, a->data, b->data, o->numel);
        return;
    }
    ew_job j = {.kind = EW_BINARY, .k = k, .mode = mode, .o = o->data, .a = a->data, .b = b->data};
    ew_run(&j, o->numel, EW_GRAIN);
}

static nb_tensor *binary(nb__op op, int k, nb_tensor *a, nb_tensor *b) {
    nb_tensor *in[2] = {a, b};
    const char *who = nb__ops[op].name;
    if (nb__null_args(who, 2, in)) return NULL;
    int n = a->ndim;
    int64_t shape[NB_MAX_DIMS];
    const int64_t *os = a->shape; /* equal shapes: the common case */
    if (!nb__same_shape(a, b)) {
        os = shape;
        if (!nb__broadcast_shape(a->ndim, a->shape, b->ndim, b->shape, &n, shape)) {
        char s1[NB__SHAPE_BUF], s2[NB__SHAPE_BUF];
        return nb__err("%s: shapes %s and %s cannot be broadcast", who,
                       nb__shape_str(a->ndim, a->shape, s1, sizeof s1),
                       nb__shape_str(b->ndim, b->shape, s2, sizeof s2));
        }
    }
    nb_tensor *o = os == a->shape ? nb__node_like(op, a, 2, in) : nb__node(op, n, os, 2, in);
    if (!o) return NULL;
    binary_kernel(k, o, a, b);
    return nb__finish(o, 2, in);
}

nb_tensor *nb_add(nb_tensor *a, nb_tensor *b) { return binary(NB__OP_ADD, K_ADD, a, b); }
nb_tensor *nb_sub(nb_tensor *a, nb_tensor *b) { return binary(NB__OP_SUB, K_SUB, a, b); }
nb_tensor *nb_prod(nb_tensor *a, nb_tensor *b) { return binary(NB__OP_PROD, K_MUL, a, b); }
nb_tensor *nb_div(nb_tensor *a, nb_tensor *b) { return binary(NB__OP_DIV, K_DIV, a, b); }
nb_tensor *nb_maximum(nb_tensor *a, nb_tensor *b) { return binary(NB__OP_MAXIMUM, K_MAX, a, b); }

nb_tensor *nb__mask_gt(nb_tensor *a, nb_tensor *b) {
    int n;
    int64_t shape[NB_MAX_DIMS];
    if (!nb__broadcast_shape(a->ndim, a->shape, b->ndim, b->shape, &n, shape))
        return nb__err("maximum: internal error: mask of unbroadcastable shapes");
    nb_tensor *m = nb__const(n, shape, 0.0);
    if (m) binary_kernel(K_MASK_GT, m, a, b);
    return m;
}

void nb__add_inplace(nb_tensor *dst, const nb_tensor *src) {
    if (dst->numel < 2 * EW_GRAIN || nb__num_threads() == 1) {
        double *d = dst->data;
        const double *s = src->data;
        for (int64_t i = 0; i < dst->numel; i++) d[i] += s[i];
        return;
    }
    ew_job j = {.kind = EW_BINARY, .k = K_ADD, .mode = 0, .o = dst->data, .a = dst->data, .b = src->data};
    ew_run(&j, dst->numel, EW_GRAIN);
}

nb_tensor *nb__broadcast_like(nb_tensor *t, const nb_tensor *like) {
    if (!t || nb__same_shape(t, like)) return t;
    return nb_broadcast_to(t, like->ndim, like->shape);
}

/* ---- binary rules ---------------------------------------------------------------
 * The engine sums each result back to its input's shape (unbroadcast). */
int nb__vjp_add(nb__rule *r) {
    r->gin[0] = r->need[0] ? r->g : NULL; /* d(a+b)/da = 1 */
    r->gin[1] = r->need[1] ? r->g : NULL;
    return 0;
}
nb_tensor *nb__jvp_add(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin) {
    if (tin[0] && tin[1]) return nb_add(tin[0], tin[1]);
    return nb__broadcast_like(tin[0] ? tin[0] : tin[1], out);
}

int nb__vjp_sub(nb__rule *r) {
    r->gin[0] = r->need[0] ? r->g : NULL;
    r->gin[1] = r->need[1] ? nb_neg(r->g) : NULL; /* d(a-b)/db = -1 */
    return nb__rule_ok(r);
}
nb_tensor *nb__jvp_sub(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin) {
    if (tin[0] && tin[1]) return nb_sub(tin[0], tin[1]);
    return nb__broadcast_like(tin[0] ? tin[0] : nb_neg(tin[1]), out);
}

/* A plain backward of a product of equal shapes: both gradients in one pass. */
typedef struct {
    double *ga, *gb;
    const double *g, *a, *b;
    bool gb_add; /* gb is b's accumulator: add into it */
} prod2_job;

static void prod2_chunk(int64_t lo, int64_t hi, void *ctx) {
    const prod2_job *j = ctx;
    double *ga = j->ga, *gb = j->gb; /* ga may be g itself (a donated buffer) */
    const double *g = j->g, *a = j->a, *b = j->b;
    if (ga && gb && j->gb_add)
        for (int64_t i = lo; i < hi; i++) {
            double gi = g[i];
            gb[i] += gi * a[i];
            ga[i] = gi * b[i];
        }
    else if (ga && gb)
        for (int64_t i = lo; i < hi; i++) {
            double gi = g[i];
            gb[i] = gi * a[i];
            ga[i] = gi * b[i];
        }
    else if (ga)
        for (int64_t i = lo; i < hi; i++) ga[i] = g[i] * b[i];
    else if (j->gb_add)
        for (int64_t i = lo; i < hi; i++) gb[i] += g[i] * a[i];
    else
        for (int64_t i = lo; i < hi; i++) gb[i] = g[i] * a[i];
}

int nb__vjp_prod(nb__rule *r) {
    nb_tensor *a = r->in[0], *b = r->in[1], *g = r->g, **gin = r->gin;
    const bool *need = r->need;
    if (!r->create_graph && nb__same_shape(a, b)) {
        /* both gradients in one pass; b's g*a may go straight into b's accumulator */
        nb_tensor *accb = need[1] ? r->acc[1] : NULL;
        gin[1] = need[1] && !accb ? nb__unrecorded(NB__OP_PROD, b) : NULL;
        gin[0] = need[0] ? nb__rule_buffer(r, NB__OP_PROD, a) : NULL;
        if ((need[0] && !gin[0]) || (need[1] && !accb && !gin[1])) return -1;
        prod2_job j = {gin[0] ? gin[0]->data : NULL, accb ? accb->data : gin[1] ? gin[1]->data : NULL,
                       g->data, a->data, b->data, accb != NULL};
        r->done[1] = accb != NULL;
        if (a->numel >= EW_GRAIN && nb__num_threads() > 1)
            nb_parallel_for(a->numel, EW_GRAIN / 2, prod2_chunk, &j);
        else
            prod2_chunk(0, a->numel, &j);
        return 0;
    }
    gin[0] = need[0] ? nb_prod(g, b) : NULL; /* d(ab)/da = b */
    gin[1] = need[1] ? nb_prod(g, a) : NULL; /* d(ab)/db = a */
    return nb__rule_ok(r);
}
nb_tensor *nb__jvp_prod(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin) {
    nb_tensor *t0 = tin[0] ? nb_prod(tin[0], in[1]) : NULL;
    nb_tensor *t1 = tin[1] ? nb_prod(in[0], tin[1]) : NULL;
    if (tin[0] && tin[1]) return nb_add(t0, t1);
    return nb__broadcast_like(t0 ? t0 : t1, out);
}

int nb__vjp_div(nb__rule *r) {
    nb_tensor *b = r->in[1], *g = r->g;
    r->gin[0] = r->need[0] ? nb_div(g, b) : NULL;                        /* d(a/b)/da = 1/b  */
    r->gin[1] = r->need[1] ? nb_neg(nb_div(nb_prod(g, r->out), b)) : NULL; /* d(a/b)/db = -y/b */
    return nb__rule_ok(r);
}
nb_tensor *nb__jvp_div(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin) {
    /* (ta - (a/b) tb) / b */
    nb_tensor *num = tin[0];
    if (tin[1]) {
        nb_tensor *t = nb_prod(nb_div(in[0], in[1]), tin[1]);
        num = num ? nb_sub(num, t) : nb_neg(t);
    }
    return nb__broadcast_like(nb_div(num, in[1]), out);
}

int nb__vjp_maximum(nb__rule *r) {
    /* the gate routes g to the larger input; a tie sends half to each */
    nb_tensor *a = r->in[0], *b = r->in[1];
    r->gin[0] = r->need[0] ? nb_prod(r->g, nb__mask_gt(a, b)) : NULL;
    r->gin[1] = r->need[1] ? nb_prod(r->g, nb__mask_gt(b, a)) : NULL;
    return nb__rule_ok(r);
}
nb_tensor *nb__jvp_maximum(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin) {
    nb_tensor *t0 = tin[0] ? nb_prod(tin[0], nb__mask_gt(in[0], in[1])) : NULL;
    nb_tensor *t1 = tin[1] ? nb_prod(tin[1], nb__mask_gt(in[1], in[0])) : NULL;
    if (tin[0] && tin[1]) return nb_add(t0, t1);
    return nb__broadcast_like(t0 ? t0 : t1, out);
}

/* ---- unary ops, generated from unary.def -------------------------------------------
 * Each row gives f, g f'(x) (the fused kernel of a plain backward: one pass,
 * one allocation, or none when it can add into the accumulator), f'(x) as
 * differentiable ops (create_graph and forward mode) and f''(x) as ops (the
 * rule of the fused kernel itself, so even it has one). */

/* g where x > 0, else +0 (x NaN included): relu's gate as bit operations,
   so that the loop has no data-dependent branch to mispredict */
static inline double relu_gate(double g, double x) {
    uint64_t bits, mask = (uint64_t)0 - (uint64_t)(x > 0);
    memcpy(&bits, &g, sizeof bits);
    bits &= mask;
    memcpy(&g, &bits, sizeof g);
    return g;
}

static void unary_kernel(nb__op op, double p, double *o, const double *a, int64_t n) {
    void (*vec_)(double *, const double *, int64_t); /* a row's array kernel, if any */
    switch (op) {
#define NB_UNARY(ID, name, param, lin, f, vec, gfp, fp, fpp)                                 \
    case NB__OP_##ID:                                                                      \
        if ((vec_ = vec) != NULL)                                                          \
            vec_(o, a, n);                                                                 \
        else                                                                               \
            for (int64_t i = 0; i < n; i++) {                                              \
                double x = a[i];                                                           \
                o[i] = (f);                                                                \
            }                                                                              \
        return;
#include "unary.def"
#undef NB_UNARY
    default: break; /* not a unary op (a caller's bug): NaN, never a plausible value */
    }
    for (int64_t i = 0; i < n; i++) o[i] = NAN;
}

/* o = g * f'(x), or o += g * f'(x) with add, where y = f(x) is at hand */
static void unary_grad_kernel(nb__op op, double p, double *o, const double *G, const double *X,
                              const double *Y, int64_t n, bool add) {
    switch (op) {
#define NB_UNARY(ID, name, param, lin, f, vec, gfp, fp, fpp)                                 \
    case NB__OP_##ID:                                                                      \
        if (add)                                                                           \
            for (int64_t i = 0; i < n; i++) {                                              \
                double g = G[i], x = X[i], y = Y[i];                                       \
                (void)x, (void)y;                                                          \
                o[i] += (gfp);                                                             \
            }                                                                              \
        else                                                                               \
            for (int64_t i = 0; i < n; i++) {                                              \
                double g = G[i], x = X[i], y = Y[i];                                       \
                (void)x, (void)y;                                                          \
                o[i] = (gfp);                                                              \
            }                                                                              \
        return;
#include "unary.def"
#undef NB_UNARY
    default: break; /* not a unary op (a caller's bug): NaN, never a plausible value */
    }
    for (int64_t i = 0; i < n; i++) o[i] = NAN;
}

static bool unary_is_linear(nb__op op) {
    switch (op) {
#define NB_UNARY(ID, name, param, lin, ...) case NB__OP_##ID: return lin;
#include "unary.def"
#undef NB_UNARY
    default: return false;
    }
}

/* the names the rows' f' and f'' use */
static nb_tensor *lazy_f(nb_tensor **y, nb__op op, nb_tensor *x, double p) {
    if (!*y) *y = nb__unary(op, x, p);
    return *y;
}
static nb_tensor *relu_mask(nb_tensor *x) { /* 1 where x > 0: relu'(0) = 0 */
    nb_tensor *m = nb__const_like(x, 0.0);
    if (m)
        for (int64_t i = 0; i < x->numel; i++) m->data[i] = x->data[i] > 0 ? 1.0 : 0.0;
    return m;
}
static nb_tensor *sign_of(nb_tensor *x) { /* -1, 0 or 1 (NaN for NaN): abs' */
    nb_tensor *m = nb__const_like(x, 0.0);
    if (m)
        for (int64_t i = 0; i < x->numel; i++) {
            double v = x->data[i];
            m->data[i] = v > 0 ? 1.0 : v < 0 ? -1.0 : v == 0 ? 0.0 : v;
        }
    return m;
}
#define Y lazy_f(&y, op, x, p)
#define ZEROS(x) nb__const_like(x, 0.0)
#define CONST(x, v) nb__const_like(x, v)
#define ONE nb__const(0, NULL, 1.0)

/* f'(x) as differentiable ops; y = f(x) when known (never in a JVP rule) */
static nb_tensor *fprime(nb__op op, double p, nb_tensor *x, nb_tensor *y) {
    switch (op) {
#define NB_UNARY(ID, name, param, lin, f, vec, gfp, fp, fpp) case NB__OP_##ID: return (fp);
#include "unary.def"
#undef NB_UNARY
    default: return nb__err("%s: internal error: not a unary op", nb__ops[op].name);
    }
}

/* f''(x) as differentiable ops (the rule of unary_grad) */
static nb_tensor *fsecond(nb__op op, double p, nb_tensor *x) {
    nb_tensor *y = NULL;
    switch (op) {
#define NB_UNARY(ID, name, param, lin, f, vec, gfp, fp, fpp) case NB__OP_##ID: return (fpp);
#include "unary.def"
#undef NB_UNARY
    default: return nb__err("%s: internal error: not a unary op", nb__ops[op].name);
    }
}
#undef Y
#undef ZEROS
#undef CONST
#undef ONE

/* ---- unary ops: constructors and rules ----------------------------------------- */
nb_tensor *nb__unary(nb__op op, nb_tensor *a, double p) {
    if (nb__null_args(nb__ops[op].name, 1, &a)) return NULL;
    nb_tensor *o = nb__node_like(op, a, 1, &a);
    if (!o) return NULL;
    o->p.f = p;
    if (a->numel < EW_GRAIN / 2) {
        unary_kernel(op, p, o->data, a->data, a->numel);
    } else {
        ew_job j = {.kind = EW_UNARY, .op = op, .p = p, .o = o->data, .a = a->data};
        ew_run(&j, a->numel, EW_GRAIN / 4);
    }
    return nb__finish(o, 1, &a);
}

/* nb_<name>(a) for the rows without a parameter; nb_pow and nb_scale by hand */
#define NB_UNARY_0(ID, name) \
    nb_tensor *nb_##name(nb_tensor *a) { return nb__unary(NB__OP_##ID, a, 0); }
#define NB_UNARY_1(ID, name)
#define NB_UNARY(ID, name, param, ...) NB_UNARY_##param(ID, name)
#include "unary.def"
#undef NB_UNARY
#undef NB_UNARY_0
#undef NB_UNARY_1
nb_tensor *nb_scale(nb_tensor *a, double c) { return nb__unary(NB__OP_SCALE, a, c); }
nb_tensor *nb_pow(nb_tensor *a, double e) { return nb__unary(NB__OP_POW, a, e); }

/* o = g * f'(x) over n elements (o may be g), on threads when large */
static void run_unary_grad(nb__op op, double p, double *o, const double *g, const double *x,
                           const double *y, int64_t n, bool add) {
    if (n < EW_GRAIN / 2) {
        unary_grad_kernel(op, p, o, g, x, y, n, add);
    } else {
        ew_job j = {.kind = add ? EW_UNARY_GRAD_ADD : EW_UNARY_GRAD, .op = op, .p = p,
                    .o = o, .a = g, .b = x, .c = y};
        ew_run(&j, n, EW_GRAIN / 4);
    }
}

/* One VJP for every unary op: g * f'(x).  A plain backward uses the fused
   kernel (into x's accumulator when it may, else over g when it may);
   create_graph builds it from differentiable ops. */
int nb__vjp_unary(nb__rule *r) {
    nb__op op = (nb__op)r->out->op;
    nb_tensor *x = r->in[0], *g = r->g, *out = r->out;
    double p = out->p.f;
    if (r->acc[0]) { /* x's accumulator += g * f'(x): no temporary */
        run_unary_grad(op, p, r->acc[0]->data, g->data, x->data, out->data, g->numel, true);
        r->done[0] = true;
        return 0;
    }
    if (!r->create_graph) { /* g * f'(x) in one pass, over g itself when it may */
        nb_tensor *o = nb__rule_buffer(r, NB__OP_UNARY_GRAD, x);
        if (o) run_unary_grad(op, p, o->data, g->data, x->data, out->data, g->numel, false);
        r->gin[0] = o;
    } else if (unary_is_linear(op)) {
        r->gin[0] = nb__unary(op, g, p); /* linear: the op itself */
    } else {
        r->gin[0] = nb_prod(g, fprime(op, p, x, out));
    }
    return nb__rule_ok(r);
}

nb_tensor *nb__jvp_unary(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin) {
    nb__op op = (nb__op)out->op;
    if (unary_is_linear(op)) return nb__unary(op, tin[0], out->p.f);
    return nb_prod(tin[0], fprime(op, out->p.f, in[0], NULL));
}

/* ---- unary_grad: the fused backward kernel, an op with rules of its own ------------
 * out = g * f'(x) where y = f(x).  As a function of (g, x) — y is a cache of
 * f(x) — its gradients are d/dg = f'(x) and d/dx = g f''(x). */
nb_tensor *nb__unary_grad(nb__op op, double p, nb_tensor *g, nb_tensor *x, nb_tensor *y) {
    nb_tensor *in[3] = {g, x, y};
    if (nb__null_args("unary_grad", 3, in)) return NULL;
    nb_tensor *o = nb__node_like(NB__OP_UNARY_GRAD, x, 3, in);
    if (!o) return NULL;
    o->p.f = p;
    o->unary_op = (uint8_t)op;
    run_unary_grad(op, p, o->data, g->data, x->data, y->data, x->numel, false);
    return nb__finish(o, 3, in);
}

int nb__vjp_unary_grad(nb__rule *r) {
    nb__op op = (nb__op)r->out->unary_op;
    double p = r->out->p.f;
    nb_tensor *g = r->in[0], *x = r->in[1], *y = r->in[2], *u = r->g;
    if (r->need[0])
        r->gin[0] = r->create_graph ? nb_prod(u, fprime(op, p, x, y)) : nb__unary_grad(op, p, u, x, y);
    if (r->need[1]) r->gin[1] = nb_prod(nb_prod(u, g), fsecond(op, p, x));
    if (r->need[2]) r->gin[2] = nb__const_like(y, 0.0); /* y only caches f(x) */
    return nb__rule_ok(r);
}

nb_tensor *nb__jvp_unary_grad(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin) {
    nb__op op = (nb__op)out->unary_op;
    double p = out->p.f;
    nb_tensor *t0 = tin[0] ? nb_prod(tin[0], fprime(op, p, in[1], NULL)) : NULL;
    nb_tensor *t1 = tin[1] ? nb_prod(nb_prod(in[0], fsecond(op, p, in[1])), tin[1]) : NULL;
    if (tin[0] && tin[1]) return nb_add(t0, t1);
    if (t0 || t1) return t0 ? t0 : t1;
    return nb__const_like(out, 0.0); /* only y carried a tangent */
}

/* ---- numpy's element-wise extras: minimum, clip, where, comparisons ------------------ */

nb_tensor *nb_minimum(nb_tensor *a, nb_tensor *b) { return binary(NB__OP_MINIMUM, K_MIN, a, b); }

/* the gate routes g to the smaller input; a tie sends half to each */
int nb__vjp_minimum(nb__rule *r) {
    nb_tensor *a = r->in[0], *b = r->in[1];
    r->gin[0] = r->need[0] ? nb_prod(r->g, nb__mask_gt(b, a)) : NULL;
    r->gin[1] = r->need[1] ? nb_prod(r->g, nb__mask_gt(a, b)) : NULL;
    return nb__rule_ok(r);
}
nb_tensor *nb__jvp_minimum(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin) {
    nb_tensor *t0 = tin[0] ? nb_prod(tin[0], nb__mask_gt(in[1], in[0])) : NULL;
    nb_tensor *t1 = tin[1] ? nb_prod(tin[1], nb__mask_gt(in[0], in[1])) : NULL;
    if (tin[0] && tin[1]) return nb_add(t0, t1);
    return nb__broadcast_like(t0 ? t0 : t1, out);
}

/* Comparisons: 1.0 / 0.0 of the broadcast shape, never recorded (no
   gradient, no tangent: their derivative is zero wherever it exists). */
static nb_tensor *compare(nb__op op, int k, nb_tensor *a, nb_tensor *b) {
    nb_tensor *in[2] = {a, b};
    const char *who = nb__ops[op].name;
    if (nb__null_args(who, 2, in)) return NULL;
    int n;
    int64_t shape[NB_MAX_DIMS];
    if (!nb__broadcast_shape(a->ndim, a->shape, b->ndim, b->shape, &n, shape)) {
        char s1[NB__SHAPE_BUF], s2[NB__SHAPE_BUF];
        return nb__err("%s: shapes %s and %s cannot be broadcast", who,
                       nb__shape_str(a->ndim, a->shape, s1, sizeof s1),
                       nb__shape_str(b->ndim, b->shape, s2, sizeof s2));
    }
    nb_tensor *o = nb__alloc(who, n, shape);
    if (!o) return NULL;
    o->op = (uint16_t)op;
    nb__name(o, op);
    binary_kernel(k, o, a, b);
    return nb__pool(o);
}
nb_tensor *nb_eq(nb_tensor *a, nb_tensor *b) { return compare(NB__OP_EQ, K_EQ, a, b); }
nb_tensor *nb_ne(nb_tensor *a, nb_tensor *b) { return compare(NB__OP_NE, K_NE, a, b); }
nb_tensor *nb_lt(nb_tensor *a, nb_tensor *b) { return compare(NB__OP_LT, K_LT, a, b); }
nb_tensor *nb_le(nb_tensor *a, nb_tensor *b) { return compare(NB__OP_LE, K_LE, a, b); }
nb_tensor *nb_gt(nb_tensor *a, nb_tensor *b) { return compare(NB__OP_GT, K_GT, a, b); }
nb_tensor *nb_ge(nb_tensor *a, nb_tensor *b) { return compare(NB__OP_GE, K_GE, a, b); }

/* The rules of the `none` family (ops.def): their outputs are never
   recorded and never get a tangent, so these run only on a caller's bug. */
int nb__vjp_none(nb__rule *r) {
    nb__err("%s: internal error: this op has no gradient", nb__ops[r->out->op].name);
    return -1;
}
nb_tensor *nb__jvp_none(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin) {
    return nb__err("%s: internal error: this op has no tangent", nb__ops[out->op].name);
}

/* clip(a, lo, hi) = minimum(maximum(a, lo), hi), as numpy: NaN in a, lo or hi
   gives NaN; lo > hi gives hi everywhere.  lo and hi live in the side record. */
static inline double clip1(double x, double lo, double hi) {
    double t = (x > lo || isnan(x)) ? x : lo;
    return (t < hi || isnan(t)) ? t : hi;
}

nb_tensor *nb_clip(nb_tensor *a, double lo, double hi) {
    if (nb__null_args("clip", 1, &a)) return NULL;
    nb_tensor *o = nb__node_like(NB__OP_CLIP, a, 1, &a);
    if (!o) return NULL;
    nb__aux *x = nb__aux_of(o, 2 * sizeof(double), 0);
    if (!x) {
        nb__unref(o);
        return NULL;
    }
    memcpy(x->data, &lo, sizeof lo);
    memcpy(x->data + sizeof lo, &hi, sizeof hi);
    const double *src = a->data;
    double *dst = o->data;
    for (int64_t i = 0; i < a->numel; i++) dst[i] = clip1(src[i], lo, hi);
    return nb__finish(o, 1, &a);
}

/* 1 where lo <= x <= hi, else 0 (NaN included): clip's derivative, a constant */
static nb_tensor *clip_mask(const nb_tensor *out, const nb_tensor *x) {
    double lo, hi;
    memcpy(&lo, out->aux->data, sizeof lo);
    memcpy(&hi, out->aux->data + sizeof lo, sizeof hi);
    nb_tensor *m = nb__const_like(x, 0.0);
    if (m)
        for (int64_t i = 0; i < x->numel; i++)
            m->data[i] = (lo <= x->data[i] && x->data[i] <= hi) ? 1.0 : 0.0;
    return m;
}
int nb__vjp_clip(nb__rule *r) {
    r->gin[0] = nb_prod(r->g, clip_mask(r->out, r->in[0]));
    return nb__rule_ok(r);
}
nb_tensor *nb__jvp_clip(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin) {
    return nb_prod(tin[0], clip_mask(out, in[0]));
}

/* where(cond, a, b): cond != 0 ? a : b over the broadcast shape of all three
   (NaN != 0, so a NaN condition picks a, as numpy's bool(nan) is true). */
nb_tensor *nb_where(nb_tensor *cond, nb_tensor *a, nb_tensor *b) {
    nb_tensor *in[3] = {cond, a, b};
    if (nb__null_args("where", 3, in)) return NULL;
    int n1, n;
    int64_t s1[NB_MAX_DIMS], shape[NB_MAX_DIMS];
    if (!nb__broadcast_shape(cond->ndim, cond->shape, a->ndim, a->shape, &n1, s1) ||
        !nb__broadcast_shape(n1, s1, b->ndim, b->shape, &n, shape)) {
        char c1[NB__SHAPE_BUF], c2[NB__SHAPE_BUF], c3[NB__SHAPE_BUF];
        return nb__err("where: shapes %s, %s and %s cannot be broadcast",
                       nb__shape_str(cond->ndim, cond->shape, c1, sizeof c1),
                       nb__shape_str(a->ndim, a->shape, c2, sizeof c2),
                       nb__shape_str(b->ndim, b->shape, c3, sizeof c3));
    }
    nb_tensor *o = nb__node(NB__OP_WHERE, n, shape, 3, in);
    if (!o) return NULL;
    const double *C = cond->data, *A = a->data, *B = b->data;
    double *O = o->data;
    if (nb__same_shape(cond, o) && nb__same_shape(a, o) && nb__same_shape(b, o)) {
        for (int64_t i = 0; i < o->numel; i++) O[i] = C[i] != 0 ? A[i] : B[i];
    } else if (o->numel > 0) {
        /* one pass over the output, each operand at its broadcast offset */
        int64_t sc[NB_MAX_DIMS], sa[NB_MAX_DIMS], sb[NB_MAX_DIMS], idx[NB_MAX_DIMS] = {0};
        strides_in(cond, n, shape, sc);
        strides_in(a, n, shape, sa);
        strides_in(b, n, shape, sb);
        int64_t oc = 0, oa = 0, ob = 0;
        for (int64_t i = 0; i < o->numel; i++) {
            O[i] = C[oc] != 0 ? A[oa] : B[ob];
            for (int d = n - 1; d >= 0; d--) {
                oc += sc[d];
                oa += sa[d];
                ob += sb[d];
                if (++idx[d] < shape[d]) break;
                oc -= sc[d] * shape[d];
                oa -= sa[d] * shape[d];
                ob -= sb[d] * shape[d];
                idx[d] = 0;
            }
        }
    }
    return nb__finish(o, 3, in);
}

/* d/da = where(cond, g, 0), d/db = where(cond, 0, g): where itself, so any
   order works; cond's gradient is zero (it only selects). */
int nb__vjp_where(nb__rule *r) {
    nb_tensor *cond = r->in[0], *zero = nb__const(0, NULL, 0.0);
    if (r->need[0]) r->gin[0] = nb__const_like(cond, 0.0);
    if (r->need[1]) r->gin[1] = nb_where(cond, r->g, zero);
    if (r->need[2]) r->gin[2] = nb_where(cond, zero, r->g);
    return nb__rule_ok(r);
}
nb_tensor *nb__jvp_where(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin) {
    nb_tensor *zero = nb__const(0, NULL, 0.0);
    if (!tin[1] && !tin[2]) return nb__const_like(out, 0.0); /* only cond carried one */
    nb_tensor *t = nb_where(in[0], tin[1] ? tin[1] : zero, tin[2] ? tin[2] : zero);
    return nb__broadcast_like(t, out);
}
