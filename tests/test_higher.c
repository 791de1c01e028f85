/* Higher-order derivatives: nb_autograd with create_graph, differentiated
   again.  Element-wise ops: first, second and third derivatives against their
   analytic formulas.  Every other op: nb_gradgradcheck, plus an independent
   check of Hessian-vector products against central differences of gradients.
   Seed 002's second derivatives; nb_autograd's contract (stored gradients
   untouched, zeros for unused inputs, errors). */
#include "nabla.h"
#include "check.h"
#include "opcases.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define EPS 1e-6
#define GGTOL 1e-6

/* ---- element-wise ops: f', f'', f''' ------------------------------------- */
typedef struct unary_case {
    const char *name;
    double p;    /* pow exponent / scale factor */
    bool positive; /* domain x > 0 */
} unary_case;

static nb_tensor *unary_apply(const unary_case *u, nb_tensor *x) {
    const char *n = u->name;
    if (!strcmp(n, "sin")) return nb_sin(x);
    if (!strcmp(n, "cos")) return nb_cos(x);
    if (!strcmp(n, "exp")) return nb_exp(x);
    if (!strcmp(n, "log")) return nb_log(x);
    if (!strcmp(n, "sqrt")) return nb_sqrt(x);
    if (!strcmp(n, "square")) return nb_square(x);
    if (!strcmp(n, "pow")) return nb_pow(x, u->p);
    if (!strcmp(n, "sigmoid")) return nb_sigmoid(x);
    if (!strcmp(n, "tanh")) return nb_tanh(x);
    if (!strcmp(n, "relu")) return nb_relu(x);
    if (!strcmp(n, "neg")) return nb_neg(x);
    if (!strcmp(n, "scale")) return nb_scale(x, u->p);
    return NULL;
}

/* the k-th derivative (k = 1, 2, 3) at x, by hand */
static double dk(const unary_case *u, int k, double x) {
    const char *n = u->name;
    double p = u->p;
    if (!strcmp(n, "sin")) return k == 1 ? cos(x) : k == 2 ? -sin(x) : -cos(x);
    if (!strcmp(n, "cos")) return k == 1 ? -sin(x) : k == 2 ? -cos(x) : sin(x);
    if (!strcmp(n, "exp")) return exp(x);
    if (!strcmp(n, "log")) return k == 1 ? 1 / x : k == 2 ? -1 / (x * x) : 2 / (x * x * x);
    if (!strcmp(n, "sqrt"))
        return k == 1 ? 0.5 * pow(x, -0.5) : k == 2 ? -0.25 * pow(x, -1.5) : 0.375 * pow(x, -2.5);
    if (!strcmp(n, "square")) return k == 1 ? 2 * x : k == 2 ? 2 : 0;
    if (!strcmp(n, "pow")) {
        double c = p;
        for (int i = 1; i < k; i++) c *= p - i;
        return c == 0 ? 0 : c * pow(x, p - k);
    }
    if (!strcmp(n, "sigmoid")) {
        double s = 1 / (1 + exp(-x));
        return k == 1 ? s * (1 - s) : k == 2 ? s * (1 - s) * (1 - 2 * s)
                                             : s * (1 - s) * (1 - 6 * s + 6 * s * s);
    }
    if (!strcmp(n, "tanh")) {
        double t = tanh(x);
        return k == 1 ? 1 - t * t : k == 2 ? -2 * t * (1 - t * t) : -2 * (1 - t * t) * (1 - 3 * t * t);
    }
    if (!strcmp(n, "relu")) return k == 1 ? (x > 0 ? 1 : 0) : 0;
    if (!strcmp(n, "neg")) return k == 1 ? -1 : 0;
    if (!strcmp(n, "scale")) return k == 1 ? p : 0;
    return NAN;
}

