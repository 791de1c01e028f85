/*
 * Allocation failure: the failure-injection hook nb__fail_alloc_after(N)
 * makes the N-th allocation from now fail (every tensor block and every
 * internal malloc goes through it).  For N = 1, 2, ... until a run completes,
 * each scenario below runs once with the N-th allocation failing and checks:
 *
 *   - the failure surfaces: a NULL / -1 / NaN result with a non-empty
 *     message that says "out of memory" (the first error is kept);
 *   - nothing changed: parameter values and gradients (or their absence) are
 *     bit for bit those from before the attempt; a store keeps its parameters;
 *   - nothing leaked: after nb_scope_end the live tensor count is back to
 *     its baseline (and LeakSanitizer, in the ASan build, sees no leak);
 *   - a run that completes gives bit for bit the reference result, even when
 *     the injected failure was absorbed somewhere on the way.
 *
 * Scenarios: a training step written with core ops (matmul, add, relu,
 * log_softmax, a cross-entropy-like loss, backward, SGD on leaf data), first
 * with no gradients yet and then with gradients accumulated; the same step
 * through src/nn (nb_mlp, nb_cross_entropy, Adam); nb_autograd with
 * create_graph followed by a double backward; building an MLP into a store;
 * loading a parameter file; reading IDX and CSV files.
 */
#include "internal.h"

#include "check.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int total_points; /* failure points covered, all scenarios */

static int64_t live(void) {
    nb_mem_stats s;
    nb_memory_stats(&s);
    return s.live_tensors;
}

/* after a failed attempt: the message is there and names the cause */
static void check_failure_msg(const char *scenario, int64_t n) {
    const char *m = nb_last_error();
    CHECK(m != NULL && m[0] != 0);
    if (m && !strstr(m, "out of memory")) {
        fprintf(stderr, "%s, N=%lld: the message does not report the failed allocation: %s\n",
                scenario, (long long)n, m);
        CHECK(0);
    }
}

/* disarms the hook; true when the armed failure happened */
static bool disarm(void) {
    bool fired = nb__fail_alloc_fired();
    nb__fail_alloc_after(0);
    return fired;
}

/* ---- a training step from core ops --------------------------------------------------- */
#define B 8   /* batch   */
#define D 5   /* inputs  */
#define H 7   /* hidden  */
#define C 3   /* classes */

typedef struct {
    nb_tensor *p[4]; /* W1 (D,H), b1 (H,), W2 (H,C), b2 (C,) */
    nb_tensor *x, *onehot;
} net;

static void net_make(net *n) {
    int64_t s0[2] = {D, H}, s1[1] = {H}, s2[2] = {H, C}, s3[1] = {C}, sx[2] = {B, D}, sy[2] = {B, C};
    n->p[0] = nb_retain(nb_randn(2, s0, 1));
    n->p[1] = nb_retain(nb_randn(1, s1, 2));
    n->p[2] = nb_retain(nb_randn(2, s2, 3));
    n->p[3] = nb_retain(nb_randn(1, s3, 4));
    n->x = nb_retain(nb_randn(2, sx, 5));
    nb_set_requires_grad(n->x, false);
    double oh[B * C] = {0};
    for (int i = 0; i < B; i++) oh[i * C + (i * 7) % C] = 1.0;
    n->onehot = nb_retain(nb_new(oh, 2, sy));
    nb_set_requires_grad(n->onehot, false);
}

static void net_free(net *n) {
    for (int i = 0; i < 4; i++) nb_release(n->p[i]);
    nb_release(n->x);
    nb_release(n->onehot);
}

/* stage reached: 0 forward, 1 backward, 2 done.  0 or -1. */
static int core_step(net *n, int *stage, double *loss_value) {
    *stage = 0;
    nb_tensor *h = nb_relu(nb_add(nb_matmul(n->x, n->p[0]), n->p[1]));       /* (B, H) */
    nb_tensor *logits = nb_add(nb_matmul(h, n->p[2]), n->p[3]);              /* (B, C) */
    nb_tensor *lp = nb_log_softmax(logits, 1);                              /* (B, C) */
    nb_tensor *loss = nb_neg(nb_mean(nb_sum_axis(nb_prod(lp, n->onehot), 1, false)));
    if (!loss) return -1;
    *loss_value = nb_item(loss);
    *stage = 1;
    if (nb_backward(loss, NULL) != 0) return -1;
    *stage = 2;
    for (int i = 0; i < 4; i++) { /* SGD on the leaves' data: no allocation */
        double *w = nb_data_mut(n->p[i]);
        const double *g = nb_data(nb_grad(n->p[i]));
        for (int64_t k = 0; k < nb_numel(n->p[i]); k++) w[k] -= 0.1 * g[k];
    }
    return 0;
}

