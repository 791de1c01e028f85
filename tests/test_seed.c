/* The seed's 14 basic test cases (seed 000, "Testes Básicos"), replicated in
   C: lists are column matrices (nb_column), scalars such as 3.0 are 0-d
   tensors (nb_scalar).  Values are checked to 1e-8 against numbers computed
   here with libm; the printed text against what numpy prints for the same
   values in the seed's notebook (names restart at every case). */
#include "nabla.h"
#include "check.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#define TOL 1e-8
#define NB_PI 3.14159265358979323846

/* Checks shape (n, 1) and every value of t against want[]. */
#define EXPECT_COL(t, want, n) expect_col_((t), (want), (n), #t, __LINE__)
static void expect_col_(const nb_tensor *t, const double *want, int64_t n, const char *what,
                        int line) {
    if (!t) {
        check_failed_++;
        fprintf(stderr, "test_seed.c:%d: %s is NULL (%s)\n", line, what,
                nb_last_error() ? nb_last_error() : "no error");
        return;
    }
    if (nb_ndim(t) != 2 || nb_shape(t)[0] != n || nb_shape(t)[1] != 1) {
        check_failed_++;
        fprintf(stderr, "test_seed.c:%d: %s has the wrong shape (ndim %d)\n", line, what,
                nb_ndim(t));
        return;
    }
    const double *d = nb_data(t);
    for (int64_t i = 0; i < n; i++) {
        if (fabs(d[i] - want[i]) <= TOL) {
            check_passed_++;
        } else {
            check_failed_++;
            fprintf(stderr, "test_seed.c:%d: %s[%lld] = %.12g, expected %.12g\n", line, what,
                    (long long)i, d[i], want[i]);
        }
    }
}

/* nb_repr must print exactly what the seed's notebook printed. */
#define EXPECT_REPR(t, s) expect_repr_((t), (s), __LINE__)
static void expect_repr_(const nb_tensor *t, const char *expected, int line) {
    char buf[2048];
    int n = nb_repr(t, buf, sizeof buf);
    if (n < 0) {
        check_failed_++;
        fprintf(stderr, "test_seed.c:%d: nb_repr failed\n", line);
        return;
    }
    if (strcmp(buf, expected) == 0 && (size_t)n == strlen(expected)) {
        check_passed_++;
    } else {
        check_failed_++;
        fprintf(stderr, "test_seed.c:%d: nb_repr returned %d, got\n%s\nexpected (%zu chars)\n%s\n",
                line, n, buf, strlen(expected), expected);
    }
}

/* ---- the seed's printed outputs (numpy's str of the same values) ------- */
static const char *const EXP_ADD_GRAD =
    "Tensor([[1.]\n"
    " [1.]\n"
    " [1.]], name=in_grad, shape=(3, 1))";
static const char *const EXP_SUB_BGRAD =
    "Tensor([[-1.]\n"
    " [-1.]\n"
    " [-1.]], name=in_grad, shape=(3, 1))";
static const char *const EXP_PROD_AGRAD =
    "Tensor([[12.]\n"
    " [15.]\n"
    " [18.]], name=in_grad, shape=(3, 1))";
static const char *const EXP_PROD_BGRAD =
    "Tensor([[3.]\n"
    " [6.]\n"
    " [9.]], name=in_grad, shape=(3, 1))";
static const char *const EXP_SINCOS_GRAD =
    "Tensor([[-1.]\n"
    " [ 1.]\n"
    " [-1.]], name=in_grad, shape=(3, 1))";
static const char *const EXP_SUM_GRAD =
    "Tensor([[4.]\n"
    " [4.]\n"
    " [4.]\n"
    " [4.]], name=in_grad, shape=(4, 1))";
static const char *const EXP_MEAN_GRAD =
    "Tensor([[0.25]\n"
    " [0.25]\n"
    " [0.25]\n"
    " [0.25]], name=in_grad, shape=(4, 1))";
