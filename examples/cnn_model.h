/*
 * The convolutional model of fashion_mnist --model cnn, and the hook that
 * lets the example train either it or the MLP (ex_model).  Header-only; not
 * part of the library.
 *
 *   (B, 784) -> (B, 1, 28, 28) -> conv 3x3 pad 1 -> 32, ReLU, max-pool 2x2
 *            -> conv 3x3 pad 1 -> 64, ReLU, max-pool 2x2 -> (B, 64*7*7)
 *            -> Linear 128, ReLU -> Linear 10 (logits)
 *
 * Parameters in the store: "cnn.conv1.weight" (32, 1, 3, 3), "cnn.conv1.bias",
 * "cnn.conv2.weight" (64, 32, 3, 3), "cnn.conv2.bias", "cnn.fc1.*", "cnn.fc2.*".
 * Conv weights are He-normal (fan-in C*3*3), biases zero.
 */
#ifndef NABLA_CNN_MODEL_H
#define NABLA_CNN_MODEL_H

#include "nabla.h"

#include <stdio.h>

typedef struct ex_cnn {
    nb_tensor *w1, *b1, *w2, *b2; /* borrowed from the store */
    nb_linear fc1, fc2;
    int64_t side;                 /* input images are side x side (28) */
} ex_cnn;

/* 0, or -1 with nabla's error set */
static inline int ex_cnn_init(ex_cnn *m, nb_params *P, const char *name, int64_t side,
                              int64_t c1, int64_t c2, int64_t hidden, int64_t classes,
                              uint64_t seed) {
    char n[96];
    m->side = side;
    snprintf(n, sizeof n, "%s.conv1.weight", name);
    m->w1 = nb_params_add(P, n, 4, (int64_t[]){c1, 1, 3, 3});
    snprintf(n, sizeof n, "%s.conv1.bias", name);
    m->b1 = nb_params_add(P, n, 1, (int64_t[]){c1});
    snprintf(n, sizeof n, "%s.conv2.weight", name);
    m->w2 = nb_params_add(P, n, 4, (int64_t[]){c2, c1, 3, 3});
    snprintf(n, sizeof n, "%s.conv2.bias", name);
    m->b2 = nb_params_add(P, n, 1, (int64_t[]){c2});
    if (!m->w1 || !m->b1 || !m->w2 || !m->b2) return -1;
    if (nb_init_tensor(m->w1, NB_INIT_HE_NORMAL, 9, c1 * 9, seed) ||
        nb_init_tensor(m->w2, NB_INIT_HE_NORMAL, c1 * 9, c2 * 9, seed + 1))
        return -1;
    int64_t flat = c2 * (side / 4) * (side / 4);
    snprintf(n, sizeof n, "%s.fc1", name);
    if (nb_linear_init(&m->fc1, P, n, flat, hidden, true, NB_INIT_HE_NORMAL, seed + 2)) return -1;
    snprintf(n, sizeof n, "%s.fc2", name);
    return nb_linear_init(&m->fc2, P, n, hidden, classes, true, NB_INIT_XAVIER_UNIFORM, seed + 3);
}

/* x (B, side*side) -> logits (B, classes) */
static inline nb_tensor *ex_cnn_forward(const ex_cnn *m, nb_tensor *x) {
    if (!x) return NULL;
    int64_t B = nb_shape(x)[0];
    nb_tensor *h = nb_reshape(x, 4, (int64_t[]){B, 1, m->side, m->side});
    h = nb_max_pool2d(nb_relu(nb_conv2d(h, m->w1, m->b1, 1, 1)), 2, 2);
    h = nb_max_pool2d(nb_relu(nb_conv2d(h, m->w2, m->b2, 1, 1)), 2, 2);
    h = nb_reshape(h, 2, (int64_t[]){B, -1}); /* flatten */
    h = nb_relu(nb_linear_forward(&m->fc1, h));
    return nb_linear_forward(&m->fc2, h);
}

/* Either model, behind one forward: the example's hook. */
typedef struct ex_model {
    nb_mlp *mlp; /* owned; NULL for the CNN */
    ex_cnn cnn;
} ex_model;

static inline nb_tensor *ex_model_forward(const ex_model *m, nb_tensor *x) {
    return m->mlp ? nb_mlp_forward(m->mlp, x) : ex_cnn_forward(&m->cnn, x);
}
static inline void ex_model_free(ex_model *m) {
    nb_mlp_free(m->mlp);
    m->mlp = NULL;
}
/* cnn: the CNN (sizes[0] = side*side, sizes[n-1] = classes), else the MLP of `sizes`.
   0, or -1 with nabla's error set. */
static inline int ex_model_init(ex_model *m, bool cnn, nb_params *P, int nsizes,
                                const int64_t *sizes, uint64_t seed) {
    m->mlp = NULL;
    if (cnn) return ex_cnn_init(&m->cnn, P, "cnn", 28, 32, 64, 128, sizes[nsizes - 1], seed);
    m->mlp = nb_mlp_new(P, "mlp", nsizes, sizes, NB_ACT_RELU, NB_INIT_AUTO, seed);
    return m->mlp ? 0 : -1;
}

#endif
