/*
 * The parameter store: every parameter's values in one slab, gradients in a
 * second slab of the same layout; saving and loading (format in nabla.h).
 *
 *   val->data  [ p0 values | p1 values | ... ]   (numel used, cap allocated)
 *   grad->data [ p0 grad   | p1 grad   | ... ]
 *
 * Each parameter is a leaf made by nb__param_new (hook.h) over its range of
 * the value slab; its gradient is a second tensor over the same range of
 * the gradient slab, so backward and nb_zero_grad work in place.
 */
#include "nn.h"
#include "ckpt.h"
#include "io/atomic_write.h"
#include "io/crc32.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- slabs --------------------------------------------------------------- */

static void slab_destroy(nb__storage *s) {
    nb__slab *sl = (nb__slab *)s;
    free(sl->data);
    free(sl);
}

static nb__slab *slab_new(void) {
    nb__slab *s = nn_malloc(sizeof *s);
    if (!s) return NULL;
    s->base.refcount = 1;
    s->base.destroy = slab_destroy;
    s->data = NULL;
    return s;
}

static void slab_unref(nb__slab *s) {
    if (s && --s->base.refcount == 0) s->base.destroy(&s->base);
}

nb_params *nb_params_new(void) {
    nb_params *p = nn_malloc(sizeof *p);
    if (!p) return NULL;
    memset(p, 0, sizeof *p);
    p->val = slab_new();
    p->grad = slab_new();
    if (!p->val || !p->grad) {
        slab_unref(p->val);
        slab_unref(p->grad);
        free(p);
        return NULL;
    }
    return p;
}

void nb_params_free(nb_params *p) {
    if (!p) return;
    for (int64_t i = 0; i < p->n; i++) nb_release(p->e[i].t); /* releases its grad too */
    free(p->e);
    slab_unref(p->val);
    slab_unref(p->grad);
    free(p);
}

/* Makes room for `need` values in both slabs; fixes every tensor's data. */
static int reserve(nb_params *p, int64_t need) {
    if (need <= p->cap && p->cap > 0) return 0; /* the slabs exist from the first add on */
    int64_t cap = p->cap ? p->cap : 1024;
    while (cap < need) {
        if (cap > INT64_MAX / 2 / (int64_t)sizeof(double)) {
            nb_set_error("params_add: %lld values do not fit in memory", (long long)need);
            return -1;
        }
        cap *= 2;
    }
    size_t bytes = (size_t)cap * sizeof(double);
    double *v = nn_malloc(bytes);
    if (!v) return -1;
    double *g = nn_malloc(bytes);
    if (!g) {
        free(v);
        return -1;
    }
    if (p->numel) {
        memcpy(v, p->val->data, (size_t)p->numel * sizeof(double));
        memcpy(g, p->grad->data, (size_t)p->numel * sizeof(double));
    }
    memset(v + p->numel, 0, (size_t)(cap - p->numel) * sizeof(double));
    memset(g + p->numel, 0, (size_t)(cap - p->numel) * sizeof(double));
    free(p->val->data);
    free(p->grad->data);
    p->val->data = v;
    p->grad->data = g;
    p->cap = cap;
    for (int64_t i = 0; i < p->n; i++) nb__param_move(p->e[i].t, v + p->e[i].off, g + p->e[i].off);
    return 0;
}

/* Room for one more entry (64, 128, ... entries). */
static int grow_entries(nb_params *p) {
    if (p->n < p->ecap) return 0;
    int64_t cap = p->ecap ? 2 * p->ecap : 64;
    nb__param_entry *e = nb__realloc(p->e, (size_t)cap * sizeof *e);
    if (!e) return -1;
    p->e = e;
    p->ecap = cap;
    return 0;
}

