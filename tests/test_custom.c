/* Custom operations (nb_apply): the assignment's tanh as a user op against
   nb_tanh (values, first and second derivatives, forward mode), the
   lecture's Multiply with saved inputs against the product rule, any number
   of inputs, names, and every failure: NULL or failing callbacks, gradients
   of the wrong shape, forward mode without a jvp, allocation failure; the
   user's state is freed exactly once in every case. */
#include "check.h"
#include "nabla.h"
#include "tensor.h"

#include <stdlib.h>

static int freed;
static void free_counter(void *p) {
    freed++;
    free(p);
}

/* ---- tanh as a user op: y = tanh(x), dy = g (1 - y^2) written with ops */
static nb_tensor *tanh_fwd(nb_ctx *c, int n, nb_tensor *const *x) {
    nb_tensor *y = nb_tanh(x[0]);
    nb_ctx_save(c, 1, x);
    return y;
}
static int tanh_bwd(nb_ctx *c, nb_tensor *g, nb_tensor **gx) {
    nb_tensor *y = nb_tanh(nb_ctx_saved(c, 0)); /* recomputed from x: differentiable again */
    gx[0] = nb_prod(g, nb_sub(nb_scalar(1.0), nb_square(y)));
    return gx[0] ? 0 : -1;
}
static nb_tensor *tanh_jvp(nb_ctx *c, int n, nb_tensor *const *t) {
    nb_tensor *y = nb_tanh(nb_ctx_saved(c, 0));
    return nb_prod(t[0], nb_sub(nb_scalar(1.0), nb_square(y)));
}
static const nb_function my_tanh = {"mytanh", tanh_fwd, tanh_bwd, tanh_jvp};

/* ---- the lecture's Multiply: saves both inputs */
static nb_tensor *mul_fwd(nb_ctx *c, int n, nb_tensor *const *x) {
    nb_ctx_save(c, 2, x);
    return nb_prod(x[0], x[1]);
}
static int mul_bwd(nb_ctx *c, nb_tensor *g, nb_tensor **gx) {
    nb_tensor *x = nb_ctx_saved(c, 0), *y = nb_ctx_saved(c, 1);
    if (nb_ctx_needs_grad(c, 0)) gx[0] = nb_prod(g, y);
    if (nb_ctx_needs_grad(c, 1)) gx[1] = nb_prod(g, x);
    return 0;
}
static const nb_function multiply = {"Multiply", mul_fwd, mul_bwd, NULL};

/* ---- a sum of n inputs (n > 3 tests the side record) */
static nb_tensor *sum_fwd(nb_ctx *c, int n, nb_tensor *const *x) {
    nb_tensor *s = x[0];
    for (int i = 1; i < n; i++) s = nb_add(s, x[i]);
    return s;
}
static int sum_bwd(nb_ctx *c, nb_tensor *g, nb_tensor **gx) {
    for (int i = 0; i < nb_ctx_num_inputs(c); i++) gx[i] = g;
    return 0;
}
static const nb_function sumn = {"sumn", sum_fwd, sum_bwd, NULL};

/* ---- failing callbacks */
static nb_tensor *null_fwd(nb_ctx *c, int n, nb_tensor *const *x) { return NULL; }
static int fail_bwd(nb_ctx *c, nb_tensor *g, nb_tensor **gx) { return -1; }
static int wrong_bwd(nb_ctx *c, nb_tensor *g, nb_tensor **gx) {
    gx[0] = nb_ones(1, (int64_t[]){2});
    return 0;
}
static const nb_function bad_fwd = {"badfwd", null_fwd, tanh_bwd, NULL};
static const nb_function bad_bwd = {"badbwd", tanh_fwd, fail_bwd, NULL};
static const nb_function wrong_shape = {"wrongshape", tanh_fwd, wrong_bwd, NULL};

static nb_tensor *apply1(int n, nb_tensor *const *x, void *fn) {
    return nb_apply(fn, n, x, malloc(8), free_counter);
}

