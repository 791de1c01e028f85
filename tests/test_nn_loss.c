/* Losses: values and gradients against hand computations, stability at
   extreme logits, finite-difference gradient checks (first and second order),
   errors; argmax and accuracy. */
#include "check.h"
#include "internal.h"

#include <math.h>
#include <string.h>

static bool has(const char *msg, const char *part) { return msg && strstr(msg, part); }

/* ---- closures for nb_gradcheck: inputs[0] = prediction/logits, [1] = target */
static nb_tensor *f_mse(int n, nb_tensor *const *in, void *ctx) { return nb_mse_loss(in[0], in[1]); }
static nb_tensor *f_ce(int n, nb_tensor *const *in, void *ctx) { return nb_cross_entropy(in[0], ctx); }
static nb_tensor *f_bce(int n, nb_tensor *const *in, void *ctx) { return nb_bce_with_logits(in[0], in[1]); }

static void test_mse(void) {
    size_t mark = nb_scope_begin();
    nb_tensor *p = nb_column((double[]){1, 2, 4}, 3), *t = nb_column((double[]){0, 2, 1}, 3);
    nb_set_requires_grad(t, false);
    nb_tensor *l = nb_mse_loss(p, t);
    /* ((1)^2 + 0 + 3^2) / 3 */
    CHECK(l && nb_ndim(l) == 0);
    CHECK_NEAR(nb_item(l), 10.0 / 3.0, 1e-15);
    CHECK(nb_backward(l, NULL) == 0);
    /* 2 (p - t) / 3 */
    const double g[3] = {2.0 / 3, 0, 2.0};
    for (int i = 0; i < 3; i++) CHECK_NEAR(nb_data(nb_grad(p))[i], g[i], 1e-15);
    /* no broadcasting between (3, 1) and (3,) */
    nb_clear_error();
    CHECK(nb_mse_loss(p, nb_vector((double[]){0, 2, 1}, 3)) == NULL);
    CHECK(has(nb_last_error(), "mse_loss: shapes (3, 1) and (3,) differ"));
    nb_clear_error();
    CHECK(nb_mse_loss(NULL, t) == NULL);
    /* gradcheck, both inputs requiring grad */
    nb_tensor *a = nb_randn(2, (int64_t[]){4, 3}, 1), *b = nb_randn(2, (int64_t[]){4, 3}, 2);
    double err = 1;
    CHECK(nb_gradcheck(f_mse, 2, (nb_tensor *[]){a, b}, NULL, 1e-6, &err) == 0 && err < 1e-7);
    err = 1;
    CHECK(nb_gradgradcheck(f_mse, 2, (nb_tensor *[]){a, b}, NULL, 1e-5, &err) == 0 && err < 1e-6);
    nb_scope_end(mark);
}

