/*
 * Higher-order derivatives and forward mode with nabla:
 *   1. seed 002's f = b((a + b)(a - b)) at a = 1, b = 2: first derivatives,
 *      then second derivatives by differentiating the (recorded) gradient
 *      again, as the seed does with JAX: d2f/da2 = 2b = 4, d2f/db2 = -6b = -12;
 *   2. the Hessian of f, and of a small polynomial in 3 variables;
 *   3. a Jacobian-vector product by forward mode (dual numbers, seed 001's
 *      func(x) = 3x^3 - 5x^2 with derivative 5.25 at 1.5), and the Jacobian of
 *      softmax compared with diag(s) - s s^T.
 *
 *     higher_order
 */
#include "nabla.h"

#include <math.h>
#include <stdio.h>

static int failures;

static void report(const char *what, double got, double want) {
    bool ok = fabs(got - want) <= 1e-10 * fmax(1.0, fabs(want));
    printf("  %-34s = %12.6f   (expected %g)%s\n", what, got, want, ok ? "" : "   <-- WRONG");
    if (!ok) failures++;
}

static void print_matrix(const char *title, const nb_tensor *m) {
    printf("%s\n", title);
    if (!m) {
        printf("  (failed: %s)\n", nb_last_error() ? nb_last_error() : "?");
        failures++;
        return;
    }
    int64_t r = nb_shape(m)[0], c = nb_shape(m)[1];
    for (int64_t i = 0; i < r; i++) {
        printf("  [");
        for (int64_t j = 0; j < c; j++) printf(" %10.6f", nb_data(m)[i * c + j]);
        printf(" ]\n");
    }
}

/* seed 002's f on a vector x = (a, b) */
static nb_tensor *f_vec(nb_tensor *x, void *ctx) {
    (void)ctx;
    nb_tensor *a = nb_sum(nb_prod(x, nb_vector((const double[]){1, 0}, 2)));
    nb_tensor *b = nb_sum(nb_prod(x, nb_vector((const double[]){0, 1}, 2)));
    return nb_prod(b, nb_prod(nb_add(a, b), nb_sub(a, b)));
}

/* p(x) = x0^2 x1 + sin(x1 x2) + x2^3 */
static nb_tensor *poly(nb_tensor *x, void *ctx) {
    (void)ctx;
    nb_tensor *e[3];
    for (int i = 0; i < 3; i++) {
        double m[3] = {0, 0, 0};
        m[i] = 1;
        e[i] = nb_sum(nb_prod(x, nb_vector(m, 3)));
    }
    return nb_add(nb_add(nb_prod(nb_square(e[0]), e[1]), nb_sin(nb_prod(e[1], e[2]))),
                  nb_pow(e[2], 3.0));
}

static nb_tensor *softmax0(nb_tensor *x, void *ctx) {
    (void)ctx;
    return nb_softmax(x, 0);
}

