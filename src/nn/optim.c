/*
 * Optimizers: one loop over a store's value and gradient slabs, state in
 * slabs of the same layout.  The update rules are written out in nabla.h.
 */
#include "ckpt.h"

#include <math.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

static nb_optim *optim_new(int kind, nb_params *p, double lr, double wd) {
    if (!p) return nn_fail("optim: NULL parameter store");
    if (!(lr > 0) || !isfinite(lr)) return nn_fail("optim: learning rate must be > 0, got %g", lr);
    if (!(wd >= 0) || !isfinite(wd)) return nn_fail("optim: weight decay must be >= 0, got %g", wd);
    nb_optim *o = nn_malloc(sizeof *o);
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
        return nn_fail("sgd: momentum must be in [0, 1), got %g", momentum);
    nb_optim *o = optim_new(NB__OPT_SGD, p, lr, weight_decay);
    if (o) o->mom = momentum;
    return o;
}

nb_optim *nb_adam_new(nb_params *p, double lr, double beta1, double beta2, double eps,
                      double weight_decay) {
    if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1))
        return nn_fail("adam: betas must be in [0, 1), got %g and %g", beta1, beta2);
    if (!(eps > 0) || !isfinite(eps)) return nn_fail("adam: eps must be > 0, got %g", eps);
    nb_optim *o = optim_new(NB__OPT_ADAM, p, lr, weight_decay);
    if (!o) return NULL;
    o->b1 = beta1;
    o->b2 = beta2;
    o->eps = eps;
    return o;
}

void nb_optim_free(nb_optim *o) {
    if (!o) return;
    free(o->m);
    free(o->v);
    free(o);
}

void nb_optim_set_lr(nb_optim *o, double lr) {
    if (!o) {
        nb_set_error("optim_set_lr: NULL optimizer");
        return;
    }
    if (!(lr > 0) || !isfinite(lr)) {
        nb_set_error("optim_set_lr: learning rate must be > 0 and finite, got %g (kept %g)", lr,
                     o->lr);
        return;
    }
    o->lr = lr;
}

int nb__optim_nslabs(const nb_optim *o) {
    return o->kind == NB__OPT_ADAM ? 2 : (o->mom > 0 ? 1 : 0);
}
double nb_optim_lr(const nb_optim *o) { return o ? o->lr : NAN; }
int64_t nb_optim_steps(const nb_optim *o) { return o ? o->t : 0; }

