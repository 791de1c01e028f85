/*
 * Reductions (sum, mean, max, min: of all elements, or along an axis with
 * keepdims), the softmax family, logsumexp and var along an axis, with their
 * rules, and argmax / argmin (never recorded: no gradient).
 *
 * Along an axis, x is seen as (outer, n, inner): the axis has n elements and
 * a reduction writes (outer, inner).
 */
#include "engine.h"

#include <math.h>
#include <string.h>

static void axis_view(const nb_tensor *x, int axis, int64_t *outer, int64_t *n, int64_t *inner) {
    *outer = 1;
    *inner = 1;
    for (int d = 0; d < axis; d++) *outer *= x->shape[d];
    for (int d = axis + 1; d < x->ndim; d++) *inner *= x->shape[d];
    *n = x->shape[axis];
}

/* the shape of a reduction of x along axis */
static int reduced_shape(const nb_tensor *x, int axis, bool keep, int64_t *shape) {
    int k = 0;
    for (int d = 0; d < x->ndim; d++) {
        if (d != axis) shape[k++] = x->shape[d];
        else if (keep) shape[k++] = 1;
    }
    return k;
}

/* g of a reduction's output shape, reshaped to keepdims form, broadcast to x */
static nb_tensor *spread(nb_tensor *g, const nb_tensor *x, int axis, bool keep) {
    if (axis >= 0 && !keep) {
        int64_t shape[NB_MAX_DIMS];
        int k = reduced_shape(x, axis, true, shape);
        g = nb_reshape(g, k, shape);
    }
    return nb_broadcast_to(g, x->ndim, x->shape);
}

/* 1/(number of ties) at the maximal (for min: minimal) elements of each
   slice, 0 elsewhere: max and min send their gradient there, split evenly
   (axis < 0: all elements). */
static nb_tensor *max_mask(const nb_tensor *x, const nb_tensor *out, int axis) {
    nb_tensor *m = nb__const_like(x, 0.0);
    if (!m || x->numel == 0) return m;
    int64_t outer = 1, n = x->numel, inner = 1;
    if (axis >= 0) axis_view(x, axis, &outer, &n, &inner);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            double best = out->data[o * inner + i];
            int64_t ties = 0;
            for (int64_t j = 0; j < n; j++) ties += x->data[(o * n + j) * inner + i] == best;
            for (int64_t j = 0; j < n; j++)
                if (x->data[(o * n + j) * inner + i] == best)
                    m->data[(o * n + j) * inner + i] = 1.0 / (double)ties;
        }
    return m;
}

/* ---- the kernels --------------------------------------------------------------- */
enum { R_SUM, R_MEAN, R_MAX, R_MIN };

/* each reduction op's kind and whether it works along an axis (reduce.def) */
static int kind_of(nb__op op) {
    switch (op) {
#define NB_REDUCE(ID, name, kind, along) case NB__OP_##ID: return R_##kind;
#include "reduce.def"
#undef NB_REDUCE
    default: return -1; /* not a reduction: the callers' rules fail on it */
    }
}

static void reduce_kernel(int kind, const nb_tensor *x, int64_t outer, int64_t n, int64_t inner,
                          double *out) {
    const double *a = x->data;
    for (int64_t o = 0; o < outer; o++) {
        double *r = out + o * inner;
        if (kind == R_MAX) {
            for (int64_t i = 0; i < inner; i++) r[i] = n ? a[o * n * inner + i] : -INFINITY;
            for (int64_t j = 1; j < n; j++) {
                const double *row = a + (o * n + j) * inner;
                for (int64_t i = 0; i < inner; i++)
                    if (row[i] > r[i] || isnan(row[i])) r[i] = isnan(r[i]) ? r[i] : row[i];
            }
        } else if (kind == R_MIN) {
            for (int64_t i = 0; i < inner; i++) r[i] = n ? a[o * n * inner + i] : INFINITY;
            for (int64_t j = 1; j < n; j++) {
                const double *row = a + (o * n + j) * inner;
                for (int64_t i = 0; i < inner; i++)
                    if (row[i] < r[i] || isnan(row[i])) r[i] = isnan(r[i]) ? r[i] : row[i];
            }
        } else if (inner == 1) {
            /* four partial sums: vectorises, and rounds a little better */
            const double *row = a + o * n;
            double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            int64_t j = 0;
            for (; j + 4 <= n; j += 4) {
                s0 += row[j];
                s1 += row[j + 1];
                s2 += row[j + 2];
                s3 += row[j + 3];
            }
            for (; j < n; j++) s0 += row[j];
            r[0] = (s0 + s1) + (s2 + s3);
        } else {
            for (int64_t i = 0; i < inner; i++) r[i] = 0.0;
            for (int64_t j = 0; j < n; j++) {
                const double *row = a + (o * n + j) * inner;
                for (int64_t i = 0; i < inner; i++) r[i] += row[i];
            }
        }
        if (kind == R_MEAN)
            for (int64_t i = 0; i < inner; i++) r[i] /= (double)n;
    }
}