static void elementwise_orders(const unary_case *u) {
    size_t mark = nb_scope_begin();
    const double normal[] = {-1.7, -0.6, 0.3, 0.9, 2.2};
    const double positive[] = {0.4, 0.8, 1.3, 2.0, 3.1};
    const double *xv = u->positive ? positive : normal;
    nb_tensor *x = nb_vector(xv, 5);
    nb_tensor *y = unary_apply(u, x);
    nb_tensor *g[4] = {y, NULL, NULL, NULL};
    for (int k = 1; k <= 3; k++) {
        /* seed NULL: ones, so for an element-wise f the result is f^(k)(x) */
        int rc = nb_autograd(1, &g[k - 1], NULL, 1, &x, &g[k], true);
        if (rc != 0 || !g[k]) {
            check_failed_++;
            fprintf(stderr, "%s(p=%g): order %d: nb_autograd failed: %s\n", u->name, u->p, k,
                    nb_last_error() ? nb_last_error() : "");
            nb_clear_error();
            break;
        }
        CHECK(nb_ndim(g[k]) == 1 && nb_numel(g[k]) == 5);
        for (int i = 0; i < 5 && nb_numel(g[k]) == 5; i++) {
            double want = dk(u, k, xv[i]), got = nb_data(g[k])[i];
            if (fabs(got - want) <= 1e-10 * fmax(1.0, fabs(want))) check_passed_++;
            else {
                check_failed_++;
                fprintf(stderr, "%s(p=%g): d^%d/dx^%d at %g = %.15g, expected %.15g\n", u->name,
                        u->p, k, k, xv[i], got, want);
            }
        }
    }
    CHECK(nb_grad(x) == NULL); /* nb_autograd leaves stored gradients alone */
    nb_scope_end(mark);
}

/* ---- every op: gradgradcheck and Hessian-vector products ---------------- */
/* Most ops are linear or piecewise linear, so they are composed with a
   square (or multiplied by themselves) to give the second-order rules of
   their backward something to do: f = op(x) * op(x) in those cases. */
static nb_tensor *apply(int n, nb_tensor *const *in, void *vctx) {
    const tcase *c = vctx;
    nb_tensor *a = in[0], *b = n > 1 ? in[1] : NULL;
    switch (c->op) {
    case K_ADD: case K_SUB: case K_MAXIMUM: case K_MAX_AXIS: case K_TRANSPOSE: case K_RESHAPE:
    case K_BROADCAST_TO: case K_SUM_TO:
        return nb_square(apply_op(n, in, vctx));
    case K_SUM: case K_MEAN: case K_MAX: case K_SUM_AXIS: case K_MEAN_AXIS: {
        nb_tensor *sq = nb_square(a);
        return nb_square(apply_op(1, &sq, vctx));
    }
    case K_SIGMOID_OF_PROD: return nb_sigmoid(nb_prod(a, b));
    case K_COMPOSITE: {
        /* log_softmax(tanh(a @ b) / (1 + b^2 summed)) * exp(-a mean) */
        nb_tensor *h = nb_tanh(nb_matmul(a, b));
        nb_tensor *d = nb_add(nb_scalar(1.0), nb_sum(nb_square(b)));
        nb_tensor *l = nb_log_softmax(nb_div(h, d), -1);
        return nb_prod(l, nb_exp(nb_neg(nb_mean(a))));
    }
    default: return apply_op(n, in, vctx); /* prod, div, pow, softmax, log_softmax, matmul */
    }
}

static uint64_t seed_ = 777; /* inputs */
static uint64_t lcg_ = 4242; /* directions */

/* gradients of <u, f(x)> with respect to every input (no graph) */
static bool grads_of(const tcase *c, nb_tensor **in, nb_tensor *u, nb_tensor **g) {
    nb_tensor *y = apply(c->nin, in, (void *)c);
    return y && nb_autograd(1, &y, &u, c->nin, in, g, false) == 0;
}

