/*
 * fuzz_ops: libFuzzer target that decodes its input into a program of nabla
 * calls and checks, after every call, the guarantees nabla.h makes:
 *
 *   - nothing crashes, and no sanitizer (ASan, UBSan, LSan) reports;
 *   - a call that fails returns NULL / -1 / NaN with a non-empty message
 *     that starts with "<op>:" (out-of-memory excepted);
 *   - a call that succeeds returns a tensor whose numel is the product of its
 *     shape, whose shape is the one numpy's rules give, whose requires_grad
 *     and tangent follow the graph rules, and whose data can all be read;
 *   - a call is accepted exactly when its arguments are valid (an oracle in
 *     this file recomputes shapes, broadcasting, matmul and reshape rules);
 *   - after nb_cleanup() no tensor is alive (and LSan sees no leak), and every
 *     custom op's user state was freed exactly once.
 *
 * A backward (or autograd) of a valid call may be refused only after values
 * a graph may read were changed in place (`poked`): every call that changes
 * an existing tensor's values bumps its version, and the sweep refuses a
 * node recorded before.  The writers here: nb_data_mut ("poke"),
 * nb_init_tensor, an optimizer step, the store's slabs handed out by
 * nb_params_data / nb_params_grad and its loads (every parameter or
 * gradient), and, once a gradient has been in the pool (`grads_seen`: a
 * graph may have read one through nb_grad), nb_zero_grad,
 * nb_params_zero_grad and a backward (which adds into the gradients that
 * exist).
 *
 * The harness, not the library, aborts when a property is violated.
 *
 * Program: a sequence of instructions, one opcode byte then the operands it
 * reads.  A pool of NPOOL tensors (each holding one reference owned by the
 * harness, so scopes may come and go freely) supplies the operands; an
 * operand byte >= 240 means NULL.  Tensor sizes are capped (CAP elements when
 * created, CAP_OUT for a result) so that an input runs in milliseconds, but
 * shapes whose element count or byte size overflows are passed on purpose:
 * they must be refused.  An opcode byte with the top bit set first arms the
 * allocation-failure hook (the k-th allocation of that call fails).
 */
#include "internal.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NPOOL 12
#define MAX_STEPS 128
#define CAP 4096                      /* elements of a created tensor          */
#define CAP_OUT 16384                 /* elements of a result                  */
#define WORK_CAP ((int64_t)1 << 22)   /* multiply-adds of one matmul           */
#define ACCEPT_MAX ((int64_t)1 << 59) /* sizes below: the library must accept  */
#define REFUSE_MIN ((int64_t)1 << 60) /* sizes above: the library must refuse  */

/* ---- the harness's failure ---------------------------------------------------- */
static const char *cur_op = "?";

static void violated(const char *what, const char *detail) {
    fprintf(stderr, "\nfuzz_ops: PROPERTY VIOLATED in %s: %s%s%s\n", cur_op, what,
            detail ? ": " : "", detail ? detail : "");
    abort();
}

/* ---- input decoding --------------------------------------------------------------- */
typedef struct {
    const uint8_t *p;
    size_t n, i;
    nb_tensor *pool[NPOOL];
    bool weird;             /* a 0-element tensor with huge sizes exists: relax exactness */
    bool anomaly;
    bool poked;             /* data was changed in place, or a custom op's backward fails:
                               a later backward may refuse (with a message) */
    bool grads_seen;        /* a stored gradient was in the pool (an op may have read it):
                               writing into gradients is a change in place (poked) */
    int64_t inject;         /* allocation countdown armed for the current call */
    size_t marks[8];
    int depth;
    nb_params *P;
    nb_optim *opt;
    nb_mlp *mlp;
    nb_linear lin;
    bool has_lin;
    int nparams;
} fz;

static uint8_t u8(fz *z) { return z->i < z->n ? z->p[z->i++] : 0; }
static bool more(const fz *z) { return z->i < z->n; }
static uint16_t u16(fz *z) { return (uint16_t)(u8(z) | u8(z) << 8); }
static uint64_t u64(fz *z) {
    uint64_t v = 0;
    for (int k = 0; k < 8; k++) v |= (uint64_t)u8(z) << (8 * k);
    return v;
}

static double val(fz *z) {
    static const double special[16] = {0.0, -0.0, 1.0, -1.0, 0.5, 2.0, -3.0, 1e300,
                                       -1e300, 1e-310, NAN, INFINITY, -INFINITY, 700.0,
                                       -745.0, 1e-8};
    uint8_t b = u8(z);
    if (b < 16) return special[b];
    return ((int)b - 136) / 8.0;
}

static int axis_arg(fz *z) {
    uint8_t b = u8(z);
    if (b == 0x80) return INT32_MIN;
    if (b == 0x7f) return INT32_MAX;
    return (int)(int8_t)b % 10;
}

static nb_tensor *arg(fz *z) {
    uint8_t b = u8(z);
    return b >= 240 ? NULL : z->pool[b % NPOOL];
}

/* ---- shapes and the size oracle ------------------------------------------------------ */
typedef enum {
    S_OK,        /* valid, small: must be accepted                          */
    S_ZHUGE,     /* valid, 0 elements, but a partial product is huge: either */
    S_BIG,       /* valid but too big to allocate here: the call is skipped  */
    S_BAD,       /* negative size, bad ndim, overflow: must be refused       */
} sclass;

/* product of sizes, saturating at INT64_MAX; *zero when a size is 0 */
static int64_t sat_prod(int ndim, const int64_t *s, bool *zero, bool *neg) {
    int64_t p = 1;
    *zero = false;
    *neg = false;
    for (int i = 0; i < ndim; i++) {
        if (s[i] < 0) *neg = true;
        else if (s[i] == 0) *zero = true;
        else if (__builtin_mul_overflow(p, s[i], &p)) p = INT64_MAX;
    }
    return p;
}

static sclass classify(int ndim, const int64_t *s, int64_t cap, int64_t *numel) {
    if (ndim < 0 || ndim > NB_MAX_DIMS || (ndim > 0 && !s)) return S_BAD;
    bool zero, neg;
    int64_t p = sat_prod(ndim, s, &zero, &neg);
    if (neg) return S_BAD;
    *numel = zero ? 0 : p;
    if (zero) return p > ACCEPT_MAX ? S_ZHUGE : S_OK;
    if (p > REFUSE_MIN) return S_BAD;
    if (p > cap) return S_BIG;
    return S_OK;
}

enum { E_OK, E_FAIL, E_ANY, E_SKIP };
static int expect_of(sclass c) {
    switch (c) {
    case S_OK: return E_OK;
    case S_ZHUGE: return E_ANY;
    case S_BIG: return E_SKIP;
    default: return E_FAIL;
    }
}

static const int64_t absurd[] = {
    0, 1, 2, 3, -1, -2, 255, 256,
    (int64_t)1 << 31, (int64_t)1 << 32, ((int64_t)1 << 32) + 1, (int64_t)1 << 40,
    (int64_t)1 << 61, (int64_t)1 << 62, INT64_MAX, INT64_MIN,
    3037000500LL /* about sqrt(INT64_MAX) */, ((int64_t)1 << 60) + 1,
    (int64_t)1 << 20, INT32_MAX,
};

/* A shape: usually small (total <= cap), sometimes 8-d, sometimes absurd. */
static int gen_shape(fz *z, int64_t *s, int64_t cap) {
    uint8_t mode = u8(z) % 16;
    int ndim;
    if (mode < 11) {
        ndim = u8(z) % 5;
        for (int i = 0; i < ndim; i++) s[i] = u8(z) % 6;
    } else if (mode < 13) {
        ndim = 8;
        for (int i = 0; i < ndim; i++) s[i] = u8(z) % 3;
    } else if (mode < 14) {
        ndim = 2;
        s[0] = u8(z) % 65;
        s[1] = u8(z) % 65;
    } else {
        uint8_t b = u8(z);
        ndim = b % 11 - 1; /* -1..9 */
        for (int i = 0; i < NB_MAX_DIMS; i++) {
            uint8_t c = u8(z);
            s[i] = c & 0x80 ? (int64_t)u64(z) : absurd[c % (sizeof absurd / sizeof *absurd)];
        }
        return ndim;
    }
    /* keep small shapes within the cap: shrink sizes from the right */
    for (int i = ndim - 1; i >= 0; i--) {
        bool zero, neg;
        if (sat_prod(ndim, s, &zero, &neg) <= cap || zero) break;
        s[i] = 1;
    }
    return ndim;
}

/* numpy broadcasting; false when the shapes cannot be broadcast */
static bool bshape(int na, const int64_t *sa, int nbd, const int64_t *sb, int *n, int64_t *out) {
    int m = na > nbd ? na : nbd;
    for (int i = 0; i < m; i++) {
        int64_t da = i < m - na ? 1 : sa[i - (m - na)];
        int64_t db = i < m - nbd ? 1 : sb[i - (m - nbd)];
        if (da != db && da != 1 && db != 1) return false;
        out[i] = da == 1 ? db : da;
    }
    *n = m;
    return true;
}

/* can shape f be broadcast to shape t (one-way) */
static bool bto_ok(int fn, const int64_t *fs, int tn, const int64_t *ts) {
    if (fn > tn) return false;
    for (int i = 0; i < fn; i++) {
        int64_t f = fs[fn - 1 - i], t = ts[tn - 1 - i];
        if (f != t && f != 1) return false;
    }
    return true;
}

static bool is_weird(const nb_tensor *t) {
    int64_t numel;
    return t && classify(nb_ndim(t), nb_shape(t), INT64_MAX, &numel) == S_ZHUGE;
}

/* ---- checks ---------------------------------------------------------------------------- */
static volatile double sink;

static bool injected(fz *z) { return z->inject > 0 && nb__fail_alloc_fired(); }

/* The message of a failed call: present, non-empty, "<op>: ..." */
static const char *check_msg(fz *z) {
    const char *m = nb_last_error();
    if (!m || !m[0]) violated("a call failed without a message", NULL);
    if (strlen(m) >= 512) violated("message too long", m);
    if (!injected(z)) {
        size_t k = 0;
        while ((m[k] >= 'a' && m[k] <= 'z') || m[k] == '_' || (m[k] >= '0' && m[k] <= '9')) k++;
        if (k == 0 || m[k] != ':') violated("the message does not start with '<op>:'", m);
    }
    return m;
}

