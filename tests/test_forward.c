/* Forward mode (nb_dual / nb_tangent) and the derivative helpers built on it:
   seed 001's dual-number example, <u, J v> by JVP against <J^T u, v> by VJP
   and against a central difference for every op, tangents with grad
   disabled, reverse mode through a dual, nb_jacobian (both directions),
   nb_hessian and nb_hvp against analytic values and finite differences. */
#include "nabla.h"
#include "check.h"
#include "opcases.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- seed 001: func(x) = 3x^3 - 5x^2, func'(1.5) = 9x^2 - 10x = 5.25 ------ */
static nb_tensor *seed_func(nb_tensor *x) {
    return nb_sub(nb_scale(nb_pow(x, 3.0), 3.0), nb_scale(nb_square(x), 5.0));
}
static void seed001(void) {
    size_t mark = nb_scope_begin();
    nb_tensor *x = nb_dual(nb_scalar(1.5), nb_scalar(1.0));
    CHECK(x != NULL);
    nb_tensor *y = seed_func(x);
    CHECK(y && fabs(nb_item(y) - (3 * 3.375 - 5 * 2.25)) < 1e-12);
    nb_tensor *t = y ? nb_tangent(y) : NULL;
    CHECK(t && nb_ndim(t) == 0);
    CHECK(t && fabs(nb_item(t) - 5.25) < 1e-12);
    /* the same with prod/sub/add only: 3x^3 - 5x^2 = x*x*(3x - 5) */
    nb_tensor *x2 = nb_dual(nb_scalar(1.5), nb_scalar(2.0));
    nb_tensor *y2 = nb_prod(nb_prod(x2, x2), nb_sub(nb_prod(nb_scalar(3.0), x2), nb_scalar(5.0)));
    CHECK(y2 && nb_tangent(y2) && fabs(nb_item(nb_tangent(y2)) - 10.5) < 1e-12);
    /* a tensor made without a tangent carries none */
    CHECK(nb_tangent(nb_scalar(1.0)) == NULL);
    /* a tangent must have the primal's shape */
    nb_clear_error();
    CHECK(nb_dual(nb_vector((const double[]){1, 2}, 2), nb_scalar(1.0)) == NULL);
    CHECK(nb_last_error() && strncmp(nb_last_error(), "dual", 4) == 0);
    nb_clear_error();
    CHECK(nb_dual(NULL, nb_scalar(1.0)) == NULL);
    nb_clear_error();
    nb_scope_end(mark);
}

/* ---- every op: <u, J v> three ways ------------------------------------------ */
/* the single ops, and a composite of many */
static nb_tensor *apply(int n, nb_tensor *const *in, const tcase *c) {
    nb_tensor *a = in[0], *b = n > 1 ? in[1] : NULL;
    switch (c->op) {
    case K_COMPOSITE: {
        /* many ops chained: a (.., m, k), b (k, n) */
        nb_tensor *h = nb_sigmoid(nb_add(nb_matmul(a, b), nb_scalar(0.1)));
        nb_tensor *r = nb_relu(nb_sub(h, nb_scalar(0.3)));
        nb_tensor *q = nb_div(nb_exp(nb_neg(nb_square(a))), nb_add(nb_scalar(2.0), nb_cos(a)));
        nb_tensor *m = nb_mean_axis(q, -1, true);                 /* (.., m, 1) */
        nb_tensor *z = nb_prod(nb_log_softmax(nb_add(r, m), -1), nb_tanh(h));
        nb_tensor *zz = nb_maximum(z, nb_scale(z, 0.5));
        nb_tensor *t = nb_transpose(nb_reshape(zz, 2, (const int64_t[]){-1, nb_shape(b)[1]}));
        return nb_add(nb_sum_axis(nb_sqrt(nb_add(nb_square(t), nb_scalar(1.0))), 0, false),
                      nb_sum(nb_pow(nb_max_axis(t, 1, false), 2.0)));
    }
    default: return apply_op(n, in, (void *)c);
    }
}

static uint64_t seed_ = 31337; /* inputs */
static uint64_t lcg_ = 2024;   /* directions */

static double dot(const nb_tensor *a, const nb_tensor *b) {
    double s = 0;
    for (int64_t i = 0; i < nb_numel(a); i++) s += nb_data(a)[i] * nb_data(b)[i];
    return s;
}

