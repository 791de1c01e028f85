/* The public API for code built on nabla (src/nn uses it, and so can a
   user's layer, loss or custom op), through nabla.h alone:
     - nb_set_error: sets and replaces the message, cut at 511 characters;
       a custom op's callback that sets one keeps it (nb_apply, nb_backward);
       an op given the NULL that follows keeps it too (the first error);
     - nb_check_args: the check of every op, first error included;
     - nb_shape_str: numpy's way of writing shapes, bounds respected;
     - nb_const: constants that do not require grad and leave "in:<k>" alone;
     - nb_parallel_for: chunks that cover [0, n) once, inline when small or
       nested;
     - one generator: nb_rand and nb_randn are the nb_rng streams (splitmix64's
       reference values, and values pinned from before the generators were
       one). */
#include "nabla.h"
#include "check.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASAN 1
#endif
#endif

static bool msg_is(const char *want) {
    const char *e = nb_last_error();
    if (e && strcmp(e, want) == 0) return true;
    fprintf(stderr, "  message '%s', expected '%s'\n", e ? e : "(none)", want);
    return false;
}

/* ---- a custom op whose callbacks report their own failures ---------------- */
static int fail_backward; /* 1: backward fails with its own message */

static nb_tensor *picky_fwd(nb_ctx *c, int n, nb_tensor *const *x) {
    if (nb_numel(x[0]) > 3) {
        nb_set_error("picky: %lld elements, at most 3", (long long)nb_numel(x[0]));
        return NULL;
    }
    return nb_scale(x[0], 2.0);
}
static int picky_bwd(nb_ctx *c, nb_tensor *g, nb_tensor **gx) {
    if (fail_backward) {
        char s[NB_SHAPE_STR_SIZE];
        nb_set_error("picky: no gradient for shape %s",
                     nb_shape_str(nb_ndim(g), nb_shape(g), s, sizeof s));
        return -1;
    }
    gx[0] = nb_scale(g, 2.0);
    return gx[0] ? 0 : -1;
}
static const nb_function picky_fn = {"picky", picky_fwd, picky_bwd, NULL};

static void test_set_error(void) {
    nb_clear_error();
    nb_set_error("mine: %d and %s", 3, "x");
    CHECK(msg_is("mine: 3 and x"));
    nb_set_error("mine: again"); /* replaces */
    CHECK(msg_is("mine: again"));
    char longer[700];
    memset(longer, 'a', sizeof longer - 1);
    longer[sizeof longer - 1] = 0;
    nb_set_error("%s", longer);
    CHECK(nb_last_error() && strlen(nb_last_error()) == 511);
    nb_set_error(NULL);
    CHECK(msg_is("set_error: NULL format"));
    nb_clear_error();
    CHECK(nb_last_error() == NULL);

    /* the first error is kept by what only passes a failure on */
    nb_tensor *x = nb_vector((double[]){1, 2}, 2);
    nb_set_error("mine: the first");
    CHECK(nb_add(NULL, x) == NULL);
    CHECK(msg_is("mine: the first"));
    nb_clear_error();

    /* a custom op's forward: its message, not "forward returned NULL" */
    nb_tensor *big = nb_vector((double[]){1, 2, 3, 4}, 4);
    CHECK(nb_apply(&picky_fn, 1, &big, NULL, NULL) == NULL);
    CHECK(msg_is("picky: 4 elements, at most 3"));
    nb_clear_error();
    /* its backward: nb_backward fails with the callback's message */
    nb_tensor *y = nb_apply(&picky_fn, 1, &x, NULL, NULL);
    CHECK(y != NULL);
    fail_backward = 1;
    CHECK(nb_backward(nb_sum(y), NULL) == -1);
    CHECK(msg_is("picky: no gradient for shape (2,)"));
    fail_backward = 0;
    nb_clear_error();
    CHECK(nb_backward(nb_sum(y), NULL) == 0);
    CHECK(nb_grad(x) && nb_data(nb_grad(x))[0] == 2.0 && nb_data(nb_grad(x))[1] == 2.0);
    nb_cleanup();
}

