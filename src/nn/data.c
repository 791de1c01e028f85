/*
 * Data: minibatches (gather, permutations, a batcher).  The file readers
 * (IDX, CSV) are in src/io/.
 */
#include "nn.h"

#include <stdlib.h>
#include <string.h>

/* ---- minibatches ------------------------------------------------------------ */

nb_tensor *nb_gather_rows(const nb_tensor *x, const int64_t *idx, int64_t n) {
    if (!x) return nb_last_error() ? NULL : nn_fail("gather_rows: NULL tensor"); /* keep the first */
    if (nb_check_args("gather_rows", 1, (nb_tensor *[]){(nb_tensor *)x})) return NULL;
    if (!idx && n > 0) return nn_fail("gather_rows: NULL indices");
    int nd = nb_ndim(x);
    const int64_t *xs = nb_shape(x);
    if (nd < 1) return nn_fail("gather_rows: a 0-d tensor has no rows");
    if (n < 0) return nn_fail("gather_rows: negative count %lld", (long long)n);
    int64_t rows = xs[0];
    for (int64_t i = 0; i < n; i++)
        if (idx[i] < 0 || idx[i] >= rows) {
            char sb[NB_SHAPE_STR_SIZE];
            return nn_fail("gather_rows: index %lld (at %lld) out of range for shape %s",
                           (long long)idx[i], (long long)i, nb_shape_str(nd, xs, sb, sizeof sb));
        }
    int64_t shape[NB_MAX_DIMS];
    memcpy(shape, xs, (size_t)nd * sizeof *shape);
    shape[0] = n;
    nb_tensor *t = nb__data_tensor("gather_rows", nd, shape);
    if (!t) return NULL;
    int64_t row = rows ? nb_numel(x) / rows : 0;
    double *dst = nn_values(t); /* (uninitialised: every row is written) */
    const double *src = nb_data(x);
    for (int64_t i = 0; i < n; i++)
        memcpy(dst + i * row, src + idx[i] * row, (size_t)row * sizeof(double));
    return t;
}

void nb_permutation(int64_t n, uint64_t seed, int64_t *out) {
    if (!out || n <= 0) return;
    nb_rng r;
    nb_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++) out[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = nb_rng_below(&r, i + 1);
        int64_t tmp = out[i];
        out[i] = out[j];
        out[j] = tmp;
    }
}

struct nb_batcher {
    int64_t n, bs, pos, epoch;
    bool shuffle, drop_last, in_epoch;
    uint64_t seed;
    int64_t *perm;
};

nb_batcher *nb_batcher_new(int64_t n, int64_t batch_size, bool shuffle, bool drop_last,
                           uint64_t seed) {
    if (n < 1 || batch_size < 1)
        return nn_fail("batcher: need n >= 1 and batch_size >= 1, got %lld and %lld",
                       (long long)n, (long long)batch_size);
    if ((uint64_t)n > SIZE_MAX / sizeof(int64_t)) return nn_fail("batcher: n too large");
    nb_batcher *b = nn_malloc(sizeof *b);
    if (!b) return NULL;
    b->perm = nn_malloc((size_t)n * sizeof(int64_t));
    if (!b->perm) {
        free(b);
        return NULL;
    }
    b->n = n;
    b->bs = batch_size;
    b->pos = 0;
    b->epoch = 0;
    b->shuffle = shuffle;
    b->drop_last = drop_last;
    b->in_epoch = false;
    b->seed = seed;
    return b;
}

int64_t nb_batcher_next(nb_batcher *b, const int64_t **idx) {
    if (!b) return 0;
    if (!b->in_epoch) {
        if (b->shuffle) {
            /* a different, reproducible permutation per epoch */
            nb_rng r;
            nb_rng_seed(&r, b->seed ^ (0xD1B54A32D192ED03ull * (uint64_t)(b->epoch + 1)));
            nb_permutation(b->n, nb_rng_next(&r), b->perm);
        } else {
            for (int64_t i = 0; i < b->n; i++) b->perm[i] = i;
        }
        b->pos = 0;
        b->in_epoch = true;
    }
    int64_t left = b->n - b->pos;
    if (left == 0 || (b->drop_last && left < b->bs)) {
        b->in_epoch = false;
        b->epoch++;
        if (idx) *idx = NULL;
        return 0;
    }
    int64_t k = left < b->bs ? left : b->bs;
    if (idx) *idx = b->perm + b->pos;
    b->pos += k;
    return k;
}

int64_t nb_batcher_num_batches(const nb_batcher *b) {
    if (!b) return 0;
    /* n / bs rounded up without n + bs - 1, which overflows for a huge bs */
    return b->drop_last ? b->n / b->bs : b->n / b->bs + (b->n % b->bs != 0);
}

int64_t nb_batcher_epoch(const nb_batcher *b) { return b ? b->epoch : 0; }

void nb_batcher_free(nb_batcher *b) {
    if (!b) return;
    free(b->perm);
    free(b);
}

int nb_batcher_seek(nb_batcher *b, int64_t epoch, int64_t batch) {
    if (!b) {
        nb_set_error("batcher_seek: NULL batcher");
        return -1;
    }
    int64_t nb = nb_batcher_num_batches(b);
    if (epoch < 0 || batch < 0 || batch > nb) {
        nb_set_error("batcher_seek: epoch %lld, batch %lld out of range (batches per epoch: %lld)",
                     (long long)epoch, (long long)batch, (long long)nb);
        return -1;
    }
    b->epoch = epoch;
    b->in_epoch = false;
    if (batch == 0) return 0;
    const int64_t *idx;
    nb_batcher_next(b, &idx); /* starts the epoch: its permutation */
    b->pos = batch >= nb ? (b->drop_last ? nb * b->bs : b->n) : batch * b->bs;
    return 0;
}

int64_t nb_shard(int64_t n, int rank, int size, int64_t *lo) {
    if (n < 0 || size < 1 || rank < 0 || rank >= size) {
        nb_set_error("shard: need n >= 0 and 0 <= rank < size, got n %lld, rank %d, size %d",
                     (long long)n, rank, size);
        if (lo) *lo = 0;
        return -1;
    }
    /* the first n % size shards have one example more */
    int64_t q = n / size, r = n % size;
    int64_t start = q * rank + (rank < r ? rank : r);
    if (lo) *lo = start;
    return q + (rank < r ? 1 : 0);
}