typedef struct {
    double *val[4], *grad[4]; /* grad[i] NULL: no gradient */
} snap;

static void snap_take(snap *s, const net *n) {
    for (int i = 0; i < 4; i++) {
        size_t bytes = (size_t)nb_numel(n->p[i]) * sizeof(double);
        s->val[i] = malloc(bytes);
        memcpy(s->val[i], nb_data(n->p[i]), bytes);
        nb_tensor *g = nb_grad(n->p[i]);
        s->grad[i] = NULL;
        if (g) {
            s->grad[i] = malloc(bytes);
            memcpy(s->grad[i], nb_data(g), bytes);
        }
    }
}

static void snap_free(snap *s) {
    for (int i = 0; i < 4; i++) {
        free(s->val[i]);
        free(s->grad[i]);
    }
}

static bool snap_equal(const snap *s, const net *n) {
    for (int i = 0; i < 4; i++) {
        size_t bytes = (size_t)nb_numel(n->p[i]) * sizeof(double);
        if (memcmp(s->val[i], nb_data(n->p[i]), bytes) != 0) return false;
        nb_tensor *g = nb_grad(n->p[i]);
        if ((g == NULL) != (s->grad[i] == NULL)) return false;
        if (g && memcmp(s->grad[i], nb_data(g), bytes) != 0) return false;
    }
    return true;
}

/* warm: run one clean step first, so that the leaves have gradients */
static void core_sweep(bool warm) {
    const char *name = warm ? "core step (gradients present)" : "core step (no gradients yet)";
    net ref, n;
    net_make(&ref);
    net_make(&n);
    int stage;
    double loss_ref = 0, loss = 0;
    if (warm) {
        CHECK(core_step(&ref, &stage, &loss) == 0);
        CHECK(core_step(&n, &stage, &loss) == 0);
        nb_scope_end(0);
    }
    /* the reference: the same step on an identical net, no failure */
    snap before, after;
    snap_take(&before, &n);
    size_t mark = nb_scope_begin();
    CHECK(core_step(&ref, &stage, &loss_ref) == 0);
    nb_scope_end(mark);
    snap_take(&after, &ref);

    int64_t base = live();
    int64_t N, failed_at[3] = {0, 0, 0};
    for (N = 1; N < 100000; N++) {
        nb_clear_error();
        mark = nb_scope_begin();
        nb__fail_alloc_after(N);
        int rc = core_step(&n, &stage, &loss);
        bool fired = disarm();
        nb_scope_end(mark);
        if (rc == 0) {
            /* completed: the reference result, bit for bit */
            CHECK(loss == loss_ref);
            CHECK(snap_equal(&after, &n));
            if (fired) printf("  %s: N=%lld absorbed and completed\n", name, (long long)N);
            break;
        }
        failed_at[stage]++;
        CHECK(fired);
        check_failure_msg(name, N);
        if (!snap_equal(&before, &n)) {
            fprintf(stderr, "%s, N=%lld (stage %d): parameters or gradients changed\n", name,
                    (long long)N, stage);
            CHECK(0);
        }
        if (live() != base) {
            fprintf(stderr, "%s, N=%lld (stage %d): %lld tensors leaked\n", name, (long long)N,
                    stage, (long long)(live() - base));
            CHECK(0);
        }
    }
    printf("  %s: %lld failure points (forward %lld, backward %lld), completes at N=%lld\n", name,
           (long long)(N - 1), (long long)failed_at[0], (long long)failed_at[1], (long long)N);
    CHECK(N > 10);
    total_points += (int)(N - 1);
    snap_free(&before);
    snap_free(&after);
    net_free(&ref);
    net_free(&n);
    nb_scope_end(0);
}

/* ---- the same step through src/nn: nb_mlp, nb_cross_entropy, Adam --------------------- */
typedef struct {
    nb_params *P;
    nb_mlp *mlp;
    nb_optim *opt;
    nb_tensor *x, *y;
} model;

