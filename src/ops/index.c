/*
 * Indexing ops: slice, take, concat, stack, and the adjoints of the first
 * two (slice_scatter, scatter_add).  All are linear: each JVP is the op
 * applied to the tangents (a missing tangent is zero), each VJP the adjoint
 * op, and each adjoint's VJP the op again, so gradients go to any order:
 *
 *   slice         <-> slice_scatter  (g placed into zeros at start + k step)
 *   take          <-> scatter_add    (g's rows added at the indices: repeats accumulate)
 *   concat        ->  slices of g, one per input
 *   stack         ->  slices of g, each squeezed
 *
 * Every kernel views a tensor along `axis` as (outer, size, inner), with
 * inner the product of the sizes after the axis, and moves whole rows of
 * `inner` contiguous elements (a unit-step slice moves size * inner at once).
 * Parameters that do not fit the node's 8 bytes live in its side record.
 */
#include "engine.h"

#include <stdio.h>
#include <string.h>

/* product of shape[from..to) */
static int64_t span(const int64_t *shape, int from, int to) {
    int64_t p = 1;
    for (int d = from; d < to; d++) p *= shape[d];
    return p;
}

/* ---- slice ------------------------------------------------------------------------------
 * Parameters: axis in p.ax.axis, {start, step} in the side record, normalised
 * (0 <= start + k step < size for k < len, the output's size along axis). */
typedef struct {
    int64_t start, step;
} slice_par;

static const slice_par *slice_par_of(const nb_tensor *t) { return (const slice_par *)(void *)t->aux->data; }

/* Copies rows: dst row k (of `inner` elements) = src row start + k step, for
   len rows, in each of `outer` blocks (src blocks of sn rows, dst of dn). */
static void move_rows(double *dst, int64_t dn, const double *src, int64_t sn, int64_t outer,
                      int64_t inner, int64_t start, int64_t step, int64_t len, bool scatter) {
    for (int64_t o = 0; o < outer; o++) {
        const double *s = src + o * sn * inner;
        double *d = dst + o * dn * inner;
        if (step == 1) { /* one contiguous block */
            if (scatter) memcpy(d + start * inner, s, (size_t)(len * inner) * sizeof(double));
            else memcpy(d, s + start * inner, (size_t)(len * inner) * sizeof(double));
        } else if (inner == 1) {
            if (scatter)
                for (int64_t k = 0; k < len; k++) d[start + k * step] = s[k];
            else
                for (int64_t k = 0; k < len; k++) d[k] = s[start + k * step];
        } else {
            for (int64_t k = 0; k < len; k++) {
                if (scatter)
                    memcpy(d + (start + k * step) * inner, s + k * inner, (size_t)inner * sizeof(double));
                else
                    memcpy(d + k * inner, s + (start + k * step) * inner, (size_t)inner * sizeof(double));
            }
        }
    }
}

/* op SLICE: a's rows start + k step (k < len) along axis.  op SLICE_SCATTER:
   a placed at those rows of zeros with `len` rows along axis. */
static nb_tensor *slice_node(nb__op op, nb_tensor *a, int axis, int64_t start, int64_t step,
                             int64_t len) {
    int64_t shape[NB_MAX_DIMS];
    memcpy(shape, a->shape, sizeof shape);
    shape[axis] = len;
    nb_tensor *o = nb__node(op, a->ndim, shape, 1, &a);
    if (!o) return NULL;
    nb__aux *x = nb__aux_of(o, sizeof(slice_par), 0);
    if (!x) {
        nb__unref(o);
        return NULL;
    }
    o->p.ax.axis = axis;
    slice_par par = {start, step};
    memcpy(x->data, &par, sizeof par);
    int64_t outer = span(a->shape, 0, axis), inner = span(a->shape, axis + 1, a->ndim);
    if (op == NB__OP_SLICE) {
        if (o->numel) move_rows(o->data, len, a->data, a->shape[axis], outer, inner, start, step, len, false);
    } else {
        if (o->numel) memset(o->data, 0, (size_t)o->numel * sizeof(double));
        if (a->numel)
            move_rows(o->data, len, a->data, a->shape[axis], outer, inner, start, step, a->shape[axis], true);
    }
    return nb__finish(o, 1, &a);
}

/* Python's slice(start, stop, step).indices(size): the first index and the
   count.  NB_NONE is an omitted bound.  No step of INT64_MIN reaches here. */
