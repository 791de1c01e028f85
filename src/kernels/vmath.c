/*
 * Vectorised exp, sigmoid and tanh over arrays (see vmath.h for the
 * contract).  tanh is described at tanh_body; it uses exp's reduction.
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
 * fma where the target has a fast one (__FP_FAST_FMA).  A call reads the
 * level's table of functions with one relaxed atomic load; n = 1 (a scalar
 * chain of tiny ops) goes to a scalar function of the same body with no
 * loop, and the n % 8 elements after the vector loop to a scalar loop: for
 * tanh these take only the branch the element needs, with the same
 * operations, so the bits are the same wherever an element lies.
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
#define SIGN_BIT UINT64_C(0x8000000000000000)

/* tanh(a), a = |x| < 0.55: a + a^3 Q(a^2), Q of degree 10: a
   near-minimax fit of the relative error of tanh on [0, 0.551] (Lawson's
   iteration as for P above, weight a^3/tanh(a), 300 Chebyshev nodes in
   200-bit arithmetic with mpmath; the coefficients rounded to double one at
   a time, lowest first, the higher ones refitted after each rounding).
   Relative error of the rounded polynomial: below 6.1e-19, 0.0055 ulp.
   (The Taylor coefficients 2^2n (2^2n - 1) B_2n / (2n)!, next to each,
   converge too slowly this far out: the pole at i pi/2 is near.) */
static const double T3 = -0x1.555555555554fp-2;   /* Taylor: -1/3 = -0x1.5555555555555p-2 */
static const double T5 = 0x1.111111111077ap-3;    /* 2/15        =  0x1.1111111111111p-3  */
static const double T7 = -0x1.ba1ba1b97abcep-5;   /* -17/315     = -0x1.ba1ba1ba1ba1cp-5  */
static const double T9 = 0x1.664f4858b4399p-6;    /* 62/2835     =  0x1.664f4882c10fap-6  */
static const double T11 = -0x1.226e2ef998ec0p-7;  /*             = -0x1.226e355e6c23dp-7  */
static const double T13 = 0x1.d6d296fd34e68p-9;   /*             =  0x1.d6d3d0e157de0p-9  */
static const double T15 = -0x1.7d8f9479de88ap-10; /*             = -0x1.7da36452b75e3p-10 */
static const double T17 = 0x1.3481898b45e25p-11;  /*             =  0x1.3558248036744p-11 */
static const double T19 = -0x1.e958e5b3f835bp-13; /*             = -0x1.f57d7734d1664p-13 */
static const double T21 = 0x1.5d2ffda53e2e9p-14;  /*             =  0x1.967e18afcafadp-14 */
static const double T23 = -0x1.4661c61c1cc78p-16; /*             = -0x1.497d8eea25259p-15 */
/* The polynomial is used below 0.55 (its bits: the select compares them),
   1 - 2/(exp(2a) + 1) from there on: tanh(0.55) > 1/2, so that 1 - q is
   in [1/2, 1) there.  Above TANH_HI, 22, a is clamped to it (tanh rounds to
   1 from 19.0615474 on; exp(44) is far from overflow). */
#define TANH_SMALL_BITS UINT64_C(0x3fe199999999999a) /* 0.55 */
#define TANH_HI 22.0
#define TANH_HI_BITS UINT64_C(0x4036000000000000) /* 22.0 */
#define INF_BITS UINT64_C(0x7ff0000000000000)

/* The clamp's bounds, passed through an empty asm so that the optimiser
   does not know their values.  With the constants in sight, GCC threads the
   loop body into "clamped: the result is a constant" and "not clamped"
   paths, and a loop with a branch in it is not vectorised (at SSE2). */
typedef struct vm_clamp {
    double lo, hi, tanh_hi;
} vm_clamp;
NB_VM_INLINE vm_clamp clamp_bounds(void) {
    vm_clamp b = {CLAMP_LO, CLAMP_HI, TANH_HI};
#if defined(__GNUC__) || defined(__clang__)
    uint64_t lo, hi, th;
    memcpy(&lo, &b.lo, sizeof lo);
    memcpy(&hi, &b.hi, sizeof hi);
    memcpy(&th, &b.tanh_hi, sizeof th);
    __asm__("" : "+r"(lo), "+r"(hi), "+r"(th));
    memcpy(&b.lo, &lo, sizeof lo);
    memcpy(&b.hi, &hi, sizeof hi);
    memcpy(&b.tanh_hi, &th, sizeof th);
#endif
    return b;
}

/* a*b + c: a fused multiply-add where the level has one, else two roundings */
NB_VM_INLINE double mad(double a, double b, double c, const int use_fma) {
    return use_fma ? __builtin_fma(a, b, c) : a * b + c;
}

