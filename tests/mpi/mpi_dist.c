/*
 * The MPI component, run by ctest under mpirun -np 2 (any size >= 2 works):
 * rank and size, broadcasting parameters, the weighted gradient all-reduce
 * (against the sums written out), metric reductions, the shard helper
 * (every example exactly once per epoch across the ranks, for sizes that
 * are not multiples of the batch or of the number of ranks), and data-
 * parallel training equal to a single process's training to 1e-12
 * relative (each rank also trains the single-process reference itself).
 * The calls that write values in place (broadcast, all-reduce of the
 * gradients, the sharded step) make a graph recorded before them refuse its
 * backward, on every rank, for every parameter (the all-gather writes the
 * other ranks' shares too).  Every rank checks; the job fails if any rank fails.
 */
#include "check.h"
#include "nabla.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rank, size;
static bool has(const char *msg, const char *part) { return msg && strstr(msg, part); }

static void test_basics(void) {
    CHECK(size >= 2 && rank >= 0 && rank < size);
    /* broadcast: every rank starts from rank 0's values */
    nb_params *P = nb_params_new();
    nb_params_add(P, "w", 2, (int64_t[]){3, 5});
    nb_params_add(P, "b", 1, (int64_t[]){5});
    double *w = nb_params_data(P);
    for (int i = 0; i < 20; i++) w[i] = (rank + 1) * 100.0 + i;
    CHECK(nb_mpi_broadcast_params(P, 0) == 0);
    int ok = 1;
    for (int i = 0; i < 20; i++) ok &= w[i] == 100.0 + i;
    CHECK(ok);
    CHECK(nb_mpi_broadcast_params(P, size) == -1 && has(nb_last_error(), "not a rank"));
    /* the weighted all-reduce: sum_r w_r g_r with g_r = (r + 1) (i + 1) */
    double *g = nb_params_grad(P), wsum = 0;
    for (int r = 0; r < size; r++) wsum += r + 1;
    for (int i = 0; i < 20; i++) g[i] = (rank + 1.0) * (i + 1);
    CHECK(nb_mpi_allreduce_grad(P, (rank + 1) / wsum) == 0);
    double sq = 0; /* sum_r (r + 1)^2 / wsum */
    for (int r = 0; r < size; r++) sq += (r + 1.0) * (r + 1.0);
    sq /= wsum;
    for (int i = 0; i < 20; i++) CHECK_NEAR(g[i], sq * (i + 1), 1e-13 * sq * (i + 1));
    CHECK(nb_mpi_allreduce_grad(P, -0.5) == -1 && has(nb_last_error(), "weight"));
    /* stores of different sizes are refused on every rank, naming the counts */
    if (rank == 1) nb_params_add(P, "extra", 1, (int64_t[]){7});
    nb_clear_error();
    CHECK(nb_mpi_broadcast_params(P, 0) == -1 && has(nb_last_error(), "differ between ranks") &&
          has(nb_last_error(), "from 20 to 27 values"));
    nb_params_free(P);
    /* metrics */
    double m[3] = {rank + 0.5, 1.0, -rank};
    CHECK(nb_mpi_allreduce_sum(m, 3) == 0);
    CHECK(m[0] == size * (size - 1) / 2.0 + 0.5 * size && m[1] == size);
    double x[2] = {rank, -rank};
    CHECK(nb_mpi_allreduce_max(x, 2) == 0 && x[0] == size - 1 && x[1] == 0);
    CHECK(nb_mpi_allreduce_sum(NULL, 2) == -1);
}

/* every example of every epoch is taken by exactly one rank */
/* a backward refused for a change in place of `who` after `op` read it */
static bool refused(int rc, const char *who, const char *op) {
    char what[64];
    snprintf(what, sizeof what, "backward: %s was modified in place", who);
    bool ok = rc == -1 && has(nb_last_error(), what) && has(nb_last_error(), op);
    if (!ok) fprintf(stderr, "rank %d: rc %d, message '%s' (expected '%s', '%s')\n", rank, rc,
                     nb_last_error() ? nb_last_error() : "(none)", what, op);
    nb_clear_error();
    return ok;
}

