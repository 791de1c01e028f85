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
 *   exp(r) = 1 + r + r^2 * P(r), P a polynomial of degree 10 (a
 *         near-minimax fit, error < 6.4e-19; see the constants);
 *   the sum is formed as hi + (e + (c + r^2*P)) with hi = 1 + r and
 *         e = (1 - hi) + r its exact rounding error (Fast2Sum), so that the
 *         only large rounding is the last addition: error <= 0.5 ulp + ~0.25
 *         ulp from the small terms (measured: 0.66 ulp at most);
 *   exp(x) = exp(r) * 2^(k-b) * 2^b, b = +-60, both powers built from the
 *         bits of t: the first product is exact, the second rounds once,
 *         so overflow (+inf), subnormal results and underflow (+0) come out
 *         of the arithmetic itself, with no scalar fallback.
 *
 * Inputs are clamped to [-746, 710] first (which gives +0 and +inf) and NaN
 * goes through as NaN.  The body has no branch and no call, and its selects
 * are written so that GCC and clang vectorise the loops (see the comments in
 * exp_parts and clamp_bounds: GCC, with -ftrapping-math, its default, does
 * not vectorise a loop in which a ?: picks a value computed only for it).
 *
 * The loops are compiled three times on x86-64: baseline (SSE2, no FMA),
 * AVX2+FMA and AVX-512F (both with explicit fma), and the best one the CPU
 * has is chosen at run time.  Elsewhere there is the baseline only, with
 * fma where the target has a fast one (__FP_FAST_FMA).
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
/* P(r) ~ (exp(r) - 1 - r) / r^2 on [-ln2/2, ln2/2]: C2 = 1/2 and C3..C12
   a near-minimax fit (Lawson's iteration on a weighted least-squares fit of
   (exp(r) - 1 - r - r^2/2) / r^3 at 300 Chebyshev nodes, weight |r|^3, in
   200-bit arithmetic with mpmath, then rounded to double).  The error of
   r^2 P(r) is below 6.4e-19, 0.006 ulp of the result; the Taylor
   coefficients 1/j! (next to each) would need two more terms. */
static const double C2 = 0x1.0000000000000p-1;
static const double C3 = 0x1.555555555555bp-3;  /* 1/3!  = 0x1.5555555555555p-3  */
static const double C4 = 0x1.5555555555559p-5;  /* 1/4!  = 0x1.5555555555555p-5  */
static const double C5 = 0x1.111111110ebd9p-7;  /* 1/5!  = 0x1.1111111111111p-7  */
static const double C6 = 0x1.6c16c16c146e6p-10; /* 1/6!  = 0x1.6c16c16c16c17p-10 */
static const double C7 = 0x1.a01a01b3ae7e3p-13; /* 1/7!  = 0x1.a01a01a01a01ap-13 */
static const double C8 = 0x1.a01a01b059008p-16; /* 1/8!  = 0x1.a01a01a01a01ap-16 */
static const double C9 = 0x1.71ddefaf90130p-19; /* 1/9!  = 0x1.71de3a556c734p-19 */
static const double C10 = 0x1.27e4c60efcab7p-22; /* 1/10! = 0x1.27e4fb7789f5cp-22 */
static const double C11 = 0x1.af6ca13cf2ac1p-26; /* 1/11! = 0x1.ae64567f544e4p-26 */
static const double C12 = 0x1.1f94f00d3a927p-29; /* 1/12! = 0x1.1eed8eff8d898p-29 */

/* Inputs are clamped to [CLAMP_LO, CLAMP_HI] first: exp is +0 below (its
   value is under half the smallest subnormal, 2^-1075) and +inf above; NaN
   passes the clamp and the arithmetic as NaN.  Then k is in [-1076, 1024]. */
#define CLAMP_LO (-746.0)
#define CLAMP_HI 710.0
#define ONE_BITS UINT64_C(0x3ff0000000000000) /* 1.0 */

