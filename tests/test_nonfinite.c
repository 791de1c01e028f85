/*
 * Non-finite values.  NaN and +-inf flow through every op as IEEE 754 (and C's
 * Annex F libm, and numpy) say, forward and backward, without a crash or a
 * hang (an alarm fails the test after 120 s); and anomaly detection
 * (nb_set_anomaly_detection) names the first op that produced a NaN or an
 * infinity, in forward or in backward.
 */
#include "internal.h"

#include "check.h"

#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

/* the special values every op sees */
static const double specials[] = {NAN, INFINITY, -INFINITY, 0.0, -0.0, 1.0, -1.0,
                                  1e308, -1e308, 5e-324, 0.5, 710.0};
#define NS (int)(sizeof specials / sizeof *specials)

/* a equals b as IEEE values: both NaN, or equal with the same sign of zero */
static bool same(double a, double b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    return a == b && (a != 0 || signbit(a) == signbit(b));
}

/* a and b finite, non-zero, of one sign and at most one ulp apart */
static bool one_ulp(double a, double b) {
    if (!isfinite(a) || !isfinite(b) || a == 0 || b == 0 || signbit(a) != signbit(b)) return false;
    return nextafter(b, INFINITY) >= a && nextafter(b, -INFINITY) <= a;
}

#define CHECK_SAME(got, want)                                                                \
    do {                                                                                     \
        double g_ = (got), w_ = (want);                                                      \
        if (same(g_, w_)) check_passed_++;                                                   \
        else {                                                                               \
            check_failed_++;                                                                 \
            fprintf(stderr, "%s:%d: %s = %.17g, expected %.17g\n", __FILE__, __LINE__, #got, \
                    g_, w_);                                                                 \
        }                                                                                    \
    } while (0)

static nb_tensor *vec(int n, const double *v) {
    int64_t s[1] = {n};
    return nb_new(v, 1, s);
}

static double at(nb_tensor *t, int64_t i) { return t ? nb_data(t)[i] : -12345.0; }

/* ---- IEEE values of the unary ops -------------------------------------------------------- */
typedef nb_tensor *(*unary_fn)(nb_tensor *);
static nb_tensor *scale2(nb_tensor *x) { return nb_scale(x, 2.0); }
static nb_tensor *scale0(nb_tensor *x) { return nb_scale(x, 0.0); }

static double ref_sigmoid(double x) { return isnan(x) ? x : 1.0 / (1.0 + exp(-x)); }
static double ref_relu(double x) { return isnan(x) ? x : (x > 0 ? x : 0.0); }
static double ref_neg(double x) { return -x; }
static double ref_square(double x) { return x * x; }
static double ref_scale2(double x) { return 2.0 * x; }
static double ref_scale0(double x) { return 0.0 * x; }

/* how a row's values are compared with its reference */
enum {
    EXACT,       /* IEEE-equal everywhere                                          */
    ONE_ULP,     /* vectorised (tests/test_vmath.c): exact where IEEE fixes the value
                    (zeros, infinities, NaN, overflow, underflow, +-1), else within
                    one ulp                                                          */
    LIMITS_ONLY, /* only NaN and the values at +-inf are fixed                       */
};

static const struct {
    const char *name;
    unary_fn f;
    double (*ref)(double);
    int compare;
} unary[] = {
    {"neg", nb_neg, ref_neg, EXACT},
    {"sin", nb_sin, sin, EXACT},
    {"cos", nb_cos, cos, EXACT},
    {"exp", nb_exp, exp, ONE_ULP},
    {"log", nb_log, log, EXACT},
    {"sqrt", nb_sqrt, sqrt, EXACT},
    {"square", nb_square, ref_square, EXACT},
    {"relu", nb_relu, ref_relu, EXACT},
    {"sigmoid", nb_sigmoid, ref_sigmoid, LIMITS_ONLY},
    {"tanh", nb_tanh, tanh, ONE_ULP},
    {"scale2", scale2, ref_scale2, EXACT},
    {"scale0", scale0, ref_scale0, EXACT},
    {"abs", nb_abs, fabs, EXACT},
};
#define NU (int)(sizeof unary / sizeof *unary)

