/*
 * Convolution and pooling on NCHW tensors (float64), zero padding.
 *
 *   conv2d(x (N,C,H,W), w (K,C,R,S), b (K,) or NULL, stride, pad)
 *       y[n,k,i,j] = b[k] + sum_{c,r,s} x[n,c,i*st+r-pad,j*st+s-pad] w[k,c,r,s]
 *   max_pool2d(x, kernel, stride), avg_pool2d(x, kernel, stride): no padding
 *
 * Kernels: im2col of one image into a (C*R*S, OH*OW) matrix, then the GEMM
 * of src/kernels (y[n] = W col).  The im2col buffers are scratch kept by the
 * calling thread (grown once, reused step after step: nothing per call in
 * the tensor cache); a batch is split over the thread pool in chunks of
 * images, each with its own slice of the scratch.  A 1x1 kernel with stride
 * 1 and no padding multiplies the image itself.
 *
 * Rules, all in ops of this file (so every order of derivative works):
 *   conv2d:             dx = conv2d_input_grad(g, w), dw = conv2d_weight_grad(x, g),
 *                       db = g summed over n, i, j
 *   conv2d_input_grad:  the adjoint of x -> conv2d(x, w) ("transposed" conv),
 *                       bilinear in (g, w): d/dg = conv2d(G, w), d/dw = weight_grad(G, g)
 *   conv2d_weight_grad: the adjoint of w -> conv2d(x, w), bilinear in (x, g):
 *                       d/dx = input_grad(g, G), d/dg = conv2d(x, G)
 *   max_pool2d:         dx = pool_scatter(g, x): g routed to each window's argmax
 *                       (first on ties); pool_scatter and pool_gather (h at x's
 *                       argmaxes) are each other's adjoints; x's gradient through
 *                       them is 0 (the argmax is piecewise constant)
 *   avg_pool2d:         dx = avg_pool_grad(g): g / k^2 spread over each window;
 *                       avg_pool2d and avg_pool_grad are each other's adjoints
 * JVPs: conv2d is bilinear (conv(tx, w) + conv(x, tw) + tb), the rest linear.
 */
#include "engine.h"
#include "kernels/kernels.h"

#include <string.h>

/* ---- parameters (in the node's side record) -------------------------------------- */
typedef struct {
    int32_t st, pad;      /* stride, zero padding (pooling: pad 0)                   */
    int32_t kh, kw;       /* kernel (pooling: kernel x kernel)                      */
    int64_t H, W;         /* the input's spatial size (for ops whose output is it)   */
    int32_t has_bias;     /* conv2d: a third input                                  */
} cpar;

static bool set_par(nb_tensor *o, const cpar *p) {
    nb__aux *a = nb__aux_of(o, sizeof *p, 0);
    if (!a) return false;
    memcpy(a->data, p, sizeof *p);
    return true;
}
static cpar par_of(const nb_tensor *o) {
    cpar p;
    memcpy(&p, o->aux->data, sizeof p);
    return p;
}

/* ---- scratch kept per thread ----------------------------------------------------- */
static _Thread_local struct {
    double *p;
    size_t cap;           /* doubles */
} scratch;

static double *scratch_get(size_t n) {
    if (n <= scratch.cap) return scratch.p;
    double *q = nb__malloc(n * sizeof(double));
    if (!q) return NULL;
    nb__free(scratch.p);
    scratch.p = q;
    scratch.cap = n;
    return q;
}
void nb__conv_scratch_free(void) {
    nb__free(scratch.p);
    scratch.p = NULL;
    scratch.cap = 0;
}

/* ---- geometry -------------------------------------------------------------------- */
typedef struct {
    int64_t N, C, H, W, K, R, S, OH, OW;
    int st, pad;
    int64_t crs, ohw;     /* C*R*S, OH*OW */
} geo;

