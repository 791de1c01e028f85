/*
 * internal.h — every internal header at once, for the modules outside the
 * core (check, print, dot, nn) and for tests and tools.  The core's own
 * files include only what they use:
 *   tensor.h           the node, per-thread state, memory, scopes, names, errors
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