static void unary_values(void) {
    size_t mark = nb_scope_begin();
    nb_tensor *x = vec(NS, specials);
    for (int k = 0; k < NU; k++) {
        nb_tensor *y = unary[k].f(x);
        CHECK(y != NULL);
        for (int i = 0; i < NS; i++) {
            double want = unary[k].ref(specials[i]);
            if (unary[k].compare == LIMITS_ONLY && !isnan(specials[i]))
                want = specials[i] == INFINITY ? 1.0 : specials[i] == -INFINITY ? 0.0 : at(y, i);
            if (unary[k].compare == ONE_ULP && one_ulp(at(y, i), want) && fabs(want) != 1.0) want = at(y, i);
            if (!same(at(y, i), want)) {
                fprintf(stderr, "%s(%.17g) = %.17g, expected %.17g\n", unary[k].name, specials[i],
                        at(y, i), want);
                CHECK(0);
            } else {
                CHECK(1);
            }
        }
    }
    /* the values IEEE and Annex F fix, written out */
    nb_tensor *e = nb_exp(vec(3, (double[]){-INFINITY, INFINITY, 710.0}));
    CHECK_SAME(at(e, 0), 0.0);
    CHECK_SAME(at(e, 1), INFINITY);
    CHECK_SAME(at(e, 2), INFINITY); /* overflow */
    nb_tensor *l = nb_log(vec(4, (double[]){0.0, -0.0, -1.0, INFINITY}));
    CHECK_SAME(at(l, 0), -INFINITY);
    CHECK_SAME(at(l, 1), -INFINITY);
    CHECK(isnan(at(l, 2)));
    CHECK_SAME(at(l, 3), INFINITY);
    nb_tensor *s = nb_sqrt(vec(3, (double[]){-0.0, -1.0, INFINITY}));
    CHECK_SAME(at(s, 0), -0.0);
    CHECK(isnan(at(s, 1)));
    CHECK_SAME(at(s, 2), INFINITY);
    nb_tensor *t = nb_tanh(vec(2, (double[]){INFINITY, -INFINITY}));
    CHECK_SAME(at(t, 0), 1.0);
    CHECK_SAME(at(t, 1), -1.0);
    nb_tensor *sg = nb_sigmoid(vec(3, (double[]){INFINITY, -INFINITY, NAN}));
    CHECK_SAME(at(sg, 0), 1.0);
    CHECK_SAME(at(sg, 1), 0.0);
    CHECK(isnan(at(sg, 2)));
    /* relu(x) = max(x, 0): NaN propagates as in numpy's maximum and PyTorch's relu */
    nb_tensor *r = nb_relu(vec(3, (double[]){NAN, -INFINITY, INFINITY}));
    CHECK(isnan(at(r, 0)));
    CHECK_SAME(at(r, 1), 0.0);
    CHECK_SAME(at(r, 2), INFINITY);
    /* pow follows C's pow (Annex F): pow(NaN, 0) = 1, pow(-8, 1/3) = NaN, pow(0, -1) = inf */
    const double ps[] = {0.0, 0.5, 1.0 / 3.0, -1.0, 3.0, 2.0, 1.0, -2.5};
    for (size_t k = 0; k < sizeof ps / sizeof *ps; k++) {
        nb_tensor *y = nb_pow(x, ps[k]);
        for (int i = 0; i < NS; i++) {
            double want = ps[k] == 2.0 ? specials[i] * specials[i] : pow(specials[i], ps[k]);
            if (!same(at(y, i), want)) {
                fprintf(stderr, "pow(%.17g, %g) = %.17g, expected %.17g\n", specials[i], ps[k],
                        at(y, i), want);
                CHECK(0);
            } else {
                CHECK(1);
            }
        }
    }
    nb_scope_end(mark);
}

