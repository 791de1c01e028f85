/*
 * Seed 002's minimisation: gradient descent on
 *
 *     f(a, b) = b ((a + b)(a - b))        (= a^2 b - b^3)
 *
 * from 50 random starts in [-10, 10]^2 (step 1e-3, 25 steps, as in the seed),
 * with the gradients from nabla's reverse mode.  Writes
 *     <out>/minimize.csv   every trajectory: start, step, a, b, f, df/da, df/db
 *     <out>/minimize.svg   the trajectories over f's colour map and contours,
 *                          with the gradient field (arrows), drawn by nabla
 * and checks every gradient against the hand derivation
 *     df/da = 2ab,  df/db = a^2 - 3b^2.
 *
 *     minimize [--starts N] [--steps K] [--lr A] [--seed S] [--out DIR] [--quick]
 */
#include "nabla.h"
#include "nn_example.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* f from nabla ops; a and b may be of any (equal) shape: element-wise */
static nb_tensor *f_ab(nb_tensor *a, nb_tensor *b) {
    return nb_prod(b, nb_prod(nb_add(a, b), nb_sub(a, b)));
}

static int bad_grads; /* gradients that disagree with the hand derivation */

static void check_grad(double a, double b, double ga, double gb) {
    double ea = 2 * a * b, eb = a * a - 3 * b * b;
    if (fabs(ga - ea) > 1e-9 * (1 + fabs(ea)) || fabs(gb - eb) > 1e-9 * (1 + fabs(eb))) {
        if (bad_grads++ < 5)
            fprintf(stderr, "gradient at (%g, %g): (%g, %g), expected (%g, %g)\n", a, b, ga, gb, ea, eb);
    }
}

