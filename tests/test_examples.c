/* The worked examples of the other seeds (SPEC section 3): seed 002's scalar
   engine, seed 004's gates and f(x) = sqrt(x^2 + exp(x^2)) + cos(x^2 + exp(x^2)),
   seed 001's PyTorch example and a vector-Jacobian product with a user seed.
   Every expected value is derived by hand (analytic derivatives). */
#include "nabla.h"
#include "check.h"

#include <math.h>
#include <stdint.h>

#define TOL 1e-10

/* the gradient of t as a number (t has one element), NaN when missing */
static double g1(const nb_tensor *t) {
    nb_tensor *g = nb_grad(t);
    return g ? nb_item(g) : NAN;
}

/* compares every element of t (numel n) with want[] */
#define EXPECT_DATA(t, want, n, tol) expect_data_((t), (want), (n), (tol), #t, __LINE__)
static void expect_data_(const nb_tensor *t, const double *want, int64_t n, double tol,
                         const char *what, int line) {
    if (!t || nb_numel(t) != n) {
        check_failed_++;
        fprintf(stderr, "test_examples.c:%d: %s is %s\n", line, what,
                t ? "of the wrong size" : "NULL");
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        if (fabs(nb_data(t)[i] - want[i]) <= tol) check_passed_++;
        else {
            check_failed_++;
            fprintf(stderr, "test_examples.c:%d: %s[%lld] = %.15g, expected %.15g\n", line, what,
                    (long long)i, nb_data(t)[i], want[i]);
        }
    }
}

/* seed 002: f = b * ((a + b) * (a - b)) = a^2 b - b^3 at a = 1, b = 2:
   f = -6, df/da = 2ab = 4, df/db = a^2 - 3b^2 = -11 */
static void seed002(void) {
    nb_tensor *a = nb_scalar(1.0), *b = nb_scalar(2.0);
    nb_tensor *f = nb_prod(b, nb_prod(nb_add(a, b), nb_sub(a, b)));
    CHECK_NEAR(nb_item(f), -6.0, TOL);
    CHECK(nb_backward(f, NULL) == 0);
    CHECK_NEAR(g1(a), 4.0, TOL);
    CHECK_NEAR(g1(b), -11.0, TOL);
    CHECK(nb_ndim(nb_grad(a)) == 0);
}

/* seed 004: f = (x + y) z at (-2, 5, -4): df/dx = df/dy = z = -4, df/dz = x + y = 3 */
static void seed004_addmul(void) {
    nb_tensor *x = nb_scalar(-2.0), *y = nb_scalar(5.0), *z = nb_scalar(-4.0);
    nb_tensor *f = nb_prod(nb_add(x, y), z);
    CHECK_NEAR(nb_item(f), -12.0, TOL);
    CHECK(nb_backward(f, NULL) == 0);
    CHECK_NEAR(g1(x), -4.0, TOL);
    CHECK_NEAR(g1(y), -4.0, TOL);
    CHECK_NEAR(g1(z), 3.0, TOL);
}

/* seed 004: f(x) = sqrt(x^2 + exp(x^2)) + cos(x^2 + exp(x^2)), built from its
   staged form a = x^2, b = exp(a), c = a + b, d = sqrt(c), e = cos(c), f = d + e.
   With u = x^2 + e^{x^2}, u' = 2x (1 + e^{x^2}) and f' = u' (1/(2 sqrt u) - sin u). */
static void seed004_f(void) {
    const double xs[] = {-1.3, -0.5, 0.0, 0.25, 0.7, 1.1};
    for (int k = 0; k < 6; k++) {
        double xv = xs[k];
        nb_tensor *x = nb_scalar(xv);
        nb_tensor *a = nb_square(x);
        nb_tensor *b = nb_exp(a);
        nb_tensor *c = nb_add(a, b);
        nb_tensor *f = nb_add(nb_sqrt(c), nb_cos(c));
        double u = xv * xv + exp(xv * xv);
        double du = 2.0 * xv * (1.0 + exp(xv * xv));
        CHECK_NEAR(nb_item(f), sqrt(u) + cos(u), TOL);
        CHECK(nb_backward(f, NULL) == 0);
        CHECK_NEAR(g1(x), du * (0.5 / sqrt(u) - sin(u)), 1e-9);
    }
    /* the same on a vector of the points at once */
    nb_tensor *x = nb_vector(xs, 6);
    nb_tensor *a = nb_square(x);
    nb_tensor *c = nb_add(a, nb_exp(a));
    nb_tensor *f = nb_add(nb_sqrt(c), nb_cos(c));
    CHECK(nb_backward(f, NULL) == 0);
    double want[6];
    for (int k = 0; k < 6; k++) {
        double xv = xs[k], u = xv * xv + exp(xv * xv);
        want[k] = 2.0 * xv * (1.0 + exp(xv * xv)) * (0.5 / sqrt(u) - sin(u));
    }
    EXPECT_DATA(nb_grad(x), want, 6, 1e-9);
}

