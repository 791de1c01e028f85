/*
 * Regression by gradient descent: a linear and a polynomial fit on synthetic
 * data, each recovering the coefficients it was generated with.
 *
 *   linear:      y = 2.0 x1 - 3.5 x2 + 1.25 x3 + 0.5 + noise,  x ~ U[-1, 1]^3
 *   polynomial:  y = 0.5 - 1.2 x + 0.8 x^2 + 0.3 x^3 + noise,   x ~ U[-1, 1]
 *                (a Linear layer on the features x, x^2, x^3)
 *
 * Noise is N(0, 0.001^2).  Both models are nb_linear layers trained on the
 * mean squared error, full batch, with SGD + momentum; the result is checked
 * against the true coefficients (within 1e-3) and against the least-squares
 * solution from the normal equations (within 1e-6: the optimizer converged).
 *
 *   regression [--n N] [--steps K] [--seed S] [--out DIR] [--quick]
 * Writes <out>/regression.csv (the loss per step of both fits) and
 * <out>/regression.svg (the polynomial data and fit, both loss curves).
 */
#include "nabla.h"
#include "nn_example.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define NF 3

/* least squares [X 1] w = y by the normal equations (Gaussian elimination,
   partial pivoting): w[0..NF) weights, w[NF] the intercept */
static void least_squares(const double *X, const double *y, int64_t n, double *w) {
    double A[NF + 1][NF + 2] = {{0}};
    for (int64_t i = 0; i < n; i++) {
        double r[NF + 1];
        for (int j = 0; j < NF; j++) r[j] = X[i * NF + j];
        r[NF] = 1;
        for (int a = 0; a <= NF; a++) {
            for (int b = 0; b <= NF; b++) A[a][b] += r[a] * r[b];
            A[a][NF + 1] += r[a] * y[i];
        }
    }
    for (int c = 0; c <= NF; c++) {
        int piv = c;
        for (int r = c + 1; r <= NF; r++)
            if (fabs(A[r][c]) > fabs(A[piv][c])) piv = r;
        for (int k = 0; k <= NF + 1; k++) {
            double t = A[c][k];
            A[c][k] = A[piv][k];
            A[piv][k] = t;
        }
        for (int r = 0; r <= NF; r++) {
            if (r == c) continue;
            double f = A[r][c] / A[c][c];
            for (int k = c; k <= NF + 1; k++) A[r][k] -= f * A[c][k];
        }
    }
    for (int c = 0; c <= NF; c++) w[c] = A[c][NF + 1] / A[c][c];
}

/* Fits y ~ X W^T + b with a Linear(NF -> 1); returns the number of failed checks. */
static int fit(const char *what, const double *X, const double *y, int64_t n, const double *truth,
               int steps, double lr, uint64_t seed, double *loss_curve, double *coef) {
    nb_params *P = nb_params_new();
    EX_CHECK(P);
    nb_linear lin;
    EX_CHECK(nb_linear_init(&lin, P, what, NF, 1, true, NB_INIT_XAVIER_UNIFORM, seed) == 0);
    nb_optim *opt = nb_sgd_new(P, lr, 0.9, 0.0);
    EX_CHECK(opt);
    size_t data_mark = nb_scope_begin();
    nb_tensor *Xt = nb_matrix(X, n, NF), *yt = nb_column(y, n);   /* (n, 3), (n, 1) */
    EX_CHECK(Xt && yt);
    nb_set_requires_grad(Xt, false);
    nb_set_requires_grad(yt, false);
    double loss = NAN;
    for (int s = 0; s < steps; s++) {
        size_t mark = nb_scope_begin();
        nb_tensor *l = nb_mse_loss(nb_linear_forward(&lin, Xt), yt);
        EX_CHECK(l && nb_backward(l, NULL) == 0);
        loss = nb_item(l);
        if (loss_curve) loss_curve[s] = loss;
        EX_CHECK(nb_optim_step(opt) == 0);
        nb_params_zero_grad(P);
        nb_scope_end(mark);
    }
    nb_scope_end(data_mark);
    for (int j = 0; j < NF; j++) coef[j] = nb_data(lin.weight)[j];
    coef[NF] = nb_data(lin.bias)[0];
    double ls[NF + 1];
    least_squares(X, y, n, ls);
    int bad = 0;
    printf("%s fit: final mse %.3g after %d steps\n", what, loss, steps);
    printf("  %-10s %12s %12s %12s\n", "", "true", "fitted", "least sq.");
    for (int j = 0; j <= NF; j++) {
        char name[16];
        if (j < NF) snprintf(name, sizeof name, "w%d", j + 1);
        else snprintf(name, sizeof name, "b");
        printf("  %-10s %12.6f %12.6f %12.6f\n", name, truth[j], coef[j], ls[j]);
        if (!(fabs(coef[j] - truth[j]) <= 1e-3)) {
            fprintf(stderr, "%s: %s = %.6f is not within 1e-3 of %.6f\n", what, name, coef[j], truth[j]);
            bad++;
        }
        if (!(fabs(coef[j] - ls[j]) <= 1e-6)) {
            fprintf(stderr, "%s: %s = %.9f has not converged to the least-squares %.9f\n", what,
                    name, coef[j], ls[j]);
            bad++;
        }
    }
    nb_optim_free(opt);
    nb_params_free(P);
    return bad;
}

