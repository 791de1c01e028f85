/*
 * W8's communication part: the gradient all-reduce of the main MLP's slab
 * (235,146 doubles) as one MPI_Allreduce, or cut in 4 or 16 buckets (what a
 * backward-overlapped scheme would send; here not overlapped, so this
 * measures the cost of cutting), through nabla's MPI component.
 *     mpirun -np 2 bench_allreduce [--quick]
 * Prints "W8 nabla allreduce_ms_<b>buckets <ms per step>" (rank 0).
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
    nb_mpi_finalize();
    return 0;
}
#else
int main(void) {
    printf("# bench_allreduce: nabla was built without MPI\n");
    return 0;
}
#endif