/* The clamp's bounds, passed through an empty asm so that the optimiser
   does not know their values.  With the constants in sight, GCC threads the
   loop body into "clamped: the result is a constant" and "not clamped"
   paths, and a loop with a branch in it is not vectorised (at SSE2). */
typedef struct vm_clamp {
    double lo, hi;
} vm_clamp;
NB_VM_INLINE vm_clamp clamp_bounds(void) {
    vm_clamp b = {CLAMP_LO, CLAMP_HI};
#if defined(__GNUC__) || defined(__clang__)
    uint64_t lo, hi;
    memcpy(&lo, &b.lo, sizeof lo);
    memcpy(&hi, &b.hi, sizeof hi);
    __asm__("" : "+r"(lo), "+r"(hi));
    memcpy(&b.lo, &lo, sizeof lo);
    memcpy(&b.hi, &hi, sizeof hi);
#endif
    return b;
}

/* a*b + c: a fused multiply-add where the level has one, else two roundings */
NB_VM_INLINE double mad(double a, double b, double c, const int use_fma) {
    return use_fma ? __builtin_fma(a, b, c) : a * b + c;
}

/* exp(x) = (s + slo) * sa * sb: s + slo = exp(r) to about 2^-60 relative,
   s rounded to nearest from it, and sa * sb = 2^k. */
typedef struct vm_exp {
    double s, slo, sa, sb;
} vm_exp;

NB_VM_INLINE vm_exp exp_parts(double x, vm_clamp b, const int use_fma) {
    /* a ?: whose arms are values already at hand: one that picks a value
       computed only for it lets GCC move that computation into a branch,
       which it then cannot vectorise without masked instructions */
    x = x < b.lo ? b.lo : x;
    x = x > b.hi ? b.hi : x;
    double t = mad(x, LOG2E, SHIFT, use_fma); /* 1.5*2^52 + k */
    double kd = t - SHIFT;
    double rhi = x - kd * LN2HI;               /* exact, fused or not */
    double rlo = kd * LN2LO;
    double r = rhi - rlo;
    double c = (rhi - r) - rlo;                /* r + c = rhi - rlo */
    /* P(r) = E(r^2) + r O(r^2): two short Horner chains that run side by
       side (the one long chain made the loop latency-bound) */
    double r2 = r * r;
    double pe = C12, po = C11;
    pe = mad(pe, r2, C10, use_fma);
    po = mad(po, r2, C9, use_fma);
    pe = mad(pe, r2, C8, use_fma);
    po = mad(po, r2, C7, use_fma);
    pe = mad(pe, r2, C6, use_fma);
    po = mad(po, r2, C5, use_fma);
    pe = mad(pe, r2, C4, use_fma);
    po = mad(po, r2, C3, use_fma);
    pe = mad(pe, r2, C2, use_fma);
    double p = mad(po, r, pe, use_fma);
    double tail = mad(r2, p, c, use_fma);     /* exp(r) - 1 - r, plus c */
    double hi = 1.0 + r;
    double e = (1.0 - hi) + r;                 /* hi + e = 1 + r exactly */
    double sum = e + tail;
    vm_exp o;
    o.s = hi + sum;                            /* exp(r), in [0.7, 1.42] */
    o.slo = (hi - o.s) + sum;                  /* its rounding error (Fast2Sum) */
    /* 2^k = 2^(k-b) * 2^b with b = 60 for x >= +0 and -60 for x <= -0, so
       that 2^(k-b) is a normal double, built from the bits of t: their low
       bits are k, and k - b + 1023 is its biased exponent.  s * 2^(k-b) is
       exact, and the one rounding is s * 2^(k-b) * 2^b's, which overflows
       to +inf, or underflows to a subnormal (rounded once, from s: error
       < 0.5 + 2^-50 ulp of the subnormal spacing) or to 0, as the exact
       value does.  (The sign comes from the bits, not from a ?:, which GCC
       turns into a conditional add that it cannot vectorise with SSE2.) */
    uint64_t ut, ux;
    memcpy(&ut, &t, sizeof ut);
    memcpy(&ux, &x, sizeof ux);
    uint64_t neg = ux >> 63, b120 = (neg << 7) - (neg << 3); /* 120 * neg */
    uint64_t ua = (ut + 963 + b120) << 52, ub = (UINT64_C(1083) - b120) << 52;
    memcpy(&o.sa, &ua, sizeof o.sa);
    memcpy(&o.sb, &ub, sizeof o.sb);
    return o;
}