int main(int argc, char **argv) {
    int starts = 50, steps = 25, grid = 121, field = 21;
    double lr = 1e-3;
    unsigned long long seed = 1;
    const char *out = "out/minimize";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--starts")) starts = (int)ex_arg_int(argc, argv, &i, 1, 100000);
        else if (!strcmp(argv[i], "--steps")) steps = (int)ex_arg_int(argc, argv, &i, 0, 1000000);
        else if (!strcmp(argv[i], "--lr")) lr = ex_arg_double(argc, argv, &i, 0, 1e3);
        else if (!strcmp(argv[i], "--seed")) seed = (unsigned long long)ex_arg_int(argc, argv, &i, 0, INT64_MAX);
        else if (!strcmp(argv[i], "--out")) out = ex_arg(argc, argv, &i);
        else if (!strcmp(argv[i], "--quick")) starts = 10, grid = 61, field = 11;
        else {
            fprintf(stderr, "usage: %s [--starts N] [--steps K] [--lr A] [--seed S] [--out DIR] [--quick]\n",
                    argv[0]);
            return 2;
        }
    }
    if (ex_mkdirs(out)) return 1;
    char path[1100];

    /* the seed's check: at (1, 2), f = -6, df/da = 4, df/db = -11 */
    {
        size_t mark = nb_scope_begin();
        nb_tensor *a = nb_scalar(1.0), *b = nb_scalar(2.0);
        nb_tensor *f = f_ab(a, b);
        EX_CHECK(f && nb_backward(f, NULL) == 0);
        printf("f(1, 2) = %g, df/da = %g, df/db = %g\n", nb_item(f), nb_item(nb_grad(a)),
               nb_item(nb_grad(b)));
        if (nb_item(f) != -6 || nb_item(nb_grad(a)) != 4 || nb_item(nb_grad(b)) != -11) {
            fprintf(stderr, "minimize: wrong values at (1, 2)\n");
            return 1;
        }
        nb_scope_end(mark);
    }

    /* gradient descent from `starts` random points; a and b are leaves
       updated in place, their gradients zeroed after each step (the seed's loop) */
    double *ta = malloc(sizeof(double) * (size_t)starts * (size_t)(steps + 1));
    double *tb = malloc(sizeof(double) * (size_t)starts * (size_t)(steps + 1));
    EX_CHECK(ta && tb);
    FILE *csv = fopen(ex_path(path, sizeof path, out, "minimize.csv"), "w");
    if (!csv) {
        perror(path);
        return 1;
    }
    fprintf(csv, "start,step,a,b,f,dfda,dfdb\n");
    nb_rng rng;
    nb_rng_seed(&rng, seed);
    int decreasing = 0, total_steps = 0;
    double best = INFINITY;
    for (int s = 0; s < starts; s++) {
        double a0 = -10 + 20 * nb_rng_uniform(&rng), b0 = -10 + 20 * nb_rng_uniform(&rng);
        size_t outer = nb_scope_begin();   /* this start's a and b */
        nb_tensor *a = nb_scalar(a0), *b = nb_scalar(b0);
        EX_CHECK(a && b);
        for (int k = 0; k <= steps; k++) {
            size_t mark = nb_scope_begin();
            nb_tensor *f = f_ab(a, b);
            EX_CHECK(f && nb_backward(f, NULL) == 0);
            double av = nb_item(a), bv = nb_item(b), fv = nb_item(f);
            double ga = nb_item(nb_grad(a)), gb = nb_item(nb_grad(b));
            check_grad(av, bv, ga, gb);
            ta[(size_t)s * (steps + 1) + k] = av;
            tb[(size_t)s * (steps + 1) + k] = bv;
            fprintf(csv, "%d,%d,%.17g,%.17g,%.17g,%.17g,%.17g\n", s, k, av, bv, fv, ga, gb);
            if (k < steps) { /* a -= lr df/da, b -= lr df/db */
                nb_data_mut(a)[0] -= lr * ga;
                nb_data_mut(b)[0] -= lr * gb;
                double fn = (bv - lr * gb) * ((av - lr * ga) * (av - lr * ga) - (bv - lr * gb) * (bv - lr * gb));
                decreasing += fn < fv;
                total_steps++;
            } else if (fv < best) {
                best = fv;
            }
            nb_zero_grad(a);
            nb_zero_grad(b);
            nb_scope_end(mark);
        }
        nb_scope_end(outer);
    }
    fclose(csv);

    /* the picture: f on a grid (one element-wise evaluation of the whole grid) */
    const double lo = -20, hi = 20;
    size_t mark = nb_scope_begin();
    double *zv = malloc(sizeof(double) * (size_t)grid * grid);
    EX_CHECK(zv);
    {
        double *ga = malloc(sizeof(double) * (size_t)grid * grid), *gb = malloc(sizeof(double) * (size_t)grid * grid);
        EX_CHECK(ga && gb);
        for (int j = 0; j < grid; j++)
            for (int i = 0; i < grid; i++) {
                ga[j * grid + i] = lo + (hi - lo) * i / (grid - 1);
                gb[j * grid + i] = lo + (hi - lo) * j / (grid - 1);
            }
        bool prev = nb_set_grad_enabled(false);
        nb_tensor *z = f_ab(nb_vector(ga, (int64_t)grid * grid), nb_vector(gb, (int64_t)grid * grid));
        nb_set_grad_enabled(prev);
        EX_CHECK(z);
        memcpy(zv, nb_data(z), sizeof(double) * (size_t)grid * grid);
        free(ga);
        free(gb);
    }
    double zmin = INFINITY, zmax = -INFINITY;
    for (int k = 0; k < grid * grid; k++) {
        if (zv[k] < zmin) zmin = zv[k];
        if (zv[k] > zmax) zmax = zv[k];
    }
    /* the gradient field: one backward through the element-wise f of a whole
       grid gives every point's gradient at once */
    int nf = field * field;
    double *fx = malloc(sizeof(double) * nf), *fy = malloc(sizeof(double) * nf);
    double *fdx = malloc(sizeof(double) * nf), *fdy = malloc(sizeof(double) * nf);
    EX_CHECK(fx && fy && fdx && fdy);
    for (int j = 0; j < field; j++)
        for (int i = 0; i < field; i++) {
            fx[j * field + i] = lo + (hi - lo) * i / (field - 1);
            fy[j * field + i] = lo + (hi - lo) * j / (field - 1);
        }
    nb_tensor *A = nb_vector(fx, nf), *B = nb_vector(fy, nf);
    nb_tensor *F = f_ab(A, B);
    EX_CHECK(F && nb_backward(F, NULL) == 0);
    double gmax = 0;
    for (int k = 0; k < nf; k++) {
        fdx[k] = nb_data(nb_grad(A))[k];
        fdy[k] = nb_data(nb_grad(B))[k];
        check_grad(fx[k], fy[k], fdx[k], fdy[k]);
        double m = hypot(fdx[k], fdy[k]);
        if (m > gmax) gmax = m;
    }
    /* arrow length ~ sqrt(|grad|), the longest 0.9 of the grid spacing */
    double cell = (hi - lo) / (field - 1);
    for (int k = 0; k < nf; k++) {
        double m = hypot(fdx[k], fdy[k]);
        double len = m > 0 ? 0.9 * cell * sqrt(m / gmax) / m : 0;
        fdx[k] *= len;
        fdy[k] *= len;
    }

    nb_plot *P = nb_plot_new(1, 720, 660);
    EX_CHECK(P);
    EX_CHECK(nb_plot_panel(P, 0, lo, hi, lo, hi, "f(a, b) = b (a + b)(a - b): gradient descent from random starts",
                           "a", "b") == 0);
    EX_CHECK(nb_plot_heatmap(P, grid, grid, zv, zmin, zmax) == 0);
    EX_CHECK(nb_plot_contour(P, grid, grid, zv, zmin, zmax, 40, "black", 0.4) == 0);
    EX_CHECK(nb_plot_arrows(P, nf, fx, fy, fdx, fdy, 1.0, "#222222") == 0);
    for (int s = 0; s < starts; s++) {
        char col[8];
        ex_hsv((double)s / starts, 0.9, 1.0, col);
        EX_CHECK(nb_plot_line(P, steps + 1, ta + (size_t)s * (steps + 1), tb + (size_t)s * (steps + 1),
                              col, 1.5, 1.5) == 0);
        EX_CHECK(nb_plot_points(P, 1, ta + (size_t)s * (steps + 1), tb + (size_t)s * (steps + 1),
                                "black", 3) == 0);
    }
    EX_CHECK(nb_plot_legend(P, "trajectory (start in black)", "#ff3030") == 0);
    EX_CHECK(nb_plot_legend(P, "gradient field", "#222222") == 0);
    EX_CHECK(nb_plot_save(P, ex_path(path, sizeof path, out, "minimize.svg")) == 0);
    nb_plot_free(P);
    nb_scope_end(mark);

    printf("%d starts, %d steps of %g: f decreased in %d of %d steps, lowest final f = %.6g\n",
           starts, steps, lr, decreasing, total_steps, best);
    printf("wrote %s/minimize.csv and %s/minimize.svg\n", out, out);
    free(ta);
    free(tb);
    free(zv);
    free(fx);
    free(fy);
    free(fdx);
    free(fdy);
    nb_cleanup();
    if (bad_grads) {
        fprintf(stderr, "minimize: %d gradients disagree with the hand derivation\n", bad_grads);
        return 1;
    }
    return 0;
}
