/* Every public call that changes an existing tensor's values in place bumps
   its version as nb_data_mut does, so that a backward through a graph
   recorded before the change fails, naming the changed tensor and the op
   that read it, instead of computing a gradient from the new values (see
   tests/test_lifetime.c and tests/test_mutation_message.c for nb_data_mut
   itself).  Here: nb_zero_grad, nb_accumulate_grad and nb_backward on a
   gradient that exists (a graph may have read it through nb_grad). */
#include "check.h"
#include "internal.h"

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

int main(void) {
    gradient_changed(BY_ZERO_GRAD);
    gradient_changed(BY_ACCUMULATE);
    gradient_changed(BY_BACKWARD);
    nb_cleanup();
    return check_report("mutation_writers");
}