nb_tensor *nb_params_add(nb_params *p, const char *name, int ndim, const int64_t *shape) {
    if (!p || !name) return nn_fail("params_add: NULL %s", p ? "name" : "store");
    size_t len = strlen(name);
    if (len == 0 || len > 63)
        return nn_fail("params_add: name must have 1 to 63 characters, got %zu", len);
    if (nb_params_find(p, name)) return nn_fail("params_add: a parameter '%s' already exists", name);
    /* the tensors first (they check the shape); their data once the slabs have room */
    nb_tensor *t =
        nb__param_new("params_add", ndim, shape, NULL, &p->val->base, NULL, &p->grad->base);
    if (!t) return NULL;
    int64_t numel = nb_numel(t);
    if (grow_entries(p)) {
        nb_release(t); /* (and its gradient) */
        return NULL;
    }
    if (numel > INT64_MAX - p->numel) {
        nb_release(t);
        return nn_fail("params_add: too many values");
    }
    if (reserve(p, p->numel + numel)) {
        nb_release(t);
        return NULL;
    }
    int64_t off = p->numel;
    nb__param_move(t, p->val->data + off, p->grad->data + off);
    memset(p->val->data + off, 0, (size_t)numel * sizeof(double));
    memset(p->grad->data + off, 0, (size_t)numel * sizeof(double));
    nb_set_name(t, name);
    nb__param_entry *e = &p->e[p->n++];
    memset(e, 0, sizeof *e);
    memcpy(e->name, name, len + 1);
    e->t = t;
    e->g = nb_grad(t);
    e->off = off;
    e->numel = numel;
    p->numel += numel;
    return t;
}

void nb__params_truncate(nb_params *p, int64_t n) {
    if (!p || n < 0 || n >= p->n) return;
    for (int64_t i = n; i < p->n; i++) nb_release(p->e[i].t);
    p->numel = p->e[n].off;
    p->n = n;
    /* the freed range is zeroed again, as reserve() leaves new space */
    memset(p->val->data + p->numel, 0, (size_t)(p->cap - p->numel) * sizeof(double));
    memset(p->grad->data + p->numel, 0, (size_t)(p->cap - p->numel) * sizeof(double));
}

int64_t nb_params_count(const nb_params *p) { return p ? p->n : 0; }
int64_t nb_params_numel(const nb_params *p) { return p ? p->numel : 0; }

nb_tensor *nb_params_get(const nb_params *p, int64_t i) {
    return (p && i >= 0 && i < p->n) ? p->e[i].t : NULL;
}

const char *nb_params_name(const nb_params *p, int64_t i) {
    return (p && i >= 0 && i < p->n) ? p->e[i].name : NULL;
}

nb_tensor *nb_params_find(const nb_params *p, const char *name) {
    if (!p || !name) return NULL;
    for (int64_t i = 0; i < p->n; i++)
        if (strcmp(p->e[i].name, name) == 0) return p->e[i].t;
    return NULL;
}

/* The slabs are handed out writable, as nb_data_mut hands out a tensor's
   values: every parameter (or gradient) counts as changed in place, so a
   graph recorded before refuses its backward.  (Reading one parameter:
   nb_data(nb_params_get(p, i)) changes nothing.) */
double *nb_params_data(nb_params *p) {
    if (!p) return NULL;
    for (int64_t i = 0; i < p->n; i++) (void)nb_data_mut(p->e[i].t);
    return p->val->data;
}
double *nb_params_grad(nb_params *p) {
    if (!p) return NULL;
    for (int64_t i = 0; i < p->n; i++) (void)nb_data_mut(p->e[i].g);
    return p->grad->data;
}

void nb_params_zero_grad(nb_params *p) {
    if (!p) return;
    if (p->numel) memset(p->grad->data, 0, (size_t)p->numel * sizeof(double));
    for (int64_t i = 0; i < p->n; i++) (void)nb_data_mut(p->e[i].g); /* (a graph may have read them) */
}

void nb_params_summary(const nb_params *p, FILE *out) {
    if (!p || !out) return;
    char buf[NB_SHAPE_STR_SIZE];
    for (int64_t i = 0; i < p->n; i++) {
        const nb_tensor *t = p->e[i].t;
        fprintf(out, "  %-24s %-16s %lld\n", p->e[i].name,
                nb_shape_str(nb_ndim(t), nb_shape(t), buf, sizeof buf), (long long)p->e[i].numel);
    }
    fprintf(out, "  %lld parameters in %lld tensors\n", (long long)p->numel, (long long)p->n);
}

/* ---- the file format -------------------------------------------------------- */

#define MAGIC "NBPARAMS"
#define VERSION 1u

static void put_u32(unsigned char *b, uint32_t v) {
    for (int k = 0; k < 4; k++) b[k] = (unsigned char)(v >> (8 * k));
}
static void put_u64(unsigned char *b, uint64_t v) {
    for (int k = 0; k < 8; k++) b[k] = (unsigned char)(v >> (8 * k));
}
static uint32_t get_u32(const unsigned char *b) {
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) v |= (uint32_t)b[k] << (8 * k);
    return v;
}
static uint64_t get_u64(const unsigned char *b) {
    uint64_t v = 0;
    for (int k = 0; k < 8; k++) v |= (uint64_t)b[k] << (8 * k);
    return v;
}

