/*
 * Shape ops: transpose, reshape, broadcast_to and its adjoint sum_to,
 * permute, expand_dims and squeeze.  All are linear, so each JVP is the op
 * itself applied to the tangent, and each VJP is the adjoint op: transpose
 * <-> transpose, reshape <-> reshape, broadcast_to <-> sum_to, permute <->
 * the inverse permute, expand_dims <-> squeeze.
 */
#include "engine.h"

#include <stdio.h>
#include <string.h>

/* Strides of a tensor of shape ts (tn dims) inside an n-d index space, its
   axes aligned to the right; 0 along its size-1 (broadcast) axes. */
static void bstrides(int tn, const int64_t *ts, int n, int64_t *st) {
    int64_t s = 1;
    for (int d = n - 1; d >= 0; d--) {
        int k = d - (n - tn);
        int64_t dim = k >= 0 ? ts[k] : 1;
        st[d] = dim == 1 ? 0 : s;
        s *= dim;
    }
}

/* Visits the contiguous index space `shape` row by row (rows of the last
   axis), with `off` the matching offset in a strided tensor. */
#define STRIDED_ROWS(n, shape, st, total, BODY)                                           \
    do {                                                                                  \
        int64_t inner_ = (n) ? (shape)[(n) - 1] : 1, rows_ = inner_ ? (total) / inner_ : 0; \
        int64_t idx_[NB_MAX_DIMS] = {0}, off = 0;                                         \
        int64_t sl = (n) ? (st)[(n) - 1] : 0;                                             \
        for (int64_t r = 0; r < rows_; r++) {                                             \
            BODY;                                                                         \
            for (int d_ = (n) - 2; d_ >= 0; d_--) {                                       \
                off += (st)[d_];                                                          \
                if (++idx_[d_] < (shape)[d_]) break;                                      \
                off -= (st)[d_] * (shape)[d_];                                            \
                idx_[d_] = 0;                                                             \
            }                                                                             \
        }                                                                                 \
        (void)sl;                                                                         \
    } while (0)

/* can `from` be broadcast to `to` (numpy rules)? */
static bool broadcastable(int fn, const int64_t *fs, int tn, const int64_t *ts) {
    if (fn > tn) return false;
    for (int i = 0; i < fn; i++) {
        int64_t f = fs[fn - 1 - i], t = ts[tn - 1 - i];
        if (f != t && f != 1) return false;
    }
    return true;
}

/* ---- broadcast_to ------------------------------------------------------------------ */
nb_tensor *nb_broadcast_to(nb_tensor *a, int ndim, const int64_t *shape) {
    if (nb__null_args("broadcast_to", 1, &a)) return NULL;
    int64_t numel;
    if (!nb__shape_ok("broadcast_to", ndim, shape, &numel)) return NULL;
    if (!broadcastable(a->ndim, a->shape, ndim, shape)) {
        char s1[NB__SHAPE_BUF], s2[NB__SHAPE_BUF];
        return nb__err("broadcast_to: cannot broadcast shape %s to %s",
                       nb__shape_str(a->ndim, a->shape, s1, sizeof s1),
                       nb__shape_str(ndim, shape, s2, sizeof s2));
    }
    nb_tensor *o = nb__node(NB__OP_BROADCAST_TO, ndim, shape, 1, &a);
    if (!o) return NULL;
    int64_t st[NB_MAX_DIMS];
    bstrides(a->ndim, a->shape, ndim, st);
    const double *src = a->data;
    double *dst = o->data;
    int64_t inner = ndim ? shape[ndim - 1] : 1;
    if (a->numel == 1) {
        for (int64_t i = 0; i < o->numel; i++) dst[i] = src[0];
    } else {
        STRIDED_ROWS(ndim, shape, st, o->numel, {
            double *row = dst + r * inner;
            for (int64_t j = 0; j < inner; j++) row[j] = src[off + j * sl];
        });
    }
    return nb__finish(o, 1, &a);
}

int nb__vjp_broadcast_to(nb__rule *r) {
    nb_tensor *x = r->in[0];
    r->gin[0] = nb_sum_to(r->g, x->ndim, x->shape);
    return nb__rule_ok(r);
}
nb_tensor *nb__jvp_broadcast_to(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin) {
    return nb_broadcast_to(tin[0], out->ndim, out->shape);
}

