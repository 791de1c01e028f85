/*
 * The plain backward's shortcuts, checked against values they do not
 * compute: a rule may overwrite a gradient nobody else holds (tanh's
 * g*f'(x) in place, prod's first gradient in g's buffer) and may add its
 * result straight into an input's private accumulator (prod's second
 * gradient, every unary op).  Each case here is built so that a shortcut
 * taken when it must not be (a shared gradient, a retained one, the user's
 * seed) or done wrong (aliasing, a lost contribution) changes a number:
 * gradients are compared with analytic formulas, with central finite
 * differences, and with create_graph's autograd, which takes none of the
 * shortcuts.
 */
#include "check.h"
#include <nabla.h>

#include <math.h>
#include <stdlib.h>

static nb_tensor *vec(int64_t n, double (*f)(int64_t)) {
    nb_tensor *t = nb_zeros(1, &n);
    if (t)
        for (int64_t i = 0; i < n; i++) nb_data_mut(t)[i] = f(i);
    return t;
}
static double ramp(int64_t i) { return -1.5 + 0.37 * (double)(i % 11) + 1e-3 * (double)(i % 7); }

/* ---- the seed's scalar chain: y = tanh(y w + b), steps times ------------- */
static double chain_value(double w, double b, int steps) {
    double y = 0.3;
    for (int i = 0; i < steps; i++) y = tanh(y * w + b);
    return y;
}

static void test_scalar_chain(void) {
    const int steps = 200;
    const int64_t one = 1;
    double w0 = 0.9, b0 = 0.2, y0 = 0.3;
    size_t mark = nb_scope_begin();
    nb_tensor *w = nb_new(&w0, 1, &one), *b = nb_new(&b0, 1, &one);
    nb_tensor *y = nb_new(&y0, 1, &one);
    nb_set_requires_grad(y, false);
    for (int i = 0; i < steps; i++) y = nb_tanh(nb_add(nb_prod(y, w), b));
    nb_tensor *s = nb_sum(y);
    CHECK(s != NULL);
    /* create_graph first: its autograd takes no shortcut */
    nb_tensor *in[2] = {w, b}, *g[2] = {NULL, NULL};
    CHECK(nb_autograd(1, &s, NULL, 2, in, g, true) == 0);
    CHECK(nb_backward(s, NULL) == 0);
    const double h = 1e-6;
    double dw = (chain_value(w0 + h, b0, steps) - chain_value(w0 - h, b0, steps)) / (2 * h);
    double db = (chain_value(w0, b0 + h, steps) - chain_value(w0, b0 - h, steps)) / (2 * h);
    CHECK_NEAR(nb_data(nb_grad(w))[0], dw, 1e-7);
    CHECK_NEAR(nb_data(nb_grad(b))[0], db, 1e-7);
    CHECK_NEAR(nb_data(nb_grad(w))[0], nb_data(g[0])[0], 1e-13);
    CHECK_NEAR(nb_data(nb_grad(b))[0], nb_data(g[1])[0], 1e-13);
    /* a second backward adds the same again into the stored gradients */
    double gw = nb_data(nb_grad(w))[0];
    CHECK(nb_backward(s, NULL) == 0);
    CHECK_NEAR(nb_data(nb_grad(w))[0], 2 * gw, 1e-13);
    nb_scope_end(mark);
}

/* ---- fan-out: y is used by three rules; its gradient must sum them -------- */
/* z = sum(y*y + exp(y)*y + neg(y)), y = tanh(x):
   dz/dx = (2y + exp(y)(1 + y) - 1)(1 - y^2) */
static void test_fan_out(int64_t n) {
    size_t mark = nb_scope_begin();
    nb_tensor *x = vec(n, ramp);
    nb_tensor *y = nb_tanh(x);
    nb_tensor *z = nb_sum(nb_add(nb_add(nb_prod(y, y), nb_prod(nb_exp(y), y)), nb_neg(y)));
    CHECK(z != NULL && nb_backward(z, NULL) == 0);
    const double *gx = nb_data(nb_grad(x)), *xd = nb_data(x);
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        double t = tanh(xd[i]);
        double want = (2 * t + exp(t) * (1 + t) - 1) * (1 - t * t);
        if (!(fabs(gx[i] - want) <= 1e-13 * (1 + fabs(want)))) bad++;
    }
    CHECK(bad == 0);
    nb_scope_end(mark);
}

/* ---- one leaf reached by several rules: its accumulator exists when the
   later ones run, so they add into it directly ------------------------------ */