unsigned char *nb__params_encode(const nb_params *p, size_t *len) {
    size_t size = 16;
    for (int64_t i = 0; i < p->n; i++)
        size += 4 + strlen(p->e[i].name) + 4 + 8 * (size_t)nb_ndim(p->e[i].t);
    size += (size_t)p->numel * 8 + 4;
    unsigned char *buf = nn_malloc(size);
    if (!buf) return NULL;
    unsigned char *w = buf;
    memcpy(w, MAGIC, 8);
    put_u32(w + 8, VERSION);
    put_u32(w + 12, (uint32_t)p->n);
    w += 16;
    for (int64_t i = 0; i < p->n; i++) {
        const nb_tensor *t = p->e[i].t;
        int ndim = nb_ndim(t);
        const int64_t *shape = nb_shape(t);
        uint32_t len32 = (uint32_t)strlen(p->e[i].name);
        put_u32(w, len32);
        memcpy(w + 4, p->e[i].name, len32);
        w += 4 + len32;
        put_u32(w, (uint32_t)ndim);
        w += 4;
        for (int d = 0; d < ndim; d++, w += 8) put_u64(w, (uint64_t)shape[d]);
    }
    for (int64_t i = 0; i < p->numel; i++, w += 8) {
        uint64_t bits;
        memcpy(&bits, &p->val->data[i], 8);
        put_u64(w, bits);
    }
    put_u32(w, nb__crc32(0, buf, (size_t)(w - buf)));
    *len = size;
    return buf;
}

int nb_params_save(const nb_params *p, const char *path) {
    if (!p || !path) {
        nb_set_error("save: NULL %s", p ? "path" : "store");
        return -1;
    }
    size_t size;
    unsigned char *buf = nb__params_encode(p, &size);
    if (!buf) {
        nb_set_error("save: %s: out of memory (%lld parameters)", path, (long long)p->numel);
        return -1;
    }
    int rc = nb__write_file_atomic("save", path, buf, size);
    free(buf);
    return rc;
}

/* One tensor's header as read from a file. */
typedef struct file_entry {
    char name[64];
    int ndim;
    int64_t shape[NB_MAX_DIMS];
    int64_t numel, off; /* values, and offset in the data block */
} file_entry;

int nb_params_load(nb_params *p, const char *path) {
    if (!p || !path) {
        nb_set_error("load: NULL %s", p ? "path" : "store");
        return -1;
    }
    size_t len;
    unsigned char *buf = nb__read_file("load", path, &len, false);
    if (!buf) return -1;
    int rc = nb__params_decode("load", path, buf, len, p, true);
    free(buf);
    return rc;
}

