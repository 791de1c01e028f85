/*
 * Derivatives of functions f: tensor -> tensor, built on the engine:
 * nb_jacobian (forward or reverse mode, whichever is cheaper), nb_hessian
 * (the Jacobian of the gradient) and nb_hvp (double backward).
 *
 * f is handed x itself when x is a leaf that requires grad (so f may read it
 * through a model's parameters: pass the parameter tensor as x), else a
 * copy of x that requires grad.  An f whose output does not depend on the
 * tensor it was handed is an error, in both modes.
 */
#include "engine.h"

#include <string.h>

/* Calls the user's f; a NULL result always comes with a message. */
static nb_tensor *call_f(const char *who, nb_fn f, nb_tensor *x, void *ctx) {
    nb_tensor *y = f(x, ctx);
    if (!y && !nb__thread()->error.set) nb__err("%s: f returned NULL", who);
    return y;
}

/* what f is handed: x itself, or a copy of it that requires grad */
static nb_tensor *argument(nb_tensor *x) {
    if (x->nin == 0 && (x->flags & NB__REQ)) return x;
    nb_tensor *c = nb_detach(x);
    if (c) c->flags |= NB__REQ;
    return c;
}

static nb_tensor *independent(const char *who) {
    return nb__err("%s: f's output does not depend on the tensor f was given (f must compute "
                   "from its argument, e.g. not from a copy or a stored parameter)", who);
}

static nb_tensor *basis(const nb_tensor *like, int64_t i) {
    nb_tensor *e = nb__const_like(like, 0.0);
    if (e) e->data[i] = 1.0;
    return e;
}

/* constant_is_zero: an output that does not depend on x has a zero Jacobian
   (the gradient of a linear f, for nb_hessian) instead of being an error */
static nb_tensor *jacobian(const char *who, nb_fn f, nb_tensor *x, void *ctx, bool constant_is_zero) {
    size_t outer = nb_scope_begin();
    nb_tensor *xr = argument(x), *J = NULL;
    nb_tensor *y = xr ? call_f(who, f, xr, ctx) : NULL;
    if (!y) goto done;
    if ((!(y->flags & NB__REQ) || !nb__reaches(y, xr)) && !constant_is_zero) {
        independent(who);
        goto done;
    }
    int64_t m = y->numel, n = x->numel, shape[2] = {m, n};
    J = nb__alloc(who, 2, shape);
    if (!J) goto done;
    nb__name(J, NB__OP_IN);
    bool ok = true;
    if (!(y->flags & NB__REQ)) {
        memset(J->data, 0, (size_t)J->numel * sizeof(double));
        m = 0; /* no row to compute */
    }
    for (int64_t i = 0; ok && i < (n < m ? n : m); i++) {
        size_t mk = nb_scope_begin();
        if (n < m) { /* forward mode: column i = J e_i */
            nb_tensor *xd = nb_dual(nb_detach(x), basis(x, i));
            nb_tensor *yi = xd ? call_f(who, f, xd, ctx) : NULL, *t = yi ? nb_tangent(yi) : NULL;
            if (yi && !t) independent(who);
            if (t && t->numel != m) {
                char s[NB__SHAPE_BUF];
                nb__err("%s: f's output changed size between calls (%lld elements, then shape %s)",
                        who, (long long)m, nb__shape_str(yi->ndim, yi->shape, s, sizeof s));
                t = NULL;
            }
            if ((ok = t != NULL))
                for (int64_t r = 0; r < m; r++) J->data[r * n + i] = t->data[r];
        } else { /* reverse mode: row i = e_i^T J */
            nb_tensor *e = basis(y, i), *g = NULL;
            ok = e && nb_autograd(1, &y, &e, 1, &xr, &g, false) == 0;
            if (ok) memcpy(J->data + i * n, g->data, (size_t)n * sizeof(double));
        }
        nb_scope_end(mk);
    }
    if (!ok) {
        nb__unref(J);
        J = NULL;
    }
done:
    nb_scope_end(outer);
    return nb__pool(J);
}

nb_tensor *nb_jacobian(nb_fn f, nb_tensor *x, void *ctx) {
    if (!f) return nb__err("jacobian: NULL function");
    if (nb__null_args("jacobian", 1, &x)) return NULL;
    return jacobian("jacobian", f, x, ctx, false);
}

typedef struct {
    nb_fn f;
    void *ctx;
    const char *who;
} grad_ctx;

/* x -> grad f(x), recorded (create_graph), so its Jacobian is the Hessian */
static nb_tensor *grad_of(nb_tensor *x, void *p) {
    grad_ctx *c = p;
    nb_tensor *y = call_f(c->who, c->f, x, c->ctx), *g = NULL;
    if (!y) return NULL;
    if (y->numel != 1) {
        char s[NB__SHAPE_BUF];
        return nb__err("%s: f(x) must have one element, got shape %s", c->who,
                       nb__shape_str(y->ndim, y->shape, s, sizeof s));
    }
    if (!(y->flags & NB__REQ) || !nb__reaches(y, x)) return independent(c->who);
    if (nb_autograd(1, &y, NULL, 1, &x, &g, true) != 0) return NULL;
    return g;
}

nb_tensor *nb_hessian(nb_fn f, nb_tensor *x, void *ctx) {
    if (!f) return nb__err("hessian: NULL function");
    if (nb__null_args("hessian", 1, &x)) return NULL;
    grad_ctx c = {f, ctx, "hessian"}; /* the Hessian is the Jacobian of the gradient */
    return jacobian("hessian", grad_of, x, &c, true);
}

nb_tensor *nb_hvp(nb_fn f, nb_tensor *x, nb_tensor *v, void *ctx) {
    if (!f) return nb__err("hvp: NULL function");
    nb_tensor *args[2] = {x, v};
    if (nb__null_args("hvp", 2, args)) return NULL;
    if (!nb__same_shape(x, v)) {
        char s1[NB__SHAPE_BUF], s2[NB__SHAPE_BUF];
        return nb__err("hvp: v has shape %s but x has shape %s",
                       nb__shape_str(v->ndim, v->shape, s1, sizeof s1),
                       nb__shape_str(x->ndim, x->shape, s2, sizeof s2));
    }
    size_t outer = nb_scope_begin();
    nb_tensor *xr = argument(x), *hv = NULL;
    grad_ctx c = {f, ctx, "hvp"};
    nb_tensor *g = xr ? grad_of(xr, &c) : NULL; /* g = grad f, recorded; then grad <g, v> */
    if (g && !(g->flags & NB__REQ)) hv = nb__const_like(x, 0.0); /* f is linear in x */
    else if (g && nb_autograd(1, &g, &v, 1, &xr, &hv, false) != 0) hv = NULL;
    nb__ref(hv);
    nb_scope_end(outer);
    return nb__pool(hv);
}