/* exp(x) = (s + slo) * 2^k: s + slo = exp(r) to about 2^-60 relative, s
   rounded to nearest from it; t = 1.5*2^52 + k.  For x in the clamped
   range (or NaN). */
typedef struct vm_expr {
    double s, slo, t;
} vm_expr;

NB_VM_INLINE vm_expr exp_reduced(double x, const int use_fma) {
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
    vm_expr o;
    o.s = hi + sum;                            /* exp(r), in [0.7, 1.42] */
    o.slo = (hi - o.s) + sum;                  /* its rounding error (Fast2Sum) */
    o.t = t;
    return o;
}

/* exp(x) = (s + slo) * sa * sb, as exp_reduced's with sa * sb = 2^k */
typedef struct vm_exp {
    double s, slo, sa, sb;
} vm_exp;

NB_VM_INLINE vm_exp exp_parts(double x, vm_clamp b, const int use_fma) {
    /* a ?: whose arms are values already at hand: one that picks a value
       computed only for it lets GCC move that computation into a branch,
       which it then cannot vectorise without masked instructions */
    x = x < b.lo ? b.lo : x;
    x = x > b.hi ? b.hi : x;
    vm_expr er = exp_reduced(x, use_fma);
    vm_exp o;
    o.s = er.s;
    o.slo = er.slo;
    double t = er.t;
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

/* tanh(x) = sign(x) tanh(a), a = |x|, both branches computed, one kept:
 *
 *  - a < 0.55: a + a * (u Q(u)), u = a^2, the last step one fma where the
 *    level has it.  |a u Q(u)| < 0.05 a, so the rounding errors of u, Q and
 *    u Q (about 3.5 2^-53 relative) reach the result much reduced: at most
 *    0.5 + 0.18 ulp of a, 0.5 + 0.35 ulp of a result just below 1/2 (from
 *    0.5493 on) plus 1/16 ulp for the product without an fma: within 0.91
 *    ulp (measured: 0.75 with fma, 0.82 without).  Tiny a: u Q(u) underflows
 *    or is negligible and the result is a (subnormal a included: a^2 = 0);
 *  - a >= 0.55: 1 - 2/(e + 1), e = exp(2a) (2a exact) from exp_reduced,
 *    e + elo = exp(2a) to about 2^-60 (2^k built from t's bits, k <= 64:
 *    both products exact), d + de = e + 1 + elo (Fast2Sum, e >= 1), q = 2/d
 *    rounded and, as in the sigmoid,
 *        2/(d + de) = q + corr,  corr = ((2 - q d) - q de) / d,
 *    2 - q d exact with an fma (0 without: q's rounding, at most 2^-55,
 *    stays, 1/4 ulp of the result), 1/d ~ q/2.  Then 1 - q = h + hl
 *    (Fast2Sum: q <= 1) and tanh(a) = h + (hl - corr): one rounding of a
 *    result in [1/2, 1), whose ulp 2^-53 is larger than q's (q < 1/2), so
 *    no cancellation: within 0.5 ulp and a little (0.75 and a little without
 *    an fma), and correctly rounded to 1 exactly from 19.061547465398498 on.
 *    a is clamped to 22 first: +inf gives 1, NaN passes as NaN.
 *
 * The branch is chosen from the bits of a (below 0.55's: the sign of their
 * difference, all in SSE2's integer operations) and the sign put back with
 * an or, so tanh(-x) = -tanh(x) bit for bit and tanh(-0) = -0. */
/* a + a^3 Q(a^2) for 0 <= a < 0.55 */
NB_VM_INLINE double tanh_small(double a, const int use_fma) {
    /* Q(u) = E(u^2) + u O(u^2): two chains side by side */
    double u = a * a, u2 = u * u;
    double qe = T23, qo = T21;
    qe = mad(qe, u2, T19, use_fma);
    qo = mad(qo, u2, T17, use_fma);
    qe = mad(qe, u2, T15, use_fma);
    qo = mad(qo, u2, T13, use_fma);
    qe = mad(qe, u2, T11, use_fma);
    qo = mad(qo, u2, T9, use_fma);
    qe = mad(qe, u2, T7, use_fma);
    qo = mad(qo, u2, T5, use_fma);
    qe = mad(qe, u2, T3, use_fma);
    double q3 = mad(qo, u, qe, use_fma) * u; /* u Q(u) */
    return mad(a, q3, a, use_fma);
}

/* 1 - 2/(exp(2a) + 1) for a >= 0.55 (any a >= 0 or NaN gives no trap or
   inf: the vector loop computes it for every element) */
NB_VM_INLINE double tanh_large(double a, vm_clamp b, const int use_fma) {
    double ac = a > b.tanh_hi ? b.tanh_hi : a; /* NaN stays */
    vm_expr p = exp_reduced(ac + ac, use_fma);
    /* 2^k, k in [0, 64], from t's bits as in exp_parts; exact products */
    uint64_t ut, uk;
    memcpy(&ut, &p.t, sizeof ut);
    uk = (ut + 1023) << 52;
    double pk;
    memcpy(&pk, &uk, sizeof pk);
    double e = p.s * pk, elo = p.slo * pk;
    double d = e + 1.0;
    double de = ((e - d) + 1.0) + elo;         /* d + de = e + 1 + elo */
    double q = 2.0 / d;
    double rq = use_fma ? __builtin_fma(-q, d, 2.0) : 0.0;
    double corr = (rq - q * de) * (0.5 * q);
    double h = 1.0 - q;
    double hl = (1.0 - h) - q;                 /* h + hl = 1 - q exactly */
    return h + (hl - corr);
}

/* |x| and x's sign bit */
NB_VM_INLINE double abs_sign(double x, uint64_t *sign) {
    uint64_t ux;
    memcpy(&ux, &x, sizeof ux);
    *sign = ux & SIGN_BIT;
    ux ^= *sign;
    double a;
    memcpy(&a, &ux, sizeof a);
    return a;
}

NB_VM_INLINE double or_sign(double r, uint64_t sign) {
    uint64_t ur;
    memcpy(&ur, &r, sizeof ur);
    ur |= sign;
    memcpy(&r, &ur, sizeof r);
    return r;
}

/* branch-free: both computed, one kept; a < 0.55 from the bits (a's are
   below 2^63, so the top bit of their difference from 0.55's is the
   borrow: SSE2 has 64-bit subtraction and shifts, not comparisons) */
NB_VM_INLINE double tanh_body(double x, vm_clamp b, const int use_fma) {
    uint64_t sign, ua, us, ul;
    double a = abs_sign(x, &sign);
    double small = tanh_small(a, use_fma), large = tanh_large(a, b, use_fma);
    memcpy(&ua, &a, sizeof ua);
    memcpy(&us, &small, sizeof us);
    memcpy(&ul, &large, sizeof ul);
    uint64_t m = -((ua - TANH_SMALL_BITS) >> 63); /* all ones when a < 0.55 */
    ul = (us & m) | (ul & ~m);
    memcpy(&large, &ul, sizeof large);
    return or_sign(large, sign);
}

/* the same with branches, for the scalar remainder: the same operations on
   the branch taken, so the same bits, at half the work, and none from 22
   to +inf, where tanh_large gives 1 (its clamped value; NaN is above) */
NB_VM_INLINE double tanh_scalar(double x, vm_clamp b, const int use_fma) {
    uint64_t sign, ua;
    double a = abs_sign(x, &sign), r;
    memcpy(&ua, &a, sizeof ua);
    if (ua < TANH_SMALL_BITS) r = tanh_small(a, use_fma);
    else if (ua >= TANH_HI_BITS && ua <= INF_BITS) r = 1.0;
    else r = tanh_large(a, b, use_fma);
    return or_sign(r, sign);
}

/* ---- the loops, as templates inlined into each target's functions -------- */
/* The main loop runs over a multiple of 8 elements, so that its vector form
   needs no scalar epilogue: GCC at -O2 (its "very cheap" cost model)
   vectorises only such loops.  The last n % 8 go through a second loop with
   the same body, scalar (or vectorised as the compiler likes): the same
   operations, the same bits, and a short call (n = 1, from a scalar chain
   of tiny ops) computes only its own elements. */
#define VM_STEP 8
enum { VM_EXP, VM_SIG, VM_TANH };

NB_VM_INLINE double body(double x, vm_clamp b, const int f, const int use_fma) {
    return f == VM_TANH  ? tanh_body(x, b, use_fma)
           : f == VM_SIG ? sigmoid_body(x, b, use_fma)
                         : exp_body(x, b, use_fma);
}
/* the remainder's: tanh with a branch */
NB_VM_INLINE double body1(double x, vm_clamp b, const int f, const int use_fma) {
    return f == VM_TANH ? tanh_scalar(x, b, use_fma) : body(x, b, f, use_fma);
}

NB_VM_INLINE void map_t(double *restrict y, const double *restrict x, int64_t n, const int f,
                        const int use_fma) {
    vm_clamp b = clamp_bounds();
    int64_t n8 = n & ~(int64_t)(VM_STEP - 1);
    for (int64_t i = 0; i < n8; i++) y[i] = body(x[i], b, f, use_fma);
    for (int64_t i = n8; i < n; i++) y[i] = body1(x[i], b, f, use_fma);
}
/* y = f(y): one pointer, so no question of aliasing */
NB_VM_INLINE void map_inplace_t(double *y, int64_t n, const int f, const int use_fma) {
    vm_clamp b = clamp_bounds();
    int64_t n8 = n & ~(int64_t)(VM_STEP - 1);
    for (int64_t i = 0; i < n8; i++) y[i] = body(y[i], b, f, use_fma);
    for (int64_t i = n8; i < n; i++) y[i] = body1(y[i], b, f, use_fma);
}

typedef struct vm_kernels {
    void (*map)(double *restrict y, const double *restrict x, int64_t n);
    void (*map_inplace)(double *y, int64_t n);
    double (*one)(double x); /* n = 1: no loop, no vector setup */
} vm_kernels;

/* a level's kernels: for each function, over an array, in place and one value */
typedef struct vm_table {
    int level;
    vm_kernels exp, sig, tanh;
} vm_table;

#define NB_VM_FN(name, sfx, F, ATTR, FMA)                                                          \
    ATTR static void name##_map_##sfx(double *restrict y, const double *restrict x, int64_t n) {   \
        map_t(y, x, n, F, FMA);                                                                    \
    }                                                                                              \
    ATTR static void name##_inplace_##sfx(double *y, int64_t n) { map_inplace_t(y, n, F, FMA); }   \
    ATTR static double name##_one_##sfx(double x) { return body1(x, clamp_bounds(), F, FMA); }