static bool excused(fz *z, const char *m) {
    if (injected(z)) return true;
    if (z->anomaly && strncmp(m, "anomaly:", 8) == 0) return true;
    return false;
}

/* A tensor handed out by the library is self-consistent and readable. */
static void check_tensor(const nb_tensor *t) {
    int nd = nb_ndim(t);
    const int64_t *s = nb_shape(t);
    if (nd < 0 || nd > NB_MAX_DIMS || !s) violated("bad ndim or shape pointer", NULL);
    bool zero, neg;
    int64_t p = sat_prod(nd, s, &zero, &neg);
    if (neg) violated("negative size in a result", NULL);
    if (zero) p = 0;
    else if (p == INT64_MAX) violated("a result whose element count overflows", NULL);
    if (p != nb_numel(t)) {
        char b[64];
        snprintf(b, sizeof b, "numel %lld, shape product %lld", (long long)nb_numel(t),
                 (long long)p);
        violated("numel disagrees with shape", b);
    }
    if (p > CAP_OUT * 64) violated("a result far larger than any input", NULL);
    const double *d = nb_data(t);
    if (p > 0 && !d) violated("NULL data", NULL);
    double acc = 0;
    for (int64_t i = 0; i < p; i++) acc += d[i];
    sink = acc;
    const char *nm = nb_name(t);
    if (!nm) violated("NULL name", NULL);
    if (!nb_op_name(t)) violated("NULL op name", NULL);
    if (nb_is_leaf(t) != (nb_num_parents(t) == 0)) violated("is_leaf disagrees with the parents", NULL);
    for (int i = 0; i < nb_num_parents(t); i++)
        if (!nb_parent(t, i)) violated("a NULL parent in range", NULL);
    if (nb_parent(t, nb_num_parents(t)) || nb_parent(t, -1)) violated("a parent out of range", NULL);
    nb_tensor *g = nb_grad(t);
    if (g) {
        if (nb_ndim(g) != nd || memcmp(nb_shape(g), s, (size_t)nd * sizeof *s) != 0)
            violated("a gradient's shape differs from its tensor's", nm);
    }
    nb_tensor *tg = nb_tangent(t);
    if (tg) {
        if (nb_ndim(tg) != nd || memcmp(nb_shape(tg), s, (size_t)nd * sizeof *s) != 0)
            violated("a tangent's shape differs from its tensor's", nm);
    }
}

static bool same_shape(const nb_tensor *t, int nd, const int64_t *s) {
    return nb_ndim(t) == nd && (nd == 0 || memcmp(nb_shape(t), s, (size_t)nd * sizeof *s) == 0);
}

static void put(fz *z, nb_tensor *t) {
    if (!t) return;
    int s = u8(z) % NPOOL;
    nb_retain(t);
    nb_release(z->pool[s]);
    z->pool[s] = t;
    if (is_weird(t)) z->weird = true;
}

/* The common check of a tensor-returning call.  nd < 0: shape not checked. */
static void after(fz *z, nb_tensor *r, int expect, int nd, const int64_t *shape) {
    if (!r) {
        const char *m = check_msg(z);
        if (expect == E_OK && !excused(z, m) && !z->weird) violated("valid call refused", m);
        return;
    }
    check_tensor(r);
    if (expect == E_FAIL) violated("invalid call accepted", NULL);
    if (nd >= 0 && !same_shape(r, nd, shape)) violated("result has the wrong shape", NULL);
    put(z, r);
}

/* requires_grad, parents and tangent of an op's result follow the graph rules */
static void graph_rules(nb_tensor *r, int n, nb_tensor *const *in) {
    if (!r) return;
    bool req = false, tan = false;
    for (int i = 0; i < n; i++) {
        req |= nb_requires_grad(in[i]);
        tan |= nb_tangent(in[i]) != NULL;
    }
    req &= nb_is_grad_enabled();
    if (nb_requires_grad(r) != req) violated("requires_grad of a result is wrong", NULL);
    if (nb_num_parents(r) != (req ? n : 0)) violated("wrong number of parents recorded", NULL);
    if ((nb_tangent(r) != NULL) != tan) violated("tangent not propagated (or invented)", NULL);
}

static int rc_check(fz *z, int rc, int expect) {
    if (rc != 0 && rc != -1) violated("return code neither 0 nor -1", NULL);
    if (rc == -1) {
        const char *m = check_msg(z);
        if (expect == E_OK && !excused(z, m) && !z->weird) violated("valid call refused", m);
    } else if (expect == E_FAIL) {
        violated("invalid call accepted", NULL);
    }
    return rc;
}


/* ---- user functions for jacobian / hessian / hvp / gradcheck ----------------------------- */
static nb_tensor *f_sumsq(nb_tensor *x, void *c) { (void)c; return nb_sum(nb_square(x)); }
static nb_tensor *f_tanh(nb_tensor *x, void *c) { (void)c; return nb_tanh(x); }
static nb_tensor *f_mm(nb_tensor *x, void *c) { (void)c; return nb_matmul(x, nb_transpose(x)); }
static nb_tensor *f_fail(nb_tensor *x, void *c) { (void)c; (void)x; return nb_log(NULL); }
static nb_tensor *f_id(nb_tensor *x, void *c) { (void)c; return x; }
static nb_tensor *f_const(nb_tensor *x, void *c) { (void)c; (void)x; return nb_scalar(1.0); }
static nb_tensor *f_lse(nb_tensor *x, void *c) {
    (void)c;
    return nb_sum(nb_log_softmax(nb_reshape(x, 1, (int64_t[]){-1}), 0));
}
static nb_tensor *f_sm(nb_tensor *x, void *c) { (void)c; return nb_softmax(x, -1); }
static nb_fn const fns[8] = {f_sumsq, f_tanh, f_mm, f_fail, f_id, f_const, f_lse, f_sm};

static nb_tensor *m_first(int n, nb_tensor *const *x, void *c) {
    (void)c;
    return nb_prod(nb_sin(x[0]), x[n - 1]);
}
static nb_tensor *m_mm(int n, nb_tensor *const *x, void *c) {
    (void)c;
    return nb_sum(nb_tanh(nb_matmul(x[0], x[n - 1])));
}
static nb_tensor *m_max(int n, nb_tensor *const *x, void *c) {
    (void)c;
    return nb_maximum(nb_exp(x[0]), nb_sigmoid(x[n - 1]));
}
static nb_multi_fn const mfns[3] = {m_first, m_mm, m_max};

/* ---- the instructions -------------------------------------------------------------------- */
static double buf[CAP];
static FILE *devnull;

static void op_create(fz *z, uint8_t which) {
    int64_t s[NB_MAX_DIMS] = {0}, numel = 0;
    int nd = gen_shape(z, s, CAP);
    bool null_shape = nd > 0 && u8(z) == 0x55;
    const int64_t *sp = null_shape ? NULL : s;
    sclass c = classify(nd, sp, CAP, &numel);
    int e = expect_of(c);
    if (e == E_SKIP) return;
    nb_tensor *r = NULL;
    switch (which % 6) {
    case 0: {
        cur_op = "nb_new";
        for (int64_t i = 0; c == S_OK && i < numel; i++) buf[i] = val(z);
        bool null_data = u8(z) == 0x33;
        if (null_data && c == S_OK && numel > 0) e = E_FAIL;
        r = nb_new(null_data ? NULL : buf, nd, sp);
        break;
    }
    case 1: cur_op = "nb_zeros"; r = nb_zeros(nd, sp); break;
    case 2: cur_op = "nb_ones"; r = nb_ones(nd, sp); break;
    case 3: cur_op = "nb_full"; r = nb_full(nd, sp, val(z)); break;
    case 4: cur_op = "nb_randn"; r = nb_randn(nd, sp, u8(z)); break;
    case 5: cur_op = "nb_rand"; r = nb_rand(nd, sp, u8(z)); break;
    }
    if (r && !nb_requires_grad(r)) violated("a created tensor does not require grad", NULL);
    after(z, r, e, nd, sp);
}

static void op_create_small(fz *z, uint8_t which) {
    int64_t a = (int8_t)u8(z) % 65, b = (int8_t)u8(z) % 9;
    if (u8(z) == 0xAA) a = INT64_MAX; /* absurd: must be refused by size */
    for (int i = 0; i < 64; i++) buf[i] = val(z);
    nb_tensor *r;
    int64_t shape[2] = {a, 1};
    int nd = 2;
    switch (which % 4) {
    case 0:
        cur_op = "nb_scalar";
        r = nb_scalar(buf[0]);
        nd = 0;
        break;
    case 1:
        cur_op = "nb_vector";
        r = nb_vector(buf, a);
        nd = 1;
        break;
    case 2:
        cur_op = "nb_column";
        r = nb_column(buf, a);
        break;
    default:
        cur_op = "nb_matrix";
        if (a != INT64_MAX) shape[0] = a % 9;
        shape[1] = b;
        r = nb_matrix(buf, shape[0], shape[1]);
        break;
    }
    int64_t numel;
    int e = expect_of(classify(nd, shape, 64, &numel)); /* (INT64_MAX, 0): either */
    after(z, r, e == E_SKIP ? E_ANY : e, nd, shape);
}

static const char *const unary_names[12] = {"neg", "sin", "cos", "exp", "log", "sqrt",
                                            "square", "relu", "sigmoid", "tanh", "pow", "scale"};

static void op_unary(fz *z, uint8_t which) {
    nb_tensor *a = arg(z);
    double p = val(z);
    nb_tensor *r = NULL;
    int k = which % 12;
    cur_op = unary_names[k];
    switch (k) {
    case 0: r = nb_neg(a); break;
    case 1: r = nb_sin(a); break;
    case 2: r = nb_cos(a); break;
    case 3: r = nb_exp(a); break;
    case 4: r = nb_log(a); break;
    case 5: r = nb_sqrt(a); break;
    case 6: r = nb_square(a); break;
    case 7: r = nb_relu(a); break;
    case 8: r = nb_sigmoid(a); break;
    case 9: r = nb_tanh(a); break;
    case 10: r = nb_pow(a, p); break;
    case 11: r = nb_scale(a, p); break;
    }
    if (!a) {
        after(z, r, E_FAIL, -1, NULL);
        return;
    }
    if (r) graph_rules(r, 1, &a);
    after(z, r, E_OK, nb_ndim(a), nb_shape(a));
}

