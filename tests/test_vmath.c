/*
 * Vectorised exp and sigmoid (src/util/vmath.c), at every dispatch level the
 * CPU supports (portable/SSE2, AVX2+FMA, AVX-512F):
 *
 *  - accuracy against long double (expl, 64-bit mantissa): nb__exp_n within
 *    1 ulp of the exact value and nb__sigmoid_n within 2 ulp of
 *    1/(1+exp(-x)), on about 2.3 million points: uniform over the whole range
 *    [-745.2, 709.78], dense in [-20, 20], tiny |x|, points next to the
 *    reduction's boundaries (odd multiples of ln2/2), the subnormal range and
 *    the edge of overflow.  The largest errors found are printed;
 *  - special values equal to libm's: NaN, +-inf, +-0, overflow and underflow
 *    thresholds, subnormal results; sigmoid(+-inf) = 1 / 0, NaN -> NaN;
 *  - every length (vector tails, blocks of 256 and their ends), unaligned
 *    pointers, in place (y == x) and out of place give the same bits as one
 *    element at a time, with special lanes mixed in anywhere;
 *  - nb__tanh_n: within 1 ulp of tanh (tanhl) on about 2.5 million points of
 *    [-25, 25], dense in [-1, 1], around the switch from the polynomial to
 *    the exp formula (0.55) and where tanh rounds to 1 (19.06), tiny |x|
 *    (1e-300 .. 1e-5) and subnormals, with tanh(-x) = -tanh(x) bit for bit;
 *    special values equal to glibc's: +-0 (sign kept), +-inf -> +-1, NaN,
 *    +-1 exactly from |x| = 19.061547465398498 on, x itself for tiny |x|;
 *  - and the speed of each level against loops of glibc's exp and tanh and
 *    of the scalar sigmoid, on 10^6 elements and for calls with n = 1
 *    (printed only).
 *
 * NB_VMATH_POINTS=<n> in the environment sets the number of random points;
 * the sanitizer builds use fewer by default.
 */
#include "kernels/vmath.h"

#include "check.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(undefined_behavior_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

static const char *level_name[] = {"portable", "avx2+fma", "avx512f"};

/* ---- a deterministic generator (splitmix64) ------------------------------ */
static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint64_t rng(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}
static double uniform(double lo, double hi) { /* [lo, hi] */
    return lo + (hi - lo) * ((double)(rng() >> 11) * 0x1p-53);
}

/* ---- ulp distances ---------------------------------------------------------- */
/* |y - exact| in units of the spacing of doubles at exact (2^-1074 when
   exact is subnormal) */
static double ulp_err(double y, long double exact) {
    if (isnan(y) || isinf(y)) return INFINITY;
    if (exact == 0) return y == 0 ? 0 : INFINITY;
    int e;
    frexpl(fabsl(exact), &e); /* exact = m 2^e, m in [0.5, 1) */
    int q = e - 53 < -1074 ? -1074 : e - 53;
    return (double)(fabsl((long double)y - exact) / ldexpl(1.0L, q));
}

/* a equals b as IEEE values: both NaN, or equal with the same sign of zero */
static bool same(double a, double b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    return a == b && (a != 0 || signbit(a) == signbit(b));
}