static nb_tensor *reduce_all(nb__op op, nb_tensor *a) {
    int kind = kind_of(op);
    if (nb__null_args(nb__ops[op].name, 1, &a)) return NULL;
    if ((kind == R_MAX || kind == R_MIN) && a->numel == 0) {
        char s[NB__SHAPE_BUF];
        return nb__err("%s: a tensor of shape %s has no elements to take the %s of", nb__ops[op].name,
                       nb__shape_str(a->ndim, a->shape, s, sizeof s), nb__ops[op].name);
    }
    nb_tensor *o = nb__node(op, 0, NULL, 1, &a);
    if (!o) return NULL;
    reduce_kernel(kind, a, 1, a->numel, 1, o->data);
    o->p.ax.axis = -1;
    return nb__finish(o, 1, &a);
}

static nb_tensor *reduce_axis(nb__op op, nb_tensor *a, int axis, bool keep) {
    int kind = kind_of(op);
    const char *who = nb__ops[op].name;
    if (nb__null_args(who, 1, &a)) return NULL;
    int ax;
    if (!nb__axis(who, a, axis, &ax)) return NULL;
    if ((kind == R_MAX || kind == R_MIN) && a->shape[ax] == 0) {
        char s[NB__SHAPE_BUF];
        return nb__err("%s: axis %d of shape %s has no elements", who, axis,
                       nb__shape_str(a->ndim, a->shape, s, sizeof s));
    }
    int64_t shape[NB_MAX_DIMS], outer, n, inner;
    int k = reduced_shape(a, ax, keep, shape);
    nb_tensor *o = nb__node(op, k, shape, 1, &a);
    if (!o) return NULL;
    o->p.ax.axis = ax;
    o->p.ax.keep = keep;
    axis_view(a, ax, &outer, &n, &inner);
    if (o->numel) reduce_kernel(kind, a, outer, n, inner, o->data);
    return nb__finish(o, 1, &a);
}

/* the constructors: nb_<name>(a) for all elements, nb_<name>(a, axis, keepdims) along one */
#define NB_REDUCE_0(ID, name) \
    nb_tensor *nb_##name(nb_tensor *a) { return reduce_all(NB__OP_##ID, a); }
#define NB_REDUCE_1(ID, name) \
    nb_tensor *nb_##name(nb_tensor *a, int axis, bool keepdims) { return reduce_axis(NB__OP_##ID, a, axis, keepdims); }
#define NB_REDUCE(ID, name, kind, along) NB_REDUCE_##along(ID, name)
#include "reduce.def"
#undef NB_REDUCE
#undef NB_REDUCE_0
#undef NB_REDUCE_1

/* ---- reduction rules ------------------------------------------------------------
 * sum:  dx = broadcast(g)            (linear: JVP is the op itself)
 * mean: dx = broadcast(g) / n
 * max:  dx = broadcast(g) * mask     (mask: 1/ties at the maxima)
 * min:  the same, at the minima */
static int64_t count(const nb_tensor *out, const nb_tensor *x) {
    return out->p.ax.axis < 0 ? x->numel : x->shape[out->p.ax.axis];
}

int nb__vjp_reduce(nb__rule *r) {
    nb_tensor *out = r->out, *x = r->in[0];
    int axis = out->p.ax.axis;
    nb_tensor *s = spread(r->g, x, axis, out->p.ax.keep);
    switch (kind_of((nb__op)out->op)) {
    case R_SUM: r->gin[0] = s; break;
    case R_MEAN: r->gin[0] = nb_scale(s, 1.0 / (double)count(out, x)); break;
    case R_MAX:
    case R_MIN: r->gin[0] = nb_prod(s, max_mask(x, out, axis)); break;
    default: nb__err("%s: internal error: not a reduction", nb_name(out)); return -1;
    }
    return nb__rule_ok(r);
}

