/*
 * Data parallelism over MPI: the only file of the library that uses MPI
 * (built when CMake finds it; declarations in nabla.h under NABLA_HAVE_MPI).
 * The gradient slab of a store is one contiguous array of doubles, so the
 * gradient average of a step is one MPI_Allreduce, in place.
 */
#include "internal.h"
#include "nn/ckpt.h"

#include <mpi.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static MPI_Comm comm = MPI_COMM_NULL; /* a duplicate of MPI_COMM_WORLD, errors return */
static int we_initialised, my_rank, my_size = 1;

/* -1 + "mpi_<who>: <MPI's message>" when rc is not MPI_SUCCESS */
static int mpi_fail(const char *who, int rc) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) len = 0;
    msg[len] = 0;
    nb__err("mpi_%s: %s (MPI error %d)", who, len ? msg : "unknown error", rc);
    return -1;
}

static int ready(const char *who) {
    if (comm == MPI_COMM_NULL) {
        nb__err("mpi_%s: call nb_mpi_init first", who);
        return 0;
    }
    return 1;
}

int nb_mpi_init(int *argc, char ***argv) {
    if (comm != MPI_COMM_NULL) return 0;
    int flag = 0, rc;
    MPI_Initialized(&flag);
    if (!flag) {
        int provided;
        rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS) {
            nb__err("mpi_init: MPI_Init failed (MPI error %d)", rc);
            return -1;
        }
        we_initialised = 1;
    }
    rc = MPI_Comm_dup(MPI_COMM_WORLD, &comm);
    if (rc != MPI_SUCCESS) return mpi_fail("init", rc);
    MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm, &my_rank);
    MPI_Comm_size(comm, &my_size);
    return 0;
}

int nb_mpi_finalize(void) {
    if (comm != MPI_COMM_NULL) MPI_Comm_free(&comm);
    comm = MPI_COMM_NULL;
    my_rank = 0;
    my_size = 1;
    if (we_initialised) {
        we_initialised = 0;
        int rc = MPI_Finalize();
        if (rc != MPI_SUCCESS) return mpi_fail("finalize", rc);
    }
    return 0;
}

int nb_mpi_rank(void) { return my_rank; }
int nb_mpi_size(void) { return my_size; }

/* MPI counts are int: long arrays go in pieces */
#define PIECE ((int64_t)1 << 28)

static int allreduce(const char *who, double *v, int64_t n, MPI_Op op) {
    for (int64_t at = 0; at < n; at += PIECE) {
        int64_t k = n - at < PIECE ? n - at : PIECE;
        int rc = MPI_Allreduce(MPI_IN_PLACE, v + at, (int)k, MPI_DOUBLE, op, comm);
        if (rc != MPI_SUCCESS) return mpi_fail(who, rc);
    }
    return 0;
}

/* the stores agree in size on every rank */
static int same_size(const char *who, const nb_params *p) {
    double n[2] = {(double)nb_params_numel(p), -(double)nb_params_numel(p)};
    if (allreduce(who, n, 2, MPI_MAX)) return -1;
    if (n[0] != -n[1]) {
        nb__err("mpi_%s: the stores differ between ranks (from %.0f to %.0f values; this rank "
                "%d has %lld)",
                who, -n[1], n[0], my_rank, (long long)nb_params_numel(p));
        return -1;
    }
    return 0;
}

int nb_mpi_broadcast_params(nb_params *p, int root) {
    if (!ready("broadcast_params")) return -1;
    if (!p) {
        nb__err("mpi_broadcast_params: NULL store");
        return -1;
    }
    if (root < 0 || root >= my_size) {
        nb__err("mpi_broadcast_params: root %d is not a rank (size %d)", root, my_size);
        return -1;
    }
    if (same_size("broadcast_params", p)) return -1;
    int64_t n = nb_params_numel(p);
    double *v = nb_params_data(p); /* (bumps every parameter's version: the values change) */
    for (int64_t at = 0; at < n; at += PIECE) {
        int64_t k = n - at < PIECE ? n - at : PIECE;
        int rc = MPI_Bcast(v + at, (int)k, MPI_DOUBLE, root, comm);
        if (rc != MPI_SUCCESS) return mpi_fail("broadcast_params", rc);
    }
    return 0;
}

