/* The message of a backward refused for a change made in place names the
   input that changed after the recording (found by fuzz/fuzz_lifetime.c: it
   named the first input that had ever changed, which could be one changed
   before the recording, a change that does not count).  A node records only
   the sum of its inputs' versions, so when several inputs have ever changed
   it cannot tell which one did after; it lists them ("one of ...") instead. */
#include "check.h"
#include "nabla.h"

static int says(int rc, const char *a, const char *b) {
    const char *m = nb_last_error();
    int ok = rc == -1 && m && strstr(m, "was modified in place") && strstr(m, a) && (!b || strstr(m, b));
    if (!ok) fprintf(stderr, "rc %d, message '%s' (expected %s, %s)\n", rc, m ? m : "(none)", a, b ? b : "");
    nb_clear_error();
    return ok;
}

int main(void) {
    /* a changed before p was recorded, b after */
    size_t m = nb_scope_begin();
    nb_tensor *a = nb_scalar(2.0), *b = nb_scalar(3.0);
    char an[64], bn[64], pn[64], wrong[96];
    snprintf(an, sizeof an, "%s", nb_name(a));
    snprintf(bn, sizeof bn, "%s", nb_name(b));
    nb_data_mut(a)[0] = 5.0; /* before the recording: does not count */
    nb_tensor *p = nb_prod(a, b);
    snprintf(pn, sizeof pn, "%s", nb_name(p));
    nb_data_mut(b)[0] = 4.0;
    /* both have changed, so both are listed; naming a alone would be wrong */
    snprintf(wrong, sizeof wrong, "backward: %s was modified", an);
    CHECK(nb_backward(p, NULL) == -1 && nb_last_error() && strncmp(nb_last_error(), wrong, strlen(wrong)) != 0);
    CHECK(says(-1, "one of", pn));
    CHECK(says(nb_backward(p, NULL), an, bn));
    CHECK(nb_grad(a) == NULL && nb_grad(b) == NULL); /* a failed sweep stores nothing */
    nb_tensor *q = nb_prod(a, nb_scalar(1.0)); /* only a has ever changed: named alone */
    nb_data_mut(a)[0] = 6.0;
    CHECK(nb_backward(q, NULL) == -1 && nb_last_error() && !strstr(nb_last_error(), "one of"));
    CHECK(says(-1, an, "after prod:"));
    nb_tensor *r = nb_prod(a, a); /* one tensor twice: named once */
    nb_data_mut(a)[0] = 7.0;
    CHECK(nb_backward(r, NULL) == -1 && nb_last_error() && !strstr(nb_last_error(), "one of"));
    CHECK(says(-1, an, "after prod:"));
    nb_tensor *s = nb_prod(a, b); /* recorded after every change: fine */
    CHECK(nb_backward(s, NULL) == 0 && nb_item(nb_grad(a)) == 4.0 && nb_item(nb_grad(b)) == 7.0);
    /* a tensor no node reads, changed and then used: d(c*c)/dc at c = 2 */
    nb_tensor *c = nb_scalar(1.0);
    nb_data_mut(c)[0] = 2.0;
    nb_zero_grad(c);
    nb_tensor *cc = nb_prod(c, c);
    CHECK(nb_backward(cc, NULL) == 0 && nb_item(nb_grad(c)) == 4.0);
    nb_scope_end(m);
    /* a leaf whose scope ended but that a kept graph still holds (its only
       reference is the node's): a change is counted all the same (found by
       fuzz/fuzz_lifetime.c when a change to a tensor with one reference was
       not counted) */
    size_t m2 = nb_scope_begin();
    nb_tensor *x = nb_scalar(3.0), *y = nb_prod(x, nb_scalar(2.0));
    nb_retain(y);
    nb_scope_end(m2);
    nb_data_mut(x)[0] = 5.0;
    CHECK(says(nb_backward(y, NULL), "after prod:", NULL));
    nb_release(y);
    nb_cleanup();
    return check_report("mutation_message");
}
