/* Errors are values: NULL / -1 / NaN plus a thread-local message that starts
   with the op's name and shows shapes the way numpy writes them.  Nothing
   aborts; NULL arguments propagate and keep the first error. */
#include "nabla.h"
#include "check.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

static bool starts_with(const char *s, const char *prefix) {
    return s && strncmp(s, prefix, strlen(prefix)) == 0;
}
static bool contains(const char *s, const char *part) { return s && strstr(s, part) != NULL; }

/* expects r == NULL and an error that starts with prefix and contains the parts */
#define EXPECT_ERR(r, ...) expect_err_((r) == NULL, __LINE__, __VA_ARGS__, (const char *)NULL)
static void expect_err_(bool failed, int line, const char *prefix, ...) {
    const char *msg = nb_last_error();
    bool ok = failed && starts_with(msg, prefix);
    va_list ap;
    va_start(ap, prefix);
    for (const char *part; (part = va_arg(ap, const char *)) != NULL;)
        if (!contains(msg, part)) ok = false;
    va_end(ap);
    if (ok) check_passed_++;
    else {
        check_failed_++;
        fprintf(stderr, "test_errors.c:%d: %s, message \"%s\" (expected it to start with \"%s\")\n",
                line, failed ? "failed" : "did NOT fail", msg ? msg : "(none)", prefix);
    }
    nb_clear_error();
}

static nb_tensor *shaped(int nd, const int64_t *s) { return nb_ones(nd, s); }

static void broadcast_errors(void) {
    nb_tensor *a = shaped(2, (const int64_t[]){3, 1});
    nb_tensor *b = shaped(2, (const int64_t[]){4, 1});
    nb_clear_error();
    CHECK(nb_last_error() == NULL);
    CHECK(nb_add(a, b) == NULL);
    CHECK_STR(nb_last_error(), "add: shapes (3, 1) and (4, 1) cannot be broadcast");
    nb_clear_error();
    CHECK(nb_last_error() == NULL);
    CHECK(nb_sub(a, b) == NULL);
    CHECK_STR(nb_last_error(), "sub: shapes (3, 1) and (4, 1) cannot be broadcast");
    nb_clear_error();
    CHECK(nb_prod(a, b) == NULL);
    CHECK_STR(nb_last_error(), "prod: shapes (3, 1) and (4, 1) cannot be broadcast");
    nb_clear_error();
    CHECK(nb_div(a, b) == NULL);
    CHECK_STR(nb_last_error(), "div: shapes (3, 1) and (4, 1) cannot be broadcast");
    nb_clear_error();
    CHECK(nb_maximum(a, b) == NULL);
    CHECK_STR(nb_last_error(), "maximum: shapes (3, 1) and (4, 1) cannot be broadcast");
    nb_clear_error();
    /* 1-d and 3-d shapes in numpy's spelling */
    nb_tensor *c = shaped(3, (const int64_t[]){2, 3, 4});
    nb_tensor *d = shaped(1, (const int64_t[]){3});
    CHECK(nb_add(c, d) == NULL);
    CHECK_STR(nb_last_error(), "add: shapes (2, 3, 4) and (3,) cannot be broadcast");
    nb_clear_error();
    CHECK(nb_prod(d, c) == NULL);
    CHECK_STR(nb_last_error(), "prod: shapes (3,) and (2, 3, 4) cannot be broadcast");
    nb_clear_error();
    /* these do broadcast */
    CHECK(nb_add(c, nb_scalar(1.0)) != NULL);
    CHECK(nb_add(c, shaped(2, (const int64_t[]){3, 1})) != NULL);
    CHECK(nb_last_error() == NULL);
}

static void matmul_errors(void) {
    nb_tensor *a = shaped(2, (const int64_t[]){2, 3});
    nb_tensor *b = shaped(2, (const int64_t[]){4, 5});
    EXPECT_ERR(nb_matmul(a, b), "matmul:", "(2, 3)", "(4, 5)");
    nb_tensor *u = shaped(1, (const int64_t[]){3}), *v = shaped(1, (const int64_t[]){4});
    EXPECT_ERR(nb_matmul(u, v), "matmul:", "(3,)", "(4,)");
    EXPECT_ERR(nb_matmul(v, a), "matmul:", "(4,)", "(2, 3)");
    EXPECT_ERR(nb_matmul(b, u), "matmul:", "(4, 5)", "(3,)");
    /* batch dimensions that do not broadcast */
    nb_tensor *p = shaped(3, (const int64_t[]){2, 3, 4});
    nb_tensor *q = shaped(3, (const int64_t[]){3, 4, 5});
    EXPECT_ERR(nb_matmul(p, q), "matmul:", "(2, 3, 4)", "(3, 4, 5)");
    /* numpy refuses 0-d operands */
    EXPECT_ERR(nb_matmul(nb_scalar(2.0), a), "matmul:", "()");
    EXPECT_ERR(nb_matmul(a, nb_scalar(2.0)), "matmul:", "()");
}

