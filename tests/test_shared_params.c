/* Several threads, one set of parameters: each worker differentiates its own
   graph over its own part of a batch through aliases of the shared W and b
   (nb_alias: the same values, its own gradient); the owner then adds the
   aliases' gradients into W's and b's (nb_accumulate_grad).  The result
   equals the gradient of one sequential graph over the whole batch, and
   ThreadSanitizer (CI) sees no race.  Also the hand-over rule: a tensor
   retained in one thread, its scope ended there, then used and released by
   another. */
#include "check.h"
#include "nabla.h"

#include <pthread.h>

#define WORKERS 4
#define ROWS 16 /* per worker */
#define IN 6
#define OUT 3

typedef struct {
    nb_tensor *W, *b; /* this worker's aliases */
    const double *x;  /* its rows (ROWS, IN) */
    int ok;
} work;

static nb_tensor *loss_of(nb_tensor *W, nb_tensor *b, const double *x, int64_t rows) {
    nb_tensor *X = nb_matrix(x, rows, IN);
    nb_set_requires_grad(X, false);
    nb_tensor *h = nb_tanh(nb_add(nb_matmul_bt(X, W), b));
    return nb_sum(nb_square(h));
}

static void *worker(void *p) {
    work *w = p;
    size_t m = nb_scope_begin();
    for (int rep = 0; rep < 20; rep++) { /* gradients accumulate over repetitions */
        size_t s = nb_scope_begin();
        w->ok &= nb_backward(loss_of(w->W, w->b, w->x, ROWS), NULL) == 0;
        nb_scope_end(s);
    }
    nb_scope_end(m);
    nb_cleanup();
    return NULL;
}

static void *handover(void *p) {
    nb_tensor *t = p;
    size_t m = nb_scope_begin();
    nb_tensor *y = nb_scale(t, 2.0);
    int ok = y && nb_item(y) == 14.0;
    nb_scope_end(m);
    nb_release(t);
    nb_cleanup();
    return (void *)(intptr_t)ok;
}

int main(void) {
    static double x[WORKERS * ROWS * IN];
    for (int i = 0; i < WORKERS * ROWS * IN; i++) x[i] = ((i * 37) % 17) / 8.0 - 1.0;
    nb_tensor *W = nb_randn(2, (int64_t[]){OUT, IN}, 1), *b = nb_randn(1, (int64_t[]){OUT}, 2);
    work w[WORKERS];
    pthread_t th[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        w[i] = (work){nb_alias(W), nb_alias(b), x + i * ROWS * IN, 1};
        CHECK(w[i].W && w[i].b && nb_data(w[i].W) == nb_data(W)); /* shared, not copied */
    }
    for (int i = 0; i < WORKERS; i++) CHECK(pthread_create(&th[i], NULL, worker, &w[i]) == 0);
    for (int i = 0; i < WORKERS; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < WORKERS; i++) {
        CHECK(w[i].ok);
        CHECK(nb_accumulate_grad(W, nb_grad(w[i].W)) == 0);
        CHECK(nb_accumulate_grad(b, nb_grad(w[i].b)) == 0);
    }
    /* the same gradient, sequentially, over the whole batch */
    nb_tensor *W2 = nb_copy(W), *b2 = nb_copy(b);
    for (int rep = 0; rep < 20; rep++) {
        size_t s = nb_scope_begin();
        CHECK(nb_backward(loss_of(W2, b2, x, WORKERS * ROWS), NULL) == 0);
        nb_scope_end(s);
    }
    for (int64_t i = 0; i < OUT * IN; i++)
        CHECK_NEAR(nb_data(nb_grad(W))[i], nb_data(nb_grad(W2))[i], 1e-11 * (1 + fabs(nb_data(nb_grad(W2))[i])));
    for (int64_t i = 0; i < OUT; i++)
        CHECK_NEAR(nb_data(nb_grad(b))[i], nb_data(nb_grad(b2))[i], 1e-11 * (1 + fabs(nb_data(nb_grad(b2))[i])));
    CHECK(nb_accumulate_grad(W, b) == -1 && strstr(nb_last_error(), "accumulate_grad: a gradient of shape (3,)"));
    nb_clear_error();

    /* hand-over: retain, end the scope here, then the other thread owns it */
    size_t m = nb_scope_begin();
    nb_tensor *t = nb_retain(nb_scalar(7.0));
    nb_scope_end(m);
    pthread_t h;
    void *ok = NULL;
    CHECK(pthread_create(&h, NULL, handover, t) == 0);
    pthread_join(h, &ok);
    CHECK(ok != NULL);
    nb_cleanup();
    return check_report("shared_params");
}
