/*
 * Losses, each composed of differentiable core ops (so they have gradients
 * of every order), and the batch-averaged scores used to evaluate a model.
 */
#include "nn.h"

#include <float.h>
#include <math.h>

/* a loss's two arguments: live and of one shape; false + "<who>: ..." */
static bool loss_args(const char *who, nb_tensor *x, nb_tensor *y) {
    if (nb_check_args(who, 2, (nb_tensor *[]){x, y})) return false;
    if (nn_same_shape(x, y)) return true;
    char a[NB_SHAPE_STR_SIZE], b[NB_SHAPE_STR_SIZE];
    nb_set_error("%s: shapes %s and %s differ (no broadcasting in a loss)", who,
                 nb_shape_str(nb_ndim(x), nb_shape(x), a, sizeof a),
                 nb_shape_str(nb_ndim(y), nb_shape(y), b, sizeof b));
    return false;
}

nb_tensor *nb_mse_loss(nb_tensor *pred, nb_tensor *target) {
    if (!loss_args("mse_loss", pred, target)) return NULL;
    return nb_mean(nb_square(nb_sub(pred, target)));
}

/* Checks labels against B rows and C classes: every value an integer in [0, C). */
static bool labels_ok(const char *who, const nb_tensor *labels, int64_t B, int64_t C) {
    int nd = nb_ndim(labels);
    const int64_t *ls = nb_shape(labels);
    if (nb_numel(labels) != B || nd > 2 || (nd == 2 && ls[1] != 1)) {
        char sb[NB_SHAPE_STR_SIZE];
        nb_set_error("%s: labels of shape %s, expected (%lld,) for %lld rows", who,
                     nb_shape_str(nd, ls, sb, sizeof sb), (long long)B, (long long)B);
        return false;
    }
    const double *y = nb_data(labels);
    for (int64_t i = 0; i < B; i++) {
        double v = y[i];
        if (!(v >= 0 && v < (double)C) || v != floor(v)) {
            nb_set_error("%s: label %g at row %lld is not a class index in [0, %lld)", who, v,
                         (long long)i, (long long)C);
            return false;
        }
    }
    return true;
}

nb_tensor *nb_cross_entropy(nb_tensor *logits, nb_tensor *labels) {
    if (nb_check_args("cross_entropy", 2, (nb_tensor *[]){logits, labels})) return NULL;
    int nd = nb_ndim(logits);
    const int64_t *zs = nb_shape(logits);
    if (nd != 2 || zs[0] < 1 || zs[1] < 1) {
        char sb[NB_SHAPE_STR_SIZE];
        return nn_fail("cross_entropy: logits of shape %s, expected (B, C) with B, C >= 1",
                       nb_shape_str(nd, zs, sb, sizeof sb));
    }
    int64_t B = zs[0], C = zs[1];
    if (!labels_ok("cross_entropy", labels, B, C)) return NULL;
    /* -(1/B) sum(onehot * log_softmax(z)): the gradient is (softmax - onehot) / B.
       A wrong class's log_softmax can be -inf (a -inf logit, or logits like
       (1e308, -1e308) whose difference overflows), and 0 * -inf is NaN: so
       the wrong classes are first raised to at least -DBL_MAX (their weight
       is 0, so nothing else changes), while the label's entry is kept as it
       is (floor -inf): its -inf is the loss's +inf. */
    nb_tensor *onehot = nb_const(2, zs, 0.0);     /* (B, C), no grad */
    nb_tensor *floor_ = nb_const(2, zs, -DBL_MAX); /* (B, C), no grad */
    if (!onehot || !floor_) return NULL;
    double *oh = nn_values(onehot), *fl = nn_values(floor_); /* (just made) */
    const double *y = nb_data(labels);
    for (int64_t i = 0; i < B; i++) {
        int64_t k = i * C + (int64_t)y[i];
        oh[k] = 1.0;
        fl[k] = -INFINITY;
    }
    nb_tensor *ls = nb_maximum(nb_log_softmax(logits, 1), floor_); /* (B, C) */
    return nb_scale(nb_sum(nb_prod(onehot, ls)), -1.0 / (double)B);
}

nb_tensor *nb_bce_with_logits(nb_tensor *logits, nb_tensor *targets) {
    if (!loss_args("bce_with_logits", logits, targets)) return NULL;
    if (nb_numel(logits) < 1) return nn_fail("bce_with_logits: empty input");
    nb_tensor *z = logits, *y = targets;
    /* softplus(z) - z y with softplus(z) = max(z, 0) + log(1 + exp(-|z|)):
       exp never overflows.  maximum splits ties in half, so at z = 0 the
       gradient is 1/2 - y (|z| = maximum(z, -z) has gradient 0 there): exact. */
    nb_tensor *zero = nb_const(0, NULL, 0.0), *one = nb_const(0, NULL, 1.0);
    nb_tensor *absz = nb_maximum(z, nb_neg(z));
    nb_tensor *softplus = nb_add(nb_maximum(z, zero), nb_log(nb_add(one, nb_exp(nb_neg(absz)))));
    return nb_mean(nb_sub(softplus, nb_prod(z, y)));
}

int nb_argmax_rows(const nb_tensor *scores, int64_t *out) {
    if (!scores || !out) { /* a NULL tensor from a failed op: its message stands */
        if (scores || !nb_last_error())
            nb_set_error("argmax_rows: NULL %s", scores ? "output" : "scores");
        return -1;
    }
    if (nb_check_args("argmax_rows", 1, (nb_tensor *[]){(nb_tensor *)scores})) return -1;
    int nd = nb_ndim(scores);
    const int64_t *ss = nb_shape(scores);
    if (nd != 2 || ss[1] < 1) {
        char sb[NB_SHAPE_STR_SIZE];
        nb_set_error("argmax_rows: shape %s, expected (B, C) with C >= 1",
                     nb_shape_str(nd, ss, sb, sizeof sb));
        return -1;
    }
    int64_t B = ss[0], C = ss[1];
    const double *d = nb_data(scores);
    for (int64_t i = 0; i < B; i++) {
        const double *r = d + i * C;
        int64_t best = 0;
        for (int64_t j = 1; j < C; j++)
            if (r[j] > r[best]) best = j;
        out[i] = best;
    }
    return 0;
}

double nb_accuracy(const nb_tensor *scores, const nb_tensor *labels) {
    if (!scores || !labels) { /* a failed op's result: its message stands */
        if (!nb_last_error()) nb_set_error("accuracy: NULL argument");
        return NAN;
    }
    if (nb_check_args("accuracy", 2, (nb_tensor *[]){(nb_tensor *)scores, (nb_tensor *)labels}))
        return NAN;
    int nd = nb_ndim(scores);
    const int64_t *ss = nb_shape(scores);
    if (nd != 2 || ss[0] < 1 || ss[1] < 1) {
        char sb[NB_SHAPE_STR_SIZE];
        nb_set_error("accuracy: scores of shape %s, expected (B, C) with B, C >= 1",
                     nb_shape_str(nd, ss, sb, sizeof sb));
        return NAN;
    }
    int64_t B = ss[0], C = ss[1];
    if (!labels_ok("accuracy", labels, B, C)) return NAN;
    const double *d = nb_data(scores), *y = nb_data(labels);
    int64_t right = 0;
    for (int64_t i = 0; i < B; i++) {
        const double *r = d + i * C;
        int64_t best = 0;
        for (int64_t j = 1; j < C; j++)
            if (r[j] > r[best]) best = j;
        right += best == (int64_t)y[i];
    }
    return (double)right / (double)B;
}