static geo geo_make(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t R, int64_t S,
                    int st, int pad) {
    geo g = {N, C, H, W, K, R, S, (H + 2 * pad - R) / st + 1, (W + 2 * pad - S) / st + 1, st, pad, 0, 0};
    g.crs = C * R * S;
    g.ohw = g.OH * g.OW;
    return g;
}
static bool direct(const geo *g) { return g->R == 1 && g->S == 1 && g->st == 1 && g->pad == 0; }

/* x (C,H,W) -> col (C*R*S, OH*OW) */
static void im2col(const geo *g, const double *x, double *col) {
    for (int64_t c = 0; c < g->C; c++)
        for (int64_t r = 0; r < g->R; r++)
            for (int64_t s = 0; s < g->S; s++) {
                double *row = col + ((c * g->R + r) * g->S + s) * g->ohw;
                const double *xc = x + c * g->H * g->W;
                /* output columns j with 0 <= j*st + s - pad < W */
                int64_t off = s - g->pad, j0 = 0, j1 = g->OW;
                while (j0 < j1 && j0 * g->st + off < 0) j0++;
                while (j1 > j0 && (j1 - 1) * g->st + off >= g->W) j1--;
                for (int64_t i = 0; i < g->OH; i++) {
                    double *d = row + i * g->OW;
                    int64_t ih = i * g->st + r - g->pad;
                    if (ih < 0 || ih >= g->H) {
                        memset(d, 0, (size_t)g->OW * sizeof(double));
                        continue;
                    }
                    const double *xr = xc + ih * g->W + off;
                    for (int64_t j = 0; j < j0; j++) d[j] = 0;
                    if (g->st == 1) memcpy(d + j0, xr + j0, (size_t)(j1 - j0) * sizeof(double));
                    else
                        for (int64_t j = j0; j < j1; j++) d[j] = xr[j * g->st];
                    for (int64_t j = j1; j < g->OW; j++) d[j] = 0;
                }
            }
}

/* dx (C,H,W) := sum of col's entries at their positions (col2im; dx zeroed here) */
static void col2im(const geo *g, const double *col, double *x) {
    memset(x, 0, (size_t)(g->C * g->H * g->W) * sizeof(double));
    for (int64_t c = 0; c < g->C; c++)
        for (int64_t r = 0; r < g->R; r++)
            for (int64_t s = 0; s < g->S; s++) {
                const double *row = col + ((c * g->R + r) * g->S + s) * g->ohw;
                double *xc = x + c * g->H * g->W;
                int64_t off = s - g->pad, j0 = 0, j1 = g->OW;
                while (j0 < j1 && j0 * g->st + off < 0) j0++;
                while (j1 > j0 && (j1 - 1) * g->st + off >= g->W) j1--;
                for (int64_t i = 0; i < g->OH; i++) {
                    int64_t ih = i * g->st + r - g->pad;
                    if (ih < 0 || ih >= g->H) continue;
                    const double *d = row + i * g->OW;
                    double *xr = xc + ih * g->W + off;
                    if (g->st == 1)
                        for (int64_t j = j0; j < j1; j++) xr[j] += d[j];
                    else
                        for (int64_t j = j0; j < j1; j++) xr[j * g->st] += d[j];
                }
            }
}

/* ---- the three GEMM kernels, split over images ------------------------------------ */
enum { K_FWD, K_DX, K_DW };
typedef struct {
    int kind;
    const geo *g;
    const double *a, *b, *bias; /* FWD: x, w; DX: gy, w; DW: x, gy */
    double *out;                /* FWD: y; DX: dx; DW: per-chunk partials (or dw) */
    double *scratch;            /* per chunk: col (crs*ohw) */
    int64_t nch;
} job;