static void test_cross_entropy(void) {
    size_t mark = nb_scope_begin();
    nb_tensor *z = nb_matrix((double[]){1, 2, 3, 1, 1, 1}, 2, 3);
    nb_tensor *y = nb_vector((double[]){2, 0}, 2);
    nb_set_requires_grad(y, false);
    nb_tensor *l = nb_cross_entropy(z, y);
    /* (log(e + e^2 + e^3) - 3 + log 3) / 2 */
    double lse = log(exp(1) + exp(2) + exp(3));
    CHECK(l && nb_ndim(l) == 0);
    CHECK_NEAR(nb_item(l), (lse - 3 + log(3)) / 2, 1e-14);
    CHECK_NEAR(nb_item(l), 0.7531091265562448, 1e-14);
    CHECK(nb_backward(l, NULL) == 0);
    /* (softmax - onehot) / B */
    double g[6];
    for (int j = 0; j < 3; j++) g[j] = (exp(j + 1 - lse) - (j == 2)) / 2;
    for (int j = 0; j < 3; j++) g[3 + j] = (1.0 / 3 - (j == 0)) / 2;
    for (int i = 0; i < 6; i++) CHECK_NEAR(nb_data(nb_grad(z))[i], g[i], 1e-15);
    CHECK_NEAR(nb_data(nb_grad(z))[0], 0.04501528658519024, 1e-15);

    /* logits of +-1000: finite; loss 2000 for the row that picks -1000 */
    nb_tensor *big = nb_matrix((double[]){1000, -1000, 0, -1000, 1000, 0}, 2, 3);
    nb_tensor *yb = nb_column((double[]){1, 1}, 2); /* (B, 1) labels accepted too */
    l = nb_cross_entropy(big, yb);
    CHECK(l && isfinite(nb_item(l)));
    CHECK_NEAR(nb_item(l), (2000 + 0) / 2.0, 1e-9);
    CHECK(nb_backward(l, NULL) == 0);
    const double gb[6] = {0.5, -0.5, 0, 0, 0, 0};
    for (int i = 0; i < 6; i++) CHECK_NEAR(nb_data(nb_grad(big))[i], gb[i], 1e-15);

    /* errors: a label out of range, not an integer, a wrong count, 1-d logits */
    nb_clear_error();
    CHECK(nb_cross_entropy(z, nb_vector((double[]){3, 0}, 2)) == NULL);
    CHECK(has(nb_last_error(), "cross_entropy: label 3 at row 0 is not a class index in [0, 3)"));
    nb_clear_error();
    CHECK(nb_cross_entropy(z, nb_vector((double[]){1, 0.5}, 2)) == NULL && has(nb_last_error(), "row 1"));
    nb_clear_error();
    CHECK(nb_cross_entropy(z, nb_vector((double[]){1, -1}, 2)) == NULL && has(nb_last_error(), "label -1"));
    nb_clear_error();
    CHECK(nb_cross_entropy(z, nb_vector((double[]){1, 0, 1}, 3)) == NULL);
    CHECK(has(nb_last_error(), "labels of shape (3,), expected (2,)"));
    nb_clear_error();
    CHECK(nb_cross_entropy(nb_vector((double[]){1, 0}, 2), y) == NULL && has(nb_last_error(), "expected (B, C)"));

    /* gradcheck at a few shapes, gradgradcheck */
    for (int k = 0; k < 3; k++) {
        int64_t B = 1 + 3 * k, C = 2 + k;
        nb_tensor *zz = nb_randn(2, (int64_t[]){B, C}, 10 + (uint64_t)k);
        double lab[16];
        for (int64_t i = 0; i < B; i++) lab[i] = (double)((i * 7 + k) % C);
        nb_tensor *yy = nb_vector(lab, B);
        nb_set_requires_grad(yy, false);
        double err = 1;
        CHECK(nb_gradcheck(f_ce, 1, &zz, yy, 1e-6, &err) == 0 && err < 1e-7);
        err = 1;
        CHECK(nb_gradgradcheck(f_ce, 1, &zz, yy, 1e-5, &err) == 0 && err < 1e-6);
    }
    nb_scope_end(mark);
}

static void test_bce(void) {
    size_t mark = nb_scope_begin();
    nb_tensor *z = nb_vector((double[]){0, 2, -3}, 3), *y = nb_vector((double[]){1, 0, 0.5}, 3);
    nb_set_requires_grad(y, false);
    nb_tensor *l = nb_bce_with_logits(z, y);
    /* softplus(z) - z y: log 2 - 0, 2 + log(1 + e^-2), log(1 + e^-3) + 1.5 */
    double want = (log(2) + 2 + log1p(exp(-2)) + log1p(exp(-3)) + 1.5) / 3;
    CHECK(l && nb_ndim(l) == 0);
    CHECK_NEAR(nb_item(l), want, 1e-15);
    CHECK_NEAR(nb_item(l), 1.4562208477255532, 1e-15);
    CHECK(nb_backward(l, NULL) == 0);
    /* (sigmoid(z) - y) / 3, exact at z = 0 too */
    const double g[3] = {(0.5 - 1) / 3, (1 / (1 + exp(-2.0))) / 3, (1 / (1 + exp(3.0)) - 0.5) / 3};
    for (int i = 0; i < 3; i++) CHECK_NEAR(nb_data(nb_grad(z))[i], g[i], 1e-15);

    /* extreme logits: finite, the exact value */
    nb_tensor *zb = nb_vector((double[]){1000, -1000, 1000, -1000}, 4);
    nb_tensor *yb = nb_vector((double[]){0, 1, 1, 0}, 4);
    l = nb_bce_with_logits(zb, yb);
    CHECK(l && isfinite(nb_item(l)));
    CHECK_NEAR(nb_item(l), 2000.0 / 4, 1e-12);
    CHECK(nb_backward(l, NULL) == 0);
    const double gb[4] = {0.25, -0.25, 0, 0};
    for (int i = 0; i < 4; i++) CHECK_NEAR(nb_data(nb_grad(zb))[i], gb[i], 1e-15);

    nb_clear_error();
    CHECK(nb_bce_with_logits(z, nb_column((double[]){1, 0, 0}, 3)) == NULL);
    CHECK(has(nb_last_error(), "bce_with_logits: shapes (3,) and (3, 1) differ"));

    /* gradcheck with respect to both logits and targets, gradgradcheck */
    nb_tensor *a = nb_randn(2, (int64_t[]){3, 2}, 5), *t = nb_rand(2, (int64_t[]){3, 2}, 6);
    double err = 1;
    CHECK(nb_gradcheck(f_bce, 2, (nb_tensor *[]){a, t}, NULL, 1e-6, &err) == 0 && err < 1e-7);
    err = 1;
    CHECK(nb_gradgradcheck(f_bce, 2, (nb_tensor *[]){a, t}, NULL, 1e-5, &err) == 0 && err < 1e-6);
    nb_scope_end(mark);
}