nb_tensor *nb__jvp_reduce(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin) {
    int axis = out->p.ax.axis;
    bool keep = out->p.ax.keep;
    nb_tensor *x = in[0], *t = tin[0];
    switch (kind_of((nb__op)out->op)) {
    case R_MAX:
    case R_MIN: t = nb_prod(t, max_mask(x, out, axis)); /* then summed: */ /* fall through */
    case R_SUM: return axis < 0 ? nb_sum(t) : nb_sum_axis(t, axis, keep);
    case R_MEAN: return axis < 0 ? nb_mean(t) : nb_mean_axis(t, axis, keep);
    default: return nb__err("%s: internal error: not a reduction", nb_name(out));
    }
}

/* ---- softmax and log_softmax ------------------------------------------------------
 * Both subtract the slice's maximum before exp, so no input overflows:
 *   softmax(x)     = exp(x - m) / sum exp(x - m)
 *   log_softmax(x) = x - m - log(sum exp(x - m)) */
static nb_tensor *softmax_like(nb__op op, nb_tensor *a, int axis) {
    const char *who = nb__ops[op].name;
    if (nb__null_args(who, 1, &a)) return NULL;
    int ax;
    if (!nb__axis(who, a, axis, &ax)) return NULL;
    nb_tensor *o = nb__node(op, a->ndim, a->shape, 1, &a);
    if (!o) return NULL;
    o->p.ax.axis = ax;
    o->p.ax.keep = 1;
    int64_t outer, n, inner;
    axis_view(a, ax, &outer, &n, &inner);
    if (a->numel == 0) outer = 0; /* nothing to do, however large the other sizes */
    const double *x = a->data;
    double *y = o->data;
    for (int64_t q = 0; q < outer; q++)
        for (int64_t i = 0; i < inner; i++) {
            const double *xs = x + q * n * inner + i;
            double *ys = y + q * n * inner + i;
            double m = -INFINITY, s = 0.0;
            for (int64_t j = 0; j < n; j++) m = xs[j * inner] > m ? xs[j * inner] : m;
            if (m == -INFINITY) m = 0.0; /* all -inf: exp gives 0s, not NaN from inf - inf */
            for (int64_t j = 0; j < n; j++) {
                double e = exp(xs[j * inner] - m);
                s += e;
                if (op == NB__OP_SOFTMAX) ys[j * inner] = e;
            }
            if (op == NB__OP_SOFTMAX)
                for (int64_t j = 0; j < n; j++) ys[j * inner] /= s;
            else {
                double lse = m + log(s);
                for (int64_t j = 0; j < n; j++) ys[j * inner] = xs[j * inner] - lse;
            }
        }
    return nb__finish(o, 1, &a);
}

nb_tensor *nb_softmax(nb_tensor *a, int axis) { return softmax_like(NB__OP_SOFTMAX, a, axis); }
nb_tensor *nb_log_softmax(nb_tensor *a, int axis) { return softmax_like(NB__OP_LOG_SOFTMAX, a, axis); }

/* softmax: J = diag(y) - y y^T along the axis, so dx = y * (g - sum(g * y)) */
int nb__vjp_softmax(nb__rule *r) {
    nb_tensor *y = r->out, *g = r->g;
    r->gin[0] = nb_prod(y, nb_sub(g, nb_sum_axis(nb_prod(g, y), y->p.ax.axis, true)));
    return nb__rule_ok(r);
}
nb_tensor *nb__jvp_softmax(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin) {
    int ax = out->p.ax.axis;
    nb_tensor *s = nb_softmax(in[0], ax);
    return nb_prod(s, nb_sub(tin[0], nb_sum_axis(nb_prod(tin[0], s), ax, true)));
}

/* log_softmax: dx = g - softmax(x) * sum(g), with softmax(x) = exp(y) */
int nb__vjp_log_softmax(nb__rule *r) {
    nb_tensor *y = r->out, *g = r->g;
    r->gin[0] = nb_sub(g, nb_prod(nb_exp(y), nb_sum_axis(g, y->p.ax.axis, true)));
    return nb__rule_ok(r);
}
nb_tensor *nb__jvp_log_softmax(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin) {
    int ax = out->p.ax.axis;
    return nb_sub(tin[0], nb_sum_axis(nb_prod(nb_softmax(in[0], ax), tin[0]), ax, true));
}

