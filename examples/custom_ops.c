/* Custom operations, as the course material defines them:
 *  - the tutorial's tanh written as a user op (forward, backward in nabla's
 *    ops), checked against nb_tanh: values, first and second derivatives;
 *  - the lecture's Multiply (torch.autograd.Function with
 *    ctx.save_for_backward(x, y)), checked against the product rule.
 * Exits 1 when a check fails. */
#include <math.h>
#include <nabla.h>
#include <stdio.h>

/* tanh: y = tanh(x); dx = g (1 - tanh(x)^2), from the saved input */
static nb_tensor *tanh_forward(nb_ctx *ctx, int n, nb_tensor *const *x) {
    nb_ctx_save(ctx, 1, x);
    return nb_tanh(x[0]);
}
static int tanh_backward(nb_ctx *ctx, nb_tensor *g, nb_tensor **gx) {
    nb_tensor *t = nb_tanh(nb_ctx_saved(ctx, 0));
    gx[0] = nb_prod(g, nb_sub(nb_scalar(1.0), nb_square(t)));
    return gx[0] ? 0 : -1;
}
static const nb_function user_tanh = {"user_tanh", tanh_forward, tanh_backward, NULL};

/* Multiply: z = x * y; dx = g y, dy = g x (each only when needed) */
static nb_tensor *mul_forward(nb_ctx *ctx, int n, nb_tensor *const *in) {
    nb_ctx_save(ctx, 2, in); /* ctx.save_for_backward(x, y) */
    return nb_prod(in[0], in[1]);
}
static int mul_backward(nb_ctx *ctx, nb_tensor *g, nb_tensor **gin) {
    nb_tensor *x = nb_ctx_saved(ctx, 0), *y = nb_ctx_saved(ctx, 1);
    if (nb_ctx_needs_grad(ctx, 0)) gin[0] = nb_prod(g, y);
    if (nb_ctx_needs_grad(ctx, 1)) gin[1] = nb_prod(g, x);
    return 0;
}
static const nb_function multiply = {"Multiply", mul_forward, mul_backward, NULL};

static int failures;
static void check(int ok, const char *what) {
    printf("%-52s %s\n", what, ok ? "ok" : "FAILED");
    failures += !ok;
}

int main(void) {
    double xv[] = {-2.0, -0.5, 0.0, 0.7, 1.5};
    nb_tensor *x = nb_vector(xv, 5);
    nb_tensor *y = nb_apply(&user_tanh, 1, &x, NULL, NULL), *ref = nb_tanh(x);
    printf("y = user_tanh(x): ");
    nb_print(y);
    double dv = 0, d1 = 0, d2 = 0;
    nb_tensor *s = nb_sum(y), *g = NULL, *h = NULL;
    nb_autograd(1, &s, NULL, 1, &x, &g, true); /* first derivative, recorded */
    nb_tensor *sg = nb_sum(g);
    nb_autograd(1, &sg, NULL, 1, &x, &h, false); /* second derivative */
    for (int i = 0; i < 5; i++) {
        double t = tanh(xv[i]);
        dv = fmax(dv, fabs(nb_data(y)[i] - nb_data(ref)[i]));
        d1 = fmax(d1, fabs(nb_data(g)[i] - (1 - t * t)));
        d2 = fmax(d2, fabs(nb_data(h)[i] - (-2 * t * (1 - t * t))));
    }
    check(dv == 0, "user_tanh(x) == nb_tanh(x)");
    check(d1 < 1e-15, "d/dx user_tanh == 1 - tanh^2");
    check(d2 < 1e-14, "d2/dx2 user_tanh == -2 tanh (1 - tanh^2)");

    double av[] = {1, 2, 3}, bv[] = {4, 5, 6};
    nb_tensor *a = nb_vector(av, 3), *b = nb_vector(bv, 3);
    nb_tensor *z = nb_apply(&multiply, 2, (nb_tensor *[]){a, b}, NULL, NULL);
    printf("z = Multiply(a, b): ");
    nb_print(z);
    nb_backward(nb_sum(z), NULL);
    int ok = 1;
    for (int i = 0; i < 3; i++) ok &= nb_data(nb_grad(a))[i] == bv[i] && nb_data(nb_grad(b))[i] == av[i];
    check(ok, "Multiply: a.grad == b, b.grad == a");
    if (nb_last_error()) printf("error: %s\n", nb_last_error());
    nb_cleanup();
    return failures ? 1 : 0;
}
