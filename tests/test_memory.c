/* Memory: a training loop runs at constant memory (the step's graph is freed
   by its scope and served from the cache), retain/release keep a tensor past
   its scope, and the last release frees. */
#include "nabla.h"
#include "check.h"

#include <math.h>
#include <stdint.h>

#define NS 16 /* samples */
#define NI 4  /* inputs  */
#define NH 8  /* hidden  */

static nb_tensor *param(int nd, const int64_t *shape, uint64_t seed, double scale) {
    nb_tensor *p = nb_randn(nd, shape, seed);
    if (p)
        for (int64_t i = 0; i < nb_numel(p); i++) nb_data_mut(p)[i] *= scale;
    return p;
}

static void sgd(nb_tensor *p, double lr) {
    nb_tensor *g = nb_grad(p);
    if (!g) return;
    double *d = nb_data_mut(p);
    for (int64_t i = 0; i < nb_numel(p); i++) d[i] -= lr * nb_data(g)[i];
    nb_zero_grad(p);
}

static void training_steady_state(void) {
    size_t outer = nb_scope_begin();
    nb_tensor *x = nb_randn(2, (const int64_t[]){NS, NI}, 1);
    nb_set_requires_grad(x, false);
    nb_tensor *y = nb_zeros(2, (const int64_t[]){NS, 1});
    nb_set_requires_grad(y, false);
    for (int i = 0; i < NS; i++) { /* a smooth target */
        const double *r = nb_data(x) + i * NI;
        nb_data_mut(y)[i] = sin(r[0]) + 0.5 * r[1] * r[2] - 0.3 * r[3];
    }
    nb_tensor *W1 = param(2, (const int64_t[]){NI, NH}, 2, 0.5);
    nb_tensor *b1 = nb_zeros(1, (const int64_t[]){NH});
    nb_tensor *W2 = param(2, (const int64_t[]){NH, 1}, 3, 0.5);
    nb_tensor *b2 = nb_zeros(1, (const int64_t[]){1});
    nb_tensor *params[] = {W1, b1, W2, b2};

    nb_mem_stats at100 = {0}, at10000 = {0}, now;
    double first_loss = NAN, last_loss = NAN;
    int failures = 0;
    for (int step = 1; step <= 10000; step++) {
        size_t mark = nb_scope_begin();
        nb_tensor *h = nb_tanh(nb_add(nb_matmul(x, W1), b1));          /* (NS, NH) */
        nb_tensor *out = nb_add(nb_matmul(h, W2), b2);                  /* (NS, 1)  */
        nb_tensor *loss = nb_mean(nb_square(nb_sub(out, y)));           /* ()       */
        if (!loss || nb_backward(loss, NULL) != 0) failures++;
        else {
            if (step == 1) first_loss = nb_item(loss);
            last_loss = nb_item(loss);
        }
        for (int k = 0; k < 4; k++) sgd(params[k], 0.05);
        nb_scope_end(mark);
        if (step == 100) nb_memory_stats(&at100);
        if (step == 10000) nb_memory_stats(&at10000);
        if (failures > 3) break;
    }
    CHECK(failures == 0);
    CHECK(last_loss < 0.5 * first_loss); /* it trains */
    printf("memory: loss %.6f -> %.6f; at step 100: %lld tensors, %lld bytes, %lld system "
           "allocs; at step 10000: %lld tensors, %lld bytes, %lld system allocs; peak %lld\n",
           first_loss, last_loss, (long long)at100.live_tensors, (long long)at100.live_bytes,
           (long long)at100.system_allocs, (long long)at10000.live_tensors,
           (long long)at10000.live_bytes, (long long)at10000.system_allocs,
           (long long)at10000.peak_bytes);
    CHECK(at100.live_tensors > 0);
    CHECK(at100.live_tensors == at10000.live_tensors);
    CHECK(at100.live_bytes == at10000.live_bytes);
    CHECK(at100.system_allocs == at10000.system_allocs);
    CHECK(at10000.peak_bytes >= at10000.live_bytes);
    /* 6 leaves (x, y, 4 parameters) and 4 gradients survive the steps */
    CHECK(at10000.live_tensors <= 12);

    nb_scope_end(outer);
    nb_memory_stats(&now);
    CHECK(now.live_tensors == 0);
    CHECK(now.live_bytes == 0);
    CHECK(now.cached_bytes > 0); /* freed blocks are kept ... */
    nb_trim();
    nb_memory_stats(&now);
    CHECK(now.cached_bytes == 0); /* ... until trimmed */
}

