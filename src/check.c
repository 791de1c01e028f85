/*
 * Gradient checking against central finite differences, like PyTorch's
 * gradcheck/gradgradcheck.  Along a fixed random direction u of the output,
 * L(x) = <u, f(x)>; reverse mode gives dL/dx in one sweep, and every element
 * is compared with (L(x + eps e_i) - L(x - eps e_i)) / (2 eps), whose error is
 * O(eps^2) plus rounding O(1e-16 / eps).
 */
#include "internal.h"

#include <math.h>

#define DIRECTION_SEED 0x5eed0fa11ull

/* <u, f(x)> with u a fixed random tensor of f(x)'s shape */
static nb_tensor *along_u(nb_multi_fn f, int n, nb_tensor *const *x, void *ctx) {
    nb_tensor *y = f(n, x, ctx);
    if (!y) return nb__thread()->error.set ? NULL : nb__err("gradcheck: f returned NULL");
    nb_tensor *u = nb_randn(y->ndim, y->shape, DIRECTION_SEED);
    nb_set_requires_grad(u, false);
    return nb_sum(nb_prod(u, y));
}

int nb_gradcheck(nb_multi_fn f, int n, nb_tensor *const *inputs, void *ctx, double eps,
                 double *max_err) {
    if (!f || n < 1 || !inputs) {
        nb__err("gradcheck: needs a function and at least one input");
        return -1;
    }
    if (nb__null_args("gradcheck", n, inputs)) return -1;
    if (eps <= 0) eps = 1e-6;
    size_t mark = nb_scope_begin();
    int rc = -1;
    double worst = 0.0;
    nb_tensor *grads[64];
    if (n > 64) {
        nb__err("gradcheck: at most 64 inputs (got %d)", n);
        goto done;
    }
    nb_tensor *L = along_u(f, n, inputs, ctx);
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
            nb_tensor *lp = along_u(f, n, inputs, ctx);
            double fp = lp ? lp->data[0] : NAN;
            x->data[j] = v - eps;
            nb_tensor *lm = along_u(f, n, inputs, ctx);
            double fm = lm ? lm->data[0] : NAN;
            x->data[j] = v;
            nb_scope_end(m);
            if (!lp || !lm) {
                nb_set_grad_enabled(prev);
                goto done;
            }
            double num = (fp - fm) / (2 * eps), ana = grads[i]->data[j];
            double err = fabs(ana - num) / fmax(1.0, fabs(num));
            if (!(err <= worst)) worst = err; /* NaN counts as the worst */
        }
    }
    nb_set_grad_enabled(prev);
    rc = 0;
done:
    nb_scope_end(mark);
    if (max_err) *max_err = rc == 0 ? worst : NAN;
    return rc;
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
    nb_tensor *L = along_u(c->f, n, x, c->ctx), *g[64], *h = NULL;
    if (L && nb_autograd(1, &L, NULL, n, x, g, true) == 0) {
        for (int i = 0; i < n; i++) {
            nb_tensor *v = nb_randn(x[i]->ndim, x[i]->shape, DIRECTION_SEED + 1 + (uint64_t)i);
            nb_set_requires_grad(v, false);
            nb_tensor *term = nb_sum(nb_prod(v, g[i]));
            h = h ? nb_add(h, term) : term;
        }
    }
    nb_set_grad_enabled(prev);
    return h;
}

int nb_gradgradcheck(nb_multi_fn f, int n, nb_tensor *const *inputs, void *ctx, double eps,
                     double *max_err) {
    if (!f) {
        nb__err("gradgradcheck: needs a function");
        return -1;
    }
    gg_ctx c = {f, ctx};
    return nb_gradcheck(grad_dot_v, n, inputs, &c, eps, max_err);
}