static const char *const EXP_SQUARE_B =
    "Tensor([[9.]\n"
    " [1.]\n"
    " [0.]\n"
    " [4.]], name=square:0, shape=(4, 1))";
static const char *const EXP_SQUARE_GRAD =
    "Tensor([[6.]\n"
    " [2.]\n"
    " [0.]\n"
    " [4.]], name=in_grad, shape=(4, 1))";
static const char *const EXP_MATMUL_Z =
    "Tensor([[14.]\n"
    " [32.]\n"
    " [50.]], name=matmul:0, shape=(3, 1))";
static const char *const EXP_MATMUL_WGRAD =
    "Tensor([[1. 2. 3.]\n"
    " [1. 2. 3.]\n"
    " [1. 2. 3.]], name=in_grad, shape=(3, 3))";
static const char *const EXP_MATMUL_VGRAD =
    "Tensor([[12.]\n"
    " [15.]\n"
    " [18.]], name=in_grad, shape=(3, 1))";
static const char *const EXP_EXP_W =
    "Tensor([[ 2.71828183]\n"
    " [ 7.3890561 ]\n"
    " [20.08553692]], name=exp:0, shape=(3, 1))";
static const char *const EXP_EXP_GRAD =
    "Tensor([[ 2.71828183]\n"
    " [ 7.3890561 ]\n"
    " [20.08553692]], name=in_grad, shape=(3, 1))";
static const char *const EXP_RELU_W =
    "Tensor([[0.]\n"
    " [0.]\n"
    " [1.]\n"
    " [3.]], name=relu:0, shape=(4, 1))";
static const char *const EXP_RELU_GRAD =
    "Tensor([[0.]\n"
    " [0.]\n"
    " [1.]\n"
    " [1.]], name=in_grad, shape=(4, 1))";
static const char *const EXP_SIGMOID_W =
    "Tensor([[0.26894142]\n"
    " [0.5       ]\n"
    " [0.73105858]\n"
    " [0.95257413]], name=sigmoid:0, shape=(4, 1))";
static const char *const EXP_SIGMOID_GRAD =
    "Tensor([[0.19661193]\n"
    " [0.25      ]\n"
    " [0.19661193]\n"
    " [0.04517666]], name=in_grad, shape=(4, 1))";
static const char *const EXP_TANH_W =
    "Tensor([[-0.76159416]\n"
    " [ 0.        ]\n"
    " [ 0.76159416]\n"
    " [ 0.99505475]], name=tanh:0, shape=(4, 1))";
static const char *const EXP_TANH_GRAD =
    "Tensor([[0.41997434]\n"
    " [1.        ]\n"
    " [0.41997434]\n"
    " [0.00986604]], name=in_grad, shape=(4, 1))";
static const char *const EXP_SOFTMAX_Y =
    "Tensor([[0.00381737]\n"
    " [0.13970902]\n"
    " [0.23034123]\n"
    " [0.62613238]], name=softmax:0, shape=(4, 1))";
static const char *const EXP_SOFTMAX_GRAD =
    "Tensor([[-0.00278095]\n"
    " [-0.02243068]\n"
    " [-0.02654377]\n"
    " [ 0.05175539]], name=in_grad, shape=(4, 1))";

static const double A123[] = {1.0, 2.0, 3.0};
static const double B456[] = {4.0, 5.0, 6.0};
static const double A3102[] = {3.0, 1.0, 0.0, 2.0};
static const double V4[] = {-1.0, 0.0, 1.0, 3.0};
static const double M23[] = {1, 2, 3, 4, 5, 6};

