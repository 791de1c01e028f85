/*
 * Tensors: per-thread state, errors, the block cache, scopes and reference
 * counting, creation, inspection and names.
 */
#include "internal.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

_Thread_local nb__tls nb__tls_state;

/* ---- thread exit: give the thread's tensors and cache back --------------- */
static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

static void tls_destroy(void *unused) {
    (void)unused;
    nb__tls *T = nb__T();
    nb_cleanup();
    free(T->pool);
    free(T->order);
    free(T->held);
    free(T->heap);
    free(T->stack);
    free(T->stack_i);
    T->pool = NULL;
    T->order = NULL;
    T->held = NULL;
    T->heap = NULL;
    T->stack = NULL;
    T->stack_i = NULL;
    T->pool_cap = T->order_cap = T->held_cap = T->heap_cap = T->stack_cap = 0;
    T->initialised = false;
}
static void tls_key_make(void) { (void)pthread_key_create(&tls_key, tls_destroy); }

static void tls_init(nb__tls *T) {
    T->initialised = true;
    pthread_once(&tls_once, tls_key_make);
    (void)pthread_setspecific(tls_key, (void *)1);
}

/* ---- errors ---------------------------------------------------------------- */
void *nb__err(const char *fmt, ...) {
    nb__tls *T = nb__T();
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(T->error, sizeof T->error, fmt, ap);
    va_end(ap);
    T->has_error = true;
    return NULL;
}

const char *nb_last_error(void) {
    nb__tls *T = nb__T();
    return T->has_error ? T->error : NULL;
}

void nb_clear_error(void) {
    nb__tls *T = nb__T();
    T->has_error = false;
    T->error[0] = 0;
}

