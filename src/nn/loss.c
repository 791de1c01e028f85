/*
 * Losses, each composed of differentiable core ops (so they have gradients
 * of every order), and the batch-averaged scores used to evaluate a model.
 */
#include "nn.h"

#include <float.h>
#include <math.h>

nb_tensor *nb_mse_loss(nb_tensor *pred, nb_tensor *target) {
    if (nb__null_args("mse_loss", 2, (nb_tensor *[]){pred, target})) return NULL;
    if (!nb__same_shape(pred, target)) {
        char a[NB__SHAPE_BUF], b[NB__SHAPE_BUF];
        return nb__err("mse_loss: shapes %s and %s differ (no broadcasting in a loss)",
                       nb__shape_str(pred->ndim, pred->shape, a, sizeof a),
                       nb__shape_str(target->ndim, target->shape, b, sizeof b));
    }
    return nb_mean(nb_square(nb_sub(pred, target)));
}

/* Checks labels against B rows and C classes: every value an integer in [0, C). */
static bool labels_ok(const char *who, const nb_tensor *labels, int64_t B, int64_t C) {
    if (labels->numel != B || labels->ndim > 2 || (labels->ndim == 2 && labels->shape[1] != 1)) {
        char sb[NB__SHAPE_BUF];
        nb__err("%s: labels of shape %s, expected (%lld,) for %lld rows", who,
                nb__shape_str(labels->ndim, labels->shape, sb, sizeof sb), (long long)B,
                (long long)B);
        return false;
    }
    for (int64_t i = 0; i < B; i++) {
        double v = labels->data[i];
        if (!(v >= 0 && v < (double)C) || v != floor(v)) {
            nb__err("%s: label %g at row %lld is not a class index in [0, %lld)", who, v,
                    (long long)i, (long long)C);
            return false;
        }
    }
    return true;
}

nb_tensor *nb_cross_entropy(nb_tensor *logits, nb_tensor *labels) {
    if (nb__null_args("cross_entropy", 2, (nb_tensor *[]){logits, labels})) return NULL;
    if (logits->ndim != 2 || logits->shape[0] < 1 || logits->shape[1] < 1) {
        char sb[NB__SHAPE_BUF];
        return nb__err("cross_entropy: logits of shape %s, expected (B, C) with B, C >= 1",
                       nb__shape_str(logits->ndim, logits->shape, sb, sizeof sb));
    }
    int64_t B = logits->shape[0], C = logits->shape[1];
    if (!labels_ok("cross_entropy", labels, B, C)) return NULL;
    /* -(1/B) sum(onehot * log_softmax(z)): the gradient is (softmax - onehot) / B.
       A wrong class's log_softmax can be -inf (a -inf logit, or logits like
       (1e308, -1e308) whose difference overflows), and 0 * -inf is NaN: so
       the wrong classes are first raised to at least -DBL_MAX (their weight
       is 0, so nothing else changes), while the label's entry is kept as it
       is (floor -inf): its -inf is the loss's +inf. */
    nb_tensor *onehot = nb__const(2, logits->shape, 0.0);     /* (B, C), no grad */
    nb_tensor *floor_ = nb__const(2, logits->shape, -DBL_MAX); /* (B, C), no grad */
    if (!onehot || !floor_) return NULL;
    for (int64_t i = 0; i < B; i++) {
        int64_t k = i * C + (int64_t)labels->data[i];
        onehot->data[k] = 1.0;
        floor_->data[k] = -INFINITY;
    }
    nb_tensor *ls = nb_maximum(nb_log_softmax(logits, 1), floor_); /* (B, C) */
    return nb_scale(nb_sum(nb_prod(onehot, ls)), -1.0 / (double)B);
}

nb_tensor *nb_bce_with_logits(nb_tensor *logits, nb_tensor *targets) {
    if (nb__null_args("bce_with_logits", 2, (nb_tensor *[]){logits, targets})) return NULL;
    if (!nb__same_shape(logits, targets)) {
        char a[NB__SHAPE_BUF], b[NB__SHAPE_BUF];
        return nb__err("bce_with_logits: shapes %s and %s differ (no broadcasting in a loss)",
                       nb__shape_str(logits->ndim, logits->shape, a, sizeof a),
                       nb__shape_str(targets->ndim, targets->shape, b, sizeof b));
    }
    if (logits->numel < 1) return nb__err("bce_with_logits: empty input");
    nb_tensor *z = logits, *y = targets;
    /* softplus(z) - z y with softplus(z) = max(z, 0) + log(1 + exp(-|z|)):
       exp never overflows.  maximum splits ties in half, so at z = 0 the
       gradient is 1/2 - y (|z| = maximum(z, -z) has gradient 0 there): exact. */
    nb_tensor *zero = nb__const(0, NULL, 0.0), *one = nb__const(0, NULL, 1.0);
    nb_tensor *absz = nb_maximum(z, nb_neg(z));
    nb_tensor *softplus = nb_add(nb_maximum(z, zero), nb_log(nb_add(one, nb_exp(nb_neg(absz)))));
    return nb_mean(nb_sub(softplus, nb_prod(z, y)));
}

int nb_argmax_rows(const nb_tensor *scores, int64_t *out) {
    if (!scores || !out) { /* a NULL tensor from a failed op: its message stands */
        if (scores || !nb_last_error()) nb__err("argmax_rows: NULL %s", scores ? "output" : "scores");
        return -1;
    }
    if (scores->ndim != 2 || scores->shape[1] < 1) {
        char sb[NB__SHAPE_BUF];
        nb__err("argmax_rows: shape %s, expected (B, C) with C >= 1",
                nb__shape_str(scores->ndim, scores->shape, sb, sizeof sb));
        return -1;
    }
    int64_t B = scores->shape[0], C = scores->shape[1];
    for (int64_t i = 0; i < B; i++) {
        const double *r = scores->data + i * C;
        int64_t best = 0;
        for (int64_t j = 1; j < C; j++)
            if (r[j] > r[best]) best = j;
        out[i] = best;
    }
    return 0;
}

double nb_accuracy(const nb_tensor *scores, const nb_tensor *labels) {
    if (!scores || !labels) { /* a failed op's result: its message stands */
        if (!nb_last_error()) nb__err("accuracy: NULL argument");
        return NAN;
    }
    if (scores->ndim != 2 || scores->shape[0] < 1 || scores->shape[1] < 1) {
        char sb[NB__SHAPE_BUF];
        nb__err("accuracy: scores of shape %s, expected (B, C) with B, C >= 1",
                nb__shape_str(scores->ndim, scores->shape, sb, sizeof sb));
        return NAN;
    }
    int64_t B = scores->shape[0], C = scores->shape[1];
    if (!labels_ok("accuracy", labels, B, C)) return NAN;
    int64_t right = 0;
    for (int64_t i = 0; i < B; i++) {
        const double *r = scores->data + i * C;
        int64_t best = 0;
        for (int64_t j = 1; j < C; j++)
            if (r[j] > r[best]) best = j;
        right += best == (int64_t)labels->data[i];
    }
    return (double)right / (double)B;
}