static void op_binary(fz *z, uint8_t which) {
    nb_tensor *a = arg(z), *b = arg(z);
    static const char *const names[5] = {"add", "sub", "prod", "div", "maximum"};
    int k = which % 5;
    cur_op = names[k];
    int n = 0, e;
    int64_t s[NB_MAX_DIMS * 2], numel;
    if (!a || !b) e = E_FAIL;
    else if (!bshape(nb_ndim(a), nb_shape(a), nb_ndim(b), nb_shape(b), &n, s)) e = E_FAIL;
    else e = expect_of(classify(n, s, CAP_OUT, &numel));
    if (e == E_SKIP) return;
    nb_tensor *r = NULL;
    switch (k) {
    case 0: r = nb_add(a, b); break;
    case 1: r = nb_sub(a, b); break;
    case 2: r = nb_prod(a, b); break;
    case 3: r = nb_div(a, b); break;
    case 4: r = nb_maximum(a, b); break;
    }
    nb_tensor *in[2] = {a, b};
    if (r) graph_rules(r, 2, in);
    after(z, r, e, e == E_FAIL ? -1 : n, s);
}

static void op_reduce(fz *z, uint8_t which) {
    nb_tensor *a = arg(z);
    int axis = axis_arg(z);
    bool keep = u8(z) & 1;
    static const char *const names[8] = {"sum", "mean", "max", "sum_axis", "mean_axis",
                                         "max_axis", "softmax", "log_softmax"};
    int k = which % 8;
    cur_op = names[k];
    int e = E_OK, n = 0;
    int64_t s[NB_MAX_DIMS], numel;
    bool zero, neg;
    if (!a) e = E_FAIL;
    else if (k < 3) {
        if (k == 2 && nb_numel(a) == 0) e = E_FAIL;
    } else {
        int nd = nb_ndim(a), ax = axis < 0 ? axis + nd : axis;
        if (nd == 0 || axis < -nd || axis >= nd) e = E_FAIL;
        else if (k == 5 && nb_shape(a)[ax] == 0) e = E_FAIL;
        else if (nb_numel(a) == 0 && sat_prod(nd, nb_shape(a), &zero, &neg) > 65536) e = E_SKIP;
        /* (an empty tensor with long axes: the kernels loop over outer x
           axis even when the output is empty; in this instrumented build
           that can be a minute of nothing, so it is left out) */
        else if (k >= 6) {
            n = nd;
            memcpy(s, nb_shape(a), (size_t)nd * sizeof *s);
            e = expect_of(classify(n, s, CAP_OUT, &numel));
        } else {
            for (int d = 0; d < nd; d++) {
                if (d != ax) s[n++] = nb_shape(a)[d];
                else if (keep) s[n++] = 1;
            }
            e = expect_of(classify(n, s, CAP_OUT, &numel));
        }
    }
    if (e == E_SKIP) return;
    nb_tensor *r = NULL;
    switch (k) {
    case 0: r = nb_sum(a); break;
    case 1: r = nb_mean(a); break;
    case 2: r = nb_max(a); break;
    case 3: r = nb_sum_axis(a, axis, keep); break;
    case 4: r = nb_mean_axis(a, axis, keep); break;
    case 5: r = nb_max_axis(a, axis, keep); break;
    case 6: r = nb_softmax(a, axis); break;
    case 7: r = nb_log_softmax(a, axis); break;
    }
    if (r) graph_rules(r, 1, &a);
    after(z, r, e, e == E_FAIL ? -1 : n, s);
}

/* numpy's element-wise and reduction extras (minimum, clip, where, the
   comparisons, min, min_axis, argmax, argmin, logsumexp, var), with their
   shape oracle: comparisons and argmax/argmin never record a graph nor carry
   a tangent; min of nothing, an empty argmax axis and n - ddof <= 0 must be
   refused. */
static void op_numpy_ew(fz *z, uint8_t which) {
    static const char *const names[15] = {"minimum", "clip", "where", "eq", "ne", "lt", "le", "gt",
                                          "ge", "min", "min_axis", "argmax", "argmin",
                                          "logsumexp", "var"};
    int k = which % 15;
    cur_op = names[k];
    nb_tensor *a = arg(z), *b = NULL, *c = NULL;
    int e = E_OK, n = 0;
    int64_t s[NB_MAX_DIMS * 2], numel;
    bool zero, neg;
    nb_tensor *r = NULL;
    if (k == 0 || k == 2 || (k >= 3 && k <= 8)) { /* broadcasting: two or three operands */
        b = arg(z);
        if (k == 2) c = arg(z);
        int n1 = 0;
        int64_t s1[NB_MAX_DIMS];
        if (!a || !b || (k == 2 && !c)) e = E_FAIL;
        else if (!bshape(nb_ndim(a), nb_shape(a), nb_ndim(b), nb_shape(b), &n1, s1)) e = E_FAIL;
        else if (k == 2 && !bshape(n1, s1, nb_ndim(c), nb_shape(c), &n, s)) e = E_FAIL;
        else {
            if (k != 2) {
                n = n1;
                memcpy(s, s1, (size_t)n1 * sizeof *s);
            }
            e = expect_of(classify(n, s, CAP_OUT, &numel));
        }
        if (e == E_SKIP) return;
        switch (k) {
        case 0: r = nb_minimum(a, b); break;
        case 2: r = nb_where(a, b, c); break;
        case 3: r = nb_eq(a, b); break;
        case 4: r = nb_ne(a, b); break;
        case 5: r = nb_lt(a, b); break;
        case 6: r = nb_le(a, b); break;
        case 7: r = nb_gt(a, b); break;
        default: r = nb_ge(a, b); break;
        }
        nb_tensor *in[3] = {a, b, c};
        if (r && k <= 2) graph_rules(r, k == 2 ? 3 : 2, in);
    } else if (k == 1) {
        double lo = val(z), hi = val(z);
        r = nb_clip(a, lo, hi);
        if (a) {
            e = is_weird(a) ? E_ANY : E_OK;
            n = nb_ndim(a);
            memcpy(s, nb_shape(a), (size_t)n * sizeof *s);
            if (r) graph_rules(r, 1, &a);
        } else {
            e = E_FAIL;
        }
    } else if (k == 9) {
        if (!a || nb_numel(a) == 0) e = E_FAIL;
        r = nb_min(a);
        if (r) graph_rules(r, 1, &a);
    } else { /* along an axis */
        int axis = axis_arg(z);
        bool keep = u8(z) & 1;
        int ddof = (int)(int8_t)u8(z) % 4; /* -3..3 */
        if (!a) e = E_FAIL;
        else {
            int nd = nb_ndim(a), ax = axis < 0 ? axis + nd : axis;
            if (nd == 0 || axis < -nd || axis >= nd) e = E_FAIL;
            else if ((k == 10 || k == 11 || k == 12) && nb_shape(a)[ax] == 0) e = E_FAIL;
            else if (k == 14 && nb_shape(a)[ax] - ddof <= 0) e = E_FAIL;
            else if (nb_numel(a) == 0 && sat_prod(nd, nb_shape(a), &zero, &neg) > 65536) e = E_SKIP;
            else {
                for (int d = 0; d < nd; d++) {
                    if (d != ax) s[n++] = nb_shape(a)[d];
                    else if (keep) s[n++] = 1;
                }
                e = expect_of(classify(n, s, CAP_OUT, &numel));
            }
        }
        if (e == E_SKIP) return;
        switch (k) {
        case 10: r = nb_min_axis(a, axis, keep); break;
        case 11: r = nb_argmax(a, axis, keep); break;
        case 12: r = nb_argmin(a, axis, keep); break;
        case 13: r = nb_logsumexp(a, axis, keep); break;
        default: r = nb_var(a, axis, keep, ddof); break;
        }
        if (r && (k == 10 || k >= 13)) graph_rules(r, 1, &a);
        if (r && (k == 11 || k == 12) && e != E_FAIL) {
            int64_t len = nb_shape(a)[axis < 0 ? axis + nb_ndim(a) : axis];
            for (int64_t i = 0; i < nb_numel(r); i++) {
                double v = nb_data(r)[i];
                if (!(v >= 0 && v < (double)len && v == floor(v))) violated("argmax/argmin: an index out of range", NULL);
            }
        }
    }
    if (r && ((k >= 3 && k <= 8) || k == 11 || k == 12)) {
        if (nb_requires_grad(r) || nb_num_parents(r) != 0 || nb_tangent(r))
            violated("a comparison or argmax recorded a graph or carries a tangent", NULL);
        for (int64_t i = 0; k <= 8 && i < nb_numel(r); i++)
            if (nb_data(r)[i] != 0.0 && nb_data(r)[i] != 1.0) violated("a comparison gave neither 0 nor 1", NULL);
    }
    after(z, r, e, e == E_FAIL ? -1 : n, s);
}

/* numpy's matmul shape rule */
static bool mm_shape(const nb_tensor *a, const nb_tensor *b, int *nd, int64_t *out, int64_t *k) {
    int na = nb_ndim(a), nbd = nb_ndim(b);
    const int64_t *sa = nb_shape(a), *sb = nb_shape(b);
    if (na == 0 || nbd == 0) return false;
    int64_t n = na == 1 ? 1 : sa[na - 2], ka = sa[na - 1];
    int64_t kb = nbd == 1 ? sb[0] : sb[nbd - 2], m = nbd == 1 ? 1 : sb[nbd - 1];
    if (ka != kb) return false;
    int bn;
    int64_t batch[NB_MAX_DIMS];
    if (!bshape(na > 2 ? na - 2 : 0, sa, nbd > 2 ? nbd - 2 : 0, sb, &bn, batch)) return false;
    *nd = 0;
    for (int d = 0; d < bn; d++) out[(*nd)++] = batch[d];
    if (na > 1) out[(*nd)++] = n;
    if (nbd > 1) out[(*nd)++] = m;
    *k = ka;
    return true;
}

