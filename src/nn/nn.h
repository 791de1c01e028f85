/*
 * src/nn internals: what the training pieces (params.c, optim.c, layers.c,
 * loss.c, data.c, init.c, checkpoint.c) share.  Not installed.
 *
 * src/nn is built on the public API, include/nabla.h, like a user's
 * library, plus two things: the src/io helpers (files, CRC-32, atomic
 * writes) and hook.h, its only door into the core (tensors over the
 * parameter slabs, uninitialised data tensors, the library's allocator).
 * tests/nn_boundary.cmake checks that it includes and uses nothing else.
 */
#ifndef NABLA_NN_H
#define NABLA_NN_H

#include "hook.h"
#include "io/crc32.h" /* nb__crc32, for the file formats */
#include "io/io.h"    /* nb__read_file */
#include "nabla.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- small helpers on the public API ------------------------------------- */

/* nb_set_error as an expression that is NULL: `return nn_fail(...);` in a
   function that returns a pointer. */
#define nn_fail(...) (nb_set_error(__VA_ARGS__), NULL)

/* malloc through the library (its out-of-memory message, failure
   injection); free() releases it. */
static inline void *nn_malloc(size_t n) { return nb__realloc(NULL, n); }

/* The values of a tensor src/nn has just made (no graph can have read it
   yet): written without nb_data_mut.  The values of an existing tensor (a
   parameter, a gradient, a tensor handed in) are changed through
   nb_data_mut, which bumps its version, so that a graph recorded before the
   change refuses its backward instead of using the new values. */
static inline double *nn_values(const nb_tensor *t) { return (double *)nb_data(t); }

/* Same shape (live tensors). */
static inline bool nn_same_shape(const nb_tensor *a, const nb_tensor *b) {
    int n = nb_ndim(a);
    return n >= 0 && n == nb_ndim(b) &&
           memcmp(nb_shape(a), nb_shape(b), (size_t)n * sizeof(int64_t)) == 0;
}

/* ---- the parameter store ---------------------------------------------------- */

/* The slab behind a parameter store: refcounted storage (the base must come
   first) owning `data`.  Every parameter tensor holds a reference, so a
   tensor retained past its store keeps its values. */
typedef struct nb__slab {
    nb__storage base;
    double *data;
} nb__slab;

/* Internal view of the store, shared with optim.c. */
typedef struct nb__param_entry {
    char name[64];
    nb_tensor *t;        /* the leaf, data = val->data + off   */
    nb_tensor *g;        /* its gradient, data = grad->data + off */
    int64_t off, numel;
} nb__param_entry;

struct nb_params {
    nb__slab *val, *grad;     /* one reference each                 */
    int64_t numel, cap;       /* values used / allocated in a slab  */
    nb__param_entry *e;
    int64_t n, ecap;
};

/* Removes the parameters added after the first n (undoing a failed build). */
void nb__params_truncate(nb_params *p, int64_t n);

#endif /* NABLA_NN_H */
