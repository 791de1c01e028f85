/*
 * Classifying a 2-D toy set with an MLP: two interleaved spirals (or two
 * moons), full-batch Adam, and a picture of the decision regions.
 *
 *   classify2d [--data spirals|moons] [--loss ce|bce] [--n N] [--steps K] [--lr X]
 *              [--hidden H] [--seed S] [--out DIR] [--quick]
 *
 * --loss ce:  2 logits per point, cross-entropy (nb_cross_entropy)
 * --loss bce: 1 logit per point, binary cross-entropy (nb_bce_with_logits)
 * Writes <out>/classify2d.svg (decision regions, the points, the loss curve)
 * and <out>/classify2d.csv (the points, their class and the predicted
 * probability of class 1).  Fails (exit 1) below 97% training accuracy.
 */
#include "nabla.h"
#include "nn_example.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define PI 3.141592653589793

/* n points per class into X (2n, 2), y (2n) */
static void make_data(bool moons, int64_t n, nb_rng *r, double *X, double *y) {
    for (int k = 0; k < 2; k++)
        for (int64_t i = 0; i < n; i++) {
            double *p = X + 2 * (k * n + i);
            if (moons) {
                double t = PI * nb_rng_uniform(r);
                p[0] = k ? 1 - cos(t) : cos(t);
                p[1] = k ? 0.5 - sin(t) : sin(t);
                p[0] += 0.1 * nb_rng_normal(r);
                p[1] += 0.1 * nb_rng_normal(r);
            } else {
                /* arm k: radius t, angle 3 pi t + k pi (1.5 turns) */
                double t = 0.1 + 0.9 * nb_rng_uniform(r), th = 3 * PI * t + k * PI;
                p[0] = t * cos(th) + 0.02 * nb_rng_normal(r);
                p[1] = t * sin(th) + 0.02 * nb_rng_normal(r);
            }
            y[k * n + i] = k;
        }
}

/* probability of class 1 for each row of X (m, 2), without a graph */
static void prob1(const nb_mlp *net, bool bce, const double *X, int64_t m, double *out) {
    bool prev = nb_set_grad_enabled(false);
    size_t mark = nb_scope_begin();
    nb_tensor *z = nb_mlp_forward(net, nb_matrix(X, m, 2));
    nb_tensor *p = bce ? nb_sigmoid(z) : nb_softmax(z, 1);
    EX_CHECK(p);
    for (int64_t i = 0; i < m; i++) out[i] = bce ? nb_data(p)[i] : nb_data(p)[2 * i + 1];
    nb_scope_end(mark);
    nb_set_grad_enabled(prev);
}

static uint32_t mix(uint32_t a, uint32_t b, double t) {
    uint32_t c = 0;
    for (int s = 0; s < 24; s += 8) {
        double v = (1 - t) * ((a >> s) & 255) + t * ((b >> s) & 255);
        c |= (uint32_t)(v + 0.5) << s;
    }
    return c;
}

