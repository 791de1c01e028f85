/* The first error is kept: the functions that take the result of an op
   (printing, names, requires_grad, DOT, gather_rows, argmax_rows, accuracy),
   given the NULL of a failed op, leave its message alone; given NULL with no
   message set, they set their own. */
#include "check.h"
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *FIRST = "add: shapes (2,) and (3,) cannot be broadcast";

static nb_tensor *failed_op(void) {
    nb_clear_error();
    nb_tensor *a = nb_vector((double[]){1, 2}, 2), *b = nb_vector((double[]){1, 2, 3}, 3);
    nb_tensor *r = nb_add(a, b);
    CHECK(r == NULL);
    CHECK(nb_last_error() && strcmp(nb_last_error(), FIRST) == 0);
    return r;
}

static void kept(const char *fn) {
    const char *m = nb_last_error();
    if (!m || strcmp(m, FIRST) != 0) {
        fprintf(stderr, "  %s replaced the first error by: %s\n", fn, m ? m : "(none)");
        CHECK(0);
    } else {
        CHECK(1);
    }
}

static void own(const char *fn) {
    const char *m = nb_last_error();
    size_t n = strlen(fn);
    if (!m || strncmp(m, fn, n) != 0 || m[n] != ':') {
        fprintf(stderr, "  %s given NULL with no error set: %s\n", fn, m ? m : "(no message)");
        CHECK(0);
    } else {
        CHECK(1);
    }
}

int main(void) {
    size_t mark = nb_scope_begin();
    char buf[64];
    int64_t out[4];
    FILE *devnull = fopen("/dev/null", "w");
    CHECK(devnull != NULL);
    nb_tensor *labels = nb_vector((double[]){0, 1}, 2);
    for (int pass = 0; pass < 2; pass++) {
        /* pass 0: after a failed op (keep its message); pass 1: no error set */
        nb_tensor *t = pass == 0 ? failed_op() : NULL;
#define CASE(fn, call)                    \
        do {                              \
            if (pass == 0) failed_op();   \
            else nb_clear_error();        \
            call;                         \
            if (pass == 0) kept(fn);      \
            else own(fn);                 \
        } while (0)
        CASE("print", nb_print(t));
        CASE("repr", CHECK(nb_repr(t, buf, sizeof buf) == -1));
        CASE("name", CHECK(nb_name(t) == NULL));
        CASE("set_requires_grad", nb_set_requires_grad(t, true));
        CASE("dot", CHECK(nb_dot(t, devnull) == -1));
        CASE("gather_rows", CHECK(nb_gather_rows(t, (int64_t[]){0}, 1) == NULL));
        CASE("argmax_rows", CHECK(nb_argmax_rows(t, out) == -1));
        CASE("accuracy", CHECK(isnan(nb_accuracy(t, labels))));
#undef CASE
    }
    /* a NULL output buffer is the caller's own mistake: always reported */
    nb_tensor *s = nb_matrix((double[]){1, 2, 3, 4}, 2, 2);
    failed_op();
    CHECK(nb_argmax_rows(s, NULL) == -1);
    CHECK(nb_last_error() && strcmp(nb_last_error(), "argmax_rows: NULL output") == 0);
    nb_clear_error();
    if (devnull) fclose(devnull);
    nb_scope_end(mark);
    nb_cleanup();
    return check_report("first_error");
}