/* one level's nine functions and its table */
#define NB_VM_LEVEL(sfx, LEVEL, ATTR, FMA)                                                         \
    NB_VM_FN(exp, sfx, VM_EXP, ATTR, FMA)                                                          \
    NB_VM_FN(sig, sfx, VM_SIG, ATTR, FMA)                                                          \
    NB_VM_FN(tanh, sfx, VM_TANH, ATTR, FMA)                                                        \
    static const vm_table table_##sfx = {LEVEL,                                                    \
                                         {exp_map_##sfx, exp_inplace_##sfx, exp_one_##sfx},        \
                                         {sig_map_##sfx, sig_inplace_##sfx, sig_one_##sfx},        \
                                         {tanh_map_##sfx, tanh_inplace_##sfx, tanh_one_##sfx}};

#if defined(__FP_FAST_FMA) && !NB_VM_X86
#define NB_VM_BASE_FMA 1
#else
#define NB_VM_BASE_FMA 0
#endif
NB_VM_LEVEL(base, NB__VM_PORTABLE, , NB_VM_BASE_FMA)
#if NB_VM_X86
NB_VM_LEVEL(avx2, NB__VM_AVX2, __attribute__((target("avx2,fma"))), 1)
NB_VM_LEVEL(avx512, NB__VM_AVX512, __attribute__((target("avx512f,avx2,fma"))), 1)
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

static const vm_table *table_of(int level) {
    switch (level) {
#if NB_VM_X86
    case NB__VM_AVX512: return &table_avx512;
    case NB__VM_AVX2: return &table_avx2;
#endif
    default: return &table_base;
    }
}

/* The table in use, NULL until the first call or nb__vmath_force.  Every
   call reads it with one relaxed load (the tables are constants, so there is
   nothing else to order) and calls through it: a few ns for n = 1. */
static _Atomic(const vm_table *) vm_table_now = NULL;

#if defined(__GNUC__) || defined(__clang__)
__attribute__((noinline, cold))
#endif
static const vm_table *first_table(void) {
    /* every thread detects the same; a level forced in the meantime wins */
    const vm_table *expected = NULL, *t = table_of(detect_level());
    if (!atomic_compare_exchange_strong_explicit(&vm_table_now, &expected, t, memory_order_relaxed,
                                                 memory_order_relaxed))
        t = expected;
    return t;
}

NB_VM_INLINE const vm_table *current(void) {
    const vm_table *t = atomic_load_explicit(&vm_table_now, memory_order_relaxed);
    return t ? t : first_table();
}

int nb__vmath_max_level(void) { return detect_level(); }

int nb__vmath_level(void) { return current()->level; }

int nb__vmath_force(int level) {
    int max = detect_level();
    int l = level < 0 || level > max ? max : level;
    atomic_store_explicit(&vm_table_now, table_of(l), memory_order_relaxed);
    return l;
}

/* ---- the entry points ------------------------------------------------------- */
NB_VM_INLINE void run(const vm_kernels *k, double *y, const double *x, int64_t n) {
    if (n == 1) *y = k->one(*x);
    else if (n <= 0) return;
    else if (y == x) k->map_inplace(y, n);
    else k->map(y, x, n);
}

void nb__exp_n(double *y, const double *x, int64_t n) { run(&current()->exp, y, x, n); }

void nb__sigmoid_n(double *y, const double *x, int64_t n) { run(&current()->sig, y, x, n); }

void nb__tanh_n(double *y, const double *x, int64_t n) { run(&current()->tanh, y, x, n); }