static void run_case(const tcase *c) {
    size_t mark = nb_scope_begin();
    nb_tensor *in[2] = {NULL, NULL};
    for (int i = 0; i < c->nin; i++) in[i] = make_input(&c->in[i], c->gen[i], &seed_);
    const char *name = KNAME[c->op];

    double err = -1;
    int rc = nb_gradgradcheck(apply, c->nin, in, (void *)c, EPS, &err);
    if (rc == 0 && err >= 0 && err < GGTOL) check_passed_++;
    else {
        check_failed_++;
        fprintf(stderr, "%s (case axis=%d keep=%d p=%g): nb_gradgradcheck rc=%d max_err=%g %s\n",
                name, c->axis, (int)c->keep, c->p, rc, err, nb_last_error() ? nb_last_error() : "");
        nb_clear_error();
    }

    /* H v by double backward against central differences of the gradient */
    nb_tensor *y = apply(c->nin, in, (void *)c);
    if (!y) {
        step_failed(name, "forward");
        nb_scope_end(mark);
        return;
    }
    nb_tensor *u = random_like(y, &lcg_);
    nb_tensor *v[2] = {NULL, NULL}, *g[2] = {NULL, NULL}, *hv[2] = {NULL, NULL};
    for (int i = 0; i < c->nin; i++) v[i] = random_like(in[i], &lcg_);
    rc = nb_autograd(1, &y, &u, c->nin, in, g, true);
    nb_tensor *s = NULL;
    for (int i = 0; i < c->nin && rc == 0; i++) {
        nb_tensor *term = nb_sum(nb_prod(g[i], v[i]));
        s = s ? nb_add(s, term) : term;
    }
    if (rc == 0) rc = nb_autograd(1, &s, NULL, c->nin, in, hv, false);
    if (rc != 0) {
        step_failed(name, "double backward");
        nb_scope_end(mark);
        return;
    }
    const double h = 1e-5;
    nb_tensor *gp[2] = {NULL, NULL}, *gm[2] = {NULL, NULL};
    for (int sign = 1; sign >= -1; sign -= 2) {
        nb_tensor *xs[2] = {NULL, NULL};
        for (int i = 0; i < c->nin; i++) {
            xs[i] = shifted(in[i], v[i], sign * h);
            nb_set_requires_grad(xs[i], true);
        }
        CHECK(grads_of(c, xs, u, sign > 0 ? gp : gm));
    }
    for (int i = 0; i < c->nin; i++) {
        if (!gp[i] || !gm[i] || !hv[i] || nb_numel(hv[i]) != nb_numel(in[i])) {
            check_failed_++;
            fprintf(stderr, "%s: missing gradient %d\n", name, i);
            continue;
        }
        double worst = 0;
        for (int64_t j = 0; j < nb_numel(in[i]); j++) {
            double num = (nb_data(gp[i])[j] - nb_data(gm[i])[j]) / (2 * h);
            double e = fabs(nb_data(hv[i])[j] - num) / fmax(1.0, fabs(num));
            worst = e > worst || isnan(e) ? e : worst;
        }
        if (worst < 1e-6) check_passed_++;
        else {
            check_failed_++;
            fprintf(stderr, "%s (axis=%d keep=%d p=%g): Hv of input %d off by %g\n", name,
                    c->axis, (int)c->keep, c->p, i, worst);
        }
    }
    nb_scope_end(mark);
}

static void other_ops(void) {
    const shp pairs[][2] = {{S(1, 4), S(1, 4)}, {S(0), S(2, 2, 3)}, {S(2, 1, 3), S(2, 2, 1)},
                            {S(3, 2, 3, 4), S(2, 3, 1)}};
    const int bops[] = {K_ADD, K_SUB, K_PROD, K_DIV, K_MAXIMUM, K_SIGMOID_OF_PROD};
    for (size_t o = 0; o < sizeof bops / sizeof *bops; o++)
        for (size_t k = 0; k < sizeof pairs / sizeof *pairs; k++)
            bin(bops[o], pairs[k][0], pairs[k][1], G_NORMAL,
                bops[o] == K_DIV ? G_POSITIVE : G_NORMAL);
    const double pw[] = {2, 3, 0.5, -1.5, 2.7};
    for (int i = 0; i < 5; i++) un(K_POW, S(2, 2, 3), 0, false, pw[i], G_POSITIVE);
    un(K_POW, S(2, 2, 3), 0, false, 3, G_NORMAL);
    const shp rs[] = {S(0), S(1, 5), S(2, 3, 4), S(3, 2, 3, 2)};
    for (size_t k = 0; k < 4; k++) {
        whole_reductions(rs[k], G_NORMAL);
        axis_sweep(rs[k], G_NORMAL);
    }
    const shp mm[][2] = {{S(2, 3, 4), S(2, 4, 2)}, {S(1, 4), S(2, 4, 3)}, {S(2, 3, 4), S(1, 4)},
                         {S(1, 4), S(1, 4)}, {S(3, 2, 3, 4), S(2, 4, 2)},
                         {S(4, 2, 1, 3, 4), S(3, 3, 4, 2)}};
    for (size_t k = 0; k < sizeof mm / sizeof *mm; k++) {
        /* matmul is bilinear: its Hessian is the cross term between a and b */
        bin(K_MATMUL, mm[k][0], mm[k][1], G_NORMAL, G_NORMAL);
    }
    bin(K_COMPOSITE, S(2, 3, 4), S(2, 4, 5), G_NORMAL, G_NORMAL);
    bin(K_COMPOSITE, S(3, 2, 3, 4), S(2, 4, 3), G_NORMAL, G_NORMAL);
    tgt(K_TRANSPOSE, S(2, 3, 4), S(0), G_NORMAL);
    tgt(K_TRANSPOSE, S(3, 2, 3, 4), S(0), G_NORMAL);
    tgt(K_RESHAPE, S(3, 2, 3, 4), S(2, 4, -1), G_NORMAL);
    tgt(K_RESHAPE, S(1, 6), S(3, 1, 2, 3), G_NORMAL);
    tgt(K_BROADCAST_TO, S(2, 3, 1), S(3, 2, 3, 4), G_NORMAL);
    tgt(K_SUM_TO, S(3, 2, 3, 4), S(2, 1, 4), G_NORMAL);
}

