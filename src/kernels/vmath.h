/*
 * Vectorised array kernels for exp, the logistic sigmoid and tanh
 * (internal).
 *
 * Accuracy: nb__exp_n is within 1 ulp of the exact exp for every double,
 * subnormal results included (measured: at most 0.71 ulp, 0.78 ulp of the
 * subnormal spacing; tests/test_vmath.c checks it against expl on millions
 * of points at every dispatch level).  Its special values are libm's:
 * exp(NaN) = NaN, exp(+inf) = +inf, exp(-inf) = +0, +inf above the overflow
 * threshold 709.782712893384, +0 below -745.1332191019412, exp(+-0) = 1.
 * nb__sigmoid_n computes 1/(1+exp(-x)) for x >= 0 and e/(1+e), e = exp(x),
 * otherwise (the formulation of the scalar sigmoid: never exp of a large
 * positive number), with the rounding errors of e and 1+e compensated:
 * within 2 ulp of the exact value (measured: 1.14 ulp without FMA, 0.82
 * with; the scalar code with libm's exp: 2.2), and at most 2 ulp from
 * that scalar code in the test;
 * sigmoid(+inf) = 1, sigmoid(-inf) = +0, NaN gives NaN, subnormal results
 * for x below about -708.4, +0 below about -745.1.
 * nb__tanh_n is within 1 ulp of the exact tanh for every double (measured:
 * 0.75 ulp with FMA, 0.82 without; glibc's tanh: 2.14), and odd bit for bit:
 * tanh(-x) = -tanh(x).  Special values as glibc's: tanh(+-0) = +-0,
 * tanh(+-inf) = +-1, NaN gives NaN, +-1 exactly from |x| = 19.061547465398498
 * on (correctly rounded), x itself for |x| < 2^-27 (subnormals included).
 *
 * Dispatch: the same branch-free loop body is compiled for a portable
 * baseline (SSE2 on x86-64, whatever the compiler targets elsewhere), for
 * AVX2+FMA and for AVX-512F, and the best one the CPU supports is chosen at
 * run time (__builtin_cpu_supports), with no -march flag needed.  The levels
 * may differ in the last bit (FMA), all within the bounds above; each level
 * gives the same bits for an element wherever it lies in the array and
 * whether or not the call is in place.
 *
 * y and x may be the same pointer (in place); otherwise they must not
 * overlap.  n <= 0 does nothing.  Thread-safe, no allocation, no errno.
 */
#ifndef NABLA_UTIL_VMATH_H
#define NABLA_UTIL_VMATH_H

#include <stdint.h>

/* y[i] = exp(x[i]) */
void nb__exp_n(double *y, const double *x, int64_t n);
/* y[i] = 1/(1+exp(-x[i])), computed stably */
void nb__sigmoid_n(double *y, const double *x, int64_t n);
/* y[i] = tanh(x[i]) */
void nb__tanh_n(double *y, const double *x, int64_t n);

/* Dispatch levels. */
enum { NB__VM_PORTABLE = 0, NB__VM_AVX2 = 1, NB__VM_AVX512 = 2 };

/* The highest level this CPU supports (NB__VM_PORTABLE off x86-64). */
int nb__vmath_max_level(void);
/* The level the kernels use now. */
int nb__vmath_level(void);
/* Test hook: pins the level (clamped to nb__vmath_max_level()) for the whole
   process; a negative level goes back to the automatic choice.  Returns the
   level now in use.  Meant for tests, not for use while other threads run
   the kernels (it is atomic, so it is safe, but it changes their level). */
int nb__vmath_force(int level);

#endif