const char *nb__shape_str(int ndim, const int64_t *shape, char *buf, size_t size) {
    size_t n = 0;
    n += (size_t)snprintf(buf + n, size - n, "(");
    for (int i = 0; i < ndim && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (n < size) snprintf(buf + n, size - n, ndim == 1 ? ",)" : ")");
    return buf;
}

bool nb__null_args_slow(const char *who, int n, nb_tensor *const *in) {
    for (int i = 0; i < n; i++) {
        if (!in[i]) {
            if (!nb__T()->has_error) nb__err("%s: NULL argument %d", who, i + 1);
            return true;
        }
    }
    return false;
}

/* ---- system memory, with failure injection for the tests ------------------ */
static bool fail_now(void) {
    nb__tls *T = nb__T();
    if (T->fail_countdown > 0 && --T->fail_countdown == 0) return true;
    return false;
}

/* Every per-thread resource (the scope array, walk scratch, cached blocks)
   starts with a system allocation or a block put on this thread's list:
   those are where the thread registers its exit handler. */
void *nb__malloc(size_t n) {
    void *p = fail_now() ? NULL : malloc(n ? n : 1);
    if (!p) return nb__err("out of memory (%zu bytes)", n);
    nb__tls *T = nb__T();
    if (!T->initialised) tls_init(T);
    T->stats.system_allocs++;
    return p;
}

void *nb__realloc(void *p, size_t n) {
    void *q = fail_now() ? NULL : realloc(p, n ? n : 1);
    if (!q) return nb__err("out of memory (%zu bytes)", n);
    nb__tls *T = nb__T();
    if (!T->initialised) tls_init(T);
    T->stats.system_allocs++;
    return q;
}

void nb__free(void *p) { free(p); }

int nb__grow(void **arr, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *p = nb__realloc(*arr, c * elem);
    if (!p) return -1;
    *arr = p;
    *cap = c;
    return 0;
}

/* ---- the block cache --------------------------------------------------------
 * A tensor is one block: the 192-byte header, then its data (64-byte aligned).
 * Blocks come in size classes: 256 bytes, then four classes per power of two
 * (so at most 25% is wasted).  Freed blocks go onto the freeing thread's list
 * of their class and are reused, so a training loop stops calling malloc once
 * it has seen one step. */
static void *block_get(nb__tls *T, int cls, size_t bytes) {
    if (fail_now()) return nb__err("out of memory (%zu bytes)", bytes);
    void *b = T->free_list[cls];
    if (b) {
        T->free_list[cls] = *(void **)b;
        return b;
    }
    if (posix_memalign(&b, 64, bytes) != 0) return nb__err("out of memory (%zu bytes)", bytes);
    if (!T->initialised) tls_init(T);
    T->stats.system_allocs++;
    return b;
}

static void block_put(nb__tls *T, void *b, int cls) {
    if (!T->initialised) tls_init(T); /* a block made by another thread */
    *(void **)b = T->free_list[cls];
    T->free_list[cls] = b;
}

void nb_trim(void) {
    nb__tls *T = nb__T();
    for (int c = 0; c < NB__NCLASS; c++) {
        void *b = T->free_list[c];
        while (b) {
            void *next = *(void **)b;
            free(b);
            b = next;
        }
        T->free_list[c] = NULL;
    }
}

void nb_memory_stats(nb_mem_stats *out) {
    if (!out) return;
    nb__tls *T = nb__T();
    *out = T->stats;
    out->cached_bytes = 0; /* counted here, off the hot path */
    for (int c = 0; c < NB__NCLASS; c++)
        for (void *b = T->free_list[c]; b; b = *(void **)b) out->cached_bytes += (int64_t)nb__class_bytes(c);
}

bool nb__shape_ok(const char *who, int ndim, const int64_t *shape, int64_t *numel) {
    if (ndim < 0 || ndim > NB_MAX_DIMS) {
        nb__err("%s: %d dimensions requested; a tensor has 0 to %d", who, ndim, NB_MAX_DIMS);
        return false;
    }
    if (ndim > 0 && !shape) {
        nb__err("%s: NULL shape for a %d-d tensor", who, ndim);
        return false;
    }
    /* the block (header + 8 bytes an element) must fit in half of size_t */
    const int64_t limit = (int64_t)((SIZE_MAX / 2 - NB__HDR) / sizeof(double));
    /* Also the product of the non-zero sizes must fit: an empty (0, 2^60, 2^20)
       has no elements, but the strides computed from its sizes would overflow. */
    int64_t n = 1, nz = 1;
    bool over = false;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) {
            char s[NB__SHAPE_BUF];
            nb__err("%s: negative size in shape %s", who, nb__shape_str(ndim, shape, s, sizeof s));
            return false;
        }
        if (shape[i]) over |= __builtin_mul_overflow(nz, shape[i], &nz);
        over |= nz > limit;
    }
    for (int i = 0; i < ndim && !over; i++) n *= shape[i]; /* fits: |n| <= nz */
    if (over) {
        char s[NB__SHAPE_BUF];
        nb__err("%s: shape %s has too many elements (the size overflows)", who,
                nb__shape_str(ndim, shape, s, sizeof s));
        return false;
    }
    *numel = n;
    return true;
}

static nb_tensor *alloc_header(const char *who, int ndim, const int64_t *shape, size_t data_bytes,
                               int64_t numel) {
    nb__tls *T = nb__T();
    int cls = nb__size_class(NB__HDR + data_bytes);
    size_t cb = nb__class_bytes(cls);
    nb_tensor *t = block_get(T, cls, cb);
    if (!t) {
        char s[NB__SHAPE_BUF];
        nb__err("%s: out of memory for a tensor of shape %s", who,
                nb__shape_str(ndim, shape, s, sizeof s));
        return NULL;
    }
    nb__header_init(T, t, cls, ndim, numel); /* every field, without a memset */
    if (shape) memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    return t;
}