static void test_mutation(void) {
    nb_clear_error(); /* (test_basics leaves its last refusal) */
    size_t mark = nb_scope_begin();
    nb_params *P = nb_params_new();
    nb_tensor *a = nb_params_add(P, "a", 1, (int64_t[]){2}), *b = nb_params_add(P, "b", 1, (int64_t[]){3});
    nb_optim *o = nb_sgd_new(P, 0.1, 0, 0);
    CHECK(a && b && o);
    /* broadcast: every parameter's values */
    nb_tensor *la = nb_sum(nb_square(a)), *lb = nb_sum(nb_square(b));
    CHECK(nb_mpi_broadcast_params(P, 0) == 0);
    CHECK(refused(nb_backward(la, NULL), "a", "square:"));
    CHECK(refused(nb_backward(lb, NULL), "b", "square:"));
    /* the gradients' all-reduce: a graph that read a gradient */
    la = nb_sum(nb_square(a));
    CHECK(nb_backward(la, NULL) == 0);
    nb_set_name(nb_grad(a), "ga");
    nb_tensor *z = nb_sum(nb_prod(nb_vector((double[]){1, 1}, 2), nb_grad(a)));
    CHECK(nb_mpi_allreduce_grad(P, 0.5) == 0);
    CHECK(refused(nb_backward(z, NULL), "ga", "prod:"));
    /* the sharded step: this rank steps its share, the all-gather writes the rest */
    la = nb_sum(nb_square(a)), lb = nb_sum(nb_square(b));
    CHECK(nb_backward(la, NULL) == 0 && nb_backward(lb, NULL) == 0);
    CHECK(nb_mpi_sharded_step(P, o, 1.0 / size) == 0);
    CHECK(refused(nb_backward(la, NULL), "a", "square:"));
    CHECK(refused(nb_backward(lb, NULL), "b", "square:"));
    nb_optim_free(o);
    nb_params_free(P);
    nb_scope_end(mark);
}

static void test_shards(void) {
    const int64_t ns[4] = {103, 64, 7, 1000};
    const int64_t bs[4] = {16, 64, 3, 33};
    for (int c = 0; c < 4; c++) {
        int64_t n = ns[c];
        nb_batcher *b = nb_batcher_new(n, bs[c], true, false, 11);
        double *seen = calloc((size_t)n, sizeof(double));
        for (int ep = 0; ep < 2; ep++) {
            const int64_t *idx;
            int64_t k;
            memset(seen, 0, sizeof(double) * (size_t)n);
            while ((k = nb_batcher_next(b, &idx)) > 0) {
                int64_t lo, cnt = nb_shard(k, rank, size, &lo);
                CHECK(cnt >= 0 && lo >= 0 && lo + cnt <= k);
                for (int64_t i = lo; i < lo + cnt; i++) seen[idx[i]] += 1;
            }
            CHECK(nb_mpi_allreduce_sum(seen, n) == 0);
            int once = 1;
            for (int64_t i = 0; i < n; i++) once &= seen[i] == 1;
            CHECK(once);
        }
        free(seen);
        nb_batcher_free(b);
    }
}

/* ---- training: data parallel against a single process */
enum { NDATA = 203, NIN = 8, NCLS = 4, BATCH = 20, STEPS = 60 };
static nb_tensor *X, *Y;

typedef struct model {
    nb_params *P;
    nb_mlp *net;
    nb_optim *opt;
    nb_batcher *bat;
} model;

static void model_new(model *m, uint64_t seed) {
    m->P = nb_params_new();
    m->net = nb_mlp_new(m->P, "mlp", 4, (int64_t[]){NIN, 16, 12, NCLS}, NB_ACT_RELU, NB_INIT_AUTO,
                        seed);
    m->opt = nb_adam_new(m->P, 0.01, 0.9, 0.999, 1e-8, 0);
    m->bat = nb_batcher_new(NDATA, BATCH, true, false, 5);
}