static void test_accuracy(void) {
    size_t mark = nb_scope_begin();
    nb_tensor *s = nb_matrix((double[]){0.1, 0.7, 0.2, 5, -1, 5, -3, -2, -1, 0, 0, 0}, 4, 3);
    int64_t am[4];
    CHECK(nb_argmax_rows(s, am) == 0);
    CHECK(am[0] == 1 && am[1] == 0 && am[2] == 2 && am[3] == 0); /* ties: the first */
    nb_tensor *y = nb_vector((double[]){1, 2, 2, 0}, 4);
    CHECK_NEAR(nb_accuracy(s, y), 0.75, 0);
    nb_clear_error();
    CHECK(isnan(nb_accuracy(s, nb_vector((double[]){1, 2}, 2))) && nb_last_error());
    CHECK(isnan(nb_accuracy(NULL, y)));
    nb_clear_error();
    CHECK(nb_argmax_rows(nb_vector((double[]){1, 2}, 2), am) == -1 && has(nb_last_error(), "argmax_rows"));
    nb_scope_end(mark);
}

/* finite where the exact loss is: logits whose difference overflows, and
   -inf logits of wrong classes (no 0 * -inf); analytic values */
static void test_cross_entropy_extremes(void) {
    size_t mark = nb_scope_begin();
    /* (1e308, -1e308), label 0: loss log(1 + exp(-2e308)) = 0, gradient
       softmax - onehot = (0, 0); label 1 would be 2e308: +inf, not NaN */
    nb_tensor *z = nb_matrix((double[]){1e308, -1e308}, 1, 2);
    nb_tensor *l = nb_cross_entropy(z, nb_vector((double[]){0}, 1));
    CHECK(l && nb_item(l) == 0.0);
    CHECK(l && nb_backward(l, NULL) == 0);
    CHECK(nb_grad(z) && nb_data(nb_grad(z))[0] == 0.0 && nb_data(nb_grad(z))[1] == 0.0);
    nb_zero_grad(z);
    l = nb_cross_entropy(z, nb_vector((double[]){1}, 1));
    CHECK(l && isinf(nb_item(l)) && nb_item(l) > 0);
    /* a -inf logit of a wrong class: rows (0, -inf, -1) and (2, 1, -inf),
       label 0: loss log(1 + e^-1) each; gradient (softmax - onehot) / 2 with
       s0 = softmax(0, -1)[0] = 1 / (1 + e^-1) and 0 at the -inf entries */
    nb_tensor *w = nb_matrix((double[]){0, -INFINITY, -1, 2, 1, -INFINITY}, 2, 3);
    l = nb_cross_entropy(w, nb_vector((double[]){0, 0}, 2));
    double s0 = 1 / (1 + exp(-1.0)), e = exp(-1.0);
    double want = log(1 + e); /* each row: row 2 is lse(2, 1) - 2 = log(1 + e^-1) too */
    CHECK(l && isfinite(nb_item(l)));
    CHECK_NEAR(l ? nb_item(l) : NAN, want, 1e-15);
    CHECK(l && nb_backward(l, NULL) == 0);
    const double *g = nb_grad(w) ? nb_data(nb_grad(w)) : NULL;
    CHECK(g != NULL);
    if (g) {
        const double gw[6] = {(s0 - 1) / 2, 0, (1 - s0) / 2, (s0 - 1) / 2, (1 - s0) / 2, 0};
        for (int i = 0; i < 6; i++) CHECK_NEAR(g[i], gw[i], 1e-15);
    }
    /* the label's own logit -inf: the exact loss is +inf */
    l = nb_cross_entropy(nb_matrix((double[]){-INFINITY, 0}, 1, 2), nb_vector((double[]){0}, 1));
    CHECK(l && isinf(nb_item(l)) && nb_item(l) > 0);
    nb_scope_end(mark);
}

int main(void) {
    test_mse();
    test_cross_entropy();
    test_cross_entropy_extremes();
    test_bce();
    test_accuracy();
    nb_cleanup();
    return check_report("nn_loss");
}
