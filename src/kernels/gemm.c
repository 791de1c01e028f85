/*
 * The GEMM behind matmul, the nn layer and conv2d: small products through
 * libxsmm and the others through OpenBLAS when nabla is built with them, a
 * cache-blocked loop otherwise; large products split over threads
 * (kernels.h says when).
 */
#include "kernels.h"
#include "nabla.h" /* nb_parallel_for */

#include <limits.h>
#include <pthread.h>
#include <stddef.h>

#ifdef NB_HAVE_XSMM
#include <libxsmm.h>
#include <stdlib.h>
#endif

#ifdef NB_HAVE_OPENBLAS
/* OpenBLAS's CBLAS entry points (declared here to need no header path) */
void cblas_dgemm(int order, int ta, int tb, int m, int n, int k, double alpha, const double *A,
                 int lda, const double *B, int ldb, double beta, double *C, int ldc);
void openblas_set_num_threads(int n);
#endif

/* ---- GEMM ---------------------------------------------------------------------------- */
static void gemm_fallback(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
                          const double *A, int64_t lda, const double *B, int64_t ldb, double beta,
                          double *C, int64_t ldc) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) C[i * ldc + j] = beta == 0.0 ? 0.0 : beta * C[i * ldc + j];
    enum { BI = 64, BK = 256 };
    for (int64_t i0 = 0; i0 < m; i0 += BI)
        for (int64_t p0 = 0; p0 < k; p0 += BK) {
            int64_t i1 = i0 + BI < m ? i0 + BI : m, p1 = p0 + BK < k ? p0 + BK : k;
            for (int64_t i = i0; i < i1; i++) {
                double *c = C + i * ldc;
                if (!tb) {
                    /* C[i,:] += a_ip B[p,:]: the inner loop runs along rows of B */
                    for (int64_t p = p0; p < p1; p++) {
                        double a = alpha * (ta ? A[p * lda + i] : A[i * lda + p]);
                        const double *b = B + p * ldb;
                        for (int64_t j = 0; j < n; j++) c[j] += a * b[j];
                    }
                } else {
                    /* C[i,j] += A[i,:] . B[j,:] */
                    for (int64_t j = 0; j < n; j++) {
                        const double *b = B + j * ldb;
                        double s = 0.0;
                        if (!ta)
                            for (int64_t p = p0; p < p1; p++) s += A[i * lda + p] * b[p];
                        else
                            for (int64_t p = p0; p < p1; p++) s += A[p * lda + i] * b[p];
                        c[j] += alpha * s;
                    }
                }
            }
        }
}

#ifdef NB_HAVE_XSMM
/* Small products through libxsmm's JIT kernels, chosen by shape (kernels.h
   says which).  libxsmm is column-major: row-major C = op(A) op(B) is its
   C^T = op(B)^T op(A)^T, the same call with A and B swapped.  Its 1.17 kernels
   do not take a transposed first operand (our B transposed), so op(B) = B^T
   stays with the BLAS (copying B^T first cost more than it saved: W2's
   Linear layers are A B^T).  false: not done here (a shape, a transpose or an
   alpha/beta the kernels do not take, no kernel), the caller goes on to the
   BLAS. */
static bool gemm_xsmm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
                      const double *A, int64_t lda, const double *B, int64_t ldb, double beta,
                      double *C, int64_t ldc) {
    if (tb || !nb__gemm_small(m, n, k) || alpha != 1.0 || (beta != 0.0 && beta != 1.0) ||
        lda > INT_MAX || ldb > INT_MAX || ldc > INT_MAX)
        return false;
    libxsmm_blasint xm = (libxsmm_blasint)n, xn = (libxsmm_blasint)m, xk = (libxsmm_blasint)k;
    libxsmm_blasint xlda = (libxsmm_blasint)ldb, xldb = (libxsmm_blasint)lda,
                    xldc = (libxsmm_blasint)ldc;
    int flags = ta ? LIBXSMM_GEMM_FLAG_TRANS_B : LIBXSMM_GEMM_FLAG_NONE,
        prefetch = LIBXSMM_GEMM_PREFETCH_NONE;
    libxsmm_dmmfunction f =
        libxsmm_dmmdispatch(xm, xn, xk, &xlda, &xldb, &xldc, &alpha, &beta, &flags, &prefetch);
    if (!f) return false;
    f(B, A, C);
    /* The JIT's AVX kernels leave the upper halves of the vector registers
       dirty, and every SSE instruction after them (nabla's own loops, libm)
       then pays a transition penalty: W2 ran 2.6x slower until this. */
    if (__builtin_cpu_supports("avx")) __asm__ volatile("vzeroupper");
    return true;
}
#endif

