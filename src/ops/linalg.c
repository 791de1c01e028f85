/*
 * matmul with numpy's rules, and matmul_bt (a @ b^T, the Linear layer's
 * product); both run on the GEMM of src/kernels/gemm.c.
 *
 *   (n,k) @ (k,m) -> (n,m)          (k,) @ (k,m) -> (m,)
 *   (n,k) @ (k,)  -> (n,)           (k,) @ (k,)  -> ()
 *   (...,n,k) @ (...,k,m) -> (broadcast(...), n, m)
 *
 * VJP: dA = G B^T, dB = A^T G (on the 2-d views, batch axes summed back).
 */
#include "engine.h"
#include "kernels/kernels.h"

#include <string.h>

/* ---- shapes -------------------------------------------------------------------------- */
typedef struct {
    int64_t n, k, m;                 /* the matrix product (n,k) @ (k,m)         */
    int nb;                          /* batch dims of the output                  */
    int64_t batch[NB_MAX_DIMS];
    int64_t sa[NB_MAX_DIMS], sb[NB_MAX_DIMS]; /* batch strides, in matrices       */
    int ndim;                        /* the output                                */
    int64_t shape[NB_MAX_DIMS];
} mm_plan;

static void batch_strides(const nb_tensor *t, int nb, int64_t *st) {
    int tb = t->ndim > 2 ? t->ndim - 2 : 0;
    int64_t s = 1;
    for (int d = nb - 1; d >= 0; d--) {
        int q = d - (nb - tb);
        int64_t dim = q >= 0 ? t->shape[q] : 1;
        st[d] = dim == 1 ? 0 : s;
        s *= dim;
    }
}

static bool mm_plan_make(const nb_tensor *a, const nb_tensor *b, mm_plan *p) {
    char s1[NB__SHAPE_BUF], s2[NB__SHAPE_BUF];
    nb__shape_str(a->ndim, a->shape, s1, sizeof s1);
    nb__shape_str(b->ndim, b->shape, s2, sizeof s2);
    if (a->ndim == 0 || b->ndim == 0) {
        nb__err("matmul: shapes %s and %s: a 0-d operand cannot be multiplied as a matrix "
                "(use prod)", s1, s2);
        return false;
    }
    p->n = a->ndim == 1 ? 1 : a->shape[a->ndim - 2];
    p->k = a->shape[a->ndim - 1];
    int64_t kb = b->ndim == 1 ? b->shape[0] : b->shape[b->ndim - 2];
    p->m = b->ndim == 1 ? 1 : b->shape[b->ndim - 1];
    if (p->k != kb) {
        nb__err("matmul: shapes %s and %s are not aligned: %lld (last axis of the first) != "
                "%lld (%s of the second)", s1, s2, (long long)p->k, (long long)kb,
                b->ndim == 1 ? "its only axis" : "second-to-last axis");
        return false;
    }
    int na = a->ndim > 2 ? a->ndim - 2 : 0, nbb = b->ndim > 2 ? b->ndim - 2 : 0;
    if (!nb__broadcast_shape(na, a->shape, nbb, b->shape, &p->nb, p->batch)) {
        nb__err("matmul: the batch axes of shapes %s and %s cannot be broadcast", s1, s2);
        return false;
    }
    batch_strides(a, p->nb, p->sa);
    batch_strides(b, p->nb, p->sb);
    p->ndim = 0;
    for (int d = 0; d < p->nb; d++) p->shape[p->ndim++] = p->batch[d];
    if (a->ndim > 1) p->shape[p->ndim++] = p->n;
    if (b->ndim > 1) p->shape[p->ndim++] = p->m;
    return true;
}

static void mm_kernel(const mm_plan *p, const nb_tensor *a, const nb_tensor *b, double *out) {
    int64_t nbatch = 1;
    for (int d = 0; d < p->nb; d++) nbatch *= p->batch[d];
    int64_t idx[NB_MAX_DIMS] = {0}, oa = 0, ob = 0;
    int64_t amat = p->n * p->k, bmat = p->k * p->m, omat = p->n * p->m;
    for (int64_t q = 0; q < nbatch; q++) {
        nb__gemm(false, false, p->n, p->m, p->k, 1.0, a->data + oa * amat, p->k,
                 b->data + ob * bmat, p->m, 0.0, out + q * omat, p->m);
        for (int d = p->nb - 1; d >= 0; d--) {
            oa += p->sa[d];
            ob += p->sb[d];
            if (++idx[d] < p->batch[d]) break;
            oa -= p->sa[d] * p->batch[d];
            ob -= p->sb[d] * p->batch[d];
            idx[d] = 0;
        }
    }
}

nb_tensor *nb_matmul(nb_tensor *a, nb_tensor *b) {
    nb_tensor *in[2] = {a, b};
    if (nb__null_args("matmul", 2, in)) return NULL;
    mm_plan p;
    if (!mm_plan_make(a, b, &p)) return NULL;
    nb_tensor *o = nb__node(NB__OP_MATMUL, p.ndim, p.shape, 2, in);
    if (!o) return NULL;
    if (o->numel) mm_kernel(&p, a, b, o->data); /* an empty batch is no work */
    return nb__finish(o, 2, in);
}