static void model_make(model *m) {
    int64_t sizes[3] = {D, H, C}, sx[2] = {B, D};
    m->P = nb_params_new();
    m->mlp = nb_mlp_new(m->P, "mlp", 3, sizes, NB_ACT_RELU, NB_INIT_AUTO, 11);
    m->opt = nb_adam_new(m->P, 1e-2, 0.9, 0.999, 1e-8, 1e-4);
    m->x = nb_retain(nb_randn(2, sx, 6));
    nb_set_requires_grad(m->x, false);
    double lab[B];
    for (int i = 0; i < B; i++) lab[i] = (double)((i * 5) % C);
    m->y = nb_retain(nb_vector(lab, B));
    nb_set_requires_grad(m->y, false);
}

static void model_free(model *m) {
    nb_optim_free(m->opt);
    nb_mlp_free(m->mlp);
    nb_params_free(m->P);
    nb_release(m->x);
    nb_release(m->y);
}

static int nn_step(model *m, int *stage) {
    *stage = 0;
    nb_tensor *loss = nb_cross_entropy(nb_mlp_forward(m->mlp, m->x), m->y);
    if (!loss) return -1;
    *stage = 1;
    if (nb_backward(loss, NULL) != 0) return -1;
    *stage = 2;
    if (nb_optim_step(m->opt) != 0) return -1;
    nb_params_zero_grad(m->P);
    return 0;
}

static void nn_sweep(int warm_steps) {
    char name[64];
    snprintf(name, sizeof name, "nn step (Adam, after %d steps)", warm_steps);
    model ref, m;
    model_make(&ref);
    model_make(&m);
    int stage;
    for (int i = 0; i < warm_steps; i++) {
        CHECK(nn_step(&ref, &stage) == 0);
        CHECK(nn_step(&m, &stage) == 0);
    }
    nb_scope_end(0);
    int64_t np = nb_params_numel(m.P);
    size_t bytes = (size_t)np * sizeof(double);
    double *v0 = malloc(bytes), *g0 = malloc(bytes), *v1 = malloc(bytes), *g1 = malloc(bytes);
    memcpy(v0, nb_params_data(m.P), bytes);
    memcpy(g0, nb_params_grad(m.P), bytes);
    size_t mark = nb_scope_begin();
    CHECK(nn_step(&ref, &stage) == 0);
    nb_scope_end(mark);
    memcpy(v1, nb_params_data(ref.P), bytes);
    memcpy(g1, nb_params_grad(ref.P), bytes);
    int64_t steps0 = nb_optim_steps(m.opt);

    int64_t base = live(), N, failed_at[3] = {0, 0, 0};
    for (N = 1; N < 100000; N++) {
        nb_clear_error();
        mark = nb_scope_begin();
        nb__fail_alloc_after(N);
        int rc = nn_step(&m, &stage);
        bool fired = disarm();
        nb_scope_end(mark);
        if (rc == 0) {
            CHECK(memcmp(v1, nb_params_data(m.P), bytes) == 0);
            CHECK(memcmp(g1, nb_params_grad(m.P), bytes) == 0);
            CHECK(nb_optim_steps(m.opt) == steps0 + 1);
            if (fired) printf("  %s: N=%lld absorbed and completed\n", name, (long long)N);
            break;
        }
        failed_at[stage]++;
        CHECK(fired);
        check_failure_msg(name, N);
        CHECK(nb_params_numel(m.P) == np);
        CHECK(nb_optim_steps(m.opt) == steps0);
        if (memcmp(v0, nb_params_data(m.P), bytes) != 0) {
            fprintf(stderr, "%s, N=%lld (stage %d): parameter values changed\n", name,
                    (long long)N, stage);
            CHECK(0);
        }
        /* a failure before the optimizer leaves the gradients as they were; a
           failure in the optimizer comes after backward has added them */
        if (stage < 2 && memcmp(g0, nb_params_grad(m.P), bytes) != 0) {
            fprintf(stderr, "%s, N=%lld (stage %d): gradients changed\n", name, (long long)N,
                    stage);
            CHECK(0);
        }
        memcpy(nb_params_grad(m.P), g0, bytes); /* the next attempt starts from before */
        if (live() != base) {
            fprintf(stderr, "%s, N=%lld (stage %d): %lld tensors leaked\n", name, (long long)N,
                    stage, (long long)(live() - base));
            CHECK(0);
        }
    }
    printf("  %s: %lld failure points (forward %lld, backward %lld, optimizer %lld), "
           "completes at N=%lld\n",
           name, (long long)(N - 1), (long long)failed_at[0], (long long)failed_at[1],
           (long long)failed_at[2], (long long)N);
    CHECK(N > 10);
    total_points += (int)(N - 1);
    free(v0);
    free(g0);
    free(v1);
    free(g1);
    model_free(&ref);
    model_free(&m);
    nb_scope_end(0);
}

