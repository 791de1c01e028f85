/*
 * The GEMM behind matmul and the nn layer: OpenBLAS when nabla is built with
 * it, a cache-blocked loop otherwise; large products split over threads
 * (kernels.h says when).
 */
#include "kernels.h"
#include "nabla.h" /* nb_parallel_for */

#include <limits.h>
#include <pthread.h>
#include <stddef.h>

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

static void gemm1(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double *A,
                  int64_t lda, const double *B, int64_t ldb, double beta, double *C, int64_t ldc) {
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

