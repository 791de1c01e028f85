/*
 * src/nn/hook.h — the only door from src/nn into the core.
 *
 * src/nn (parameters, layers, losses, optimizers, data, checkpoints) is
 * written against include/nabla.h like a user's library, plus the src/io
 * helpers (files, CRC-32, atomic writes) and this header: nothing else of
 * the core's internals.  tests/nn_boundary.cmake compiles src/nn with only
 * those on the include path and checks the core symbols its objects use, so
 * a new way in fails the test suite.
 *
 * The core implements what is declared here (src/tensor.c) and includes this
 * header itself (src/tensor.h), so the two sides cannot disagree.  Each item
 * is something the public API deliberately does not offer:
 *
 *   nb__storage     memory owned outside any tensor, reference counted: the
 *                   parameter store's value and gradient slabs.  A tensor
 *                   over it holds a reference, so a parameter nb_retain'ed
 *                   past nb_params_free keeps valid values.  The public
 *                   creators always copy values into the tensor's own block.
 *   nb__param_new   a parameter: a leaf over a slab, requiring grad, whose
 *   nb__param_move  gradient is a second tensor over the gradient slab (so
 *                   nb_backward adds into the slab in place, and an optimizer
 *                   step is one loop over it); and, when a growing store
 *                   moves its slabs, pointing a parameter and its gradient at
 *                   the new place.  Users never see a tensor's data pointer
 *                   change, nor a gradient they did not make.
 *   nb__data_tensor a data tensor (requires_grad false, named "in:<k>") whose
 *                   values are not initialised: nb_gather_rows writes every
 *                   value itself and pays for no fill.  The public creators
 *                   never hand out uninitialised values.
 *   nb__realloc     the library's allocator: the "out of memory (N bytes)"
 *                   message, the count in nb_memory_stats, and the failure
 *                   injection of the tests (nb__fail_alloc_after), so src/nn's
 *                   own allocations fail cleanly like the core's.  Failure
 *                   injection is a testing device, not an API.
 *
 * Everything else src/nn needs is public: nb_set_error, nb_check_args and
 * nb_shape_str for messages in the library's style, nb_const for the
 * constants of a loss, nb_parallel_for for the optimizer's loop, nb_rng for
 * random numbers.  Not installed.
 */
#ifndef NABLA_NN_HOOK_H
#define NABLA_NN_HOOK_H

#include "nabla.h"

#include <stddef.h>
#include <stdint.h>

/* Externally owned data, reference counted.  Embed it first in your own
   struct; `destroy` runs when the count reaches 0 (each tensor over the
   storage holds one reference; the owner holds its own). */
typedef struct nb__storage {
    int64_t refcount;
    void (*destroy)(struct nb__storage *);
} nb__storage;

/* A new parameter of `shape`: a leaf (op "in", not named yet: nb_set_name
   it) that requires grad, whose values are `data` (a place inside `values`)
   and whose gradient, nb_grad(t) named "in_grad", is a tensor over `grad`
   (a place inside `grads`).  The data pointers may be NULL until
   nb__param_move sets them.  Each tensor holds a reference to its storage.
   The parameter has refcount 1 and is in no scope (the caller owns it;
   nb_release frees it and its gradient); nothing is allocated for the
   values.  NULL + "<who>: ..." on a bad shape (nb_zeros' checks) or no
   memory, with nothing kept. */
nb_tensor *nb__param_new(const char *who, int ndim, const int64_t *shape, double *data,
                         nb__storage *values, double *grad, nb__storage *grads);

/* Points a parameter made by nb__param_new at `data` and its gradient at
   `grad` (the same storages, moved or grown).  The old places are no longer
   read. */
void nb__param_move(nb_tensor *t, double *data, double *grad);

/* A new leaf of `shape` with requires_grad false and values NOT
   initialised, named "in:<k>", handed to the current scope.  NULL +
   "<who>: ..." on a bad shape or no memory. */
nb_tensor *nb__data_tensor(const char *who, int ndim, const int64_t *shape);

/* realloc(p, n) through the library: NULL + "out of memory (n bytes)" on
   failure (p is then unchanged), including an injected failure; p NULL
   allocates.  The memory is the C library's: free() releases it. */
void *nb__realloc(void *p, size_t n);

#endif /* NABLA_NN_HOOK_H */
