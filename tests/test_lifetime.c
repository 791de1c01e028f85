/* Lifetime misuse is caught: a tensor used after its scope ended (or after
   its last release) is refused by every op, by nb_backward and by the
   accessors, with a message saying so, as long as its block has not been
   reused; one nb_release too many on a tensor its scope still holds is
   refused instead of freeing it under the scope.  In AddressSanitizer
   builds the cached blocks are poisoned, so that every such use is reported
   by ASan itself (checked here with ASan's own query, without touching).
   nb_backward(y, seed) with seed the NULL of a failed expression fails
   instead of backpropagating ones; a tensor changed through nb_data_mut
   after an op used it makes that op's backward fail; Jacobians refuse an f
   that ignores its argument or changes its output's size. */
#include "check.h"
#include "tensor.h"

/* f's for the Jacobian and Hessian misuse cases */
static nb_tensor *stored; /* a "parameter" f reads instead of its argument */
static int calls;
static nb_tensor *ignores_x(nb_tensor *x, void *ctx) { return nb_sum(nb_square(stored)); }
static nb_tensor *ignores_x_vec(nb_tensor *x, void *ctx) { return nb_square(stored); }
static nb_tensor *changing_size(nb_tensor *x, void *ctx) { /* 4 elements, then 5 */
    int64_t n = ++calls == 1 ? 4 : 5;
    return nb_broadcast_to(nb_sum(x), 1, &n);
}
static nb_tensor *model_loss(nb_tensor *w, void *ctx) { /* reads the parameter through a model */
    nb_tensor *W = ctx;
    return nb_sum(nb_pow(nb_prod(W, nb_scalar(2.0)), 3.0));
}

int main(void) {
    /* over-release: the scope still holds the tensor */
    size_t m = nb_scope_begin();
    nb_tensor *a = nb_scalar(2.0);
    nb_clear_error();
    nb_release(a);
    CHECK(nb_last_error() && strstr(nb_last_error(), "release:") && strstr(nb_last_error(), "more often"));
    CHECK(nb_item(a) == 2.0); /* still alive: the release was refused */
    nb_tensor *keep = nb_retain(nb_scalar(5.0));
    nb_scope_end(m);
    nb_clear_error();
    nb_release(keep); /* a retained tensor: its own release is fine */
    CHECK(nb_last_error() == NULL);

    /* use after the scope ended */
    m = nb_scope_begin();
    nb_tensor *x = nb_scalar(3.0);
    nb_tensor *y = nb_square(x);
    nb_scope_end(m);
#ifdef NB__ASAN
    CHECK(__asan_address_is_poisoned(&((const char *)y)[40])); /* the header past the link */
    CHECK(__asan_address_is_poisoned(&((const char *)x)[40]));
#else
    nb_clear_error();
    CHECK(nb_add(x, x) == NULL);
    CHECK(nb_last_error() && strstr(nb_last_error(), "add: argument 1 was already released"));
    nb_clear_error();
    CHECK(nb_tanh(y) == NULL && strstr(nb_last_error(), "tanh: argument 1 was already released"));
    nb_clear_error();
    CHECK(nb_backward(y, NULL) == -1 && strstr(nb_last_error(), "backward: argument 1 was already released"));
    nb_clear_error();
    CHECK(nb_data(y) == NULL && strstr(nb_last_error(), "already released"));
    nb_clear_error();
    CHECK(nb_retain(y) == NULL && strstr(nb_last_error(), "retain:"));
    nb_clear_error();
    nb_release(y); /* a release too many after death: refused, nothing freed twice */
    CHECK(nb_last_error() && strstr(nb_last_error(), "release:"));
    nb_clear_error();
#endif
    /* a NULL seed that is the result of a failed expression is not "ones" */
    m = nb_scope_begin();
    nb_tensor *w = nb_vector((double[]){1, 2, 3}, 3), *l = nb_prod(w, w);
    nb_tensor *seed = nb_add(nb_ones(1, (int64_t[]){2}), nb_ones(1, (int64_t[]){3})); /* fails */
    CHECK(seed == NULL);
    CHECK(nb_backward(l, seed) == -1);
    CHECK(nb_last_error() && strstr(nb_last_error(), "backward: the seed is NULL while an error is pending (add: shapes (2,) and (3,) cannot be broadcast)"));
    CHECK(nb_grad(w) == NULL);
    nb_clear_error();
    CHECK(nb_backward(l, NULL) == 0 && nb_grad(w) && nb_data(nb_grad(w))[2] == 6.0);
    nb_scope_end(m);
    /* mutation after recording: d(x^2)/dx would use the new x */
    m = nb_scope_begin();
    nb_tensor *xm = nb_scalar(1.0), *sq = nb_square(xm);
    nb_data_mut(xm)[0] = 10.0;
    nb_clear_error();
    CHECK(nb_backward(sq, NULL) == -1);
    CHECK(nb_last_error() && strstr(nb_last_error(), "was modified in place") && strstr(nb_last_error(), "square:"));
    CHECK(nb_grad(xm) == NULL);
    nb_clear_error();
    nb_tensor *sq2 = nb_square(xm); /* recorded after the change: fine, 2 * 10 */
    CHECK(nb_backward(sq2, NULL) == 0 && nb_item(nb_grad(xm)) == 20.0);
    nb_scope_end(m);

    /* Jacobians and Hessians: an f that ignores its argument is an error in
       both modes; an output that changes size is an error; a parameter passed
       as x is what f reads (a model's Hessian-vector product) */
    m = nb_scope_begin();
    stored = nb_vector((double[]){1, 2, 3}, 3);
    nb_tensor *x3 = nb_vector((double[]){1, 2, 3}, 3), *one = nb_scalar(1.0);
    nb_clear_error();
    CHECK(nb_hessian(ignores_x, x3, NULL) == NULL && strstr(nb_last_error(), "does not depend on"));
    nb_clear_error();
    CHECK(nb_jacobian(ignores_x_vec, x3, NULL) == NULL && strstr(nb_last_error(), "does not depend on")); /* reverse */
    nb_clear_error();
    CHECK(nb_jacobian(ignores_x_vec, one, NULL) == NULL && strstr(nb_last_error(), "does not depend on")); /* forward */
    nb_clear_error();
    CHECK(nb_hvp(ignores_x, x3, x3, NULL) == NULL && strstr(nb_last_error(), "does not depend on"));
    nb_clear_error();
    calls = 0;
    CHECK(nb_jacobian(changing_size, one, NULL) == NULL && strstr(nb_last_error(), "changed size"));
    nb_clear_error();
    nb_tensor *W = nb_vector((double[]){0.5, -1, 2}, 3), *v = nb_vector((double[]){1, 0, 2}, 3);
    nb_tensor *hv = nb_hvp(model_loss, W, v, W); /* H = diag(48 w) for sum((2w)^3) */
    CHECK(hv != NULL);
    for (int i = 0; hv && i < 3; i++) CHECK_NEAR(nb_data(hv)[i], 48 * nb_data(W)[i] * nb_data(v)[i], 1e-12);
    CHECK(nb_grad(W) == NULL); /* no stored gradient touched */
    nb_scope_end(m);
    nb_cleanup();
    return check_report("lifetime");
}