static void op_matmul(fz *z, uint8_t which) {
    bool bt = which & 1;
    cur_op = bt ? "matmul_bt" : "matmul";
    nb_tensor *a = arg(z), *b = arg(z);
    int n = 0, e;
    int64_t s[NB_MAX_DIMS + 2], k = 0, numel = 0;
    if (bt) { /* (n, k) @ (m, k)^T */
        if (!a || !b || nb_ndim(a) != 2 || nb_ndim(b) != 2 || nb_shape(a)[1] != nb_shape(b)[1]) {
            e = E_FAIL;
        } else {
            n = 2;
            s[0] = nb_shape(a)[0];
            s[1] = nb_shape(b)[0];
            k = nb_shape(a)[1];
            e = E_OK;
        }
    }
    if (bt) {
        if (e == E_OK) e = expect_of(classify(n, s, CAP_OUT, &numel));
        int64_t work;
        if (e == E_OK && (__builtin_mul_overflow(numel, k, &work) || work > WORK_CAP)) e = E_SKIP;
    } else if (!a || !b || !mm_shape(a, b, &n, s, &k)) e = E_FAIL;
    else if (n > NB_MAX_DIMS) e = E_FAIL;
    else {
        e = expect_of(classify(n, s, CAP_OUT, &numel));
        int64_t work;
        if (e == E_OK && __builtin_mul_overflow(numel, k, &work)) e = E_SKIP;
        else if (e == E_OK && work > WORK_CAP) e = E_SKIP;
    }
    if (e == E_SKIP) return;
    nb_tensor *r = bt ? nb_matmul_bt(a, b) : nb_matmul(a, b);
    nb_tensor *in[2] = {a, b};
    if (r) graph_rules(r, 2, in);
    after(z, r, e, e == E_FAIL ? -1 : n, s);
}

/* conv2d, max_pool2d, avg_pool2d: the NCHW shape rules of API.md */
static void op_conv(fz *z, uint8_t which) {
    int kind = which % 3;
    cur_op = kind == 0 ? "conv2d" : kind == 1 ? "max_pool2d" : "avg_pool2d";
    nb_tensor *a = arg(z), *w = kind == 0 ? arg(z) : NULL;
    bool with_bias = kind == 0 && (which & 4);
    nb_tensor *b = with_bias ? arg(z) : NULL;
    uint8_t r1 = u8(z), r2 = u8(z);
    int st = r1 == 0x55 ? 0 : 1 + r1 % 3, k = r2 % 4, pad = r2 == 0x55 ? -1 : (r2 >> 2) % 3;
    int e = E_OK;
    int64_t s[4] = {0}, work = 0;
    /* a NULL bias is no bias (the harness clears the error before each call,
       so none is pending: tests/test_conv.c checks the pending case) */
    if (!a || (kind == 0 && !w) || nb_ndim(a) != 4) e = E_FAIL;
    else if (kind == 0) {
        const int64_t *xa = nb_shape(a), *ws = nb_shape(w);
        if (nb_ndim(w) != 4 || xa[1] != ws[1] || st < 1 || pad < 0 || ws[2] < 1 || ws[3] < 1 ||
            (b && (nb_ndim(b) != 1 || nb_shape(b)[0] != ws[0])) || xa[2] + 2 * pad < ws[2] ||
            xa[3] + 2 * pad < ws[3])
            e = E_FAIL;
        else {
            s[0] = xa[0], s[1] = ws[0], s[2] = (xa[2] + 2 * pad - ws[2]) / st + 1;
            s[3] = (xa[3] + 2 * pad - ws[3]) / st + 1;
            int64_t numel = 0;
            e = expect_of(classify(4, s, CAP_OUT, &numel));
            if (e == E_OK && (__builtin_mul_overflow(numel, xa[1] * ws[2] * ws[3], &work) ||
                              work > WORK_CAP))
                e = E_SKIP;
        }
    } else {
        const int64_t *xa = nb_shape(a);
        if (k < 1 || st < 1 || xa[2] < k || xa[3] < k) e = E_FAIL;
        else {
            s[0] = xa[0], s[1] = xa[1], s[2] = (xa[2] - k) / st + 1, s[3] = (xa[3] - k) / st + 1;
            int64_t numel = 0;
            e = expect_of(classify(4, s, CAP_OUT, &numel));
            if (e == E_OK && numel * k * k > WORK_CAP) e = E_SKIP;
        }
    }
    if (e == E_SKIP) return;
    nb_tensor *r = kind == 0 ? nb_conv2d(a, w, b, st, pad)
                 : kind == 1 ? nb_max_pool2d(a, k, st) : nb_avg_pool2d(a, k, st);
    nb_tensor *in[3] = {a, w, b};
    if (r) graph_rules(r, kind == 0 ? (b ? 3 : 2) : 1, in);
    after(z, r, e, e == E_FAIL ? -1 : 4, s);
}

static void op_transpose(fz *z) {
    cur_op = "transpose";
    nb_tensor *a = arg(z);
    nb_tensor *r = nb_transpose(a);
    if (!a) {
        after(z, r, E_FAIL, -1, NULL);
        return;
    }
    int64_t s[NB_MAX_DIMS];
    int nd = nb_ndim(a);
    memcpy(s, nb_shape(a), (size_t)nd * sizeof *s);
    if (nd >= 2) {
        int64_t t = s[nd - 1];
        s[nd - 1] = s[nd - 2];
        s[nd - 2] = t;
    }
    if (r) graph_rules(r, 1, &a);
    after(z, r, is_weird(a) ? E_ANY : E_OK, nd, s);
}

/* A target shape for reshape: a factorisation of numel (valid), or random, or absurd. */
static int reshape_target(fz *z, const nb_tensor *a, int64_t *s) {
    uint8_t mode = u8(z) % 4;
    if (mode >= 2 || !a) return gen_shape(z, s, CAP_OUT);
    int64_t n = nb_numel(a);
    int nd = 1 + u8(z) % 4;
    for (int i = 0; i < nd - 1; i++) {
        int64_t d = 1 + u8(z) % 4;
        if (n % d == 0) {
            s[i] = d;
            n /= d;
        } else {
            s[i] = 1;
        }
    }
    s[nd - 1] = n;
    if (mode == 1) s[u8(z) % nd] = -1;
    return nd;
}

static void op_reshape(fz *z) {
    cur_op = "reshape";
    nb_tensor *a = arg(z);
    int64_t s[NB_MAX_DIMS] = {0};
    int nd = reshape_target(z, a, s);
    bool null_shape = nd > 0 && u8(z) == 0x55;
    int e = E_OK;
    int64_t out[NB_MAX_DIMS] = {0};
    if (!a || null_shape || nd < 0 || nd > NB_MAX_DIMS) e = E_FAIL;
    else {
        int infer = -1, minus = 0;
        int64_t known = 1;
        bool over = false, zero = false, huge_partial = false;
        for (int i = 0; i < nd; i++) {
            out[i] = s[i];
            if (s[i] == -1) {
                minus++;
                infer = i;
            } else if (s[i] < 0) {
                e = E_FAIL;
            } else if (s[i] == 0) {
                zero = true;
            } else if (__builtin_mul_overflow(known, s[i], &known)) {
                over = true;
            }
            if (known > ACCEPT_MAX) huge_partial = true;
        }
        if (zero) known = 0;
        if (minus > 1) e = E_FAIL;
        if (e == E_OK) {
            if (infer >= 0) {
                if (known == 0 || over || nb_numel(a) % known != 0) e = E_FAIL;
                else out[infer] = nb_numel(a) / known;
            } else if (over && !zero) {
                e = E_FAIL;
            } else if (known != nb_numel(a)) {
                e = E_FAIL;
            }
            if (e == E_OK && zero && (huge_partial || over)) e = E_ANY;
            int64_t numel;
            if (e == E_OK && classify(nd, out, CAP_OUT, &numel) == S_ZHUGE) e = E_ANY;
        }
    }
    nb_tensor *r = nb_reshape(a, nd, null_shape ? NULL : s);
    if (r) graph_rules(r, 1, &a);
    after(z, r, e, e == E_FAIL ? -1 : nd, out);
}

static void op_broadcast(fz *z, bool to) {
    cur_op = to ? "broadcast_to" : "sum_to";
    nb_tensor *a = arg(z);
    int64_t s[NB_MAX_DIMS] = {0}, numel;
    int nd;
    uint8_t mode = u8(z) % 3;
    if (a && mode == 0) {
        /* derived from a's shape: valid most of the time */
        int an = nb_ndim(a);
        if (to) {
            int extra = u8(z) % 3;
            nd = an + extra > NB_MAX_DIMS ? an : an + extra;
            for (int i = 0; i < nd - an; i++) s[i] = u8(z) % 4;
            for (int i = 0; i < an; i++) {
                int64_t d = nb_shape(a)[i];
                s[nd - an + i] = d == 1 ? u8(z) % 4 : d;
            }
        } else {
            int drop = an ? u8(z) % (an + 1) : 0;
            nd = an - drop;
            for (int i = 0; i < nd; i++) {
                int64_t d = nb_shape(a)[drop + i];
                s[i] = u8(z) & 1 ? 1 : d;
            }
        }
    } else {
        nd = gen_shape(z, s, CAP_OUT);
    }
    bool null_shape = nd > 0 && u8(z) == 0x55;
    sclass c = classify(nd, null_shape ? NULL : s, CAP_OUT, &numel);
    int e;
    if (!a || c == S_BAD) e = E_FAIL;
    else if (to ? !bto_ok(nb_ndim(a), nb_shape(a), nd, s) : !bto_ok(nd, s, nb_ndim(a), nb_shape(a)))
        e = E_FAIL;
    else e = expect_of(c);
    if (e == E_SKIP) return;
    nb_tensor *r = to ? nb_broadcast_to(a, nd, null_shape ? NULL : s)
                      : nb_sum_to(a, nd, null_shape ? NULL : s);
    if (r) graph_rules(r, 1, &a);
    after(z, r, e, e == E_FAIL ? -1 : nd, s);
}

/* every pool tensor's gradient and tangent has its shape */
static void check_pool(fz *z) {
    for (int i = 0; i < NPOOL; i++)
        if (z->pool[i]) check_tensor(z->pool[i]);
}

static void op_backward(fz *z) {
    cur_op = "backward";
    nb_tensor *t = arg(z);
    nb_tensor *seed = u8(z) & 1 ? arg(z) : NULL;
    int e;
    if (!t || !nb_requires_grad(t)) e = E_FAIL;
    else if (seed && !same_shape(seed, nb_ndim(t), nb_shape(t))) e = E_FAIL;
    else e = z->poked ? E_ANY : E_OK;
    int rc = rc_check(z, nb_backward(t, seed), e);
    z->poked |= rc == 0 && z->grads_seen; /* (it added into the gradients that exist) */
    check_pool(z);
}