static void run_case(const tcase *c) {
    size_t mark = nb_scope_begin();
    const char *name = KNAME[c->op];
    nb_tensor *x[2] = {NULL, NULL}, *v[2] = {NULL, NULL}, *d[2] = {NULL, NULL};
    for (int i = 0; i < c->nin; i++) {
        x[i] = make_input(&c->in[i], c->gen[i], &seed_);
        v[i] = random_like(x[i], &lcg_);
        d[i] = nb_dual(x[i], v[i]);
    }
    nb_tensor *yd = apply(c->nin, d, c);
    nb_tensor *y = apply(c->nin, x, c);
    if (!yd || !y) {
        step_failed(name, "forward");
        nb_scope_end(mark);
        return;
    }
    nb_tensor *u = random_like(y, &lcg_);
    /* the primal values are unchanged by the tangent */
    bool same = nb_numel(yd) == nb_numel(y);
    for (int64_t i = 0; same && i < nb_numel(y); i++) same = nb_data(yd)[i] == nb_data(y)[i];
    CHECK(same);
    /* JVP */
    nb_tensor *t = nb_tangent(yd);
    if (!t || nb_numel(t) != nb_numel(y) || nb_ndim(t) != nb_ndim(y)) {
        check_failed_++;
        fprintf(stderr, "%s: output has %s tangent\n", name, t ? "a misshapen" : "no");
        nb_scope_end(mark);
        return;
    }
    double jvp = dot(u, t);
    /* VJP */
    nb_tensor *g[2] = {NULL, NULL};
    double vjp = NAN;
    if (nb_autograd(1, &y, &u, c->nin, x, g, false) == 0) {
        vjp = 0;
        for (int i = 0; i < c->nin; i++) vjp += dot(g[i], v[i]);
    }
    /* central difference of <u, f(x + h v)> */
    const double h = 1e-6;
    double l[2];
    for (int k = 0; k < 2; k++) {
        size_t m2 = nb_scope_begin();
        nb_tensor *xs[2] = {NULL, NULL};
        for (int i = 0; i < c->nin; i++) xs[i] = shifted(x[i], v[i], k ? -h : h);
        nb_tensor *ys = apply(c->nin, xs, c);
        l[k] = ys ? dot(u, ys) : NAN;
        nb_scope_end(m2);
    }
    double fd = (l[0] - l[1]) / (2 * h);
    double scale = fmax(1.0, fabs(vjp));
    if (fabs(jvp - vjp) <= 1e-10 * scale && fabs(jvp - fd) <= 1e-6 * scale) check_passed_++;
    else {
        check_failed_++;
        fprintf(stderr, "%s (axis=%d keep=%d p=%g): <u,Jv> = %.15g (JVP), %.15g (VJP), %.15g (FD)\n",
                name, c->axis, (int)c->keep, c->p, jvp, vjp, fd);
    }

    /* tangents propagate with grad disabled too, and then no graph is made */
    bool prev = nb_set_grad_enabled(false);
    nb_tensor *yn = apply(c->nin, d, c);
    nb_set_grad_enabled(prev);
    nb_tensor *tn = yn ? nb_tangent(yn) : NULL;
    CHECK(yn && !nb_requires_grad(yn));
    CHECK(tn && fabs(dot(u, tn) - jvp) <= 1e-12 * scale);
    nb_scope_end(mark);
}

