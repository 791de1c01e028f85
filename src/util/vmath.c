/*
 * Vectorised exp and sigmoid over arrays (see vmath.h for the contract).
 *
 * The method (Cody & Waite's range reduction, as in e.g. Muller, "Elementary
 * Functions", ch. 11; written here from scratch):
 *
 *   k   = nearest integer to x / ln2   (the 1.5*2^52 "shifter" trick: the
 *         sum x*log2(e) + 1.5*2^52 rounds to an integer whose low bits are k)
 *   r   = x - k*ln2, |r| <= ln2/2 (+ a few ulp), with ln2 = LN2HI + LN2LO
 *         where LN2HI has 39 significant bits, so k*LN2HI is exact for
 *         |k| < 2^14 and x - k*LN2HI is exact (Sterbenz);  r = rhi - k*LN2LO
 *         is rounded, and c = the rounding error of that subtraction;
 *   exp(r) = 1 + r + r^2 * P(r),  P(r) = sum_{j=2..14} r^(j-2) / j!  (the
 *         Taylor series; its first omitted term is < 1e-19);
 *   the sum is formed as hi + (e + (c + r^2*P)) with hi = 1 + r and
 *         e = (1 - hi) + r its exact rounding error (Fast2Sum), so that the
 *         only large rounding is the last addition: error <= 0.5 ulp + ~0.2
 *         ulp from the small terms;
 *   exp(x) = 2^k * exp(r): k is added to the exponent field of the result
 *         (integer add on the bits), exact while the result is normal.
 *
 * The body has no branch and no call, so GCC and clang vectorise the loops.
 * Lanes the body does not cover exactly are fixed branch-free: NaN, x above
 * 709.79 (+inf) and x below -745.2 (+0); and the rare lanes whose result is
 * subnormal (-745.2 <= x < -708) or near overflow (709 < x <= 709.79) are
 * recomputed afterwards with libm's exp, found by a cheap vectorised scan of
 * each block before the main loop.
 *
 * The loops are compiled three times on x86-64: baseline (SSE2), AVX2+FMA
 * (explicit fma in the polynomial) and AVX-512F, and chosen at run time.
 */
#include "vmath.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define NB_VM_INLINE static inline __attribute__((always_inline))
#else
#define NB_VM_INLINE static inline
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define NB_VM_X86 1
#else
#define NB_VM_X86 0
#endif

/* ---- constants ------------------------------------------------------------ */
static const double LOG2E = 0x1.71547652b82fep+0;   /* 1/ln2 rounded            */
static const double SHIFT = 0x1.8p52;               /* 1.5 * 2^52                */
static const double LN2HI = 0x1.62e42fefa4000p-1;   /* ln2, 39 significant bits  */
static const double LN2LO = -0x1.8432a1b0e2634p-43; /* ln2 - LN2HI, rounded       */
/* 1/j! for j = 2..14, rounded to nearest */
static const double C2 = 0x1.0000000000000p-1;
static const double C3 = 0x1.5555555555555p-3;
static const double C4 = 0x1.5555555555555p-5;
static const double C5 = 0x1.1111111111111p-7;
static const double C6 = 0x1.6c16c16c16c17p-10;
static const double C7 = 0x1.a01a01a01a01ap-13;
static const double C8 = 0x1.a01a01a01a01ap-16;
static const double C9 = 0x1.71de3a556c734p-19;
static const double C10 = 0x1.27e4fb7789f5cp-22;
static const double C11 = 0x1.ae64567f544e4p-26;
static const double C12 = 0x1.1eed8eff8d898p-29;
static const double C13 = 0x1.6124613a86d09p-33;
static const double C14 = 0x1.93974a8c07c9dp-37;

/* The body is exact-to-0.7-ulp for x in [SAFE_LO, SAFE_HI]: k in
   [-1021, 1023], so 2^k * exp(r) stays normal and finite. */
#define SAFE_LO (-708.0)
#define SAFE_HI 709.0
/* beyond these, the answer is +0 / +inf (libm's too) */
#define ZERO_BELOW (-745.2)
#define INF_ABOVE 709.79
#define INF_BITS UINT64_C(0x7ff0000000000000)

/* a*b + c: a fused multiply-add where the level has one, else two roundings */
NB_VM_INLINE double mad(double a, double b, double c, const int use_fma) {
    return use_fma ? __builtin_fma(a, b, c) : a * b + c;
}