static void run_chunk(const job *J, int64_t ch) {
    const geo *g = J->g;
    int64_t n0 = g->N * ch / J->nch, n1 = g->N * (ch + 1) / J->nch;
    double *col = J->scratch ? J->scratch + ch * g->crs * g->ohw : NULL;
    int64_t xs = g->C * g->H * g->W, ys = g->K * g->ohw, wsz = g->K * g->crs;
    if (J->kind == K_DW) {
        double *dw = J->out + ch * wsz;
        if (n0 == n1 || g->ohw == 0) memset(dw, 0, (size_t)wsz * sizeof(double));
        for (int64_t n = n0; n < n1 && g->ohw; n++) {
            const double *c = J->a + n * xs;
            if (col) im2col(g, c, col), c = col;
            nb__gemm(false, true, g->K, g->crs, g->ohw, 1.0, J->b + n * ys, g->ohw, c, g->ohw,
                     n == n0 ? 0.0 : 1.0, dw, g->crs);
        }
        return;
    }
    for (int64_t n = n0; n < n1; n++) {
        if (J->kind == K_FWD) {
            double *y = J->out + n * ys;
            const double *c = J->a + n * xs;
            if (col) im2col(g, c, col), c = col;
            if (g->crs == 0) memset(y, 0, (size_t)ys * sizeof(double));
            else nb__gemm(false, false, g->K, g->ohw, g->crs, 1.0, J->b, g->crs, c, g->ohw, 0.0, y, g->ohw);
            if (J->bias)
                for (int64_t k = 0; k < g->K; k++)
                    for (int64_t q = 0; q < g->ohw; q++) y[k * g->ohw + q] += J->bias[k];
        } else {
            double *dx = J->out + n * xs, *c = col ? col : dx;
            if (g->K == 0) memset(c, 0, (size_t)(g->crs * g->ohw) * sizeof(double));
            else nb__gemm(true, false, g->crs, g->ohw, g->K, 1.0, J->b, g->crs, J->a + n * ys, g->ohw, 0.0, c, g->ohw);
            if (col) col2im(g, col, dx);
        }
    }
}
static void chunk_fn(int64_t lo, int64_t hi, void *ctx) {
    for (int64_t ch = lo; ch < hi; ch++) run_chunk(ctx, ch);
}

/* Runs one kernel; 0, or -1 + error when the scratch finds no memory. */
static int conv_run(int kind, const geo *g, const double *a, const double *b, const double *bias,
                    double *out, const char *who) {
    int64_t nch = 1, work = g->N * g->K * g->crs * g->ohw;
    int nt = nb__num_threads();
    if (nt > 1 && g->N > 1 && work >= NB__GEMM_SPLIT_WORK) nch = nt < g->N ? nt : g->N;
    size_t colsz = direct(g) ? 0 : (size_t)(g->crs * g->ohw);
    size_t need = (size_t)nch * colsz + (kind == K_DW && nch > 1 ? (size_t)(nch * g->K * g->crs) : 0);
    double *s = NULL;
    if (need) {
        s = scratch_get(need);
        if (!s) {
            nb__err("%s: no memory for a scratch of %zu values", who, need);
            return -1;
        }
    }
    job J = {kind, g, a, b, bias, out, colsz ? s : NULL, nch};
    double *partial = NULL;
    if (kind == K_DW && nch > 1) J.out = partial = s + (size_t)nch * colsz;
    if (nch > 1) nb_parallel_for(nch, 1, chunk_fn, &J);
    else run_chunk(&J, 0);
    if (partial) {
        int64_t wsz = g->K * g->crs;
        memcpy(out, partial, (size_t)wsz * sizeof(double));
        for (int64_t ch = 1; ch < nch; ch++)
            for (int64_t i = 0; i < wsz; i++) out[i] += partial[ch * wsz + i];
    }
    return 0;
}

/* ---- constructors ------------------------------------------------------------------ */
static const char *shp(const nb_tensor *t, char *buf) {
    return nb__shape_str(t->ndim, t->shape, buf, NB__SHAPE_BUF);
}

