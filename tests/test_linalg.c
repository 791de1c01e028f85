/*
 * matmul_bt (a @ b^T, the Linear layer's product) and the GEMM under every
 * matmul: values against plain loops, gradients against finite differences
 * (first and second order), forward mode against reverse mode, errors, and
 * the multi-threaded split of large products against the single-threaded one.
 */
#include "check.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static nb_tensor *mm_bt(int n, nb_tensor *const *x, void *ctx) {
    (void)n;
    (void)ctx;
    return nb_tanh(nb_matmul_bt(x[0], x[1])); /* tanh: a non-linear use, for second order */
}

/* C = A B^T by plain loops */
static void naive_bt(const double *A, const double *B, double *C, int64_t n, int64_t k, int64_t m) {
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < m; j++) {
            double s = 0;
            for (int64_t p = 0; p < k; p++) s += A[i * k + p] * B[j * k + p];
            C[i * m + j] = s;
        }
}

static void values_and_gradients(void) {
    nb_tensor *a = nb_randn(2, (int64_t[]){4, 3}, 1), *b = nb_randn(2, (int64_t[]){5, 3}, 2);
    nb_tensor *y = nb_matmul_bt(a, b);
    CHECK(y && nb_shape(y)[0] == 4 && nb_shape(y)[1] == 5);
    double C[20];
    naive_bt(nb_data(a), nb_data(b), C, 4, 3, 5);
    double worst = 0;
    for (int i = 0; i < 20; i++) worst = fmax(worst, fabs(nb_data(y)[i] - C[i]));
    CHECK_NEAR(worst, 0.0, 1e-12);
    /* same values as matmul with an explicit transpose */
    nb_tensor *y2 = nb_matmul(a, nb_transpose(b));
    worst = 0;
    for (int i = 0; i < 20; i++) worst = fmax(worst, fabs(nb_data(y)[i] - nb_data(y2)[i]));
    CHECK_NEAR(worst, 0.0, 1e-12);

    nb_tensor *x[2] = {a, b};
    double err = -1;
    CHECK(nb_gradcheck(mm_bt, 2, x, NULL, 1e-6, &err) == 0);
    CHECK_NEAR(err, 0.0, 1e-7);
    CHECK(nb_gradgradcheck(mm_bt, 2, x, NULL, 1e-6, &err) == 0);
    CHECK_NEAR(err, 0.0, 1e-6);
}

/* <u, J v> by forward mode equals <J^T u, v> by reverse mode */
static void forward_vs_reverse(void) {
    nb_tensor *a = nb_randn(2, (int64_t[]){3, 4}, 3), *b = nb_randn(2, (int64_t[]){2, 4}, 4);
    nb_tensor *va = nb_randn(2, (int64_t[]){3, 4}, 5), *vb = nb_randn(2, (int64_t[]){2, 4}, 6);
    nb_tensor *u = nb_randn(2, (int64_t[]){3, 2}, 7);
    nb_set_requires_grad(u, false);
    nb_tensor *y = nb_matmul_bt(nb_dual(a, va), nb_dual(b, vb));
    nb_tensor *t = nb_tangent(y);
    CHECK(t != NULL);
    if (!t) return;
    double fwd = 0;
    for (int i = 0; i < 6; i++) fwd += nb_data(u)[i] * nb_data(t)[i];
    nb_tensor *in[2] = {a, b}, *g[2];
    nb_tensor *y2 = nb_matmul_bt(a, b);
    CHECK(nb_autograd(1, &y2, &u, 2, in, g, false) == 0);
    double rev = 0;
    for (int i = 0; i < 12; i++) rev += nb_data(g[0])[i] * nb_data(va)[i];
    for (int i = 0; i < 8; i++) rev += nb_data(g[1])[i] * nb_data(vb)[i];
    CHECK_NEAR(fwd, rev, 1e-12);
}

static void errors(void) {
    nb_tensor *a = nb_ones(2, (int64_t[]){2, 3}), *b = nb_ones(2, (int64_t[]){4, 2});
    nb_clear_error();
    CHECK(nb_matmul_bt(a, b) == NULL);
    CHECK(nb_last_error() && strncmp(nb_last_error(), "matmul_bt:", 10) == 0 &&
          strstr(nb_last_error(), "(2, 3)") && strstr(nb_last_error(), "(4, 2)"));
    nb_clear_error();
    CHECK(nb_matmul_bt(nb_ones(1, (int64_t[]){3}), a) == NULL);
    CHECK(nb_last_error() != NULL);
    nb_clear_error();
    CHECK(nb_matmul_bt(NULL, a) == NULL);
    nb_clear_error();
}

/* Large products are split over threads: same results as one thread, and as loops. */
static void threaded_gemm(void) {
    const int64_t n = 400, k = 300, m = 300; /* 36M multiply-adds: above the split threshold */
    CHECK(n * k * m >= NB__GEMM_PARALLEL_WORK);
    nb_tensor *a = nb_randn(2, (int64_t[]){n, k}, 11), *b = nb_randn(2, (int64_t[]){m, k}, 12);
    nb_tensor *res[2][3];
    for (int th = 0; th < 2; th++) {
        int prev = nb_set_num_threads(th + 1);
        nb_tensor *y = nb_matmul_bt(a, b);                  /* (n, m), GEMM with b^T     */
        nb_tensor *z = nb_matmul(a, nb_transpose(b));       /* the same, plain GEMM     */
        CHECK(nb_backward(nb_sum(nb_square(y)), NULL) == 0); /* GEMMs with ^T flags      */
        res[th][0] = y;
        res[th][1] = z;
        res[th][2] = nb_copy(nb_grad(a));
        nb_zero_grad(a);
        nb_zero_grad(b);
        nb_set_num_threads(prev);
    }
    double *C = malloc((size_t)(n * m) * sizeof *C);
    naive_bt(nb_data(a), nb_data(b), C, n, k, m);
    double w_naive = 0, w_threads = 0, w_grad = 0;
    for (int64_t i = 0; i < n * m; i++) {
        w_naive = fmax(w_naive, fabs(nb_data(res[1][0])[i] - C[i]));
        w_naive = fmax(w_naive, fabs(nb_data(res[1][1])[i] - C[i]));
        w_threads = fmax(w_threads, fabs(nb_data(res[1][0])[i] - nb_data(res[0][0])[i]));
    }
    for (int64_t i = 0; i < n * k; i++)
        w_grad = fmax(w_grad, fabs(nb_data(res[1][2])[i] - nb_data(res[0][2])[i]) /
                                  fmax(1.0, fabs(nb_data(res[0][2])[i])));
    CHECK_NEAR(w_naive, 0.0, 1e-10);
    CHECK_NEAR(w_threads, 0.0, 1e-10);
    CHECK_NEAR(w_grad, 0.0, 1e-10);
    free(C);
}

int main(void) {
    size_t mark = nb_scope_begin();
    values_and_gradients();
    forward_vs_reverse();
    errors();
    threaded_gemm();
    nb_scope_end(mark);
    nb_cleanup();
    return check_report("linalg");
}
