/*
 * Threads: independent graphs built and differentiated in several threads at
 * once give, bit for bit, the results of the same work run sequentially; and
 * the run is clean under ThreadSanitizer (.ci/reliability.sh builds this test
 * with -DNABLA_SANITIZE=thread).
 *
 * Each job builds its own small network from leaves, and for many iterations
 * (each in a scope) runs a forward pass through most ops, a backward pass, an
 * SGD update on the leaves' data, and now and then nb_autograd with
 * create_graph (a double backward), forward mode, a Jacobian and a Hessian;
 * then the same with src/nn (a store, an MLP, Adam, cross-entropy, save and
 * load).  Names, grad mode, anomaly detection and the error are per thread,
 * and so is part of the check: every job resets its name counters, turns
 * grad mode off and on, and reads its own errors.
 *
 * What is shared, as nabla.h allows: the data of one tensor made before the
 * threads start, which every job reads (nb_data, nb_shape) and copies.  Then
 * the whole run is repeated with nb_set_num_threads(2), so that large kernels
 * also split their work over helper threads while the jobs run.
 */
#include "internal.h"

#include "check.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NT 4         /* threads              */
#define ITERS 40     /* iterations of a job  */
#define OUTN 2048    /* results of a job     */

static nb_tensor *shared; /* read by every job, modified by none */

typedef struct {
    int id;
    double out[OUTN];
    int n;
    int64_t live_after; /* live tensors the job left in its thread after nb_cleanup */
    int errors;         /* calls that failed unexpectedly */
} job;

static void rec(job *j, double v) {
    if (j->n < OUTN) j->out[j->n++] = v;
}

static void rec_tensor(job *j, const nb_tensor *t) {
    if (!t) {
        j->errors++;
        rec(j, -999.0);
        return;
    }
    for (int64_t i = 0; i < nb_numel(t) && i < 64; i++) rec(j, nb_data(t)[i]);
}

static void rec_name(job *j, const nb_tensor *t) {
    const char *s = t ? nb_name(t) : "";
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    rec(j, (double)(h >> 11));
}

static nb_tensor *f_small(nb_tensor *x, void *c) {
    (void)c;
    return nb_sum(nb_prod(nb_sin(x), nb_exp(nb_scale(x, 0.5))));
}
static nb_tensor *f_vec(nb_tensor *x, void *c) {
    (void)c;
    return nb_softmax(nb_tanh(x), 0);
}