nb_tensor *nb_conv2d(nb_tensor *x, nb_tensor *w, nb_tensor *b, int stride, int padding) {
    nb_tensor *in[3] = {x, w, b};
    if (nb__null_args("conv2d", b ? 3 : 2, in)) return NULL;
    char s1[NB__SHAPE_BUF], s2[NB__SHAPE_BUF], s3[NB__SHAPE_BUF];
    if (x->ndim != 4 || w->ndim != 4)
        return nb__err("conv2d: input %s and weight %s: needs a 4-d input (N, C, H, W) and a 4-d "
                       "weight (K, C, R, S)", shp(x, s1), shp(w, s2));
    if (x->shape[1] != w->shape[1])
        return nb__err("conv2d: input %s and weight %s: the input has %lld channels, the weight "
                       "%lld", shp(x, s1), shp(w, s2), (long long)x->shape[1], (long long)w->shape[1]);
    /* a NULL bias: maybe its expression failed */
    if (!b && nb__null_while_pending("conv2d", "bias", "to mean no bias", x->seq > w->seq ? x->seq : w->seq))
        return NULL;
    if (b && (b->ndim != 1 || b->shape[0] != w->shape[0]))
        return nb__err("conv2d: bias %s for weight %s: needs shape (%lld,)", shp(b, s3), shp(w, s2),
                       (long long)w->shape[0]);
    if (stride < 1 || padding < 0)
        return nb__err("conv2d: stride %d and padding %d: needs stride >= 1 and padding >= 0", stride,
                       padding);
    if (w->shape[2] < 1 || w->shape[3] < 1)
        return nb__err("conv2d: weight %s: the kernel needs at least one row and one column",
                       shp(w, s2));
    if (x->shape[2] + 2 * (int64_t)padding < w->shape[2] || x->shape[3] + 2 * (int64_t)padding < w->shape[3])
        return nb__err("conv2d: input %s with padding %d is smaller than the kernel of weight %s",
                       shp(x, s1), padding, shp(w, s2));
    geo g = geo_make(x->shape[0], x->shape[1], x->shape[2], x->shape[3], w->shape[0], w->shape[2],
                     w->shape[3], stride, padding);
    int64_t shape[4] = {g.N, g.K, g.OH, g.OW};
    int nin = b ? 3 : 2;
    nb_tensor *o = nb__node(NB__OP_CONV2D, 4, shape, nin, in);
    if (!o) return NULL;
    cpar p = {stride, padding, (int32_t)g.R, (int32_t)g.S, g.H, g.W, b != NULL};
    if (!set_par(o, &p) ||
        (o->numel && conv_run(K_FWD, &g, x->data, w->data, b ? b->data : NULL, o->data, "conv2d"))) {
        nb__unref(o);
        return NULL;
    }
    return nb__finish(o, nin, in);
}

/* dx (N, C, H, W) of y = conv2d(x, w) for the gradient gy (N, K, OH, OW) */
static nb_tensor *conv2d_input_grad(nb_tensor *gy, nb_tensor *w, int st, int pad, int64_t H, int64_t W) {
    nb_tensor *in[2] = {gy, w};
    if (nb__null_args("conv2d_input_grad", 2, in)) return NULL;
    geo g = geo_make(gy->shape[0], w->shape[1], H, W, w->shape[0], w->shape[2], w->shape[3], st, pad);
    int64_t shape[4] = {g.N, g.C, H, W};
    nb_tensor *o = nb__node(NB__OP_CONV2D_INPUT_GRAD, 4, shape, 2, in);
    if (!o) return NULL;
    cpar p = {st, pad, (int32_t)g.R, (int32_t)g.S, H, W, 0};
    if (!set_par(o, &p) ||
        (o->numel && conv_run(K_DX, &g, gy->data, w->data, NULL, o->data, "conv2d_input_grad"))) {
        nb__unref(o);
        return NULL;
    }
    return nb__finish(o, 2, in);
}

