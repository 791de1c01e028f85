/* Pins the plain backward's shortcuts, so that none can stop working
   unnoticed: each is seen through the number of tensors a backward makes
   (nb_mem_stats.tensors_made), and the gradients stay those of the
   create_graph sweep (which takes no shortcut) and of the formulas.
     - writable g (a rule overwrites the gradient nobody else holds) and the
       fused unary gradient (one pass, one buffer): a chain of 40 tanh makes
       no tensor per node in its backward;
     - accumulate-into (a rule adds straight into an input's private
       accumulator): prod's b gradient goes into b's accumulator, no temporary;
     - prod's fused two-output rule with b's gradient into its accumulator. */
#include "check.h"
#include "nabla.h"

#include <math.h>
#include <stdlib.h>

static int64_t made(void) {
    nb_mem_stats st;
    nb_memory_stats(&st);
    return st.tensors_made;
}

static void chain(void) {
    size_t m = nb_scope_begin();
    int64_t n = 1000;
    nb_tensor *x = nb_randn(1, &n, 3), *y = x;
    for (int k = 0; k < 40; k++) y = nb_tanh(y);
    nb_tensor *s = nb_sum(y);
    int64_t before = made();
    CHECK(nb_backward(s, NULL) == 0);
    int64_t per_backward = made() - before;
    CHECK(per_backward <= 4); /* the seed and the sum's spread; none per tanh */
    if (getenv("NB_VERBOSE") || per_backward > 4) fprintf(stderr, "tanh chain: %lld tensors in the backward\n", (long long)per_backward);
    nb_tensor *g = NULL; /* the same gradient through the general sweep */
    CHECK(nb_autograd(1, &s, NULL, 1, &x, &g, true) == 0);
    double worst = 0;
    for (int64_t i = 0; g && i < n; i++) worst = fmax(worst, fabs(nb_data(g)[i] - nb_data(nb_grad(x))[i]));
    CHECK(g && worst < 1e-14);
    nb_scope_end(m);
}

static void branches(void) {
    size_t m = nb_scope_begin();
    int64_t n = 1000;
    nb_tensor *x = nb_randn(1, &n, 5), *s = NULL;
    for (int k = 0; k < 20; k++) {
        nb_tensor *b = nb_tanh(nb_scale(x, 0.1 * (k + 1)));
        s = s ? nb_add(s, b) : b;
    }
    nb_tensor *l = nb_sum(s);
    int64_t before = made();
    CHECK(nb_backward(l, NULL) == 0);
    int64_t per_backward = made() - before;
    CHECK(per_backward <= 21); /* about one per branch (the scale's), not three */
    if (getenv("NB_VERBOSE") || per_backward > 21) fprintf(stderr, "branches: %lld tensors in the backward\n", (long long)per_backward);
    double worst = 0; /* d/dx sum_k tanh(c_k x) = sum_k c_k (1 - tanh^2) */
    for (int64_t i = 0; i < n; i++) {
        double xi = nb_data(x)[i], want = 0;
        for (int k = 0; k < 20; k++) {
            double c = 0.1 * (k + 1), t = tanh(c * xi);
            want += c * (1 - t * t);
        }
        worst = fmax(worst, fabs(nb_data(nb_grad(x))[i] - want));
    }
    CHECK(worst < 1e-12);
    nb_scope_end(m);
}

static void product(void) {
    size_t m = nb_scope_begin();
    int64_t n = 1000;
    nb_tensor *a = nb_randn(1, &n, 7), *b = nb_randn(1, &n, 8);
    nb_tensor *l = nb_sum(nb_add(nb_prod(a, b), nb_prod(nb_tanh(a), b)));
    int64_t before = made();
    CHECK(nb_backward(l, NULL) == 0);
    int64_t per_backward = made() - before;
    CHECK(per_backward <= 4);
    if (getenv("NB_VERBOSE") || per_backward > 4) fprintf(stderr, "product: %lld tensors in the backward\n", (long long)per_backward);
    for (int64_t i = 0; i < n; i++) {
        double av = nb_data(a)[i], bv = nb_data(b)[i], t = tanh(av);
        CHECK_NEAR(nb_data(nb_grad(b))[i], av + t, 1e-14);
        CHECK_NEAR(nb_data(nb_grad(a))[i], bv + bv * (1 - t * t), 1e-14);
    }
    nb_scope_end(m);
}

int main(void) {
    chain();
    branches();
    product();
    nb_cleanup();
    return check_report("shortcuts");
}
