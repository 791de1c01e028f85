/* The graph and the backward sweep: shared subexpressions, accumulation,
   zero_grad, requires_grad, no-grad mode, detach, a chain of a million ops
   (no recursion, freed cleanly), seeds, and repeated backward calls. */
#include "nabla.h"
#include "check.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-12

static double gat(const nb_tensor *t, int64_t i) {
    nb_tensor *g = nb_grad(t);
    return g && i < nb_numel(g) ? nb_data(g)[i] : NAN;
}

/* d = a*a + a uses a three times: dd/da = 2a + 1 */
static void diamond(void) {
    const double av[] = {-1.5, 0.0, 2.0};
    nb_tensor *a = nb_vector(av, 3);
    nb_tensor *d = nb_add(nb_prod(a, a), a);
    CHECK(nb_backward(d, NULL) == 0);
    for (int i = 0; i < 3; i++) CHECK_NEAR(gat(a, i), 2 * av[i] + 1, TOL);

    /* a deeper diamond: b = sin(a); c = b*b; e = c + b*exp(b) */
    nb_tensor *x = nb_scalar(0.7);
    nb_tensor *b = nb_sin(x);
    nb_tensor *e = nb_add(nb_prod(b, b), nb_prod(b, nb_exp(b)));
    CHECK(nb_backward(e, NULL) == 0);
    double bv = sin(0.7);
    CHECK_NEAR(gat(x, 0), (2 * bv + exp(bv) + bv * exp(bv)) * cos(0.7), TOL);
}

/* gradients add up over backward calls until zero_grad */
static void accumulation(void) {
    const double av[] = {1.0, 2.0, -3.0};
    nb_tensor *a = nb_vector(av, 3);
    nb_tensor *y = nb_sum(nb_square(a));
    CHECK(nb_backward(y, NULL) == 0);
    for (int i = 0; i < 3; i++) CHECK_NEAR(gat(a, i), 2 * av[i], TOL);
    CHECK(nb_backward(y, NULL) == 0);
    for (int i = 0; i < 3; i++) CHECK_NEAR(gat(a, i), 4 * av[i], TOL);
    /* a second graph on the same leaf adds too */
    nb_tensor *z = nb_sum(a);
    CHECK(nb_backward(z, NULL) == 0);
    for (int i = 0; i < 3; i++) CHECK_NEAR(gat(a, i), 4 * av[i] + 1, TOL);
    nb_zero_grad(a);
    CHECK(nb_grad(a) != NULL);
    for (int i = 0; i < 3; i++) CHECK_NEAR(gat(a, i), 0.0, 0);
    CHECK(nb_backward(y, NULL) == 0);
    for (int i = 0; i < 3; i++) CHECK_NEAR(gat(a, i), 2 * av[i], TOL);
    /* zero_grad before any backward is harmless */
    nb_tensor *fresh = nb_scalar(1.0);
    nb_zero_grad(fresh);
    CHECK(nb_grad(fresh) == NULL || nb_item(nb_grad(fresh)) == 0.0);
}

/* interior gradients are not kept from one backward to the next */
static void no_double_count(void) {
    nb_tensor *a = nb_scalar(3.0);
    nb_tensor *h = nb_square(a);                            /* interior */
    nb_tensor *y = nb_add(nb_scale(h, 3.0), nb_sin(h));     /* uses h twice */
    double once = (3.0 + cos(9.0)) * 6.0;
    CHECK(nb_backward(y, NULL) == 0);
    CHECK_NEAR(gat(a, 0), once, 1e-12);
    CHECK(nb_backward(y, NULL) == 0);
    CHECK_NEAR(gat(a, 0), 2 * once, 1e-12);
    CHECK(nb_backward(y, NULL) == 0);
    CHECK_NEAR(gat(a, 0), 3 * once, 1e-12);
    /* backward from an interior node of the same graph */
    nb_zero_grad(a);
    CHECK(nb_backward(h, NULL) == 0);
    CHECK_NEAR(gat(a, 0), 6.0, 1e-12);
}