int nb_mpi_allreduce_grad(nb_params *p, double weight) {
    if (!ready("allreduce_grad")) return -1;
    if (!p) {
        nb__err("mpi_allreduce_grad: NULL store");
        return -1;
    }
    if (!(weight >= 0 && weight <= 1)) {
        nb__err("mpi_allreduce_grad: weight must be in [0, 1], got %g", weight);
        return -1;
    }
    int64_t n = nb_params_numel(p);
    double *g = nb_params_grad(p); /* (bumps every gradient's version: they change) */
    if (weight != 1.0)
        for (int64_t i = 0; i < n; i++) g[i] *= weight;
    return allreduce("allreduce_grad", g, n, MPI_SUM);
}

int nb_mpi_allreduce_sum(double *v, int64_t n) {
    if (!ready("allreduce_sum")) return -1;
    if (n < 0 || (n > 0 && !v)) {
        nb__err("mpi_allreduce_sum: %lld values at %p", (long long)n, (void *)v);
        return -1;
    }
    return allreduce("allreduce_sum", v, n, MPI_SUM);
}

int nb_mpi_allreduce_max(double *v, int64_t n) {
    if (!ready("allreduce_max")) return -1;
    if (n < 0 || (n > 0 && !v)) {
        nb__err("mpi_allreduce_max: %lld values at %p", (long long)n, (void *)v);
        return -1;
    }
    return allreduce("allreduce_max", v, n, MPI_MAX);
}

/* counts and displacements of the slab's shares (nb_shard of n over the ranks) */
static int shares(const char *who, int64_t n, int **counts, int **displs) {
    if (n > INT32_MAX) {
        nb__err("mpi_%s: %lld values: more than MPI's int counts allow in one call", who,
                (long long)n);
        return -1;
    }
    *counts = nb__malloc(sizeof(int) * (size_t)my_size);
    *displs = nb__malloc(sizeof(int) * (size_t)my_size);
    if (!*counts || !*displs) {
        nb__free(*counts);
        nb__free(*displs);
        return -1;
    }
    for (int r = 0; r < my_size; r++) {
        int64_t lo, c = nb_shard(n, r, my_size, &lo);
        (*counts)[r] = (int)c;
        (*displs)[r] = (int)lo;
    }
    return 0;
}

/* The ring reduce-scatter (the first half of a ring all-reduce): in size-1
   steps, rank r sends its partial sum of share r-s-1 to rank r+1 and adds
   what rank r-1 sends of share r-s-2 into its own; after the last step
   g's share r holds the sum over all ranks (in the fixed order r+1, r+2, ...,
   r, so every run sums alike).  Each rank's own values are scaled by
   weight on the way, each exactly once (its share r-1 before it is sent,
   the others as the partial sums arrive), which saves a pass over the slab.
   buf holds one share.  Open MPI's
   MPI_Reduce_scatter took 0.35 ms for the 1.9 MB slab of the main MLP on
   2 ranks, this ring 0.15 ms, MPI_Allreduce 0.30 ms (shared memory, one
   quiet run): see docs/DISTRIBUTED.md. */