/* dw (K, C, R, S) of y = conv2d(x, w) for the gradient gy */
static nb_tensor *conv2d_weight_grad(nb_tensor *x, nb_tensor *gy, int st, int pad, int64_t R, int64_t S) {
    nb_tensor *in[2] = {x, gy};
    if (nb__null_args("conv2d_weight_grad", 2, in)) return NULL;
    geo g = geo_make(x->shape[0], x->shape[1], x->shape[2], x->shape[3], gy->shape[1], R, S, st, pad);
    int64_t shape[4] = {g.K, g.C, R, S};
    nb_tensor *o = nb__node(NB__OP_CONV2D_WEIGHT_GRAD, 4, shape, 2, in);
    if (!o) return NULL;
    cpar p = {st, pad, (int32_t)R, (int32_t)S, g.H, g.W, 0};
    if (!set_par(o, &p) ||
        (o->numel && conv_run(K_DW, &g, x->data, gy->data, NULL, o->data, "conv2d_weight_grad"))) {
        nb__unref(o);
        return NULL;
    }
    return nb__finish(o, 2, in);
}

/* (N, K, OH, OW) -> (K,) */
static nb_tensor *sum_nhw(nb_tensor *g) {
    if (!g) return NULL;
    int64_t s3[3] = {g->shape[0], g->shape[1], g->shape[2] * g->shape[3]};
    return nb_sum_axis(nb_sum_axis(nb_reshape(g, 3, s3), 2, false), 0, false);
}

int nb__vjp_conv2d(nb__rule *r) {
    cpar p = par_of(r->out);
    nb_tensor *x = r->in[0], *w = r->in[1];
    if (r->need[0]) r->gin[0] = conv2d_input_grad(r->g, w, p.st, p.pad, x->shape[2], x->shape[3]);
    if (r->need[1]) r->gin[1] = conv2d_weight_grad(x, r->g, p.st, p.pad, w->shape[2], w->shape[3]);
    if (r->out->nin > 2 && r->need[2]) r->gin[2] = sum_nhw(r->g);
    return nb__rule_ok(r);
}
static nb_tensor *add_opt(nb_tensor *a, nb_tensor *b) {
    if (a && b) return nb_add(a, b);
    return a ? a : b;
}
nb_tensor *nb__jvp_conv2d(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin) {
    cpar p = par_of(out);
    nb_tensor *t = NULL;
    if (tin[0]) t = nb_conv2d(tin[0], in[1], NULL, p.st, p.pad);
    if (tin[1]) t = add_opt(t, nb_conv2d(in[0], tin[1], NULL, p.st, p.pad));
    if (p.has_bias && tin[2]) {
        int64_t s[3] = {tin[2]->shape[0], 1, 1};
        nb_tensor *tb = nb_broadcast_to(nb_reshape(tin[2], 3, s), 4, out->shape);
        t = add_opt(t, tb);
    }
    return t;
}

/* input_grad(g, w) = A_w^T g: d/dg <G, .> = conv2d(G, w); d/dw = weight_grad(G, g) */
int nb__vjp_conv2d_input_grad(nb__rule *r) {
    cpar p = par_of(r->out);
    nb_tensor *g = r->in[0], *w = r->in[1];
    if (r->need[0]) r->gin[0] = nb_conv2d(r->g, w, NULL, p.st, p.pad);
    if (r->need[1]) r->gin[1] = conv2d_weight_grad(r->g, g, p.st, p.pad, w->shape[2], w->shape[3]);
    return nb__rule_ok(r);
}
nb_tensor *nb__jvp_conv2d_input_grad(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin) {
    cpar p = par_of(out);
    nb_tensor *t = NULL;
    if (tin[0]) t = conv2d_input_grad(tin[0], in[1], p.st, p.pad, p.H, p.W);
    if (tin[1]) t = add_opt(t, conv2d_input_grad(in[0], tin[1], p.st, p.pad, p.H, p.W));
    return t;
}

