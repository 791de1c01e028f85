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
 *  - and the speed of each level against a loop of glibc's exp (printed only).
 *
 * NB_VMATH_POINTS=<n> in the environment sets the number of random points;
 * the sanitizer builds use fewer by default.
 */
#include "util/vmath.h"

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

/* ---- lengths, alignment, in place, special lanes anywhere -------------------------- */
static void lengths(void) {
    enum { MAXN = 1100 };
    static double x[MAXN + 1], y[MAXN + 1], z[MAXN + 1], w[MAXN + 1];
    static const double odd[] = {NAN, INFINITY, -INFINITY, -740.0, 709.5, -708.2, 1000.0, -1000.0};
    static const int ns[] = {0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 255, 256, 257, 511, 512, 513, 1023, 1099};
    int bad = 0;
    for (int sig = 0; sig < 2; sig++) {
        void (*f)(double *, const double *, int64_t) = sig ? nb__sigmoid_n : nb__exp_n;
        for (size_t t = 0; t < sizeof ns / sizeof *ns; t++) {
            for (int off = 0; off < 2; off++) { /* off = 1: pointers not 16-byte aligned */
                int n = ns[t];
                double *xp = x + off, *yp = y + off;
                for (int i = 0; i < n; i++) {
                    uint64_t u = rng();
                    xp[i] = u % 23 == 0 ? odd[(u >> 8) % 8] : uniform(-30, 30);
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

static double time_libm(const double *x, double *y, int64_t n, int sig) {
    double best = INFINITY;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now();
        if (sig)
            for (int64_t i = 0; i < n; i++) y[i] = sigmoid1(x[i]);
        else
            for (int64_t i = 0; i < n; i++) y[i] = exp(x[i]);
        double t = now() - t0;
        sink += y[n / 2];
        if (t < best) best = t;
    }
    return best * 1e9 / (double)n;
}

static double time_vm(const double *x, double *y, int64_t n, int sig) {
    double best = INFINITY;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now();
        (sig ? nb__sigmoid_n : nb__exp_n)(y, x, n);
        double t = now() - t0;
        sink += y[n / 2];
        if (t < best) best = t;
    }
    return best * 1e9 / (double)n;
}

static void speed(int maxl) {
    const int64_t n = SANITIZED ? 100000 : 1000000;
    double *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
    if (!x || !y) {
        CHECK(!"out of memory");
        free(x), free(y);
        return;
    }
    for (int64_t i = 0; i < n; i++) x[i] = uniform(-10, 10);
    printf("speed, %lld elements in [-10, 10], ns per element (best of 5)%s:\n", (long long)n,
           SANITIZED ? " [sanitizer build: not meaningful]" : "");
    printf("  glibc exp loop      %6.3f   scalar sigmoid loop  %6.3f\n", time_libm(x, y, n, 0),
           time_libm(x, y, n, 1));
    for (int l = 0; l <= maxl; l++) {
        nb__vmath_force(l);
        printf("  nb__exp_n %-9s %6.3f   nb__sigmoid_n        %6.3f\n", level_name[l],
               time_vm(x, y, n, 0), time_vm(x, y, n, 1));
    }
    nb__vmath_force(-1);
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

    speed(maxl);
    return check_report("test_vmath");
}