static void case_add(void) {
    nb_names_reset();
    nb_tensor *a = nb_column(A123, 3), *b = nb_column(B456, 3);
    nb_tensor *c = nb_add(a, b);
    nb_tensor *d = nb_add(c, nb_scalar(3.0));
    const double dv[] = {8.0, 10.0, 12.0}, ones[] = {1.0, 1.0, 1.0};
    EXPECT_COL(d, dv, 3);
    CHECK(nb_backward(d, NULL) == 0);
    EXPECT_COL(nb_grad(a), ones, 3);
    EXPECT_COL(nb_grad(b), ones, 3);
    EXPECT_REPR(nb_grad(a), EXP_ADD_GRAD);
    EXPECT_REPR(nb_grad(b), EXP_ADD_GRAD);
    CHECK_STR(nb_name(c), "add:0");
    CHECK_STR(nb_name(d), "add:1");
    CHECK_STR(nb_name(a), "in:0");
    CHECK_STR(nb_name(b), "in:1");
}

static void case_sub(void) {
    nb_names_reset();
    nb_tensor *a = nb_column(A123, 3), *b = nb_column(B456, 3);
    nb_tensor *c = nb_sub(a, b);
    nb_tensor *d = nb_sub(c, nb_scalar(3.0));
    const double dv[] = {-6.0, -6.0, -6.0}, ones[] = {1, 1, 1}, mones[] = {-1, -1, -1};
    EXPECT_COL(d, dv, 3);
    CHECK(nb_backward(d, NULL) == 0);
    EXPECT_COL(nb_grad(a), ones, 3);
    EXPECT_COL(nb_grad(b), mones, 3);
    EXPECT_REPR(nb_grad(a), EXP_ADD_GRAD);
    EXPECT_REPR(nb_grad(b), EXP_SUB_BGRAD);
    CHECK_STR(nb_name(d), "sub:1");
}

static void case_prod(void) {
    nb_names_reset();
    nb_tensor *a = nb_column(A123, 3), *b = nb_column(B456, 3);
    nb_tensor *c = nb_prod(a, b);
    nb_tensor *d = nb_prod(c, nb_scalar(3.0));
    const double dv[] = {12.0, 30.0, 54.0}, ga[] = {12, 15, 18}, gb[] = {3, 6, 9};
    EXPECT_COL(d, dv, 3);
    CHECK(nb_backward(d, NULL) == 0);
    EXPECT_COL(nb_grad(a), ga, 3);
    EXPECT_COL(nb_grad(b), gb, 3);
    EXPECT_REPR(nb_grad(a), EXP_PROD_AGRAD);
    EXPECT_REPR(nb_grad(b), EXP_PROD_BGRAD);
}

static void case_sincos(void) {
    nb_names_reset();
    const double av[] = {NB_PI, 0.0, NB_PI / 2};
    nb_tensor *a = nb_column(av, 3);
    nb_tensor *b = nb_sin(a), *c = nb_cos(a);
    nb_tensor *d = nb_sum(nb_add(b, c));
    CHECK(d && nb_ndim(d) == 0);
    double want_d = 0, want_g[3];
    for (int i = 0; i < 3; i++) {
        want_d += sin(av[i]) + cos(av[i]);
        want_g[i] = cos(av[i]) - sin(av[i]);
    }
    CHECK_NEAR(nb_item(d), want_d, TOL);
    CHECK(nb_backward(d, NULL) == 0);
    EXPECT_COL(nb_grad(a), want_g, 3);
    EXPECT_REPR(nb_grad(a), EXP_SINCOS_GRAD);
}

static void case_sum(void) {
    nb_names_reset();
    nb_tensor *a = nb_column(A3102, 4);
    nb_tensor *b = nb_add(nb_prod(a, nb_scalar(3.0)), a);
    nb_tensor *c = nb_sum(b);
    CHECK_NEAR(nb_item(c), 24.0, TOL);
    CHECK(nb_backward(c, NULL) == 0);
    const double g[] = {4, 4, 4, 4};
    EXPECT_COL(nb_grad(a), g, 4);
    EXPECT_REPR(nb_grad(a), EXP_SUM_GRAD);
    CHECK_STR(nb_name(c), "sum:0");
}

