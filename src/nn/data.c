/*
 * Data: reading whole files (gzip through zlib), the IDX format of MNIST,
 * CSV files of numbers, minibatches (gather, permutations, a batcher).
 */
#include "nn.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef NB_HAVE_ZLIB
#include <zlib.h>
#endif

/* Doubles a read buffer's capacity, up to `limit` bytes.  On failure frees
   buf and returns NULL with the error set ("<who>: <path>: <what> too large"
   or out of memory). */
static unsigned char *grow_buffer(unsigned char *buf, size_t *cap, size_t limit, const char *who,
                                  const char *path, const char *what) {
    if (*cap > SIZE_MAX / 2 || *cap * 2 > limit) {
        nb__free(buf);
        return nb__err("%s: %s: %s too large", who, path, what);
    }
    unsigned char *nbuf = nb__realloc(buf, *cap * 2);
    if (!nbuf) {
        nb__free(buf);
        return NULL;
    }
    *cap *= 2;
    return nbuf;
}

nb_tensor *nb__data_tensor(const char *who, int ndim, const int64_t *shape) {
    nb_tensor *t = nb__alloc(who, ndim, shape);
    if (!t) return NULL;
    nb__name(t, NB__OP_IN);
    t->flags &= (uint8_t)~NB__REQ;
    return nb__pool(t);
}

/* ---- whole files ---------------------------------------------------------- */