/* seed 001 (PyTorch's tutorial): out = mean(3 (x + 2)^2) at x = ones(2, 2):
   out = 27, d out / dx_i = (3/2)(x_i + 2) = 4.5 */
static void seed001_mean(void) {
    const int64_t shape[] = {2, 2};
    nb_tensor *x = nb_ones(2, shape);
    nb_tensor *y = nb_add(x, nb_scalar(2.0));
    nb_tensor *z = nb_prod(nb_prod(y, y), nb_scalar(3.0));
    nb_tensor *out = nb_mean(z);
    CHECK_NEAR(nb_item(out), 27.0, TOL);
    CHECK(nb_backward(out, NULL) == 0);
    const double want[] = {4.5, 4.5, 4.5, 4.5};
    EXPECT_DATA(nb_grad(x), want, 4, TOL);
    nb_tensor *g = nb_grad(x);
    CHECK(g && nb_ndim(g) == 2 && nb_shape(g)[0] == 2 && nb_shape(g)[1] == 2);
    /* the same with square and scale */
    nb_tensor *x2 = nb_ones(2, shape);
    nb_tensor *out2 = nb_mean(nb_scale(nb_square(nb_add(x2, nb_scalar(2.0))), 3.0));
    CHECK(nb_backward(out2, NULL) == 0);
    EXPECT_DATA(nb_grad(x2), want, 4, TOL);
}

/* Reverse mode as a vector-Jacobian product: backward(y, v) gives J^T v. */
static void vjp_user_seed(void) {
    /* y = W x, W (3, 2), x (2, 1): J = W, so x.grad = W^T v and W.grad = v x^T */
    const double wv[] = {1, -2, 0.5, 3, -1, 4}, xv[] = {0.3, -0.7}, vv[] = {2, -1, 0.5};
    nb_tensor *W = nb_matrix(wv, 3, 2), *x = nb_column(xv, 2);
    nb_tensor *y = nb_matmul(W, x);
    nb_tensor *v = nb_column(vv, 3);
    nb_set_requires_grad(v, false);
    CHECK(nb_backward(y, v) == 0);
    double gx[2] = {0, 0}, gw[6];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++) {
            gx[j] += wv[i * 2 + j] * vv[i];
            gw[i * 2 + j] = vv[i] * xv[j];
        }
    EXPECT_DATA(nb_grad(x), gx, 2, TOL);
    EXPECT_DATA(nb_grad(W), gw, 6, TOL);
    CHECK(nb_grad(v) == NULL);

    /* element-wise y = x sin(x): J = diag(sin x + x cos x), so x.grad = J v */
    const double pv[] = {-1.0, 0.2, 0.9, 2.5}, sv[] = {0.5, -3.0, 1.5, 0.25};
    nb_tensor *p = nb_vector(pv, 4);
    nb_tensor *q = nb_prod(p, nb_sin(p));
    nb_tensor *s = nb_vector(sv, 4);
    CHECK(nb_backward(q, s) == 0);
    double want[4];
    for (int i = 0; i < 4; i++) want[i] = (sin(pv[i]) + pv[i] * cos(pv[i])) * sv[i];
    EXPECT_DATA(nb_grad(p), want, 4, TOL);

    /* y = softmax(x) with a seed: x.grad = s * (v - <s, v>) */
    const double tv[] = {0.1, -0.4, 1.2}, uv[] = {1.0, 2.0, -0.5};
    nb_tensor *t = nb_vector(tv, 3);
    nb_tensor *sm = nb_softmax(t, 0);
    CHECK(nb_backward(sm, nb_vector(uv, 3)) == 0);
    double z = 0, sx[3], su = 0, ws[3];
    for (int i = 0; i < 3; i++) z += exp(tv[i]);
    for (int i = 0; i < 3; i++) {
        sx[i] = exp(tv[i]) / z;
        su += sx[i] * uv[i];
    }
    for (int i = 0; i < 3; i++) ws[i] = sx[i] * (uv[i] - su);
    EXPECT_DATA(nb_grad(t), ws, 3, TOL);
}