nb_tensor *nb__alloc(const char *who, int ndim, const int64_t *shape) {
    int64_t numel;
    if (!nb__shape_ok(who, ndim, shape, &numel)) return NULL;
    return alloc_header(who, ndim, shape, (size_t)numel * sizeof(double), numel);
}

nb_tensor *nb__alloc_like_slow(const char *who, const nb_tensor *like) {
    return alloc_header(who, like->ndim, like->shape, (size_t)like->numel * sizeof(double), like->numel);
}

nb_tensor *nb__alloc_external(const char *who, int ndim, const int64_t *shape, double *data,
                              nb__storage *storage) {
    int64_t numel;
    if (!nb__shape_ok(who, ndim, shape, &numel)) return NULL;
    nb_tensor *t = alloc_header(who, ndim, shape, sizeof storage, numel);
    if (!t) return NULL;
    t->data = data;
    if (storage) {
        memcpy((char *)t + NB__HDR, &storage, sizeof storage);
        t->flags |= NB__EXTERN;
        storage->refcount++;
    }
    return t;
}

/* ---- reference counting ---------------------------------------------------
 * Releasing is iterative: a dying tensor's children (parents, grad, tangent)
 * whose count reaches zero are chained through the dead tensors' data
 * pointer (freeing a block needs only its class, flags and storage), so a chain of a million nodes is freed without recursion and without
 * allocating. */
static void free_block(nb_tensor *t) {
    nb__tls *T = nb__T();
    nb__storage *st = nb__storage_of(t);
    if (st && --st->refcount == 0 && st->destroy) st->destroy(st);
    int cls = t->size_class;
    T->stats.live_tensors--;
    T->stats.live_bytes -= (int64_t)nb__class_bytes(cls);
    block_put(T, t, cls);
}

nb_tensor *nb_retain(nb_tensor *t) {
    if (t) t->refcount++;
    return t;
}

void nb__free_dead(nb_tensor *t) {
    t->data = NULL;
    nb_tensor *dead = t;
    while (dead) {
        nb_tensor *x = dead;
        dead = (nb_tensor *)(void *)x->data;
        nb_tensor *kids[NB__MAX_IN + 3] = {x->in[0], x->in[1], x->in[2], x->grad, x->tangent, x->gacc};
        free_block(x);
        for (int i = 0; i < NB__MAX_IN + 3; i++) {
            nb_tensor *c = kids[i];
            if (c && --c->refcount == 0) {
                c->data = (double *)(void *)dead;
                dead = c;
            }
        }
    }
}

void nb_release(nb_tensor *t) { nb__unref(t); }

/* ---- scopes ------------------------------------------------------------------ */
nb_tensor *nb__pool_slow(nb_tensor *t) {
    if (!t) return NULL;
    nb__tls *T = nb__T();
    if (T->pool_len == T->pool_cap &&
        nb__grow((void **)&T->pool, &T->pool_cap, T->pool_len + 1, sizeof *T->pool) != 0) {
        nb_release(t);
        return NULL;
    }
    T->pool[T->pool_len++] = t;
    return t;
}

size_t nb_scope_begin(void) { return nb__T()->pool_len; }

void nb_scope_end(size_t mark) {
    nb__tls *T = nb__T();
    while (T->pool_len > mark) nb__unref(T->pool[--T->pool_len]);
}

void nb_cleanup(void) {
    nb_scope_end(0);
    nb_trim();
}

/* ---- names ------------------------------------------------------------------- */
void nb_names_reset(void) { memset(nb__T()->counts, 0, sizeof nb__T()->counts); }

const char *nb_name(const nb_tensor *t) {
    if (!t) return nb__err("name: NULL tensor");
    nb_tensor *m = (nb_tensor *)t; /* the name is a cache, formatted on demand */
    if (m->name_kind != NB__NAME_CUSTOM && !m->name[0]) {
        const char *op = nb__ops[m->name_op].name;
        if (m->name_kind == NB__NAME_GRAD)
            snprintf(m->name, sizeof m->name, "%s_grad", op);
        else
            snprintf(m->name, sizeof m->name, "%s:%u", op, m->name_k);
    }
    return m->name;
}