/* requires_grad = false: no gradient, nb_grad stays NULL */
static void requires_grad(void) {
    const double av[] = {1, 2}, bv[] = {3, 4};
    nb_tensor *a = nb_vector(av, 2), *b = nb_vector(bv, 2);
    nb_set_requires_grad(b, false);
    CHECK(!nb_requires_grad(b) && nb_requires_grad(a));
    nb_tensor *y = nb_sum(nb_prod(a, b));
    CHECK(nb_requires_grad(y));
    CHECK(nb_backward(y, NULL) == 0);
    CHECK(nb_grad(b) == NULL);
    CHECK_NEAR(gat(a, 0), 3.0, 0);
    CHECK_NEAR(gat(a, 1), 4.0, 0);

    /* all inputs without grad: no graph, output does not require grad */
    nb_tensor *c = nb_vector(av, 2);
    nb_set_requires_grad(c, false);
    nb_tensor *z = nb_sum(nb_prod(c, b));
    CHECK(z && !nb_requires_grad(z));
    CHECK(z && nb_num_parents(z) == 0);
    nb_clear_error();
    CHECK(nb_backward(z, NULL) == -1);
    CHECK(nb_last_error() != NULL);
    nb_clear_error();

    /* requires_grad false on an interior tensor stops the flow through it */
    nb_tensor *x = nb_scalar(2.0);
    nb_tensor *s = nb_square(x);
    nb_tensor *t = nb_scale(x, 5.0);
    nb_set_requires_grad(s, false);
    nb_tensor *u = nb_add(s, t);
    CHECK(nb_backward(u, NULL) == 0);
    CHECK_NEAR(gat(x, 0), 5.0, 0);
}

/* nb_set_grad_enabled(false) records nothing */
static void no_grad_mode(void) {
    CHECK(nb_is_grad_enabled());
    nb_tensor *a = nb_scalar(2.0);
    bool prev = nb_set_grad_enabled(false);
    CHECK(prev == true);
    CHECK(!nb_is_grad_enabled());
    nb_tensor *y = nb_square(a);
    CHECK(y && !nb_requires_grad(y));
    CHECK(y && nb_num_parents(y) == 0);
    CHECK_NEAR(nb_item(y), 4.0, 0);
    CHECK(nb_set_grad_enabled(true) == false);
    CHECK(nb_is_grad_enabled());
    nb_clear_error();
    CHECK(nb_backward(y, NULL) == -1);
    CHECK(nb_last_error() != NULL);
    nb_clear_error();
    CHECK(nb_grad(a) == NULL);
    /* recording again once re-enabled */
    nb_tensor *z = nb_square(a);
    CHECK(nb_requires_grad(z));
    CHECK(nb_backward(z, NULL) == 0);
    CHECK_NEAR(gat(a, 0), 4.0, 0);
}

/* detach: same values, a leaf without grad, nothing flows through it */
static void detach(void) {
    const double xv[] = {1.5, -2.0};
    nb_tensor *x = nb_vector(xv, 2);
    nb_tensor *h = nb_exp(x);
    nb_tensor *d = nb_detach(h);
    CHECK(d && nb_is_leaf(d) && !nb_requires_grad(d) && nb_num_parents(d) == 0);
    CHECK(d && nb_numel(d) == 2 && nb_ndim(d) == 1);
    if (d)
        for (int i = 0; i < 2; i++) CHECK_NEAR(nb_data(d)[i], exp(xv[i]), 0);
    nb_tensor *y = nb_sum(nb_prod(h, d)); /* d/dx = exp(x) * d only */
    CHECK(nb_backward(y, NULL) == 0);
    for (int i = 0; i < 2; i++) CHECK_NEAR(gat(x, i), exp(xv[i]) * exp(xv[i]), 1e-12);
    CHECK(nb_grad(d) == NULL);
}

/* backward(t, NULL) on a non-scalar uses ones; a seed must have t's shape */
static void seeds(void) {
    const double wv[] = {1, 2, 3, 4, 5, 6}, xv[] = {1, -1, 2};
    nb_tensor *W = nb_matrix(wv, 2, 3);
    nb_tensor *x = nb_column(xv, 3);
    nb_tensor *y = nb_matmul(W, x); /* (2, 1) */
    CHECK(nb_backward(y, NULL) == 0);
    for (int j = 0; j < 3; j++) CHECK_NEAR(gat(x, j), wv[j] + wv[3 + j], 0);
    for (int i = 0; i < 6; i++) CHECK_NEAR(gat(W, i), xv[i % 3], 0);

    nb_zero_grad(x);
    nb_zero_grad(W);
    const int64_t bad_shape[] = {1, 2};
    nb_tensor *bad = nb_ones(2, bad_shape);
    nb_clear_error();
    CHECK(nb_backward(y, bad) == -1);
    CHECK(nb_last_error() && strncmp(nb_last_error(), "backward", 8) == 0);
    nb_tensor *bad2 = nb_ones(1, (const int64_t[]){2});
    CHECK(nb_backward(y, bad2) == -1);
    nb_clear_error();
    for (int j = 0; j < 3; j++) CHECK_NEAR(gat(x, j), 0.0, 0); /* nothing was added */
    /* a 0-d output accepts a 0-d seed */
    nb_tensor *s = nb_sum(y);
    CHECK(nb_backward(s, nb_scalar(2.0)) == 0);
    for (int j = 0; j < 3; j++) CHECK_NEAR(gat(x, j), 2 * (wv[j] + wv[3 + j]), 0);
    nb_clear_error();
    CHECK(nb_backward(NULL, NULL) == -1);
    nb_clear_error();
}