static void op_autograd(fz *z) {
    cur_op = "autograd";
    int n_out = u8(z) % 4, n_in = u8(z) % 4; /* 0 is invalid */
    bool use_seeds = u8(z) & 1, cg = u8(z) & 1;
    nb_tensor *outs[3] = {0}, *seeds[3] = {0}, *ins[3] = {0}, *grads[3] = {0};
    int e = n_out >= 1 && n_in >= 1 ? E_OK : E_FAIL;
    for (int j = 0; j < n_out; j++) {
        outs[j] = arg(z);
        if (!outs[j]) e = E_FAIL;
        if (use_seeds) {
            seeds[j] = arg(z);
            if (!seeds[j] || (outs[j] && !same_shape(seeds[j], nb_ndim(outs[j]), nb_shape(outs[j]))))
                e = E_FAIL;
        }
    }
    for (int i = 0; i < n_in; i++) {
        ins[i] = arg(z);
        if (!ins[i]) e = E_FAIL;
    }
    if (z->poked && e == E_OK) e = E_ANY; /* (a poked input: refused, with a message) */
    int rc = rc_check(z, nb_autograd(n_out, outs, use_seeds ? seeds : NULL, n_in, ins, grads, cg),
                      e);
    for (int i = 0; i < n_in; i++) {
        if (rc == 0) {
            if (!grads[i]) violated("autograd succeeded with a NULL gradient", NULL);
            check_tensor(grads[i]);
            if (!same_shape(grads[i], nb_ndim(ins[i]), nb_shape(ins[i]))) {
                char b[160];
                snprintf(b, sizeof b, "input %d %s (nd %d), gradient nd %d", i, nb_name(ins[i]),
                         nb_ndim(ins[i]), nb_ndim(grads[i]));
                violated("autograd: a gradient's shape differs from its input's", b);
            }
        } else if (grads[i]) {
            violated("autograd failed but left a gradient", NULL);
        }
    }
    /* only after every check: put() may release a pool tensor that ins[] still names */
    for (int i = 0; i < n_in && rc == 0; i++) put(z, grads[i]);
}

static void op_dual(fz *z) {
    cur_op = "dual";
    nb_tensor *p = arg(z), *t = arg(z);
    int e = p && t && same_shape(t, nb_ndim(p), nb_shape(p)) ? E_OK : E_FAIL;
    nb_tensor *r = nb_dual(p, t);
    if (r) {
        if (!nb_tangent(r)) violated("dual without a tangent", NULL);
        if (nb_requires_grad(r) != (nb_requires_grad(p) && nb_is_grad_enabled()))
            violated("dual: requires_grad is wrong", NULL);
    }
    after(z, r, e, e == E_OK ? nb_ndim(p) : -1, e == E_OK ? nb_shape(p) : NULL);
}

static void op_misc(fz *z, uint8_t which) {
    nb_tensor *a = arg(z);
    switch (which % 16) {
    case 0:
        cur_op = "grad";
        z->grads_seen |= nb_grad(a) != NULL;
        put(z, nb_grad(a));
        break;
    case 1:
        cur_op = "tangent";
        put(z, nb_tangent(a));
        break;
    case 2:
        cur_op = "parent";
        put(z, nb_parent(a, (int)(int8_t)u8(z) % 4));
        break;
    case 3:
        cur_op = "set_requires_grad";
        nb_set_requires_grad(a, u8(z) & 1);
        if (!a) check_msg(z);
        break;
    case 4:
        cur_op = "set_grad_enabled";
        nb_set_grad_enabled(u8(z) & 1);
        break;
    case 5:
        cur_op = "anomaly";
        z->anomaly = u8(z) & 1;
        nb_set_anomaly_detection(z->anomaly);
        break;
    case 6:
        cur_op = "zero_grad";
        z->poked |= z->grads_seen && nb_grad(a); /* (bumps the gradient's version) */
        nb_zero_grad(a);
        break;
    case 7: {
        cur_op = "detach";
        nb_tensor *r = nb_detach(a);
        if (r && nb_requires_grad(r)) violated("detach requires grad", NULL);
        after(z, r, a ? (is_weird(a) ? E_ANY : E_OK) : E_FAIL, a ? nb_ndim(a) : -1,
              a ? nb_shape(a) : NULL);
        break;
    }
    case 8: {
        cur_op = "copy";
        nb_tensor *r = nb_copy(a);
        after(z, r, a ? (is_weird(a) ? E_ANY : E_OK) : E_FAIL, a ? nb_ndim(a) : -1,
              a ? nb_shape(a) : NULL);
        break;
    }
    case 9: {
        cur_op = "item";
        double v = nb_item(a);
        if (!a || nb_numel(a) != 1) {
            if (!isnan(v)) violated("item of a non-scalar is not NaN", NULL);
            check_msg(z);
        } else if (memcmp(&v, nb_data(a), sizeof v) != 0) {
            violated("item differs from the data", NULL);
        }
        break;
    }
    case 10: {
        cur_op = "repr";
        char b[80];
        size_t size = u8(z) % 80;
        memset(b, 'x', sizeof b);
        int rc = nb_repr(a, b, size);
        if (rc < 0) {
            if (rc != -1) violated("repr returned < -1", NULL);
            check_msg(z);
        } else if (size > 0) {
            size_t want = (size_t)rc < size - 1 ? (size_t)rc : size - 1;
            if (memchr(b, 0, size) == NULL || strlen(b) != want)
                violated("repr: output not NUL-terminated at min(len, size-1)", NULL);
        }
        if (size < sizeof b && b[size] != 'x') violated("repr wrote past size", NULL);
        break;
    }
    case 11: {
        cur_op = "dot";
        int rc = nb_dot(a, u8(z) == 0x44 ? NULL : devnull);
        if (rc != 0) {
            if (rc != -1) violated("dot returned neither 0 nor -1", NULL);
            check_msg(z);
        }
        break;
    }
    case 12: {
        cur_op = "set_name";
        char name[48];
        size_t len = u8(z) % 48;
        for (size_t i = 0; i < len; i++) name[i] = (char)(u8(z) | 1);
        name[len < sizeof name ? len : sizeof name - 1] = 0;
        nb_set_name(a, u8(z) == 0x66 ? NULL : name);
        if (a && !nb_name(a)) violated("NULL name after set_name", NULL);
        if (a && strlen(nb_name(a)) > 63) violated("a name longer than documented", NULL);
        break;
    }
    case 13: {
        cur_op = "poke";
        double *d = nb_data_mut(a);
        z->poked |= a != NULL;
        if (a && nb_numel(a) > 0) d[u16(z) % nb_numel(a)] = val(z);
        break;
    }
    case 14: {
        cur_op = "scope";
        uint8_t b = u8(z) % 4;
        if (b == 0 && z->depth < 8) z->marks[z->depth++] = nb_scope_begin();
        else if (b == 1 && z->depth > 0) nb_scope_end(z->marks[--z->depth]);
        else if (b == 2) {
            nb_scope_end(0);
            z->depth = 0;
        } else nb_trim();
        nb_mem_stats st;
        nb_memory_stats(&st);
        if (st.live_tensors < 0 || st.live_bytes < 0 || st.cached_bytes < 0)
            violated("negative memory statistics", NULL);
        break;
    }
    default: {
        if (u8(z) & 1) {
            cur_op = "names_reset";
            nb_names_reset();
        } else {
            cur_op = "retain_grad";
            nb_retain_grad(a);
        }
        break;
    }
    }
}

/* ---- custom operations: callbacks whose behaviour the bytes choose ------------------------- */
static int fz_states_live; /* user states made and not yet freed: must reach 0 */
static void fz_free_state(void *p) {
    fz_states_live--;
    free(p);
}
typedef struct { uint8_t mode; } fz_state; /* bit 0: backward fails, 1: NULL grad, 2: wrong shape,
                                             3: forward returns NULL, 4: save the inputs */
static nb_tensor *fz_fwd(nb_ctx *c, int n, nb_tensor *const *x) {
    const fz_state *st = nb_ctx_state(c);
    if (st->mode & 8) return NULL;
    if (st->mode & 16) nb_ctx_save(c, n, x);
    nb_tensor *y = nb_tanh(x[0]);
    for (int i = 1; i < n; i++) y = nb_add(y, x[i]); /* may fail to broadcast: forward fails */
    return y;
}
static int fz_bwd(nb_ctx *c, nb_tensor *g, nb_tensor **gx) {
    const fz_state *st = nb_ctx_state(c);
    if (st->mode & 1) return -1;
    for (int i = 0; i < nb_ctx_num_inputs(c); i++) {
        if (!nb_ctx_needs_grad(c, i) || (st->mode & 2)) continue;
        gx[i] = (st->mode & 4) ? nb_ones(1, (int64_t[]){7}) : g; /* (ones (7,): wrong) */
    }
    return 0;
}
static const nb_function fz_custom = {"fzop", fz_fwd, fz_bwd, NULL};

static void op_custom(fz *z) {
    cur_op = "apply";
    nb_tensor *in[4];
    int n = 1 + u8(z) % 4;
    for (int i = 0; i < n; i++) in[i] = arg(z);
    fz_state *st = malloc(sizeof *st);
    if (!st) return;
    st->mode = u8(z);
    fz_states_live++;
    z->poked |= (st->mode & 5) != 0; /* a failing backward callback: a later backward may refuse */
    nb_tensor *r = nb_apply(&fz_custom, n, in, st, fz_free_state);
    if (!r) {
        check_msg(z);
        return;
    }
    check_tensor(r);
    bool req = false;
    for (int i = 0; i < n; i++) req |= nb_requires_grad(in[i]);
    req &= nb_is_grad_enabled();
    if (nb_requires_grad(r) != req) violated("requires_grad of a custom op's result is wrong", NULL);
    if (req && (u8(z) & 1)) { /* its backward: failing callbacks are errors, never crashes */
        int rc = nb_backward(nb_sum(r), NULL);
        if (rc != 0 && rc != -1) violated("return code neither 0 nor -1", NULL);
        if (rc == -1) check_msg(z);
        check_pool(z);
    }
    put(z, r);
}