/* seed 004's max gate. */
static void max_gate(void) {
    /* maximum routes the gradient to the larger input; a tie splits it in half */
    const double av[] = {1, 5, 3, -2}, bv[] = {4, 2, 3, -2};
    nb_tensor *a = nb_vector(av, 4), *b = nb_vector(bv, 4);
    nb_tensor *m = nb_maximum(a, b);
    const double mv[] = {4, 5, 3, -2}, ga[] = {0, 1, 0.5, 0.5}, gb[] = {1, 0, 0.5, 0.5};
    EXPECT_DATA(m, mv, 4, 0);
    CHECK(nb_backward(m, NULL) == 0);
    EXPECT_DATA(nb_grad(a), ga, 4, 0);
    EXPECT_DATA(nb_grad(b), gb, 4, 0);

    /* seed 004's gate diagram: max(z, w) with z = 2, w = -1 and upstream 2 */
    nb_tensor *z = nb_scalar(2.0), *w = nb_scalar(-1.0);
    nb_tensor *mx = nb_scale(nb_maximum(z, w), 2.0);
    CHECK(nb_backward(mx, NULL) == 0);
    CHECK_NEAR(g1(z), 2.0, 0);
    CHECK_NEAR(g1(w), 0.0, 0);

    /* maximum broadcasts (relu-like against a 0-d zero) */
    const double rv[] = {-1, 0, 2};
    nb_tensor *r = nb_vector(rv, 3), *zero = nb_scalar(0.0);
    nb_tensor *rm = nb_maximum(r, zero);
    CHECK(nb_backward(rm, NULL) == 0);
    const double gr[] = {0, 0.5, 1}, rmv[] = {0, 0, 2};
    EXPECT_DATA(rm, rmv, 3, 0);
    EXPECT_DATA(nb_grad(r), gr, 3, 0);
    CHECK_NEAR(g1(zero), 1.5, 0); /* 1 + 0.5 summed back to () */

    /* max splits evenly among ties */
    const double xv[] = {1, 3, 3, 2, 3, 0};
    nb_tensor *x = nb_vector(xv, 6);
    nb_tensor *mm = nb_max(x);
    CHECK(mm && nb_ndim(mm) == 0);
    CHECK_NEAR(nb_item(mm), 3.0, 0);
    CHECK(nb_backward(mm, NULL) == 0);
    const double gx[] = {0, 1.0 / 3, 1.0 / 3, 0, 1.0 / 3, 0};
    EXPECT_DATA(nb_grad(x), gx, 6, 1e-15);

    /* max_axis: ties split within each slice */
    const double yv[] = {1, 3, 3,
                         2, 2, 0};
    nb_tensor *y1 = nb_matrix(yv, 2, 3);
    nb_tensor *m1 = nb_max_axis(y1, 1, false);
    const double m1v[] = {3, 2}, gy1[] = {0, 0.5, 0.5, 0.5, 0.5, 0};
    CHECK(m1 && nb_ndim(m1) == 1 && nb_shape(m1)[0] == 2);
    EXPECT_DATA(m1, m1v, 2, 0);
    CHECK(nb_backward(m1, NULL) == 0);
    EXPECT_DATA(nb_grad(y1), gy1, 6, 0);

    nb_tensor *y0 = nb_matrix(yv, 2, 3);
    nb_tensor *m0 = nb_max_axis(y0, 0, true);
    const double m0v[] = {2, 3, 3}, gy0[] = {0, 1, 1, 1, 0, 0};
    CHECK(m0 && nb_ndim(m0) == 2 && nb_shape(m0)[0] == 1 && nb_shape(m0)[1] == 3);
    EXPECT_DATA(m0, m0v, 3, 0);
    CHECK(nb_backward(m0, NULL) == 0);
    EXPECT_DATA(nb_grad(y0), gy0, 6, 0);

    const double ev[] = {2, 2, 2, 2};
    nb_tensor *e = nb_matrix(ev, 2, 2);
    nb_tensor *me = nb_max_axis(e, -1, false);
    CHECK(nb_backward(me, NULL) == 0);
    const double ge[] = {0.5, 0.5, 0.5, 0.5};
    EXPECT_DATA(nb_grad(e), ge, 4, 0);
}

int main(void) {
    size_t mark = nb_scope_begin();
    seed002();
    seed004_addmul();
    seed004_f();
    seed001_mean();
    vjp_user_seed();
    max_gate();
    nb_scope_end(mark);
    nb_cleanup();
    return check_report("examples");
}