static void all_ops(void) {
    const shp pairs[][2] = {{S(1, 4), S(1, 4)}, {S(0), S(2, 2, 3)}, {S(2, 2, 3), S(0)},
                            {S(2, 1, 3), S(2, 2, 1)}, {S(3, 2, 3, 4), S(2, 3, 1)},
                            {S(1, 4), S(3, 2, 3, 4)}};
    const int bops[] = {K_ADD, K_SUB, K_PROD, K_DIV, K_MAXIMUM};
    for (size_t o = 0; o < 5; o++)
        for (size_t k = 0; k < sizeof pairs / sizeof *pairs; k++)
            bin(bops[o], pairs[k][0], pairs[k][1], G_AWAY0,
                bops[o] == K_DIV ? G_POSITIVE : G_AWAY0);
    const shp us[] = {S(0), S(1, 5), S(3, 2, 3, 4)};
    for (size_t k = 0; k < 3; k++) {
        const int uops[] = {K_NEG, K_SIN, K_COS, K_EXP, K_SQUARE, K_RELU, K_SIGMOID, K_TANH};
        for (size_t o = 0; o < sizeof uops / sizeof *uops; o++)
            un(uops[o], us[k], 0, false, 0, G_AWAY0);
        un(K_LOG, us[k], 0, false, 0, G_POSITIVE);
        un(K_SQRT, us[k], 0, false, 0, G_POSITIVE);
        un(K_SCALE, us[k], 0, false, -1.5, G_AWAY0);
        un(K_POW, us[k], 0, false, 3, G_AWAY0);
        un(K_POW, us[k], 0, false, -0.5, G_POSITIVE);
        un(K_POW, us[k], 0, false, 2.5, G_POSITIVE);
        whole_reductions(us[k], G_AWAY0);
        axis_sweep(us[k], G_AWAY0);
    }
    const shp mm[][2] = {{S(2, 3, 4), S(2, 4, 5)}, {S(1, 4), S(2, 4, 5)}, {S(2, 3, 4), S(1, 4)},
                         {S(1, 4), S(1, 4)}, {S(3, 2, 3, 4), S(2, 4, 5)},
                         {S(4, 2, 1, 3, 4), S(3, 3, 4, 2)}, {S(2, 3, 4), S(3, 2, 4, 5)}};
    for (size_t k = 0; k < sizeof mm / sizeof *mm; k++)
        bin(K_MATMUL, mm[k][0], mm[k][1], G_AWAY0, G_AWAY0);
    tgt(K_TRANSPOSE, S(2, 3, 4), S(0), G_AWAY0);
    tgt(K_TRANSPOSE, S(3, 2, 3, 4), S(0), G_AWAY0);
    tgt(K_TRANSPOSE, S(1, 4), S(0), G_AWAY0);
    tgt(K_RESHAPE, S(3, 2, 3, 4), S(2, 4, -1), G_AWAY0);
    tgt(K_RESHAPE, S(0), S(2, 1, 1), G_AWAY0);
    tgt(K_BROADCAST_TO, S(2, 3, 1), S(3, 2, 3, 4), G_AWAY0);
    tgt(K_BROADCAST_TO, S(0), S(1, 3), G_AWAY0);
    tgt(K_SUM_TO, S(3, 2, 3, 4), S(2, 1, 4), G_AWAY0);
    tgt(K_SUM_TO, S(3, 2, 3, 4), S(0), G_AWAY0);
    bin(K_COMPOSITE, S(2, 3, 4), S(2, 4, 5), G_AWAY0, G_AWAY0);
    bin(K_COMPOSITE, S(3, 2, 3, 4), S(2, 4, 3), G_AWAY0, G_AWAY0);
}

/* ---- mixing the modes ----------------------------------------------------- */
static void modes(void) {
    size_t mark = nb_scope_begin();
    /* reverse mode flows through a dual to its primal */
    const double xv[] = {0.5, -1.0, 2.0};
    nb_tensor *x = nb_vector(xv, 3);
    nb_tensor *d = nb_dual(x, nb_ones(1, (const int64_t[]){3}));
    nb_tensor *y = nb_sum(nb_prod(nb_sin(d), d));
    CHECK(y && nb_requires_grad(y));
    CHECK(nb_backward(y, NULL) == 0);
    for (int i = 0; i < 3; i++)
        CHECK(nb_grad(x) && fabs(nb_data(nb_grad(x))[i] - (sin(xv[i]) + xv[i] * cos(xv[i]))) < 1e-12);
    /* ... and the output's tangent is the directional derivative along ones */
    double want = 0;
    for (int i = 0; i < 3; i++) want += sin(xv[i]) + xv[i] * cos(xv[i]);
    CHECK(nb_tangent(y) && fabs(nb_item(nb_tangent(y)) - want) < 1e-12);

    /* a dual next to a plain tensor: the plain one's tangent is zero */
    nb_tensor *p = nb_dual(nb_scalar(2.0), nb_scalar(1.0));
    nb_tensor *q = nb_scalar(5.0);
    nb_tensor *r = nb_prod(nb_square(p), q); /* d/dp = 2pq = 20 */
    CHECK(r && nb_tangent(r) && fabs(nb_item(nb_tangent(r)) - 20.0) < 1e-12);

    /* at ties, forward mode agrees with reverse mode's even split */
    nb_tensor *m1 = nb_maximum(nb_dual(nb_scalar(1.0), nb_scalar(1.0)),
                               nb_dual(nb_scalar(1.0), nb_scalar(3.0)));
    CHECK(m1 && nb_tangent(m1) && nb_item(nb_tangent(m1)) == 2.0);
    nb_tensor *m2 = nb_max(nb_dual(nb_vector((const double[]){1, 5, 5}, 3),
                                   nb_vector((const double[]){7, 1, 3}, 3)));
    CHECK(m2 && nb_tangent(m2) && nb_item(nb_tangent(m2)) == 2.0);
    nb_tensor *r0 = nb_relu(nb_dual(nb_scalar(0.0), nb_scalar(1.0)));
    CHECK(r0 && nb_tangent(r0) && nb_item(nb_tangent(r0)) == 0.0); /* relu'(0) = 0 */

    /* with grad disabled: tangents still flow (seed 001's torch.no_grad aside) */
    bool prev = nb_set_grad_enabled(false);
    nb_tensor *e = nb_exp(nb_dual(nb_scalar(1.0), nb_scalar(3.0)));
    nb_set_grad_enabled(prev);
    CHECK(e && !nb_requires_grad(e));
    CHECK(e && nb_tangent(e) && fabs(nb_item(nb_tangent(e)) - 3.0 * exp(1.0)) < 1e-12);
    nb_scope_end(mark);
}