/* ---- binary ops, reductions, softmax, matmul ------------------------------------------ */
static void binary_values(void) {
    size_t mark = nb_scope_begin();
    nb_tensor *a = vec(6, (double[]){INFINITY, INFINITY, 0.0, 1.0, -1.0, 0.0});
    nb_tensor *b = vec(6, (double[]){-INFINITY, INFINITY, INFINITY, 0.0, 0.0, 0.0});
    nb_tensor *add = nb_add(a, b), *sub = nb_sub(a, b), *prod = nb_prod(a, b), *div = nb_div(a, b);
    CHECK(isnan(at(add, 0)));           /* inf + -inf */
    CHECK_SAME(at(add, 1), INFINITY);
    CHECK(isnan(at(sub, 1)));           /* inf - inf */
    CHECK(isnan(at(prod, 2)));          /* 0 * inf */
    CHECK_SAME(at(div, 3), INFINITY);   /* 1 / 0 */
    CHECK_SAME(at(div, 4), -INFINITY);  /* -1 / 0 */
    CHECK(isnan(at(div, 5)));           /* 0 / 0 */
    nb_tensor *d2 = nb_div(nb_scalar(1.0), nb_scalar(-0.0));
    CHECK_SAME(at(d2, 0), -INFINITY);
    /* maximum propagates NaN from either side (numpy) */
    nb_tensor *m = nb_maximum(vec(4, (double[]){NAN, 1.0, -INFINITY, INFINITY}),
                              vec(4, (double[]){1.0, NAN, 1.0, NAN}));
    CHECK(isnan(at(m, 0)));
    CHECK(isnan(at(m, 1)));
    CHECK_SAME(at(m, 2), 1.0);
    CHECK(isnan(at(m, 3)));
    /* broadcasting a NaN scalar */
    nb_tensor *bn = nb_add(vec(3, (double[]){1, 2, 3}), nb_scalar(NAN));
    for (int i = 0; i < 3; i++) CHECK(isnan(at(bn, i)));

    /* reductions */
    CHECK_SAME(nb_item(nb_sum(vec(2, (double[]){1.0, INFINITY}))), INFINITY);
    CHECK(isnan(nb_item(nb_sum(vec(2, (double[]){INFINITY, -INFINITY})))));
    CHECK(isnan(nb_item(nb_sum(vec(5, (double[]){1, 2, NAN, 4, 5})))));
    CHECK_SAME(nb_item(nb_mean(vec(2, (double[]){INFINITY, 1.0}))), INFINITY);
    CHECK(isnan(nb_item(nb_max(vec(3, (double[]){1.0, NAN, 3.0})))));
    CHECK(isnan(nb_item(nb_max(vec(2, (double[]){NAN, 1.0})))));
    CHECK(isnan(nb_item(nb_max(vec(2, (double[]){1.0, NAN})))));
    CHECK_SAME(nb_item(nb_max(vec(2, (double[]){-INFINITY, -INFINITY}))), -INFINITY);
    int64_t s23[2] = {2, 3};
    nb_tensor *M = nb_new((double[]){1, NAN, 3, -INFINITY, 2, -1}, 2, s23);
    nb_tensor *mx = nb_max_axis(M, 1, false), *mx0 = nb_max_axis(M, 0, false);
    CHECK(isnan(at(mx, 0)));
    CHECK_SAME(at(mx, 1), 2.0);
    CHECK_SAME(at(mx0, 0), 1.0);
    CHECK(isnan(at(mx0, 1)));
    CHECK_SAME(at(mx0, 2), 3.0);
    nb_tensor *sa = nb_sum_axis(M, 0, false);
    CHECK_SAME(at(sa, 0), -INFINITY);
    CHECK(isnan(at(sa, 1)));
    CHECK(isnan(nb_item(nb_mean(nb_zeros(1, (int64_t[]){0}))))); /* 0/0 */

    /* softmax: -inf is an exact 0, large finite values are stable, a row with
       +inf gives NaN (inf - inf), and other rows are untouched */
    int64_t s32[2] = {3, 2};
    nb_tensor *S = nb_new((double[]){-INFINITY, 0.0, 1000.0, 0.0, INFINITY, 1.0}, 2, s32);
    nb_tensor *sm = nb_softmax(S, 1), *ls = nb_log_softmax(S, 1);
    CHECK_SAME(at(sm, 0), 0.0);
    CHECK_SAME(at(sm, 1), 1.0);
    CHECK_SAME(at(sm, 2), 1.0);
    CHECK_SAME(at(sm, 3), 0.0);
    CHECK(isnan(at(sm, 4)));
    CHECK_SAME(at(ls, 0), -INFINITY);
    CHECK_SAME(at(ls, 1), 0.0);
    CHECK_SAME(at(ls, 2), 0.0);
    CHECK_SAME(at(ls, 3), -1000.0);
    CHECK(isnan(at(ls, 4)));
    /* a row of -inf only: no value is defined (0/0 in the limit); NaN, no crash */
    nb_tensor *allinf = nb_softmax(vec(2, (double[]){-INFINITY, -INFINITY}), 0);
    CHECK(allinf != NULL && isnan(at(allinf, 0)));
    /* NaN in a softmax row makes that row NaN */
    nb_tensor *snan = nb_softmax(vec(3, (double[]){0.0, NAN, 1.0}), 0);
    for (int i = 0; i < 3; i++) CHECK(isnan(at(snan, i)));

    /* matmul: IEEE products, no shortcut for zeros */
    int64_t s12[2] = {1, 2}, s21[2] = {2, 1}, s11[2] = {1, 1};
    nb_tensor *ones21 = nb_new((double[]){1, 1}, 2, s21);
    CHECK_SAME(nb_item(nb_matmul(nb_new((double[]){1, INFINITY}, 2, s12), ones21)), INFINITY);
    CHECK(isnan(nb_item(nb_matmul(nb_new((double[]){INFINITY, -INFINITY}, 2, s12), ones21))));
    CHECK(isnan(nb_item(nb_matmul(nb_new((double[]){NAN}, 2, s11), nb_new((double[]){0}, 2, s11)))));
    CHECK(isnan(nb_item(nb_matmul(nb_new((double[]){0, 0}, 2, s12),
                                  nb_new((double[]){INFINITY, 1}, 2, s21)))));
    nb_scope_end(mark);
}

