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
#include "nabla.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if NABLA_HAVE_MPI
static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
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
        double best = 1e30;
        for (int round = 0; round < 3; round++) {
            double t = 0;
            nb_mpi_allreduce_max(&t, 1); /* a barrier */
            t = now();
            for (int r = 0; r < reps; r++)
                for (int k = 0; k < buckets[b]; k++) {
                    int64_t lo = n * k / buckets[b], hi = n * (k + 1) / buckets[b];
                    if (nb_mpi_allreduce_sum(g + lo, hi - lo)) {
                        fprintf(stderr, "bench_allreduce: %s\n", nb_last_error());
                        return 1;
                    }
                }
            double ms = (now() - t) * 1e3 / reps;
            if (ms < best) best = ms;
        }
        if (nb_mpi_rank() == 0)
            printf("W8 nabla allreduce_ms_%dbuckets %.4f\n", buckets[b], best);
    }
    free(g);

    /* the update of a step, both ways; weight 1/size as with equal shards */
    nb_params *P = nb_params_new();
    int64_t shape[1] = {n};
    nb_optim *o = P && nb_params_add(P, "w", 1, shape) ? nb_adam_new(P, 1e-3, 0.9, 0.999, 1e-8, 0)
                                                       : NULL;
    if (!o) {
        fprintf(stderr, "bench_allreduce: %s\n", nb_last_error());
        return 1;
    }
    double *w = nb_params_data(P), *gr = nb_params_grad(P);
    const char *way[2] = {"allreduce", "sharded"};
    for (int k = 0; k < 2; k++) {
        double best = 1e30;
        for (int round = 0; round < 3; round++) {
            double t = 0;
            nb_mpi_allreduce_max(&t, 1); /* a barrier */
            t = now();
            for (int r = 0; r < reps; r++) {
                for (int64_t i = 0; i < n; i += 4096) w[i] = gr[i] = 1e-3 * (double)(i % 1000);
                int rc = k == 0 ? nb_mpi_allreduce_grad(P, 1.0 / nb_mpi_size())
                                : nb_mpi_sharded_step(P, o, 1.0 / nb_mpi_size());
                if (rc == 0 && k == 0) rc = nb_optim_step(o);
                if (rc) {
                    fprintf(stderr, "bench_allreduce: %s\n", nb_last_error());
                    return 1;
                }
            }
            double ms = (now() - t) * 1e3 / reps;
            if (ms < best) best = ms;
        }
        if (nb_mpi_rank() == 0) printf("W8 nabla update_ms_%s %.4f\n", way[k], best);
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