void nb_set_name(nb_tensor *t, const char *name) {
    if (!t || !name) {
        nb__err("set_name: NULL argument");
        return;
    }
    snprintf(t->name, sizeof t->name, "%s", name);
    t->name_kind = NB__NAME_CUSTOM;
}

/* ---- creation -------------------------------------------------------------- */
static nb_tensor *leaf(const char *who, int ndim, const int64_t *shape) {
    nb_tensor *t = nb__alloc(who, ndim, shape);
    if (!t) return NULL;
    t->op = NB__OP_IN;
    nb__name(t, NB__OP_IN);
    t->flags = NB__REQ;
    return t;
}

static nb_tensor *from_data(const char *who, const double *data, int ndim, const int64_t *shape) {
    nb_tensor *t = leaf(who, ndim, shape);
    if (!t) return NULL;
    if (t->numel && !data) {
        nb_release(t);
        return nb__err("%s: NULL data for %lld elements", who, (long long)t->numel);
    }
    if (t->numel) memcpy(t->data, data, (size_t)t->numel * sizeof(double));
    return nb__pool(t);
}

nb_tensor *nb_new(const double *data, int ndim, const int64_t *shape) {
    return from_data("new", data, ndim, shape);
}

nb_tensor *nb_scalar(double value) { return from_data("scalar", &value, 0, NULL); }

nb_tensor *nb_column(const double *data, int64_t n) {
    int64_t s[2] = {n, 1};
    return from_data("column", data, 2, s);
}

nb_tensor *nb_vector(const double *data, int64_t n) { return from_data("vector", data, 1, &n); }

nb_tensor *nb_matrix(const double *data, int64_t rows, int64_t cols) {
    int64_t s[2] = {rows, cols};
    return from_data("matrix", data, 2, s);
}

static nb_tensor *filled(const char *who, int ndim, const int64_t *shape, double value) {
    nb_tensor *t = leaf(who, ndim, shape);
    if (!t) return NULL;
    for (int64_t i = 0; i < t->numel; i++) t->data[i] = value;
    return nb__pool(t);
}

nb_tensor *nb_full(int ndim, const int64_t *shape, double value) {
    return filled("full", ndim, shape, value);
}
nb_tensor *nb_zeros(int ndim, const int64_t *shape) { return filled("zeros", ndim, shape, 0.0); }
nb_tensor *nb_ones(int ndim, const int64_t *shape) { return filled("ones", ndim, shape, 1.0); }

/* SplitMix64 (Steele, Lea & Flood 2014): a small, good, seedable generator. */
static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double uniform01(uint64_t *s) { return (double)(splitmix64(s) >> 11) * 0x1.0p-53; }

nb_tensor *nb_rand(int ndim, const int64_t *shape, uint64_t seed) {
    nb_tensor *t = leaf("rand", ndim, shape);
    if (!t) return NULL;
    uint64_t s = seed;
    for (int64_t i = 0; i < t->numel; i++) t->data[i] = uniform01(&s);
    return nb__pool(t);
}

nb_tensor *nb_randn(int ndim, const int64_t *shape, uint64_t seed) {
    nb_tensor *t = leaf("randn", ndim, shape);
    if (!t) return NULL;
    uint64_t s = seed;
    /* Box-Muller: two uniforms give two independent normals */
    for (int64_t i = 0; i < t->numel; i += 2) {
        double u1 = uniform01(&s), u2 = uniform01(&s);
        double r = sqrt(-2.0 * log(1.0 - u1)), th = 6.283185307179586 * u2; /* 2 pi */
        t->data[i] = r * cos(th);
        if (i + 1 < t->numel) t->data[i + 1] = r * sin(th);
    }
    return nb__pool(t);
}

