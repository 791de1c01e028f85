/* Lifetime misuse is caught: a tensor used after its scope ended (or after
   its last release) is refused by every op, by nb_backward and by the
   accessors, with a message saying so, as long as its block has not been
   reused; one nb_release too many on a tensor its scope still holds is
   refused instead of freeing it under the scope.  In AddressSanitizer
   builds the cached blocks are poisoned, so that every such use is reported
   by ASan itself (checked here with ASan's own query, without touching).
   And nb_backward(y, seed) with seed the NULL of a failed expression fails
   instead of backpropagating ones. */
#include "check.h"
#include "tensor.h"

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
    nb_cleanup();
    return check_report("lifetime");
}