static void shape_errors(void) {
    nb_tensor *a = shaped(2, (const int64_t[]){2, 3});
    EXPECT_ERR(nb_reshape(a, 2, (const int64_t[]){4, 2}), "reshape:", "(2, 3)", "(4, 2)");
    EXPECT_ERR(nb_reshape(a, 1, (const int64_t[]){7}), "reshape:", "(2, 3)");
    EXPECT_ERR(nb_reshape(a, 2, (const int64_t[]){-1, -1}), "reshape:");
    EXPECT_ERR(nb_reshape(a, 2, (const int64_t[]){4, -1}), "reshape:", "(2, 3)");
    EXPECT_ERR(nb_reshape(a, 2, (const int64_t[]){-2, -3}), "reshape:");
    EXPECT_ERR(nb_reshape(a, NB_MAX_DIMS + 1, (const int64_t[]){1, 1, 1, 1, 1, 1, 1, 2, 3}),
               "reshape:");
    CHECK(nb_reshape(a, 3, (const int64_t[]){3, 1, -1}) != NULL);
    EXPECT_ERR(nb_broadcast_to(a, 1, (const int64_t[]){3}), "broadcast_to:", "(2, 3)", "(3,)");
    EXPECT_ERR(nb_broadcast_to(a, 2, (const int64_t[]){4, 3}), "broadcast_to:", "(2, 3)", "(4, 3)");
    EXPECT_ERR(nb_sum_to(a, 1, (const int64_t[]){5}), "sum_to:", "(2, 3)", "(5,)");
    EXPECT_ERR(nb_sum_to(a, 3, (const int64_t[]){1, 2, 3}), "sum_to:", "(2, 3)", "(1, 2, 3)");
}

static void axis_errors(void) {
    nb_tensor *a = shaped(2, (const int64_t[]){2, 3});
    EXPECT_ERR(nb_sum_axis(a, 2, false), "sum_axis:", "(2, 3)");
    EXPECT_ERR(nb_sum_axis(a, -3, true), "sum_axis:", "(2, 3)");
    EXPECT_ERR(nb_mean_axis(a, 2, false), "mean_axis:", "(2, 3)");
    EXPECT_ERR(nb_mean_axis(a, -3, false), "mean_axis:", "(2, 3)");
    EXPECT_ERR(nb_max_axis(a, 5, false), "max_axis:", "(2, 3)");
    EXPECT_ERR(nb_max_axis(a, -3, true), "max_axis:", "(2, 3)");
    EXPECT_ERR(nb_softmax(a, 2), "softmax:", "(2, 3)");
    EXPECT_ERR(nb_softmax(a, -3), "softmax:", "(2, 3)");
    EXPECT_ERR(nb_log_softmax(a, 2), "log_softmax:", "(2, 3)");
    EXPECT_ERR(nb_log_softmax(a, -3), "log_softmax:", "(2, 3)");
    nb_tensor *s = nb_scalar(1.0);
    EXPECT_ERR(nb_sum_axis(s, 0, false), "sum_axis:", "()");
    EXPECT_ERR(nb_softmax(s, 0), "softmax:", "()");
    /* valid negative axes */
    CHECK(nb_sum_axis(a, -1, false) != NULL && nb_softmax(a, -2) != NULL);
    CHECK(nb_last_error() == NULL);
    /* max of nothing has no value */
    nb_tensor *empty = nb_zeros(1, (const int64_t[]){0});
    CHECK(empty != NULL);
    EXPECT_ERR(nb_max(empty), "max:", "(0,)");
    nb_tensor *e2 = nb_zeros(2, (const int64_t[]){0, 3});
    EXPECT_ERR(nb_max_axis(e2, 0, false), "max_axis:", "(0, 3)");
}