static void core_job(job *j) {
    int id = j->id;
    int64_t s1[2] = {6, 16}, s2[1] = {16}, s3[2] = {16, 4}, s4[1] = {4};
    nb_tensor *P[4] = {nb_retain(nb_randn(2, s1, 100 + id)), nb_retain(nb_randn(1, s2, 200 + id)),
                       nb_retain(nb_randn(2, s3, 300 + id)), nb_retain(nb_randn(1, s4, 400 + id))};
    /* a private copy of the shared tensor's data: reading it is allowed */
    nb_tensor *S = nb_retain(nb_new(nb_data(shared), nb_ndim(shared), nb_shape(shared)));
    nb_set_requires_grad(S, false);
    for (int it = 0; it < ITERS; it++) {
        size_t mark = nb_scope_begin();
        int64_t sx[2] = {8, 6};
        nb_tensor *x = nb_randn(2, sx, (uint64_t)(id * 100000 + it));
        nb_set_requires_grad(x, false);
        /* (8, 6) -> (8, 16) -> (8, 4) */
        nb_tensor *h = nb_tanh(nb_add(nb_matmul(x, P[0]), P[1]));
        nb_tensor *h2 = nb_maximum(nb_relu(h), nb_scale(h, 0.1));
        nb_tensor *logits = nb_add(nb_matmul(h2, P[2]), P[3]);
        nb_tensor *lp = nb_log_softmax(logits, 1);
        nb_tensor *loss = nb_neg(nb_mean(nb_max_axis(lp, 1, false)));
        loss = nb_add(loss, nb_scale(nb_sum(nb_square(P[0])), 1e-3));
        loss = nb_add(loss, nb_mean(nb_prod(nb_softmax(logits, 0), nb_sigmoid(logits))));
        /* the shared data enters through the private copy: (16, 4) */
        loss = nb_add(loss, nb_scale(nb_sum(nb_prod(nb_reshape(S, 2, (int64_t[]){16, 4}), P[2])), 1e-2));
        loss = nb_add(loss, nb_mean(nb_sqrt(nb_add(nb_square(nb_sum_axis(h, 0, true)), nb_scalar(1.0)))));
        loss = nb_add(loss, nb_mean(nb_div(nb_sum_to(nb_broadcast_to(P[3], 2, (int64_t[]){3, 4}), 1,
                                                     (int64_t[]){4}),
                                           nb_add(nb_exp(P[3]), nb_scalar(1.0)))));
        loss = nb_add(loss, nb_mean(nb_log(nb_add(nb_pow(nb_cos(P[1]), 2.0), nb_scalar(1.0)))));
        rec_name(j, loss);
        rec(j, nb_item(loss));
        if (nb_backward(loss, NULL) != 0) j->errors++;
        if (it % 8 == 3) {
            /* double backward: d/dW2 |d loss / d W2|^2 */
            nb_tensor *g = NULL, *hh = NULL;
            if (nb_autograd(1, &loss, NULL, 1, &P[2], &g, true) != 0) j->errors++;
            nb_tensor *gn = nb_sum(nb_square(g));
            if (nb_autograd(1, &gn, NULL, 1, &P[2], &hh, false) != 0) j->errors++;
            rec_tensor(j, hh);
            /* forward mode: the tangent of the logits along a direction of x */
            nb_tensor *xd = nb_dual(x, nb_randn(2, sx, (uint64_t)it));
            nb_tensor *yd = nb_add(nb_matmul(nb_tanh(nb_add(nb_matmul(xd, P[0]), P[1])), P[2]), P[3]);
            rec_tensor(j, nb_tangent(yd));
            /* grad mode is per thread */
            bool prev = nb_set_grad_enabled(false);
            nb_tensor *ng = nb_exp(P[0]);
            if (nb_requires_grad(ng) || !prev) j->errors++;
            nb_set_grad_enabled(true);
            /* the error is per thread */
            nb_clear_error();
            if (nb_add(P[0], P[2]) != NULL || !nb_last_error() ||
                strncmp(nb_last_error(), "add:", 4) != 0)
                j->errors++;
            nb_clear_error();
        }
        /* the update, after every use of this step's graph (a mutation before
           a later backward would be refused) */
        for (int k = 0; k < 4; k++) {
            double *w = nb_data_mut(P[k]);
            nb_tensor *g = nb_grad(P[k]);
            if (!g) {
                j->errors++;
                continue;
            }
            for (int64_t i = 0; i < nb_numel(P[k]); i++) w[i] -= 0.05 * nb_data(g)[i];
            nb_zero_grad(P[k]);
        }
        if (it % 16 == 5) {
            nb_tensor *v = nb_randn(1, (int64_t[]){5}, (uint64_t)(id + it));
            rec_tensor(j, nb_jacobian(f_vec, v, NULL));
            rec_tensor(j, nb_hessian(f_small, v, NULL));
            rec_tensor(j, nb_hvp(f_small, v, nb_ones(1, (int64_t[]){5}), NULL));
        }
        nb_scope_end(mark);
    }
    for (int k = 0; k < 4; k++) {
        rec_tensor(j, P[k]);
        nb_release(P[k]);
    }
    nb_release(S);
}

static void nn_job(job *j) {
    int id = j->id;
    nb_params *P = nb_params_new();
    int64_t sizes[4] = {5, 12, 12, 3};
    nb_mlp *net = nb_mlp_new(P, "mlp", 4, sizes, id % 2 ? NB_ACT_TANH : NB_ACT_RELU, NB_INIT_AUTO,
                             (uint64_t)id);
    nb_optim *opt = nb_adam_new(P, 1e-2, 0.9, 0.999, 1e-8, 0.0);
    if (!P || !net || !opt) j->errors++;
    int64_t sx[2] = {16, 5};
    for (int it = 0; it < ITERS / 2 && net && opt; it++) {
        size_t mark = nb_scope_begin();
        nb_tensor *x = nb_randn(2, sx, (uint64_t)(7 * id + it));
        nb_set_requires_grad(x, false);
        double lab[16];
        for (int i = 0; i < 16; i++) lab[i] = (double)((i + it + id) % 3);
        nb_tensor *y = nb_vector(lab, 16);
        nb_tensor *loss = nb_cross_entropy(nb_mlp_forward(net, x), y);
        rec(j, nb_item(loss));
        if (nb_backward(loss, NULL) != 0 || nb_optim_step(opt) != 0) j->errors++;
        nb_params_zero_grad(P);
        nb_scope_end(mark);
    }
    /* save and load back (each job its own file) */
    char path[96];
    snprintf(path, sizeof path, "/tmp/nabla_threads_%d_%d.nbp", (int)getpid(), id);
    if (nb_params_save(P, path) != 0) j->errors++;
    double *d = nb_params_data(P);
    int64_t n = nb_params_numel(P);
    double first = n ? d[0] : 0;
    if (n) d[0] = 12345.0;
    if (nb_params_load(P, path) != 0) j->errors++;
    if (n && d[0] != first) j->errors++;
    remove(path);
    for (int64_t i = 0; i < n; i += 7) rec(j, d[i]);
    nb_optim_free(opt);
    nb_mlp_free(net);
    nb_params_free(P);
}

