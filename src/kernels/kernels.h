/*
 * kernels.h — the numerical kernels under the ops: the GEMM (gemm.c,
 * libxsmm and OpenBLAS when built with them), the thread pool (threads.c) and the
 * vectorised exp/sigmoid/tanh (vmath.h).  They know nothing of tensors or
 * graphs: plain arrays in, plain arrays out.  Included by the op families.
 * Not installed.
 */
#ifndef NABLA_KERNELS_H
#define NABLA_KERNELS_H

#include <stdbool.h>
#include <stdint.h>

/* GEMM: C (m,n) = alpha * op(A) op(B) + beta * C, row-major; libxsmm or OpenBLAS
   when built with them.
   With nb_set_num_threads(n > 1), from NB__GEMM_SPLIT_WORK multiply-adds on
   it runs as n blocks of C on nabla's thread pool, each a single-threaded
   GEMM (a minibatch product: Fashion-MNIST's 64 x 784 x 256 gains 1.3x on
   2 cores), and from NB__GEMM_PARALLEL_WORK on with OpenBLAS's own threads,
   which do better on large products (512^3: 104 against 62 GFLOP/s). */
#define NB__GEMM_SPLIT_WORK (1 << 21)
#define NB__GEMM_PARALLEL_WORK (1 << 25)
/* Built with libxsmm (NB_HAVE_XSMM), a product with B not transposed goes
   to its JIT kernels when op(B) (k, n) fits in 1 MiB and the work is below
   NB__GEMM_PARALLEL_WORK: there they beat OpenBLAS 1.1-1.5x (conv2d's
   64 x 196 x 288 per image: 50 against 65 GFLOP/s; 288 x 196 x 64
   transposed A: 52 against 69; one thread, Intel Xeon), and lose when
   op(B) is larger (64 x 256 x 784: 46 against 40). */
static inline bool nb__gemm_small(int64_t m, int64_t n, int64_t k) {
    return k * n <= (1 << 17) && (double)m * (double)n * (double)k < (double)(1 << 25);
}
void nb__gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
              const double *A, int64_t lda, const double *B, int64_t ldb, double beta,
              double *C, int64_t ldc);

/* Threads: how many nb_set_num_threads() allows.  The split of [0, n) into
   chunks run on up to that many threads is public: nb_parallel_for
   (nabla.h), defined in threads.c. */
int nb__num_threads(void);

#endif /* NABLA_KERNELS_H */
