/*
 * Layers: Linear (x Wᵀ + b) and the multilayer perceptron built from it.
 */
#include "nn.h"

#include <stdio.h>
#include <string.h>

nb_tensor *nb_activate(nb_tensor *x, nb_activation act) {
    if (nb_check_args("activate", 1, &x)) return NULL;
    switch (act) {
    case NB_ACT_NONE: return x;
    case NB_ACT_RELU: return nb_relu(x);
    case NB_ACT_TANH: return nb_tanh(x);
    case NB_ACT_SIGMOID: return nb_sigmoid(x);
    }
    return nn_fail("activate: unknown activation %d", (int)act);
}

int nb_linear_init(nb_linear *l, nb_params *p, const char *name, int64_t in, int64_t out,
                   bool bias, nb_init_kind init, uint64_t seed) {
    if (!l || !p || !name) {
        nb_set_error("linear: NULL %s", !l ? "layer" : !p ? "store" : "name");
        return -1;
    }
    if (in < 1 || out < 1) {
        nb_set_error("linear: sizes must be >= 1, got in %lld, out %lld", (long long)in,
                     (long long)out);
        return -1;
    }
    char wn[80], bn[80];
    if (snprintf(wn, sizeof wn, "%s.weight", name) >= 64 ||
        snprintf(bn, sizeof bn, "%s.bias", name) >= 64) {
        nb_set_error("linear: name '%.40s...' too long", name);
        return -1;
    }
    if (bias && nb_params_find(p, bn)) { /* checked first: leave p unchanged */
        nb_set_error("params_add: a parameter '%s' already exists", bn);
        return -1;
    }
    nb_tensor *w = nb_params_add(p, wn, 2, (int64_t[]){out, in});
    if (!w) return -1;
    if (nb_init_tensor(w, init == NB_INIT_AUTO ? NB_INIT_XAVIER_UNIFORM : init, in, out, seed)) {
        nb__params_truncate(p, nb_params_count(p) - 1);
        return -1;
    }
    nb_tensor *b = NULL;
    if (bias) {
        b = nb_params_add(p, bn, 1, (int64_t[]){out});
        if (!b) {
            nb__params_truncate(p, nb_params_count(p) - 1); /* drop the weight again */
            return -1;
        }
    }
    l->weight = w;
    l->bias = b;
    l->in = in;
    l->out = out;
    return 0;
}

nb_tensor *nb_linear_forward(const nb_linear *l, nb_tensor *x) {
    if (nb_check_args("linear", 1, &x)) return NULL;
    if (!l || !l->weight) return nn_fail("linear: NULL layer");
    int nd = nb_ndim(x);
    const int64_t *xs = nb_shape(x);
    if (nd < 1 || xs[nd - 1] != l->in) {
        char sb[NB_SHAPE_STR_SIZE];
        return nn_fail("linear: input of shape %s, expected (..., %lld)",
                       nb_shape_str(nd, xs, sb, sizeof sb), (long long)l->in);
    }
    /* x Wᵀ through matmul_bt: GEMMs with transpose flags, forward and backward,
       so W is never copied.  Inputs with more axes are seen as (rows, in). */
    nb_tensor *y;
    if (nd == 2) {
        y = nb_matmul_bt(x, l->weight);                             /* (B, in) (out, in)ᵀ */
    } else {
        int64_t flat[2] = {nb_numel(x) / (l->in ? l->in : 1), l->in}, shape[NB_MAX_DIMS];
        for (int d = 0; d < nd; d++) shape[d] = xs[d];
        shape[nd - 1] = l->out;
        y = nb_reshape(nb_matmul_bt(nb_reshape(x, 2, flat), l->weight), nd, shape);
    }
    return l->bias ? nb_add(y, l->bias) : y;                       /* (.., B, out) */
}

struct nb_mlp {
    int n;              /* layers */
    nb_activation act;
    nb_linear *layer;
};

nb_mlp *nb_mlp_new(nb_params *p, const char *name, int n_sizes, const int64_t *sizes,
                   nb_activation act, nb_init_kind init, uint64_t seed) {
    if (!p || !name || !sizes) return nn_fail("mlp: NULL argument");
    if (n_sizes < 2) return nn_fail("mlp: need at least 2 sizes (input and output), got %d", n_sizes);
    for (int i = 0; i < n_sizes; i++)
        if (sizes[i] < 1)
            return nn_fail("mlp: size %d is %lld, sizes must be >= 1", i, (long long)sizes[i]);
    if ((unsigned)act > NB_ACT_SIGMOID) return nn_fail("mlp: unknown activation %d", (int)act);
    int64_t n0 = nb_params_count(p);
    nb_mlp *m = nn_malloc(sizeof *m);
    if (!m) return NULL;
    m->n = n_sizes - 1;
    m->act = act;
    m->layer = nn_malloc((size_t)m->n * sizeof *m->layer);
    if (!m->layer) {
        free(m);
        return NULL;
    }
    for (int i = 0; i < m->n; i++) {
        char ln[80];
        if (snprintf(ln, sizeof ln, "%s.%d", name, i) >= 56) {
            nb_set_error("mlp: name '%.40s...' too long", name);
            nb_mlp_free(m);
            return NULL;
        }
        /* He (Kaiming) keeps the variance through ReLUs; Xavier suits tanh/sigmoid */
        nb_init_kind k = init;
        if (k == NB_INIT_AUTO) k = act == NB_ACT_RELU ? NB_INIT_HE_NORMAL : NB_INIT_XAVIER_UNIFORM;
        if (nb_linear_init(&m->layer[i], p, ln, sizes[i], sizes[i + 1], true, k,
                           seed + (uint64_t)i)) {
            nb__params_truncate(p, n0); /* leave the store as it was */
            nb_mlp_free(m);
            return NULL;
        }
    }
    return m;
}

void nb_mlp_free(nb_mlp *m) {
    if (!m) return;
    free(m->layer);
    free(m);
}

nb_tensor *nb_mlp_forward(const nb_mlp *m, nb_tensor *x) {
    if (nb_check_args("mlp", 1, &x)) return NULL;
    if (!m) return nn_fail("mlp: NULL network");
    for (int i = 0; i < m->n && x; i++) {
        x = nb_linear_forward(&m->layer[i], x);
        if (i + 1 < m->n) x = nb_activate(x, m->act);
    }
    return x;
}

int nb_mlp_num_layers(const nb_mlp *m) { return m ? m->n : 0; }

const nb_linear *nb_mlp_layer(const nb_mlp *m, int i) {
    return (m && i >= 0 && i < m->n) ? &m->layer[i] : NULL;
}