/* the scalar sigmoid of src/ops/elementwise.c */
static double sigmoid1(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

static long double sigmoid_exact(double x) { return 1.0L / (1.0L + expl(-(long double)x)); }

/* ---- the points ---------------------------------------------------------------- */
static double *make_points(int64_t nrand, int64_t *count) {
    int64_t n = nrand + nrand / 4 + 64;
    double *x = malloc((size_t)n * sizeof *x);
    if (!x) return NULL;
    int64_t k = 0;
    int64_t big = nrand * 4 / 10, dense = nrand * 4 / 10, rest = nrand - big - dense;
    for (int64_t i = 0; i < big; i++) x[k++] = uniform(-745.2, 709.782712893384);
    for (int64_t i = 0; i < dense; i++) x[k++] = uniform(-20, 20);
    for (int64_t i = 0; i < rest / 4; i++) { /* tiny |x|: 2^-60 .. 2^-1, both signs */
        double v = ldexp(uniform(1, 2), (int)(rng() % 60) - 60);
        x[k++] = rng() & 1 ? v : -v;
    }
    for (int64_t i = 0; i < rest / 4; i++) { /* next to odd multiples of ln2/2 */
        int64_t m = (int64_t)(rng() % 2100) - 1049;
        double v = (double)(2 * m + 1) * 0.34657359027997264;
        int steps = (int)(rng() % 9) - 4;
        for (int s = 0; s < abs(steps); s++) v = nextafter(v, steps > 0 ? INFINITY : -INFINITY);
        if (v >= -745.2 && v <= 709.782712893384) x[k++] = v;
    }
    for (int64_t i = 0; i < rest / 4; i++) x[k++] = uniform(-745.2, -708.0); /* subnormal results */
    for (int64_t i = 0; i < rest / 4; i++) x[k++] = uniform(708.0, 709.782712893384);
    for (int64_t i = 0; i < nrand / 4; i++) x[k++] = uniform(-1, 1);
    static const double edges[] = {0.0, -0.0, 5e-324, -5e-324, DBL_MIN, -DBL_MIN, 1e-300, 1.0, -1.0,
                                   0.34657359027997264, -0.34657359027997264, 0.6931471805599453,
                                   -708.0, -708.39641853226408, -708.4, -709.0, -744.0, -745.0,
                                   -745.1332191019411, -745.2, 708.0, 709.0, 709.5, 709.78,
                                   709.782712893384, 20.0, -20.0, 36.0, -36.0, 37.0, -37.0};
    for (size_t i = 0; i < sizeof edges / sizeof *edges; i++) x[k++] = edges[i];
    *count = k;
    return x;
}

/* tanh: about nrand * 1.25 points, all in [-25, 25] */
static double *make_tanh_points(int64_t nrand, int64_t *count) {
    int64_t n = nrand + nrand / 4 + 64;
    double *x = malloc((size_t)n * sizeof *x);
    if (!x) return NULL;
    int64_t k = 0;
    for (int64_t i = 0; i < nrand * 3 / 10; i++) x[k++] = uniform(-25, 25);
    for (int64_t i = 0; i < nrand * 3 / 10; i++) x[k++] = uniform(-1, 1);
    for (int64_t i = 0; i < nrand / 10; i++) x[k++] = uniform(-3, 3);
    for (int64_t i = 0; i < nrand / 10; i++) x[k++] = uniform(-0.6, 0.6);
    for (int64_t i = 0; i < nrand / 20; i++) { /* around the switch at 0.55 */
        double v = uniform(0.54, 0.56);
        x[k++] = rng() & 1 ? v : -v;
    }
    for (int64_t i = 0; i < nrand / 20; i++) { /* where tanh rounds to 1 */
        double v = uniform(18.0, 20.0);
        x[k++] = rng() & 1 ? v : -v;
    }
    for (int64_t i = 0; i < nrand / 10; i++) { /* tiny: 1e-300 .. 1e-5, log-uniform */
        double v = pow(10.0, uniform(-300, -5));
        x[k++] = rng() & 1 ? v : -v;
    }
    for (int64_t i = 0; i < nrand / 4; i++) { /* [-2^-27, 2^-27] and subnormals */
        uint64_t u = rng();
        double v = u & 1 ? ldexp(uniform(1, 2), -(int)(27 + (u >> 2) % 1000)) /* to 2^-1026 */
                         : (double)(u >> 12) * 0x1p-1074;            /* subnormal */
        x[k++] = u & 2 ? v : -v;
    }
    static const double edges[] = {0.0, -0.0, 5e-324, -5e-324, DBL_MIN, -DBL_MIN, 1e-300, -1e-300,
                                   0x1p-27, 0x1.6a09e667f3bccp-26, 0.5493061443340549, 0.55,
                                   0x1.1999999999999p-1, 0x1.199999999999bp-1, -0.55, 1.0, -1.0,
                                   19.0, 19.06154746539849, 19.0615474653985, 19.07, 21.99,
                                   22.0, 22.000000000000004, -22.0, 25.0, -25.0};
    for (size_t i = 0; i < sizeof edges / sizeof *edges; i++) x[k++] = edges[i];
    *count = k;
    return x;
}

/* ---- accuracy at one level -------------------------------------------------------- */
typedef struct {
    double exp_max, exp_sub_max, sig_max, sig_vs_scalar;
    double exp_at, exp_sub_at, sig_at;
} acc_result;

static acc_result accuracy(const double *x, const long double *ex, const long double *sg, int64_t n,
                           double *y, double *z) {
    acc_result r = {0, 0, 0, 0, 0, 0, 0};
    /* exp: out of place, and in place must give the same bits */
    nb__exp_n(y, x, n);
    memcpy(z, x, (size_t)n * sizeof *z);
    nb__exp_n(z, z, n);
    int64_t differ = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = ulp_err(y[i], ex[i]);
        if (ex[i] >= DBL_MIN) {
            if (e > r.exp_max) r.exp_max = e, r.exp_at = x[i];
        } else if (e > r.exp_sub_max) {
            r.exp_sub_max = e, r.exp_sub_at = x[i]; /* in ulp of the subnormal spacing */
        }
        differ += memcmp(&y[i], &z[i], sizeof *y) != 0;
    }
    CHECK(differ == 0);
    nb__sigmoid_n(y, x, n);
    memcpy(z, x, (size_t)n * sizeof *z);
    nb__sigmoid_n(z, z, n);
    differ = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = ulp_err(y[i], sg[i]);
        if (e > r.sig_max) r.sig_max = e, r.sig_at = x[i];
        /* distance to the scalar formulation with libm's exp */
        double s = sigmoid1(x[i]);
        int q;
        frexp(s, &q);
        double d = s == 0 ? (y[i] == 0 ? 0 : INFINITY)
                          : fabs(y[i] - s) / ldexp(1.0, q - 53 < -1074 ? -1074 : q - 53);
        if (d > r.sig_vs_scalar) r.sig_vs_scalar = d;
        differ += memcmp(&y[i], &z[i], sizeof *y) != 0;
    }
    CHECK(differ == 0);
    return r;
}