/* exp(x) for every double x, branch-free, < 1 ulp */
NB_VM_INLINE double exp_body(double x, vm_clamp b, const int use_fma) {
    vm_exp p = exp_parts(x, b, use_fma);
    return p.s * p.sa * p.sb;
}

/* The stable sigmoid: e = exp(-|x|) <= 1, d = 1 + e; for x >= 0, 1/d, and
   e/d otherwise (x = -0 takes the second: the same 0.5).  Rounded that way
   alone, the errors of e, of d and of the division add up to more than 2
   ulp, so the result is corrected: with e + elo = exp(-|x|) (exp_parts'
   slo), d + de = 1 + e + elo (Fast2Sum) and num + nlo the numerator,
       (num + nlo)/(d + de) = q + ((num - q d) + nlo - q de) / (d + de),
   q = num/d rounded, num - q d exact with an fma (0 without: the base
   level is left with q's rounding), and 1/(d + de) ~ 1/d = q for x >= 0
   and 1 - q otherwise.  Result: within about 1 ulp. */
NB_VM_INLINE double sigmoid_body(double x, vm_clamp b, const int use_fma) {
    vm_exp p = exp_parts(-fabs(x), b, use_fma);
    double e = p.s * p.sa * p.sb, elo = p.slo * p.sa * p.sb;
    double d = 1.0 + e;
    double de = ((1.0 - d) + e) + elo;
    /* x >= 0 (sign bit clear): num = 1, nlo = 0, inv = q; else num = e,
       nlo = elo, inv = 1 - q.  With masks on the bits (see exp_parts). */
    uint64_t ux, ue, uelo, m;
    memcpy(&ux, &x, sizeof ux);
    memcpy(&ue, &e, sizeof ue);
    memcpy(&uelo, &elo, sizeof uelo);
    m = -(ux >> 63);                           /* all ones when x <= -0 */
    uint64_t unum = (ONE_BITS & ~m) | (ue & m), unlo = uelo & m;
    double num, nlo;
    memcpy(&num, &unum, sizeof num);
    memcpy(&nlo, &unlo, sizeof nlo);
    double q = num / d, q1 = 1.0 - q;
    uint64_t uq, uq1, uinv;
    memcpy(&uq, &q, sizeof uq);
    memcpy(&uq1, &q1, sizeof uq1);
    uinv = (uq & ~m) | (uq1 & m);
    double inv;                                /* ~ 1/d */
    memcpy(&inv, &uinv, sizeof inv);
    double rq = use_fma ? __builtin_fma(-q, d, num) : 0.0;
    return q + ((rq + nlo) - q * de) * inv;
}

/* ---- the loops, as templates inlined into each target's functions -------- */
/* The main loop runs over a multiple of 8 elements, so that its vector form
   needs no scalar epilogue: GCC at -O2 (its "very cheap" cost model)
   vectorises only such loops.  The last n % 8 go through the same loop on a
   copy in an 8-element buffer: the same operations, the same bits. */
#define VM_STEP 8