/* ---- nb_jacobian of softmax: diag(s) - s s^T ------------------------------ */
static nb_tensor *f_softmax(nb_tensor *x, void *ctx) { return nb_softmax(x, 0); }
static nb_tensor *f_wide(nb_tensor *x, void *ctx) { /* (3,) -> (2, 3): more outputs */
    return nb_softmax(nb_broadcast_to(x, 2, (const int64_t[]){2, 3}), 1);
}
static nb_tensor *f_narrow(nb_tensor *x, void *ctx) { /* (2, 3) -> (3,): fewer outputs */
    return nb_softmax(nb_sum_axis(x, 0, false), 0);
}
static nb_tensor *f_sin(nb_tensor *x, void *ctx) { return nb_sin(x); }
static nb_tensor *f_fails(nb_tensor *x, void *ctx) { return NULL; }
static void softmax_jac(const double *z, int n, double *J) {
    double s[8], sum = 0;
    for (int i = 0; i < n; i++) sum += exp(z[i]);
    for (int i = 0; i < n; i++) s[i] = exp(z[i]) / sum;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) J[i * n + j] = (i == j ? s[i] : 0) - s[i] * s[j];
}
static void expect_matrix(const nb_tensor *J, int64_t rows, int64_t cols, const double *want,
                          const char *what) {
    if (!J || nb_ndim(J) != 2 || nb_shape(J)[0] != rows || nb_shape(J)[1] != cols) {
        check_failed_++;
        fprintf(stderr, "%s: wrong result (%s)\n", what, J ? "shape" : nb_last_error());
        nb_clear_error();
        return;
    }
    double worst = 0;
    for (int64_t i = 0; i < rows * cols; i++) worst = fmax(worst, fabs(nb_data(J)[i] - want[i]));
    if (worst <= 1e-12) check_passed_++;
    else {
        check_failed_++;
        fprintf(stderr, "%s: off by %g\n", what, worst);
    }
}
static void jacobians(void) {
    size_t mark = nb_scope_begin();
    const double z[] = {0.2, -1.0, 1.5, 0.3};
    nb_tensor *x = nb_vector(z, 4);
    double J[64], W[64];
    softmax_jac(z, 4, J);
    expect_matrix(nb_jacobian(f_softmax, x, NULL), 4, 4, J, "jacobian softmax (4,)");

    /* 3 inputs, 6 outputs */
    nb_tensor *x3 = nb_vector(z, 3);
    softmax_jac(z, 3, J);
    for (int r = 0; r < 2; r++)
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++) W[(r * 3 + i) * 3 + j] = J[i * 3 + j];
    expect_matrix(nb_jacobian(f_wide, x3, NULL), 6, 3, W, "jacobian wide");

    /* 6 inputs, 3 outputs */
    const double m[] = {0.1, 0.5, -0.3, 0.9, -1.2, 0.4};
    nb_tensor *xm = nb_matrix(m, 2, 3);
    double zs[3];
    for (int j = 0; j < 3; j++) zs[j] = m[j] + m[3 + j];
    softmax_jac(zs, 3, J);
    for (int i = 0; i < 3; i++)
        for (int r = 0; r < 2; r++)
            for (int j = 0; j < 3; j++) W[i * 6 + r * 3 + j] = J[i * 3 + j];
    expect_matrix(nb_jacobian(f_narrow, xm, NULL), 3, 6, W, "jacobian narrow");

    /* a 0-d input and output: a 1x1 Jacobian */
    nb_tensor *s = nb_scalar(1.5);
    const double c15[] = {cos(1.5)};
    expect_matrix(nb_jacobian(f_sin, s, NULL), 1, 1, c15, "jacobian sin ()");
    nb_clear_error();
    CHECK(nb_jacobian(NULL, s, NULL) == NULL); /* a NULL function is an error */
    CHECK(nb_last_error() != NULL);
    nb_clear_error();
    /* f failing without a message of its own: the helper still fails with one
       (like an op given a NULL argument: "add: NULL argument 1") */
    CHECK(nb_jacobian(f_fails, s, NULL) == NULL);
    CHECK(nb_last_error() && strncmp(nb_last_error(), "jacobian", 8) == 0);
    nb_clear_error();
    CHECK(nb_hessian(f_fails, s, NULL) == NULL);
    CHECK(nb_last_error() && strncmp(nb_last_error(), "hessian", 7) == 0);
    nb_clear_error();
    CHECK(nb_hvp(f_fails, s, s, NULL) == NULL);
    CHECK(nb_last_error() && strncmp(nb_last_error(), "hvp", 3) == 0);
    nb_clear_error();
    nb_scope_end(mark);
}

