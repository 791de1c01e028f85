/* Every public call that changes an existing tensor's values in place bumps
   its version as nb_data_mut does, so that a backward through a graph
   recorded before the change fails, naming the changed tensor and the op
   that read it, instead of computing a gradient from the new values (see
   tests/test_lifetime.c and tests/test_mutation_message.c for nb_data_mut
   itself).  The writers: nb_init_tensor; nb_zero_grad, nb_accumulate_grad
   and nb_backward on a gradient that exists (a graph may have read it
   through nb_grad); an optimizer step (nb_optim_step, and the range step of
   nb_mpi_sharded_step) on the parameters it moves; nb_params_zero_grad;
   nb_params_load and nb_checkpoint_load; the slabs handed out writable by
   nb_params_data and nb_params_grad.  A change before the recording does not
   count, and values that a call does not touch (a frozen parameter, a
   parameter outside a step's range) keep their graphs differentiable. */
#include "check.h"
#include "internal.h"
#include "nn/ckpt.h" /* nb__optim_step_range: the sharded step's range */

#include <stdlib.h>
#include <unistd.h>

/* rc is a refusal for a change in place naming `who` and the op `op` (a
   prefix such as "prod:"; NULL: "after it was computed") */
static int refused(int rc, const char *who, const char *op) {
    const char *m = nb_last_error();
    char what[96], after[96];
    snprintf(what, sizeof what, "backward: %s was modified in place", who);
    snprintf(after, sizeof after, " after %s", op ? op : "it was computed");
    int ok = rc == -1 && m && strncmp(m, what, strlen(what)) == 0 && strstr(m, after);
    if (!ok) fprintf(stderr, "rc %d, message '%s' (expected '%s ...%s')\n", rc, m ? m : "(none)", what, after);
    nb_clear_error();
    return ok;
}

static nb_tensor *named(nb_tensor *t, const char *name) {
    nb_set_name(t, name);
    return t;
}

/* nb_init_tensor: on a leaf read by an op, and on an op's result */
static void test_init_tensor(void) {
    size_t m = nb_scope_begin();
    nb_tensor *x = named(nb_vector((double[]){1, 2, 3}, 3), "x");
    nb_tensor *y = nb_sum(nb_prod(x, x));
    CHECK(nb_init_tensor(x, NB_INIT_XAVIER_UNIFORM, 3, 3, 7) == 0);
    CHECK(refused(nb_backward(y, NULL), "x", "prod:"));
    CHECK(nb_grad(x) == NULL); /* a refused sweep stores nothing */
    /* NB_INIT_ZEROS too */
    nb_tensor *y2 = nb_sum(nb_prod(x, x));
    CHECK(nb_init_tensor(x, NB_INIT_ZEROS, 0, 0, 0) == 0);
    CHECK(refused(nb_backward(y2, NULL), "x", "prod:"));
    /* recorded after the change: fine, 2x */
    CHECK(nb_init_tensor(x, NB_INIT_HE_NORMAL, 3, 0, 9) == 0);
    nb_tensor *y3 = nb_sum(nb_prod(x, x));
    CHECK(nb_backward(y3, NULL) == 0 && nb_grad(x));
    for (int i = 0; nb_grad(x) && i < 3; i++) CHECK(nb_data(nb_grad(x))[i] == 2 * nb_data(x)[i]);
    /* a refused init (bad fans) changes nothing and counts as nothing */
    nb_tensor *y4 = nb_sum(nb_prod(x, x));
    CHECK(nb_init_tensor(x, NB_INIT_XAVIER_UNIFORM, 0, 0, 1) == -1);
    nb_clear_error();
    CHECK(nb_backward(y4, NULL) == 0);
    /* an op's result filled in place: its own rule would read the new values */
    nb_tensor *e = named(nb_exp(x), "e");
    CHECK(nb_init_tensor(e, NB_INIT_ZEROS, 0, 0, 0) == 0);
    CHECK(refused(nb_backward(e, nb_ones(1, (int64_t[]){3})), "e", NULL));
    nb_scope_end(m);
}