static void model_free(model *m) {
    nb_batcher_free(m->bat);
    nb_optim_free(m->opt);
    nb_mlp_free(m->net);
    nb_params_free(m->P);
}

/* one step on examples idx[0..k) (k may be 0: no contribution) */
static double local_grad(model *m, const int64_t *idx, int64_t k) {
    if (k == 0) return 0;
    size_t mark = nb_scope_begin();
    nb_tensor *loss = nb_cross_entropy(nb_mlp_forward(m->net, nb_gather_rows(X, idx, k)),
                                       nb_gather_rows(Y, idx, k));
    CHECK(loss && nb_backward(loss, NULL) == 0);
    double l = loss ? nb_item(loss) : NAN;
    nb_scope_end(mark);
    return l;
}

static void test_training(bool sharded) {
    model ref, dp;
    model_new(&ref, 1);
    model_new(&dp, rank == 0 ? 1 : 100 + (uint64_t)rank); /* others: the broadcast must fix them */
    CHECK(nb_mpi_broadcast_params(dp.P, 0) == 0);
    double ref_loss = 0, dp_loss = 0;
    int64_t ref_n = 0, dp_n = 0;
    for (int s = 0; s < STEPS; s++) {
        const int64_t *idx;
        int64_t k = nb_batcher_next(ref.bat, &idx);
        if (k == 0) k = nb_batcher_next(ref.bat, &idx);
        ref_loss += local_grad(&ref, idx, k) * (double)k;
        ref_n += k;
        nb_optim_step(ref.opt);
        nb_params_zero_grad(ref.P);

        int64_t kk = nb_batcher_next(dp.bat, &idx);
        if (kk == 0) kk = nb_batcher_next(dp.bat, &idx);
        int64_t lo, cnt = nb_shard(kk, rank, size, &lo);
        double l = local_grad(&dp, idx + lo, cnt);
        dp_loss += l * (double)cnt;
        dp_n += cnt;
        if (sharded) {
            CHECK(nb_mpi_sharded_step(dp.P, dp.opt, (double)cnt / (double)kk) == 0);
        } else {
            CHECK(nb_mpi_allreduce_grad(dp.P, (double)cnt / (double)kk) == 0);
            nb_optim_step(dp.opt);
        }
        nb_params_zero_grad(dp.P);
    }
    /* the parameters: relative to the largest magnitude of the reference */
    int64_t n = nb_params_numel(ref.P);
    const double *a = nb_params_data(ref.P), *b = nb_params_data(dp.P);
    double scale = 0, err = 0;
    for (int64_t i = 0; i < n; i++) {
        if (fabs(a[i]) > scale) scale = fabs(a[i]);
        if (fabs(a[i] - b[i]) > err) err = fabs(a[i] - b[i]);
    }
    double rel = err / scale;
    if (rank == 0)
        printf("mpi_dist: %d ranks, %d Adam steps of %d examples (%s): parameters equal to the "
               "single process within %.3g relative (max |diff| / max |value|)\n",
               size, STEPS, BATCH, sharded ? "sharded step" : "all-reduce", rel);
    CHECK(rel <= 1e-12);
    /* the ranks hold identical parameters, bit for bit */
    double *mx = malloc(sizeof(double) * 2 * (size_t)n);
    for (int64_t i = 0; i < n; i++) mx[i] = b[i], mx[n + i] = -b[i];
    CHECK(nb_mpi_allreduce_max(mx, 2 * n) == 0);
    int same = 1;
    for (int64_t i = 0; i < n; i++) same &= mx[i] == b[i] && -mx[n + i] == b[i];
    CHECK(same);
    free(mx);
    /* the sharded step's optimizer state, synchronised, is the reference's */
    if (sharded) {
        CHECK(nb_mpi_sync_optim(dp.opt) == 0);
        nb_params *Ps[2] = {ref.P, dp.P};
        nb_optim *Os[2] = {ref.opt, dp.opt};
        char path[2][1100];
        for (int k = 0; k < 2; k++) {
            snprintf(path[k], sizeof path[k], "%s/out/mpi_dist_%dranks_%d_%d.nbc", NABLA_BINARY_DIR,
                     size, rank, k); /* (per size: the 2- and 3-rank runs may run at once) */
            CHECK(nb_checkpoint_save(path[k], "", Ps[k], Os[k], NULL) == 0);
        }
        /* load the synchronised state into the reference model: continuing
           both one step must agree (the moments are the same to rounding) */
        nb_params *Q = nb_params_new();
        nb_mlp *qn = nb_mlp_new(Q, "mlp", 4, (int64_t[]){NIN, 16, 12, NCLS}, NB_ACT_RELU,
                                NB_INIT_AUTO, 1);
        nb_optim *qo = nb_adam_new(Q, 0.01, 0.9, 0.999, 1e-8, 0);
        CHECK(nb_checkpoint_load(path[1], "", Q, qo, NULL) == 0);
        CHECK(nb_optim_steps(qo) == STEPS);
        nb_params *R = nb_params_new();
        nb_mlp *rn = nb_mlp_new(R, "mlp", 4, (int64_t[]){NIN, 16, 12, NCLS}, NB_ACT_RELU,
                                NB_INIT_AUTO, 1);
        nb_optim *ro = nb_adam_new(R, 0.01, 0.9, 0.999, 1e-8, 0);
        CHECK(nb_checkpoint_load(path[0], "", R, ro, NULL) == 0);
        for (int64_t i = 0; i < n; i++) nb_params_grad(Q)[i] = nb_params_grad(R)[i] = 0;
        memcpy(nb_params_data(Q), nb_params_data(R), sizeof(double) * (size_t)n);
        nb_optim_step(qo);
        nb_optim_step(ro);
        double e2 = 0;
        for (int64_t i = 0; i < n; i++)
            e2 = fmax(e2, fabs(nb_params_data(Q)[i] - nb_params_data(R)[i]));
        CHECK(e2 <= 1e-12 * scale); /* a zero gradient: the step is the moments' */
        nb_optim_free(qo);
        nb_optim_free(ro);
        nb_mlp_free(qn);
        nb_mlp_free(rn);
        nb_params_free(Q);
        nb_params_free(R);
        remove(path[0]);
        remove(path[1]);
    }
    /* the loss, reduced, is the single process's */
    double m[2] = {dp_loss, (double)dp_n};
    CHECK(nb_mpi_allreduce_sum(m, 2) == 0);
    CHECK(m[1] == (double)ref_n);
    CHECK_NEAR(m[0] / m[1], ref_loss / (double)ref_n, 1e-12);
    model_free(&ref);
    model_free(&dp);
}