/* weight_grad(x, g): d/dx <G, .> = input_grad(g, G); d/dg = conv2d(x, G) */
int nb__vjp_conv2d_weight_grad(nb__rule *r) {
    cpar p = par_of(r->out);
    nb_tensor *x = r->in[0], *g = r->in[1];
    if (r->need[0]) r->gin[0] = conv2d_input_grad(g, r->g, p.st, p.pad, x->shape[2], x->shape[3]);
    if (r->need[1]) r->gin[1] = nb_conv2d(x, r->g, NULL, p.st, p.pad);
    return nb__rule_ok(r);
}
nb_tensor *nb__jvp_conv2d_weight_grad(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin) {
    cpar p = par_of(out);
    nb_tensor *t = NULL;
    if (tin[0]) t = conv2d_weight_grad(tin[0], in[1], p.st, p.pad, p.kh, p.kw);
    if (tin[1]) t = add_opt(t, conv2d_weight_grad(in[0], tin[1], p.st, p.pad, p.kh, p.kw));
    return t;
}

/* ---- pooling ---------------------------------------------------------------------------- */
static bool pool_check(const char *who, const nb_tensor *x, int kernel, int stride) {
    char s1[NB__SHAPE_BUF];
    if (x->ndim != 4) {
        nb__err("%s: input %s: needs a 4-d input (N, C, H, W)", who, shp(x, s1));
        return false;
    }
    if (kernel < 1 || stride < 1) {
        nb__err("%s: kernel %d and stride %d: both must be >= 1", who, kernel, stride);
        return false;
    }
    if (x->shape[2] < kernel || x->shape[3] < kernel) {
        nb__err("%s: input %s is smaller than the kernel %d x %d", who, shp(x, s1), kernel, kernel);
        return false;
    }
    return true;
}

/* a pooled plane's geometry */
typedef struct {
    int64_t planes, H, W, OH, OW;
    int k, st;
} pgeo;
static pgeo pgeo_of(const nb_tensor *x, int k, int st) {
    pgeo g = {x->shape[0] * x->shape[1], x->shape[2], x->shape[3], (x->shape[2] - k) / st + 1,
              (x->shape[3] - k) / st + 1, k, st};
    return g;
}

/* the flat index (within its plane) of each window's first maximum */
static inline int64_t argmax_at(const pgeo *g, const double *xp, int64_t i, int64_t j) {
    int64_t best = i * g->st * g->W + j * g->st;
    double m = xp[best];
    for (int r = 0; r < g->k; r++)
        for (int s = 0; s < g->k; s++) {
            int64_t q = (i * g->st + r) * g->W + j * g->st + s;
            if (xp[q] > m) m = xp[q], best = q;
        }
    return best;
}

enum { P_MAX, P_GATHER, P_SCATTER, P_AVG, P_AVG_GRAD };
typedef struct {
    int kind;
    const pgeo *g;
    const double *x, *v; /* x: the pooled input (argmax); v: the values moved */
    double *out;
} pjob;