static void gemm1(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double *A,
                  int64_t lda, const double *B, int64_t ldb, double beta, double *C, int64_t ldc) {
#ifdef NB_HAVE_XSMM
    if (k > 0 && gemm_xsmm(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc)) return;
#endif
#ifdef NB_HAVE_OPENBLAS
    if (m <= INT_MAX && n <= INT_MAX && k <= INT_MAX && lda <= INT_MAX && ldb <= INT_MAX &&
        ldc <= INT_MAX && k > 0) {
        /* 101 = CblasRowMajor, 111 = CblasNoTrans, 112 = CblasTrans */
        cblas_dgemm(101, ta ? 112 : 111, tb ? 112 : 111, (int)m, (int)n, (int)k, alpha, A,
                    (int)(lda ? lda : 1), B, (int)(ldb ? ldb : 1), beta, C, (int)(ldc ? ldc : 1));
        return;
    }
#endif
    gemm_fallback(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

#ifdef NB_HAVE_OPENBLAS
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static void blas_single(void) { openblas_set_num_threads(1); }
#endif

/* A product is split into blocks of C's rows (or columns, when C is wide),
   one per thread, each a single-threaded GEMM. */
typedef struct {
    bool ta, tb, by_rows;
    int64_t m, n, k, lda, ldb, ldc;
    double alpha, beta;
    const double *A, *B;
    double *C;
} gemm_job;

static void gemm_block(int64_t lo, int64_t hi, void *ctx) {
    const gemm_job *j = ctx;
    if (j->by_rows) /* rows lo..hi of C: rows of op(A) */
        gemm1(j->ta, j->tb, hi - lo, j->n, j->k, j->alpha, j->ta ? j->A + lo : j->A + lo * j->lda,
              j->lda, j->B, j->ldb, j->beta, j->C + lo * j->ldc, j->ldc);
    else /* columns lo..hi of C: columns of op(B) */
        gemm1(j->ta, j->tb, j->m, hi - lo, j->k, j->alpha, j->A, j->lda,
              j->tb ? j->B + lo * j->ldb : j->B + lo, j->ldb, j->beta, j->C + lo, j->ldc);
}

void nb__gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double *A,
              int64_t lda, const double *B, int64_t ldb, double beta, double *C, int64_t ldc) {
    if (m == 0 || n == 0) return;
#ifdef NB_HAVE_OPENBLAS
    pthread_once(&blas_once, blas_single);
#endif
    double work = (double)m * (double)n * (double)k;
    int nt = nb__num_threads();
    if (nt > 1 && work >= NB__GEMM_SPLIT_WORK && work < NB__GEMM_PARALLEL_WORK) {
        gemm_job j = {ta, tb, m >= n, m, n, k, lda, ldb, ldc, alpha, beta, A, B, C};
        nb_parallel_for(j.by_rows ? m : n, 16, gemm_block, &j);
        return;
    }
    if (nt > 1 && work >= NB__GEMM_PARALLEL_WORK) {
#ifdef NB_HAVE_OPENBLAS
        /* OpenBLAS threads a large product better than blocks of it would
           (measured: 104 against 62 GFLOP/s on 512^3 with 2 threads); it goes
           back to one thread afterwards, so small products never pay for it */
        openblas_set_num_threads(nt);
        gemm1(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
        openblas_set_num_threads(1);
#else
        gemm_job j = {ta, tb, m >= n, m, n, k, lda, ldb, ldc, alpha, beta, A, B, C};
        int64_t split = j.by_rows ? m : n;
        nb_parallel_for(split, 16, gemm_block, &j);
#endif
        return;
    }
    gemm1(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