/* ---- nb_autograd with create_graph, then a double backward ---------------------------- */
static int higher(nb_tensor *x, nb_tensor *W, double *out) {
    nb_tensor *f = nb_sum(nb_square(nb_tanh(nb_matmul(x, W))));
    nb_tensor *g = NULL, *h = NULL;
    if (!f) return -1;
    if (nb_autograd(1, &f, NULL, 1, &W, &g, true) != 0) {
        CHECK(g == NULL);
        return -1;
    }
    nb_tensor *gn = nb_sum(nb_prod(g, g)); /* |grad f|^2 */
    if (!gn) return -1;
    if (nb_autograd(1, &gn, NULL, 1, &W, &h, false) != 0) {
        CHECK(h == NULL);
        return -1;
    }
    for (int64_t i = 0; i < nb_numel(h); i++) out[i] = nb_data(h)[i];
    return 0;
}

static void autograd_sweep(void) {
    const char *name = "autograd create_graph + double backward";
    int64_t sx[2] = {4, 3}, sw[2] = {3, 2};
    nb_tensor *x = nb_retain(nb_randn(2, sx, 21)), *W = nb_retain(nb_randn(2, sw, 22));
    double ref[6], got[6];
    size_t mark = nb_scope_begin();
    CHECK(higher(x, W, ref) == 0);
    nb_scope_end(mark);
    CHECK(nb_grad(W) == NULL); /* autograd leaves stored gradients alone */
    int64_t base = live(), N;
    for (N = 1; N < 100000; N++) {
        nb_clear_error();
        mark = nb_scope_begin();
        nb__fail_alloc_after(N);
        int rc = higher(x, W, got);
        bool fired = disarm();
        nb_scope_end(mark);
        if (rc == 0) {
            CHECK(memcmp(ref, got, sizeof ref) == 0);
            break;
        }
        CHECK(fired);
        check_failure_msg(name, N);
        CHECK(nb_grad(W) == NULL && nb_grad(x) == NULL);
        if (live() != base) {
            fprintf(stderr, "%s, N=%lld: %lld tensors leaked\n", name, (long long)N,
                    (long long)(live() - base));
            CHECK(0);
        }
    }
    printf("  %s: %lld failure points, completes at N=%lld\n", name, (long long)(N - 1),
           (long long)N);
    CHECK(N > 10);
    total_points += (int)(N - 1);
    nb_release(x);
    nb_release(W);
    nb_scope_end(0);
}

/* ---- building an MLP into a store: a failure leaves the store as it was --------------- */
static void mlp_new_sweep(void) {
    const char *name = "nb_mlp_new into a store";
    nb_params *P = nb_params_new();
    int64_t s0[2] = {3, 3};
    nb_tensor *keep = nb_params_add(P, "keep", 2, s0);
    nb_init_tensor(keep, NB_INIT_HE_NORMAL, 3, 3, 5);
    double kv[9];
    memcpy(kv, nb_data(keep), sizeof kv);
    int64_t sizes[4] = {3, 40, 40, 2}, N;
    for (N = 1; N < 100000; N++) {
        nb_clear_error();
        nb__fail_alloc_after(N);
        nb_mlp *m = nb_mlp_new(P, "net", 4, sizes, NB_ACT_TANH, NB_INIT_AUTO, 1);
        bool fired = disarm();
        if (m) {
            CHECK(nb_params_count(P) == 7);
            nb_mlp_free(m);
            break;
        }
        CHECK(fired);
        check_failure_msg(name, N);
        CHECK(nb_params_count(P) == 1);
        CHECK(nb_params_numel(P) == 9);
        CHECK(nb_params_find(P, "keep") != NULL);
        CHECK(memcmp(kv, nb_data(nb_params_find(P, "keep")), sizeof kv) == 0);
        CHECK(live() == 2); /* "keep" and its gradient */
    }
    printf("  %s: %lld failure points, completes at N=%lld\n", name, (long long)(N - 1),
           (long long)N);
    total_points += (int)(N - 1);
    nb_params_free(P);
    nb_cleanup();
    CHECK(live() == 0);
}