static void pool_planes(int64_t lo, int64_t hi, void *ctx) {
    const pjob *J = ctx;
    const pgeo *g = J->g;
    int64_t hw = g->H * g->W, ohw = g->OH * g->OW;
    double inv = 1.0 / ((double)g->k * g->k);
    for (int64_t pl = lo; pl < hi; pl++) {
        const double *xp = J->x ? J->x + pl * hw : NULL;
        switch (J->kind) {
        case P_MAX: case P_GATHER: {
            const double *src = J->kind == P_MAX ? xp : J->v + pl * hw;
            double *o = J->out + pl * ohw;
            for (int64_t i = 0; i < g->OH; i++)
                for (int64_t j = 0; j < g->OW; j++) o[i * g->OW + j] = src[argmax_at(g, xp, i, j)];
            break;
        }
        case P_SCATTER: {
            const double *gv = J->v + pl * ohw;
            double *o = J->out + pl * hw;
            memset(o, 0, (size_t)hw * sizeof(double));
            for (int64_t i = 0; i < g->OH; i++)
                for (int64_t j = 0; j < g->OW; j++) o[argmax_at(g, xp, i, j)] += gv[i * g->OW + j];
            break;
        }
        case P_AVG: {
            const double *src = J->v + pl * hw;
            double *o = J->out + pl * ohw;
            for (int64_t i = 0; i < g->OH; i++)
                for (int64_t j = 0; j < g->OW; j++) {
                    double s = 0;
                    for (int r = 0; r < g->k; r++)
                        for (int c = 0; c < g->k; c++) s += src[(i * g->st + r) * g->W + j * g->st + c];
                    o[i * g->OW + j] = s * inv;
                }
            break;
        }
        default: { /* P_AVG_GRAD */
            const double *gv = J->v + pl * ohw;
            double *o = J->out + pl * hw;
            memset(o, 0, (size_t)hw * sizeof(double));
            for (int64_t i = 0; i < g->OH; i++)
                for (int64_t j = 0; j < g->OW; j++) {
                    double v = gv[i * g->OW + j] * inv;
                    for (int r = 0; r < g->k; r++)
                        for (int c = 0; c < g->k; c++) o[(i * g->st + r) * g->W + j * g->st + c] += v;
                }
            break;
        }
        }
    }
}

/* One pooling-family node: out of `shape`, inputs in[0..nin), kernel over x's planes. */
static nb_tensor *pool_node(nb__op op, int kind, const int64_t *shape, int nin, nb_tensor *const *in,
                            const nb_tensor *x, const nb_tensor *v, int k, int st, int64_t H, int64_t W) {
    nb_tensor *o = nb__node(op, 4, shape, nin, in);
    if (!o) return NULL;
    cpar p = {st, 0, k, k, H, W, 0};
    if (!set_par(o, &p)) {
        nb__unref(o);
        return NULL;
    }
    int64_t s4[4] = {shape[0], shape[1], H, W};
    nb_tensor xs = {0};
    xs.ndim = 4;
    memcpy(xs.shape, s4, sizeof s4);
    pgeo g = pgeo_of(&xs, k, st);
    pjob J = {kind, &g, x ? x->data : NULL, v ? v->data : NULL, o->data};
    if (o->numel && g.planes) nb_parallel_for(g.planes, 1 + (1 << 14) / (H * W + 1), pool_planes, &J);
    return nb__finish(o, nin, in);
}

nb_tensor *nb_max_pool2d(nb_tensor *x, int kernel, int stride) {
    if (nb__null_args("max_pool2d", 1, &x)) return NULL;
    if (!pool_check("max_pool2d", x, kernel, stride)) return NULL;
    pgeo g = pgeo_of(x, kernel, stride);
    int64_t shape[4] = {x->shape[0], x->shape[1], g.OH, g.OW};
    return pool_node(NB__OP_MAX_POOL2D, P_MAX, shape, 1, &x, x, NULL, kernel, stride, g.H, g.W);
}

nb_tensor *nb_avg_pool2d(nb_tensor *x, int kernel, int stride) {
    if (nb__null_args("avg_pool2d", 1, &x)) return NULL;
    if (!pool_check("avg_pool2d", x, kernel, stride)) return NULL;
    pgeo g = pgeo_of(x, kernel, stride);
    int64_t shape[4] = {x->shape[0], x->shape[1], g.OH, g.OW};
    return pool_node(NB__OP_AVG_POOL2D, P_AVG, shape, 1, &x, NULL, x, kernel, stride, g.H, g.W);
}