/* A gradient read by a graph (through nb_grad), then changed in place:
   z = sum(w * grad(x)), whose gradient for w is grad(x)'s values. */
typedef enum { BY_ZERO_GRAD, BY_ACCUMULATE, BY_BACKWARD } grad_writer;

static void gradient_changed(grad_writer how) {
    size_t m = nb_scope_begin();
    nb_tensor *x = named(nb_vector((double[]){1, 2, 3}, 3), "x");
    nb_tensor *w = named(nb_vector((double[]){0.5, 0.5, 0.5}, 3), "w");
    CHECK(nb_backward(nb_sum(nb_prod(x, x)), NULL) == 0); /* grad(x) = 2x */
    nb_tensor *gx = nb_grad(x);
    CHECK(gx != NULL);
    if (!gx) return;
    nb_set_name(gx, "gx");
    nb_tensor *z = nb_sum(nb_prod(w, gx));
    switch (how) {
    case BY_ZERO_GRAD: nb_zero_grad(x); break;
    case BY_ACCUMULATE: CHECK(nb_accumulate_grad(x, nb_ones(1, (int64_t[]){3})) == 0); break;
    case BY_BACKWARD: CHECK(nb_backward(nb_sum(nb_prod(x, x)), NULL) == 0); break; /* += 2x */
    }
    CHECK(nb_grad(x) == gx); /* the same tensor, changed in place */
    CHECK(refused(nb_backward(z, NULL), "gx", "prod:"));
    CHECK(nb_grad(w) == NULL);
    /* recorded after the change: the gradient for w is grad(x)'s new values */
    nb_tensor *z2 = nb_sum(nb_prod(w, gx));
    CHECK(nb_backward(z2, NULL) == 0 && nb_grad(w));
    for (int i = 0; nb_grad(w) && i < 3; i++) CHECK(nb_data(nb_grad(w))[i] == nb_data(gx)[i]);
    nb_scope_end(m);
}

/* a store with two parameters, "a" (2,) and "b" (3,), values 1..5 */
static nb_params *store(void) {
    nb_params *P = nb_params_new();
    nb_tensor *a = nb_params_add(P, "a", 1, (int64_t[]){2}), *b = nb_params_add(P, "b", 1, (int64_t[]){3});
    CHECK(a && b);
    for (int i = 0; a && i < 2; i++) nb_data_mut(a)[i] = 1 + i;
    for (int i = 0; b && i < 3; i++) nb_data_mut(b)[i] = 3 + i;
    return P;
}
static nb_tensor *loss_of(nb_tensor *t) { return nb_sum(nb_square(t)); }

static void test_optim_step(void) {
    for (int adam = 0; adam < 2; adam++) {
        size_t m = nb_scope_begin();
        nb_params *P = store();
        nb_optim *o = adam ? nb_adam_new(P, 0.01, 0.9, 0.999, 1e-8, 0) : nb_sgd_new(P, 0.1, 0.5, 0.01);
        nb_tensor *a = nb_params_find(P, "a"), *b = nb_params_find(P, "b");
        nb_tensor *la = loss_of(a), *lb = loss_of(b);
        CHECK(nb_backward(la, NULL) == 0 && nb_backward(lb, NULL) == 0);
        CHECK(nb_optim_step(o) == 0);
        CHECK(refused(nb_backward(la, NULL), "a", "square:"));
        CHECK(refused(nb_backward(lb, NULL), "b", "square:"));
        /* a frozen parameter does not move: its graph stays differentiable */
        nb_tensor *la2 = loss_of(a), *lb2 = loss_of(b);
        nb_set_requires_grad(b, false);
        CHECK(nb_optim_step(o) == 0);
        nb_set_requires_grad(b, true);
        CHECK(refused(nb_backward(la2, NULL), "a", "square:"));
        CHECK(nb_backward(lb2, NULL) == 0);
        nb_optim_free(o);
        nb_params_free(P);
        nb_scope_end(m);
    }
    /* the range step (nb_mpi_sharded_step's): only the parameters it moves */
    size_t m = nb_scope_begin();
    nb_params *P = store();
    nb_optim *o = nb_sgd_new(P, 0.1, 0, 0);
    nb_tensor *a = nb_params_find(P, "a"), *b = nb_params_find(P, "b");
    nb_tensor *la = loss_of(a), *lb = loss_of(b);
    CHECK(nb_backward(la, NULL) == 0 && nb_backward(lb, NULL) == 0);
    CHECK(nb__optim_step_range(o, 3, 5) == 0); /* b's last two values */
    CHECK(refused(nb_backward(lb, NULL), "b", "square:"));
    CHECK(nb_backward(la, NULL) == 0); /* a did not move */
    CHECK(nb__optim_step_range(o, 1, 2) == 0); /* a's second value */
    CHECK(refused(nb_backward(la, NULL), "a", "square:"));
    nb_optim_free(o);
    nb_params_free(P);
    nb_scope_end(m);
}

