/*
 * kernels.h — the numerical kernels under the ops: the GEMM (gemm.c,
 * OpenBLAS when built with it), the thread pool (threads.c) and the
 * vectorised exp/sigmoid/tanh (vmath.h).  They know nothing of tensors or
 * graphs: plain arrays in, plain arrays out.  Included by the op families.
 * Not installed.
 */
#ifndef NABLA_KERNELS_H
#define NABLA_KERNELS_H

#include <stdbool.h>
#include <stdint.h>

/* GEMM: C (m,n) = alpha * op(A) op(B) + beta * C, row-major; OpenBLAS when built with it.
   With nb_set_num_threads(n > 1), from NB__GEMM_SPLIT_WORK multiply-adds on
   it runs as n blocks of C on nabla's thread pool, each a single-threaded
   GEMM (a minibatch product: Fashion-MNIST's 64 x 784 x 256 gains 1.3x on
   2 cores), and from NB__GEMM_PARALLEL_WORK on with OpenBLAS's own threads,
   which do better on large products (512^3: 104 against 62 GFLOP/s). */
#define NB__GEMM_SPLIT_WORK (1 << 21)
#define NB__GEMM_PARALLEL_WORK (1 << 25)
void nb__gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
              const double *A, int64_t lda, const double *B, int64_t ldb, double beta,
              double *C, int64_t ldc);

/* Threads: how many nb_set_num_threads() allows.  The split of [0, n) into
   chunks run on up to that many threads is public: nb_parallel_for
   (nabla.h), defined in threads.c. */
int nb__num_threads(void);

#endif /* NABLA_KERNELS_H */
