/* Every call that takes a tensor refuses a released one (found by
   fuzz/fuzz_lifetime.c: these read the dead block instead, which is garbage
   in a release build and an AddressSanitizer report in a sanitizer build):
   the inspection calls nb_name, nb_set_name, nb_requires_grad,
   nb_set_requires_grad, nb_is_leaf, nb_num_parents, nb_parent, nb_op_name,
   nb_tangent, nb_retain_grad, nb_zero_grad, and nb_copy, nb_repr, nb_print,
   nb_dot, nb_backward's seed, nb_autograd's seeds, nb_conv2d's bias,
   nb_gather_rows, nb_argmax_rows, nb_accuracy, nb_init_tensor and
   nb_ctx_save.  Each returns its failure value with "<call>: ... already
   released ...".

   A dead tensor is detectable only while its block waits in the cache, so
   each case below makes a fresh one and calls at once.  In ASan builds the
   cached block is poisoned: the test lifts the poison from its reference
   count alone (what the dead check reads) for the call, so that a call that
   reads anything else is still reported. */
#include "check.h"
#include "tensor.h"

static void lift(nb_tensor *t) {
#ifdef NB__ASAN
    ASAN_UNPOISON_MEMORY_REGION(&t->refcount, sizeof t->refcount);
#else
    (void)t;
#endif
}
static void drop(nb_tensor *t) {
#ifdef NB__ASAN
    ASAN_POISON_MEMORY_REGION(&t->refcount, sizeof t->refcount);
#else
    (void)t;
#endif
}

/* a tensor of n elements whose scope has ended, its count word readable */
static nb_tensor *dead_now;
static nb_tensor *dead(int64_t n) {
    size_t m = nb_scope_begin();
    nb_tensor *t = nb_zeros(1, &n);
    nb_scope_end(m);
    lift(t);
    nb_clear_error();
    return dead_now = t;
}

/* the call failed, saying that its tensor was released */
static int refused(const char *who) {
    const char *m = nb_last_error();
    size_t k = strlen(who);
    int ok = m && strncmp(m, who, k) == 0 && m[k] == ':' && strstr(m, "already released");
    if (!ok) fprintf(stderr, "%s: got '%s'\n", who, m ? m : "(no message)");
    drop(dead_now);
    return ok;
}

static nb_tensor *saved; /* what saver's forward saves */
static nb_tensor *sv_fwd(nb_ctx *c, int n, nb_tensor *const *x) {
    (void)n;
    return nb_ctx_save(c, 1, &saved) == 0 ? nb_scale(x[0], 2.0) : NULL;
}
static int sv_bwd(nb_ctx *c, nb_tensor *g, nb_tensor **gx) {
    (void)c;
    gx[0] = g;
    return 0;
}
static const nb_function saver = {"saver", sv_fwd, sv_bwd, NULL};

int main(void) {
    static FILE *devnull;
    devnull = fopen("/dev/null", "w");
    /* live operands, made before any dead tensor (so that none takes its block) */
    nb_tensor *L = nb_vector((double[]){1, 2, 3}, 3);
    nb_tensor *x = nb_ones(4, (int64_t[]){1, 1, 2, 2}), *w = nb_ones(4, (int64_t[]){1, 1, 1, 1});
    nb_tensor *s = nb_scalar(2.0), *y = nb_square(s), *g[1] = {NULL};
    char buf[64];
    int64_t idx[1] = {0};

    CHECK(nb_name(dead(3)) == NULL && refused("name"));
    nb_set_name(dead(3), "x");
    CHECK(refused("set_name"));
    CHECK(!nb_requires_grad(dead(3)) && refused("requires_grad"));
    nb_set_requires_grad(dead(3), true);
    CHECK(refused("set_requires_grad"));
    CHECK(!nb_is_leaf(dead(3)) && refused("is_leaf"));
    CHECK(nb_num_parents(dead(3)) == 0 && refused("num_parents"));
    CHECK(nb_parent(dead(3), 0) == NULL && refused("parent"));
    CHECK(nb_op_name(dead(3)) == NULL && refused("op_name"));
    CHECK(nb_tangent(dead(3)) == NULL && refused("tangent"));
    nb_retain_grad(dead(3));
    CHECK(refused("retain_grad"));
    nb_zero_grad(dead(3));
    CHECK(refused("zero_grad"));
    CHECK(nb_copy(dead(3)) == NULL && refused("copy"));
    CHECK(nb_repr(dead(3), buf, sizeof buf) == -1 && refused("repr"));
    nb_print(dead(3));
    CHECK(refused("print"));
    CHECK(nb_dot(dead(3), devnull) == -1 && refused("dot"));
    CHECK(nb_backward(y, dead(0)) == -1 && refused("backward"));
    nb_tensor *seed = dead(0);
    CHECK(nb_autograd(1, &y, &seed, 1, &s, g, false) == -1 && refused("autograd") && g[0] == NULL);
    CHECK(nb_conv2d(x, w, dead(1), 1, 0) == NULL && refused("conv2d"));
    CHECK(nb_gather_rows(dead(3), idx, 1) == NULL && refused("gather_rows"));
    CHECK(nb_argmax_rows(dead(3), idx) == -1 && refused("argmax_rows"));
    CHECK(isnan(nb_accuracy(dead(3), L)) && refused("accuracy"));
    CHECK(isnan(nb_accuracy(L, dead(3))) && refused("accuracy"));
    CHECK(nb_init_tensor(dead(3), NB_INIT_ZEROS, 1, 1, 0) == -1 && refused("init"));
    /* nb_apply makes small blocks before its forward runs: a dead tensor of
       another size class stays in the cache until nb_ctx_save looks at it */
    saved = dead(100);
    CHECK(nb_apply(&saver, 1, &L, NULL, NULL) == NULL && refused("ctx_save"));
    /* and what still works: the live operands are untouched */
    CHECK(nb_item(y) == 4.0 && nb_numel(L) == 3 && nb_data(L)[2] == 3.0);
    nb_clear_error();
    CHECK(nb_backward(y, NULL) == 0 && nb_item(nb_grad(s)) == 4.0);
    fclose(devnull);
    nb_cleanup();
    return check_report("dead_calls");
}
