/*
 * Gradient checking against central finite differences, like PyTorch's
 * gradcheck/gradgradcheck.  Along a fixed random direction u of the output,
 * L(x) = <u, f(x)>; reverse mode gives dL/dx in one sweep, and every element
 * is compared with (L(x + eps e_i) - L(x - eps e_i)) / (2 eps), whose error is
 * O(eps^2) plus rounding O(1e-16 / eps).  The check passes when the largest
 * error, relative to max(1, |numeric|), is at most NB_GRADCHECK_TOL.
 */
#include "internal.h"

#include <math.h>

#define DIRECTION_SEED 0x5eed0fa11ull

/* <u, f(x)> with u a fixed random tensor of f(x)'s shape */
static nb_tensor *along_u(const char *who, nb_multi_fn f, int n, nb_tensor *const *x, void *ctx) {
    nb_tensor *y = f(n, x, ctx);
    if (!y) return nb__thread()->error.set ? NULL : nb__err("%s: f returned NULL", who);
    nb_tensor *u = nb_randn(y->ndim, y->shape, DIRECTION_SEED);
    nb_set_requires_grad(u, false);
    return nb_sum(nb_prod(u, y));
}

static int check(const char *who, nb_multi_fn f, int n, nb_tensor *const *inputs, void *ctx,
                 double eps, double *max_err) {
    if (max_err) *max_err = NAN;
    if (!f || n < 1 || !inputs) {
        nb__err("%s: needs a function and at least one input", who);
        return -1;
    }
    if (nb__null_args(who, n, inputs)) return -1;
    if (!(eps > 0) || !isfinite(eps)) {
        nb__err("%s: eps must be positive and finite, got %g", who, eps);
        return -1;
    }
    if (n > 64) {
        nb__err("%s: at most 64 inputs (got %d)", who, n);
        return -1;
    }
    size_t mark = nb_scope_begin();
    int rc = -1;
    double worst = 0.0, worst_ana = 0, worst_num = 0;
    int worst_i = -1;
    int64_t worst_j = -1;
    nb_tensor *grads[64];
    nb_tensor *L = along_u(who, f, n, inputs, ctx);
    if (!L) goto done;
    if (nb_autograd(1, &L, NULL, n, inputs, grads, false) != 0) goto done;
    bool prev = nb_set_grad_enabled(false);
    for (int i = 0; i < n; i++) {
        nb_tensor *x = inputs[i];
        if (!(x->flags & NB__REQ)) continue;
        for (int64_t j = 0; j < x->numel; j++) {
            size_t m = nb_scope_begin();
            double v = x->data[j];
            x->data[j] = v + eps;
            nb_tensor *lp = along_u(who, f, n, inputs, ctx);
            double fp = lp ? lp->data[0] : NAN;
            x->data[j] = v - eps;
            nb_tensor *lm = lp ? along_u(who, f, n, inputs, ctx) : NULL;
            double fm = lm ? lm->data[0] : NAN;
            x->data[j] = v;
            nb_scope_end(m);
            if (!lp || !lm) {
                nb_set_grad_enabled(prev);
                goto done;
            }
            double num = (fp - fm) / (2 * eps), ana = grads[i]->data[j];
            double err = fabs(ana - num) / fmax(1.0, fabs(num));
            if (!(err <= worst) && !isnan(worst)) { /* NaN counts as the worst */
                worst = err, worst_ana = ana, worst_num = num;
                worst_i = i, worst_j = j;
            }
        }
    }
    nb_set_grad_enabled(prev);
    rc = worst <= NB_GRADCHECK_TOL ? 0 : 1;
    if (rc == 1)
        nb__err("%s: input %d, element %lld: backward gives %.17g, finite differences %.17g "
                "(error %g > tolerance %g)",
                who, worst_i + 1, (long long)worst_j, worst_ana, worst_num, worst,
                NB_GRADCHECK_TOL);
done:
    nb_scope_end(mark);
    if (max_err) *max_err = rc >= 0 ? worst : NAN;
    return rc;
}

int nb_gradcheck(nb_multi_fn f, int n, nb_tensor *const *inputs, void *ctx, double eps,
                 double *max_err) {
    return check("gradcheck", f, n, inputs, ctx, eps, max_err);
}

/* gradgradcheck: h(x) = sum_i <v_i, dL/dx_i> with the gradient recorded
   (create_graph); gradcheck of h checks every second-derivative rule used. */
typedef struct {
    nb_multi_fn f;
    void *ctx;
} gg_ctx;

static nb_tensor *grad_dot_v(int n, nb_tensor *const *x, void *p) {
    gg_ctx *c = p;
    bool prev = nb_set_grad_enabled(true);
    nb_tensor *L = along_u("gradgradcheck", c->f, n, x, c->ctx), *g[64], *h = NULL;
    if (L && nb_autograd(1, &L, NULL, n, x, g, true) == 0) {
        for (int i = 0; i < n; i++) {
            nb_tensor *v = nb_randn(x[i]->ndim, x[i]->shape, DIRECTION_SEED + 1 + (uint64_t)i);
            nb_set_requires_grad(v, false);
            nb_tensor *term = nb_sum(nb_prod(v, g[i]));
            h = i == 0 ? term : nb_add(h, term);
            if (!h) break; /* a failed step fails the whole sum, never drops a term */
        }
    }
    nb_set_grad_enabled(prev);
    return h;
}

int nb_gradgradcheck(nb_multi_fn f, int n, nb_tensor *const *inputs, void *ctx, double eps,
                     double *max_err) {
    if (!f) {
        if (max_err) *max_err = NAN;
        nb__err("gradgradcheck: needs a function");
        return -1;
    }
    gg_ctx c = {f, ctx};
    return check("gradgradcheck", grad_dot_v, n, inputs, &c, eps, max_err);
}