static void op_higher(fz *z, uint8_t which) {
    nb_tensor *x = arg(z), *v = arg(z);
    nb_fn f = u8(z) == 0x77 ? NULL : fns[u8(z) % 8];
    /* user functions compute shapes the oracle does not see: keep every
       size small (a (N, 0) input would give f_mm an (N, N) result) */
    for (int q = 0; q < 2; q++) {
        nb_tensor *t = q ? v : x;
        if (!t) continue;
        if (nb_numel(t) > 24) return;
        for (int d = 0; d < nb_ndim(t); d++)
            if (nb_shape(t)[d] > 24) return;
    }
    nb_tensor *r = NULL;
    switch (which % 5) {
    case 0:
        cur_op = "jacobian";
        r = nb_jacobian(f, x, NULL);
        break;
    case 1:
        cur_op = "hessian";
        r = nb_hessian(f, x, NULL);
        break;
    case 2:
        cur_op = "hvp";
        r = nb_hvp(f, x, v, NULL);
        if (r && !same_shape(r, nb_ndim(x), nb_shape(x))) violated("hvp: wrong shape", NULL);
        break;
    default: {
        cur_op = (which % 5) == 3 ? "gradcheck" : "gradgradcheck";
        int n = 1 + u8(z) % 3;
        nb_tensor *in[3] = {x, v, arg(z)};
        for (int i = 0; i < n; i++) {
            if (in[i] && nb_numel(in[i]) > 12) return;
            for (int d = 0; in[i] && d < nb_ndim(in[i]); d++)
                if (nb_shape(in[i])[d] > 12) return;
        }
        double err = 0;
        nb_multi_fn mf = u8(z) == 0x78 ? NULL : mfns[u8(z) % 3];
        int rc = (which % 5) == 3 ? nb_gradcheck(mf, n, in, NULL, 1e-6, &err)
                                  : nb_gradgradcheck(mf, n, in, NULL, 1e-4, &err);
        /* 0 pass, 1 fail (random inputs can defeat finite differences), -1 error */
        if (rc == 0 && !(err <= NB_GRADCHECK_TOL)) violated("gradcheck passed above its tolerance", NULL);
        if (rc == 1) {
            if (err <= NB_GRADCHECK_TOL) violated("gradcheck failed within its tolerance", NULL);
            check_msg(z);
            rc = 0;
        }
        rc_check(z, rc, E_ANY);
        return;
    }
    }
    if (!r) {
        check_msg(z);
        return;
    }
    check_tensor(r);
    if ((which % 5) < 2) {
        if (nb_ndim(r) != 2 || nb_shape(r)[1] != nb_numel(x))
            violated("jacobian/hessian: wrong shape", NULL);
        if ((which % 5) == 1 && nb_shape(r)[0] != nb_numel(x))
            violated("hessian: not square", NULL);
    }
    put(z, r);
}

/* ---- nn: losses, data helpers, parameters, optimizers ------------------------------------ */
static void op_nn(fz *z, uint8_t which) {
    nb_tensor *a = arg(z), *b = arg(z);
    switch (which % 12) {
    case 0: {
        cur_op = "mse_loss";
        nb_tensor *r = nb_mse_loss(a, b);
        int e = a && b && same_shape(b, nb_ndim(a), nb_shape(a)) ? E_OK : E_FAIL;
        after(z, r, e, 0, NULL);
        break;
    }
    case 1: {
        cur_op = "cross_entropy";
        /* labels made valid half of the time */
        if (a && nb_ndim(a) == 2 && nb_shape(a)[0] >= 1 && nb_shape(a)[1] >= 1 && (u8(z) & 1)) {
            int64_t B = nb_shape(a)[0], C = nb_shape(a)[1];
            for (int64_t i = 0; i < B && i < CAP; i++) buf[i] = (double)(u8(z) % C);
            b = nb_vector(buf, B);
            if (!b) return;
        }
        after(z, nb_cross_entropy(a, b), E_ANY, 0, NULL);
        break;
    }
    case 2: {
        cur_op = "bce_with_logits";
        int e = a && b && same_shape(b, nb_ndim(a), nb_shape(a)) && nb_numel(a) > 0 ? E_OK : E_FAIL;
        after(z, nb_bce_with_logits(a, b), e, 0, NULL);
        break;
    }
    case 3: {
        cur_op = "gather_rows";
        int64_t idx[16], n = (int8_t)u8(z) % 17;
        for (int i = 0; i < 16; i++) idx[i] = (int8_t)u8(z) % 8;
        bool null_idx = u8(z) == 0x99;
        int e = E_OK;
        int64_t s[NB_MAX_DIMS];
        int nd = a ? nb_ndim(a) : -1;
        if (!a || nd < 1 || n < 0 || (null_idx && n > 0)) e = E_FAIL;
        else {
            for (int64_t i = 0; i < n; i++)
                if (idx[i] < 0 || idx[i] >= nb_shape(a)[0]) e = E_FAIL;
            memcpy(s, nb_shape(a), (size_t)nd * sizeof *s);
            s[0] = n;
            int64_t numel;
            if (e == E_OK) e = expect_of(classify(nd, s, CAP_OUT, &numel));
        }
        if (e == E_SKIP) return;
        nb_tensor *r = nb_gather_rows(a, null_idx ? NULL : idx, n);
        if (r && nb_requires_grad(r)) violated("gather_rows result requires grad", NULL);
        after(z, r, e, e == E_FAIL ? -1 : nd, s);
        break;
    }
    case 4: {
        cur_op = "argmax_rows";
        static int64_t out[CAP_OUT];
        if (a && nb_ndim(a) == 2 && nb_shape(a)[0] > CAP_OUT) return;
        int e = a && nb_ndim(a) == 2 && nb_shape(a)[1] >= 1 ? E_OK : E_FAIL;
        int rc = rc_check(z, nb_argmax_rows(a, out), e);
        for (int64_t i = 0; rc == 0 && i < nb_shape(a)[0]; i++)
            if (out[i] < 0 || out[i] >= nb_shape(a)[1]) violated("argmax out of range", NULL);
        break;
    }
    case 5: {
        cur_op = "accuracy";
        double acc = nb_accuracy(a, b);
        if (isnan(acc)) check_msg(z);
        else if (acc < 0 || acc > 1) violated("accuracy out of [0, 1]", NULL);
        break;
    }
    case 6: {
        cur_op = "activate";
        int act = u8(z) % 6;
        nb_tensor *r = nb_activate(a, (nb_activation)act);
        if (!r) check_msg(z);
        else {
            check_tensor(r);
            if (!same_shape(r, nb_ndim(a), nb_shape(a))) violated("activate: wrong shape", NULL);
            put(z, r);
        }
        break;
    }
    case 7: {
        cur_op = "params_add";
        if (!z->P || z->nparams >= 32) return;
        int64_t s[NB_MAX_DIMS] = {0}, numel;
        int nd = gen_shape(z, s, 512);
        sclass c = classify(nd, s, 512, &numel);
        if (c == S_BIG) return;
        char name[8];
        snprintf(name, sizeof name, "p%d", u8(z) % 24);
        bool dup = nb_params_find(z->P, name) != NULL;
        if (u8(z) == 0x11) name[0] = 0;
        nb_tensor *r = nb_params_add(z->P, name, nd, s);
        int e = dup || !name[0] || c == S_BAD ? E_FAIL : c == S_ZHUGE ? E_ANY : E_OK;
        if (r) z->nparams++;
        if (r && !nb_requires_grad(r)) violated("a parameter does not require grad", NULL);
        after(z, r, e, e == E_FAIL ? -1 : nd, s);
        break;
    }
    case 8: {
        cur_op = "optim";
        if (!z->P) return;
        uint8_t c = u8(z) % 5;
        if (c == 0) {
            nb_optim_free(z->opt);
            z->opt = u8(z) & 1 ? nb_sgd_new(z->P, val(z), val(z), val(z))
                               : nb_adam_new(z->P, val(z), val(z), val(z), val(z), val(z));
            if (!z->opt) check_msg(z);
        } else if (c <= 2) {
            if (z->opt) {
                int64_t t0 = nb_optim_steps(z->opt);
                int rc = rc_check(z, nb_optim_step(z->opt), E_ANY);
                if (nb_optim_steps(z->opt) != t0 + (rc == 0)) violated("optim_steps miscounts", NULL);
                z->poked |= rc == 0; /* (bumps the parameters it moves) */
                double lr = val(z);
                double before = nb_optim_lr(z->opt);
                nb_optim_set_lr(z->opt, lr);
                double after = nb_optim_lr(z->opt);
                if (!(lr > 0 && isfinite(lr)) ? after != before : after != lr)
                    violated("optim_set_lr: a bad rate accepted or a good one ignored", NULL);
            }
        } else if (c == 3) {
            z->poked |= z->grads_seen; /* (bumps every parameter's gradient) */
            nb_params_zero_grad(z->P);
        } else {
            /* (nb_params_data / nb_params_grad below hand the slabs out writable:
               every parameter and gradient counts as changed) */
            z->poked |= nb_params_count(z->P) > 0;
            nb_params_summary(z->P, devnull);
            int64_t n = nb_params_count(z->P), tot = 0;
            for (int64_t i = 0; i < n; i++) {
                nb_tensor *t = nb_params_get(z->P, i);
                if (!t || !nb_params_name(z->P, i)) violated("params_get: NULL in range", NULL);
                if (nb_params_find(z->P, nb_params_name(z->P, i)) != t)
                    violated("params_find disagrees with params_get", NULL);
                if (nb_data(t) != nb_params_data(z->P) + tot)
                    violated("a parameter's data is not in the slab", NULL);
                tot += nb_numel(t);
                check_tensor(t);
            }
            if (tot != nb_params_numel(z->P)) violated("params_numel is not the sum", NULL);
            if (tot > 0 && (!nb_params_data(z->P) || !nb_params_grad(z->P)))
                violated("NULL slab for a non-empty store", NULL);
            for (int64_t i = 0; i < n; i++) {
                nb_tensor *t = nb_params_get(z->P, i);
                if (nb_grad(t) && nb_data(nb_grad(t)) != nb_params_grad(z->P) + (nb_data(t) - nb_params_data(z->P)))
                    violated("a parameter's gradient is not in the gradient slab", NULL);
            }
            if (nb_params_get(z->P, n) || nb_params_get(z->P, -1)) violated("params_get out of range", NULL);
        }
        break;
    }
    case 9: {
        cur_op = "mlp";
        if (!z->P || z->nparams >= 24) return;
        if (u8(z) & 1) {
            int ns = u8(z) % 5;
            int64_t sizes[4];
            for (int i = 0; i < 4; i++) sizes[i] = (int8_t)u8(z) % 9;
            char name[8];
            snprintf(name, sizeof name, "m%d", u8(z) % 4);
            nb_mlp *m = nb_mlp_new(z->P, name, ns, sizes, (nb_activation)(u8(z) % 5),
                                   (nb_init_kind)(u8(z) % 7), u8(z));
            if (!m) check_msg(z);
            else {
                z->nparams += 2 * (ns - 1);
                nb_mlp_free(z->mlp);
                z->mlp = m;
            }
        } else if (z->mlp) {
            nb_tensor *r = nb_mlp_forward(z->mlp, a);
            if (!r) check_msg(z);
            else {
                check_tensor(r);
                put(z, r);
            }
            nb_mlp_layer(z->mlp, (int)(int8_t)u8(z));
            nb_mlp_num_layers(z->mlp);
        }
        break;
    }
    case 10: {
        cur_op = "linear";
        if (!z->P || z->nparams >= 24) return;
        if (u8(z) & 1) {
            char name[8];
            snprintf(name, sizeof name, "l%d", u8(z) % 4);
            nb_linear l;
            int rc = nb_linear_init(&l, z->P, name, (int8_t)u8(z) % 9, (int8_t)u8(z) % 9, u8(z) & 1,
                                    (nb_init_kind)(u8(z) % 7), u8(z));
            if (rc != 0) rc_check(z, rc, E_ANY);
            else {
                z->nparams += 2;
                z->lin = l;
                z->has_lin = true;
            }
        } else if (z->has_lin) {
            nb_tensor *r = nb_linear_forward(&z->lin, a);
            if (!r) check_msg(z);
            else {
                check_tensor(r);
                put(z, r);
            }
        }
        break;
    }
    default: {
        cur_op = "init_tensor";
        int rc = nb_init_tensor(a, (nb_init_kind)(u8(z) % 8), (int8_t)u8(z), (int8_t)u8(z), u8(z));
        rc_check(z, rc, E_ANY);
        z->poked |= rc == 0; /* (bumps a's version) */
        break;
    }
    }
}

