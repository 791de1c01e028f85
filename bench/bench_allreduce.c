/*
 * W8's communication part: the gradient all-reduce of the main MLP's slab
 * (235,146 doubles) as one MPI_Allreduce, or cut in 4 or 16 buckets (what a
 * backward-overlapped scheme would send; here not overlapped, so this
 * measures the cost of cutting), through nabla's MPI component; then the
 * whole exchange-and-update of a step on a store of that size with Adam,
 * both ways fashion_mnist can run it: nb_mpi_allreduce_grad + nb_optim_step
 * (every rank updates the whole slab) and nb_mpi_sharded_step (a ring
 * reduce-scatter, Adam on this rank's share, an all-gather).
 *     mpirun -np 2 bench_allreduce [--quick]
 * Prints "W8 nabla allreduce_ms_<b>buckets <ms per step>" and
 * "W8 nabla update_ms_{allreduce,sharded} <ms per step>" (rank 0).
 */
#include "bench_common.h"
#include "nabla.h"

#if NABLA_HAVE_MPI
/* The best of 3 rounds of `reps` calls of step(ctx) (all ranks start each
   round together), in ms per call; -1 when a call fails. */
static double best_ms(int reps, int (*step)(void *), void *ctx) {
    double best = 1e30;
    for (int round = 0; round < 3; round++) {
        double t = 0;
        nb_mpi_allreduce_max(&t, 1); /* a barrier */
        t = bench_now();
        for (int r = 0; r < reps; r++)
            if (step(ctx)) return -1;
        double ms = (bench_now() - t) * 1e3 / reps;
        if (ms < best) best = ms;
    }
    return best;
}

/* one all-reduce of the slab, cut in `buckets` calls */
typedef struct {
    double *g;
    int64_t n;
    int buckets;
} buckets_job;
static int allreduce_buckets(void *ctx) {
    const buckets_job *j = ctx;
    for (int k = 0; k < j->buckets; k++) {
        int64_t lo = j->n * k / j->buckets, hi = j->n * (k + 1) / j->buckets;
        if (nb_mpi_allreduce_sum(j->g + lo, hi - lo)) return -1;
    }
    return 0;
}

/* a step's update, both ways; weight 1/size as with equal shards */
typedef struct {
    nb_params *P;
    nb_optim *o;
    double *w, *g; /* the store's slabs */
    bool sharded;
} update_job;
static int update(void *ctx) {
    const update_job *j = ctx;
    for (int64_t i = 0; i < nb_params_numel(j->P); i += 4096)
        j->w[i] = j->g[i] = 1e-3 * (double)(i % 1000);
    if (j->sharded) return nb_mpi_sharded_step(j->P, j->o, 1.0 / nb_mpi_size());
    return nb_mpi_allreduce_grad(j->P, 1.0 / nb_mpi_size()) || nb_optim_step(j->o);
}

int main(int argc, char **argv) {
    if (nb_mpi_init(&argc, &argv) != 0) {
        fprintf(stderr, "bench_allreduce: %s\n", nb_last_error());
        return 1;
    }
    int reps = (argc > 1 && !strcmp(argv[1], "--quick")) ? 5 : 200;
    const int64_t n = 235146;
    double *g = malloc(sizeof(double) * (size_t)n);
    if (!g) return 1;
    for (int64_t i = 0; i < n; i++) g[i] = 1e-3 * (double)(i % 1000);
    const int buckets[3] = {1, 4, 16};
    for (int b = 0; b < 3; b++) {
        buckets_job j = {g, n, buckets[b]};
        double ms = best_ms(reps, allreduce_buckets, &j);
        if (ms < 0) {
            fprintf(stderr, "bench_allreduce: %s\n", nb_last_error());
            return 1;
        }
        if (nb_mpi_rank() == 0) printf("W8 nabla allreduce_ms_%dbuckets %.4f\n", buckets[b], ms);
    }
    free(g);

    nb_params *P = nb_params_new();
    int64_t shape[1] = {n};
    nb_optim *o = P && nb_params_add(P, "w", 1, shape) ? nb_adam_new(P, 1e-3, 0.9, 0.999, 1e-8, 0)
                                                       : NULL;
    if (!o) {
        fprintf(stderr, "bench_allreduce: %s\n", nb_last_error());
        return 1;
    }
    const char *way[2] = {"allreduce", "sharded"};
    for (int k = 0; k < 2; k++) {
        update_job j = {P, o, nb_params_data(P), nb_params_grad(P), k == 1};
        double ms = best_ms(reps, update, &j);
        if (ms < 0) {
            fprintf(stderr, "bench_allreduce: %s\n", nb_last_error());
            return 1;
        }
        if (nb_mpi_rank() == 0) printf("W8 nabla update_ms_%s %.4f\n", way[k], ms);
    }
    nb_optim_free(o);
    nb_params_free(P);
    nb_mpi_finalize();
    return 0;
}
#else
int main(void) {
    printf("# bench_allreduce: nabla was built without MPI\n");
    return 0;
}
#endif