/* z = sum(sigmoid(x) + x*x + neg(x) + scale(x, 3) + x*c):
   dz/dx = s(1-s) + 2x - 1 + 3 + c */
static double cval(int64_t i) { return 0.5 + 0.01 * (double)(i % 13); }
static void test_shared_leaf(int64_t n) {
    size_t mark = nb_scope_begin();
    nb_tensor *x = vec(n, ramp), *c = vec(n, cval);
    nb_set_requires_grad(c, false);
    nb_tensor *t = nb_add(nb_sigmoid(x), nb_prod(x, x));
    t = nb_add(t, nb_neg(x));
    t = nb_add(t, nb_scale(x, 3.0));
    t = nb_add(t, nb_prod(x, c));
    nb_tensor *z = nb_sum(t);
    CHECK(z != NULL && nb_backward(z, NULL) == 0);
    const double *gx = nb_data(nb_grad(x)), *xd = nb_data(x);
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        double s = 1.0 / (1.0 + exp(-xd[i]));
        double want = s * (1 - s) + 2 * xd[i] - 1 + 3 + cval(i);
        if (!(fabs(gx[i] - want) <= 1e-13 * (1 + fabs(want)))) bad++;
    }
    CHECK(bad == 0);
    nb_scope_end(mark);
}

/* ---- the same product with both gradients wanted, w's accumulator already
   holding a contribution: w*w + w*x + sin(w) ---------------------------------- */
static void test_square_product(void) {
    size_t mark = nb_scope_begin();
    const int64_t n = 5;
    nb_tensor *w = vec(n, ramp), *x = vec(n, cval);
    nb_tensor *z = nb_sum(nb_add(nb_add(nb_sin(w), nb_prod(w, x)), nb_prod(w, w)));
    CHECK(z != NULL && nb_backward(z, NULL) == 0);
    for (int64_t i = 0; i < n; i++) {
        double wi = nb_data(w)[i];
        CHECK_NEAR(nb_data(nb_grad(w))[i], cos(wi) + cval(i) + 2 * wi, 1e-14);
        CHECK_NEAR(nb_data(nb_grad(x))[i], wi, 1e-15);
    }
    nb_scope_end(mark);
}

/* ---- a retained interior gradient is not overwritten by the rule below ---- */
static void test_retained(void) {
    size_t mark = nb_scope_begin();
    const int64_t n = 4;
    nb_tensor *x = vec(n, ramp), *w = vec(n, cval);
    nb_tensor *y = nb_prod(x, w);
    nb_retain_grad(y);
    nb_tensor *u = nb_tanh(y);
    nb_retain_grad(u);
    nb_tensor *z = nb_sum(nb_exp(u));
    CHECK(z != NULL && nb_backward(z, NULL) == 0);
    for (int64_t i = 0; i < n; i++) {
        double yi = nb_data(x)[i] * cval(i), ui = tanh(yi);
        CHECK_NEAR(nb_data(nb_grad(u))[i], exp(ui), 1e-14);
        CHECK_NEAR(nb_data(nb_grad(y))[i], exp(ui) * (1 - ui * ui), 1e-14);
        CHECK_NEAR(nb_data(nb_grad(x))[i], exp(ui) * (1 - ui * ui) * cval(i), 1e-14);
    }
    nb_scope_end(mark);
}

/* ---- the user's seed is read, never written ------------------------------ */
static void test_seed_untouched(void) {
    size_t mark = nb_scope_begin();
    const int64_t n = 6;
    nb_tensor *x = vec(n, ramp), *seed = vec(n, cval);
    nb_tensor *y = nb_prod(nb_tanh(x), x);
    CHECK(y != NULL && nb_backward(y, seed) == 0);
    for (int64_t i = 0; i < n; i++) {
        double xi = nb_data(x)[i], t = tanh(xi);
        CHECK(nb_data(seed)[i] == cval(i));
        CHECK_NEAR(nb_data(nb_grad(x))[i], cval(i) * ((1 - t * t) * xi + t), 1e-14);
    }
    nb_scope_end(mark);
}

int main(void) {
    test_scalar_chain();
    test_fan_out(37);
    test_shared_leaf(37);
    test_square_product();
    test_retained();
    test_seed_untouched();
    /* large enough for the kernels' threaded paths */
    nb_set_num_threads(2);
    test_fan_out(300000);
    test_shared_leaf(300000);
    nb_set_num_threads(1);
    nb_cleanup();
    return check_report("test_fastpaths");
}
