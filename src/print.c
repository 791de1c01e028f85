/*
 * Printing: nb_repr and nb_print.
 *
 *   Tensor(<values>, name=<name>, shape=<shape>)
 *
 * <values> is what numpy (>= 1.14, legacy=False) prints for str() of a
 * float64 array with the default print options: precision 8, floatmode
 * 'maxprec', suppress False, linewidth 75, threshold 1000, edgeitems 3.
 * Written from numpy's documented behaviour (arrayprint's FloatingFormat and
 * _formatArray, the Dragon4 digit generation); no code is taken from it.
 *
 * The pieces, in order:
 *   1. exact decimal expansion of a double (small big-integer arithmetic);
 *   2. digit generation like Dragon4 in "unique" mode: the shortest digits
 *      that identify the value, or the value correctly rounded at a cutoff;
 *   3. FloatingFormat: fixed or scientific notation, common widths;
 *   4. the bracket/indent/wrap layout of _formatArray.
 */
#include "internal.h"

#include <limits.h>
#include <math.h>
#include <string.h>

/* ======================================================================== */
/* A growable string.  Allocation failures are sticky: later appends do
   nothing and `failed` tells the caller. */

typedef struct {
    char *p;
    size_t len, cap;
    bool failed;
    bool invalid; /* failed because the tensor is not readable */
} sbuf;

static bool sb_reserve(sbuf *b, size_t extra) {
    if (b->failed) return false;
    if (b->len + extra + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) {
        if (cap > SIZE_MAX / 2) { b->failed = true; return false; }
        cap *= 2;
    }
    char *p = nb__malloc(cap);
    if (!p) { b->failed = true; return false; }
    if (b->len) memcpy(p, b->p, b->len);
    nb__free(b->p);
    b->p = p;
    b->cap = cap;
    return true;
}