static int64_t slice_indices(int64_t size, int64_t start, int64_t stop, int64_t step, int64_t *first) {
    int64_t lower = step < 0 ? -1 : 0, upper = step < 0 ? size - 1 : size;
    if (start == NB_NONE) start = step < 0 ? upper : lower;
    else {
        if (start < 0) start += size;
        if (start < lower) start = lower;
        else if (start > upper) start = upper;
    }
    if (stop == NB_NONE) stop = step < 0 ? lower : upper;
    else {
        if (stop < 0) stop += size;
        if (stop < lower) stop = lower;
        else if (stop > upper) stop = upper;
    }
    *first = start;
    if (step > 0) return stop > start ? (stop - start - 1) / step + 1 : 0;
    return start > stop ? (start - stop - 1) / (-step) + 1 : 0;
}

static void fmt_bound(char *buf, size_t n, int64_t v) {
    if (v == NB_NONE) snprintf(buf, n, "None");
    else snprintf(buf, n, "%lld", (long long)v);
}

nb_tensor *nb_slice(nb_tensor *a, int axis, int64_t start, int64_t stop, int64_t step) {
    if (nb__null_args("slice", 1, &a)) return NULL;
    int ax;
    if (!nb__axis("slice", a, axis, &ax)) return NULL;
    if (step == NB_NONE) step = 1; /* Python's slice(a, b, None) */
    if (step == 0) {
        char s1[NB__SHAPE_BUF], b1[24], b2[24];
        fmt_bound(b1, sizeof b1, start);
        fmt_bound(b2, sizeof b2, stop);
        return nb__err("slice: slice step cannot be zero (%s:%s:0 along axis %d of a tensor of shape %s)", b1,
                       b2, axis, nb__shape_str(a->ndim, a->shape, s1, sizeof s1));
    }
    int64_t first, len = slice_indices(a->shape[ax], start, stop, step, &first);
    return slice_node(NB__OP_SLICE, a, ax, len ? first : 0, step, len);
}

int nb__vjp_slice(nb__rule *r) {
    const slice_par *p = slice_par_of(r->out);
    int ax = r->out->p.ax.axis;
    r->gin[0] = slice_node(NB__OP_SLICE_SCATTER, r->g, ax, p->start, p->step, r->in[0]->shape[ax]);
    return nb__rule_ok(r);
}
nb_tensor *nb__jvp_slice(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin) {
    (void)in;
    const slice_par *p = slice_par_of(out);
    int ax = out->p.ax.axis;
    return slice_node(NB__OP_SLICE, tin[0], ax, p->start, p->step, out->shape[ax]);
}
int nb__vjp_slice_scatter(nb__rule *r) {
    const slice_par *p = slice_par_of(r->out);
    int ax = r->out->p.ax.axis;
    r->gin[0] = slice_node(NB__OP_SLICE, r->g, ax, p->start, p->step, r->in[0]->shape[ax]);
    return nb__rule_ok(r);
}
nb_tensor *nb__jvp_slice_scatter(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin) {
    (void)in;
    const slice_par *p = slice_par_of(out);
    int ax = out->p.ax.axis;
    return slice_node(NB__OP_SLICE_SCATTER, tin[0], ax, p->start, p->step, out->shape[ax]);
}

/* ---- take and scatter_add ----------------------------------------------------------------
 * Parameters: axis in p.ax.axis, the n indices (normalised to [0, size)) in
 * the side record; n is the size along axis of take's output (scatter_add's input). */