/* ---- loading a parameter file: a failure leaves the store unchanged ------------------- */
static void load_sweep(void) {
    const char *name = "nb_params_load";
    char path[64];
    snprintf(path, sizeof path, "/tmp/nabla_alloc_fail_%d.nbp", (int)getpid());
    nb_params *P = nb_params_new();
    int64_t s0[2] = {4, 6}, s1[1] = {6};
    nb_tensor *a = nb_params_add(P, "a", 2, s0), *b = nb_params_add(P, "b", 1, s1);
    nb_init_tensor(a, NB_INIT_XAVIER_UNIFORM, 4, 6, 1);
    nb_init_tensor(b, NB_INIT_XAVIER_UNIFORM, 4, 6, 2);
    CHECK(nb_params_save(P, path) == 0);
    double saved[30], other[30];
    memcpy(saved, nb_params_data(P), sizeof saved);
    for (int i = 0; i < 30; i++) nb_params_data(P)[i] = -(double)i;
    memcpy(other, nb_params_data(P), sizeof other);
    int64_t N;
    for (N = 1; N < 100000; N++) {
        nb_clear_error();
        nb__fail_alloc_after(N);
        int rc = nb_params_load(P, path);
        bool fired = disarm();
        if (rc == 0) {
            CHECK(memcmp(saved, nb_params_data(P), sizeof saved) == 0);
            break;
        }
        CHECK(fired);
        check_failure_msg(name, N);
        CHECK(memcmp(other, nb_params_data(P), sizeof other) == 0);
    }
    printf("  %s: %lld failure points, completes at N=%lld\n", name, (long long)(N - 1),
           (long long)N);
    total_points += (int)(N - 1);
    remove(path);
    nb_params_free(P);
    nb_cleanup();
}

/* ---- the data readers ------------------------------------------------------------------- */
static void reader_sweep(bool csv) {
    const char *name = csv ? "nb_csv_read" : "nb_idx_read";
    char path[64];
    snprintf(path, sizeof path, "/tmp/nabla_alloc_fail_%d.%s", (int)getpid(), csv ? "csv" : "idx");
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    if (csv) {
        fputs("a,b,c\n", f);
        for (int i = 0; i < 200; i++) fprintf(f, "%d,%d.5,%g\n", i, -i, i * 1e-3);
    } else {
        unsigned char hdr[12] = {0, 0, 0x08, 2, 0, 0, 0, 10, 0, 0, 0, 7};
        fwrite(hdr, 1, sizeof hdr, f);
        for (int i = 0; i < 70; i++) fputc(i * 3, f);
    }
    fclose(f);
    int64_t N;
    for (N = 1; N < 100000; N++) {
        nb_clear_error();
        size_t mark = nb_scope_begin();
        nb__fail_alloc_after(N);
        nb_tensor *t = csv ? nb_csv_read(path, ',', true) : nb_idx_read(path);
        bool fired = disarm();
        if (t) {
            CHECK(nb_numel(t) == (csv ? 600 : 70));
            nb_scope_end(mark);
            break;
        }
        nb_scope_end(mark);
        CHECK(fired);
        check_failure_msg(name, N);
        CHECK(live() == 0);
    }
    printf("  %s: %lld failure points, completes at N=%lld\n", name, (long long)(N - 1),
           (long long)N);
    total_points += (int)(N - 1);
    remove(path);
    nb_cleanup();
}

int main(void) {
    size_t top = nb_scope_begin();
    core_sweep(false);
    core_sweep(true);
    nn_sweep(0);
    nn_sweep(2);
    autograd_sweep();
    mlp_new_sweep();
    load_sweep();
    reader_sweep(false);
    reader_sweep(true);
    nb_scope_end(top);
    nb_cleanup();
    CHECK(live() == 0);
    printf("allocation-failure points covered: %d\n", total_points);
    return check_report("test_alloc_fail");
}