/* ---- seed 002: f = b (a + b)(a - b) = a^2 b - b^3 at a = 1, b = 2 ----------- */
static void seed002(void) {
    size_t mark = nb_scope_begin();
    nb_tensor *a = nb_scalar(1.0), *b = nb_scalar(2.0);
    nb_tensor *f = nb_prod(b, nb_prod(nb_add(a, b), nb_sub(a, b)));
    nb_tensor *in[2] = {a, b}, *g[2] = {NULL, NULL};
    CHECK(nb_autograd(1, &f, NULL, 2, in, g, true) == 0);
    if (!g[0] || !g[1]) {
        check_failed_++;
        nb_scope_end(mark);
        return;
    }
    CHECK_NEAR(nb_item(g[0]), 4.0, 1e-12);   /* 2ab       */
    CHECK_NEAR(nb_item(g[1]), -11.0, 1e-12); /* a^2 - 3b^2 */
    nb_tensor *gaa[2] = {NULL, NULL}, *gbb[2] = {NULL, NULL};
    CHECK(nb_autograd(1, &g[0], NULL, 2, in, gaa, true) == 0);
    CHECK(nb_autograd(1, &g[1], NULL, 2, in, gbb, true) == 0);
    if (gaa[0] && gaa[1] && gbb[0] && gbb[1]) {
        CHECK_NEAR(nb_item(gaa[0]), 4.0, 1e-12);   /* d2f/da2 = 2b  */
        CHECK_NEAR(nb_item(gaa[1]), 2.0, 1e-12);   /* d2f/dadb = 2a */
        CHECK_NEAR(nb_item(gbb[0]), 2.0, 1e-12);
        CHECK_NEAR(nb_item(gbb[1]), -12.0, 1e-12); /* d2f/db2 = -6b */
        /* third order: d3f/da2db = 2, d3f/db3 = -6 */
        nb_tensor *t1[2] = {NULL, NULL}, *t2[2] = {NULL, NULL};
        CHECK(nb_autograd(1, &gaa[0], NULL, 2, in, t1, false) == 0);
        CHECK(nb_autograd(1, &gbb[1], NULL, 2, in, t2, false) == 0);
        if (t1[0] && t1[1] && t2[0] && t2[1]) {
            CHECK_NEAR(nb_item(t1[0]), 0.0, 1e-12);
            CHECK_NEAR(nb_item(t1[1]), 2.0, 1e-12);
            CHECK_NEAR(nb_item(t2[0]), 0.0, 1e-12);
            CHECK_NEAR(nb_item(t2[1]), -6.0, 1e-12);
        } else {
            check_failed_++;
        }
    } else {
        check_failed_++;
    }
    /* with backward on a create_graph gradient (the seed's torch way) */
    nb_tensor *a2 = nb_scalar(1.0), *b2 = nb_scalar(2.0);
    nb_tensor *f2 = nb_prod(b2, nb_prod(nb_add(a2, b2), nb_sub(a2, b2)));
    nb_tensor *ga = NULL;
    CHECK(nb_autograd(1, &f2, NULL, 1, &a2, &ga, true) == 0);
    CHECK(ga && nb_backward(ga, NULL) == 0);
    CHECK(nb_grad(a2) && fabs(nb_item(nb_grad(a2)) - 4.0) < 1e-12);
    CHECK(nb_grad(b2) && fabs(nb_item(nb_grad(b2)) - 2.0) < 1e-12);
    nb_scope_end(mark);
}