static void sb_putn(sbuf *b, const char *s, size_t n) {
    if (!sb_reserve(b, n)) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_puts(sbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }

static void sb_rep(sbuf *b, char c, size_t n) {
    if (!n || !sb_reserve(b, n)) return;
    memset(b->p + b->len, c, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_putc(sbuf *b, char c) { sb_rep(b, c, 1); }

/* ======================================================================== */
/* 1. Exact decimal expansion.
   A decimal is value = 0.d[0] d[1] ... d[n-1] * 10^exp10 with d[0] != 0 and
   no trailing zero digits (n == 0: the value 0).  The largest expansion we
   make is (2m+1) * 2^-1075 for subnormals: about 770 digits. */

#define DEC_MAX 800
typedef struct {
    int n, exp10;
    char d[DEC_MAX]; /* digit values 0..9, not characters */
} dec;

#define LIMB_BASE 1000000000u
#define LIMB_MAX 96

static void limbs_mul(uint32_t *L, int *nl, uint32_t f) {
    uint64_t carry = 0;
    for (int i = 0; i < *nl; i++) {
        uint64_t v = (uint64_t)L[i] * f + carry;
        L[i] = (uint32_t)(v % LIMB_BASE);
        carry = v / LIMB_BASE;
    }
    while (carry && *nl < LIMB_MAX) {
        L[(*nl)++] = (uint32_t)(carry % LIMB_BASE);
        carry /= LIMB_BASE;
    }
}

/* The exact decimal value of M * 2^e (M < 2^60, -1100 < e < 1100). */
static void dec_exact(uint64_t M, int e, dec *out) {
    uint32_t L[LIMB_MAX];
    int nl = 0;
    out->n = 0;
    out->exp10 = 0;
    if (M == 0) return;
    while (M) {
        L[nl++] = (uint32_t)(M % LIMB_BASE);
        M /= LIMB_BASE;
    }
    if (e > 0) {
        for (int k = e; k > 0; k -= 28) limbs_mul(L, &nl, 1u << (k > 28 ? 28 : k));
    } else if (e < 0) {
        static const uint32_t pow5[14] = {1u,        5u,        25u,        125u,       625u,
                                          3125u,     15625u,    78125u,     390625u,    1953125u,
                                          9765625u,  48828125u, 244140625u, 1220703125u};
        for (int k = -e; k > 0; k -= 13) limbs_mul(L, &nl, pow5[k > 13 ? 13 : k]);
    }
    /* limbs -> digits, most significant first */
    int n = 0;
    char top[10];
    int nt = 0;
    for (uint32_t v = L[nl - 1]; v; v /= 10) top[nt++] = (char)(v % 10);
    while (nt) out->d[n++] = top[--nt];
    for (int i = nl - 2; i >= 0; i--) {
        uint32_t v = L[i];
        for (int j = 8; j >= 0; j--) {
            out->d[n + j] = (char)(v % 10);
            v /= 10;
        }
        n += 9;
    }
    /* value = N * 10^min(e,0)... for e < 0, N / 10^-e (5^-e * 2^e = 10^e) */
    out->exp10 = n + (e < 0 ? e : 0);
    while (n > 0 && out->d[n - 1] == 0) n--;
    out->n = n;
}

/* Digit of x at decimal position q (the 10^q place). */
static int dec_digit(const dec *x, int q) {
    int i = x->exp10 - 1 - q;
    return (i >= 0 && i < x->n) ? x->d[i] : 0;
}

/* Compare two non-negative decimals. */
static int dec_cmp(const dec *a, const dec *b) {
    if (a->n == 0 || b->n == 0) return (a->n != 0) - (b->n != 0);
    if (a->exp10 != b->exp10) return a->exp10 < b->exp10 ? -1 : 1;
    int n = a->n > b->n ? a->n : b->n;
    for (int i = 0; i < n; i++) {
        int da = i < a->n ? a->d[i] : 0, db = i < b->n ? b->d[i] : 0;
        if (da != db) return da < db ? -1 : 1;
    }
    return 0;
}

/* x cut to its digits at positions >= q (q <= the leading position), plus
   one unit at position q when `up`. */
static void dec_cut(const dec *x, int q, bool up, dec *out) {
    int len = x->exp10 - q; /* digits kept, >= 1 */
    if (len > DEC_MAX - 1) len = DEC_MAX - 1;
    out->exp10 = x->exp10;
    for (int i = 0; i < len; i++) out->d[i] = i < x->n ? x->d[i] : 0;
    if (up) {
        int i = len - 1;
        while (i >= 0 && out->d[i] == 9) out->d[i--] = 0;
        if (i >= 0) out->d[i]++;
        else { /* 99.9 + 0.1: one more leading digit */
            memmove(out->d + 1, out->d, (size_t)len);
            out->d[0] = 1;
            out->exp10++;
            len++;
        }
    }
    while (len > 0 && out->d[len - 1] == 0) len--;
    out->n = len;
}

/* ======================================================================== */
/* 2. Digits of a finite |x| > 0 the way numpy's Dragon4 makes them in its
   "unique" mode.  Going down from the leading digit, at each position q
   look at the truncation T of x and at U = T + 10^q, and stop at the first
   q where one of them lies inside the interval of reals that round to x
   (its ends included when x's mantissa is even, as IEEE rounding does):
   take that one, or the nearer to x when both are inside (ties to an even
   digit).  With a cutoff, stop at the cutoff position at the latest; when
   neither is inside there, x is rounded to nearest (ties to even).  With
   `force` (numpy's min_digits), never stop before the cutoff position.  */

enum { CUT_NONE, CUT_FRAC, CUT_SIG };

static void digits_of(double ax, int cut_mode, int prec, bool force, dec *out) {
    int k;
    double f = frexp(ax, &k); /* ax = f * 2^k, f in [0.5, 1) */
    uint64_t m;
    int e;
    if (k - 53 < -1074) { /* subnormal: ax = m * 2^-1074 */
        e = -1074;
        m = (uint64_t)ldexp(ax, 1074);
    } else {
        e = k - 53;
        m = (uint64_t)ldexp(f, 53);
    }
    bool unequal = (m == (1ull << 52)) && e > -1074; /* the gap below is half */
    bool even = (m & 1) == 0;

    dec X, lo, hi, T, U; /* about 4 KB */
    dec_exact(m, e, &X);
    dec_exact(2 * m + 1, e - 1, &hi);
    if (unequal) dec_exact(4 * m - 1, e - 2, &lo);
    else dec_exact(2 * m - 1, e - 1, &lo);

    int lead = X.exp10 - 1;
    int cut = cut_mode == CUT_FRAC ? -prec : cut_mode == CUT_SIG ? lead - prec : INT_MIN;
    if (lead < cut) { /* x < 10^cut: 0, or one unit when x > 0.5 * 10^cut
                         (a tie goes to 0, the even digit) */
        out->n = 0;
        out->exp10 = 0;
        if (lead == cut - 1 && (X.d[0] > 5 || (X.d[0] == 5 && X.n > 1))) {
            out->n = 1;
            out->d[0] = 1;
            out->exp10 = cut + 1;
        }
        return;
    }
    for (int q = lead;; q--) {
        bool at_cut = q <= cut;
        if (force && !at_cut) continue;
        dec_cut(&X, q, false, &T);
        dec_cut(&X, q, true, &U);
        int cl = dec_cmp(&T, &lo), ch = dec_cmp(&U, &hi);
        bool lowok = even ? cl >= 0 : cl > 0;
        bool highok = even ? ch <= 0 : ch < 0;
        if (!(lowok || highok || at_cut)) continue;
        bool up;
        if (lowok != highok) up = highok;
        else { /* nearest, ties to an even digit */
            int r = dec_digit(&X, q - 1);
            bool rest = false; /* nonzero digits below q - 1 */
            int i0 = X.exp10 - q + 1;
            for (int i = i0 < 0 ? 0 : i0; i < X.n; i++)
                if (X.d[i]) { rest = true; break; }
            if (r != 5) up = r > 5;
            else if (rest) up = true;
            else up = dec_digit(&X, q) & 1;
        }
        *out = up ? U : T;
        return;
    }
}

/* ======================================================================== */
/* 3. numpy's FloatingFormat. */

typedef struct {
    uint8_t kind; /* 0 finite, 1 nan, 2 +inf, 3 -inf */
    uint8_t neg;
    uint8_t n;    /* significant digits (0 for zero) */
    int16_t exp10;
    char d[24];
} elem;

enum { K_FIN, K_NAN, K_PINF, K_NINF };

typedef struct {
    bool sci;
    int pad_left, pad_right; /* fixed: int and fraction widths */
    int prec, exp_size;      /* scientific: fraction digits, exponent digits */
    int width;               /* every element's width */
} ffmt;

static void elem_make(double x, bool sci, elem *el) {
    memset(el, 0, sizeof *el);
    if (isnan(x)) { el->kind = K_NAN; return; }
    if (isinf(x)) { el->kind = x < 0 ? K_NINF : K_PINF; return; }
    el->neg = signbit(x) ? 1 : 0;
    if (x == 0) return;
    dec r;
    digits_of(fabs(x), sci ? CUT_SIG : CUT_FRAC, 8, false, &r);
    int n = r.n > (int)sizeof el->d ? (int)sizeof el->d : r.n;
    memcpy(el->d, r.d, (size_t)n);
    el->n = (uint8_t)n;
    el->exp10 = (int16_t)r.exp10;
}

/* Scientific notation, second pass: the mantissa with exactly `prec`
   fraction digits (numpy's min_digits).  Past the shortest digits these are
   x's true digits (zeros for most values, not for subnormals: 4.94e-324). */
static void elem_refine(double x, int prec, elem *el) {
    dec r;
    digits_of(fabs(x), CUT_SIG, prec, true, &r);
    int n = r.n > (int)sizeof el->d ? (int)sizeof el->d : r.n;
    memcpy(el->d, r.d, (size_t)n);
    el->n = (uint8_t)n;
    el->exp10 = (int16_t)r.exp10;
}

/* fixed notation: lengths of the integer part (sign included) and fraction */
static int fix_int_len(const elem *e) { return e->neg + (e->exp10 <= 0 ? 1 : e->exp10); }
static int fix_frac_len(const elem *e) {
    if (e->n == 0) return 0;
    if (e->exp10 < 0) return -e->exp10 + e->n;
    return e->n > e->exp10 ? e->n - e->exp10 : 0;
}
static int sci_exp(const elem *e) { return e->n ? e->exp10 - 1 : 0; }
static int exp_digits(int x) {
    int a = x < 0 ? -x : x, nd = 1;
    while (a >= 10) { a /= 10; nd++; }
    return nd < 2 ? 2 : nd;
}

/* The notation, decided over the finite non-zero magnitudes. */
static void ffmt_notation(const double *vals, size_t n, ffmt *f) {
    memset(f, 0, sizeof *f);
    double mx = 0, mn = INFINITY;
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        double a = fabs(vals[i]);
        if (!isfinite(a) || a == 0) continue;
        any = true;
        if (a > mx) mx = a;
        if (a < mn) mn = a;
    }
    f->sci = any && (mx >= 1e8 || mn < 0.0001 || mx / mn > 1000.);
}

/* Widths over the formatted elements (after elem_make). */
static void ffmt_widths(const elem *el, size_t n, ffmt *f) {
    bool finite = false, nonfinite = false, neginf = false;
    int pl = 0, pr = 0, prec = 0, es = 0;
    for (size_t i = 0; i < n; i++) {
        const elem *e = &el[i];
        if (e->kind != K_FIN) {
            nonfinite = true;
            if (e->kind == K_NINF) neginf = true;
            continue;
        }
        finite = true;
        if (f->sci) {
            int il = e->neg + 1, fl = e->n > 1 ? e->n - 1 : 0, xd = exp_digits(sci_exp(e));
            if (il > pl) pl = il;
            if (fl > prec) prec = fl;
            if (xd > es) es = xd;
        } else {
            int il = fix_int_len(e), fl = fix_frac_len(e);
            if (il > pl) pl = il;
            if (fl > pr) pr = fl;
        }
    }
    if (finite && f->sci) pr = es + 2 + prec;
    if (!finite) pl = pr = 0;
    if (nonfinite) {
        int offset = pr + 1, inflen = 3 + (neginf ? 1 : 0);
        if (3 - offset > pl) pl = 3 - offset;
        if (inflen - offset > pl) pl = inflen - offset;
    }
    f->pad_left = pl;
    f->pad_right = pr;
    f->prec = prec;
    f->exp_size = es;
    f->width = pl + pr + 1;
}

static void put_exponent(sbuf *b, int x, int width) {
    char tmp[16];
    int nd = 0;
    unsigned a = (unsigned)(x < 0 ? -x : x);
    do { tmp[nd++] = (char)('0' + a % 10); a /= 10; } while (a);
    sb_putc(b, x < 0 ? '-' : '+');
    if (nd < width) sb_rep(b, '0', (size_t)(width - nd));
    while (nd) sb_putc(b, tmp[--nd]);
}

static void put_digits(sbuf *b, const elem *e, int from, int to) { /* d[from..to), zeros past n */
    for (int i = from; i < to; i++) sb_putc(b, (char)('0' + (i >= 0 && i < e->n ? e->d[i] : 0)));
}

static void elem_put(sbuf *b, const elem *e, const ffmt *f) {
    if (e->kind != K_FIN) {
        const char *s = e->kind == K_NAN ? "nan" : e->kind == K_PINF ? "inf" : "-inf";
        int len = (int)strlen(s);
        if (f->width > len) sb_rep(b, ' ', (size_t)(f->width - len));
        sb_puts(b, s);
        return;
    }
    if (f->sci) {
        int il = e->neg + 1;
        if (f->pad_left > il) sb_rep(b, ' ', (size_t)(f->pad_left - il));
        if (e->neg) sb_putc(b, '-');
        sb_putc(b, (char)('0' + (e->n ? e->d[0] : 0)));
        sb_putc(b, '.');
        put_digits(b, e, 1, 1 + f->prec);
        sb_putc(b, 'e');
        put_exponent(b, sci_exp(e), f->exp_size);
        return;
    }
    int il = fix_int_len(e), fl = fix_frac_len(e);
    if (f->pad_left > il) sb_rep(b, ' ', (size_t)(f->pad_left - il));
    if (e->neg) sb_putc(b, '-');
    if (e->exp10 <= 0) sb_putc(b, '0');
    else put_digits(b, e, 0, e->exp10);
    sb_putc(b, '.');
    if (e->exp10 < 0) {
        sb_rep(b, '0', (size_t)(-e->exp10));
        put_digits(b, e, 0, e->n);
    } else {
        put_digits(b, e, e->exp10, e->n);
    }
    if (f->pad_right > fl) sb_rep(b, ' ', (size_t)(f->pad_right - fl));
}

/* A 0-d array prints as numpy's float64 str(): positional when the value is
   0 or 1e-4 <= |x| < 1e16 ("3.5", "1.0", "-0.0"), else scientific with
   the shortest digits ("1e-05", "1.5e+16"). */
static void scalar_put(sbuf *b, double x) {
    if (isnan(x)) { sb_puts(b, "nan"); return; }
    if (isinf(x)) { sb_puts(b, x < 0 ? "-inf" : "inf"); return; }
    if (signbit(x)) sb_putc(b, '-');
    double a = fabs(x);
    if (a == 0) { sb_puts(b, "0.0"); return; }
    dec r;
    digits_of(a, CUT_NONE, 0, false, &r);
    elem e = {0};
    int n = r.n > (int)sizeof e.d ? (int)sizeof e.d : r.n;
    memcpy(e.d, r.d, (size_t)n);
    e.n = (uint8_t)n;
    e.exp10 = (int16_t)r.exp10;
    if (a >= 1e-4 && a < 1e16) {
        if (e.exp10 <= 0) sb_putc(b, '0');
        else put_digits(b, &e, 0, e.exp10);
        sb_putc(b, '.');
        if (e.exp10 < 0) {
            sb_rep(b, '0', (size_t)(-e.exp10));
            put_digits(b, &e, 0, e.n);
        } else if (e.n > e.exp10) {
            put_digits(b, &e, e.exp10, e.n);
        } else {
            sb_putc(b, '0');
        }
    } else {
        sb_putc(b, (char)('0' + e.d[0]));
        if (e.n > 1) {
            sb_putc(b, '.');
            put_digits(b, &e, 1, e.n);
        }
        sb_putc(b, 'e');
        put_exponent(b, e.exp10 - 1, 2);
    }
}

/* ======================================================================== */
/* 4. numpy's _formatArray: brackets, rows wrapped at the line width, the
   summary "...", newlines between sub-arrays (ndim - 1 - axis of them). */

#define LINE_WIDTH 75
#define EDGE 3
#define THRESHOLD 1000

typedef struct {
    sbuf *b;
    const elem *el;
    size_t next;
    const ffmt *f;
    int ndim;
    const int64_t *shape;
    bool summarise;
} layout;

static void trim_spaces(sbuf *b) {
    while (b->len > 0 && b->p[b->len - 1] == ' ') b->len--;
    if (b->p) b->p[b->len] = '\0';
}

static void layout_axis(layout *L, int axis) {
    sbuf *b = L->b;
    int64_t n = L->shape[axis];
    bool summary = L->summarise && n > 2 * EDGE;
    int64_t count = summary ? 2 * EDGE + 1 : n; /* the summary counts as one item */
    int axes_left = L->ndim - axis;
    size_t hang = (size_t)axis + 1; /* the hanging indent of this level */
    sb_putc(b, '[');
    if (axes_left == 1) {
        size_t elem_width = (size_t)(LINE_WIDTH - axis - 1), line = hang;
        for (int64_t k = 0; k < count && !b->failed; k++) {
            bool dots = summary && k == EDGE;
            size_t w = dots ? 3 : (size_t)L->f->width;
            if (k > 0) { sb_putc(b, ' '); line++; }
            if (line + w > elem_width && line > hang) {
                trim_spaces(b);
                sb_putc(b, '\n');
                sb_rep(b, ' ', hang);
                line = hang;
            }
            if (dots) sb_puts(b, "...");
            else elem_put(b, &L->el[L->next++], L->f);
            line += w;
        }
    } else {
        for (int64_t k = 0; k < count && !b->failed; k++) {
            if (k > 0) {
                sb_rep(b, '\n', (size_t)(axes_left - 1));
                sb_rep(b, ' ', hang);
            }
            if (summary && k == EDGE) sb_puts(b, "...");
            else layout_axis(L, axis + 1);
        }
    }
    sb_putc(b, ']');
}

/* numpy's str() of t's values, appended to b. */
static void values_put(sbuf *b, const nb_tensor *t) {
    int ndim = nb_ndim(t);
    const int64_t *shape = nb_shape(t);
    int64_t numel = nb_numel(t);
    const double *data = nb_data(t);
    if (ndim < 0 || ndim > NB_MAX_DIMS || numel < 0 || (ndim > 0 && !shape) ||
        (numel > 0 && !data)) {
        b->failed = b->invalid = true;
        return;
    }
    if (ndim == 0) { scalar_put(b, data[0]); return; }
    if (numel == 0) { sb_puts(b, "[]"); return; }

    /* the elements shown: per axis all of them, or the first and last
       EDGE when summarising */
    bool summarise = numel > THRESHOLD;
    int64_t cnt[NB_MAX_DIMS], stride[NB_MAX_DIMS];
    size_t shown = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        stride[d] = d == ndim - 1 ? 1 : stride[d + 1] * shape[d + 1];
        cnt[d] = (summarise && shape[d] > 2 * EDGE) ? 2 * EDGE : shape[d];
        shown *= (size_t)cnt[d];
    }
    elem *el = nb__malloc(shown * sizeof *el);
    double *vals = nb__malloc(shown * sizeof *vals);
    if (!el || !vals) {
        nb__free(el);
        nb__free(vals);
        b->failed = true;
        return;
    }
    int64_t idx[NB_MAX_DIMS] = {0};
    for (size_t i = 0; i < shown; i++) {
        int64_t off = 0;
        for (int d = 0; d < ndim; d++) {
            int64_t j = idx[d];
            if (cnt[d] != shape[d] && j >= EDGE) j = shape[d] - 2 * EDGE + j;
            off += j * stride[d];
        }
        vals[i] = data[off];
        for (int d = ndim - 1; d >= 0; d--) { /* odometer */
            if (++idx[d] < cnt[d]) break;
            idx[d] = 0;
        }
    }
    ffmt f;
    ffmt_notation(vals, shown, &f);
    for (size_t i = 0; i < shown; i++) elem_make(vals[i], f.sci, &el[i]);
    ffmt_widths(el, shown, &f);
    if (f.sci) /* numpy's min_digits: shorter mantissas get their next true digits */
        for (size_t i = 0; i < shown; i++)
            if (el[i].kind == K_FIN && el[i].n > 0 && el[i].n - 1 < f.prec)
                elem_refine(vals[i], f.prec, &el[i]);
    layout L = {b, el, 0, &f, ndim, shape, summarise};
    layout_axis(&L, 0);
    nb__free(el);
    nb__free(vals);
}

/* The whole repr in a fresh string (b->p, b->len); false + error on failure. */
static bool repr_build(const nb_tensor *t, sbuf *b) {
    sb_puts(b, "Tensor(");
    values_put(b, t);
    sb_puts(b, ", name=");
    const char *name = nb_name(t);
    sb_puts(b, name ? name : "");
    sb_puts(b, ", shape=(");
    int ndim = nb_ndim(t);
    const int64_t *shape = nb_shape(t);
    for (int d = 0; d < ndim && shape; d++) {
        char num[32];
        snprintf(num, sizeof num, "%s%lld", d ? ", " : "", (long long)shape[d]);
        sb_puts(b, num);
    }
    sb_puts(b, ndim == 1 ? ",))" : "))");
    if (b->failed) {
        nb__free(b->p);
        b->p = NULL;
        nb__err(b->invalid ? "repr: invalid tensor" : "repr: out of memory");
        return false;
    }
    return true;
}

int nb_repr(const nb_tensor *t, char *buf, size_t size) {
    if (!t) { /* a failed op's result: its message stands */
        if (!nb_last_error()) nb__err("repr: NULL tensor");
        return -1;
    }
    if (nb__dead_arg("repr", t)) return -1;
    if (!buf && size > 0) {
        nb__err("repr: NULL buffer of size %zu", size);
        return -1;
    }
    sbuf b = {0};
    if (!repr_build(t, &b)) return -1;
    if (b.len > INT_MAX) {
        nb__free(b.p);
        nb__err("repr: %zu characters do not fit in an int", b.len);
        return -1;
    }
    if (size > 0) {
        size_t n = b.len < size - 1 ? b.len : size - 1;
        memcpy(buf, b.p, n);
        buf[n] = '\0';
    }
    int len = (int)b.len;
    nb__free(b.p);
    return len;
}

void nb_print(const nb_tensor *t) {
    if (!t) { /* a failed op's result: its message stands */
        if (!nb_last_error()) nb__err("print: NULL tensor");
        return;
    }
    if (nb__dead_arg("print", t)) return;
    sbuf b = {0};
    if (!repr_build(t, &b)) return;
    fwrite(b.p, 1, b.len, stdout);
    fputc('\n', stdout);
    nb__free(b.p);
}