/* the graph's structure as recorded */
static void structure(void) {
    nb_names_reset();
    nb_tensor *a = nb_scalar(1.0), *b = nb_scalar(2.0);
    nb_tensor *c = nb_add(a, b);
    nb_tensor *d = nb_sin(c);
    CHECK(nb_is_leaf(a) && !nb_is_leaf(c));
    CHECK(nb_num_parents(a) == 0);
    CHECK(nb_num_parents(c) == 2 && nb_parent(c, 0) == a && nb_parent(c, 1) == b);
    CHECK(nb_num_parents(d) == 1 && nb_parent(d, 0) == c);
    CHECK(nb_parent(d, 1) == NULL && nb_parent(d, -1) == NULL);
    CHECK_STR(nb_op_name(c), "add");
    CHECK_STR(nb_op_name(d), "sin");
    nb_set_name(d, "my_output");
    CHECK_STR(nb_name(d), "my_output");

    /* the DOT of the graph names every tensor and op */
    CHECK(nb_backward(d, NULL) == 0);
    FILE *f = tmpfile();
    CHECK(f != NULL);
    if (!f) return;
    CHECK(nb_dot(d, f) == 0);
    long n = ftell(f);
    rewind(f);
    char *text = calloc((size_t)(n > 0 ? n : 0) + 1, 1);
    size_t got = fread(text, 1, (size_t)(n > 0 ? n : 0), f);
    fclose(f);
    text[got] = 0;
    CHECK(strstr(text, "digraph") != NULL);
    CHECK(strstr(text, "in:0") != NULL && strstr(text, "in:1") != NULL);
    CHECK(strstr(text, "add:0") != NULL && strstr(text, "my_output") != NULL);
    CHECK(strstr(text, "->") != NULL);
    free(text);
}

/* A chain of a million ops: backward and release must not recurse. */
static void long_chain(void) {
    nb_mem_stats before, after;
    nb_memory_stats(&before);
    const int N = 1000000;
    const double r = 1.000001;
    nb_tensor *x = nb_scalar(0.5);
    nb_tensor *keep = NULL;
    size_t mark = nb_scope_begin();
    nb_tensor *y = x;
    for (int i = 0; i < N && y; i++) y = nb_scale(y, r);
    CHECK(y != NULL);
    if (y) {
        double want = 0.5 * pow(r, N), dwant = pow(r, N);
        CHECK(fabs(nb_item(y) - want) <= 1e-8 * want);
        CHECK(nb_backward(y, NULL) == 0);
        CHECK(fabs(gat(x, 0) - dwant) <= 1e-8 * dwant);
        keep = nb_retain(y); /* the whole chain hangs from y after the scope */
    }
    nb_scope_end(mark);
    nb_mem_stats mid;
    nb_memory_stats(&mid);
    CHECK(mid.live_tensors - before.live_tensors >= N); /* y holds the chain */
    nb_release(keep); /* the last reference: a million nodes freed, iteratively */
    nb_memory_stats(&mid);
    CHECK(mid.live_tensors - before.live_tensors <= 2);
    nb_tensor *second = NULL;
    /* an add chain too, with a constant that needs no grad */
    mark = nb_scope_begin();
    nb_tensor *k = nb_scalar(1e-6);
    nb_set_requires_grad(k, false);
    nb_tensor *z = x;
    for (int i = 0; i < N && z; i++) z = nb_add(z, k);
    CHECK(z != NULL);
    if (z) {
        CHECK_NEAR(nb_item(z), 0.5 + N * 1e-6, 1e-9);
        nb_zero_grad(x);
        CHECK(nb_backward(z, NULL) == 0);
        CHECK_NEAR(gat(x, 0), 1.0, 0);
        second = nb_retain(z);
    }
    nb_scope_end(mark);
    nb_release(second);
    nb_memory_stats(&after);
    /* x (made after `before` was read, in main's scope) and its gradient are
       the only survivors */
    CHECK(after.live_tensors - before.live_tensors <= 2);
    CHECK(after.live_tensors - before.live_tensors >= 1);
}

/* backward started on a leaf: its own gradient is the seed */
static void leaf_backward(void) {
    const double xv[] = {1, 2};
    nb_tensor *x = nb_vector(xv, 2);
    CHECK(nb_backward(x, NULL) == 0);
    CHECK_NEAR(gat(x, 0), 1.0, 0);
    CHECK_NEAR(gat(x, 1), 1.0, 0);
    CHECK(nb_backward(x, nb_vector((const double[]){3, -4}, 2)) == 0);
    CHECK_NEAR(gat(x, 0), 4.0, 0);
    CHECK_NEAR(gat(x, 1), -3.0, 0);
}