int main(int argc, char **argv) {
    if (nb_mpi_init(&argc, &argv) != 0) {
        fprintf(stderr, "mpi_dist: %s\n", nb_last_error());
        return 1;
    }
    rank = nb_mpi_rank();
    size = nb_mpi_size();
    X = nb_zeros(2, (int64_t[]){NDATA, NIN});
    Y = nb_zeros(1, (int64_t[]){NDATA});
    nb_retain(X);
    nb_retain(Y);
    nb_rng g;
    nb_rng_seed(&g, 3);
    double *x = nb_data_mut(X), *y = nb_data_mut(Y);
    for (int i = 0; i < NDATA; i++) {
        double s = 0;
        for (int j = 0; j < NIN; j++) s += (x[i * NIN + j] = nb_rng_normal(&g)) * (j % 3 - 1);
        y[i] = s > 1.5 ? 3 : s > 0 ? 2 : s > -1.5 ? 1 : 0;
    }
    test_basics();
    test_mutation();
    test_shards();
    test_training(false);
    test_training(true);
    nb_release(X);
    nb_release(Y);
    double f = check_failed_;
    nb_mpi_allreduce_sum(&f, 1);
    printf("mpi_dist rank %d: %d passed, %d failed (all ranks: %.0f failed)\n", rank,
           check_passed_, check_failed_, f);
    nb_cleanup();
    nb_mpi_finalize();
    return f != 0;
}