/* the store's gradient slab zeroed, or handed out writable */
static void test_store_gradients(void) {
    for (int k = 0; k < 2; k++) {
        size_t m = nb_scope_begin();
        nb_params *P = store();
        nb_tensor *a = nb_params_find(P, "a");
        nb_tensor *w = named(nb_vector((double[]){1, 1}, 2), "w");
        CHECK(nb_backward(loss_of(a), NULL) == 0);
        nb_tensor *ga = nb_grad(a);
        nb_set_name(ga, "ga");
        nb_tensor *z = nb_sum(nb_prod(w, ga));
        if (k == 0) nb_params_zero_grad(P);
        else nb_params_grad(P)[0] = 0.0;
        CHECK(refused(nb_backward(z, NULL), "ga", "prod:"));
        nb_zero_grad(a); /* (zeros already: bumps again, still refused) */
        CHECK(refused(nb_backward(z, NULL), "ga", "prod:"));
        nb_params_free(P);
        nb_scope_end(m);
    }
    /* the value slab handed out writable */
    size_t m = nb_scope_begin();
    nb_params *P = store();
    nb_tensor *lb = loss_of(nb_params_find(P, "b"));
    nb_params_data(P)[4] = 9.0;
    CHECK(refused(nb_backward(lb, NULL), "b", "square:"));
    nb_params_free(P);
    nb_scope_end(m);
}

/* loading values into the store's existing parameters */
static void test_loads(void) {
    char dir[] = "/tmp/nabla_mutation_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char pf[96], cf[96];
    snprintf(pf, sizeof pf, "%s/p.nbp", dir);
    snprintf(cf, sizeof cf, "%s/c.nbc", dir);
    size_t m = nb_scope_begin();
    nb_params *P = store();
    nb_optim *o = nb_sgd_new(P, 0.1, 0.9, 0);
    CHECK(nb_params_save(P, pf) == 0);
    CHECK(nb_checkpoint_save(cf, "k=1", P, o, NULL) == 0);
    nb_tensor *a = nb_params_find(P, "a"), *b = nb_params_find(P, "b");
    nb_tensor *la = loss_of(a), *lb = loss_of(b);
    CHECK(nb_params_load(P, pf) == 0);
    CHECK(refused(nb_backward(la, NULL), "a", "square:"));
    CHECK(refused(nb_backward(lb, NULL), "b", "square:"));
    la = loss_of(a);
    CHECK(nb_checkpoint_load(cf, "k=1", P, o, NULL) == 0);
    CHECK(refused(nb_backward(la, NULL), "a", "square:"));
    /* a refused load changes nothing, and counts as nothing */
    la = loss_of(a);
    CHECK(nb_checkpoint_load(cf, "k=2", P, o, NULL) == -1);
    nb_clear_error();
    CHECK(nb_backward(la, NULL) == 0);
    nb_optim_free(o);
    nb_params_free(P);
    nb_scope_end(m);
    remove(pf);
    remove(cf);
    rmdir(dir);
}

int main(void) {
    test_init_tensor();
    gradient_changed(BY_ZERO_GRAD);
    gradient_changed(BY_ACCUMULATE);
    gradient_changed(BY_BACKWARD);
    test_optim_step();
    test_store_gradients();
    test_loads();
    nb_cleanup();
    return check_report("mutation_writers");
}
