/*
 * Frozen parameters stay put and bad learning rates are refused (issue 13):
 *  - nb_set_requires_grad(W, false) stops Adam and SGD (momentum, weight
 *    decay) from moving W, whatever its gradient slab holds, while the other
 *    parameters follow the update rules (checked against the formulas);
 *  - nb_optim_set_lr(o, x) with x <= 0, NaN or inf sets an error naming the
 *    value and keeps the previous rate.
 */
#include "check.h"
#include "nabla.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

static bool has(const char *msg, const char *part) { return msg && strstr(msg, part); }

/* store: a (3,), b (2,), c (4,); b frozen */
static nb_params *make(nb_tensor **a, nb_tensor **b, nb_tensor **c) {
    nb_params *P = nb_params_new();
    *a = nb_params_add(P, "a", 1, (int64_t[]){3});
    *b = nb_params_add(P, "b", 1, (int64_t[]){2});
    *c = nb_params_add(P, "c", 1, (int64_t[]){4});
    double *w = nb_params_data(P);
    for (int i = 0; i < 9; i++) w[i] = 0.5 + 0.25 * i;
    return P;
}

static void fill_grad(nb_params *P, int step) {
    double *g = nb_params_grad(P);
    for (int i = 0; i < 9; i++) g[i] = 0.3 * (i + 1) - 0.1 * step;
}

static void test_sgd(void) {
    nb_tensor *a, *b, *c;
    nb_params *P = make(&a, &b, &c);
    nb_set_requires_grad(b, false);
    double lr = 0.1, mu = 0.9, wd = 0.01;
    nb_optim *o = nb_sgd_new(P, lr, mu, wd);
    double w[9], vel[9] = {0};
    memcpy(w, nb_params_data(P), sizeof w);
    for (int s = 0; s < 4; s++) {
        fill_grad(P, s);
        const double *g = nb_params_grad(P);
        for (int i = 0; i < 9; i++) {
            if (i == 3 || i == 4) continue; /* b: frozen */
            double gi = g[i] + wd * w[i];
            vel[i] = mu * vel[i] + gi;
            w[i] -= lr * vel[i];
        }
        CHECK(nb_optim_step(o) == 0);
    }
    const double *d = nb_params_data(P);
    CHECK(d[3] == 0.5 + 0.25 * 3 && d[4] == 0.5 + 0.25 * 4); /* bit for bit unchanged */
    for (int i = 0; i < 9; i++) CHECK_NEAR(d[i], w[i], 1e-15);
    /* unfrozen, it moves again */
    nb_set_requires_grad(b, true);
    CHECK(nb_optim_step(o) == 0);
    CHECK(d[3] != 0.5 + 0.25 * 3);
    nb_optim_free(o);
    nb_params_free(P);
}

static void test_adam(void) {
    nb_tensor *a, *b, *c;
    nb_params *P = make(&a, &b, &c);
    nb_set_requires_grad(a, false);
    nb_set_requires_grad(c, false);
    double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.1;
    nb_optim *o = nb_adam_new(P, lr, b1, b2, eps, wd);
    double w[9], m[9] = {0}, v[9] = {0};
    memcpy(w, nb_params_data(P), sizeof w);
    for (int s = 1; s <= 3; s++) {
        fill_grad(P, s);
        const double *g = nb_params_grad(P);
        for (int i = 3; i < 5; i++) {
            double gi = g[i] + wd * w[i];
            m[i] = b1 * m[i] + (1 - b1) * gi;
            v[i] = b2 * v[i] + (1 - b2) * gi * gi;
            w[i] -= lr * (m[i] / (1 - pow(b1, s))) / (sqrt(v[i] / (1 - pow(b2, s))) + eps);
        }
        CHECK(nb_optim_step(o) == 0);
    }
    const double *d = nb_params_data(P);
    for (int i = 0; i < 9; i++) {
        if (i == 3 || i == 4) CHECK_NEAR(d[i], w[i], 1e-14);
        else CHECK(d[i] == 0.5 + 0.25 * i);
    }
    nb_optim_free(o);
    nb_params_free(P);
}

static void test_set_lr(void) {
    nb_tensor *a, *b, *c;
    nb_params *P = make(&a, &b, &c);
    nb_optim *o = nb_adam_new(P, 0.01, 0.9, 0.999, 1e-8, 0);
    const double bad[5] = {-1, 0, NAN, INFINITY, -INFINITY};
    for (int k = 0; k < 5; k++) {
        nb_clear_error();
        nb_optim_set_lr(o, bad[k]);
        CHECK(nb_optim_lr(o) == 0.01);
        CHECK(has(nb_last_error(), "optim_set_lr: learning rate must be > 0"));
    }
    nb_clear_error();
    nb_optim_set_lr(o, 0.5);
    CHECK(nb_optim_lr(o) == 0.5 && nb_last_error() == NULL);
    nb_optim_set_lr(NULL, 0.5);
    CHECK(has(nb_last_error(), "NULL optimizer"));
    nb_optim_free(o);
    nb_params_free(P);
}

int main(void) {
    test_sgd();
    test_adam();
    test_set_lr();
    nb_cleanup();
    printf("optim_freeze: %d passed, %d failed\n", check_passed_, check_failed_);
    return check_failed_ != 0;
}