/* ---- every op, forward, backward, second order and forward mode, on specials ----------- */
typedef nb_tensor *(*op_fn)(nb_tensor *x, nb_tensor *y);
static nb_tensor *o_add(nb_tensor *x, nb_tensor *y) { return nb_add(x, y); }
static nb_tensor *o_sub(nb_tensor *x, nb_tensor *y) { return nb_sub(x, y); }
static nb_tensor *o_prod(nb_tensor *x, nb_tensor *y) { return nb_prod(x, y); }
static nb_tensor *o_div(nb_tensor *x, nb_tensor *y) { return nb_div(x, y); }
static nb_tensor *o_maximum(nb_tensor *x, nb_tensor *y) { return nb_maximum(x, y); }
static nb_tensor *o_pow(nb_tensor *x, nb_tensor *y) { (void)y; return nb_pow(x, 2.5); }
static nb_tensor *o_powneg(nb_tensor *x, nb_tensor *y) { (void)y; return nb_pow(x, -1.0); }
static nb_tensor *o_sum(nb_tensor *x, nb_tensor *y) { (void)y; return nb_sum(x); }
static nb_tensor *o_mean(nb_tensor *x, nb_tensor *y) { (void)y; return nb_mean(x); }
static nb_tensor *o_max(nb_tensor *x, nb_tensor *y) { (void)y; return nb_max(x); }
static nb_tensor *o_sum_axis(nb_tensor *x, nb_tensor *y) { (void)y; return nb_sum_axis(x, 1, true); }
static nb_tensor *o_mean_axis(nb_tensor *x, nb_tensor *y) { (void)y; return nb_mean_axis(x, 0, false); }
static nb_tensor *o_max_axis(nb_tensor *x, nb_tensor *y) { (void)y; return nb_max_axis(x, 1, false); }
static nb_tensor *o_softmax(nb_tensor *x, nb_tensor *y) { (void)y; return nb_softmax(x, 1); }
static nb_tensor *o_log_softmax(nb_tensor *x, nb_tensor *y) { (void)y; return nb_log_softmax(x, 0); }
static nb_tensor *o_matmul(nb_tensor *x, nb_tensor *y) { return nb_matmul(x, nb_transpose(y)); }
static nb_tensor *o_transpose(nb_tensor *x, nb_tensor *y) { (void)y; return nb_transpose(x); }
static nb_tensor *o_reshape(nb_tensor *x, nb_tensor *y) {
    (void)y;
    return nb_reshape(x, 2, (int64_t[]){-1, 2});
}
static nb_tensor *o_bto(nb_tensor *x, nb_tensor *y) {
    (void)y;
    return nb_broadcast_to(nb_sum_axis(x, 0, true), 2, nb_shape(x));
}
static nb_tensor *o_sum_to(nb_tensor *x, nb_tensor *y) {
    (void)y;
    return nb_sum_to(x, 1, (int64_t[]){nb_shape(x)[1]});
}
static nb_tensor *o_ce(nb_tensor *x, nb_tensor *y) {
    (void)y;
    nb_tensor *lab = nb_new((double[]){0, 1, 2, 3, 0, 1}, 1, (int64_t[]){nb_shape(x)[0]});
    return nb_cross_entropy(x, lab);
}
static nb_tensor *o_bce(nb_tensor *x, nb_tensor *y) { return nb_bce_with_logits(x, nb_sigmoid(y)); }
static nb_tensor *o_mse(nb_tensor *x, nb_tensor *y) { return nb_mse_loss(x, y); }