int main(int argc, char **argv) {
    int64_t n = 2000;
    int steps = 1000;
    unsigned long long seed = 7;
    const char *out = "out/regression";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--n")) n = ex_arg_int(argc, argv, &i, 10, 100000000);
        else if (!strcmp(argv[i], "--steps")) steps = (int)ex_arg_int(argc, argv, &i, 1, 10000000);
        else if (!strcmp(argv[i], "--seed")) seed = (unsigned long long)ex_arg_int(argc, argv, &i, 0, INT64_MAX);
        else if (!strcmp(argv[i], "--out")) out = ex_arg(argc, argv, &i);
        else if (!strcmp(argv[i], "--quick")) n = 500;
        else {
            fprintf(stderr, "usage: %s [--n N] [--steps K] [--seed S] [--out DIR] [--quick]\n", argv[0]);
            return 2;
        }
    }
    if (ex_mkdirs(out)) return 1;
    nb_rng rng;
    nb_rng_seed(&rng, seed);
    double *X = malloc(sizeof(double) * (size_t)n * NF), *y = malloc(sizeof(double) * (size_t)n);
    double *px = malloc(sizeof(double) * (size_t)n);
    double *c1 = malloc(sizeof(double) * (size_t)steps), *c2 = malloc(sizeof(double) * (size_t)steps);
    EX_CHECK(X && y && px && c1 && c2);
    const double noise = 1e-3;
    int bad = 0;

    /* linear */
    const double lin_true[NF + 1] = {2.0, -3.5, 1.25, 0.5};
    for (int64_t i = 0; i < n; i++) {
        double v = lin_true[NF];
        for (int j = 0; j < NF; j++) {
            X[i * NF + j] = 2 * nb_rng_uniform(&rng) - 1;
            v += lin_true[j] * X[i * NF + j];
        }
        y[i] = v + noise * nb_rng_normal(&rng);
    }
    double lin_coef[NF + 1];
    bad += fit("linear", X, y, n, lin_true, steps, 0.1, seed, c1, lin_coef);

    /* polynomial: features x, x^2, x^3 */
    const double poly_true[NF + 1] = {-1.2, 0.8, 0.3, 0.5}; /* x, x^2, x^3, constant */
    for (int64_t i = 0; i < n; i++) {
        double x = 2 * nb_rng_uniform(&rng) - 1;
        px[i] = x;
        X[i * NF + 0] = x;
        X[i * NF + 1] = x * x;
        X[i * NF + 2] = x * x * x;
        y[i] = poly_true[3] + poly_true[0] * x + poly_true[1] * x * x + poly_true[2] * x * x * x +
               noise * nb_rng_normal(&rng);
    }
    double poly_coef[NF + 1];
    bad += fit("polynomial", X, y, n, poly_true, steps, 0.3, seed + 1, c2, poly_coef);

    /* outputs */
    char path[1100];
    FILE *csv = fopen(ex_path(path, sizeof path, out, "regression.csv"), "w");
    if (!csv) {
        perror(path);
        return 1;
    }
    fprintf(csv, "step,linear_mse,polynomial_mse\n");
    for (int s = 0; s < steps; s++) fprintf(csv, "%d,%.10g,%.10g\n", s, c1[s], c2[s]);
    fclose(csv);

    nb_plot *P = nb_plot_new(2, 480, 380);
    EX_CHECK(P);
    EX_CHECK(nb_plot_panel(P, 0, -1, 1, -1.0, 2.5, "polynomial fit", "x", "y") == 0);
    double cx[101], cy[101];
    for (int k = 0; k <= 100; k++) {
        double x = -1 + 0.02 * k;
        cx[k] = x;
        cy[k] = poly_coef[3] + poly_coef[0] * x + poly_coef[1] * x * x + poly_coef[2] * x * x * x;
    }
    EX_CHECK(nb_plot_line(P, 101, cx, cy, "#d62728", 5, 0) == 0);
    EX_CHECK(nb_plot_points(P, n < 300 ? n : 300, px, y, "#1f77b4", 1.8) == 0);
    EX_CHECK(nb_plot_legend(P, "data", "#1f77b4") == 0);
    EX_CHECK(nb_plot_legend(P, "fitted cubic", "#d62728") == 0);
    /* log10 of the loss per step */
    double *sx = malloc(sizeof(double) * (size_t)steps), *l1 = malloc(sizeof(double) * (size_t)steps),
           *l2 = malloc(sizeof(double) * (size_t)steps);
    EX_CHECK(sx && l1 && l2);
    double lo = 0, hi = -1e300;
    for (int s = 0; s < steps; s++) {
        sx[s] = s;
        l1[s] = log10(c1[s]);
        l2[s] = log10(c2[s]);
        if (l1[s] < lo) lo = l1[s];
        if (l2[s] < lo) lo = l2[s];
        if (l1[s] > hi) hi = l1[s];
        if (l2[s] > hi) hi = l2[s];
    }
    EX_CHECK(nb_plot_panel(P, 1, 0, steps > 1 ? steps - 1 : 1, floor(lo), ceil(hi) + 0.01,
                           "training loss", "step", "log10 mse") == 0);
    EX_CHECK(nb_plot_line(P, steps, sx, l1, "#2ca02c", 1.5, 0) == 0);
    EX_CHECK(nb_plot_line(P, steps, sx, l2, "#9467bd", 1.5, 0) == 0);
    EX_CHECK(nb_plot_legend(P, "linear", "#2ca02c") == 0);
    EX_CHECK(nb_plot_legend(P, "polynomial", "#9467bd") == 0);
    EX_CHECK(nb_plot_save(P, ex_path(path, sizeof path, out, "regression.svg")) == 0);
    nb_plot_free(P);
    printf("wrote %s/regression.csv and %s/regression.svg\n", out, out);

    free(X), free(y), free(px), free(c1), free(c2), free(sx), free(l1), free(l2);
    nb_cleanup();
    if (bad) {
        fprintf(stderr, "regression: %d checks failed\n", bad);
        return 1;
    }
    printf("regression: all coefficients recovered within 1e-3\n");
    return 0;
}
