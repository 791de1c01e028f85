/* nb_gradcheck / nb_gradgradcheck say pass (0), fail (1) or error (-1):
   a wrong derivative fails, a right one passes, eps <= 0, NaN or inf is an
   error, and an allocation failure anywhere inside gradgradcheck is an error
   that keeps its out-of-memory message (no term silently dropped). */
#include "check.h"
#include "internal.h"

#include <math.h>
#include <string.h>

static bool has(const char *msg, const char *part) { return msg && strstr(msg, part); }

/* f(x, w) = sum(tanh(x) * w): right derivatives */
static nb_tensor *f_right(int n, nb_tensor *const *in, void *ctx) {
    return nb_sum(nb_prod(nb_tanh(in[0]), in[1]));
}
/* f(x) = x * detach(x): derivative 2x, but backward sees x */
static nb_tensor *f_wrong(int n, nb_tensor *const *in, void *ctx) {
    return nb_prod(in[0], nb_detach(in[0]));
}
static void test_results(void) {
    size_t mark = nb_scope_begin();
    nb_tensor *x = nb_vector((double[]){0.3, -1.2, 2.0}, 3);
    nb_tensor *w = nb_vector((double[]){1.5, 0.5, -2.0}, 3);
    nb_tensor *in[2] = {x, w};
    double err = -1;
    nb_clear_error();
    CHECK(nb_gradcheck(f_right, 2, in, NULL, 1e-6, &err) == 0);
    CHECK(err >= 0 && err <= NB_GRADCHECK_TOL);
    CHECK(nb_last_error() == NULL);
    CHECK(nb_gradgradcheck(f_right, 2, in, NULL, 1e-5, &err) == 0);
    CHECK(err >= 0 && err <= NB_GRADCHECK_TOL);

    /* a wrong derivative: the check ran and failed, and says where */
    err = -1;
    CHECK(nb_gradcheck(f_wrong, 1, &x, NULL, 1e-6, &err) == 1);
    CHECK(err > 0.5); /* 2x against x: error |x| / max(1, 2|x|) = 0.5 at least for |x| >= 0.5 */
    CHECK(has(nb_last_error(), "gradcheck: input 1, element "));
    CHECK(has(nb_last_error(), "> tolerance 1e-05"));
    nb_clear_error();
    CHECK(nb_gradgradcheck(f_wrong, 1, &x, NULL, 1e-5, &err) == 1);
    CHECK(has(nb_last_error(), "gradgradcheck: input 1, element "));

    /* eps must be positive and finite: never silently replaced */
    const double bad[4] = {0.0, -1e-6, NAN, INFINITY};
    for (int i = 0; i < 4; i++) {
        nb_clear_error();
        err = 0;
        CHECK(nb_gradcheck(f_right, 2, in, NULL, bad[i], &err) == -1 && isnan(err));
        CHECK(has(nb_last_error(), "gradcheck: eps must be positive and finite"));
        nb_clear_error();
        CHECK(nb_gradgradcheck(f_right, 2, in, NULL, bad[i], &err) == -1);
        CHECK(has(nb_last_error(), "gradgradcheck: eps must be positive and finite"));
    }
    nb_clear_error();
    nb_scope_end(mark);
}

/* every allocation of a gradgradcheck made to fail in turn: -1 with the
   out-of-memory message, every time, until the run completes and passes */
static void test_alloc_failures(void) {
    size_t mark = nb_scope_begin();
    nb_tensor *x = nb_vector((double[]){0.3, -1.2}, 2);
    nb_tensor *w = nb_vector((double[]){1.5, 0.5}, 2);
    nb_tensor *in[2] = {x, w};
    int64_t N, bad = 0;
    for (N = 1; N < 100000; N++) {
        nb_clear_error();
        double err = 0;
        nb__fail_alloc_after(N);
        int rc = nb_gradgradcheck(f_right, 2, in, NULL, 1e-5, &err);
        bool fired = nb__fail_alloc_fired();
        nb__fail_alloc_after(0);
        if (!fired) {
            CHECK(rc == 0 && err <= NB_GRADCHECK_TOL);
            break;
        }
        if (rc != -1 || !has(nb_last_error(), "out of memory") || !isnan(err)) {
            if (bad++ < 5)
                fprintf(stderr, "  allocation %lld fails: rc %d, max_err %g, %s\n", (long long)N, rc,
                        err, nb_last_error() ? nb_last_error() : "(no message)");
        }
    }
    printf("  gradgradcheck: %lld allocation failure points\n", (long long)(N - 1));
    CHECK(N > 10 && N < 100000);
    CHECK(bad == 0);
    nb_clear_error();
    nb_scope_end(mark);
}

int main(void) {
    test_results();
    test_alloc_failures();
    nb_cleanup();
    return check_report("gradcheck");
}
