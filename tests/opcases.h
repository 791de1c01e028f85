/* What test_ops, test_higher and test_forward share: the table of ops they
   run, at shapes given with S(...), on reproducible random inputs.

   A case (tcase) names one op of the table, its one or two input shapes, how
   each input is drawn (gen), and the op's arguments (axis, keepdims, the pow
   exponent or scale factor, a target shape).  apply_op runs the single ops
   of nabla.h; the compositions (K_SIGMOID_OF_PROD, K_COMPOSITE) are each
   test's own.  bin/un/tgt build a case (whole_reductions and axis_sweep
   several) and hand it to run_case, which every test including this header
   defines. */
#ifndef NABLA_TEST_OPCASES_H
#define NABLA_TEST_OPCASES_H
#include "nabla.h"
#include "check.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* ---- shapes ------------------------------------------------------------- */
typedef struct shp {
    int nd;
    int64_t s[NB_MAX_DIMS];
} shp;

/* S(nd, d0, d1, ...): a shape of nd dimensions; S(0) is a 0-d scalar */
static inline shp S(int nd, ...) {
    shp r;
    memset(&r, 0, sizeof r);
    r.nd = nd;
    va_list ap;
    va_start(ap, nd);
    for (int i = 0; i < nd; i++) r.s[i] = va_arg(ap, int);
    va_end(ap);
    return r;
}

/* ---- the ops ------------------------------------------------------------ */
enum kind {
    /* the single ops of nabla.h, run by apply_op */
    K_ADD, K_SUB, K_PROD, K_DIV, K_MAXIMUM,
    K_NEG, K_SIN, K_COS, K_EXP, K_LOG, K_SQRT, K_SQUARE, K_RELU, K_SIGMOID, K_TANH,
    K_POW, K_SCALE,
    K_SUM, K_MEAN, K_MAX, K_SUM_AXIS, K_MEAN_AXIS, K_MAX_AXIS, K_SOFTMAX, K_LOG_SOFTMAX,
    K_MATMUL, K_TRANSPOSE, K_RESHAPE, K_BROADCAST_TO, K_SUM_TO,
    /* compositions, defined by the tests that use them */
    K_SIGMOID_OF_PROD, K_COMPOSITE,
    K_COUNT
};
enum { K_NSINGLE = K_SUM_TO + 1 }; /* how many single ops: K_ADD .. K_SUM_TO */

static const char *const KNAME[K_COUNT] = {
    "add", "sub", "prod", "div", "maximum",
    "neg", "sin", "cos", "exp", "log", "sqrt", "square", "relu", "sigmoid", "tanh",
    "pow", "scale",
    "sum", "mean", "max", "sum_axis", "mean_axis", "max_axis", "softmax", "log_softmax",
    "matmul", "transpose", "reshape", "broadcast_to", "sum_to",
    "sigmoid(prod)", "composite"};

/* how an input is drawn: randn; in [0.5, 2.5); randn with |x| >= 0.3 */
enum gen { G_NORMAL, G_POSITIVE, G_AWAY0 };

typedef struct tcase {
    int op, nin;
    shp in[2];
    int gen[2];
    int axis;
    bool keep;
    double p;   /* pow exponent, scale factor */
    shp target; /* reshape / broadcast_to / sum_to */
} tcase;

/* The single op of case vctx (a tcase) on in[0] (and in[1]), as an
   nb_multi_fn; NULL for the compositions. */