static void op_data(fz *z, uint8_t which) {
    switch (which % 3) {
    case 0: {
        cur_op = "permutation";
        static int64_t out[CAP];
        static bool seen[CAP];
        int64_t n = (int16_t)u16(z) % (CAP + 1);
        nb_permutation(n, u64(z), out);
        if (n > 0) {
            memset(seen, 0, (size_t)n);
            for (int64_t i = 0; i < n; i++) {
                if (out[i] < 0 || out[i] >= n || seen[out[i]]) violated("not a permutation", NULL);
                seen[out[i]] = true;
            }
        }
        break;
    }
    case 1: {
        cur_op = "batcher";
        int64_t n = (int16_t)u16(z) % 600, bs = (int8_t)u8(z);
        bool shuffle = u8(z) & 1, drop = u8(z) & 1;
        nb_batcher *b = nb_batcher_new(n, bs, shuffle, drop, u8(z));
        if (!b) {
            const char *m = check_msg(z);
            if (n >= 1 && bs >= 1 && !injected(z)) violated("valid batcher refused", m);
            break;
        }
        for (int ep = 0; ep < 2; ep++) {
            int64_t total = 0, k, batches = 0;
            const int64_t *idx;
            while ((k = nb_batcher_next(b, &idx)) > 0) {
                for (int64_t i = 0; i < k; i++)
                    if (idx[i] < 0 || idx[i] >= n) violated("batch index out of range", NULL);
                if (k > bs) violated("batch larger than batch_size", NULL);
                total += k;
                batches++;
            }
            if (total != (drop ? n - n % bs : n)) violated("an epoch does not cover the data", NULL);
            if (batches != nb_batcher_num_batches(b)) violated("num_batches is wrong", NULL);
        }
        if (nb_batcher_epoch(b) != 2) violated("epoch count is wrong", NULL);
        nb_batcher_free(b);
        break;
    }
    default: {
        cur_op = "rng";
        nb_rng r;
        nb_rng_seed(&r, u64(z));
        int64_t n = (int64_t)u64(z);
        for (int i = 0; i < 8; i++) {
            int64_t k = nb_rng_below(&r, n);
            if (n >= 1 ? (k < 0 || k >= n) : k != 0) violated("rng_below out of range", NULL);
            (void)nb_rng_next(&r);
            double u = nb_rng_uniform(&r), g = nb_rng_normal(&r);
            if (!(u >= 0 && u < 1) || !isfinite(g)) violated("rng value out of range", NULL);
        }
        break;
    }
    }
}

/* the SVG plots: any arguments, no crash; errors with a message */
static void op_plot(fz *z) {
    cur_op = "plot";
    int np = (int8_t)u8(z) % 5;
    nb_plot *pl = nb_plot_new(np, val(z) * 100, val(z) * 100);
    if (!pl) {
        check_msg(z);
        return;
    }
    static double xs[64], ys[64], zs[64];
    static uint32_t rgb[64];
    for (int i = 0; i < 64; i++) {
        xs[i] = val(z);
        ys[i] = val(z);
        zs[i] = val(z);
        rgb[i] = (uint32_t)u8(z) * 0x10101u;
    }
    for (int step = 0; step < 8 && more(z); step++) {
        int rc = 0, nx = u8(z) % 9, ny = u8(z) % 9, n = (int8_t)u8(z) % 65;
        const char *col = u8(z) & 1 ? "#1f77b4" : NULL;
        switch (u8(z) % 10) {
        case 0: rc = nb_plot_panel(pl, (int8_t)u8(z) % 6, val(z), val(z), val(z), val(z), "t", NULL, "y"); break;
        case 1: rc = nb_plot_heatmap(pl, nx, ny, zs, val(z), val(z)); break;
        case 2: rc = nb_plot_cells(pl, nx, ny, rgb); break;
        case 3: rc = nb_plot_contour(pl, nx, ny, zs, val(z), val(z), (int8_t)u8(z) % 12, col, val(z)); break;
        case 4: rc = nb_plot_line(pl, n, xs, ys, col, val(z), val(z)); break;
        case 5: rc = nb_plot_points(pl, n, xs, ys, col, val(z)); break;
        case 6: rc = nb_plot_arrows(pl, n, xs, ys, zs, xs, val(z), col); break;
        case 7: rc = nb_plot_legend(pl, u8(z) & 1 ? "label" : NULL, col); break;
        case 8: {
            char c[8];
            nb_plot_colormap(val(z), c);
            if (c[0] != '#' || strlen(c) != 7) violated("colormap is not #rrggbb", c);
            break;
        }
        default: {
            char path[64];
            snprintf(path, sizeof path, "/tmp/fuzz_ops_%d.svg", (int)getpid());
            rc = nb_plot_save(pl, path);
            remove(path);
        }
        }
        if (rc != 0 && rc != -1) violated("plot call returned neither 0 nor -1", NULL);
        if (rc == -1) check_msg(z);
        nb_clear_error();
    }
    nb_plot_free(pl);
}

/* save then load into the same store: must round-trip bit for bit */
static void op_save_load(fz *z) {
    cur_op = "params_save/load";
    if (!z->P) return;
    char path[64];
    snprintf(path, sizeof path, "/tmp/fuzz_ops_%d.nbp", (int)getpid());
    int64_t n = nb_params_numel(z->P);
    static double before[1 << 15];
    if (n == 0 || n > (int64_t)(sizeof before / sizeof *before)) return;
    z->poked = true; /* (nb_params_data and the load change every parameter in place) */
    memcpy(before, nb_params_data(z->P), (size_t)n * sizeof(double));
    if (rc_check(z, nb_params_save(z->P, path), E_OK) == 0) {
        double *d = nb_params_data(z->P);
        for (int64_t i = 0; i < n; i++) d[i] = -1.0;
        if (rc_check(z, nb_params_load(z->P, path), E_OK) == 0 &&
            memcmp(before, nb_params_data(z->P), (size_t)n * sizeof(double)) != 0)
            violated("save/load does not round-trip", NULL);
        /* a store with one more parameter must refuse the file, unchanged */
        nb_params *Q = nb_params_new();
        if (Q) {
            for (int64_t i = 0; i < nb_params_count(z->P); i++) {
                nb_tensor *t = nb_params_get(z->P, i);
                nb_params_add(Q, nb_params_name(z->P, i), nb_ndim(t), nb_shape(t));
            }
            nb_params_add(Q, "extra", 0, NULL);
            nb_clear_error();
            rc_check(z, nb_params_load(Q, path), E_FAIL);
            nb_params_free(Q);
        }
    }
    remove(path);
}

/* ---- numpy's shape and indexing ops: permute, expand_dims, squeeze, slice, take, concat, stack.
 * The oracle: numpy's rules for axes (negative counting from the end, or in
 * the result for expand_dims/stack), Python's slice.indices for the length
 * of a slice, numpy's take (indices in [-size, size)), concatenate (equal
 * ndim >= 1, sizes equal except along axis) and stack (equal shapes). */
static int64_t slice_bound(fz *z) {
    static const int64_t special[] = {NB_NONE, INT64_MAX, INT64_MIN + 1, ((int64_t)1 << 62), -((int64_t)1 << 62)};
    uint8_t b = u8(z);
    if (b >= 240) return special[b % 5];
    return (int64_t)(int8_t)b % 9;
}
/* Python's slice(start, stop, step).indices(size) length (step != 0) */
static int64_t oracle_slice_len(int64_t size, int64_t start, int64_t stop, int64_t step) {
    if (step == NB_NONE) step = 1;
    int64_t lo = step > 0 ? 0 : -1, hi = step > 0 ? size : size - 1;
    int64_t b[2] = {start, stop};
    for (int i = 0; i < 2; i++) {
        if (b[i] == NB_NONE) b[i] = (step > 0) == (i == 0) ? lo : hi;
        else if (b[i] < 0) b[i] += size;
        b[i] = b[i] < lo ? lo : b[i] > hi ? hi : b[i];
    }
    if (step > 0) return b[1] > b[0] ? (b[1] - b[0] - 1) / step + 1 : 0;
    return b[0] > b[1] ? (b[0] - b[1] - 1) / -step + 1 : 0;
}