/* ---- nb_hessian of a polynomial: H = A + A^T + diag(6x) + 2 c c^T ----------- */
typedef struct poly_ctx {
    nb_tensor *A, *c;
} poly_ctx;
static nb_tensor *poly(nb_tensor *x, void *vctx) {
    poly_ctx *p = vctx;
    nb_tensor *quad = nb_matmul(x, nb_matmul(p->A, x));         /* x^T A x */
    nb_tensor *cub = nb_sum(nb_pow(x, 3.0));                   /* sum x^3 */
    nb_tensor *lin2 = nb_square(nb_sum(nb_prod(x, p->c)));     /* (c.x)^2 */
    return nb_add(nb_add(quad, cub), lin2);
}
static void hessians(void) {
    size_t mark = nb_scope_begin();
    const double av[] = {1, 2, -1, 0.5, 3, 0, -2, 1, 4}, cv[] = {0.5, -1, 2}, xv[] = {0.3, -0.7, 1.1};
    poly_ctx p = {nb_matrix(av, 3, 3), nb_vector(cv, 3)};
    nb_set_requires_grad(p.A, false);
    nb_set_requires_grad(p.c, false);
    nb_tensor *x = nb_vector(xv, 3);
    double H[9];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            H[i * 3 + j] = av[i * 3 + j] + av[j * 3 + i] + (i == j ? 6 * xv[i] : 0) + 2 * cv[i] * cv[j];
    expect_matrix(nb_hessian(poly, x, &p), 3, 3, H, "hessian poly");
    CHECK(nb_grad(x) == NULL);
    /* the Jacobian of the polynomial is its gradient, as one row */
    double G[3];
    for (int i = 0; i < 3; i++) {
        double ax = 0, atx = 0, cx = 0;
        for (int j = 0; j < 3; j++) {
            ax += av[i * 3 + j] * xv[j];
            atx += av[j * 3 + i] * xv[j];
            cx += cv[j] * xv[j];
        }
        G[i] = ax + atx + 3 * xv[i] * xv[i] + 2 * cx * cv[i];
    }
    expect_matrix(nb_jacobian(poly, x, &p), 1, 3, G, "jacobian poly");
    nb_scope_end(mark);
}