static nb_tensor *take_node(nb__op op, nb_tensor *a, int axis, const int64_t *idx, int64_t n,
                            int64_t size) {
    int64_t shape[NB_MAX_DIMS];
    memcpy(shape, a->shape, sizeof shape);
    shape[axis] = op == NB__OP_TAKE ? n : size;
    nb_tensor *o = nb__node(op, a->ndim, shape, 1, &a);
    if (!o) return NULL;
    nb__aux *x = nb__aux_of(o, (size_t)n * sizeof(int64_t), 0);
    if (!x) {
        nb__unref(o);
        return NULL;
    }
    o->p.ax.axis = axis;
    if (n) memcpy(x->data, idx, (size_t)n * sizeof(int64_t));
    int64_t outer = span(a->shape, 0, axis), inner = span(a->shape, axis + 1, a->ndim);
    const double *src = a->data;
    double *dst = o->data;
    if (op == NB__OP_TAKE) { /* dst[o, k, :] = src[o, idx[k], :] */
        if (o->numel)
            for (int64_t b = 0; b < outer; b++) {
                const double *s = src + b * size * inner;
                double *d = dst + b * n * inner;
                if (inner == 1)
                    for (int64_t k = 0; k < n; k++) d[k] = s[idx[k]];
                else
                    for (int64_t k = 0; k < n; k++)
                        memcpy(d + k * inner, s + idx[k] * inner, (size_t)inner * sizeof(double));
            }
    } else { /* dst[o, idx[k], :] += src[o, k, :] */
        if (o->numel) memset(dst, 0, (size_t)o->numel * sizeof(double));
        if (a->numel)
            for (int64_t b = 0; b < outer; b++) {
                const double *s = src + b * n * inner;
                double *d = dst + b * size * inner;
                for (int64_t k = 0; k < n; k++) {
                    double *row = d + idx[k] * inner;
                    const double *from = s + k * inner;
                    for (int64_t j = 0; j < inner; j++) row[j] += from[j];
                }
            }
    }
    return nb__finish(o, 1, &a);
}

nb_tensor *nb_take(nb_tensor *a, const int64_t *idx, int64_t n, int axis) {
    if (nb__null_args("take", 1, &a)) return NULL;
    int ax;
    if (!nb__axis("take", a, axis, &ax)) return NULL;
    char s1[NB__SHAPE_BUF];
    if (n < 0 || n > (int64_t)((SIZE_MAX / 4) / sizeof(int64_t)))
        return nb__err("take: %lld indices for a tensor of shape %s", (long long)n,
                       nb__shape_str(a->ndim, a->shape, s1, sizeof s1));
    if (n > 0 && !idx)
        return nb__err("take: NULL indices for %lld elements (tensor of shape %s)", (long long)n,
                       nb__shape_str(a->ndim, a->shape, s1, sizeof s1));
    int64_t size = a->shape[ax];
    int64_t small[64], *norm = n <= 64 ? small : nb__malloc((size_t)n * sizeof(int64_t));
    if (!norm) return NULL;
    for (int64_t k = 0; k < n; k++) {
        int64_t i = idx[k];
        if (i < -size || i >= size) {
            if (norm != small) nb__free(norm);
            return nb__err("take: index %lld is out of bounds for axis %d with size %lld "
                           "(tensor of shape %s)",
                           (long long)i, axis, (long long)size, nb__shape_str(a->ndim, a->shape, s1, sizeof s1));
        }
        norm[k] = i < 0 ? i + size : i;
    }
    nb_tensor *o = take_node(NB__OP_TAKE, a, ax, norm, n, size);
    if (norm != small) nb__free(norm);
    return o;
}

static const int64_t *take_idx_of(const nb_tensor *t) { return (const int64_t *)(void *)t->aux->data; }

int nb__vjp_take(nb__rule *r) {
    nb_tensor *o = r->out;
    int ax = o->p.ax.axis;
    r->gin[0] = take_node(NB__OP_SCATTER_ADD, r->g, ax, take_idx_of(o), o->shape[ax], r->in[0]->shape[ax]);
    return nb__rule_ok(r);
}
nb_tensor *nb__jvp_take(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin) {
    int ax = out->p.ax.axis;
    return take_node(NB__OP_TAKE, tin[0], ax, take_idx_of(out), out->shape[ax], in[0]->shape[ax]);
}
int nb__vjp_scatter_add(nb__rule *r) {
    nb_tensor *o = r->out;
    int ax = o->p.ax.axis;
    r->gin[0] = take_node(NB__OP_TAKE, r->g, ax, take_idx_of(o), r->in[0]->shape[ax], o->shape[ax]);
    return nb__rule_ok(r);
}
nb_tensor *nb__jvp_scatter_add(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin) {
    int ax = out->p.ax.axis;
    return take_node(NB__OP_SCATTER_ADD, tin[0], ax, take_idx_of(out), in[0]->shape[ax], out->shape[ax]);
}

/* ---- concat and stack ----------------------------------------------------------------------
 * One node takes at most NB__MAX_INPUTS inputs; past that, nb_concat and
 * nb_stack build a tree (chunks of 64, then a concat of the chunks), which
 * gives the same values and gradients.  p.ax.axis is the axis, normalised
 * (for stack: the new axis, in the result), p.ax.keep the number of inputs
 * (the JVP rule needs it also when the node records no inputs). */