static void op_numpy_shape(fz *z, uint8_t which) {
    static const char *const names[7] = {"permute", "expand_dims", "squeeze", "slice", "take", "concat", "stack"};
    int k = which % 7;
    cur_op = names[k];
    int axis = axis_arg(z), e = E_OK, n = 0;
    int64_t s[NB_MAX_DIMS + 1] = {0}, numel;
    nb_tensor *r = NULL, *a = NULL, *ts[80];
    int nts = 1;
    if (k < 5) {
        a = arg(z);
        ts[0] = a;
    }
    int nd = a ? nb_ndim(a) : 0, ax = axis < 0 ? axis + nd : axis;
    bool ax_ok = a && nd > 0 && axis >= -nd && axis < nd;
    switch (k) {
    case 0: {
        int axes[NB_MAX_DIMS];
        uint8_t mode = u8(z) % 4;
        for (int i = 0; i < NB_MAX_DIMS; i++) axes[i] = i;
        for (int i = nd - 1; i > 0; i--) { /* a shuffle: valid */
            int j = u8(z) % (i + 1), t = axes[i];
            axes[i] = axes[j];
            axes[j] = t;
        }
        if (mode == 1)
            for (int i = 0; i < nd; i++) axes[i] -= u8(z) & 1 ? nd : 0;
        if (mode == 2 && nd > 0) axes[u8(z) % nd] = (int)(int8_t)u8(z) % 10; /* maybe repeated or out of range */
        if (!a) e = E_FAIL;
        bool seen[NB_MAX_DIMS] = {false};
        for (int i = 0; a && i < nd && mode != 3; i++) {
            int v = axes[i] < 0 ? axes[i] + nd : axes[i];
            if (v < 0 || v >= nd || seen[v]) e = E_FAIL;
            else {
                seen[v] = true;
                s[i] = nb_shape(a)[v];
            }
        }
        for (int i = 0; a && i < nd && mode == 3; i++) s[i] = nb_shape(a)[nd - 1 - i];
        n = nd;
        r = nb_permute(a, mode == 3 ? NULL : axes);
        break;
    }
    case 1:
        n = nd + 1;
        ax = axis < 0 ? axis + n : axis;
        if (!a || n > NB_MAX_DIMS || axis < -n || axis >= n) e = E_FAIL;
        else
            for (int d = 0, j = 0; d < n; d++) s[d] = d == ax ? 1 : nb_shape(a)[j++];
        r = nb_expand_dims(a, axis);
        break;
    case 2:
        if (!ax_ok || nb_shape(a)[ax] != 1) e = E_FAIL;
        else
            for (int d = 0; d < nd; d++)
                if (d != ax) s[n++] = nb_shape(a)[d];
        r = nb_squeeze(a, axis);
        break;
    case 3: {
        int64_t start = slice_bound(z), stop = slice_bound(z), step = slice_bound(z);
        if (!ax_ok || step == 0) e = E_FAIL;
        else {
            n = nd;
            memcpy(s, nb_shape(a), (size_t)nd * sizeof *s);
            s[ax] = oracle_slice_len(s[ax], start, stop, step);
        }
        r = nb_slice(a, axis, start, stop, step);
        break;
    }
    case 4: {
        int64_t idx[8], ni = u8(z) % 9;
        bool null_idx = u8(z) == 0x55;
        for (int i = 0; i < ni; i++) idx[i] = (int64_t)(int8_t)u8(z) % 7;
        if (!ax_ok || (null_idx && ni > 0)) e = E_FAIL;
        else {
            n = nd;
            memcpy(s, nb_shape(a), (size_t)nd * sizeof *s);
            for (int i = 0; i < ni; i++)
                if (idx[i] < -s[ax] || idx[i] >= s[ax]) e = E_FAIL;
            s[ax] = ni;
        }
        r = nb_take(a, null_idx ? NULL : idx, ni, axis);
        break;
    }
    default: { /* concat, stack: 0 to 5 operands, or 65 to 80 copies of one (a tree of nodes) */
        uint8_t c = u8(z);
        nts = c & 0x80 ? 65 + c % 16 : c % 6;
        for (int i = 0; i < nts; i++) ts[i] = (c & 0x80) && i ? ts[0] : arg(z);
        bool any_null = false;
        for (int i = 0; i < nts; i++) any_null |= !ts[i];
        if (nts == 0 || any_null) e = E_FAIL;
        else {
            const nb_tensor *t0 = ts[0];
            nd = nb_ndim(t0);
            if (k == 5) {
                ax = axis < 0 ? axis + nd : axis;
                if (nd == 0 || axis < -nd || axis >= nd) e = E_FAIL;
                n = nd;
                for (int i = 0; e == E_OK && i < nts; i++) {
                    if (nb_ndim(ts[i]) != nd) e = E_FAIL;
                    for (int d = 0; e == E_OK && d < nd; d++)
                        if (d != ax && nb_shape(ts[i])[d] != nb_shape(t0)[d]) e = E_FAIL;
                }
                if (e == E_OK) {
                    memcpy(s, nb_shape(t0), (size_t)nd * sizeof *s);
                    s[ax] = 0;
                    for (int i = 0; e == E_OK && i < nts; i++)
                        if (__builtin_add_overflow(s[ax], nb_shape(ts[i])[ax], &s[ax])) e = E_FAIL;
                }
            } else {
                n = nd + 1;
                ax = axis < 0 ? axis + n : axis;
                for (int i = 1; i < nts; i++)
                    if (!same_shape(ts[i], nd, nb_shape(t0))) e = E_FAIL;
                if (n > NB_MAX_DIMS || axis < -n || axis >= n) e = E_FAIL;
                else
                    for (int d = 0, j = 0; d < n; d++) s[d] = d == ax ? nts : nb_shape(t0)[j++];
            }
        }
        if (e == E_OK) e = expect_of(classify(n, s, CAP_OUT, &numel));
        if (e == E_SKIP) return;
        r = k == 5 ? nb_concat(nts, ts, axis) : nb_stack(nts, ts, axis);
        break;
    }
    }
    if (e == E_OK && k < 5) e = expect_of(classify(n, s, CAP_OUT * 64, &numel));
    if (r && e != E_FAIL) {
        if (nts <= 64) graph_rules(r, nts, ts);
        else if (nb_requires_grad(r) != (nb_requires_grad(ts[0]) && nb_is_grad_enabled()))
            violated("requires_grad of a result is wrong", NULL);
    }
    if (e == E_OK && (z->weird || (a && is_weird(a)))) e = E_ANY;
    after(z, r, e, e == E_FAIL ? -1 : n, s);
}

static bool trace; /* FUZZ_TRACE=1: print each step, its time and its error */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void run(fz *z) {
    for (int step = 0; step < MAX_STEPS && more(z); step++) {
        double t0 = trace ? now() : 0;
        uint8_t op = u8(z);
        z->inject = 0;
        if (op & 0x80) {
            z->inject = 1 + u8(z) % 16;
            nb__fail_alloc_after(z->inject);
        }
        uint8_t sub = u8(z);
        nb_clear_error();
        switch ((op & 0x7f) == 0x7f ? 68 : (op & 0x7f) % 68) { /* 0x7f: the numpy shape ops */
        case 0: case 1: case 2: case 3: case 4: case 5: case 6: case 7:
            op_create(z, sub);
            break;
        case 8: case 9:
            op_create_small(z, sub);
            break;
        case 10: case 11: case 12: case 13: case 14: case 15: case 16: case 17:
            op_unary(z, sub);
            break;
        case 18: case 19: case 20: case 21: case 22: case 23: case 24: case 25:
            op_binary(z, sub);
            break;
        case 26: case 27: case 28: case 29: case 30:
            op_reduce(z, sub);
            break;
        case 31: case 32:
            op_matmul(z, sub);
            break;
        case 33:
            op_conv(z, sub);
            break;
        case 34:
            op_transpose(z);
            break;
        case 35: case 36: case 37:
            op_reshape(z);
            break;
        case 38: case 39:
            op_broadcast(z, true);
            break;
        case 40: case 41:
            op_broadcast(z, false);
            break;
        case 42: case 43: case 44: case 45:
            op_backward(z);
            break;
        case 46: case 47:
            op_autograd(z);
            break;
        case 48: case 49:
            op_dual(z);
            break;
        case 50: case 51: case 52: case 53: case 54: case 55: case 56: case 57:
            op_misc(z, sub);
            break;
        case 58:
            if ((sub & 7) == 7) op_custom(z);
            else op_higher(z, sub);
            break;
        case 59: case 60: case 61: case 62: case 63: case 64:
            op_nn(z, sub);
            break;
        case 65:
            op_data(z, sub);
            break;
        case 66:
            if ((sub & 1) && z->inject == 0) op_save_load(z);
            else op_plot(z);
            break;
        case 67:
            op_numpy_ew(z, sub);
            break;
        case 68:
            op_numpy_shape(z, sub);
            break;
        default:
            break;
        }
        nb__fail_alloc_after(0);
        if (trace)
            fprintf(stderr, "step %3d  op %3d  %-18s %8.3f ms  inject %lld  %s\n", step, op & 0x7f,
                    cur_op, 1e3 * (now() - t0), (long long)z->inject,
                    nb_last_error() ? nb_last_error() : "");
        cur_op = "?";
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    devnull = fopen("/dev/null", "w");
    trace = getenv("FUZZ_TRACE") != NULL;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz z;
    memset(&z, 0, sizeof z);
    z.p = data;
    z.n = size;
    nb_names_reset();
    nb_set_grad_enabled(true);
    nb_set_anomaly_detection(false);
    /* a parameter store for one input in two */
    if (size > 0 && (data[0] & 1)) z.P = nb_params_new();
    run(&z);

    /* teardown: every reference the harness holds, then the thread's scopes */
    cur_op = "teardown";
    nb__fail_alloc_after(0);
    nb_set_grad_enabled(true);
    nb_set_anomaly_detection(false);
    for (int i = 0; i < NPOOL; i++) nb_release(z.pool[i]);
    nb_optim_free(z.opt);
    nb_mlp_free(z.mlp);
    nb_params_free(z.P);
    nb_cleanup();
    nb_clear_error();
    nb_mem_stats st;
    nb_memory_stats(&st);
    if (st.live_tensors != 0 || st.live_bytes != 0) {
        char b[96];
        snprintf(b, sizeof b, "%lld tensors (%lld bytes) alive after nb_cleanup",
                 (long long)st.live_tensors, (long long)st.live_bytes);
        violated("leak", b);
    }
    if (st.cached_bytes != 0) violated("nb_cleanup left cached blocks", NULL);
    if (fz_states_live != 0) violated("a custom op's state was not freed exactly once", NULL);
    fz_states_live = 0;
    return 0;
}