int main(void) {
    double xv[] = {-1.2, -0.3, 0.4, 2.0};
    /* tanh: values and gradients equal nb_tanh's */
    {
        size_t m = nb_scope_begin();
        nb_names_reset();
        nb_tensor *x = nb_vector(xv, 4);
        freed = 0;
        nb_tensor *y = nb_apply(&my_tanh, 1, &x, malloc(16), free_counter);
        CHECK(y && strcmp(nb_name(y), "mytanh:0") == 0);
        nb_tensor *y2 = nb_apply(&my_tanh, 1, &x, NULL, NULL);
        CHECK(y2 && strcmp(nb_name(y2), "mytanh:1") == 0);
        nb_tensor *ref = nb_tanh(x);
        for (int i = 0; i < 4; i++) CHECK_NEAR(nb_data(y)[i], nb_data(ref)[i], 0);
        CHECK(nb_backward(nb_sum(y), NULL) == 0);
        for (int i = 0; i < 4; i++) CHECK_NEAR(nb_data(nb_grad(x))[i], 1 - tanh(xv[i]) * tanh(xv[i]), 1e-15);
        CHECK(nb_grad(x) && strcmp(nb_name(nb_grad(x)), "in_grad") == 0);
        /* second derivative through create_graph: d2 tanh = -2 t (1 - t^2) */
        nb_tensor *s = nb_sum(y), *g = NULL, *h = NULL;
        CHECK(nb_autograd(1, &s, NULL, 1, &x, &g, true) == 0);
        nb_tensor *sg = nb_sum(g);
        CHECK(nb_autograd(1, &sg, NULL, 1, &x, &h, false) == 0);
        for (int i = 0; h && i < 4; i++) {
            double t = tanh(xv[i]);
            CHECK_NEAR(nb_data(h)[i], -2 * t * (1 - t * t), 1e-14);
        }
        /* forward mode */
        nb_tensor *v = nb_ones(1, (int64_t[]){4});
        nb_tensor *yd = nb_apply(&my_tanh, 1, (nb_tensor *[]){nb_dual(x, v)}, NULL, NULL);
        CHECK(yd && nb_tangent(yd));
        for (int i = 0; yd && nb_tangent(yd) && i < 4; i++)
            CHECK_NEAR(nb_data(nb_tangent(yd))[i], 1 - tanh(xv[i]) * tanh(xv[i]), 1e-15);
        /* gradcheck and gradgradcheck of the user op */
        double err = 1;
        CHECK(nb_gradcheck(apply1, 1, &x, (void *)&my_tanh, 1e-6, &err) == 0 && err < 1e-7);
        CHECK(nb_gradgradcheck(apply1, 1, &x, (void *)&my_tanh, 1e-5, &err) == 0 && err < 1e-6);
        nb_scope_end(m);
        CHECK(freed > 0); /* every state freed with its node */
    }
    /* Multiply: saved inputs, needs_input_grad, broadcasting gradient summed back */
    {
        size_t m = nb_scope_begin();
        nb_tensor *a = nb_vector(xv, 4), *b = nb_scalar(3.0);
        nb_set_requires_grad(b, false);
        nb_tensor *z = nb_apply(&multiply, 2, (nb_tensor *[]){a, b}, NULL, NULL);
        CHECK(z && nb_ndim(z) == 1);
        CHECK(nb_backward(nb_sum(z), NULL) == 0);
        for (int i = 0; i < 4; i++) CHECK_NEAR(nb_data(nb_grad(a))[i], 3.0, 0);
        CHECK(nb_grad(b) == NULL);
        nb_tensor *a2 = nb_vector(xv, 4), *c = nb_scalar(2.0); /* c's gradient comes back (4,) -> () */
        nb_tensor *z2 = nb_apply(&multiply, 2, (nb_tensor *[]){a2, c}, NULL, NULL);
        CHECK(nb_backward(nb_sum(z2), NULL) == 0);
        CHECK_NEAR(nb_item(nb_grad(c)), xv[0] + xv[1] + xv[2] + xv[3], 1e-15);
        /* forward mode without a jvp: an error naming the op */
        nb_clear_error();
        nb_tensor *zd = nb_apply(&multiply, 2, (nb_tensor *[]){nb_dual(a2, a2), c}, NULL, NULL);
        CHECK(!zd && nb_last_error() && strstr(nb_last_error(), "Multiply:") && strstr(nb_last_error(), "jvp"));
        nb_scope_end(m);
    }
    /* ten inputs */
    {
        size_t m = nb_scope_begin();
        nb_tensor *in[10];
        for (int i = 0; i < 10; i++) in[i] = nb_scalar((double)i);
        nb_tensor *s = nb_apply(&sumn, 10, in, NULL, NULL);
        CHECK(s && nb_item(s) == 45.0 && nb_num_parents(s) == 10);
        CHECK(nb_backward(s, NULL) == 0);
        for (int i = 0; i < 10; i++) CHECK(nb_grad(in[i]) && nb_item(nb_grad(in[i])) == 1.0);
        nb_scope_end(m);
    }
    /* failures: messages naming the op, the state freed exactly once */
    {
        size_t m = nb_scope_begin();
        nb_tensor *x = nb_vector(xv, 4);
        freed = 0;
        nb_clear_error();
        CHECK(nb_apply(&bad_fwd, 1, &x, malloc(8), free_counter) == NULL);
        CHECK(freed == 1 && nb_last_error() && strstr(nb_last_error(), "badfwd"));
        nb_clear_error();
        CHECK(nb_apply(NULL, 1, &x, malloc(8), free_counter) == NULL && freed == 2);
        nb_clear_error();
        nb_tensor *y = nb_apply(&bad_bwd, 1, &x, malloc(8), free_counter);
        CHECK(y && nb_backward(nb_sum(y), NULL) == -1 && strstr(nb_last_error(), "badbwd:0"));
        nb_clear_error();
        nb_tensor *w = nb_apply(&wrong_shape, 1, &x, malloc(8), free_counter);
        CHECK(w && nb_backward(nb_sum(w), NULL) == -1);
        CHECK(nb_last_error() && strstr(nb_last_error(), "wrongshape:0: backward returned a gradient of shape (2,) for input 1 of shape (4,)"));
        nb_clear_error();
        nb_scope_end(m);
        CHECK(freed == 4);
        /* allocation failure at every point of apply + backward: an error, no leak */
        nb_mem_stats before, after;
        nb_memory_stats(&before);
        int fired = 0;
        for (int k = 1; k < 40; k++) {
            size_t mk = nb_scope_begin();
            freed = 0;
            nb_tensor *xx = nb_vector(xv, 4);
            nb__fail_alloc_after(k);
            nb_tensor *yy = nb_apply(&my_tanh, 1, &xx, malloc(8), free_counter);
            int rc = yy ? nb_backward(nb_sum(yy), NULL) : -1;
            bool hit = nb__fail_alloc_fired();
            nb__fail_alloc_after(0);
            fired += hit;
            if (hit) CHECK(rc == -1 && nb_last_error());
            nb_clear_error();
            nb_scope_end(mk);
            CHECK(freed == 1);
            if (!hit) break;
        }
        CHECK(fired >= 3);
        nb_memory_stats(&after);
        CHECK(after.live_tensors == before.live_tensors);
    }
    nb_cleanup();
    return check_report("custom");
}