/* ---- nb_hvp of a small network's loss ------------------------------------ */
typedef struct net_ctx {
    nb_tensor *X, *W2, *y;
} net_ctx;
static nb_tensor *net_loss(nb_tensor *W1, void *vctx) {
    net_ctx *n = vctx;
    nb_tensor *h = nb_tanh(nb_matmul(n->X, W1));                 /* (5, 4) */
    nb_tensor *o = nb_matmul(h, n->W2);                          /* (5, 2) */
    return nb_mean(nb_square(nb_sub(nb_log_softmax(o, 1), n->y)));
}
static void hvps(void) {
    size_t mark = nb_scope_begin();
    net_ctx n = {nb_randn(2, (const int64_t[]){5, 3}, 11), nb_randn(2, (const int64_t[]){4, 2}, 12),
                 nb_randn(2, (const int64_t[]){5, 2}, 13)};
    nb_set_requires_grad(n.X, false);
    nb_set_requires_grad(n.W2, false);
    nb_set_requires_grad(n.y, false);
    nb_tensor *W1 = nb_randn(2, (const int64_t[]){3, 4}, 14);
    nb_tensor *v = random_like(W1, &lcg_);
    nb_tensor *hv = nb_hvp(net_loss, W1, v, &n);
    CHECK(hv && nb_ndim(hv) == 2 && nb_shape(hv)[0] == 3 && nb_shape(hv)[1] == 4);
    CHECK(nb_grad(W1) == NULL);
    /* central difference of the gradient along v */
    const double h = 1e-5;
    nb_tensor *gs[2] = {NULL, NULL};
    for (int k = 0; k < 2; k++) {
        nb_tensor *w = shifted(W1, v, k ? -h : h);
        nb_tensor *L = net_loss(w, &n);
        CHECK(nb_autograd(1, &L, NULL, 1, &w, &gs[k], false) == 0);
    }
    /* and the full Hessian times v */
    nb_tensor *H = nb_hessian(net_loss, W1, &n);
    CHECK(H && nb_shape(H)[0] == 12 && nb_shape(H)[1] == 12);
    if (hv && gs[0] && gs[1] && H) {
        double worst = 0, worst_h = 0;
        for (int64_t j = 0; j < 12; j++) {
            double num = (nb_data(gs[0])[j] - nb_data(gs[1])[j]) / (2 * h);
            worst = fmax(worst, fabs(nb_data(hv)[j] - num));
            double hvj = 0;
            for (int64_t k = 0; k < 12; k++) hvj += nb_data(H)[j * 12 + k] * nb_data(v)[k];
            worst_h = fmax(worst_h, fabs(hvj - nb_data(hv)[j]));
        }
        if (worst > 1e-7 || worst_h > 1e-10)
            fprintf(stderr, "hvp: off by %g (finite differences), %g (hessian)\n", worst, worst_h);
        CHECK(worst <= 1e-7);
        CHECK(worst_h <= 1e-10);
        /* the Hessian is symmetric */
        double asym = 0;
        for (int i = 0; i < 12; i++)
            for (int j = 0; j < 12; j++)
                asym = fmax(asym, fabs(nb_data(H)[i * 12 + j] - nb_data(H)[j * 12 + i]));
        CHECK(asym < 1e-12);
    }
    /* a v of the wrong shape is an error */
    nb_clear_error();
    CHECK(nb_hvp(net_loss, W1, nb_ones(1, (const int64_t[]){12}), &n) == NULL);
    CHECK(nb_last_error() != NULL);
    nb_clear_error();
    nb_scope_end(mark);
}

/* tangents along a long chain: no recursion, freed cleanly */
static void long_dual_chain(void) {
    nb_mem_stats before, after;
    nb_memory_stats(&before);
    size_t mark = nb_scope_begin();
    const int N = 100000;
    nb_tensor *x = nb_dual(nb_scalar(0.3), nb_scalar(1.0));
    for (int i = 0; i < N && x; i++) x = nb_add(nb_scale(x, 0.5), nb_scalar(0.25));
    /* x_{k+1} = x_k / 2 + 1/4: the tangent halves at every step */
    CHECK(x && nb_tangent(x) && nb_item(nb_tangent(x)) == 0.0);
    CHECK(x && fabs(nb_item(x) - 0.5) < 1e-15);
    nb_tensor *y = nb_dual(nb_scalar(1.0), nb_scalar(1.0));
    for (int i = 0; i < N && y; i++) y = nb_sin(nb_add(y, nb_scalar(0.0)));
    /* compare with the same recursion in doubles: t_{k+1} = cos(y_k) t_k */
    double yv = 1.0, tv = 1.0;
    for (int i = 0; i < N; i++) {
        tv *= cos(yv);
        yv = sin(yv);
    }
    CHECK(y && fabs(nb_item(y) - yv) < 1e-12);
    CHECK(y && nb_tangent(y) && fabs(nb_item(nb_tangent(y)) - tv) < 1e-12);
    nb_scope_end(mark);
    nb_memory_stats(&after);
    CHECK(after.live_tensors == before.live_tensors);
}

int main(void) {
    size_t mark = nb_scope_begin();
    seed001();
    all_ops();
    modes();
    jacobians();
    hessians();
    hvps();
    long_dual_chain();
    nb_scope_end(mark);
    nb_cleanup();
    return check_report("forward");
}