/* ---- argmax and argmin ----------------------------------------------------------------
 * The index along the axis as a double; the first of ties wins, and a NaN
 * counts as the extreme (numpy: the first NaN's index).  Never recorded: no
 * gradient, no tangent. */
static nb_tensor *arg_reduce(nb__op op, nb_tensor *a, int axis, bool keep) {
    const char *who = nb__ops[op].name;
    if (nb__null_args(who, 1, &a)) return NULL;
    int ax;
    if (!nb__axis(who, a, axis, &ax)) return NULL;
    if (a->shape[ax] == 0) {
        char s[NB__SHAPE_BUF];
        return nb__err("%s: axis %d of shape %s has no elements", who, axis,
                       nb__shape_str(a->ndim, a->shape, s, sizeof s));
    }
    int64_t shape[NB_MAX_DIMS], outer, n, inner;
    int k = reduced_shape(a, ax, keep, shape);
    nb_tensor *o = nb__alloc(who, k, shape);
    if (!o) return NULL;
    o->op = (uint16_t)op;
    nb__name(o, op);
    axis_view(a, ax, &outer, &n, &inner);
    if (o->numel == 0) outer = 0;
    bool is_max = op == NB__OP_ARGMAX;
    for (int64_t q = 0; q < outer; q++)
        for (int64_t i = 0; i < inner; i++) {
            const double *xs = a->data + q * n * inner + i;
            double best = xs[0];
            int64_t bi = 0;
            for (int64_t j = 1; j < n && !isnan(best); j++) {
                double v = xs[j * inner];
                if (isnan(v) || (is_max ? v > best : v < best)) {
                    best = v;
                    bi = j;
                }
            }
            o->data[q * inner + i] = (double)bi;
        }
    return nb__pool(o);
}
nb_tensor *nb_argmax(nb_tensor *a, int axis, bool keepdims) { return arg_reduce(NB__OP_ARGMAX, a, axis, keepdims); }
nb_tensor *nb_argmin(nb_tensor *a, int axis, bool keepdims) { return arg_reduce(NB__OP_ARGMIN, a, axis, keepdims); }

/* ---- logsumexp ------------------------------------------------------------------------
 * log(sum(exp(x))) along the axis in two passes: the slice's maximum m, then
 * m + log(sum(exp(x - m))), so no finite input overflows.  A NaN gives NaN;
 * a +inf gives +inf; all -inf (or an empty axis) gives -inf.
 * VJP: g * exp(x - out) = g * softmax(x); JVP: sum(t * softmax(x)). */
nb_tensor *nb_logsumexp(nb_tensor *a, int axis, bool keepdims) {
    if (nb__null_args("logsumexp", 1, &a)) return NULL;
    int ax;
    if (!nb__axis("logsumexp", a, axis, &ax)) return NULL;
    int64_t shape[NB_MAX_DIMS], outer, n, inner;
    int k = reduced_shape(a, ax, keepdims, shape);
    nb_tensor *o = nb__node(NB__OP_LOGSUMEXP, k, shape, 1, &a);
    if (!o) return NULL;
    o->p.ax.axis = ax;
    o->p.ax.keep = keepdims;
    axis_view(a, ax, &outer, &n, &inner);
    if (o->numel == 0) outer = 0;
    for (int64_t q = 0; q < outer; q++)
        for (int64_t i = 0; i < inner; i++) {
            const double *xs = a->data + q * n * inner + i;
            double m = -INFINITY;
            for (int64_t j = 0; j < n; j++) {
                double v = xs[j * inner];
                if (v > m || isnan(v)) m = isnan(m) ? m : v;
            }
            double r;
            if (isnan(m) || m == INFINITY) {
                r = m;
            } else {
                double sh = m == -INFINITY ? 0.0 : m, s = 0.0; /* all -inf: log(0) */
                for (int64_t j = 0; j < n; j++) s += exp(xs[j * inner] - sh);
                r = sh + log(s);
            }
            o->data[q * inner + i] = r;
        }
    return nb__finish(o, 1, &a);
}

/* out in keepdims form (a view of the reduced axis as size 1) */
static nb_tensor *keepdims_form(nb_tensor *t, const nb_tensor *x, int axis, bool keep) {
    if (keep) return t;
    int64_t shape[NB_MAX_DIMS];
    int k = reduced_shape(x, axis, true, shape);
    return nb_reshape(t, k, shape);
}