static const struct {
    const char *name;
    op_fn f;
} ops[] = {
    {"add", o_add}, {"sub", o_sub}, {"prod", o_prod}, {"div", o_div}, {"maximum", o_maximum},
    {"pow", o_pow}, {"pow-1", o_powneg}, {"sum", o_sum}, {"mean", o_mean}, {"max", o_max},
    {"sum_axis", o_sum_axis}, {"mean_axis", o_mean_axis}, {"max_axis", o_max_axis},
    {"softmax", o_softmax}, {"log_softmax", o_log_softmax}, {"matmul", o_matmul},
    {"transpose", o_transpose}, {"reshape", o_reshape}, {"broadcast_to", o_bto},
    {"sum_to", o_sum_to}, {"cross_entropy", o_ce}, {"bce", o_bce}, {"mse", o_mse},
};
#define NOPS (int)(sizeof ops / sizeof *ops)

static bool shape_of(const nb_tensor *g, const nb_tensor *x) {
    return g && nb_ndim(g) == nb_ndim(x) &&
           memcmp(nb_shape(g), nb_shape(x), (size_t)nb_ndim(x) * sizeof(int64_t)) == 0;
}

/* x (6, 4) with every special value (and its neighbours) in it */
static void every_op(void) {
    double xv[24], yv[24];
    for (int i = 0; i < 24; i++) {
        xv[i] = specials[i % NS];
        yv[i] = specials[(i * 5 + 3) % NS];
    }
    int64_t s[2] = {6, 4};
    int runs = 0;
    for (int u = -1; u < NU; u++) {     /* each op after each unary op (or none) */
        for (int k = 0; k < NOPS; k++) {
            size_t mark = nb_scope_begin();
            nb_tensor *x = nb_new(xv, 2, s), *y = nb_new(yv, 2, s);
            nb_tensor *xin = u < 0 ? x : unary[u].f(x);
            nb_tensor *out = ops[k].f(xin, y);
            if (!out) {
                fprintf(stderr, "%s after %s: %s\n", ops[k].name, u < 0 ? "-" : unary[u].name,
                        nb_last_error());
                CHECK(0);
                nb_scope_end(mark);
                continue;
            }
            /* backward with a seed of specials too */
            nb_tensor *seed = nb_full(nb_ndim(out), nb_shape(out), specials[(k + u + 1) % NS]);
            CHECK(nb_backward(out, seed) == 0);
            CHECK(shape_of(nb_grad(x), x));
            CHECK(shape_of(nb_grad(y), y) || nb_grad(y) == NULL);
            /* second order: the gradient recorded, then differentiated */
            nb_tensor *g[2] = {NULL, NULL}, *ins[2] = {x, y};
            CHECK(nb_autograd(1, &out, NULL, 2, ins, g, true) == 0);
            nb_tensor *gg = NULL;
            nb_tensor *h = g[0] ? nb_sum(nb_square(g[0])) : NULL;
            CHECK(h != NULL);
            if (h && nb_requires_grad(h)) CHECK(nb_autograd(1, &h, NULL, 1, &x, &gg, false) == 0);
            /* forward mode: a tangent of specials */
            nb_tensor *xd = nb_dual(nb_detach(x), nb_new(yv, 2, s));
            nb_tensor *xdin = u < 0 ? xd : unary[u].f(xd);
            nb_tensor *od = ops[k].f(xdin, y);
            CHECK(od != NULL && nb_tangent(od) != NULL && shape_of(nb_tangent(od), od));
            runs++;
            nb_scope_end(mark);
        }
    }
    printf("  %d op chains run forward, backward, double backward and forward mode on "
           "NaN/inf/0/-0/huge/tiny\n", runs);
}