/* ---- rules ------------------------------------------------------------------------------ */
/* An un-recorded product of 2-d a, b with transposes (a plain backward only). */
static nb_tensor *gemm_new(const nb_tensor *a, bool ta, const nb_tensor *b, bool tb) {
    int64_t m = ta ? a->shape[1] : a->shape[0], k = ta ? a->shape[0] : a->shape[1];
    int64_t n = tb ? b->shape[0] : b->shape[1];
    int64_t shape[2] = {m, n};
    nb_tensor *o = nb__alloc("matmul", 2, shape);
    if (!o) return NULL;
    o->op = NB__OP_MATMUL;
    nb__name(o, NB__OP_MATMUL);
    if (k == 0) memset(o->data, 0, (size_t)o->numel * sizeof(double));
    else nb__gemm(ta, tb, m, n, k, 1.0, a->data, a->shape[1], b->data, b->shape[1], 0.0, o->data, n);
    return nb__pool(o);
}

/* ---- matmul_bt: a @ b^T, the Linear layer's product --------------------------------- */
nb_tensor *nb_matmul_bt(nb_tensor *a, nb_tensor *b) {
    nb_tensor *in[2] = {a, b};
    if (nb__null_args("matmul_bt", 2, in)) return NULL;
    char s1[NB__SHAPE_BUF], s2[NB__SHAPE_BUF];
    if (a->ndim != 2 || b->ndim != 2 || a->shape[1] != b->shape[1])
        return nb__err("matmul_bt: shapes %s and %s: needs (n, k) and (m, k)",
                       nb__shape_str(a->ndim, a->shape, s1, sizeof s1),
                       nb__shape_str(b->ndim, b->shape, s2, sizeof s2));
    int64_t n = a->shape[0], k = a->shape[1], m = b->shape[0], shape[2] = {n, m};
    nb_tensor *o = nb__node(NB__OP_MATMUL_BT, 2, shape, 2, in);
    if (!o) return NULL;
    if (k == 0) memset(o->data, 0, (size_t)o->numel * sizeof(double));
    else nb__gemm(false, true, n, m, k, 1.0, a->data, k, b->data, k, 0.0, o->data, m);
    return nb__finish(o, 2, in);
}

/* y = a b^T: da = g b (n,m)(m,k); db = g^T a (m,n)(n,k) */
int nb__vjp_matmul_bt(nb__rule *r) {
    nb_tensor *a = r->in[0], *b = r->in[1], *g = r->g;
    bool cg = r->create_graph;
    if (r->need[0]) r->gin[0] = cg ? nb_matmul(g, b) : gemm_new(g, false, b, false);
    if (r->need[1]) r->gin[1] = cg ? nb_matmul(nb_transpose(g), a) : gemm_new(g, true, a, false);
    return nb__rule_ok(r);
}

nb_tensor *nb__jvp_matmul_bt(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin) {
    nb_tensor *t0 = tin[0] ? nb_matmul_bt(tin[0], in[1]) : NULL;
    nb_tensor *t1 = tin[1] ? nb_matmul_bt(in[0], tin[1]) : NULL;
    if (tin[0] && tin[1]) return nb_add(t0, t1);
    return t0 ? t0 : t1;
}

int nb__vjp_matmul(nb__rule *r) {
    nb_tensor *a = r->in[0], *b = r->in[1], *g = r->g, **gin = r->gin;
    const bool *need = r->need;
    if (!r->create_graph && a->ndim == 2 && b->ndim == 2) {
        /* the common case, fused: GEMMs with transpose flags, no copies */
        gin[0] = need[0] ? gemm_new(g, false, b, true) : NULL;  /* (n,m)(m,k) */
        gin[1] = need[1] ? gemm_new(a, true, g, false) : NULL;  /* (k,n)(n,m) */
        return nb__rule_ok(r);
    }
    /* general: promote vectors to matrices, reshape g to match, and use ops */
    int64_t k = a->shape[a->ndim - 1];
    int64_t as[2] = {1, k}, bs[2] = {k, 1};
    nb_tensor *A = a->ndim == 1 ? nb_reshape(a, 2, as) : a;
    nb_tensor *B = b->ndim == 1 ? nb_reshape(b, 2, bs) : b;
    mm_plan p;
    if (!A || !B || !mm_plan_make(A, B, &p)) return -1;
    nb_tensor *G = nb_reshape(g, p.ndim, p.shape);
    if (need[0]) {
        nb_tensor *gA = nb_matmul(G, nb_transpose(B));
        gA = nb_sum_to(gA, A->ndim, A->shape);
        gin[0] = nb_reshape(gA, a->ndim, a->shape);
    }
    if (need[1]) {
        nb_tensor *gB = nb_matmul(nb_transpose(A), G);
        gB = nb_sum_to(gB, B->ndim, B->shape);
        gin[1] = nb_reshape(gB, b->ndim, b->shape);
    }
    return nb__rule_ok(r);
}

nb_tensor *nb__jvp_matmul(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin) {
    nb_tensor *t0 = tin[0] ? nb_matmul(tin[0], in[1]) : NULL;
    nb_tensor *t1 = tin[1] ? nb_matmul(in[0], tin[1]) : NULL;
    if (tin[0] && tin[1]) return nb_add(t0, t1);
    return t0 ? t0 : t1;
}