static int ring_reduce_scatter(double *g, double weight, const int *counts, const int *displs,
                               double *buf) {
    int right = (my_rank + 1) % my_size, left = (my_rank + my_size - 1) % my_size;
    if (weight != 1.0 && my_size > 1) { /* share r-1 (left's): sent first, never added into here */
        double *restrict d = g + displs[left];
        for (int i = 0; i < counts[left]; i++) d[i] *= weight;
    }
    for (int s = 0; s + 1 < my_size; s++) { /* (r - s - 2 >= -size: one + size keeps them >= 0) */
        int out = (my_rank - s - 1 + my_size) % my_size, in = (my_rank - s - 2 + my_size) % my_size;
        int e = MPI_Sendrecv(g + displs[out], counts[out], MPI_DOUBLE, right, 7, buf, counts[in],
                             MPI_DOUBLE, left, 7, comm, MPI_STATUS_IGNORE);
        if (e != MPI_SUCCESS) return e;
        double *restrict d = g + displs[in];
        if (weight != 1.0)
            for (int i = 0; i < counts[in]; i++) d[i] = d[i] * weight + buf[i];
        else
            for (int i = 0; i < counts[in]; i++) d[i] += buf[i];
    }
    return MPI_SUCCESS;
}

int nb_mpi_sharded_step(nb_params *p, nb_optim *o, double weight) {
    if (!ready("sharded_step")) return -1;
    if (!p || !o || o->p != p) {
        nb__err("mpi_sharded_step: %s", !p ? "NULL store" : !o ? "NULL optimizer"
                                                              : "the optimizer is another store's");
        return -1;
    }
    if (!(weight >= 0 && weight <= 1)) {
        nb__err("mpi_sharded_step: weight must be in [0, 1], got %g", weight);
        return -1;
    }
    int64_t n = nb_params_numel(p);
    int *counts, *displs;
    if (shares("sharded_step", n, &counts, &displs)) return -1;
    int mine = counts[my_rank], at = displs[my_rank];
    /* (bumps every gradient's and parameter's version: the all-gather below
       writes every value, not only this rank's share that the step moves) */
    double *g = nb_params_grad(p), *w = nb_params_data(p);
    int most = 1;
    for (int r = 0; r < my_size; r++) most = counts[r] > most ? counts[r] : most;
    double *part = nb__malloc(sizeof(double) * (size_t)most);
    int rc = -1;
    if (!part) goto done;
    if (weight != 1.0 && my_size == 1)
        for (int64_t i = 0; i < n; i++) g[i] *= weight;
    /* 1. this rank's share of the summed gradient, in place */
    int e = ring_reduce_scatter(g, weight, counts, displs, part);
    if (e != MPI_SUCCESS) {
        mpi_fail("sharded_step", e);
        goto done;
    }
    /* 2. the optimizer on that share only */
    if (nb__optim_step_range(o, at, at + mine)) goto done;
    /* 3. every rank gets every share's new values */
    e = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, w, counts, displs, MPI_DOUBLE, comm);
    if (e != MPI_SUCCESS) {
        mpi_fail("sharded_step", e);
        goto done;
    }
    rc = 0;
done:
    nb__free(part);
    nb__free(counts);
    nb__free(displs);
    return rc;
}

int nb_mpi_sync_optim(nb_optim *o) {
    if (!ready("sync_optim")) return -1;
    if (!o) {
        nb__err("mpi_sync_optim: NULL optimizer");
        return -1;
    }
    if (o->n == 0) return 0;
    if (o->n != nb_params_numel(o->p)) {
        nb__err("mpi_sync_optim: the state covers %lld values, the store has %lld (parameters "
                "added since the last step)",
                (long long)o->n, (long long)nb_params_numel(o->p));
        return -1;
    }
    int *counts, *displs;
    if (shares("sync_optim", o->n, &counts, &displs)) return -1;
    double *sl[2] = {o->m, o->v};
    int rc = 0;
    for (int k = 0; k < nb__optim_nslabs(o) && rc == 0; k++) {
        int e = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, sl[k], counts, displs,
                               MPI_DOUBLE, comm);
        if (e != MPI_SUCCESS) rc = mpi_fail("sync_optim", e);
    }
    nb__free(counts);
    nb__free(displs);
    return rc;
}

void nb_mpi_abort(int code, const char *why) {
    if (why) fprintf(stderr, "rank %d: %s\n", my_rank, why);
    fflush(NULL);
    int flag = 0;
    MPI_Initialized(&flag);
    if (flag) MPI_Abort(MPI_COMM_WORLD, code);
    exit(code);
}
