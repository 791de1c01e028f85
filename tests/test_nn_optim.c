/* Optimizers against updates computed by hand, step by step. */
#include "check.h"
#include "internal.h"

#include <math.h>
#include <string.h>

static bool has(const char *msg, const char *part) { return msg && strstr(msg, part); }

/* the gradients of three steps, written into the gradient slab directly */
static const double G[3][2] = {{0.5, 0.25}, {-1.0, 0.5}, {0.2, -0.3}};

static nb_params *two(void) {
    nb_params *P = nb_params_new();
    nb_tensor *p = nb_params_add(P, "p", 1, (int64_t[]){2});
    nb_data_mut(p)[0] = 1.0;
    nb_data_mut(p)[1] = -2.0;
    return P;
}

static void test_sgd(void) {
    /* plain: p -= lr g */
    nb_params *P = two();
    nb_optim *o = nb_sgd_new(P, 0.1, 0.0, 0.0);
    CHECK(o != NULL);
    double *w = nb_params_data(P), *g = nb_params_grad(P);
    g[0] = G[0][0], g[1] = G[0][1];
    CHECK(nb_optim_step(o) == 0);
    CHECK_NEAR(w[0], 1 - 0.05, 1e-15);
    CHECK_NEAR(w[1], -2 - 0.025, 1e-15);
    CHECK(nb_optim_steps(o) == 1);
    nb_optim_free(o);
    nb_params_free(P);

    /* momentum 0.9, weight decay 0.01, lr 0.1:
       step 1: g' = g + 0.01 p = (0.51, 0.23); v = g'; p = (0.949, -2.023)
       step 2: g' = (-1 + 0.00949, 0.5 - 0.02023) = (-0.99051, 0.47977);
               v = 0.9 (0.51, 0.23) + g' = (-0.53151, 0.68677); p = (1.002151, -2.091677)
       step 3: g' = (0.2 + 0.01002151, -0.3 - 0.02091677) = (0.21002151, -0.32091677);
               v = 0.9 v + g' = (-0.268338..., 0.29717623); p = (1.028984749, -2.121394623) */
    P = two();
    o = nb_sgd_new(P, 0.1, 0.9, 0.01);
    w = nb_params_data(P), g = nb_params_grad(P);
    const double want[3][2] = {{0.949, -2.023}, {1.002151, -2.091677}, {1.028984749, -2.121394623}};
    for (int s = 0; s < 3; s++) {
        g[0] = G[s][0], g[1] = G[s][1];
        CHECK(nb_optim_step(o) == 0);
        CHECK_NEAR(w[0], want[s][0], 1e-14);
        CHECK_NEAR(w[1], want[s][1], 1e-14);
    }
    /* the optimizer does not zero gradients */
    CHECK(g[0] == G[2][0]);
    nb_optim_free(o);
    nb_params_free(P);
}

static void test_adam(void) {
    /* lr 0.01, betas (0.9, 0.999), eps 1e-8, weight decay 0.1.
       Step 1 by hand: g' = (0.5 + 0.1, 0.25 - 0.2) = (0.6, 0.05); m = 0.1 g', v = 0.001 g'^2;
       mhat = g', vhat = g'^2: p -= 0.01 g' / (|g'| + 1e-8) = 0.01 sign(g') (1 - ~1e-8/|g'|). */
    nb_params *P = two();
    nb_optim *o = nb_adam_new(P, 0.01, 0.9, 0.999, 1e-8, 0.1);
    CHECK(o != NULL);
    double *w = nb_params_data(P), *g = nb_params_grad(P);
    g[0] = G[0][0], g[1] = G[0][1];
    CHECK(nb_optim_step(o) == 0);
    CHECK_NEAR(w[0], 1 - 0.01 * 0.6 / (0.6 + 1e-8), 1e-15);
    CHECK_NEAR(w[1], -2 - 0.01 * 0.05 / (0.05 + 1e-8), 1e-15);
    /* steps 2 and 3 (computed independently, in Python, with the same formulas) */
    const double want[2][2] = {{0.9924819887658624, -2.0184441687579735},
                               {0.9926279837468459, -2.0163492513359342}};
    for (int s = 1; s < 3; s++) {
        g[0] = G[s][0], g[1] = G[s][1];
        CHECK(nb_optim_step(o) == 0);
        CHECK_NEAR(w[0], want[s - 1][0], 1e-13);
        CHECK_NEAR(w[1], want[s - 1][1], 1e-13);
    }
    CHECK(nb_optim_steps(o) == 3);
    CHECK_NEAR(nb_optim_lr(o), 0.01, 0);
    nb_optim_set_lr(o, 0.5);
    CHECK_NEAR(nb_optim_lr(o), 0.5, 0);
    nb_optim_set_lr(o, -1); /* ignored */
    CHECK_NEAR(nb_optim_lr(o), 0.5, 0);

    /* a parameter added after the optimizer was made starts with zero state:
       its first Adam step is lr * sign(g) (bias correction of step 4 applies to
       zero moments: m = 0.1 g, mhat = 0.1 g / (1 - 0.9^4) ...) */
    nb_tensor *q = nb_params_add(P, "q", 1, (int64_t[]){1});
    CHECK(q != NULL);
    w = nb_params_data(P), g = nb_params_grad(P); /* the slabs may have moved */
    nb_optim_set_lr(o, 0.01);
    g[0] = g[1] = 0;
    g[2] = 2.0;
    CHECK(nb_optim_step(o) == 0);
    double t = 4, mh = 0.1 * 2.0 / (1 - pow(0.9, t)), vh = 0.001 * 4.0 / (1 - pow(0.999, t));
    CHECK_NEAR(w[2], -0.01 * mh / (sqrt(vh) + 1e-8), 1e-15);
    nb_optim_free(o);
    nb_params_free(P);
}