/* gradients that IEEE fixes at the edges */
static void gradient_values(void) {
    size_t mark = nb_scope_begin();
    nb_tensor *x = vec(3, (double[]){0.0, INFINITY, NAN});
    CHECK(nb_backward(nb_sqrt(x), NULL) == 0); /* 0.5 / sqrt(x) */
    CHECK_SAME(at(nb_grad(x), 0), INFINITY);
    CHECK_SAME(at(nb_grad(x), 1), 0.0);
    CHECK(isnan(at(nb_grad(x), 2)));
    nb_tensor *x2 = vec(2, (double[]){0.0, -0.0});
    CHECK(nb_backward(nb_log(x2), NULL) == 0); /* 1 / x */
    CHECK_SAME(at(nb_grad(x2), 0), INFINITY);
    CHECK_SAME(at(nb_grad(x2), 1), -INFINITY);
    nb_tensor *x3 = vec(3, (double[]){INFINITY, -INFINITY, NAN});
    CHECK(nb_backward(nb_tanh(x3), NULL) == 0); /* 1 - tanh^2 */
    CHECK_SAME(at(nb_grad(x3), 0), 0.0);
    CHECK_SAME(at(nb_grad(x3), 1), 0.0);
    CHECK(isnan(at(nb_grad(x3), 2)));
    nb_tensor *x4 = vec(2, (double[]){INFINITY, -INFINITY});
    CHECK(nb_backward(nb_sigmoid(x4), NULL) == 0); /* s (1 - s) */
    CHECK_SAME(at(nb_grad(x4), 0), 0.0);
    CHECK_SAME(at(nb_grad(x4), 1), 0.0);
    nb_tensor *x5 = vec(2, (double[]){INFINITY, -INFINITY});
    CHECK(nb_backward(nb_exp(x5), NULL) == 0);
    CHECK_SAME(at(nb_grad(x5), 0), INFINITY);
    CHECK_SAME(at(nb_grad(x5), 1), 0.0);
    /* the max gate with a NaN: the NaN side is the maximum */
    nb_tensor *a = vec(1, (double[]){NAN}), *b = vec(1, (double[]){1.0});
    CHECK(nb_backward(nb_maximum(a, b), NULL) == 0);
    CHECK(nb_grad(a) != NULL && nb_grad(b) != NULL);
    nb_scope_end(mark);
}

/* ---- anomaly detection ---------------------------------------------------------------- */
static void *anomaly_other_thread(void *p) {
    /* the setting is per thread: off here even while main has it on */
    nb_tensor *y = nb_log(nb_scalar(-1.0));
    *(bool *)p = y != NULL && isnan(nb_item(y)) && !nb_set_anomaly_detection(false);
    nb_cleanup();
    return NULL;
}