nb_tensor *nb_copy(const nb_tensor *src) {
    if (!src) {
        if (!nb__T()->has_error) nb__err("copy: NULL argument 1");
        return NULL;
    }
    return nb_new(src->data, src->ndim, src->shape);
}

nb_tensor *nb__const(int ndim, const int64_t *shape, double value) {
    nb_tensor *t = nb__alloc("const", ndim, shape);
    if (!t) return NULL;
    t->op = NB__OP_CONST;
    nb__name(t, NB__OP_CONST);
    for (int64_t i = 0; i < t->numel; i++) t->data[i] = value;
    return nb__pool(t);
}

nb_tensor *nb__const_like(const nb_tensor *t, double value) {
    return nb__const(t->ndim, t->shape, value);
}

/* ---- inspection ------------------------------------------------------------ */
int nb_ndim(const nb_tensor *t) { return t ? t->ndim : -1; }
const int64_t *nb_shape(const nb_tensor *t) { return t ? t->shape : NULL; }
int64_t nb_numel(const nb_tensor *t) { return t ? t->numel : -1; }
const double *nb_data(const nb_tensor *t) { return t ? t->data : NULL; }
double *nb_data_mut(nb_tensor *t) { return t ? t->data : NULL; }
bool nb_requires_grad(const nb_tensor *t) { return t && (t->flags & NB__REQ); }
bool nb_is_leaf(const nb_tensor *t) { return t && t->nin == 0; }
int nb_num_parents(const nb_tensor *t) { return t ? t->nin : 0; }
nb_tensor *nb_parent(const nb_tensor *t, int i) {
    return (t && i >= 0 && i < t->nin) ? t->in[i] : NULL;
}
const char *nb_op_name(const nb_tensor *t) { return t ? nb__ops[t->op].name : NULL; }

void nb_set_requires_grad(nb_tensor *t, bool on) {
    if (!t) {
        nb__err("set_requires_grad: NULL tensor");
        return;
    }
    if (on) t->flags |= NB__REQ;
    else t->flags &= (uint8_t)~NB__REQ;
}

double nb_item(const nb_tensor *t) {
    if (!t) {
        if (!nb__T()->has_error) nb__err("item: NULL argument 1");
        return NAN;
    }
    if (t->numel != 1) {
        char s[NB__SHAPE_BUF];
        nb__err("item: a tensor of shape %s has %lld elements, not 1",
                nb__shape_str(t->ndim, t->shape, s, sizeof s), (long long)t->numel);
        return NAN;
    }
    return t->data[0];
}

nb_tensor *nb_grad(const nb_tensor *t) { return t ? t->grad : NULL; }
nb_tensor *nb_tangent(const nb_tensor *t) { return t ? t->tangent : NULL; }

void nb_zero_grad(nb_tensor *t) {
    if (t && t->grad) memset(t->grad->data, 0, (size_t)t->grad->numel * sizeof(double));
}

bool nb__axis(const char *who, const nb_tensor *a, int axis, int *out) {
    int n = a->ndim;
    if (axis < -n || axis >= n || n == 0) {
        char s[NB__SHAPE_BUF];
        nb__err("%s: axis %d is out of range for a tensor of shape %s", who, axis,
                nb__shape_str(a->ndim, a->shape, s, sizeof s));
        return false;
    }
    *out = axis < 0 ? axis + n : axis;
    return true;
}

bool nb__broadcast_shape(int na, const int64_t *sa, int nbd, const int64_t *sb, int *nout,
                         int64_t *out) {
    int n = na > nbd ? na : nbd;
    for (int i = 0; i < n; i++) {
        int64_t da = i < n - na ? 1 : sa[i - (n - na)];
        int64_t db = i < n - nbd ? 1 : sb[i - (n - nbd)];
        if (da != db && da != 1 && db != 1) return false;
        out[i] = da == 1 ? db : da;
    }
    *nout = n;
    return true;
}
