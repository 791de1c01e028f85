/*
 * The GEMM kernel (src/kernels/gemm.c) against a plain long-double loop, for
 * every transpose, alpha and beta, padded leading dimensions, the shapes the
 * workloads use (W2's Linear layers, conv2d's per-image products) and both
 * sides of each dispatch boundary: libxsmm's small products (nb__gemm_small,
 * when built with it), OpenBLAS or the built-in loop, and the thread splits
 * (NB__GEMM_SPLIT_WORK, NB__GEMM_PARALLEL_WORK) with 2 threads.
 */
#include "check.h"
#include "kernels/kernels.h"
#include "nabla.h"

#include <stdint.h>
#include <stdlib.h>

static uint64_t state = 88172645463325252ull;
static double draw(void) { /* xorshift64: values in [-1, 1) */
    state ^= state << 13, state ^= state >> 7, state ^= state << 17;
    return (double)(state >> 11) / 4503599627370496.0 - 1.0;
}

/* C := alpha op(A) op(B) + beta C through nb__gemm and through the loop;
   1 when they agree to 1e-13 relative to the sum of |terms| */
static int one(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, double beta,
               int64_t pad) {
    int64_t lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
    int64_t ra = ta ? k : m, rb = tb ? n : k;
    double *A = malloc(sizeof(double) * (size_t)(ra * lda + 1));
    double *B = malloc(sizeof(double) * (size_t)(rb * ldb + 1));
    double *C = malloc(sizeof(double) * (size_t)(m * ldc + 1));
    double *C0 = malloc(sizeof(double) * (size_t)(m * ldc + 1));
    if (!A || !B || !C || !C0) {
        free(A), free(B), free(C), free(C0);
        return 0;
    }
    for (int64_t i = 0; i < ra * lda; i++) A[i] = draw();
    for (int64_t i = 0; i < rb * ldb; i++) B[i] = draw();
    for (int64_t i = 0; i < m * ldc; i++) C[i] = C0[i] = draw();
    nb__gemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
    int ok = 1;
    for (int64_t i = 0; i < m && ok; i++)
        for (int64_t j = 0; j < ldc && ok; j++) {
            if (j >= n) { /* the padding is not written */
                ok = C[i * ldc + j] == C0[i * ldc + j];
                continue;
            }
            long double s = 0, mag = 0;
            for (int64_t p = 0; p < k; p++) {
                long double t = (long double)(ta ? A[p * lda + i] : A[i * lda + p]) *
                                (tb ? B[j * ldb + p] : B[p * ldb + j]);
                s += t;
                mag += t < 0 ? -t : t;
            }
            long double want = (long double)alpha * s;
            long double scale = (long double)(alpha < 0 ? -alpha : alpha) * mag;
            if (beta != 0.0) {
                want += (long double)beta * C0[i * ldc + j];
                scale += fabsl((long double)beta * C0[i * ldc + j]);
            }
            long double err = fabsl((long double)C[i * ldc + j] - want);
            ok = err <= 1e-13L * (scale + 1e-300L);
        }
    if (!ok)
        fprintf(stderr, "gemm: ta %d tb %d m %lld n %lld k %lld alpha %g beta %g pad %lld: wrong\n",
                ta, tb, (long long)m, (long long)n, (long long)k, alpha, beta, (long long)pad);
    free(A), free(B), free(C), free(C0);
    return ok;
}

int main(void) {
    /* m, n, k: W2 (64 x 64 -> 128 -> 10 and its gradients), conv2d per image
       (W6: 64 x 196 x 288, 288 x 196 x 64, 64 x 288 x 196; W7's first layer),
       odd and degenerate sizes, and op(B) on both sides of 2^17 values */
    static const int64_t shapes[][3] = {
        {64, 128, 64}, {64, 10, 128}, {128, 10, 64}, {64, 128, 10}, {128, 64, 64},
        {64, 196, 288}, {288, 196, 64}, {64, 288, 196}, {32, 784, 9}, {1, 1, 1},
        {7, 5, 3}, {3, 1, 17}, {1, 9, 1}, {5, 4, 0}, {2, 512, 256}, {2, 513, 256},
    };
    const int ns = (int)(sizeof shapes / sizeof shapes[0]);
    const double alphas[2] = {1.0, -0.5}, betas[3] = {0.0, 1.0, 0.25};
    for (int threads = 1; threads <= 2; threads++) {
        nb_set_num_threads(threads);
        for (int s = 0; s < ns; s++) {
            /* the large ones (conv2d's) in fewer variants: the reference is slow */
            bool big = shapes[s][0] * shapes[s][1] * shapes[s][2] > 100000;
            for (int t = 0; t < 4; t++)
                for (int a = 0; a < (big ? 1 : 2); a++)
                    for (int b = 0; b < (big ? 2 : 3); b++)
                        for (int64_t pad = 0; pad <= (big ? 0 : 3); pad += 3)
                            CHECK(one(t & 1, t >> 1, shapes[s][0], shapes[s][1], shapes[s][2],
                                      alphas[a], betas[b], pad));
        }
        /* past the thread-split sizes (2^21 and 2^25 multiply-adds) */
        CHECK(one(false, false, 160, 130, 128, 1.0, 0.0, 0));
        CHECK(one(true, false, 130, 160, 128, 1.0, 1.0, 1));
        CHECK(one(false, true, 330, 320, 320, 1.0, 0.0, 0));
    }
    printf("test_gemm: %d passed, %d failed\n", check_passed_, check_failed_);
    return check_failed_ != 0;
}