/* op CONCAT: the inputs' rows along axis one after another.  op STACK: the
   same with every input given a size-1 axis at `axis` first. */
static nb_tensor *join_node(nb__op op, int n, nb_tensor *const *ts, int axis, int ndim, const int64_t *shape) {
    nb_tensor *o = nb__node(op, ndim, shape, n, ts);
    if (!o) return NULL;
    o->p.ax.axis = axis;
    o->p.ax.keep = n;
    int64_t outer = span(shape, 0, axis);
    double *dst = o->data;
    if (o->numel)
        for (int64_t b = 0; b < outer; b++)
            for (int i = 0; i < n; i++) {
                int64_t chunk = outer ? ts[i]->numel / outer : 0; /* its rows of this block */
                if (chunk) memcpy(dst, ts[i]->data + b * chunk, (size_t)chunk * sizeof(double));
                dst += chunk;
            }
    return nb__finish(o, n, ts);
}

/* the inputs' tangents, zeros where an input has none */
static bool tangents_or_zeros(int n, nb_tensor *const *in, nb_tensor *const *tin, nb_tensor **t) {
    for (int i = 0; i < n; i++) {
        t[i] = tin[i] ? tin[i] : nb__const_like(in[i], 0.0);
        if (!t[i]) return false;
    }
    return true;
}

/* concat of n (already validated) inputs along ax, with `total` rows there */
static nb_tensor *concat_tree(int n, nb_tensor *const *ts, int ax, int64_t total) {
    int64_t shape[NB_MAX_DIMS];
    memcpy(shape, ts[0]->shape, sizeof shape);
    shape[ax] = total;
    if (n <= NB__MAX_INPUTS) return join_node(NB__OP_CONCAT, n, ts, ax, ts[0]->ndim, shape);
    int m = (n + NB__MAX_INPUTS - 1) / NB__MAX_INPUTS;
    nb_tensor **parts = nb__malloc((size_t)m * sizeof *parts);
    if (!parts) return NULL;
    nb_tensor *r = NULL;
    int64_t sum = 0;
    for (int j = 0; j < m; j++) {
        int lo = j * NB__MAX_INPUTS, k = n - lo < NB__MAX_INPUTS ? n - lo : NB__MAX_INPUTS;
        int64_t rows = 0;
        for (int i = lo; i < lo + k; i++) rows += ts[i]->shape[ax];
        if (!(parts[j] = concat_tree(k, ts + lo, ax, rows))) goto out;
        sum += rows;
    }
    r = concat_tree(m, parts, ax, sum);
out:
    nb__free(parts);
    return r;
}

nb_tensor *nb_concat(int n, nb_tensor *const *ts, int axis) {
    if (n < 1 || !ts) return nb__err("concat: need at least one array to concatenate (got %d)", n < 0 ? 0 : n);
    if (nb__null_args("concat", n, ts)) return NULL;
    char s1[NB__SHAPE_BUF], s2[NB__SHAPE_BUF];
    for (int i = 0; i < n; i++)
        if (ts[i]->ndim == 0)
            return nb__err("concat: zero-dimensional arrays cannot be concatenated (the array at index %d has shape ())", i);
    int ax;
    if (!nb__axis("concat", ts[0], axis, &ax)) return NULL;
    const nb_tensor *t0 = ts[0];
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        const nb_tensor *t = ts[i];
        if (t->ndim != t0->ndim)
            return nb__err("concat: all the input arrays must have the same number of dimensions, but the array at "
                           "index 0 has shape %s and the array at index %d has shape %s",
                           nb__shape_str(t0->ndim, t0->shape, s1, sizeof s1), i,
                           nb__shape_str(t->ndim, t->shape, s2, sizeof s2));
        for (int d = 0; d < t->ndim; d++)
            if (d != ax && t->shape[d] != t0->shape[d])
                return nb__err("concat: all the input array dimensions except for the concatenation axis must "
                               "match exactly, but along dimension %d, the array at index 0 has shape %s and the "
                               "array at index %d has shape %s",
                               d, nb__shape_str(t0->ndim, t0->shape, s1, sizeof s1), i,
                               nb__shape_str(t->ndim, t->shape, s2, sizeof s2));
        if (__builtin_add_overflow(total, t->shape[ax], &total))
            return nb__err("concat: the result's size along axis %d overflows (the inputs have shapes like %s)", axis,
                           nb__shape_str(t0->ndim, t0->shape, s1, sizeof s1));
    }
    return concat_tree(n, ts, ax, total);
}

