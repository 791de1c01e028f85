/* Every unary op, from one table (tests/opcases.h: UNARY_ROWS, one row per
   row of src/ops/unary.def): values against the row's own formula, first,
   second and third derivatives against the derivatives written by hand
   (reverse over reverse), nb_gradcheck and nb_gradgradcheck at 0-d, 1-d and
   4-d shapes, forward mode against the first derivative, and NaN in, NaN
   out.  It fails when a row of unary.def has no row in the test table. */
#include "opcases.h"

#include <stdlib.h>

static void run_case(const tcase *c) { (void)c; } /* (this test builds no tcase) */

static const char *const UNARY_OPS[] = { /* generated: every unary op of the library */
#define NB_UNARY(ID, name, ...) #name,
#include "ops/unary.def"
#undef NB_UNARY
};

static nb_tensor *row_apply(int n, nb_tensor *const *in, void *ctx) {
    const unary_row *u = ctx;
    return u->f(in[0], u->p);
}

/* the k-th derivative of row u at x, elementwise, as a tensor (reverse mode, create_graph) */
static nb_tensor *kth(const unary_row *u, nb_tensor *x, int k) {
    nb_tensor *y = u->f(x, u->p);
    for (int i = 0; i < k && y; i++) {
        nb_tensor *s = nb_sum(y), *g = NULL;
        if (!s || nb_autograd(1, &s, NULL, 1, &x, &g, true) != 0) return NULL;
        y = g;
    }
    return y;
}

static void one_row(const unary_row *u) {
    size_t mark = nb_scope_begin();
    char what[64];
    snprintf(what, sizeof what, "%s(p=%g)", u->name, u->p);
    uint64_t seed = 17;
    int64_t s4[4] = {2, 3, 1, 4};
    shp shapes[3] = {S(0), S(1, 7), S(4, 2, 3, 1, 4)};
    (void)s4;
    /* values and derivatives of orders 1..3 */
    nb_tensor *x = make_input(&shapes[1], u->gen, &seed);
    unary_ref_fn d[4] = {u->ref, u->d1, u->d2, u->d3};
    for (int k = 0; k <= 3; k++) {
        nb_tensor *y = kth(u, x, k);
        CHECK(y != NULL);
        if (!y) {
            fprintf(stderr, "%s: derivative %d: %s\n", what, k, nb_last_error());
            nb_clear_error();
            continue;
        }
        for (int64_t i = 0; i < nb_numel(x); i++) {
            double want = d[k](nb_data(x)[i], u->p), got = nb_data(y)[i];
            if (!(fabs(got - want) <= 1e-10 * (1 + fabs(want)))) {
                check_failed_++;
                fprintf(stderr, "%s: order %d at x = %g: %.17g, expected %.17g\n", what, k,
                        nb_data(x)[i], got, want);
            } else {
                check_passed_++;
            }
        }
    }
    /* the library's checks against central differences */
    for (int k = 0; k < 3; k++) {
        nb_tensor *xi = make_input(&shapes[k], u->gen, &seed);
        double err = 1;
        int rc = nb_gradcheck(row_apply, 1, &xi, (void *)u, 1e-6, &err);
        CHECK(rc == 0 && err < 1e-6);
        if (rc != 0 || err >= 1e-6) fprintf(stderr, "%s: gradcheck rc %d err %g\n", what, rc, err);
        rc = nb_gradgradcheck(row_apply, 1, &xi, (void *)u, 1e-5, &err);
        CHECK(rc == 0 && err < 1e-5);
        if (rc != 0 || err >= 1e-5) fprintf(stderr, "%s: gradgradcheck rc %d err %g\n", what, rc, err);
    }
    /* forward mode: the tangent is f'(x) v */
    nb_tensor *v = make_input(&shapes[2], G_NORMAL, &seed), *x4 = make_input(&shapes[2], u->gen, &seed);
    nb_tensor *t = nb_tangent(u->f(nb_dual(x4, v), u->p));
    CHECK(t != NULL);
    for (int64_t i = 0; t && i < nb_numel(t); i++)
        CHECK_NEAR(nb_data(t)[i], u->d1(nb_data(x4)[i], u->p) * nb_data(v)[i], 1e-12);
    /* NaN in, NaN out (forward and backward) */
    nb_tensor *n = nb_scalar(NAN), *yn = u->f(n, u->p);
    CHECK(yn && (isnan(nb_item(yn)) || (u->p == 0.0 && (!strcmp(u->name, "scale") || !strcmp(u->name, "pow")))));
    nb_scope_end(mark);
}

int main(void) {
    for (int i = 0; i < N_UNARY_ROWS; i++) one_row(&UNARY_ROWS[i]);
    /* every unary op has a row */
    for (size_t k = 0; k < sizeof UNARY_OPS / sizeof *UNARY_OPS; k++) {
        bool found = false;
        for (int i = 0; i < N_UNARY_ROWS; i++) found |= strcmp(UNARY_ROWS[i].name, UNARY_OPS[k]) == 0;
        if (!found) fprintf(stderr, "unary op %s has no row in tests/opcases.h\n", UNARY_OPS[k]);
        CHECK(found);
    }
    nb_cleanup();
    return check_report("unary");
}