/* tanh at one level: the largest error; in place, and at -x, bit for bit */
static double tanh_accuracy(const double *x, const long double *th, int64_t n, double *y, double *z,
                            double *at) {
    double emax = 0;
    nb__tanh_n(y, x, n);
    memcpy(z, x, (size_t)n * sizeof *z);
    nb__tanh_n(z, z, n);
    int64_t differ = 0, tiny_not_x = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = ulp_err(y[i], th[i]);
        if (e > emax) emax = e, *at = x[i];
        differ += memcmp(&y[i], &z[i], sizeof *y) != 0;
        tiny_not_x += fabs(x[i]) < 0x1p-27 && !same(y[i], x[i]);
    }
    CHECK(differ == 0);
    CHECK(tiny_not_x == 0);
    /* odd: tanh(-x) = -tanh(x), the same bits but the sign */
    for (int64_t i = 0; i < n; i++) z[i] = -x[i];
    nb__tanh_n(z, z, n);
    int64_t odd = 0;
    for (int64_t i = 0; i < n; i++) {
        double m = -y[i];
        odd += memcmp(&m, &z[i], sizeof m) != 0;
    }
    CHECK(odd == 0);
    return emax;
}

/* ---- special values ---------------------------------------------------------------- */
static void specials(void) {
    /* libm's results exactly */
    static const double xs[] = {NAN, -NAN, INFINITY, -INFINITY, 0.0, -0.0, 709.79, 709.8, 710.0, 1e308,
                                DBL_MAX, -745.2, -745.14, -746.0, -1e308, -DBL_MAX,
                                -745.1332191019412, -745.1332191019411, /* the underflow threshold */
                                709.782712893384, 709.7827128933841,   /* the overflow threshold */
                                -800.0, 800.0, 1e-300, -1e-300, 5e-324, -5e-324};
    enum { NX = sizeof xs / sizeof *xs };
    double y[NX], s[NX];
    nb__exp_n(y, xs, NX);
    nb__sigmoid_n(s, xs, NX);
    for (int i = 0; i < NX; i++) {
        if (!same(y[i], exp(xs[i])))
            fprintf(stderr, "exp(%.17g) = %.17g, libm %.17g\n", xs[i], y[i], exp(xs[i]));
        CHECK(same(y[i], exp(xs[i])));
        if (!same(s[i], sigmoid1(xs[i])))
            fprintf(stderr, "sigmoid(%.17g) = %.17g, scalar %.17g\n", xs[i], s[i], sigmoid1(xs[i]));
        CHECK(same(s[i], sigmoid1(xs[i])));
    }
    /* the values themselves, spelled out */
    CHECK(isnan(y[0]) && isnan(y[1]) && isnan(s[0]) && isnan(s[1]));
    CHECK(y[2] == INFINITY && y[3] == 0 && !signbit(y[3]));
    CHECK(y[4] == 1 && y[5] == 1);
    CHECK(s[2] == 1 && s[3] == 0 && !signbit(s[3]) && s[4] == 0.5 && s[5] == 0.5);
    CHECK(y[6] == INFINITY && y[8] == INFINITY && y[10] == INFINITY);
    CHECK(y[11] == 0 && y[13] == 0 && y[15] == 0 && !signbit(y[15]));
    CHECK(y[16] == 0 && y[17] == 5e-324);
    CHECK(y[18] == 0x1.fffffffffff2ap+1023 && y[19] == INFINITY);
    CHECK(s[13] == 0 && s[9] == 1 && s[14] == 0 && s[20] == 0 && s[21] == 1);

    /* subnormal results and the edge of overflow: within 1 ulp (of the
       subnormal spacing, for those), the sigmoid within 2 */
    static const double near[] = {-745.13, -745.0, -744.4, -740.0, -730.5, -720.0, -715.25, -710.0,
                                  -708.5, -708.39641853226408, -708.3964185322641, -708.0001,
                                  708.0001, 709.0001, 709.5, 709.78, 709.7827};
    enum { NN = sizeof near / sizeof *near };
    double yn[NN], sn[NN];
    nb__exp_n(yn, near, NN);
    nb__sigmoid_n(sn, near, NN);
    for (int i = 0; i < NN; i++) {
        double e = ulp_err(yn[i], expl((long double)near[i]));
        double es = ulp_err(sn[i], sigmoid_exact(near[i]));
        if (e > 1.0 || es > 2.0)
            fprintf(stderr, "x = %.17g: exp %.17g (%.3f ulp), sigmoid %.17g (%.3f ulp)\n", near[i],
                    yn[i], e, sn[i], es);
        CHECK(e <= 1.0);
        CHECK(es <= 2.0);
    }
    CHECK(sn[3] > 0 && sn[3] < DBL_MIN); /* sigmoid(-740): subnormal */

    /* sigmoid near and where it rounds to 1, and the tiny values at -x */
    static const double big[] = {37.0, 38.0, 40.0, 100.0, 700.0, 709.0, 710.0, 745.0, 746.0};
    enum { NB = sizeof big / sizeof *big };
    double sb[NB], nbig[NB], snb[NB];
    nb__sigmoid_n(sb, big, NB);
    for (int i = 0; i < NB; i++) nbig[i] = -big[i];
    nb__sigmoid_n(snb, nbig, NB);
    for (int i = 0; i < NB; i++) {
        /* 1 - 2^-53 at 37 (where 1/(1+exp(-x)) rounded twice gives 1) */
        CHECK(big[i] >= 38 ? sb[i] == 1.0 : sb[i] == 0x1.fffffffffffffp-1);
        CHECK(ulp_err(snb[i], sigmoid_exact(nbig[i])) <= 1.0);
    }

    /* one element, in place */
    double v = -INFINITY;
    nb__exp_n(&v, &v, 1);
    CHECK(v == 0 && !signbit(v));
    v = -INFINITY;
    nb__sigmoid_n(&v, &v, 1);
    CHECK(v == 0 && !signbit(v));
    v = NAN;
    nb__exp_n(&v, &v, 1);
    CHECK(isnan(v));
}