static inline nb_tensor *apply_op(int n, nb_tensor *const *in, void *vctx) {
    const tcase *c = vctx;
    nb_tensor *a = in[0], *b = n > 1 ? in[1] : NULL;
    switch (c->op) {
    case K_ADD: return nb_add(a, b);
    case K_SUB: return nb_sub(a, b);
    case K_PROD: return nb_prod(a, b);
    case K_DIV: return nb_div(a, b);
    case K_MAXIMUM: return nb_maximum(a, b);
    case K_NEG: return nb_neg(a);
    case K_SIN: return nb_sin(a);
    case K_COS: return nb_cos(a);
    case K_EXP: return nb_exp(a);
    case K_LOG: return nb_log(a);
    case K_SQRT: return nb_sqrt(a);
    case K_SQUARE: return nb_square(a);
    case K_RELU: return nb_relu(a);
    case K_SIGMOID: return nb_sigmoid(a);
    case K_TANH: return nb_tanh(a);
    case K_POW: return nb_pow(a, c->p);
    case K_SCALE: return nb_scale(a, c->p);
    case K_SUM: return nb_sum(a);
    case K_MEAN: return nb_mean(a);
    case K_MAX: return nb_max(a);
    case K_SUM_AXIS: return nb_sum_axis(a, c->axis, c->keep);
    case K_MEAN_AXIS: return nb_mean_axis(a, c->axis, c->keep);
    case K_MAX_AXIS: return nb_max_axis(a, c->axis, c->keep);
    case K_SOFTMAX: return nb_softmax(a, c->axis);
    case K_LOG_SOFTMAX: return nb_log_softmax(a, c->axis);
    case K_MATMUL: return nb_matmul(a, b);
    case K_TRANSPOSE: return nb_transpose(a);
    case K_RESHAPE: return nb_reshape(a, c->target.nd, c->target.s);
    case K_BROADCAST_TO: return nb_broadcast_to(a, c->target.nd, c->target.s);
    case K_SUM_TO: return nb_sum_to(a, c->target.nd, c->target.s);
    default: return NULL;
    }
}

/* ---- random inputs and directions ---------------------------------------- */
/* an input of shape s drawn as gen says, from nb_randn's seed *seed (then
   advanced: each test keeps its own stream) */
static inline nb_tensor *make_input(const shp *s, int gen, uint64_t *seed) {
    nb_tensor *t = nb_randn(s->nd, s->s, (*seed)++);
    if (!t) return NULL;
    double *d = nb_data_mut(t);
    for (int64_t i = 0; i < nb_numel(t); i++) {
        if (gen == G_POSITIVE) d[i] = 0.5 + fabs(fmod(d[i], 2.0));
        else if (gen == G_AWAY0 && fabs(d[i]) < 0.3) d[i] += d[i] < 0 ? -0.3 : 0.3;
    }
    return t;
}