/* State for parameters added since the last step: zeros. */
static int cover(nb_optim *o, int64_t n) {
    if (n <= o->n) return 0;
    int nslabs = nb__optim_nslabs(o);
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

/* The update loops, over [lo, hi) of the slabs (nb_parallel_for splits
   them over the threads). */
typedef struct step_ctx {
    const nb_optim *o;
    double *w, *m, *v;  /* the range's start in the value and state slabs */
    const double *g;
    double step, rc2;  /* Adam: lr / (1 - b1^t), 1 / sqrt(1 - b2^t) */
} step_ctx;

static void sgd_range(int64_t lo, int64_t hi, void *ctx) {
    const step_ctx *c = ctx;
    double *restrict w = c->w, *restrict vel = c->m;
    const double *restrict g = c->g;
    const double lr = c->o->lr, wd = c->o->wd, mu = c->o->mom;
    if (mu > 0) {
        for (int64_t i = lo; i < hi; i++) {
            double gi = g[i] + wd * w[i];
            double vi = mu * vel[i] + gi;
            vel[i] = vi;
            w[i] -= lr * vi;
        }
    } else {
        for (int64_t i = lo; i < hi; i++) w[i] -= lr * (g[i] + wd * w[i]);
    }
}

static void adam_range(int64_t lo, int64_t hi, void *ctx) {
    const step_ctx *c = ctx;
    double *restrict w = c->w, *restrict m = c->m, *restrict v = c->v;
    const double *restrict g = c->g;
    const double b1 = c->o->b1, b2 = c->o->b2, eps = c->o->eps, wd = c->o->wd;
    const double step = c->step, rc2 = c->rc2;
    int64_t i = lo;
#ifdef __SSE2__
    /* Two at a time.  The compiler does not vectorise this loop itself
       (sqrt may set errno as far as it knows); the operations and their
       order are those of the scalar loop below, so the results are the same
       to the bit. */
    const __m128d B1 = _mm_set1_pd(b1), C1 = _mm_set1_pd(1.0 - b1);
    const __m128d B2 = _mm_set1_pd(b2), C2 = _mm_set1_pd(1.0 - b2);
    const __m128d WD = _mm_set1_pd(wd), ST = _mm_set1_pd(step), R = _mm_set1_pd(rc2),
                  E = _mm_set1_pd(eps);
    for (; i + 2 <= hi; i += 2) {
        __m128d wi = _mm_loadu_pd(w + i);
        __m128d gi = _mm_add_pd(_mm_loadu_pd(g + i), _mm_mul_pd(WD, wi));
        __m128d mi = _mm_add_pd(_mm_mul_pd(B1, _mm_loadu_pd(m + i)), _mm_mul_pd(C1, gi));
        __m128d vi = _mm_add_pd(_mm_mul_pd(B2, _mm_loadu_pd(v + i)), _mm_mul_pd(_mm_mul_pd(C2, gi), gi));
        _mm_storeu_pd(m + i, mi);
        _mm_storeu_pd(v + i, vi);
        __m128d den = _mm_add_pd(_mm_mul_pd(_mm_sqrt_pd(vi), R), E);
        _mm_storeu_pd(w + i, _mm_sub_pd(wi, _mm_div_pd(_mm_mul_pd(ST, mi), den)));
    }
#endif
    for (; i < hi; i++) {
        double gi = g[i] + wd * w[i];
        double mi = b1 * m[i] + (1.0 - b1) * gi;
        double vi = b2 * v[i] + (1.0 - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        w[i] -= step * mi / (sqrt(vi) * rc2 + eps);
    }
}

int nb_optim_step(nb_optim *o) {
    if (!o) {
        nb_set_error("optim: NULL optimizer");
        return -1;
    }
    return nb__optim_step_range(o, 0, o->p->numel);
}

int nb__optim_step_range(nb_optim *o, int64_t rlo, int64_t rhi) {
    nb_params *P = o->p;
    int64_t n = P->numel;
    /* the gradients must be the store's own (backward accumulates in place) */
    for (int64_t i = 0; i < P->n; i++) {
        const nb__param_entry *e = &P->e[i];
        if (nb_grad(e->t) != e->g || nb_data(e->g) != P->grad->data + e->off) {
            nb_set_error("optim: the gradient of '%s' is not in its store's slab", e->name);
            return -1;
        }
    }
    if (cover(o, n)) return -1;
    o->t++;
    void (*range)(int64_t, int64_t, void *) = o->kind == NB__OPT_SGD ? sgd_range : adam_range;
    step_ctx c = {o, NULL, NULL, NULL, NULL, 0, 0};
    if (o->kind == NB__OPT_ADAM) {
        /* the bias corrections folded into the step size and epsilon:
           lr mhat / (sqrt(vhat) + eps) = (lr / c1) m / (sqrt(v) / sqrt(c2) + eps) */
        c.step = o->lr / (1.0 - pow(o->b1, (double)o->t));
        c.rc2 = 1.0 / sqrt(1.0 - pow(o->b2, (double)o->t));
    }
    /* frozen parameters (requires_grad false) are skipped: neither their
       values nor their state move.  Each run of trainable parameters is one
       loop (all of the slab when none is frozen). */
    for (int64_t i = 0; i < P->n;) {
        if (!nb_requires_grad(P->e[i].t)) {
            i++;
            continue;
        }
        int64_t j = i;
        while (j < P->n && nb_requires_grad(P->e[j].t)) j++;
        int64_t lo = P->e[i].off, hi = j < P->n ? P->e[j].off : n;
        if (lo < rlo) lo = rlo; /* clipped to the range asked for */
        if (hi > rhi) hi = rhi;
        /* the parameters whose values move: a graph recorded before the
           step no longer holds (nb_data_mut bumps their versions) */
        for (; i < j; i++)
            if (P->e[i].off < hi && P->e[i].off + P->e[i].numel > lo) (void)nb_data_mut(P->e[i].t);
        if (lo >= hi) continue;
        c.w = P->val->data + lo;
        c.g = P->grad->data + lo;
        c.m = o->m ? o->m + lo : NULL;
        c.v = o->v ? o->v + lo : NULL;
        nb_parallel_for(hi - lo, 1 << 15, range, &c);
    }
    return 0;
}