int nb__params_decode(const char *who, const char *path, const unsigned char *buf, size_t len,
                      nb_params *p, bool apply) {
    file_entry *fe = NULL;
    const unsigned char *r = buf, *end = buf + len;
    char sbuf[NB_SHAPE_STR_SIZE], fbuf[NB_SHAPE_STR_SIZE];

#define FAIL(...)             \
    do {                      \
        nb_set_error(__VA_ARGS__); \
        goto fail;            \
    } while (0)
#define NEED(n, what)                                                                        \
    do {                                                                                     \
        if ((size_t)(end - r) < (size_t)(n))                                                 \
            FAIL("%s: %s: truncated file (%zu bytes, ends inside %s)", who, path, len, what);   \
    } while (0)

    /* 1. the structure, bounds-checked, without trusting anything */
    NEED(8, "the magic");
    if (memcmp(r, MAGIC, 8) != 0) FAIL("%s: %s: not a nabla parameter file (bad magic)", who, path);
    NEED(16, "the header");
    uint32_t version = get_u32(r + 8), count = get_u32(r + 12);
    r += 16;
    if (version != VERSION)
        FAIL("%s: %s: unsupported version %u (this nabla reads version %u)", who, path, version,
             VERSION);
    if ((size_t)count > len / 8) /* each entry takes at least 8 bytes */
        FAIL("%s: %s: corrupted header (%u tensors in a %zu-byte file)", who, path, count, len);
    fe = nn_malloc((size_t)(count ? count : 1) * sizeof *fe);
    if (!fe) goto fail;
    int64_t total = 0;
    for (uint32_t k = 0; k < count; k++) {
        file_entry *f = &fe[k];
        NEED(4, "a name length");
        uint32_t nl = get_u32(r);
        r += 4;
        if (nl < 1 || nl > 63)
            FAIL("%s: %s: corrupted header (tensor %u has a name of %u bytes)", who, path, k, nl);
        NEED(nl, "a name");
        memcpy(f->name, r, nl);
        f->name[nl] = 0;
        r += nl;
        if (strlen(f->name) != nl)
            FAIL("%s: %s: corrupted header (tensor %u has a NUL in its name)", who, path, k);
        NEED(4, "a number of dimensions");
        uint32_t nd = get_u32(r);
        r += 4;
        if (nd > NB_MAX_DIMS)
            FAIL("%s: %s: corrupted header ('%s' has %u dimensions, at most %d)", who, path,
                 f->name, nd, NB_MAX_DIMS);
        f->ndim = (int)nd;
        NEED(8 * (size_t)nd, "a shape");
        f->numel = 1;
        for (uint32_t d = 0; d < nd; d++, r += 8) {
            f->shape[d] = (int64_t)get_u64(r);
            if (f->shape[d] < 0 || (f->shape[d] && f->numel > (INT64_MAX / 8) / f->shape[d]))
                FAIL("%s: %s: corrupted header ('%s' has size %lld in dimension %u)", who, path,
                     f->name, (long long)f->shape[d], d);
            f->numel *= f->shape[d];
        }
        if (f->numel > (INT64_MAX / 8) - total)
            FAIL("%s: %s: corrupted header (too many values)", who, path);
        f->off = total;
        total += f->numel;
    }
    size_t expect = (size_t)(r - buf) + (size_t)total * 8 + 4;
    if ((uint64_t)total > (uint64_t)SIZE_MAX / 16 || len < expect)
        FAIL("%s: %s: truncated file (%zu bytes, the header announces %lld values: %zu bytes)",
             who, path, len, (long long)total, expect);
    if (len > expect)
        FAIL("%s: %s: %zu unexpected bytes after the data", who, path, len - expect);
    /* 2. the checksum */
    uint32_t want = get_u32(end - 4);
    uint32_t got = nb__crc32(0, buf, len - 4);
    if (want != got)
        FAIL("%s: %s: checksum mismatch, the file is corrupted (CRC-32 %08x, stored %08x)",
             who, path, got, want);
    /* 3. the file against the store: same names, same shapes */
    if ((int64_t)count != p->n)
        FAIL("%s: %s: the file holds %u tensors, the store %lld", who, path, count, (long long)p->n);
    for (uint32_t k = 0; k < count; k++) {
        const file_entry *f = &fe[k];
        for (uint32_t j = 0; j < k; j++)
            if (strcmp(fe[j].name, f->name) == 0)
                FAIL("%s: %s: parameter '%s' appears twice", who, path, f->name);
        const nb_tensor *t = nb_params_find(p, f->name);
        if (!t) FAIL("%s: %s: the file has a parameter '%s' that the store lacks", who, path, f->name);
        int ndim = nb_ndim(t);
        const int64_t *shape = nb_shape(t);
        bool same = f->ndim == ndim;
        for (int d = 0; same && d < f->ndim; d++) same = f->shape[d] == shape[d];
        if (!same)
            FAIL("%s: %s: parameter '%s' has shape %s in the file but %s in memory", who, path,
                 f->name, nb_shape_str(f->ndim, f->shape, fbuf, sizeof fbuf),
                 nb_shape_str(ndim, shape, sbuf, sizeof sbuf));
    }
    /* 4. every check passed (count equal, names distinct and known): copy in */
    for (uint32_t k = 0; apply && k < count; k++) {
        const file_entry *f = &fe[k];
        double *dst = nb_data_mut(nb_params_find(p, f->name)); /* (bumps its version) */
        const unsigned char *src = r + 8 * (size_t)f->off;
        for (int64_t j = 0; j < f->numel; j++) {
            uint64_t bits = get_u64(src + 8 * (size_t)j);
            memcpy(&dst[j], &bits, 8);
        }
    }
    free(fe);
    return 0;
fail:
    free(fe);
    return -1;
#undef NEED
#undef FAIL
}