static void test_check_args(void) {
    size_t m = nb_scope_begin();
    nb_tensor *a = nb_scalar(1.0), *b = nb_scalar(2.0);
    nb_clear_error();
    CHECK(nb_check_args("mine", 2, (nb_tensor *[]){a, b}) == 0);
    CHECK(nb_last_error() == NULL);
    CHECK(nb_check_args("mine", 0, NULL) == 0);
    CHECK(nb_check_args("mine", 2, (nb_tensor *[]){a, NULL}) == -1);
    CHECK(msg_is("mine: NULL argument 2"));
    /* a NULL from a failed op: its message stands */
    nb_tensor *bad = nb_matmul(a, b); /* 0-d operands: NULL + "matmul: ..." */
    CHECK(bad == NULL);
    char first[512];
    snprintf(first, sizeof first, "%s", nb_last_error());
    CHECK(nb_check_args("mine", 1, &bad) == -1);
    CHECK(msg_is(first));
    CHECK(nb_check_args("mine", 1, NULL) == -1); /* (no list: the first error too) */
    CHECK(msg_is(first));
    nb_clear_error();
    /* the layers built on it say so in their own name */
    CHECK(nb_activate(NULL, NB_ACT_RELU) == NULL);
    CHECK(msg_is("activate: NULL argument 1"));
    nb_clear_error();
    nb_tensor *dead = nb_scalar(3.0);
    nb_scope_end(m);
#ifndef ASAN /* (there the released block is poisoned: ASan itself reports a use) */
    CHECK(nb_check_args("mine", 2, (nb_tensor *[]){dead, NULL}) == -1);
    CHECK(msg_is("mine: argument 1 was already released (used after its scope ended, or "
                 "released more often than retained)"));
    nb_clear_error();
    CHECK(nb_activate(dead, NB_ACT_NONE) == NULL);
    CHECK(msg_is("activate: argument 1 was already released (used after its scope ended, or "
                 "released more often than retained)"));
    nb_clear_error();
#else
    (void)dead;
#endif
}

static void test_shape_str(void) {
    char s[NB_SHAPE_STR_SIZE];
    CHECK(strcmp(nb_shape_str(2, (int64_t[]){3, 1}, s, sizeof s), "(3, 1)") == 0);
    CHECK(strcmp(nb_shape_str(1, (int64_t[]){4}, s, sizeof s), "(4,)") == 0);
    CHECK(strcmp(nb_shape_str(0, NULL, s, sizeof s), "()") == 0);
    int64_t big[NB_MAX_DIMS];
    for (int i = 0; i < NB_MAX_DIMS; i++) big[i] = i % 2 ? INT64_MAX : INT64_MIN;
    CHECK(nb_shape_str(NB_MAX_DIMS, big, s, sizeof s) == s);
    CHECK(strlen(s) < sizeof s && s[strlen(s) - 1] == ')'); /* the largest fits */
    char small[5];
    CHECK(nb_shape_str(2, (int64_t[]){300, 1}, small, sizeof small) == small);
    CHECK(strcmp(small, "(300") == 0); /* cut, terminated */
    CHECK(nb_shape_str(NB_MAX_DIMS + 1, big, s, sizeof s) == NULL);
    CHECK(nb_shape_str(-1, big, s, sizeof s) == NULL);
    CHECK(nb_shape_str(2, NULL, s, sizeof s) == NULL);
    CHECK(nb_shape_str(2, big, NULL, 8) == NULL);
    CHECK(nb_shape_str(2, big, s, 0) == NULL);
    /* what the messages of the ops write */
    nb_tensor *r = nb_reshape(nb_zeros(2, (int64_t[]){2, 3}), 1, (int64_t[]){4});
    CHECK(r == NULL && strstr(nb_last_error(), nb_shape_str(2, (int64_t[]){2, 3}, s, sizeof s)));
    nb_clear_error();
    nb_cleanup();
}

static void test_const(void) {
    nb_names_reset();
    nb_tensor *a = nb_scalar(1.0);
    nb_tensor *c = nb_const(2, (int64_t[]){2, 2}, 0.5);
    nb_tensor *b = nb_scalar(2.0);
    CHECK(c && nb_numel(c) == 4 && nb_data(c)[0] == 0.5 && nb_data(c)[3] == 0.5);
    CHECK(!nb_requires_grad(c) && nb_is_leaf(c));
    CHECK(strcmp(nb_op_name(c), "const") == 0 && strncmp(nb_name(c), "const:", 6) == 0);
    CHECK(strcmp(nb_name(a), "in:0") == 0 && strcmp(nb_name(b), "in:1") == 0); /* in:k untouched */
    nb_tensor *x = nb_vector((double[]){1, 2}, 2);
    CHECK(nb_backward(nb_sum(nb_prod(x, nb_const(1, (int64_t[]){2}, 3.0))), NULL) == 0);
    CHECK(nb_data(nb_grad(x))[0] == 3.0);
    nb_clear_error();
    CHECK(nb_const(1, (int64_t[]){-1}, 0.0) == NULL);
    CHECK(msg_is("const: negative size in shape (-1,)"));
    nb_clear_error();
    nb_cleanup();
}