/* ---- sum_to: sums a over the axes along which `shape` was broadcast ----------------- */
nb_tensor *nb_sum_to(nb_tensor *a, int ndim, const int64_t *shape) {
    if (nb__null_args("sum_to", 1, &a)) return NULL;
    int64_t numel;
    if (!nb__shape_ok("sum_to", ndim, shape, &numel)) return NULL;
    if (!broadcastable(ndim, shape, a->ndim, a->shape)) {
        char s1[NB__SHAPE_BUF], s2[NB__SHAPE_BUF];
        return nb__err("sum_to: shape %s does not broadcast to %s, so %s cannot be summed to it",
                       nb__shape_str(ndim, shape, s1, sizeof s1),
                       nb__shape_str(a->ndim, a->shape, s2, sizeof s2), s2);
    }
    nb_tensor *o = nb__node(NB__OP_SUM_TO, ndim, shape, 1, &a);
    if (!o) return NULL;
    int64_t st[NB_MAX_DIMS];
    bstrides(ndim, shape, a->ndim, st);
    double *dst = o->data;
    const double *src = a->data;
    int n = a->ndim;
    int64_t inner = n ? a->shape[n - 1] : 1;
    memset(dst, 0, (size_t)o->numel * sizeof(double));
    STRIDED_ROWS(n, a->shape, st, a->numel, {
        const double *row = src + r * inner;
        if (sl == 0) {
            double s = 0.0;
            for (int64_t j = 0; j < inner; j++) s += row[j];
            dst[off] += s;
        } else {
            for (int64_t j = 0; j < inner; j++) dst[off + j * sl] += row[j];
        }
    });
    return nb__finish(o, 1, &a);
}

int nb__vjp_sum_to(nb__rule *r) {
    nb_tensor *x = r->in[0];
    r->gin[0] = nb_broadcast_to(r->g, x->ndim, x->shape);
    return nb__rule_ok(r);
}
nb_tensor *nb__jvp_sum_to(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin) {
    return nb_sum_to(tin[0], out->ndim, out->shape);
}

/* ---- reshape ------------------------------------------------------------------------- */
nb_tensor *nb_reshape(nb_tensor *a, int ndim, const int64_t *shape) {
    if (nb__null_args("reshape", 1, &a)) return NULL;
    if (ndim < 0 || ndim > NB_MAX_DIMS || (ndim > 0 && !shape))
        return nb__err("reshape: %d dimensions requested; a tensor has 0 to %d", ndim, NB_MAX_DIMS);
    int64_t s[NB_MAX_DIMS], known = 1;
    int infer = -1;
    char s1[NB__SHAPE_BUF], s2[NB__SHAPE_BUF];
    for (int i = 0; i < ndim; i++) {
        s[i] = shape[i];
        if (s[i] == -1 && infer < 0) infer = i;
        else if (s[i] < 0)
            return nb__err("reshape: invalid size %lld in shape %s", (long long)s[i],
                           nb__shape_str(ndim, shape, s1, sizeof s1));
        else if (s[i] > 0 && known > INT64_MAX / s[i]) known = -1; /* overflow: cannot match */
        else if (known >= 0) known *= s[i];
    }
    if (infer >= 0) {
        if (known <= 0 || a->numel % known != 0)
            return nb__err("reshape: cannot reshape a tensor of shape %s (%lld elements) into %s",
                           nb__shape_str(a->ndim, a->shape, s1, sizeof s1), (long long)a->numel,
                           nb__shape_str(ndim, shape, s2, sizeof s2));
        s[infer] = a->numel / known;
        known = a->numel;
    }
    if (known != a->numel)
        return nb__err("reshape: cannot reshape a tensor of shape %s (%lld elements) into %s",
                       nb__shape_str(a->ndim, a->shape, s1, sizeof s1), (long long)a->numel,
                       nb__shape_str(ndim, shape, s2, sizeof s2));
    nb_tensor *o = nb__node(NB__OP_RESHAPE, ndim, s, 1, &a);
    if (!o) return NULL;
    if (o->numel) memcpy(o->data, a->data, (size_t)o->numel * sizeof(double));
    return nb__finish(o, 1, &a);
}

int nb__vjp_reshape(nb__rule *r) {
    nb_tensor *x = r->in[0];
    r->gin[0] = nb_reshape(r->g, x->ndim, x->shape);
    return nb__rule_ok(r);
}
nb_tensor *nb__jvp_reshape(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin) {
    return nb_reshape(tin[0], out->ndim, out->shape);
}

/* ---- transpose: swaps the last two axes; below 2-d it is the identity ------------------ */
nb_tensor *nb_transpose(nb_tensor *a) {
    if (nb__null_args("transpose", 1, &a)) return NULL;
    int64_t shape[NB_MAX_DIMS];
    int n = a->ndim;
    memcpy(shape, a->shape, sizeof shape);
    if (n >= 2) {
        shape[n - 2] = a->shape[n - 1];
        shape[n - 1] = a->shape[n - 2];
    }
    nb_tensor *o = nb__node(NB__OP_TRANSPOSE, n, shape, 1, &a);
    if (!o) return NULL;
    if (n < 2) {
        if (o->numel) memcpy(o->data, a->data, (size_t)o->numel * sizeof(double));
    } else {
        int64_t R = a->shape[n - 2], C = a->shape[n - 1], mat = R * C;
        int64_t batch = mat ? a->numel / mat : 0;
        enum { TB = 32 }; /* tiles keep both sides in cache */
        for (int64_t b = 0; b < batch; b++) {
            const double *src = a->data + b * mat;
            double *dst = o->data + b * mat;
            for (int64_t i0 = 0; i0 < R; i0 += TB)
                for (int64_t j0 = 0; j0 < C; j0 += TB)
                    for (int64_t i = i0; i < R && i < i0 + TB; i++)
                        for (int64_t j = j0; j < C && j < j0 + TB; j++) dst[j * R + i] = src[i * C + j];
        }
    }
    return nb__finish(o, 1, &a);
}