/* exp(x), branch-free; exact to < 1 ulp for x in [SAFE_LO, SAFE_HI], the
   right special value for NaN, x > INF_ABOVE and x < ZERO_BELOW, garbage
   (but no UB) elsewhere. */
NB_VM_INLINE double exp_body(double x, const int use_fma) {
    double t = mad(x, LOG2E, SHIFT, use_fma); /* 1.5*2^52 + k */
    double kd = t - SHIFT;
    double rhi = x - kd * LN2HI;               /* exact, fused or not */
    double rlo = kd * LN2LO;
    double r = rhi - rlo;
    double c = (rhi - r) - rlo;                /* r + c = rhi - rlo */
    double p = C14;
    p = mad(p, r, C13, use_fma);
    p = mad(p, r, C12, use_fma);
    p = mad(p, r, C11, use_fma);
    p = mad(p, r, C10, use_fma);
    p = mad(p, r, C9, use_fma);
    p = mad(p, r, C8, use_fma);
    p = mad(p, r, C7, use_fma);
    p = mad(p, r, C6, use_fma);
    p = mad(p, r, C5, use_fma);
    p = mad(p, r, C4, use_fma);
    p = mad(p, r, C3, use_fma);
    p = mad(p, r, C2, use_fma);
    double tail = mad(r * r, p, c, use_fma);  /* exp(r) - 1 - r, plus c */
    double hi = 1.0 + r;
    double e = (1.0 - hi) + r;                 /* hi + e = 1 + r exactly */
    double s = hi + (e + tail);                /* exp(r), in [0.7, 1.42] */
    uint64_t us, ut;
    memcpy(&us, &s, sizeof us);
    memcpy(&ut, &t, sizeof ut);
    us += ut << 52;                            /* low bits of t are k: 2^k * s */
    /* the special lanes, as bit masks: a ?: here lets the compiler move the
       whole computation into one branch, which it then cannot vectorise */
    uint64_t ux, big = -(uint64_t)(x > INF_ABOVE), tiny = -(uint64_t)(x < ZERO_BELOW),
                 nan = -(uint64_t)(x != x);
    memcpy(&ux, &x, sizeof ux);
    us = (us & ~big) | (INF_BITS & big);       /* +inf */
    us &= ~tiny;                               /* +0 */
    us = (us & ~nan) | (ux & nan);             /* NaN in, the same NaN out */
    memcpy(&s, &us, sizeof s);
    return s;
}

/* the stable sigmoid: e = exp(-|x|) <= 1; x >= 0: 1/(1+e), else e/(1+e) */
NB_VM_INLINE double sigmoid_body(double x, const int use_fma) {
    double e = exp_body(-fabs(x), use_fma);
    double num = x >= 0 ? 1.0 : e;
    return num / (1.0 + e);
}

/* lanes exp_body does not get right (NaN compares false: it is handled);
   & rather than && so that no comparison is conditional */
NB_VM_INLINE int exp_lane_bad(double x) {
    return ((x < SAFE_LO) & (x >= ZERO_BELOW)) | ((x > SAFE_HI) & (x <= INF_ABOVE));
}
NB_VM_INLINE int sigmoid_lane_bad(double x) {
    double a = fabs(x);
    return (a > -SAFE_LO) & (a <= -ZERO_BELOW);
}

/* the scalar sigmoid of src/ops/elementwise.c, for the rare lanes */
static double sigmoid_scalar(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

/* ---- the loops, as templates inlined into each target's functions -------- */
NB_VM_INLINE int64_t any_bad_t(const double *x, int64_t n, const int sig) {
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) bad |= sig ? sigmoid_lane_bad(x[i]) : exp_lane_bad(x[i]);
    return bad;
}
NB_VM_INLINE void map_t(double *restrict y, const double *restrict x, int64_t n, const int sig,
                        const int use_fma) {
    for (int64_t i = 0; i < n; i++) y[i] = sig ? sigmoid_body(x[i], use_fma) : exp_body(x[i], use_fma);
}
NB_VM_INLINE void map_inplace_t(double *y, int64_t n, const int sig, const int use_fma) {
    for (int64_t i = 0; i < n; i++) y[i] = sig ? sigmoid_body(y[i], use_fma) : exp_body(y[i], use_fma);
}