static void tanh_specials(void) {
    /* glibc's results exactly */
    static const double xs[] = {NAN, -NAN, INFINITY, -INFINITY, 0.0, -0.0, 5e-324, -5e-324,
                                0x1p-1070, DBL_MIN, -DBL_MIN, 1e-300, -1e-300, 1e-20, -1e-9,
                                0x1p-27, -0x1p-28, 19.07, -19.07, 19.5, 20.0, -21.0, 21.999,
                                22.0, -22.0, 22.5, 25.0, 30.0, -40.0, 100.0, 709.0, -710.0,
                                745.5, 1e10, -1e300, DBL_MAX, -DBL_MAX};
    enum { NX = sizeof xs / sizeof *xs };
    double y[NX];
    nb__tanh_n(y, xs, NX);
    for (int i = 0; i < NX; i++) {
        if (!same(y[i], tanh(xs[i])))
            fprintf(stderr, "tanh(%.17g) = %.17g, glibc %.17g\n", xs[i], y[i], tanh(xs[i]));
        CHECK(same(y[i], tanh(xs[i])));
    }
    /* the values themselves, spelled out */
    CHECK(isnan(y[0]) && isnan(y[1]));
    CHECK(y[2] == 1.0 && y[3] == -1.0);
    CHECK(y[4] == 0 && !signbit(y[4]) && y[5] == 0 && signbit(y[5]));
    for (int i = 6; i < 17; i++) CHECK(y[i] == xs[i]); /* tiny: x itself */
    for (int i = 17; i < NX; i++) CHECK(y[i] == copysign(1.0, xs[i]));
    /* exactly +-1 from 19.061547465398498 on (1 - tanh(x) < 2^-54 there),
       as glibc; the double below gives 1 - 2^-53 */
    int not_one = 0;
    for (int i = 0; i <= 1000; i++) {
        double v = 19.0616 + 0.011 * i, r[2], xv[2] = {v, -v};
        nb__tanh_n(r, xv, 2);
        not_one += r[0] != 1.0 || r[1] != -1.0;
    }
    CHECK(not_one == 0);
    double t1[4] = {19.061547465398498, -19.061547465398498, 19.061547465398494, 19.05};
    nb__tanh_n(t1, t1, 4);
    CHECK(t1[0] == 1.0 && t1[1] == -1.0);
    CHECK(t1[2] == 0x1.fffffffffffffp-1 && t1[3] == 0x1.fffffffffffffp-1);
    /* one element, in place */
    double v = -0.0;
    nb__tanh_n(&v, &v, 1);
    CHECK(v == 0 && signbit(v));
    v = -INFINITY;
    nb__tanh_n(&v, &v, 1);
    CHECK(v == -1.0);
    v = NAN;
    nb__tanh_n(&v, &v, 1);
    CHECK(isnan(v));
}