int nb__vjp_transpose(nb__rule *r) {
    r->gin[0] = nb_transpose(r->g);
    return nb__rule_ok(r);
}
nb_tensor *nb__jvp_transpose(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin) {
    return nb_transpose(tin[0]);
}

/* ---- dual: the identity, carrying a tangent (forward mode) ------------------------------ */
nb_tensor *nb_dual(nb_tensor *primal, nb_tensor *tangent) {
    nb_tensor *args[2] = {primal, tangent};
    if (nb__null_args("dual", 2, args)) return NULL;
    if (!nb__same_shape(primal, tangent)) {
        char s1[NB__SHAPE_BUF], s2[NB__SHAPE_BUF];
        return nb__err("dual: tangent shape %s does not match primal shape %s",
                       nb__shape_str(tangent->ndim, tangent->shape, s1, sizeof s1),
                       nb__shape_str(primal->ndim, primal->shape, s2, sizeof s2));
    }
    nb_tensor *t = nb__node(NB__OP_DUAL, primal->ndim, primal->shape, 1, &primal);
    if (!t) return NULL;
    if (t->numel) memcpy(t->data, primal->data, (size_t)t->numel * sizeof(double));
    atomic_store(&nb__duals_made, true);
    t->tangent = nb__ref(tangent);
    return nb__pool(t);
}

int nb__vjp_dual(nb__rule *r) {
    r->gin[0] = r->g;
    return 0;
}
nb_tensor *nb__jvp_dual(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin) {
    return tin[0];
}

/* ---- permute: numpy transpose(a, axes); out.shape[k] = a.shape[axes[k]] -------------------
 * The axes live in the node's 8 parameter bytes, one byte each (NB_MAX_DIMS = 8).
 * VJP: permute by the inverse permutation; JVP: the same permutation. */
_Static_assert(NB_MAX_DIMS <= 8, "permute keeps its axes in the node's 8 parameter bytes");

static nb_tensor *permute_node(nb_tensor *a, const uint8_t *ax) {
    int n = a->ndim;
    int64_t shape[NB_MAX_DIMS] = {0}, ist[NB_MAX_DIMS], st[NB_MAX_DIMS];
    bool identity = true;
    for (int k = 0; k < n; k++) {
        shape[k] = a->shape[ax[k]];
        identity &= ax[k] == k;
    }
    nb_tensor *o = nb__node(NB__OP_PERMUTE, n, shape, 1, &a);
    if (!o) return NULL;
    uint8_t packed[8] = {0};
    memcpy(packed, ax, (size_t)n);
    memcpy(&o->p, packed, sizeof packed);
    if (identity || o->numel <= 1) {
        if (o->numel) memcpy(o->data, a->data, (size_t)o->numel * sizeof(double));
    } else {
        int64_t s = 1; /* a's contiguous strides, then picked in the output's order */
        for (int d = n - 1; d >= 0; d--) {
            ist[d] = s;
            s *= a->shape[d];
        }
        for (int k = 0; k < n; k++) st[k] = ist[ax[k]];
        const double *src = a->data;
        double *dst = o->data;
        int64_t inner = shape[n - 1];
        STRIDED_ROWS(n, shape, st, o->numel, {
            double *row = dst + r * inner;
            for (int64_t j = 0; j < inner; j++) row[j] = src[off + j * sl];
        });
    }
    return nb__finish(o, 1, &a);
}

static void permute_axes_of(const nb_tensor *t, uint8_t *ax) {
    uint8_t packed[8];
    memcpy(packed, &t->p, sizeof packed);
    memcpy(ax, packed, (size_t)t->ndim);
}