NB_VM_INLINE void map_t(double *restrict y, const double *restrict x, int64_t n, const int sig,
                        const int use_fma) {
    vm_clamp b = clamp_bounds();
    int64_t n8 = n & ~(int64_t)(VM_STEP - 1);
    for (int64_t i = 0; i < n8; i++)
        y[i] = sig ? sigmoid_body(x[i], b, use_fma) : exp_body(x[i], b, use_fma);
    if (n8 == n) return;
    double tx[VM_STEP] = {0}, ty[VM_STEP];
    memcpy(tx, x + n8, (size_t)(n - n8) * sizeof *tx);
    for (int i = 0; i < VM_STEP; i++)
        ty[i] = sig ? sigmoid_body(tx[i], b, use_fma) : exp_body(tx[i], b, use_fma);
    memcpy(y + n8, ty, (size_t)(n - n8) * sizeof *ty);
}
/* y = f(y): one pointer, so no question of aliasing */
NB_VM_INLINE void map_inplace_t(double *y, int64_t n, const int sig, const int use_fma) {
    vm_clamp b = clamp_bounds();
    int64_t n8 = n & ~(int64_t)(VM_STEP - 1);
    for (int64_t i = 0; i < n8; i++)
        y[i] = sig ? sigmoid_body(y[i], b, use_fma) : exp_body(y[i], b, use_fma);
    if (n8 == n) return;
    double t[VM_STEP] = {0};
    memcpy(t, y + n8, (size_t)(n - n8) * sizeof *t);
    for (int i = 0; i < VM_STEP; i++)
        t[i] = sig ? sigmoid_body(t[i], b, use_fma) : exp_body(t[i], b, use_fma);
    memcpy(y + n8, t, (size_t)(n - n8) * sizeof *t);
}

typedef struct vm_kernels {
    void (*map)(double *restrict y, const double *restrict x, int64_t n);
    void (*map_inplace)(double *y, int64_t n);
} vm_kernels;

/* one level's four functions and its tables for exp and sigmoid */
#define NB_VM_LEVEL(sfx, ATTR, FMA)                                                                \
    ATTR static void exp_map_##sfx(double *restrict y, const double *restrict x, int64_t n) {       \
        map_t(y, x, n, 0, FMA);                                                                    \
    }                                                                                              \
    ATTR static void exp_inplace_##sfx(double *y, int64_t n) { map_inplace_t(y, n, 0, FMA); }       \
    ATTR static void sig_map_##sfx(double *restrict y, const double *restrict x, int64_t n) {       \
        map_t(y, x, n, 1, FMA);                                                                    \
    }                                                                                              \
    ATTR static void sig_inplace_##sfx(double *y, int64_t n) { map_inplace_t(y, n, 1, FMA); }       \
    static const vm_kernels exp_k_##sfx = {exp_map_##sfx, exp_inplace_##sfx};                      \
    static const vm_kernels sig_k_##sfx = {sig_map_##sfx, sig_inplace_##sfx};

#if defined(__FP_FAST_FMA) && !NB_VM_X86
#define NB_VM_BASE_FMA 1
#else
#define NB_VM_BASE_FMA 0
#endif
NB_VM_LEVEL(base, , NB_VM_BASE_FMA)
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

static _Atomic int vm_level = -1; /* -1: not chosen yet */

int nb__vmath_max_level(void) { return detect_level(); }

int nb__vmath_level(void) {
    int l = atomic_load_explicit(&vm_level, memory_order_relaxed);
    if (l < 0) {
        /* first use: every thread detects the same; a level forced in the
           meantime wins */
        int expected = -1;
        l = detect_level();
        if (!atomic_compare_exchange_strong_explicit(&vm_level, &expected, l, memory_order_relaxed,
                                                     memory_order_relaxed))
            l = expected;
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

/* ---- the entry points ------------------------------------------------------- */
static void run(double *y, const double *x, int64_t n, int sig) {
    if (n <= 0) return;
    const vm_kernels *k = kernels(sig);
    if (y == x) k->map_inplace(y, n);
    else k->map(y, x, n);
}

void nb__exp_n(double *y, const double *x, int64_t n) { run(y, x, n, 0); }

void nb__sigmoid_n(double *y, const double *x, int64_t n) { run(y, x, n, 1); }