int nb__vjp_logsumexp(nb__rule *r) {
    nb_tensor *out = r->out, *x = r->in[0];
    int axis = out->p.ax.axis;
    bool keep = out->p.ax.keep;
    nb_tensor *p = nb_exp(nb_sub(x, keepdims_form(out, x, axis, keep)));
    r->gin[0] = nb_prod(spread(r->g, x, axis, keep), p);
    return nb__rule_ok(r);
}
nb_tensor *nb__jvp_logsumexp(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin) {
    int ax = out->p.ax.axis;
    return nb_sum_axis(nb_prod(tin[0], nb_softmax(in[0], ax)), ax, out->p.ax.keep);
}

/* ---- var ----------------------------------------------------------------------------
 * numpy's var(a, axis, ddof, keepdims): sum((x - mean)^2) / (n - ddof), in
 * two passes (the mean, then the squared deviations from it).  n - ddof <= 0
 * is an error (numpy returns inf or NaN with a warning).  ddof lives in the
 * side record.  VJP: 2 (x - mean) g / (n - ddof); JVP: 2 sum((x - mean) t) / (n - ddof). */
static double var_divisor(const nb_tensor *out, const nb_tensor *x) {
    int32_t ddof;
    memcpy(&ddof, out->aux->data, sizeof ddof);
    return (double)(x->shape[out->p.ax.axis] - (int64_t)ddof);
}

nb_tensor *nb_var(nb_tensor *a, int axis, bool keepdims, int ddof) {
    if (nb__null_args("var", 1, &a)) return NULL;
    int ax;
    if (!nb__axis("var", a, axis, &ax)) return NULL;
    if (a->shape[ax] - (int64_t)ddof <= 0) {
        char s[NB__SHAPE_BUF];
        return nb__err("var: ddof %d leaves no degrees of freedom: axis %d of shape %s has length %lld", ddof, axis, nb__shape_str(a->ndim, a->shape, s, sizeof s),
                       (long long)a->shape[ax]);
    }
    int64_t shape[NB_MAX_DIMS], outer, n, inner;
    int k = reduced_shape(a, ax, keepdims, shape);
    nb_tensor *o = nb__node(NB__OP_VAR, k, shape, 1, &a);
    if (!o) return NULL;
    nb__aux *aux = nb__aux_of(o, sizeof(int32_t), 0);
    if (!aux) {
        nb__unref(o);
        return NULL;
    }
    int32_t d32 = ddof;
    memcpy(aux->data, &d32, sizeof d32);
    o->p.ax.axis = ax;
    o->p.ax.keep = keepdims;
    axis_view(a, ax, &outer, &n, &inner);
    if (o->numel == 0) outer = 0;
    double div = (double)(n - (int64_t)ddof);
    for (int64_t q = 0; q < outer; q++) {
        double *r = o->data + q * inner;
        const double *xs = a->data + q * n * inner;
        for (int64_t i = 0; i < inner; i++) r[i] = 0.0; /* pass 1: the means, row by row */
        for (int64_t j = 0; j < n; j++)
            for (int64_t i = 0; i < inner; i++) r[i] += xs[j * inner + i];
        for (int64_t i = 0; i < inner; i++) { /* pass 2: the squared deviations */
            double m = r[i] / (double)n, s = 0.0;
            for (int64_t j = 0; j < n; j++) {
                double d = xs[j * inner + i] - m;
                s += d * d;
            }
            r[i] = s / div;
        }
    }
    return nb__finish(o, 1, &a);
}

int nb__vjp_var(nb__rule *r) {
    nb_tensor *out = r->out, *x = r->in[0];
    int axis = out->p.ax.axis;
    nb_tensor *dev = nb_sub(x, nb_mean_axis(x, axis, true));
    r->gin[0] = nb_scale(nb_prod(dev, spread(r->g, x, axis, out->p.ax.keep)),
                         2.0 / var_divisor(out, x));
    return nb__rule_ok(r);
}
nb_tensor *nb__jvp_var(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin) {
    nb_tensor *x = in[0];
    int axis = out->p.ax.axis;
    nb_tensor *dev = nb_sub(x, nb_mean_axis(x, axis, true));
    return nb_scale(nb_sum_axis(nb_prod(dev, tin[0]), axis, out->p.ax.keep), 2.0 / var_divisor(out, x));
}