nb_tensor *nb_permute(nb_tensor *a, const int *axes) {
    if (nb__null_args("permute", 1, &a)) return NULL;
    int n = a->ndim;
    uint8_t ax[NB_MAX_DIMS];
    bool seen[NB_MAX_DIMS] = {false};
    char s1[NB__SHAPE_BUF];
    for (int k = 0; k < n; k++) {
        int v = axes ? axes[k] : n - 1 - k; /* NULL: reversed, like numpy's transpose(a) */
        if (v < -n || v >= n)
            return nb__err("permute: axis %d is out of range for a tensor of shape %s", v,
                           nb__shape_str(n, a->shape, s1, sizeof s1));
        if (v < 0) v += n;
        if (seen[v]) {
            char list[160];
            int len = 0;
            for (int j = 0; j < n; j++)
                len += snprintf(list + len, sizeof list - (size_t)len, "%s%d", j ? ", " : "", axes[j]);
            return nb__err("permute: axes (%s) are not a permutation of the %d axes of a tensor of shape %s "
                           "(axis %d repeats)",
                           list, n, nb__shape_str(n, a->shape, s1, sizeof s1), v);
        }
        seen[v] = true;
        ax[k] = (uint8_t)v;
    }
    return permute_node(a, ax);
}

int nb__vjp_permute(nb__rule *r) {
    uint8_t ax[NB_MAX_DIMS], inv[NB_MAX_DIMS];
    permute_axes_of(r->out, ax);
    for (int k = 0; k < r->out->ndim; k++) inv[ax[k]] = (uint8_t)k;
    r->gin[0] = permute_node(r->g, inv);
    return nb__rule_ok(r);
}
nb_tensor *nb__jvp_permute(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin) {
    (void)in;
    uint8_t ax[NB_MAX_DIMS];
    permute_axes_of(out, ax);
    return permute_node(tin[0], ax);
}

/* ---- expand_dims / squeeze: a size-1 axis in, a size-1 axis out (each the other's adjoint).
 * The data is unchanged (a copy); p.ax.axis is the axis, normalised. */
static nb_tensor *resized(nb__op op, nb_tensor *a, int ndim, const int64_t *shape, int axis) {
    nb_tensor *o = nb__node(op, ndim, shape, 1, &a);
    if (!o) return NULL;
    o->p.ax.axis = axis;
    if (o->numel) memcpy(o->data, a->data, (size_t)o->numel * sizeof(double));
    return nb__finish(o, 1, &a);
}

static nb_tensor *expand_node(nb_tensor *a, int ax) {
    int64_t shape[NB_MAX_DIMS];
    for (int d = 0, k = 0; d <= a->ndim; d++) shape[d] = d == ax ? 1 : a->shape[k++];
    return resized(NB__OP_EXPAND_DIMS, a, a->ndim + 1, shape, ax);
}
static nb_tensor *squeeze_node(nb_tensor *a, int ax) {
    int64_t shape[NB_MAX_DIMS];
    for (int d = 0, k = 0; d < a->ndim; d++)
        if (d != ax) shape[k++] = a->shape[d];
    return resized(NB__OP_SQUEEZE, a, a->ndim - 1, shape, ax);
}

nb_tensor *nb_expand_dims(nb_tensor *a, int axis) {
    if (nb__null_args("expand_dims", 1, &a)) return NULL;
    int n = a->ndim + 1; /* the result's dimensions: a negative axis counts there */
    char s1[NB__SHAPE_BUF];
    if (n > NB_MAX_DIMS)
        return nb__err("expand_dims: a tensor of shape %s already has the most dimensions (%d)",
                       nb__shape_str(a->ndim, a->shape, s1, sizeof s1), NB_MAX_DIMS);
    if (axis < -n || axis >= n)
        return nb__err("expand_dims: axis %d is out of range for a tensor of shape %s "
                       "(the result has %d dimensions)",
                       axis, nb__shape_str(a->ndim, a->shape, s1, sizeof s1), n);
    return expand_node(a, axis < 0 ? axis + n : axis);
}

nb_tensor *nb_squeeze(nb_tensor *a, int axis) {
    if (nb__null_args("squeeze", 1, &a)) return NULL;
    int ax;
    if (!nb__axis("squeeze", a, axis, &ax)) return NULL;
    if (a->shape[ax] != 1) {
        char s1[NB__SHAPE_BUF];
        return nb__err("squeeze: axis %d of a tensor of shape %s has size %lld, not 1", axis,
                       nb__shape_str(a->ndim, a->shape, s1, sizeof s1), (long long)a->shape[ax]);
    }
    return squeeze_node(a, ax);
}

int nb__vjp_expand_dims(nb__rule *r) {
    r->gin[0] = squeeze_node(r->g, r->out->p.ax.axis);
    return nb__rule_ok(r);
}
nb_tensor *nb__jvp_expand_dims(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin) {
    (void)in;
    return expand_node(tin[0], out->p.ax.axis);
}
int nb__vjp_squeeze(nb__rule *r) {
    r->gin[0] = expand_node(r->g, r->out->p.ax.axis);
    return nb__rule_ok(r);
}
nb_tensor *nb__jvp_squeeze(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin) {
    (void)in;
    return squeeze_node(tin[0], out->p.ax.axis);
}
