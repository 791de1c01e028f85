/*
 * A program written only against the fixed API (shared/API.md): CI compiles
 * it against the installed header and links it with libnabla.a (and, again,
 * with libnabla.so) through pkg-config.  It touches every function of that
 * API once and checks a few results, so a missing or renamed symbol fails the
 * build and a wrong meaning fails the run.
 */
#include <math.h>
#include <nabla.h>
#include <stdio.h>
#include <string.h>

static int failures;
#define EXPECT(c) do { if (!(c)) { failures++; printf("FAILED: %s\n", #c); } } while (0)

static nb_tensor *cube(nb_tensor *x, void *ctx) {
    (void)ctx;
    return nb_prod(nb_prod(x, x), x);
}

int main(void) {
    /* creation */
    double v3[3] = {1, 2, 3}, m6[6] = {1, 2, 3, 4, 5, 6};
    int64_t s23[2] = {2, 3}, s32[2] = {3, 2};
    nb_tensor *a = nb_column(v3, 3), *b = nb_new(v3, 2, (int64_t[]){3, 1});
    nb_tensor *m = nb_matrix(m6, 2, 3), *s = nb_scalar(2.0);
    nb_tensor *z = nb_zeros(2, s23), *o = nb_ones(2, s23), *r = nb_randn(2, s32, 7);
    nb_tensor *c = nb_copy(a);
    EXPECT(nb_ndim(m) == 2 && nb_shape(m)[1] == 3 && nb_numel(m) == 6);
    EXPECT(nb_data(c)[2] == 3.0 && nb_item(s) == 2.0);
    EXPECT(strncmp(nb_name(a), "in:", 3) == 0 && nb_requires_grad(a));
    nb_set_requires_grad(c, false);
    nb_data_mut(z)[0] = 1.0;
    /* every op */
    nb_tensor *e = nb_add(nb_sub(nb_prod(a, b), nb_div(a, s)), nb_neg(a));
    e = nb_add(e, nb_add(nb_sin(a), nb_cos(a)));
    e = nb_add(e, nb_add(nb_exp(a), nb_log(a)));
    e = nb_add(e, nb_add(nb_sqrt(a), nb_square(a)));
    e = nb_add(e, nb_add(nb_pow(a, 3.0), nb_relu(a)));
    e = nb_add(e, nb_add(nb_sigmoid(a), nb_tanh(a)));
    e = nb_add(e, nb_maximum(a, b));
    nb_tensor *red = nb_add(nb_add(nb_sum(e), nb_mean(e)), nb_max(e));
    red = nb_add(red, nb_sum(nb_sum_axis(m, 0, false)));
    red = nb_add(red, nb_sum(nb_mean_axis(m, -1, true)));
    red = nb_add(red, nb_sum(nb_max_axis(m, 1, false)));
    red = nb_add(red, nb_sum(nb_softmax(m, 1)));
    red = nb_add(red, nb_sum(nb_log_softmax(m, 0)));
    red = nb_add(red, nb_sum(nb_matmul(nb_transpose(r), nb_reshape(o, 2, s32))));
    EXPECT(red != NULL && nb_last_error() == NULL);
    /* reverse mode */
    EXPECT(nb_backward(red, NULL) == 0);
    EXPECT(nb_grad(a) != NULL && nb_grad(c) == NULL);
    nb_zero_grad(a);
    EXPECT(nb_data(nb_grad(a))[0] == 0.0);
    nb_tensor *dz = nb_detach(e);
    EXPECT(!nb_requires_grad(dz));
    bool prev = nb_set_grad_enabled(false);
    EXPECT(!nb_requires_grad(nb_add(a, a)));
    nb_set_grad_enabled(prev);
    /* higher order and forward mode: d/dx x^3 = 3x^2, d2 = 6x */
    nb_tensor *x = nb_scalar(2.0), *g1 = NULL, *g2 = NULL, *y = cube(x, NULL);
    EXPECT(nb_autograd(1, &y, NULL, 1, &x, &g1, true) == 0 && fabs(nb_item(g1) - 12.0) < 1e-12);
    EXPECT(nb_autograd(1, &g1, NULL, 1, &x, &g2, false) == 0 && fabs(nb_item(g2) - 12.0) < 1e-12);
    nb_tensor *xd = nb_dual(nb_scalar(1.5), nb_scalar(1.0));
    EXPECT(fabs(nb_item(nb_tangent(cube(xd, NULL))) - 6.75) < 1e-12);
    nb_tensor *J = nb_jacobian(cube, a, NULL), *H = nb_hessian(cube, s, NULL);
    EXPECT(J && nb_shape(J)[0] == 3 && fabs(nb_data(J)[4] - 12.0) < 1e-12);
    EXPECT(H && fabs(nb_item(H) - 12.0) < 1e-12);
    /* errors */
    EXPECT(nb_add(a, nb_ones(2, (int64_t[]){4, 1})) == NULL);
    EXPECT(strcmp(nb_last_error(), "add: shapes (3, 1) and (4, 1) cannot be broadcast") == 0);
    nb_clear_error();
    EXPECT(nb_last_error() == NULL);
    /* printing and the graph */
    char buf[256];
    nb_names_reset();
    nb_tensor *w = nb_exp(nb_column(v3, 3));
    EXPECT(nb_repr(w, buf, sizeof buf) > 0);
    nb_print(w);
    FILE *devnull = fopen("/dev/null", "w");
    EXPECT(devnull && nb_dot(red, devnull) == 0);
    if (devnull) fclose(devnull);
    printf("api_program: %s\n", failures ? "FAILED" : "all checks passed");
    return failures != 0;
}
