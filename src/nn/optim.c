/*
 * Optimizers: one loop over a store's value and gradient slabs, state in
 * slabs of the same layout.  The update rules are written out in nabla.h.
 */
#include "nn.h"

#include <math.h>
#include <string.h>

enum { SGD, ADAM };

struct nb_optim {
    int kind;
    nb_params *p;
    double lr, mom, b1, b2, eps, wd;
    int64_t t;          /* steps taken                       */
    int64_t n;          /* values the state covers           */
    double *m, *v;      /* SGD: m = velocity; Adam: m, v moments */
};

static nb_optim *optim_new(int kind, nb_params *p, double lr, double wd) {
    if (!p) return nb__err("optim: NULL parameter store");
    if (!(lr > 0) || !isfinite(lr)) return nb__err("optim: learning rate must be > 0, got %g", lr);
    if (!(wd >= 0) || !isfinite(wd)) return nb__err("optim: weight decay must be >= 0, got %g", wd);
    nb_optim *o = nb__malloc(sizeof *o);
    if (!o) return NULL;
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->p = p;
    o->lr = lr;
    o->wd = wd;
    return o;
}

nb_optim *nb_sgd_new(nb_params *p, double lr, double momentum, double weight_decay) {
    if (!(momentum >= 0 && momentum < 1))
        return nb__err("sgd: momentum must be in [0, 1), got %g", momentum);
    nb_optim *o = optim_new(SGD, p, lr, weight_decay);
    if (o) o->mom = momentum;
    return o;
}

nb_optim *nb_adam_new(nb_params *p, double lr, double beta1, double beta2, double eps,
                      double weight_decay) {
    if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1))
        return nb__err("adam: betas must be in [0, 1), got %g and %g", beta1, beta2);
    if (!(eps > 0) || !isfinite(eps)) return nb__err("adam: eps must be > 0, got %g", eps);
    nb_optim *o = optim_new(ADAM, p, lr, weight_decay);
    if (!o) return NULL;
    o->b1 = beta1;
    o->b2 = beta2;
    o->eps = eps;
    return o;
}

void nb_optim_free(nb_optim *o) {
    if (!o) return;
    nb__free(o->m);
    nb__free(o->v);
    nb__free(o);
}

void nb_optim_set_lr(nb_optim *o, double lr) {
    if (o && lr > 0 && isfinite(lr)) o->lr = lr;
}
double nb_optim_lr(const nb_optim *o) { return o ? o->lr : NAN; }
int64_t nb_optim_steps(const nb_optim *o) { return o ? o->t : 0; }

/* State for parameters added since the last step: zeros. */
static int cover(nb_optim *o, int64_t n) {
    if (n <= o->n) return 0;
    int nslabs = (o->kind == ADAM) ? 2 : (o->mom > 0 ? 1 : 0);
    double **slab[2] = {&o->m, &o->v};
    for (int k = 0; k < nslabs; k++) {
        double *s = nb__realloc(*slab[k], (size_t)n * sizeof(double));
        if (!s) return -1;
        memset(s + o->n, 0, (size_t)(n - o->n) * sizeof(double));
        *slab[k] = s;
    }
    o->n = n;
    return 0;
}

int nb_optim_step(nb_optim *o) {
    if (!o) {
        nb__err("optim: NULL optimizer");
        return -1;
    }
    nb_params *P = o->p;
    int64_t n = P->numel;
    /* the gradients must be the store's own (backward accumulates in place) */
    for (int64_t i = 0; i < P->n; i++) {
        const nb__param_entry *e = &P->e[i];
        if (e->t->grad != e->g || e->g->data != P->grad->data + e->off) {
            nb__err("optim: the gradient of '%s' is not in its store's slab", e->name);
            return -1;
        }
    }
    if (cover(o, n)) return -1;
    double *w = P->val->data;
    const double *g = P->grad->data;
    const double lr = o->lr, wd = o->wd;
    o->t++;
    if (o->kind == SGD) {
        if (o->mom > 0) {
            double *vel = o->m;
            const double mu = o->mom;
            for (int64_t i = 0; i < n; i++) {
                double gi = g[i] + wd * w[i];
                vel[i] = mu * vel[i] + gi;
                w[i] -= lr * vel[i];
            }
        } else {
            for (int64_t i = 0; i < n; i++) w[i] -= lr * (g[i] + wd * w[i]);
        }
        return 0;
    }
    /* Adam: the bias corrections folded into the step size and epsilon:
       lr mhat / (sqrt(vhat) + eps) = (lr / c1) m / (sqrt(v) / sqrt(c2) + eps) */
    const double b1 = o->b1, b2 = o->b2, eps = o->eps;
    const double c1 = 1.0 - pow(b1, (double)o->t), c2 = 1.0 - pow(b2, (double)o->t);
    const double step = lr / c1, rc2 = 1.0 / sqrt(c2);
    double *m = o->m, *v = o->v;
    for (int64_t i = 0; i < n; i++) {
        double gi = g[i] + wd * w[i];
        m[i] = b1 * m[i] + (1.0 - b1) * gi;
        v[i] = b2 * v[i] + (1.0 - b2) * gi * gi;
        w[i] -= step * m[i] / (sqrt(v[i]) * rc2 + eps);
    }
    return 0;
}