/* ---- nb_autograd's contract ---------------------------------------------- */
static void autograd_contract(void) {
    size_t mark = nb_scope_begin();
    const double xv[] = {0.5, -1.0, 2.0};
    nb_tensor *x = nb_vector(xv, 3), *w = nb_vector(xv, 3), *unused = nb_scalar(4.0);
    nb_tensor *y = nb_sum(nb_prod(nb_square(x), w));
    CHECK(nb_backward(y, NULL) == 0);
    double before[3];
    for (int i = 0; i < 3; i++) before[i] = nb_data(nb_grad(x))[i];

    /* stored gradients untouched; an unused input gets zeros of its shape */
    nb_tensor *in[3] = {x, w, unused}, *g[3] = {NULL, NULL, NULL};
    CHECK(nb_autograd(1, &y, NULL, 3, in, g, false) == 0);
    for (int i = 0; i < 3; i++) {
        CHECK_NEAR(nb_data(nb_grad(x))[i], before[i], 0);
        if (g[0]) CHECK_NEAR(nb_data(g[0])[i], 2 * xv[i] * xv[i], 1e-12);
        if (g[1]) CHECK_NEAR(nb_data(g[1])[i], xv[i] * xv[i], 1e-12);
    }
    CHECK(nb_grad(unused) == NULL);
    CHECK(g[2] && nb_ndim(g[2]) == 0 && nb_item(g[2]) == 0.0);

    /* two outputs with seeds: d/dx (<s1, y1> + <s2, y2>) */
    nb_tensor *y1 = nb_sin(x), *y2 = nb_sum(nb_exp(x));
    nb_tensor *s1 = nb_vector((const double[]){1, 2, 3}, 3), *s2 = nb_scalar(-0.5);
    nb_tensor *outs[2] = {y1, y2}, *seeds[2] = {s1, s2}, *gx = NULL;
    CHECK(nb_autograd(2, outs, seeds, 1, &x, &gx, false) == 0);
    for (int i = 0; i < 3 && gx; i++)
        CHECK_NEAR(nb_data(gx)[i], (i + 1) * cos(xv[i]) - 0.5 * exp(xv[i]), 1e-12);

    /* create_graph = false: the results carry no graph */
    CHECK(gx && !nb_requires_grad(gx));

    /* errors: -1 and a message */
    nb_tensor *bad_seed = nb_vector((const double[]){1, 2}, 2), *gb = NULL;
    nb_clear_error();
    CHECK(nb_autograd(1, &y1, &bad_seed, 1, &x, &gb, false) == -1);
    CHECK(nb_last_error() != NULL);
    nb_clear_error();
    nb_tensor *null_out = NULL;
    CHECK(nb_autograd(1, &null_out, NULL, 1, &x, &gb, false) == -1);
    CHECK(nb_last_error() != NULL);
    nb_clear_error();
    nb_tensor *null_in = NULL;
    CHECK(nb_autograd(1, &y1, NULL, 1, &null_in, &gb, false) == -1);
    CHECK(nb_last_error() != NULL);
    nb_clear_error();
    CHECK(nb_autograd(0, NULL, NULL, 1, &x, &gb, false) == -1);
    nb_clear_error();
    CHECK(nb_autograd(1, &y1, NULL, 1, &x, NULL, false) == -1);
    nb_clear_error();
    /* the same input twice gets the full gradient twice; an output listed
       twice counts twice; an output upstream of another adds its own seed */
    nb_tensor *c = nb_scalar(2.0), *c3 = nb_pow(c, 3.0);
    nb_tensor *cc[2] = {c, c}, *gcc[2] = {NULL, NULL}, *gc = NULL;
    CHECK(nb_autograd(1, &c3, NULL, 2, cc, gcc, false) == 0);
    CHECK(gcc[0] && gcc[1] && nb_item(gcc[0]) == 12.0 && nb_item(gcc[1]) == 12.0);
    nb_tensor *twice[2] = {c3, c3};
    CHECK(nb_autograd(2, twice, NULL, 1, &c, &gc, false) == 0);
    CHECK(gc && nb_item(gc) == 24.0);
    nb_tensor *chain[2] = {c3, nb_square(c3)}; /* 3c^2 + 2 c^3 3c^2 = 12 + 192 */
    CHECK(nb_autograd(2, chain, NULL, 1, &c, &gc, false) == 0);
    CHECK(gc && nb_item(gc) == 204.0);
    /* an interior tensor as an input, next to the leaf it comes from */
    nb_tensor *e0 = nb_scalar(1.0), *eh = nb_exp(e0), *ew = nb_square(eh);
    nb_tensor *mixed[2] = {eh, e0}, *gm[2] = {NULL, NULL};
    CHECK(nb_autograd(1, &ew, NULL, 2, mixed, gm, false) == 0);
    CHECK(gm[0] && fabs(nb_item(gm[0]) - 2 * exp(1.0)) < 1e-12);
    CHECK(gm[1] && fabs(nb_item(gm[1]) - 2 * exp(2.0)) < 1e-12);
    /* still usable afterwards */
    CHECK(nb_autograd(1, &y2, NULL, 1, &x, &gb, false) == 0);
    nb_scope_end(mark);
}