static void case_mean(void) {
    nb_names_reset();
    nb_tensor *a = nb_column(A3102, 4);
    nb_tensor *b = nb_mean(a);
    CHECK_NEAR(nb_item(b), 1.5, TOL);
    CHECK(nb_backward(b, NULL) == 0);
    const double g[] = {0.25, 0.25, 0.25, 0.25};
    EXPECT_COL(nb_grad(a), g, 4);
    EXPECT_REPR(nb_grad(a), EXP_MEAN_GRAD);
}

static void case_square(void) {
    nb_names_reset();
    nb_tensor *a = nb_column(A3102, 4);
    nb_tensor *b = nb_square(a);
    const double bv[] = {9, 1, 0, 4}, g[] = {6, 2, 0, 4};
    EXPECT_COL(b, bv, 4);
    EXPECT_REPR(b, EXP_SQUARE_B);
    CHECK(nb_backward(b, NULL) == 0);
    EXPECT_COL(nb_grad(a), g, 4);
    EXPECT_REPR(nb_grad(a), EXP_SQUARE_GRAD);
}

static void case_matmul(void) {
    nb_names_reset();
    const double wv[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    nb_tensor *W = nb_matrix(wv, 3, 3);
    nb_tensor *v = nb_column(A123, 3);
    nb_tensor *z = nb_matmul(W, v);
    const double zv[] = {14, 32, 50}, vg[] = {12, 15, 18};
    EXPECT_COL(z, zv, 3);
    EXPECT_REPR(z, EXP_MATMUL_Z);
    CHECK(nb_backward(z, NULL) == 0); /* non-scalar: a seed of ones */
    nb_tensor *wg = nb_grad(W);
    CHECK(wg && nb_ndim(wg) == 2 && nb_shape(wg)[0] == 3 && nb_shape(wg)[1] == 3);
    if (wg)
        for (int i = 0; i < 9; i++) CHECK_NEAR(nb_data(wg)[i], (double)(i % 3 + 1), TOL);
    EXPECT_REPR(wg, EXP_MATMUL_WGRAD);
    EXPECT_COL(nb_grad(v), vg, 3);
    EXPECT_REPR(nb_grad(v), EXP_MATMUL_VGRAD);
}

static void case_exp(void) {
    nb_names_reset();
    nb_tensor *v = nb_column(A123, 3);
    nb_tensor *w = nb_exp(v);
    const double e[] = {exp(1.0), exp(2.0), exp(3.0)};
    EXPECT_COL(w, e, 3);
    EXPECT_REPR(w, EXP_EXP_W);
    CHECK(nb_backward(w, NULL) == 0);
    EXPECT_COL(nb_grad(v), e, 3);
    EXPECT_REPR(nb_grad(v), EXP_EXP_GRAD);
}

static void case_relu(void) {
    nb_names_reset();
    nb_tensor *v = nb_column(V4, 4);
    nb_tensor *w = nb_relu(v);
    const double wv[] = {0, 0, 1, 3}, g[] = {0, 0, 1, 1};
    EXPECT_COL(w, wv, 4);
    EXPECT_REPR(w, EXP_RELU_W);
    CHECK(nb_backward(w, NULL) == 0);
    EXPECT_COL(nb_grad(v), g, 4);
    EXPECT_REPR(nb_grad(v), EXP_RELU_GRAD);
}

static void case_sigmoid(void) {
    nb_names_reset();
    nb_tensor *v = nb_column(V4, 4);
    nb_tensor *w = nb_sigmoid(v);
    double s[4], g[4];
    for (int i = 0; i < 4; i++) {
        s[i] = 1.0 / (1.0 + exp(-V4[i]));
        g[i] = s[i] * (1.0 - s[i]);
    }
    EXPECT_COL(w, s, 4);
    EXPECT_REPR(w, EXP_SIGMOID_W);
    CHECK(nb_backward(w, NULL) == 0);
    EXPECT_COL(nb_grad(v), g, 4);
    EXPECT_REPR(nb_grad(v), EXP_SIGMOID_GRAD);
    /* the seed's rounded expectations */
    const double seed_s[] = {0.26894142, 0.5, 0.73105858, 0.95257413};
    const double seed_g[] = {0.19661193, 0.25, 0.19661193, 0.04517666};
    for (int i = 0; i < 4; i++) {
        if (w) CHECK_NEAR(nb_data(w)[i], seed_s[i], 5e-9);
        if (nb_grad(v)) CHECK_NEAR(nb_data(nb_grad(v))[i], seed_g[i], 5e-9);
    }
}

static void case_tanh(void) {
    nb_names_reset();
    nb_tensor *v = nb_column(V4, 4);
    nb_tensor *w = nb_tanh(v);
    double t[4], g[4];
    for (int i = 0; i < 4; i++) {
        t[i] = tanh(V4[i]);
        g[i] = 1.0 - t[i] * t[i];
    }
    EXPECT_COL(w, t, 4);
    EXPECT_REPR(w, EXP_TANH_W);
    CHECK(nb_backward(w, NULL) == 0);
    EXPECT_COL(nb_grad(v), g, 4);
    EXPECT_REPR(nb_grad(v), EXP_TANH_GRAD);
    const double seed_g[] = {0.41997434, 1.0, 0.41997434, 0.00986604};
    for (int i = 0; i < 4; i++)
        if (nb_grad(v)) CHECK_NEAR(nb_data(nb_grad(v))[i], seed_g[i], 5e-9);
}

static void case_softmax(void) {
    nb_names_reset();
    const double xv[] = {-3.1, 0.5, 1.0, 2.0}, tv[] = {1, 0, 0, 0};
    nb_tensor *x = nb_column(xv, 4);
    nb_tensor *y = nb_softmax(x, 0);
    nb_tensor *diff = nb_sub(y, nb_column(tv, 4));
    nb_tensor *sq = nb_square(diff);
    nb_tensor *a = nb_mean(sq);
    /* independently: softmax, the MSE and its gradient through the softmax
       Jacobian diag(s) - s s^T */
    double s[4], z = 0, mse = 0, g[4], gs = 0, xg[4];
    for (int i = 0; i < 4; i++) z += exp(xv[i]);
    for (int i = 0; i < 4; i++) s[i] = exp(xv[i]) / z;
    for (int i = 0; i < 4; i++) {
        mse += (s[i] - tv[i]) * (s[i] - tv[i]) / 4.0;
        g[i] = 2.0 * (s[i] - tv[i]) / 4.0;
        gs += g[i] * s[i];
    }
    for (int i = 0; i < 4; i++) xg[i] = s[i] * (g[i] - gs);
    EXPECT_COL(y, s, 4);
    EXPECT_REPR(y, EXP_SOFTMAX_Y);
    CHECK_NEAR(nb_item(a), mse, TOL);
    CHECK_NEAR(nb_item(a), 0.36424932, 5e-9);
    CHECK(nb_backward(a, NULL) == 0);
    EXPECT_COL(nb_grad(x), xg, 4);
    EXPECT_REPR(nb_grad(x), EXP_SOFTMAX_GRAD);
    const double seed_g[] = {-0.00278095, -0.02243068, -0.02654377, 0.05175539};
    for (int i = 0; i < 4; i++)
        if (nb_grad(x)) CHECK_NEAR(nb_data(nb_grad(x))[i], seed_g[i], 5e-9);
    CHECK_STR(nb_name(y), "softmax:0");
    CHECK_STR(nb_name(a), "mean:0");
}

/* The seed's NameManager example: a counter per op name; reset restarts them. */
static void case_names(void) {
    nb_names_reset();
    nb_tensor *a = nb_scalar(1.0), *b = nb_scalar(2.0);
    nb_tensor *s0 = nb_add(a, b), *s1 = nb_add(a, b);
    nb_tensor *c = nb_scalar(3.0);
    nb_tensor *s2 = nb_add(s0, s1);
    nb_tensor *p0 = nb_prod(s2, c);
    CHECK_STR(nb_name(a), "in:0");
    CHECK_STR(nb_name(b), "in:1");
    CHECK_STR(nb_name(c), "in:2");
    CHECK_STR(nb_name(s0), "add:0");
    CHECK_STR(nb_name(s1), "add:1");
    CHECK_STR(nb_name(s2), "add:2");
    CHECK_STR(nb_name(p0), "prod:0");
    CHECK_STR(nb_op_name(p0), "prod");
    CHECK_STR(nb_op_name(a), "in");
    nb_names_reset();
    CHECK_STR(nb_name(nb_add(a, b)), "add:0");
    CHECK_STR(nb_name(s2), "add:2"); /* names given before the reset are kept */
    /* a gradient is named after its owner's op */
    CHECK(nb_backward(p0, NULL) == 0);
    CHECK_STR(nb_name(nb_grad(a)), "in_grad");
    /* a copy is a new leaf with its own data */
    nb_tensor *k = nb_copy(s2);
    CHECK(k && nb_is_leaf(k) && nb_num_parents(k) == 0);
    CHECK_STR(nb_op_name(k), "in");
    if (k) {
        CHECK_NEAR(nb_item(k), 6.0, 0);
        nb_data_mut(k)[0] = 42.0;
        CHECK_NEAR(nb_item(s2), 6.0, 0);
    }
}

/* Creation and printing of a scalar, a column, a matrix. */
static void case_creation(void) {
    nb_names_reset();
    nb_tensor *s = nb_scalar(3);
    CHECK(s && nb_ndim(s) == 0 && nb_numel(s) == 1);
    CHECK_NEAR(nb_item(s), 3.0, 0);
    char buf[256];
    CHECK(nb_repr(s, buf, sizeof buf) > 0);
    CHECK_STR(buf, "Tensor(3.0, name=in:0, shape=())");
    nb_tensor *c = nb_column(A123, 3);
    CHECK(c && nb_ndim(c) == 2 && nb_shape(c)[0] == 3 && nb_shape(c)[1] == 1);
    CHECK(nb_requires_grad(c) && nb_is_leaf(c) && nb_grad(c) == NULL);
    /* snprintf-like: a short buffer is truncated, the full length returned */
    char small[8];
    int full = nb_repr(c, small, sizeof small);
    CHECK(full == (int)strlen("Tensor([[1.]\n [2.]\n [3.]], name=in:1, shape=(3, 1))"));
    CHECK(strlen(small) == 7 && strncmp(small, "Tensor(", 7) == 0);
    nb_tensor *m = nb_matrix(M23, 2, 3);
    CHECK(m && nb_ndim(m) == 2 && nb_shape(m)[0] == 2 && nb_shape(m)[1] == 3);
    CHECK(nb_repr(m, buf, sizeof buf) > 0);
    CHECK_STR(buf, "Tensor([[1. 2. 3.]\n [4. 5. 6.]], name=in:2, shape=(2, 3))");
    nb_tensor *v = nb_vector(A123, 3);
    CHECK(nb_repr(v, buf, sizeof buf) > 0);
    CHECK_STR(buf, "Tensor([1. 2. 3.], name=in:3, shape=(3,))");
}

int main(void) {
    size_t mark = nb_scope_begin();
    case_add();
    case_sub();
    case_prod();
    case_sincos();
    case_sum();
    case_mean();
    case_square();
    case_matmul();
    case_exp();
    case_relu();
    case_sigmoid();
    case_tanh();
    case_softmax();
    case_names();
    case_creation();
    nb_scope_end(mark);
    nb_cleanup();
    return check_report("seed");
}