/* h (pooled shape) -> x's shape: h routed to the argmaxes of x's windows */
static nb_tensor *pool_scatter(nb_tensor *h, nb_tensor *x, int k, int st) {
    nb_tensor *in[2] = {h, x};
    if (nb__null_args("pool_scatter", 2, in)) return NULL;
    return pool_node(NB__OP_POOL_SCATTER, P_SCATTER, x->shape, 2, in, x, h, k, st, x->shape[2], x->shape[3]);
}
/* v (x's shape) -> pooled shape: v at the argmaxes of x's windows */
static nb_tensor *pool_gather(nb_tensor *v, nb_tensor *x, int k, int st) {
    nb_tensor *in[2] = {v, x};
    if (nb__null_args("pool_gather", 2, in)) return NULL;
    pgeo g = pgeo_of(x, k, st);
    int64_t shape[4] = {x->shape[0], x->shape[1], g.OH, g.OW};
    return pool_node(NB__OP_POOL_GATHER, P_GATHER, shape, 2, in, x, v, k, st, x->shape[2], x->shape[3]);
}
/* g (pooled shape) -> (N, C, H, W): g / k^2 spread over each window */
static nb_tensor *avg_pool_grad(nb_tensor *g, int k, int st, int64_t H, int64_t W) {
    if (nb__null_args("avg_pool_grad", 1, &g)) return NULL;
    int64_t shape[4] = {g->shape[0], g->shape[1], H, W};
    return pool_node(NB__OP_AVG_POOL_GRAD, P_AVG_GRAD, shape, 1, &g, NULL, g, k, st, H, W);
}


int nb__vjp_max_pool2d(nb__rule *r) {
    cpar p = par_of(r->out);
    r->gin[0] = pool_scatter(r->g, r->in[0], p.kh, p.st);
    return nb__rule_ok(r);
}
nb_tensor *nb__jvp_max_pool2d(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin) {
    cpar p = par_of(out);
    return pool_gather(tin[0], in[0], p.kh, p.st);
}
int nb__vjp_pool_scatter(nb__rule *r) {
    cpar p = par_of(r->out);
    if (r->need[0]) r->gin[0] = pool_gather(r->g, r->in[1], p.kh, p.st);
    if (r->need[1]) r->gin[1] = nb__const_like(r->in[1], 0.0); /* the argmax is piecewise constant */
    return nb__rule_ok(r);
}
nb_tensor *nb__jvp_pool_scatter(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin) {
    cpar p = par_of(out);
    return tin[0] ? pool_scatter(tin[0], in[1], p.kh, p.st) : nb__const_like(out, 0.0);
}
int nb__vjp_pool_gather(nb__rule *r) {
    cpar p = par_of(r->out);
    if (r->need[0]) r->gin[0] = pool_scatter(r->g, r->in[1], p.kh, p.st);
    if (r->need[1]) r->gin[1] = nb__const_like(r->in[1], 0.0); /* the argmax is piecewise constant */
    return nb__rule_ok(r);
}
nb_tensor *nb__jvp_pool_gather(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin) {
    cpar p = par_of(out);
    return tin[0] ? pool_gather(tin[0], in[1], p.kh, p.st) : nb__const_like(out, 0.0);
}
int nb__vjp_avg_pool2d(nb__rule *r) {
    cpar p = par_of(r->out);
    r->gin[0] = avg_pool_grad(r->g, p.kh, p.st, p.H, p.W);
    return nb__rule_ok(r);
}
nb_tensor *nb__jvp_avg_pool2d(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin) {
    cpar p = par_of(out);
    (void)in;
    return nb_avg_pool2d(tin[0], p.kh, p.st);
}
int nb__vjp_avg_pool_grad(nb__rule *r) {
    cpar p = par_of(r->out);
    r->gin[0] = nb_avg_pool2d(r->g, p.kh, p.st);
    return nb__rule_ok(r);
}
nb_tensor *nb__jvp_avg_pool_grad(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin) {
    cpar p = par_of(out);
    (void)in;
    return avg_pool_grad(tin[0], p.kh, p.st, p.H, p.W);
}