int main(void) {
    size_t mark = nb_scope_begin();

    printf("1. seed 002: f = b((a + b)(a - b)) at a = 1, b = 2\n");
    nb_tensor *a = nb_scalar(1.0), *b = nb_scalar(2.0);
    nb_tensor *f = nb_prod(b, nb_prod(nb_add(a, b), nb_sub(a, b)));
    nb_tensor *in[2] = {a, b}, *g[2] = {NULL, NULL}, *ga[2] = {NULL, NULL}, *gb[2] = {NULL, NULL};
    if (nb_autograd(1, &f, NULL, 2, in, g, true) != 0 ||
        nb_autograd(1, &g[0], NULL, 2, in, ga, false) != 0 ||
        nb_autograd(1, &g[1], NULL, 2, in, gb, false) != 0) {
        printf("  failed: %s\n", nb_last_error());
        failures++;
    } else {
        report("f", nb_item(f), -6.0);
        report("df/da = 2ab", nb_item(g[0]), 4.0);
        report("df/db = a^2 - 3b^2", nb_item(g[1]), -11.0);
        report("d2f/da2 = 2b", nb_item(ga[0]), 4.0);
        report("d2f/dadb = 2a", nb_item(ga[1]), 2.0);
        report("d2f/db2 = -6b", nb_item(gb[1]), -12.0);
    }

    printf("\n2. Hessians\n");
    nb_tensor *ab = nb_vector((const double[]){1.0, 2.0}, 2);
    nb_tensor *H = nb_hessian(f_vec, ab, NULL);
    print_matrix("  of seed 002's f at (1, 2)  (expected [[4, 2], [2, -12]]):", H);
    if (H) {
        report("H[0][0]", nb_data(H)[0], 4.0);
        report("H[0][1]", nb_data(H)[1], 2.0);
        report("H[1][1]", nb_data(H)[3], -12.0);
    }
    const double xv[] = {0.5, -1.0, 2.0};
    nb_tensor *x = nb_vector(xv, 3);
    nb_tensor *Hp = nb_hessian(poly, x, NULL);
    print_matrix("  of p(x) = x0^2 x1 + sin(x1 x2) + x2^3 at (0.5, -1, 2):", Hp);
    if (Hp) {
        double x0 = xv[0], x1 = xv[1], x2 = xv[2], s = sin(x1 * x2), c = cos(x1 * x2);
        double want[9] = {2 * x1, 2 * x0, 0,
                          2 * x0, -x2 * x2 * s, c - x1 * x2 * s,
                          0, c - x1 * x2 * s, -x1 * x1 * s + 6 * x2};
        for (int i = 0; i < 9; i++) {
            char what[32];
            snprintf(what, sizeof what, "H[%d][%d]", i / 3, i % 3);
            report(what, nb_data(Hp)[i], want[i]);
        }
    }
    nb_tensor *v = nb_vector((const double[]){1.0, 0.0, -1.0}, 3);
    nb_tensor *hv = nb_hvp(poly, x, v, NULL);
    if (hv && Hp) {
        printf("  H v for v = (1, 0, -1) by double backward: (%g, %g, %g)\n", nb_data(hv)[0],
               nb_data(hv)[1], nb_data(hv)[2]);
        for (int i = 0; i < 3; i++)
            report("(H v)_i vs the Hessian's row", nb_data(hv)[i],
                   nb_data(Hp)[i * 3] - nb_data(Hp)[i * 3 + 2]);
    }

    printf("\n3. forward mode\n");
    nb_tensor *xd = nb_dual(nb_scalar(1.5), nb_scalar(1.0));
    nb_tensor *y = nb_sub(nb_scale(nb_pow(xd, 3.0), 3.0), nb_scale(nb_square(xd), 5.0));
    nb_tensor *t = y ? nb_tangent(y) : NULL;
    if (t) {
        report("func(1.5) = 3x^3 - 5x^2", nb_item(y), 3 * 3.375 - 5 * 2.25);
        report("func'(1.5) by a JVP (dual number)", nb_item(t), 5.25);
    } else {
        failures++;
    }
    const double zv[] = {1.0, 2.0, 0.5};
    nb_tensor *z = nb_vector(zv, 3);
    nb_tensor *J = nb_jacobian(softmax0, z, NULL);
    print_matrix("  Jacobian of softmax at (1, 2, 0.5):", J);
    if (J) {
        double s[3], sum = 0, worst = 0;
        for (int i = 0; i < 3; i++) sum += exp(zv[i]);
        for (int i = 0; i < 3; i++) s[i] = exp(zv[i]) / sum;
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++)
                worst = fmax(worst, fabs(nb_data(J)[i * 3 + j] - ((i == j) * s[i] - s[i] * s[j])));
        report("max |J - (diag(s) - s s^T)|", worst, 0.0);
    }
    /* a JVP of softmax along u, and the same through the Jacobian */
    nb_tensor *u = nb_vector((const double[]){1.0, -1.0, 0.5}, 3);
    nb_tensor *sd = nb_softmax(nb_dual(z, u), 0);
    nb_tensor *ju = sd ? nb_tangent(sd) : NULL;
    if (ju && J) {
        printf("  J u by forward mode for u = (1, -1, 0.5): (%g, %g, %g)\n", nb_data(ju)[0],
               nb_data(ju)[1], nb_data(ju)[2]);
        for (int i = 0; i < 3; i++) {
            double want = 0;
            for (int j = 0; j < 3; j++) want += nb_data(J)[i * 3 + j] * nb_data(u)[j];
            report("(J u)_i vs the Jacobian's row", nb_data(ju)[i], want);
        }
    }

    nb_scope_end(mark);
    nb_cleanup();
    printf("\n%s\n", failures ? "SOME RESULTS ARE WRONG" : "all results as expected");
    return failures ? 1 : 0;
}