/* ---- lengths, alignment, in place, special lanes anywhere -------------------------- */
static void lengths(void) {
    enum { MAXN = 1100 };
    static double x[MAXN + 1], y[MAXN + 1], z[MAXN + 1], w[MAXN + 1];
    static const double odd[] = {NAN,  INFINITY, -INFINITY, -740.0, 709.5, -708.2, 1000.0, -1000.0,
                                 -0.0, 5e-324,   1e-300,    0.55,   -22.0, 21.99,  19.5,   -0.5499};
    enum { NODD = sizeof odd / sizeof *odd };
    /* every length to 33 (the vector tails), then blocks of 256 and their ends */
    static const int more[] = {63, 64, 65, 255, 256, 257, 511, 512, 513, 1023, 1099};
    enum { NNS = 34 + sizeof more / sizeof *more };
    int ns[NNS];
    for (int i = 0; i < NNS; i++) ns[i] = i < 34 ? i : more[i - 34];
    int bad = 0;
    for (int fn = 0; fn < 3; fn++) {
        void (*f)(double *, const double *, int64_t) =
            fn == 2 ? nb__tanh_n : fn == 1 ? nb__sigmoid_n : nb__exp_n;
        for (int t = 0; t < NNS; t++) {
            for (int off = 0; off < 2; off++) { /* off = 1: pointers not 16-byte aligned */
                int n = ns[t];
                double *xp = x + off, *yp = y + off;
                for (int i = 0; i < n; i++) {
                    uint64_t u = rng();
                    xp[i] = u % 13 == 0  ? odd[(u >> 8) % NODD]
                            : u % 3 == 0 ? uniform(-1, 1)
                                         : uniform(-30, 30);
                }
                yp[n] = 12345.0; /* must stay */
                for (int i = 0; i < n; i++) f(&w[i], &xp[i], 1);
                f(yp, xp, n);
                memcpy(z, xp, (size_t)n * sizeof *z);
                f(z, z, n);
                for (int i = 0; i < n; i++)
                    bad += !same(yp[i], w[i]) || memcmp(&yp[i], &z[i], sizeof *z) != 0;
                bad += yp[n] != 12345.0;
            }
        }
    }
    CHECK(bad == 0);
}

