/*
 * internal.h — every internal header at once, for the modules outside the
 * core that may use its internals (check, print, dot, io, dist) and for
 * tests and tools; never for src/nn, which has nabla.h and its one door,
 * nn/hook.h (tests/nn_boundary.cmake checks).  The core's own files include
 * only what they use:
 *   tensor.h           the node, per-thread state, memory, scopes, names, errors
 *                      (and nn/hook.h, which it implements)
 *   engine.h           the op table, rules, recording
 *   kernels/kernels.h  GEMM and the thread pool (kernels/vmath.h: exp, sigmoid, tanh)
 *   rng.h              the random generator behind nb_rng, nb_rand and nb_randn
 * Not installed.
 */
#ifndef NABLA_INTERNAL_H
#define NABLA_INTERNAL_H

#include "engine.h"
#include "kernels/kernels.h"
#include "rng.h"
#include "tensor.h"

#endif /* NABLA_INTERNAL_H */