/* independent graphs built and differentiated in several threads at once */
typedef struct job {
    double x0;
    int ok;
} job;
static void *worker(void *arg) {
    job *j = arg;
    j->ok = 1;
    for (int rep = 0; rep < 200; rep++) {
        size_t mark = nb_scope_begin();
        nb_tensor *x = nb_full(2, (const int64_t[]){8, 8}, j->x0);
        nb_tensor *y = nb_sum(nb_prod(nb_sin(x), nb_matmul(x, x))); /* sum_ij sin(x_ij) (x x)_ij */
        if (!y || nb_backward(y, NULL) != 0) j->ok = 0;
        else {
            /* every element: d/dx [sin(x) * 8x^2] summed over 64 entries
               plus the matmul coupling; with all x equal the gradient of each
               element is cos(x) 8x^2 + 2 * 8 x sin(x) */
            double x0 = j->x0, want = cos(x0) * 8 * x0 * x0 + 16 * x0 * sin(x0);
            for (int i = 0; i < 64; i++)
                if (fabs(nb_data(nb_grad(x))[i] - want) > 1e-10) j->ok = 0;
        }
        nb_scope_end(mark);
    }
    nb_cleanup();
    return NULL;
}
static void threads(void) {
    pthread_t th[4];
    job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i].x0 = 0.1 + 0.3 * i;
        jobs[i].ok = 0;
        CHECK(pthread_create(&th[i], NULL, worker, &jobs[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        CHECK(pthread_join(th[i], NULL) == 0);
        CHECK(jobs[i].ok);
    }
}

/* nb_retain_grad: interior tensors keep their gradient, named "<op>_grad".
   f = b p, p = s d, s = a + b, d = a - b at a = 1, b = 2: s = 3, d = -1, p = -3,
   so df/dp = b = 2, df/ds = b d = -2, df/dd = b s = 6, df/df = 1. */
static void retained_grads(void) {
    nb_tensor *a = nb_scalar(1.0), *b = nb_scalar(2.0);
    nb_tensor *s = nb_add(a, b), *d = nb_sub(a, b), *p = nb_prod(s, d), *f = nb_prod(b, p);
    nb_retain_grad(s);
    nb_retain_grad(d);
    nb_retain_grad(p);
    nb_retain_grad(f);
    CHECK(nb_backward(f, NULL) == 0);
    CHECK(nb_grad(s) && nb_grad(d) && nb_grad(p) && nb_grad(f));
    if (!nb_grad(s) || !nb_grad(d) || !nb_grad(p) || !nb_grad(f)) return;
    CHECK_NEAR(nb_item(nb_grad(p)), 2.0, 1e-15);
    CHECK_NEAR(nb_item(nb_grad(s)), -2.0, 1e-15);
    CHECK_NEAR(nb_item(nb_grad(d)), 6.0, 1e-15);
    CHECK_NEAR(nb_item(nb_grad(f)), 1.0, 1e-15);
    CHECK_NEAR(nb_item(nb_grad(a)), 4.0, 1e-15);
    CHECK_NEAR(nb_item(nb_grad(b)), -11.0, 1e-15);
    CHECK_STR(nb_name(nb_grad(s)), "add_grad");
    CHECK_STR(nb_name(nb_grad(d)), "sub_grad");
    CHECK_STR(nb_name(nb_grad(p)), "prod_grad");
    /* kept gradients accumulate like a leaf's; the others are not kept */
    CHECK(nb_backward(f, NULL) == 0);
    CHECK_NEAR(nb_item(nb_grad(s)), -4.0, 1e-15);
    nb_tensor *q = nb_square(a);
    CHECK(nb_backward(nb_sum(q), NULL) == 0);
    CHECK(nb_grad(q) == NULL);
    nb_retain_grad(NULL);
    CHECK(nb_last_error() != NULL);
    nb_clear_error();
}

int main(void) {
    size_t mark = nb_scope_begin();
    retained_grads();
    diamond();
    accumulation();
    no_double_count();
    requires_grad();
    no_grad_mode();
    detach();
    seeds();
    structure();
    long_chain();
    leaf_backward();
    threads();
    nb_scope_end(mark);
    nb_cleanup();
    nb_mem_stats st;
    nb_memory_stats(&st);
    CHECK(st.live_tensors == 0);
    CHECK(st.live_bytes == 0);
    return check_report("graph");
}