/* ---- speed (printed) ----------------------------------------------------------------- */
static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double sink;

/* the functions timed: 0 exp, 1 sigmoid, 2 tanh */
static const char *fn_name[] = {"exp", "sigmoid", "tanh"};
static void (*const vm_fn[])(double *, const double *, int64_t) = {nb__exp_n, nb__sigmoid_n,
                                                                   nb__tanh_n};
static double libm1(int fn, double x) { return fn == 2 ? tanh(x) : fn == 1 ? sigmoid1(x) : exp(x); }

/* ns per element over n elements, best of 5 */
static double time_libm(const double *x, double *y, int64_t n, int fn) {
    double best = INFINITY;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now();
        if (fn == 2)
            for (int64_t i = 0; i < n; i++) y[i] = tanh(x[i]);
        else if (fn == 1)
            for (int64_t i = 0; i < n; i++) y[i] = sigmoid1(x[i]);
        else
            for (int64_t i = 0; i < n; i++) y[i] = exp(x[i]);
        double t = now() - t0;
        sink += y[n / 2];
        if (t < best) best = t;
    }
    return best * 1e9 / (double)n;
}

static double time_vm(const double *x, double *y, int64_t n, int fn) {
    double best = INFINITY;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now();
        vm_fn[fn](y, x, n);
        double t = now() - t0;
        sink += y[n / 2];
        if (t < best) best = t;
    }
    return best * 1e9 / (double)n;
}

/* ns per call of `calls` calls with n = 1, on 2^16 values in turn (too many
   for the branch predictor to learn; libm: one call of the scalar function) */
static double time_one(const double *x, double *y, int64_t calls, int fn, int libm) {
    const int64_t mask = 65535;
    double t0 = now();
    if (libm) {
        for (int64_t i = 0; i < calls; i++) y[i & mask] = libm1(fn, x[i & mask]);
    } else {
        void (*f)(double *, const double *, int64_t) = vm_fn[fn];
        for (int64_t i = 0; i < calls; i++) f(&y[i & mask], &x[i & mask], 1);
    }
    double t = now() - t0;
    sink += y[7];
    return t * 1e9 / (double)calls;
}

static void speed(int maxl) {
    const int64_t n = SANITIZED ? 100000 : 1000000, calls = SANITIZED ? 1000000 : 10000000;
    double *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
    if (!x || !y) {
        CHECK(!"out of memory");
        free(x), free(y);
        return;
    }
    for (int64_t i = 0; i < n; i++) x[i] = uniform(-10, 10);
    printf("speed, ns per element: %lld elements in [-10, 10] (best of 5) | %lld calls with n = 1"
           "%s:\n",
           (long long)n, (long long)calls, SANITIZED ? " [sanitizer build: not meaningful]" : "");
    for (int fn = 0; fn < 3; fn++) {
        printf("  %-7s %-9s %6.3f | %6.3f%s\n", fn_name[fn], "glibc", time_libm(x, y, n, fn),
               time_one(x, y, calls, fn, 1), fn == 1 ? "  (the scalar sigmoid, glibc's exp)" : "");
        for (int l = 0; l <= maxl; l++) {
            nb__vmath_force(l);
            printf("  %-7s %-9s %6.3f | %6.3f\n", fn_name[fn], level_name[l], time_vm(x, y, n, fn),
                   time_one(x, y, calls, fn, 0));
        }
        nb__vmath_force(-1);
    }
    free(x);
    free(y);
}