/* ---- nb_parallel_for ---------------------------------------------------------- */
#define PN 100000
static atomic_int calls;
static int mark[PN];
static int64_t seen_lo[64], seen_hi[64];
static void fill(int64_t lo, int64_t hi, void *ctx) {
    int k = atomic_fetch_add(&calls, 1);
    if (k < 64) {
        seen_lo[k] = lo;
        seen_hi[k] = hi;
    }
    for (int64_t i = lo; i < hi; i++) mark[i] += 1 + *(int *)ctx;
}
static void nested(int64_t lo, int64_t hi, void *ctx) {
    /* a split from inside a chunk runs inline */
    int zero = 0;
    nb_parallel_for(hi - lo, 1, fill, &zero); /* marks [0, hi - lo) */
    (void)ctx;
}

static void test_parallel_for(void) {
    int prev = nb_set_num_threads(4), zero = 0;
    memset(mark, 0, sizeof mark);
    nb_parallel_for(PN, 1000, fill, &zero);
    int k = atomic_load(&calls);
    CHECK(k >= 1 && k <= 4);
    bool once = true;
    for (int i = 0; i < PN; i++) once &= mark[i] == 1;
    CHECK(once);
    for (int i = 0; i < k; i++) /* chunk i is [n i / k, n (i+1) / k) */
        for (int j = 0; j < k; j++)
            if (seen_lo[j] == (int64_t)PN * i / k) CHECK(seen_hi[j] == (int64_t)PN * (i + 1) / k);
    /* small: one call on this thread */
    atomic_store(&calls, 0);
    nb_parallel_for(1999, 1000, fill, &zero);
    CHECK(atomic_load(&calls) == 1 && seen_lo[0] == 0 && seen_hi[0] == 1999);
    /* nested: inline, still every element */
    memset(mark, 0, sizeof mark);
    atomic_store(&calls, 0);
    nb_parallel_for(8, 1, nested, NULL);
    CHECK(atomic_load(&calls) >= 1);
    nb_set_num_threads(prev);
}

/* ---- one generator -------------------------------------------------------------- */
static void test_one_generator(void) {
    nb_rng r;
    nb_rng_seed(&r, 0); /* splitmix64's reference outputs for seed 0 */
    CHECK(nb_rng_next(&r) == 0xE220A8397B1DCDAFull);
    CHECK(nb_rng_next(&r) == 0x6E789E6AA1B965F4ull);
    CHECK(nb_rng_next(&r) == 0x06C45D188009454Full);
    /* values from before nb_rand had its own copy of the generator */
    nb_tensor *u = nb_rand(1, (int64_t[]){3}, 42);
    CHECK(nb_data(u)[0] == 0x1.7bae644c5fd6dp-1 && nb_data(u)[1] == 0x1.477f199d93378p-3 &&
          nb_data(u)[2] == 0x1.1d499d5c4c3e6p-2);
    nb_tensor *z = nb_randn(1, (int64_t[]){3}, 7); /* (libm's log, sin, cos: within 1e-15) */
    CHECK(fabs(nb_data(z)[0] - 0x1.fa194ec47d228p-1) < 1e-15 &&
          fabs(nb_data(z)[1] - 0x1.acac72e4633eap-4) < 1e-15 &&
          fabs(nb_data(z)[2] + 0x1.dd3fde5949e97p+0) < 1e-15);
    /* nb_rand and nb_randn are the streams of nb_rng_uniform and nb_rng_normal */
    const uint64_t seeds[] = {1, 42, 0xDEADBEEFull, UINT64_MAX};
    const int64_t sizes[] = {1, 2, 5, 1000};
    bool same = true;
    for (int s = 0; s < 4; s++)
        for (int k = 0; k < 4; k++) {
            const double *du = nb_data(nb_rand(1, &sizes[k], seeds[s]));
            const double *dn = nb_data(nb_randn(1, &sizes[k], seeds[s]));
            nb_rng a, b;
            nb_rng_seed(&a, seeds[s]);
            nb_rng_seed(&b, seeds[s]);
            for (int64_t i = 0; i < sizes[k]; i++) {
                double x = nb_rng_uniform(&a), y = nb_rng_normal(&b);
                same &= memcmp(&x, &du[i], sizeof x) == 0 && memcmp(&y, &dn[i], sizeof y) == 0;
            }
        }
    CHECK(same);
    /* and so is the initialisation of src/nn (Xavier uniform: a (2 u - 1)) */
    nb_tensor *w = nb_zeros(2, (int64_t[]){3, 4});
    CHECK(nb_init_tensor(w, NB_INIT_XAVIER_UNIFORM, 4, 3, 42) == 0);
    double a6 = sqrt(6.0 / 7.0);
    CHECK(nb_data(w)[0] == a6 * (2.0 * 0x1.7bae644c5fd6dp-1 - 1.0));
    nb_cleanup();
}

int main(void) {
    test_set_error();
    test_check_args();
    test_shape_str();
    test_const();
    test_parallel_for();
    test_one_generator();
    return check_report("extension_api");
}