static void anomaly(void) {
    size_t mark = nb_scope_begin();
    CHECK(nb_set_anomaly_detection(true) == false); /* off by default */
    CHECK(nb_set_anomaly_detection(true) == true);

    /* forward: log(-1) fails, the message names the op and the value */
    nb_clear_error();
    nb_tensor *y = nb_log(nb_scalar(-1.0));
    const char *m = nb_last_error();
    CHECK(y == NULL);
    CHECK(m && strstr(m, "log:") && strstr(m, "NaN"));
    if (m) printf("  forward: %s\n", m);
    /* log(0) = -inf is caught too */
    nb_clear_error();
    CHECK(nb_log(vec(3, (double[]){1.0, 2.0, 0.0})) == NULL);
    m = nb_last_error();
    CHECK(m && strstr(m, "log:") && strstr(m, "inf") && strstr(m, "element 2"));
    /* in a longer expression the FIRST producer is named, not the ops after it */
    nb_clear_error();
    nb_tensor *x = vec(3, (double[]){1.0, -2.0, 3.0});
    nb_tensor *z = nb_sum(nb_exp(nb_sqrt(nb_scale(x, 2.0))));
    m = nb_last_error();
    CHECK(z == NULL);
    CHECK(m && strstr(m, "sqrt:") && strstr(m, "NaN") && strstr(m, "element 1"));
    /* a NaN that comes in with the data: the first op whose result holds it is named */
    nb_clear_error();
    nb_tensor *inp = vec(2, (double[]){1.0, NAN});
    CHECK(nb_neg(inp) == NULL);
    m = nb_last_error();
    CHECK(m && strstr(m, "neg:"));

    /* backward: sqrt at 0 has an infinite derivative */
    nb_clear_error();
    nb_tensor *w = vec(2, (double[]){4.0, 0.0});
    nb_tensor *loss = nb_sum(nb_sqrt(w));
    CHECK(loss != NULL);
    CHECK(nb_backward(loss, NULL) == -1);
    m = nb_last_error();
    CHECK(m && strstr(m, "backward") && strstr(m, "sqrt") && strstr(m, "inf"));
    if (m) printf("  backward: %s\n", m);
    CHECK(nb_grad(w) == NULL); /* a failed sweep stores no gradient */
    /* backward producing NaN (0 * inf) from finite values */
    nb_clear_error();
    nb_tensor *v = vec(2, (double[]){1.0, 0.0});
    nb_tensor *l2 = nb_sum(nb_scale(nb_sqrt(v), 0.0));
    CHECK(l2 != NULL);
    CHECK(nb_backward(l2, NULL) == -1);
    m = nb_last_error();
    CHECK(m && strstr(m, "sqrt") && strstr(m, "NaN") && strstr(m, "element 1"));
    /* nb_autograd too */
    nb_clear_error();
    nb_tensor *gw = NULL;
    CHECK(nb_autograd(1, &loss, NULL, 1, &w, &gw, false) == -1);
    CHECK(gw == NULL && nb_last_error() && strstr(nb_last_error(), "sqrt"));
    /* with create_graph, the recorded gradient op fails in forward */
    nb_clear_error();
    CHECK(nb_autograd(1, &loss, NULL, 1, &w, &gw, true) == -1);
    CHECK(gw == NULL && nb_last_error() != NULL);
    /* finite computations are untouched while it is on */
    nb_clear_error();
    nb_tensor *ok = nb_sum(nb_tanh(vec(2, (double[]){1.0, 2.0})));
    CHECK(ok != NULL && nb_last_error() == NULL);

    /* per thread */
    bool other_ok = false;
    pthread_t th;
    CHECK(pthread_create(&th, NULL, anomaly_other_thread, &other_ok) == 0);
    pthread_join(th, NULL);
    CHECK(other_ok);

    /* off: the values flow */
    CHECK(nb_set_anomaly_detection(false) == true);
    nb_clear_error();
    y = nb_log(nb_scalar(-1.0));
    CHECK(y != NULL && isnan(nb_item(y)));
    nb_tensor *w2 = vec(2, (double[]){4.0, 0.0});
    CHECK(nb_backward(nb_sum(nb_sqrt(w2)), NULL) == 0);
    CHECK_SAME(at(nb_grad(w2), 1), INFINITY);
    CHECK(nb_last_error() == NULL);
    nb_scope_end(mark);
}


int main(void) {
    check_alarm(120, "test_nonfinite: timed out (a hang on non-finite values?)\n");
    size_t top = nb_scope_begin();
    unary_values();
    binary_values();
    gradient_values();
    every_op();
    anomaly();
    nb_scope_end(top);
    nb_cleanup();
    return check_report("test_nonfinite");
}