int main(int argc, char **argv) {
    bool moons = false, bce = false;
    int64_t n = 200, hidden = 32;
    int steps = 2000;
    double lr = 0.02;
    unsigned long long seed = 3;
    const char *out = "out/classify2d";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--data")) {
            const char *v = ex_arg(argc, argv, &i);
            if (strcmp(v, "spirals") && strcmp(v, "moons")) {
                fprintf(stderr, "%s: --data is spirals or moons\n", argv[0]);
                return 2;
            }
            moons = !strcmp(v, "moons");
        } else if (!strcmp(argv[i], "--loss")) {
            const char *v = ex_arg(argc, argv, &i);
            if (strcmp(v, "ce") && strcmp(v, "bce")) {
                fprintf(stderr, "%s: --loss is ce or bce\n", argv[0]);
                return 2;
            }
            bce = !strcmp(v, "bce");
        } else if (!strcmp(argv[i], "--n")) n = ex_arg_int(argc, argv, &i, 2, 10000000);
        else if (!strcmp(argv[i], "--steps")) steps = (int)ex_arg_int(argc, argv, &i, 1, 100000000);
        else if (!strcmp(argv[i], "--lr")) lr = ex_arg_double(argc, argv, &i, 1e-12, 1e3);
        else if (!strcmp(argv[i], "--hidden")) hidden = ex_arg_int(argc, argv, &i, 1, 1 << 16);
        else if (!strcmp(argv[i], "--seed")) seed = (unsigned long long)ex_arg_int(argc, argv, &i, 0, INT64_MAX);
        else if (!strcmp(argv[i], "--out")) out = ex_arg(argc, argv, &i);
        else if (!strcmp(argv[i], "--quick")) n = 100, steps = 1500;
        else {
            fprintf(stderr, "usage: %s [--data spirals|moons] [--loss ce|bce] [--n N] [--steps K] "
                            "[--lr X] [--hidden H] [--seed S] [--out DIR] [--quick]\n", argv[0]);
            return 2;
        }
    }
    if (ex_mkdirs(out)) return 1;
    int64_t N = 2 * n;
    double *X = malloc(sizeof(double) * (size_t)N * 2), *y = malloc(sizeof(double) * (size_t)N);
    double *curve = malloc(sizeof(double) * (size_t)steps), *sx = malloc(sizeof(double) * (size_t)steps);
    EX_CHECK(X && y && curve && sx);
    nb_rng rng;
    nb_rng_seed(&rng, seed);
    make_data(moons, n, &rng, X, y);

    nb_params *P = nb_params_new();
    EX_CHECK(P);
    nb_mlp *net = nb_mlp_new(P, "mlp", 4, (int64_t[]){2, hidden, hidden, bce ? 1 : 2}, NB_ACT_TANH,
                             NB_INIT_AUTO, seed);
    EX_CHECK(net);
    nb_optim *opt = nb_adam_new(P, lr, 0.9, 0.999, 1e-8, 0.0);
    EX_CHECK(opt);
    size_t data_mark = nb_scope_begin();
    nb_tensor *Xt = nb_matrix(X, N, 2);                               /* (N, 2) */
    nb_tensor *yt = bce ? nb_column(y, N) : nb_vector(y, N);          /* (N, 1) or (N,) */
    EX_CHECK(Xt && yt);
    nb_set_requires_grad(Xt, false);
    nb_set_requires_grad(yt, false);
    double t0 = ex_now();
    for (int s = 0; s < steps; s++) {
        size_t mark = nb_scope_begin();
        nb_tensor *z = nb_mlp_forward(net, Xt);
        nb_tensor *loss = bce ? nb_bce_with_logits(z, yt) : nb_cross_entropy(z, yt);
        EX_CHECK(loss && nb_backward(loss, NULL) == 0);
        curve[s] = nb_item(loss);
        sx[s] = s;
        EX_CHECK(nb_optim_step(opt) == 0);
        nb_params_zero_grad(P);
        nb_scope_end(mark);
    }
    double secs = ex_now() - t0;
    nb_scope_end(data_mark);

    double *p = malloc(sizeof(double) * (size_t)N);
    EX_CHECK(p);
    prob1(net, bce, X, N, p);
    int64_t right = 0;
    for (int64_t i = 0; i < N; i++) right += (p[i] > 0.5) == (y[i] > 0.5);
    double acc = (double)right / (double)N;
    printf("classify2d: %s, %lld points, MLP 2-%lld-%lld-%d (tanh), %s loss, Adam lr %g\n",
           moons ? "two moons" : "two spirals", (long long)N, (long long)hidden, (long long)hidden,
           bce ? 1 : 2, bce ? "binary cross-entropy" : "cross-entropy", lr);
    printf("after %d steps (%.2f s): loss %.4f, training accuracy %.4f\n", steps, secs,
           curve[steps - 1], acc);

    /* decision regions on a grid */
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int64_t i = 0; i < N; i++) {
        x0 = fmin(x0, X[2 * i]), x1 = fmax(x1, X[2 * i]);
        y0 = fmin(y0, X[2 * i + 1]), y1 = fmax(y1, X[2 * i + 1]);
    }
    double padx = 0.1 * (x1 - x0), pady = 0.1 * (y1 - y0);
    x0 -= padx, x1 += padx, y0 -= pady, y1 += pady;
    const int G = 150;
    double *grid = malloc(sizeof(double) * G * G * 2), *gp = malloc(sizeof(double) * G * G);
    uint32_t *rgb = malloc(sizeof(uint32_t) * G * G);
    EX_CHECK(grid && gp && rgb);
    for (int j = 0; j < G; j++)
        for (int i = 0; i < G; i++) {
            grid[2 * (j * G + i)] = x0 + (x1 - x0) * i / (G - 1);
            grid[2 * (j * G + i) + 1] = y0 + (y1 - y0) * j / (G - 1);
        }
    prob1(net, bce, grid, (int64_t)G * G, gp);
    const uint32_t c0 = 0xff7f0e, c1 = 0x1f77b4, white = 0xffffff;
    for (int k = 0; k < G * G; k++) {
        double q = gp[k];
        /* the predicted class's colour, paler where the network is unsure */
        rgb[k] = mix(white, q > 0.5 ? c1 : c0, 0.15 + 0.45 * fabs(2 * q - 1));
    }
    nb_plot *pl = nb_plot_new(2, 520, 500);
    EX_CHECK(pl);
    EX_CHECK(nb_plot_panel(pl, 0, x0, x1, y0, y1, moons ? "two moons: decision regions" : "two spirals: decision regions",
                           "x1", "x2") == 0);
    EX_CHECK(nb_plot_cells(pl, G, G, rgb) == 0);
    EX_CHECK(nb_plot_contour(pl, G, G, gp, 0.0, 1.0, 1, "black", 1.2) == 0); /* the p = 0.5 boundary */
    double *cx = malloc(sizeof(double) * (size_t)N), *cy = malloc(sizeof(double) * (size_t)N);
    EX_CHECK(cx && cy);
    for (int k = 0; k < 2; k++) {
        int64_t m = 0;
        for (int64_t i = 0; i < N; i++)
            if ((int)y[i] == k) cx[m] = X[2 * i], cy[m] = X[2 * i + 1], m++;
        EX_CHECK(nb_plot_points(pl, m, cx, cy, k ? "#0b3d66" : "#a04a00", 2.5) == 0);
        EX_CHECK(nb_plot_legend(pl, k ? "class 1" : "class 0", k ? "#1f77b4" : "#ff7f0e") == 0);
    }
    double lmax = 0;
    for (int s = 0; s < steps; s++) lmax = fmax(lmax, curve[s]);
    EX_CHECK(nb_plot_panel(pl, 1, 0, steps > 1 ? steps - 1 : 1, 0, lmax * 1.05, "training loss", "step", "loss") == 0);
    EX_CHECK(nb_plot_line(pl, steps, sx, curve, "#2ca02c", 1.5, 0) == 0);
    char path[1100];
    EX_CHECK(nb_plot_save(pl, ex_path(path, sizeof path, out, "classify2d.svg")) == 0);
    nb_plot_free(pl);
    FILE *csv = fopen(ex_path(path, sizeof path, out, "classify2d.csv"), "w");
    if (!csv) {
        perror(path);
        return 1;
    }
    fprintf(csv, "x1,x2,class,p1\n");
    for (int64_t i = 0; i < N; i++) fprintf(csv, "%.6f,%.6f,%d,%.6f\n", X[2 * i], X[2 * i + 1], (int)y[i], p[i]);
    fclose(csv);
    printf("wrote %s/classify2d.svg and %s/classify2d.csv\n", out, out);

    free(X), free(y), free(curve), free(sx), free(p), free(grid), free(gp), free(rgb), free(cx), free(cy);
    nb_optim_free(opt);
    nb_mlp_free(net);
    nb_params_free(P);
    nb_cleanup();
    if (acc < 0.97) {
        fprintf(stderr, "classify2d: training accuracy %.4f is below 0.97\n", acc);
        return 1;
    }
    return 0;
}