/* a few real steps: the gradient comes from backward, and the loss falls */
static void test_training(void) {
    size_t mark = nb_scope_begin();
    nb_params *P = nb_params_new();
    nb_tensor *w = nb_params_add(P, "w", 1, (int64_t[]){3});
    nb_tensor *target = nb_vector((double[]){1, -2, 3}, 3);
    nb_set_requires_grad(target, false);
    nb_optim *o = nb_sgd_new(P, 0.25, 0.0, 0.0);
    /* loss = mean((w - t)^2), gradient 2 (w - t) / 3: with lr 0.25 each step
       multiplies the error by 1 - 1/6 */
    for (int s = 0; s < 5; s++) {
        size_t m = nb_scope_begin();
        nb_tensor *l = nb_mse_loss(w, target);
        CHECK(l && nb_backward(l, NULL) == 0);
        CHECK(nb_optim_step(o) == 0);
        nb_params_zero_grad(P);
        nb_scope_end(m);
    }
    double f = pow(5.0 / 6.0, 5);
    CHECK_NEAR(nb_data(w)[0], 1 - f, 1e-14);
    CHECK_NEAR(nb_data(w)[1], -2 * (1 - f), 1e-14);
    CHECK_NEAR(nb_data(w)[2], 3 * (1 - f), 1e-14);
    nb_optim_free(o);
    nb_params_free(P);
    nb_scope_end(mark);
}

static void test_errors(void) {
    nb_params *P = two();
    nb_clear_error();
    CHECK(nb_sgd_new(P, 0, 0, 0) == NULL && has(nb_last_error(), "learning rate"));
    nb_clear_error();
    CHECK(nb_sgd_new(P, 0.1, 1.0, 0) == NULL && has(nb_last_error(), "momentum"));
    nb_clear_error();
    CHECK(nb_sgd_new(P, 0.1, 0.5, -1) == NULL && has(nb_last_error(), "weight decay"));
    nb_clear_error();
    CHECK(nb_adam_new(P, 0.1, 0.9, 1.0, 1e-8, 0) == NULL && has(nb_last_error(), "betas"));
    nb_clear_error();
    CHECK(nb_adam_new(P, 0.1, 0.9, 0.999, 0, 0) == NULL && has(nb_last_error(), "eps"));
    nb_clear_error();
    CHECK(nb_adam_new(NULL, 0.1, 0.9, 0.999, 1e-8, 0) == NULL && nb_last_error());
    nb_clear_error();
    CHECK(nb_optim_step(NULL) == -1 && nb_last_error());
    /* failure injection while allocating the state: -1, parameters unchanged */
    nb_optim *o = nb_adam_new(P, 0.1, 0.9, 0.999, 1e-8, 0);
    nb_params_grad(P)[0] = 1;
    nb__fail_alloc_after(1);
    nb_clear_error();
    CHECK(nb_optim_step(o) == -1 && has(nb_last_error(), "out of memory"));
    nb__fail_alloc_after(0);
    CHECK(nb_params_data(P)[0] == 1.0 && nb_optim_steps(o) == 0);
    CHECK(nb_optim_step(o) == 0 && nb_params_data(P)[0] < 1.0);
    nb_optim_free(o);
    nb_optim_free(NULL);
    nb_params_free(P);
}

int main(void) {
    test_sgd();
    test_adam();
    test_training();
    test_errors();
    nb_cleanup();
    return check_report("nn_optim");
}