/* a gradient of a gradient through a whole network, by hand: for
   L = sum(tanh(W x)), dL/dx = W^T (1 - t^2), and d/dx of sum(dL/dx) is
   W^T diag(-2 t (1 - t^2)) W 1 */
static void network_second_order(void) {
    size_t mark = nb_scope_begin();
    const double wv[] = {0.3, -0.8, 0.5, 1.1, 0.2, -0.4}, xv[] = {0.7, -0.2};
    nb_tensor *W = nb_matrix(wv, 3, 2), *x = nb_vector(xv, 2);
    nb_tensor *L = nb_sum(nb_tanh(nb_matmul(W, x)));
    nb_tensor *g = NULL, *h = NULL;
    CHECK(nb_autograd(1, &L, NULL, 1, &x, &g, true) == 0);
    nb_tensor *sg = nb_sum(g);
    CHECK(nb_autograd(1, &sg, NULL, 1, &x, &h, false) == 0);
    double t[3], d2[3], w1[3], want[2] = {0, 0}, wg[2] = {0, 0};
    for (int i = 0; i < 3; i++) {
        t[i] = tanh(wv[2 * i] * xv[0] + wv[2 * i + 1] * xv[1]);
        d2[i] = -2 * t[i] * (1 - t[i] * t[i]);
        w1[i] = wv[2 * i] + wv[2 * i + 1];
    }
    for (int j = 0; j < 2; j++)
        for (int i = 0; i < 3; i++) {
            want[j] += wv[2 * i + j] * d2[i] * w1[i];
            wg[j] += wv[2 * i + j] * (1 - t[i] * t[i]);
        }
    for (int j = 0; j < 2 && g && h; j++) {
        CHECK_NEAR(nb_data(g)[j], wg[j], 1e-12);
        CHECK_NEAR(nb_data(h)[j], want[j], 1e-12);
    }
    CHECK(g && h);
    nb_scope_end(mark);
}

/* a long chain differentiated twice: no recursion on the graph's depth.
   y = (r^N x)^2: dy/dx = 2 r^(2N) x, d2y/dx2 = 2 r^(2N) */
static void long_chain(void) {
    size_t mark = nb_scope_begin();
    const int N = 200000;
    const double r = 1.000001;
    nb_tensor *x = nb_scalar(0.75);
    nb_tensor *z = x;
    for (int i = 0; i < N && z; i++) z = nb_scale(z, r);
    nb_tensor *y = nb_square(z), *g = NULL, *h = NULL;
    CHECK(nb_autograd(1, &y, NULL, 1, &x, &g, true) == 0);
    CHECK(g && nb_autograd(1, &g, NULL, 1, &x, &h, true) == 0);
    double r2n = pow(r, 2.0 * N);
    CHECK(g && fabs(nb_item(g) - 2 * r2n * 0.75) < 1e-8);
    CHECK(h && fabs(nb_item(h) - 2 * r2n) < 1e-8);
    nb_scope_end(mark);
}

int main(void) {
    size_t mark = nb_scope_begin();
    const unary_case us[] = {
        {"sin", 0, false},    {"cos", 0, false},   {"exp", 0, false},     {"log", 0, true},
        {"sqrt", 0, true},    {"square", 0, false}, {"pow", 2, false},    {"pow", 3, false},
        {"pow", 4, false},    {"pow", 0.5, true},  {"pow", -1, true},     {"pow", -2.5, true},
        {"pow", 1.5, true},   {"pow", 0, true},    {"pow", 1, false},     {"sigmoid", 0, false},
        {"tanh", 0, false},   {"relu", 0, false},  {"neg", 0, false},     {"scale", 2.5, false},
        {"scale", -3, false},
    };
    for (size_t i = 0; i < sizeof us / sizeof *us; i++) elementwise_orders(&us[i]);
    other_ops();
    seed002();
    autograd_contract();
    network_second_order();
    long_chain();
    nb_scope_end(mark);
    nb_cleanup();
    return check_report("higher");
}