/* a large element-wise chain and product: split over helper threads when
   nb_set_num_threads(2) (the kernels' grain is 65536 elements) */
static void big_job(job *j) {
    size_t mark = nb_scope_begin();
    int64_t s[2] = {300, 300};
    nb_tensor *a = nb_randn(2, s, (uint64_t)(j->id + 1)), *b = nb_randn(2, s, (uint64_t)(j->id + 2));
    nb_tensor *y = nb_sum(nb_prod(nb_tanh(nb_add(a, b)), nb_exp(nb_scale(nb_matmul(a, b), 0.01))));
    rec(j, nb_item(y));
    if (nb_backward(y, NULL) != 0) j->errors++;
    double acc = 0;
    const double *g = nb_data(nb_grad(a));
    for (int64_t i = 0; g && i < 300 * 300; i++) acc += g[i];
    rec(j, acc);
    nb_scope_end(mark);
}

static void *run_job(void *p) {
    job *j = p;
    j->n = 0;
    j->errors = 0;
    nb_mem_stats st;
    nb_memory_stats(&st);
    int64_t before = st.live_tensors; /* main holds `shared` */
    nb_names_reset();
    nb_set_anomaly_detection(j->id % 2 == 1); /* per thread; nothing here produces NaN */
    size_t top = nb_scope_begin();
    core_job(j);
    nn_job(j);
    big_job(j);
    nb_scope_end(top);
    nb_set_anomaly_detection(false);
    nb_cleanup();
    nb_memory_stats(&st);
    j->live_after = st.live_tensors - before;
    return NULL;
}

static job seq[NT], par[NT];

static void start_parallel(void) {
    pthread_t th[NT];
    for (int i = 0; i < NT; i++) {
        memset(&par[i], 0, sizeof par[i]);
        par[i].id = i;
        CHECK(pthread_create(&th[i], NULL, run_job, &par[i]) == 0);
    }
    for (int i = 0; i < NT; i++) pthread_join(th[i], NULL);
}

static void compare(const char *what) {
    for (int i = 0; i < NT; i++) {
        CHECK(par[i].errors == 0);
        CHECK(par[i].live_after == 0);
        CHECK(par[i].n == seq[i].n);
        bool same = par[i].n == seq[i].n &&
                    memcmp(par[i].out, seq[i].out, (size_t)seq[i].n * sizeof(double)) == 0;
        if (!same) {
            int k = 0;
            while (k < seq[i].n && memcmp(&par[i].out[k], &seq[i].out[k], sizeof(double)) == 0) k++;
            fprintf(stderr, "%s: job %d differs from the sequential run at result %d of %d\n", what,
                    i, k, seq[i].n);
        }
        CHECK(same);
    }
    printf("  %s: %d threads x %d results each, identical to the sequential run\n", what, NT,
           seq[0].n);
}

int main(void) {
    int64_t ss[2] = {8, 8};
    shared = nb_retain(nb_randn(2, ss, 42));
    nb_set_requires_grad(shared, false);

    /* the threads first, so that they also race for every lazily initialised
       piece of global state (a table built on first use, ...) */
    start_parallel();
    /* the sequential reference, in this thread */
    for (int i = 0; i < NT; i++) {
        seq[i].id = i;
        run_job(&seq[i]);
        CHECK(seq[i].errors == 0);
        CHECK(seq[i].live_after == 0);
    }
    compare("parallel, 1 kernel thread");
    start_parallel();
    compare("parallel again");
    int prev = nb_set_num_threads(2);
    start_parallel();
    compare("parallel, 2 kernel threads each");
    nb_set_num_threads(prev);

    /* results do not depend on the kernel thread count either */
    job one = {.id = 9}, two = {.id = 9};
    run_job(&one);
    nb_set_num_threads(2);
    run_job(&two);
    nb_set_num_threads(1);
    CHECK(one.n == two.n && memcmp(one.out, two.out, (size_t)one.n * sizeof(double)) == 0);

    nb_release(shared);
    nb_cleanup();
    nb_mem_stats st;
    nb_memory_stats(&st);
    CHECK(st.live_tensors == 0);
    return check_report("test_threads");
}