static void retain_release(void) {
    nb_mem_stats s0, s;
    nb_memory_stats(&s0);

    /* a leaf kept past its scope */
    size_t mark = nb_scope_begin();
    nb_tensor *t = nb_full(2, (const int64_t[]){3, 5}, 7.0);
    CHECK(nb_retain(t) == t);
    nb_scope_end(mark);
    nb_memory_stats(&s);
    CHECK(s.live_tensors == s0.live_tensors + 1);
    CHECK(t && nb_numel(t) == 15 && nb_data(t)[14] == 7.0);
    nb_release(t);
    nb_memory_stats(&s);
    CHECK(s.live_tensors == s0.live_tensors);
    CHECK(s.live_bytes == s0.live_bytes);

    /* an op's output keeps its parents alive */
    mark = nb_scope_begin();
    nb_tensor *a = nb_scalar(2.0), *b = nb_scalar(3.0);
    nb_tensor *c = nb_prod(a, b);
    nb_retain(c);
    nb_scope_end(mark);
    nb_memory_stats(&s);
    CHECK(s.live_tensors == s0.live_tensors + 3);
    CHECK(nb_backward(c, NULL) == 0); /* the graph is intact */
    CHECK(nb_grad(a) && nb_item(nb_grad(a)) == 3.0);
    nb_release(c);
    nb_memory_stats(&s);
    CHECK(s.live_tensors == s0.live_tensors);
    CHECK(s.live_bytes == s0.live_bytes);

    /* two references need two releases */
    mark = nb_scope_begin();
    nb_tensor *d = nb_ones(1, (const int64_t[]){4});
    nb_retain(d);
    nb_retain(d);
    nb_scope_end(mark);
    nb_release(d);
    nb_memory_stats(&s);
    CHECK(s.live_tensors == s0.live_tensors + 1);
    CHECK(nb_data(d)[3] == 1.0);
    nb_release(d);
    nb_memory_stats(&s);
    CHECK(s.live_tensors == s0.live_tensors);

    /* nested scopes: the inner end keeps the outer scope's tensors */
    size_t m1 = nb_scope_begin();
    nb_tensor *o = nb_scalar(1.0);
    size_t m2 = nb_scope_begin();
    nb_tensor *i1 = nb_exp(o);
    (void)i1;
    nb_scope_end(m2);
    nb_memory_stats(&s);
    CHECK(s.live_tensors == s0.live_tensors + 1);
    CHECK(nb_item(o) == 1.0);
    nb_scope_end(m1);
    nb_memory_stats(&s);
    CHECK(s.live_tensors == s0.live_tensors);

    /* a tensor made with no scope open goes to the root scope, freed by nb_scope_end(0) */
    nb_tensor *r = nb_scalar(5.0);
    nb_memory_stats(&s);
    CHECK(s.live_tensors == s0.live_tensors + 1);
    CHECK(nb_item(r) == 5.0);
    nb_scope_end(0);
    nb_memory_stats(&s);
    CHECK(s.live_tensors == 0);
}

/* backward's temporaries are freed too: repeated backward on one graph */
static void backward_temporaries(void) {
    size_t mark = nb_scope_begin();
    nb_tensor *x = nb_randn(2, (const int64_t[]){5, 5}, 9);
    nb_tensor *l = nb_sum(nb_softmax(nb_matmul(x, nb_transpose(x)), 1));
    nb_mem_stats s1, s2;
    CHECK(nb_backward(l, NULL) == 0);
    nb_memory_stats(&s1);
    for (int i = 0; i < 100; i++) CHECK(nb_backward(l, NULL) == 0);
    nb_memory_stats(&s2);
    CHECK(s1.live_tensors == s2.live_tensors);
    CHECK(s1.live_bytes == s2.live_bytes);
    nb_scope_end(mark);
}

int main(void) {
    training_steady_state();
    retain_release();
    backward_temporaries();
    nb_cleanup();
    nb_mem_stats s;
    nb_memory_stats(&s);
    CHECK(s.live_tensors == 0 && s.live_bytes == 0 && s.cached_bytes == 0);
    return check_report("memory");
}
