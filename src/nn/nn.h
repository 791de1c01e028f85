/*
 * src/nn internals: helpers shared by the training pieces (not installed).
 */
#ifndef NABLA_NN_H
#define NABLA_NN_H

#include "internal.h"
#include "io/crc32.h" /* nb__crc32, for the file formats */
#include "io/io.h"

#include <stddef.h>
#include <stdint.h>

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

/* nb__data_tensor, nb__read_file: src/io/io.h */

#endif /* NABLA_NN_H */