int nb__vjp_concat(nb__rule *r) {
    int ax = r->out->p.ax.axis;
    int64_t off = 0;
    for (int i = 0; i < r->out->nin; i++) {
        int64_t rows = r->in[i]->shape[ax];
        if (r->need[i]) r->gin[i] = slice_node(NB__OP_SLICE, r->g, ax, off, 1, rows);
        off += rows;
    }
    return nb__rule_ok(r);
}
nb_tensor *nb__jvp_concat(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin) {
    nb_tensor *t[NB__MAX_INPUTS];
    int n = out->p.ax.keep, ax = out->p.ax.axis;
    if (!tangents_or_zeros(n, in, tin, t)) return NULL;
    return join_node(NB__OP_CONCAT, n, t, ax, out->ndim, out->shape);
}

nb_tensor *nb_stack(int n, nb_tensor *const *ts, int axis) {
    if (n < 1 || !ts) return nb__err("stack: need at least one array to stack (got %d)", n < 0 ? 0 : n);
    if (nb__null_args("stack", n, ts)) return NULL;
    char s1[NB__SHAPE_BUF], s2[NB__SHAPE_BUF];
    const nb_tensor *t0 = ts[0];
    for (int i = 1; i < n; i++)
        if (!nb__same_shape(ts[i], t0) ||
            (t0->ndim > 0 && memcmp(ts[i]->shape, t0->shape, (size_t)t0->ndim * sizeof(int64_t)) != 0))
            return nb__err("stack: all input arrays must have the same shape, but the array at index 0 has "
                           "shape %s and the array at index %d has shape %s",
                           nb__shape_str(t0->ndim, t0->shape, s1, sizeof s1), i,
                           nb__shape_str(ts[i]->ndim, ts[i]->shape, s2, sizeof s2));
    int nd = t0->ndim + 1; /* the result's dimensions: a negative axis counts there */
    if (nd > NB_MAX_DIMS)
        return nb__err("stack: arrays of shape %s already have the most dimensions (%d)",
                       nb__shape_str(t0->ndim, t0->shape, s1, sizeof s1), NB_MAX_DIMS);
    if (axis < -nd || axis >= nd)
        return nb__err("stack: axis %d is out of range for arrays of shape %s (the result has %d dimensions)", axis,
                       nb__shape_str(t0->ndim, t0->shape, s1, sizeof s1), nd);
    int ax = axis < 0 ? axis + nd : axis;
    int64_t shape[NB_MAX_DIMS];
    for (int d = 0, k = 0; d < nd; d++) shape[d] = d == ax ? n : t0->shape[k++];
    if (n <= NB__MAX_INPUTS) return join_node(NB__OP_STACK, n, ts, ax, nd, shape);
    /* past 64 inputs: stacks of up to 64, concatenated along the new axis */
    int m = (n + NB__MAX_INPUTS - 1) / NB__MAX_INPUTS;
    nb_tensor **parts = nb__malloc((size_t)m * sizeof *parts);
    if (!parts) return NULL;
    nb_tensor *r = NULL;
    for (int j = 0; j < m; j++) {
        int lo = j * NB__MAX_INPUTS, k = n - lo < NB__MAX_INPUTS ? n - lo : NB__MAX_INPUTS;
        shape[ax] = k;
        if (!(parts[j] = join_node(NB__OP_STACK, k, ts + lo, ax, nd, shape))) goto out;
    }
    r = concat_tree(m, parts, ax, n);
out:
    nb__free(parts);
    return r;
}

int nb__vjp_stack(nb__rule *r) {
    int ax = r->out->p.ax.axis;
    for (int i = 0; i < r->out->nin; i++)
        if (r->need[i]) {
            nb_tensor *s = slice_node(NB__OP_SLICE, r->g, ax, i, 1, 1);
            r->gin[i] = s ? nb_squeeze(s, ax) : NULL;
        }
    return nb__rule_ok(r);
}
nb_tensor *nb__jvp_stack(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin) {
    nb_tensor *t[NB__MAX_INPUTS];
    int n = out->p.ax.keep;
    if (!tangents_or_zeros(n, in, tin, t)) return NULL;
    return join_node(NB__OP_STACK, n, t, out->p.ax.axis, out->ndim, out->shape);
}