static unsigned char *read_plain(const char *who, const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return nb__err("%s: %s: cannot open (%s)", who, path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = nb__malloc(cap);
    while (buf) {
        if (n == cap && !(buf = grow_buffer(buf, &cap, SIZE_MAX, who, path, "file"))) break;
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                nb__free(buf);
                buf = nb__err("%s: %s: read error", who, path);
            }
            break;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

#ifdef NB_HAVE_ZLIB
static unsigned char *read_gzip(const char *who, const char *path, size_t *len) {
    gzFile gz = gzopen(path, "rb");
    if (!gz) return nb__err("%s: %s: cannot open (%s)", who, path, strerror(errno));
    size_t cap = 1 << 20, n = 0;
    unsigned char *buf = nb__malloc(cap);
    while (buf) {
        if (n == cap && !(buf = grow_buffer(buf, &cap, (size_t)1 << 40, who, path, "decompressed data")))
            break;
        size_t want = cap - n;
        if (want > (1u << 30)) want = 1u << 30;
        int got = gzread(gz, buf + n, (unsigned)want);
        int errnum = Z_OK;
        const char *msg = gzerror(gz, &errnum);
        if (got < 0 || (errnum != Z_OK && errnum != Z_STREAM_END)) {
            nb__free(buf);
            buf = nb__err("%s: %s: corrupted or truncated gzip data (%s)", who, path,
                          msg && *msg ? msg : "zlib error");
            break;
        }
        if (got == 0) break;
        n += (size_t)got;
    }
    gzclose(gz);
    *len = n;
    return buf;
}
#endif

unsigned char *nb__read_file(const char *who, const char *path, size_t *len, bool gunzip) {
    *len = 0;
    unsigned char *buf = read_plain(who, path, len);
    if (!buf || !gunzip || *len < 2 || buf[0] != 0x1f || buf[1] != 0x8b) return buf;
    nb__free(buf);
#ifdef NB_HAVE_ZLIB
    return read_gzip(who, path, len);
#else
    return nb__err("%s: %s: gzip-compressed, but nabla was built without zlib "
                   "(gunzip the file first)", who, path);
#endif
}

/* ---- IDX -------------------------------------------------------------------- */

nb_tensor *nb_idx_read(const char *path) {
    if (!path) return nb__err("idx_read: NULL path");
    size_t len;
    unsigned char *b = nb__read_file("idx_read", path, &len, true);
    if (!b) return NULL;
    nb_tensor *t = NULL;
    if (len < 4 || b[0] != 0 || b[1] != 0) {
        nb__err("idx_read: %s: not an IDX file (the first bytes must be 00 00 <type> <ndim>)", path);
        goto out;
    }
    int type = b[2], ndim = b[3], es;
    switch (type) {
    case 0x08: case 0x09: es = 1; break;
    case 0x0B: es = 2; break;
    case 0x0C: case 0x0D: es = 4; break;
    case 0x0E: es = 8; break;
    default:
        nb__err("idx_read: %s: unknown data type 0x%02x (expected 08, 09, 0B, 0C, 0D or 0E)",
                path, type);
        goto out;
    }
    if (ndim < 1 || ndim > NB_MAX_DIMS) {
        nb__err("idx_read: %s: %d dimensions (1 to %d supported)", path, ndim, NB_MAX_DIMS);
        goto out;
    }
    size_t hdr = 4 + 4 * (size_t)ndim;
    if (len < hdr) {
        nb__err("idx_read: %s: truncated header (%zu bytes, %zu needed)", path, len, hdr);
        goto out;
    }
    int64_t shape[NB_MAX_DIMS];
    uint64_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        const unsigned char *s = b + 4 + 4 * d;
        shape[d] = (int64_t)((uint32_t)s[0] << 24 | (uint32_t)s[1] << 16 | (uint32_t)s[2] << 8 | s[3]);
        if (shape[d] && numel > ((uint64_t)1 << 40) / (uint64_t)shape[d]) {
            nb__err("idx_read: %s: sizes too large", path);
            goto out;
        }
        numel *= (uint64_t)shape[d];
    }
    size_t expect = hdr + (size_t)numel * (size_t)es;
    if (len < expect) {
        nb__err("idx_read: %s: truncated: %zu bytes, the header announces %zu", path, len, expect);
        goto out;
    }
    if (len > expect) {
        nb__err("idx_read: %s: %zu unexpected bytes after the data", path, len - expect);
        goto out;
    }
    t = nb__data_tensor("idx_read", ndim, shape);
    if (!t) { /* say which file */
        char msg[sizeof nb__thread()->error.msg];
        memcpy(msg, nb__thread()->error.msg, sizeof msg);
        msg[sizeof msg - 1] = 0;
        nb__err("%s (in %s)", msg, path);
        goto out;
    }
    const unsigned char *s = b + hdr;
    double *d = t->data;
    for (uint64_t i = 0; i < numel; i++, s += es) {
        switch (type) {
        case 0x08: d[i] = s[0]; break;
        case 0x09: d[i] = (int8_t)s[0]; break;
        case 0x0B: d[i] = (int16_t)(uint16_t)((unsigned)s[0] << 8 | s[1]); break;
        case 0x0C:
            d[i] = (int32_t)((uint32_t)s[0] << 24 | (uint32_t)s[1] << 16 | (uint32_t)s[2] << 8 | s[3]);
            break;
        case 0x0D: {
            uint32_t u = (uint32_t)s[0] << 24 | (uint32_t)s[1] << 16 | (uint32_t)s[2] << 8 | s[3];
            float f;
            memcpy(&f, &u, 4);
            d[i] = f;
            break;
        }
        default: {
            uint64_t u = 0;
            for (int k = 0; k < 8; k++) u = u << 8 | s[k];
            memcpy(&d[i], &u, 8);
            break;
        }
        }
    }
out:
    nb__free(b);
    return t;
}

/* ---- CSV -------------------------------------------------------------------- */

nb_tensor *nb_csv_read(const char *path, char delim, bool header) {
    if (!path) return nb__err("csv_read: NULL path");
    if (delim == '\n' || delim == '\r' || delim == '"' || delim == 0)
        return nb__err("csv_read: bad delimiter %d", (int)delim);
    size_t len;
    unsigned char *b = nb__read_file("csv_read", path, &len, true);
    if (!b) return NULL;
    double *vals = NULL;
    size_t nvals = 0, cap = 0;
    int64_t rows = 0, cols = -1;
    nb_tensor *t = NULL;
    bool skip = header;
    size_t i = 0;
    int64_t line = 0;
    while (i < len) {
        size_t ls = i;
        while (i < len && b[i] != '\n') i++;
        size_t le = i; /* [ls, le) is the line */
        if (i < len) i++;
        line++;
        if (le > ls && b[le - 1] == '\r') le--;
        size_t k = ls;
        while (k < le && (b[k] == ' ' || b[k] == '\t') && b[k] != (unsigned char)delim) k++;
        if (k == le) continue; /* blank */
        if (skip) {
            skip = false;
            continue;
        }
        int64_t nf = 0;
        size_t fs = ls;
        for (;;) {
            size_t fe = fs;
            while (fe < le && b[fe] != (unsigned char)delim) fe++;
            /* the field [fs, fe): trim, unquote, parse */
            size_t a = fs, z = fe;
            while (a < z && isspace(b[a])) a++;
            while (z > a && isspace(b[z - 1])) z--;
            if (z - a >= 2 && b[a] == '"' && b[z - 1] == '"') a++, z--;
            char field[128];
            if (z - a >= sizeof field) {
                nb__err("csv_read: %s:%lld: field %lld is too long (%zu characters)", path,
                        (long long)line, (long long)nf + 1, z - a);
                goto fail;
            }
            memcpy(field, b + a, z - a);
            field[z - a] = 0;
            char *endp;
            errno = 0;
            double v = strtod(field, &endp);
            if (z == a || *endp != 0) {
                nb__err("csv_read: %s:%lld: field %lld ('%s') is not a number", path,
                        (long long)line, (long long)nf + 1, field);
                goto fail;
            }
            if (nvals == cap && nb__grow((void **)&vals, &cap, nvals + 1, sizeof *vals)) goto fail;
            vals[nvals++] = v;
            nf++;
            if (fe >= le) break;
            fs = fe + 1;
        }
        if (cols < 0) cols = nf;
        else if (nf != cols) {
            nb__err("csv_read: %s:%lld: %lld fields, the rows before have %lld", path,
                    (long long)line, (long long)nf, (long long)cols);
            goto fail;
        }
        rows++;
    }
    if (rows == 0) {
        nb__err("csv_read: %s: no data rows", path);
        goto fail;
    }
    t = nb__data_tensor("csv_read", 2, (int64_t[]){rows, cols});
    if (t) memcpy(t->data, vals, nvals * sizeof *vals);
fail:
    nb__free(vals);
    nb__free(b);
    return t;
}

/* ---- minibatches ------------------------------------------------------------ */

nb_tensor *nb_gather_rows(const nb_tensor *x, const int64_t *idx, int64_t n) {
    if (!x) return nb__err("gather_rows: NULL tensor");
    if (!idx && n > 0) return nb__err("gather_rows: NULL indices");
    if (x->ndim < 1) return nb__err("gather_rows: a 0-d tensor has no rows");
    if (n < 0) return nb__err("gather_rows: negative count %lld", (long long)n);
    int64_t rows = x->shape[0];
    for (int64_t i = 0; i < n; i++)
        if (idx[i] < 0 || idx[i] >= rows) {
            char sb[NB__SHAPE_BUF];
            return nb__err("gather_rows: index %lld (at %lld) out of range for shape %s",
                           (long long)idx[i], (long long)i,
                           nb__shape_str(x->ndim, x->shape, sb, sizeof sb));
        }
    int64_t shape[NB_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[0] = n;
    nb_tensor *t = nb__data_tensor("gather_rows", x->ndim, shape);
    if (!t) return NULL;
    int64_t row = rows ? x->numel / rows : 0;
    for (int64_t i = 0; i < n; i++)
        memcpy(t->data + i * row, x->data + idx[i] * row, (size_t)row * sizeof(double));
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
        return nb__err("batcher: need n >= 1 and batch_size >= 1, got %lld and %lld",
                       (long long)n, (long long)batch_size);
    if ((uint64_t)n > SIZE_MAX / sizeof(int64_t)) return nb__err("batcher: n too large");
    nb_batcher *b = nb__malloc(sizeof *b);
    if (!b) return NULL;
    b->perm = nb__malloc((size_t)n * sizeof(int64_t));
    if (!b->perm) {
        nb__free(b);
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
    return b->drop_last ? b->n / b->bs : (b->n + b->bs - 1) / b->bs;
}

int64_t nb_batcher_epoch(const nb_batcher *b) { return b ? b->epoch : 0; }

void nb_batcher_free(nb_batcher *b) {
    if (!b) return;
    nb__free(b->perm);
    nb__free(b);
}

int nb_batcher_seek(nb_batcher *b, int64_t epoch, int64_t batch) {
    if (!b) {
        nb__err("batcher_seek: NULL batcher");
        return -1;
    }
    int64_t nb = nb_batcher_num_batches(b);
    if (epoch < 0 || batch < 0 || batch > nb) {
        nb__err("batcher_seek: epoch %lld, batch %lld out of range (batches per epoch: %lld)",
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
        nb__err("shard: need n >= 0 and 0 <= rank < size, got n %lld, rank %d, size %d",
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