typedef struct vm_kernels {
    int64_t (*any_bad)(const double *x, int64_t n);
    void (*map)(double *restrict y, const double *restrict x, int64_t n);
    void (*map_inplace)(double *y, int64_t n);
} vm_kernels;

/* one level's six functions and its tables for exp and sigmoid */
#define NB_VM_LEVEL(sfx, ATTR, FMA)                                                                \
    ATTR static int64_t exp_bad_##sfx(const double *x, int64_t n) { return any_bad_t(x, n, 0); }  \
    ATTR static void exp_map_##sfx(double *restrict y, const double *restrict x, int64_t n) {       \
        map_t(y, x, n, 0, FMA);                                                                    \
    }                                                                                              \
    ATTR static void exp_inplace_##sfx(double *y, int64_t n) { map_inplace_t(y, n, 0, FMA); }       \
    ATTR static int64_t sig_bad_##sfx(const double *x, int64_t n) { return any_bad_t(x, n, 1); }  \
    ATTR static void sig_map_##sfx(double *restrict y, const double *restrict x, int64_t n) {       \
        map_t(y, x, n, 1, FMA);                                                                    \
    }                                                                                              \
    ATTR static void sig_inplace_##sfx(double *y, int64_t n) { map_inplace_t(y, n, 1, FMA); }       \
    static const vm_kernels exp_k_##sfx = {exp_bad_##sfx, exp_map_##sfx, exp_inplace_##sfx};       \
    static const vm_kernels sig_k_##sfx = {sig_bad_##sfx, sig_map_##sfx, sig_inplace_##sfx};

NB_VM_LEVEL(base, , 0)
#if NB_VM_X86
NB_VM_LEVEL(avx2, __attribute__((target("avx2,fma"))), 1)
NB_VM_LEVEL(avx512, __attribute__((target("avx512f,avx2,fma"))), 1)
#endif

/* ---- dispatch --------------------------------------------------------------- */
static int detect_level(void) {
#if NB_VM_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") &&
        __builtin_cpu_supports("fma"))
        return NB__VM_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return NB__VM_AVX2;
#endif
    return NB__VM_PORTABLE;
}

static _Atomic int vm_level = -1; /* -1: not chosen yet (every thread chooses the same) */

int nb__vmath_max_level(void) { return detect_level(); }

int nb__vmath_level(void) {
    int l = atomic_load_explicit(&vm_level, memory_order_relaxed);
    if (l < 0) {
        l = detect_level();
        atomic_store_explicit(&vm_level, l, memory_order_relaxed);
    }
    return l;
}

int nb__vmath_force(int level) {
    int max = detect_level();
    int l = level < 0 || level > max ? max : level;
    atomic_store_explicit(&vm_level, l, memory_order_relaxed);
    return l;
}

static const vm_kernels *kernels(int sig) {
    switch (nb__vmath_level()) {
#if NB_VM_X86
    case NB__VM_AVX512: return sig ? &sig_k_avx512 : &exp_k_avx512;
    case NB__VM_AVX2: return sig ? &sig_k_avx2 : &exp_k_avx2;
#endif
    default: return sig ? &sig_k_base : &exp_k_base;
    }
}

/* ---- the drivers ------------------------------------------------------------ */
#define BLOCK 256

static void run(double *y, const double *x, int64_t n, int sig) {
    const vm_kernels *k = kernels(sig);
    for (int64_t i0 = 0; i0 < n; i0 += BLOCK) {
        int64_t m = n - i0 < BLOCK ? n - i0 : BLOCK;
        double *yb = y + i0;
        const double *xb = x + i0;
        if (!k->any_bad(xb, m)) {
            if (yb == xb) k->map_inplace(yb, m);
            else k->map(yb, xb, m);
            continue;
        }
        /* a rare lane: keep the inputs (y may be x), then redo those lanes */
        double tmp[BLOCK];
        memcpy(tmp, xb, (size_t)m * sizeof *tmp);
        k->map(yb, tmp, m);
        for (int64_t i = 0; i < m; i++) {
            if (sig ? sigmoid_lane_bad(tmp[i]) : exp_lane_bad(tmp[i]))
                yb[i] = sig ? sigmoid_scalar(tmp[i]) : exp(tmp[i]);
        }
    }
}

void nb__exp_n(double *y, const double *x, int64_t n) { run(y, x, n, 0); }

void nb__sigmoid_n(double *y, const double *x, int64_t n) { run(y, x, n, 1); }