/* a reproducible number in [-1, 1) from the LCG state *lcg */
static inline double urand(uint64_t *lcg) {
    *lcg = *lcg * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*lcg >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

/* a constant of t's shape with entries urand(lcg) */
static inline nb_tensor *random_like(const nb_tensor *t, uint64_t *lcg) {
    nb_tensor *r = nb_zeros(nb_ndim(t), nb_shape(t));
    if (r) {
        for (int64_t i = 0; i < nb_numel(r); i++) nb_data_mut(r)[i] = urand(lcg);
        nb_set_requires_grad(r, false);
    }
    return r;
}

/* ---- finite differences ----------------------------------------------------- */
/* a new leaf x + step v (v of x's shape): a point of a central difference */
static inline nb_tensor *shifted(const nb_tensor *x, const nb_tensor *v, double step) {
    nb_tensor *r = nb_copy(x);
    if (r)
        for (int64_t j = 0; j < nb_numel(r); j++) nb_data_mut(r)[j] += step * nb_data(v)[j];
    return r;
}

/* a failed check: case `name`'s step `what` failed (the library's message) */
static inline void step_failed(const char *name, const char *what) {
    check_failed_++;
    fprintf(stderr, "%s: %s failed: %s\n", name, what, nb_last_error());
    nb_clear_error();
}

/* ---- building and running cases -------------------------------------------- */
static void run_case(const tcase *c); /* each test's own checks of one case */

static inline void bin(int op, shp a, shp b, int ga, int gb) {
    tcase c = {.op = op, .nin = 2, .in = {a, b}, .gen = {ga, gb}};
    run_case(&c);
}
static inline void un(int op, shp a, int axis, bool keep, double p, int gen) {
    tcase c = {.op = op, .nin = 1, .in = {a}, .axis = axis, .keep = keep, .p = p, .gen = {gen}};
    run_case(&c);
}
static inline void tgt(int op, shp a, shp t, int gen) {
    tcase c = {.op = op, .nin = 1, .in = {a}, .gen = {gen}, .target = t};
    run_case(&c);
}

/* sum, mean and max of all of a */
static inline void whole_reductions(shp a, int gen) {
    un(K_SUM, a, 0, false, 0, gen);
    un(K_MEAN, a, 0, false, 0, gen);
    un(K_MAX, a, 0, false, 0, gen);
}
/* along every axis of a (negative ones too): sum_axis, mean_axis and max_axis
   without and with keepdims, then softmax and log_softmax */
static inline void axis_sweep(shp a, int gen) {
    for (int ax = -a.nd; ax < a.nd; ax++) {
        for (int keep = 0; keep < 2; keep++) {
            un(K_SUM_AXIS, a, ax, keep, 0, gen);
            un(K_MEAN_AXIS, a, ax, keep, 0, gen);
            un(K_MAX_AXIS, a, ax, keep, 0, gen);
        }
        un(K_SOFTMAX, a, ax, false, 0, gen);
        un(K_LOG_SOFTMAX, a, ax, false, 0, gen);
    }
}

/* ---- the unary ops' test table: one row per row of src/ops/unary.def ---------
 * test_unary runs every row through values, derivatives of order 1 to 3 by
 * hand, gradcheck, gradgradcheck, forward mode and non-finite inputs, and
 * fails when a row of unary.def has no row here.  The formulas are written
 * independently of the library's: ref is f(x), d1..d3 its derivatives. */
typedef double (*unary_ref_fn)(double x, double p);
typedef struct unary_row {
    const char *name;                       /* the op's name in ops.def           */
    nb_tensor *(*f)(nb_tensor *, double p); /* the op                             */
    unary_ref_fn ref, d1, d2, d3;           /* f and its derivatives (by hand)    */
    double p;                               /* parameter, for pow and scale       */
    int gen;                                /* inputs: G_NORMAL, G_POSITIVE, G_AWAY0 (kinks) */
} unary_row;

static inline nb_tensor *u_neg(nb_tensor *x, double p) { return nb_neg(x); }
static inline nb_tensor *u_scale(nb_tensor *x, double p) { return nb_scale(x, p); }
static inline nb_tensor *u_sin(nb_tensor *x, double p) { return nb_sin(x); }
static inline nb_tensor *u_cos(nb_tensor *x, double p) { return nb_cos(x); }
static inline nb_tensor *u_exp(nb_tensor *x, double p) { return nb_exp(x); }
static inline nb_tensor *u_log(nb_tensor *x, double p) { return nb_log(x); }
static inline nb_tensor *u_sqrt(nb_tensor *x, double p) { return nb_sqrt(x); }
static inline nb_tensor *u_square(nb_tensor *x, double p) { return nb_square(x); }
static inline nb_tensor *u_pow(nb_tensor *x, double p) { return nb_pow(x, p); }
static inline nb_tensor *u_abs(nb_tensor *x, double p) { return nb_abs(x); }
static inline double r_abs(double x, double p) { return fabs(x); }
static inline double r_sign(double x, double p) { return x > 0 ? 1.0 : x < 0 ? -1.0 : 0.0; }
static inline nb_tensor *u_relu(nb_tensor *x, double p) { return nb_relu(x); }
static inline nb_tensor *u_sigmoid(nb_tensor *x, double p) { return nb_sigmoid(x); }
static inline nb_tensor *u_tanh(nb_tensor *x, double p) { return nb_tanh(x); }

static inline double r_zero(double x, double p) { return 0.0 * x; }
static inline double r_neg(double x, double p) { return -x; }
static inline double r_m1(double x, double p) { return -1.0; }
static inline double r_scale(double x, double p) { return p * x; }
static inline double r_p(double x, double p) { return p; }
static inline double r_sin(double x, double p) { return sin(x); }
static inline double r_cos(double x, double p) { return cos(x); }
static inline double r_msin(double x, double p) { return -sin(x); }
static inline double r_mcos(double x, double p) { return -cos(x); }
static inline double r_exp(double x, double p) { return exp(x); }
static inline double r_log(double x, double p) { return log(x); }
static inline double r_inv(double x, double p) { return 1.0 / x; }
static inline double r_minv2(double x, double p) { return -1.0 / (x * x); }
static inline double r_2inv3(double x, double p) { return 2.0 / (x * x * x); }
static inline double r_sqrt(double x, double p) { return sqrt(x); }
static inline double r_sqrt1(double x, double p) { return 0.5 / sqrt(x); }
static inline double r_sqrt2(double x, double p) { return -0.25 / (x * sqrt(x)); }
static inline double r_sqrt3(double x, double p) { return 0.375 / (x * x * sqrt(x)); }
static inline double r_sq(double x, double p) { return x * x; }
static inline double r_2x(double x, double p) { return 2.0 * x; }
static inline double r_2(double x, double p) { return 2.0; }
static inline double r_pow(double x, double p) { return pow(x, p); }
static inline double r_pow1(double x, double p) { return p == 0 ? 0 : p * pow(x, p - 1); }
static inline double r_pow2(double x, double p) { return p * (p - 1) == 0 ? 0 : p * (p - 1) * pow(x, p - 2); }
static inline double r_pow3(double x, double p) {
    double c = p * (p - 1) * (p - 2);
    return c == 0 ? 0 : c * pow(x, p - 3);
}
static inline double r_relu(double x, double p) { return x > 0 ? x : 0.0; }
static inline double r_step(double x, double p) { return x > 0 ? 1.0 : 0.0; }
static inline double r_sig(double x, double p) { return 1.0 / (1.0 + exp(-x)); }
static inline double r_sig1(double x, double p) { double s = r_sig(x, p); return s * (1 - s); }
static inline double r_sig2(double x, double p) { double s = r_sig(x, p); return s * (1 - s) * (1 - 2 * s); }
static inline double r_sig3(double x, double p) { double s = r_sig(x, p); return s * (1 - s) * (1 - 6 * s + 6 * s * s); }
static inline double r_tanh(double x, double p) { return tanh(x); }
static inline double r_tanh1(double x, double p) { double t = tanh(x); return 1 - t * t; }
static inline double r_tanh2(double x, double p) { double t = tanh(x); return -2 * t * (1 - t * t); }
static inline double r_tanh3(double x, double p) { double t = tanh(x); return -2 * (1 - t * t) * (1 - 3 * t * t); }

static const unary_row UNARY_ROWS[] = {
    /* name      op         f        d1       d2        d3       p     inputs */
    {"neg",     u_neg,     r_neg,   r_m1,    r_zero,   r_zero,  0,    G_NORMAL},
    {"scale",   u_scale,   r_scale, r_p,     r_zero,   r_zero,  2.5,  G_NORMAL},
    {"scale",   u_scale,   r_scale, r_p,     r_zero,   r_zero,  0.0,  G_NORMAL},
    {"sin",     u_sin,     r_sin,   r_cos,   r_msin,   r_mcos,  0,    G_NORMAL},
    {"cos",     u_cos,     r_cos,   r_msin,  r_mcos,   r_sin,   0,    G_NORMAL},
    {"exp",     u_exp,     r_exp,   r_exp,   r_exp,    r_exp,   0,    G_NORMAL},
    {"log",     u_log,     r_log,   r_inv,   r_minv2,  r_2inv3, 0,    G_POSITIVE},
    {"sqrt",    u_sqrt,    r_sqrt,  r_sqrt1, r_sqrt2,  r_sqrt3, 0,    G_POSITIVE},
    {"square",  u_square,  r_sq,    r_2x,    r_2,      r_zero,  0,    G_NORMAL},
    {"pow",     u_pow,     r_pow,   r_pow1,  r_pow2,   r_pow3,  3.0,  G_NORMAL},
    {"pow",     u_pow,     r_pow,   r_pow1,  r_pow2,   r_pow3,  -1.5, G_POSITIVE},
    {"pow",     u_pow,     r_pow,   r_pow1,  r_pow2,   r_pow3,  0.0,  G_POSITIVE},
    {"abs",     u_abs,     r_abs,   r_sign,  r_zero,   r_zero,  0,    G_AWAY0},
    {"relu",    u_relu,    r_relu,  r_step,  r_zero,   r_zero,  0,    G_AWAY0},
    {"sigmoid", u_sigmoid, r_sig,   r_sig1,  r_sig2,   r_sig3,  0,    G_NORMAL},
    {"tanh",    u_tanh,    r_tanh,  r_tanh1, r_tanh2,  r_tanh3, 0,    G_NORMAL},
};
#define N_UNARY_ROWS ((int)(sizeof UNARY_ROWS / sizeof *UNARY_ROWS))
#endif
