/*
 * src/nn internals shared by the parameter store (params.c), the optimizers
 * (optim.c) and the checkpoints (checkpoint.c), and with src/dist (the
 * sharded optimizer step).  Not installed.
 */
#ifndef NABLA_NN_CKPT_H
#define NABLA_NN_CKPT_H

#include "nn.h"

enum { NB__OPT_SGD = 1, NB__OPT_ADAM = 2 };

struct nb_optim {
    int kind;           /* NB__OPT_SGD or NB__OPT_ADAM          */
    nb_params *p;
    double lr, mom, b1, b2, eps, wd;
    int64_t t;          /* steps taken                          */
    int64_t n;          /* values the state covers              */
    double *m, *v;      /* SGD: m = velocity; Adam: m, v moments */
};

/* nb_optim_step restricted to the values [lo, hi) of the slab (0 <= lo <=
   hi <= numel): the step count advances, the state is sized for the whole
   store, only that range of values and state moves (the sharded step of
   src/dist).  0 or -1. */
int nb__optim_step_range(nb_optim *o, int64_t lo, int64_t hi);

/* Number of state slabs of o (SGD: 1 with momentum, else 0; Adam: 2). */
int nb__optim_nslabs(const nb_optim *o);

/* The store as a complete parameter file image (the format of nb_params_save),
   in a new buffer of *len bytes (free() it); NULL when out of memory. */
unsigned char *nb__params_encode(const nb_params *p, size_t *len);

/* Checks the parameter file image buf[0..len) against p (every check of
   nb_params_load, messages "<who>: <path>: ..."), and with `apply` copies the
   values in.  0 or -1 (p unchanged). */
int nb__params_decode(const char *who, const char *path, const unsigned char *buf, size_t len,
                      nb_params *p, bool apply);

#endif /* NABLA_NN_CKPT_H */