static void item_and_creation_errors(void) {
    nb_tensor *m = shaped(2, (const int64_t[]){2, 2});
    nb_clear_error();
    double v = nb_item(m);
    CHECK(isnan(v));
    CHECK(starts_with(nb_last_error(), "item"));
    CHECK(contains(nb_last_error(), "(2, 2)"));
    nb_clear_error();
    CHECK_NEAR(nb_item(shaped(3, (const int64_t[]){1, 1, 1})), 1.0, 0);
    CHECK(nb_last_error() == NULL);

    CHECK(nb_new(NULL, -1, NULL) == NULL);
    CHECK(nb_last_error() != NULL);
    nb_clear_error();
    CHECK(nb_zeros(NB_MAX_DIMS + 1, (const int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1}) == NULL);
    CHECK(nb_last_error() != NULL);
    nb_clear_error();
    CHECK(nb_ones(2, (const int64_t[]){2, -3}) == NULL);
    CHECK(contains(nb_last_error(), "-3"));
    nb_clear_error();
    /* a size whose bytes overflow */
    CHECK(nb_zeros(2, (const int64_t[]){INT64_C(1) << 40, INT64_C(1) << 40}) == NULL);
    CHECK(nb_last_error() != NULL);
    nb_clear_error();
    char buf[16];
    CHECK(nb_repr(NULL, buf, sizeof buf) == -1);
    nb_clear_error();
}

/* NULL arguments propagate; the first error stays visible */
static void null_propagation(void) {
    nb_tensor *x = nb_scalar(1.0);
    nb_clear_error();
    CHECK(nb_add(NULL, x) == NULL);
    CHECK(nb_add(x, NULL) == NULL);
    CHECK(nb_sin(NULL) == NULL);
    CHECK(nb_sum(NULL) == NULL);
    CHECK(nb_matmul(NULL, NULL) == NULL);
    CHECK(nb_reshape(NULL, 0, NULL) == NULL);
    CHECK(nb_softmax(NULL, 0) == NULL);
    CHECK(nb_pow(NULL, 2.0) == NULL);
    CHECK(nb_detach(NULL) == NULL);
    CHECK(nb_copy(NULL) == NULL);
    nb_clear_error();

    /* a failing inner op inside a larger expression */
    nb_tensor *a = shaped(2, (const int64_t[]){3, 1});
    nb_tensor *b = shaped(2, (const int64_t[]){4, 1});
    nb_tensor *y = nb_mean(nb_exp(nb_prod(nb_add(a, b), nb_sin(x))));
    CHECK(y == NULL);
    CHECK_STR(nb_last_error(), "add: shapes (3, 1) and (4, 1) cannot be broadcast");
    /* the first error is kept: NULL arguments don't overwrite it */
    CHECK(nb_sub(NULL, x) == NULL);
    CHECK(nb_softmax(NULL, 3) == NULL);
    CHECK_STR(nb_last_error(), "add: shapes (3, 1) and (4, 1) cannot be broadcast");
    nb_clear_error();
    CHECK(nb_last_error() == NULL);

    nb_tensor *z = nb_sum(nb_matmul(nb_sigmoid(a), nb_reshape(b, 2, (const int64_t[]){2, 3})));
    CHECK(z == NULL);
    CHECK(starts_with(nb_last_error(), "reshape:"));
    nb_clear_error();
    CHECK(nb_backward(NULL, NULL) == -1);
    nb_clear_error();
    nb_zero_grad(NULL);
    nb_release(NULL);
    CHECK(nb_retain(NULL) == NULL);
    CHECK(nb_grad(NULL) == NULL);
}

/* the message belongs to the thread that made it */
static void *other_thread(void *arg) {
    (void)arg;
    int *ok = malloc(sizeof(int));
    *ok = nb_last_error() == NULL; /* the main thread's error is not visible here */
    size_t mark = nb_scope_begin();
    nb_tensor *a = nb_ones(1, (const int64_t[]){2});
    nb_tensor *b = nb_ones(1, (const int64_t[]){3});
    *ok = *ok && nb_div(a, b) == NULL && starts_with(nb_last_error(), "div:");
    nb_scope_end(mark);
    nb_cleanup();
    return ok;
}
static void thread_local_errors(void) {
    nb_tensor *a = shaped(1, (const int64_t[]){2}), *b = shaped(1, (const int64_t[]){5});
    CHECK(nb_add(a, b) == NULL);
    pthread_t th;
    void *res = NULL;
    CHECK(pthread_create(&th, NULL, other_thread, NULL) == 0);
    CHECK(pthread_join(th, &res) == 0);
    CHECK(res && *(int *)res);
    free(res);
    CHECK_STR(nb_last_error(), "add: shapes (2,) and (5,) cannot be broadcast");
    nb_clear_error();
}

int main(void) {
    size_t mark = nb_scope_begin();
    broadcast_errors();
    matmul_errors();
    shape_errors();
    axis_errors();
    item_and_creation_errors();
    null_propagation();
    thread_local_errors();
    nb_scope_end(mark);
    nb_cleanup();
    /* reaching this line means nothing aborted */
    return check_report("errors");
}