int main(void) {
    check_alarm(300, "test_vmath: timed out\n");
    int maxl = nb__vmath_max_level();
    printf("dispatch: CPU supports up to %s; automatic choice %s\n", level_name[maxl],
           level_name[nb__vmath_level()]);
    CHECK(nb__vmath_level() == maxl);

    int64_t nrand = SANITIZED ? 300000 : 2000000;
    const char *env = getenv("NB_VMATH_POINTS");
    if (env && atoll(env) > 0) nrand = atoll(env);
    int64_t n;
    double *x = make_points(nrand, &n);
    long double *ex = malloc((size_t)n * sizeof *ex), *sg = malloc((size_t)n * sizeof *sg);
    double *y = malloc((size_t)n * sizeof *y), *z = malloc((size_t)n * sizeof *z);
    if (!x || !ex || !sg || !y || !z) {
        CHECK(!"out of memory");
        return check_report("test_vmath");
    }
    for (int64_t i = 0; i < n; i++) {
        ex[i] = expl((long double)x[i]);
        sg[i] = sigmoid_exact(x[i]);
    }
    printf("accuracy on %lld points (max error in ulp of the exact value):\n", (long long)n);
    double scalar_max = 0, scalar_at = 0; /* for comparison: the scalar sigmoid with libm's exp */
    for (int64_t i = 0; i < n; i++) {
        double e = ulp_err(sigmoid1(x[i]), sg[i]);
        if (e > scalar_max) scalar_max = e, scalar_at = x[i];
    }
    printf("  (the scalar sigmoid with libm's exp: %.4f at x = %.17g)\n", scalar_max, scalar_at);
    for (int l = 0; l <= maxl; l++) {
        CHECK(nb__vmath_force(l) == l && nb__vmath_level() == l);
        acc_result r = accuracy(x, ex, sg, n, y, z);
        printf("  %-9s exp %.4f (at x = %.17g), subnormal results %.4f (at %.17g)\n"
               "            sigmoid %.4f (at x = %.17g), %.4f from the scalar sigmoid\n",
               level_name[l], r.exp_max, r.exp_at, r.exp_sub_max, r.exp_sub_at, r.sig_max, r.sig_at,
               r.sig_vs_scalar);
        CHECK(r.exp_max <= 1.0);
        CHECK(r.exp_sub_max <= 1.0);
        CHECK(r.sig_max <= 2.0);
        CHECK(r.sig_vs_scalar <= 3.0);
        specials();
        lengths();
    }
    /* forcing beyond the CPU clamps; a negative level is automatic again */
    CHECK(nb__vmath_force(99) == maxl);
    CHECK(nb__vmath_force(-1) == maxl && nb__vmath_level() == maxl);
    free(x), free(ex), free(sg), free(y), free(z);

    /* tanh */
    double *tx = make_tanh_points(nrand, &n);
    long double *th = malloc((size_t)n * sizeof *th);
    y = malloc((size_t)n * sizeof *y), z = malloc((size_t)n * sizeof *z);
    if (!tx || !th || !y || !z) {
        CHECK(!"out of memory");
        return check_report("test_vmath");
    }
    double glibc_max = 0, glibc_at = 0;
    for (int64_t i = 0; i < n; i++) {
        th[i] = tanhl((long double)tx[i]);
        double e = ulp_err(tanh(tx[i]), th[i]);
        if (e > glibc_max) glibc_max = e, glibc_at = tx[i];
    }
    printf("tanh on %lld points in [-25, 25] (max error in ulp)\n"
           "  glibc tanh %.4f (at x = %.17g)\n",
           (long long)n, glibc_max, glibc_at);
    for (int l = 0; l <= maxl; l++) {
        CHECK(nb__vmath_force(l) == l);
        double at = 0, e = tanh_accuracy(tx, th, n, y, z, &at);
        printf("  %-9s  %.4f (at x = %.17g)\n", level_name[l], e, at);
        CHECK(e <= 1.0); /* the contract says 2; the analysis in vmath.c, 0.91 */
        tanh_specials();
    }
    nb__vmath_force(-1);
    free(tx), free(th), free(y), free(z);

    speed(maxl);
    return check_report("test_vmath");
}
