/*
 * Tensors: per-thread state, errors, the block cache, scopes and reference
 * counting, creation, inspection and names.
 */
#include "internal.h"
#include "rng.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

_Thread_local nb__thread_state nb__thread_state_tls;

const char *const nb__op_names[NB__OP_COUNT] = {
#define NB_LEAF(ID, nm) [NB__OP_##ID] = #nm,
#define NB_OP(ID, nm, ar, rules) [NB__OP_##ID] = #nm,
#include "ops.def"
#undef NB_LEAF
#undef NB_OP
};

/* ---- thread exit: give the thread's tensors and cache back --------------- */
static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

static void tls_destroy(void *unused) {
    (void)unused;
    nb__thread_state *T = nb__thread();
    nb_cleanup();
    free(T->pool.slot);
    free(T->sweep.order);
    free(T->sweep.results);
    free(T->sweep.heap);
    free(T->sweep.stack);
    free(T->sweep.stack_i);
    nb__custom_names_free();
    nb__conv_scratch_free();
    memset(&T->pool, 0, sizeof T->pool);
    memset(&T->sweep, 0, sizeof T->sweep);
    T->initialised = false;
}
static void tls_key_make(void) { (void)pthread_key_create(&tls_key, tls_destroy); }

static void tls_init(nb__thread_state *T) {
    T->initialised = true;
    pthread_once(&tls_once, tls_key_make);
    (void)pthread_setspecific(tls_key, (void *)1);
}

/* ---- the C locale ----------------------------------------------------------- */
static pthread_once_t c_once = PTHREAD_ONCE_INIT;
static locale_t c_locale;

static void make_c_locale(void) { c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0); }

locale_t nb__c_locale_begin(void) {
    pthread_once(&c_once, make_c_locale);
    if (!c_locale) return (locale_t)0;
    return uselocale(c_locale);
}

void nb__c_locale_end(locale_t prev) {
    if (prev) uselocale(prev);
}

/* ---- errors ---------------------------------------------------------------- */
static void set_error_v(const char *fmt, va_list ap) {
    nb__thread_state *T = nb__thread();
    locale_t prev = nb__c_locale_begin(); /* "-0.5", never "-0,5" */
    vsnprintf(T->error.msg, sizeof T->error.msg, fmt, ap);
    nb__c_locale_end(prev);
    T->error.set = true;
    T->error.clock = T->mode.clock;
}

void *nb__err(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    set_error_v(fmt, ap);
    va_end(ap);
    return NULL;
}

/* the same, for code built on nabla (src/nn, custom ops' callbacks) */
void nb_set_error(const char *fmt, ...) {
    if (!fmt) {
        nb__err("set_error: NULL format");
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    set_error_v(fmt, ap);
    va_end(ap);
}

int nb_check_args(const char *who, int n, nb_tensor *const *args) {
    if (!who) who = "check_args";
    if (n <= 0) return 0;
    if (!args) {
        if (!nb__thread()->error.set) nb__err("%s: NULL argument 1", who);
        return -1;
    }
    return nb__null_args(who, n, args) ? -1 : 0;
}

bool nb__null_while_pending(const char *who, const char *what, const char *meaning, uint64_t after) {
    nb__thread_state *T = nb__thread();
    if (!T->error.set || T->error.clock <= after) return false;
    char msg[sizeof T->error.msg];
    memcpy(msg, T->error.msg, sizeof msg);
    nb__err("%s: the %s is NULL while an error is pending (%.400s); clear it with nb_clear_error() %s",
            who, what, msg, meaning);
    return true;
}

const char *nb_last_error(void) {
    nb__thread_state *T = nb__thread();
    return T->error.set ? T->error.msg : NULL;
}

void nb_clear_error(void) {
    nb__thread_state *T = nb__thread();
    T->error.set = false;
    T->error.msg[0] = 0;
}

const char *nb__shape_str(int ndim, const int64_t *shape, char *buf, size_t size) {
    size_t n = 0;
    n += (size_t)snprintf(buf + n, size - n, "(");
    for (int i = 0; i < ndim && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (n < size) snprintf(buf + n, size - n, ndim == 1 ? ",)" : ")");
    return buf;
}

const char *nb_shape_str(int ndim, const int64_t *shape, char *buf, size_t size) {
    if (!buf || size == 0 || ndim < 0 || ndim > NB_MAX_DIMS || (ndim > 0 && !shape)) return NULL;
    return nb__shape_str(ndim, shape, buf, size);
}

/* ---- grad mode --------------------------------------------------------------- */
bool nb_set_grad_enabled(bool on) {
    nb__thread_state *T = nb__thread();
    bool prev = !T->mode.grad_disabled;
    T->mode.grad_disabled = !on;
    return prev;
}

bool nb_is_grad_enabled(void) { return !nb__thread()->mode.grad_disabled; }

/* ---- mutation: in-place changes bump a version the sweep checks ------------- */
/* Fails when x or an input of x was changed in place (nb__bump: nb_data_mut,
   nb_init_tensor, an optimizer step, a gradient added into or zeroed, ...)
   after x was recorded: its rule would compute the gradient from the new
   values (the check runs once any tensor has been changed: nb__mutated). */
atomic_bool nb__mutated;
int nb__check_versions(const nb_tensor *x, nb_tensor *const *in) {
    if (x->version) {
        nb__err("backward: %s was modified in place after it was computed; "
                "its rule would use the new values", nb_name(x));
        return -1;
    }
    if (nb__versions_hold(x, in)) return 0;
    /* Which input changed?  The recorded sum includes changes made before the
       recording, so it is the one input that has ever changed, or one of
       those that have (naming the first of several could name the wrong one). */
    char list[256];
    size_t len = 0;
    int changed = 0, first = -1;
    for (int i = 0; i < x->nin; i++) {
        bool again = false; /* (the same tensor twice: once) */
        for (int j = 0; j < i; j++) again |= in[j] == in[i];
        if (!in[i]->version || again) continue;
        if (changed++ == 0) first = i;
        if (changed <= 4 && len < sizeof list)
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", changed > 1 ? ", " : "", nb_name(in[i]));
        else if (changed == 5 && len < sizeof list)
            len += (size_t)snprintf(list + len, sizeof list - len, ", ...");
    }
    if (changed == 1)
        nb__err("backward: %s was modified in place after %s used it; its "
                "gradient would use the new values", nb_name(in[first]), nb_name(x));
    else if (changed > 1)
        nb__err("backward: one of %s was modified in place after %s used it; "
                "its gradient would use the new values", list, nb_name(x));
    else
        nb__err("backward: an input of %s was modified in place after it was used", nb_name(x));
    return -1;
}

/* ---- anomaly detection: the first op that makes a NaN or an inf --------------- */
bool nb_set_anomaly_detection(bool on) {
    nb__thread_state *T = nb__thread();
    bool prev = T->mode.anomaly;
    T->mode.anomaly = on;
    return prev;
}

int64_t nb__first_nonfinite(const nb_tensor *t) {
    for (int64_t i = 0; i < t->numel; i++)
        if (!isfinite(t->data[i])) return i;
    return -1;
}

bool nb__check_finite(const nb_tensor *t, const char *phase) {
    int64_t i = nb__first_nonfinite(t);
    if (i < 0) return true;
    nb__err("anomaly: %s %s produced %s at element %lld", phase, nb_name(t),
            isnan(t->data[i]) ? "NaN" : "inf", (long long)i);
    return false;
}

bool nb__null_args_slow(const char *who, int n, nb_tensor *const *in) {
    for (int i = 0; i < n; i++) {
        if (in[i] && nb__is_dead(in[i])) {
            nb__err("%s: argument %d was already released (used after its scope ended, or "
                    "released more often than retained)", who, i + 1);
            return true;
        }
        if (!in[i]) {
            if (!nb__thread()->error.set) nb__err("%s: NULL argument %d", who, i + 1);
            return true;
        }
    }
    return false;
}

/* ---- system memory, with failure injection for the tests ------------------ */
static bool fail_now(void) {
    nb__thread_state *T = nb__thread();
    return T->mem.fail_countdown > 0 && --T->mem.fail_countdown == 0;
}

/* Every per-thread resource (the scope array, walk scratch, cached blocks)
   starts with a system allocation or a block put on this thread's list:
   those are where the thread registers its exit handler. */
void *nb__malloc(size_t n) {
    void *p = fail_now() ? NULL : malloc(n ? n : 1);
    if (!p) return nb__err("out of memory (%zu bytes)", n);
    nb__thread_state *T = nb__thread();
    if (!T->initialised) tls_init(T);
    T->mem.stats.system_allocs++;
    return p;
}

void *nb__realloc(void *p, size_t n) {
    void *q = fail_now() ? NULL : realloc(p, n ? n : 1);
    if (!q) return nb__err("out of memory (%zu bytes)", n);
    nb__thread_state *T = nb__thread();
    if (!T->initialised) tls_init(T);
    T->mem.stats.system_allocs++;
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
static void *block_get_raw(nb__thread_state *T, int cls, size_t bytes);
static void *block_get(nb__thread_state *T, int cls, size_t bytes) {
    if (fail_now()) return nb__err("out of memory (%zu bytes)", bytes);
    return block_get_raw(T, cls, bytes);
}
/* (without failure injection: for the name record, whose failure nb_name survives) */
static void *block_get_raw(nb__thread_state *T, int cls, size_t bytes) {
    void *b = T->mem.free_list[cls];
    if (b) {
        NB__UNPOISON_BLOCK(b, nb__class_bytes(cls));
        T->mem.free_list[cls] = *(void **)b;
        return b;
    }
    if (posix_memalign(&b, 64, bytes) != 0) return nb__err("out of memory (%zu bytes)", bytes);
    if (!T->initialised) tls_init(T);
    T->mem.stats.system_allocs++;
    return b;
}

static void block_put(nb__thread_state *T, void *b, int cls) {
    if (!T->initialised) tls_init(T); /* a block made by another thread */
    *(void **)b = T->mem.free_list[cls];
    T->mem.free_list[cls] = b;
    NB__POISON_BLOCK(b, nb__class_bytes(cls));
}

void nb_trim(void) {
    nb__thread_state *T = nb__thread();
    for (int c = 0; c < NB__NCLASS; c++) {
        void *b = T->mem.free_list[c];
        while (b) {
            void *next = *(void **)b;
            NB__UNPOISON_BLOCK(b, nb__class_bytes(c));
            free(b);
            b = next;
        }
        T->mem.free_list[c] = NULL;
    }
}

void nb_memory_stats(nb_mem_stats *out) {
    if (!out) return;
    nb__thread_state *T = nb__thread();
    *out = T->mem.stats;
    out->cached_bytes = 0; /* counted here, off the hot path */
    for (int c = 0; c < NB__NCLASS; c++)
        for (void *b = T->mem.free_list[c]; b; b = *(void **)b) out->cached_bytes += (int64_t)nb__class_bytes(c);
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
    nb__thread_state *T = nb__thread();
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
static inline void free_block(nb__thread_state *T, nb_tensor *t) {
    nb__storage *st = nb__storage_of(t);
    if (st && --st->refcount == 0 && st->destroy) st->destroy(st);
    int cls = t->size_class;
    t->refcount = NB__DEAD_REFCOUNT; /* (until the block is reused) */
    T->mem.stats.live_tensors--;
    T->mem.stats.live_bytes -= (int64_t)nb__class_bytes(cls);
    block_put(T, t, cls);
}

/* "<who>: <t> was released ..." when t is dead (a use after release) */
static bool dead_arg(const char *who, const nb_tensor *t) {
    if (!t || !nb__is_dead(t)) return false;
    nb__err("%s: the tensor was already released (used after its scope ended, or released "
            "more often than retained)", who);
    return true;
}
bool nb__dead_arg(const char *who, const nb_tensor *t) { return dead_arg(who, t); }

nb_tensor *nb_retain(nb_tensor *t) {
    if (dead_arg("retain", t)) return NULL;
    if (t) t->refcount++;
    return t;
}

/* Pushes c onto the dead list when its count reaches 0. */
static inline void unref_into(nb_tensor *c, nb_tensor **dead) {
    if (c && --c->refcount == 0) {
        c->data = (double *)(void *)*dead;
        *dead = c;
    }
}

void nb__free_dead(nb_tensor *t) {
    nb__thread_state *T = nb__thread();
    t->data = NULL;
    nb_tensor *dead = t;
    while (dead) {
        nb_tensor *x = dead;
        dead = (nb_tensor *)(void *)x->data;
        nb_tensor *kids[NB__MAX_IN + 3] = {x->in[0], x->in[1], x->in[2], x->grad, x->tangent, x->accum};
        nb__aux *a = (x->flags & NB__HAS_AUX) ? x->aux : NULL;
        free_block(T, x);
        for (int i = 0; i < NB__MAX_IN + 3; i++) unref_into(kids[i], &dead);
        if (a) { /* the side record: what it holds, then its state and its block */
            for (int i = 0; i < a->nheld; i++) unref_into(a->held[i], &dead);
            if (a->destroy) a->destroy(a->state);
            T->mem.stats.live_bytes -= (int64_t)nb__class_bytes(a->size_class);
            block_put(T, a, a->size_class);
        }
    }
}

/* ---- side records ----------------------------------------------------------------- */
static nb__aux *aux_make(nb_tensor *t, size_t data_bytes, int nheld, bool injectable) {
    if (t->aux) return t->aux;
    nb__thread_state *T = nb__thread();
    size_t bytes = sizeof(nb__aux) + data_bytes + (size_t)nheld * sizeof(nb_tensor *);
    int cls = nb__size_class(bytes);
    nb__aux *a = injectable ? block_get(T, cls, nb__class_bytes(cls))
                            : block_get_raw(T, cls, nb__class_bytes(cls));
    if (!a) return NULL;
    memset(a, 0, sizeof *a);
    a->size_class = (uint8_t)cls;
    a->held = (nb_tensor **)(void *)(a->data + ((data_bytes + 15) & ~(size_t)15));
    a->nheld = nheld;
    for (int i = 0; i < nheld; i++) a->held[i] = NULL;
    T->mem.stats.live_bytes += (int64_t)nb__class_bytes(cls);
    if (T->mem.stats.live_bytes > T->mem.stats.peak_bytes) T->mem.stats.peak_bytes = T->mem.stats.live_bytes;
    t->aux = a;
    t->flags |= NB__HAS_AUX;
    return a;
}

nb__aux *nb__aux_of(nb_tensor *t, size_t data_bytes, int nheld) {
    return aux_make(t, data_bytes, nheld, true);
}

void nb_release(nb_tensor *t) {
    if (!t || dead_arg("release", t)) return;
    if (t->refcount == 1 && (t->flags & NB__POOLED)) { /* the last reference is its scope's */
        nb__err("release: %s is released more often than it was retained (its scope still "
                "holds it; the extra release is ignored)", nb_name(t));
        return;
    }
    nb__unref(t);
}

/* ---- scopes ------------------------------------------------------------------ */
nb_tensor *nb__pool_slow(nb_tensor *t) {
    if (!t) return NULL;
    nb__thread_state *T = nb__thread();
    if (T->pool.len == T->pool.cap &&
        nb__grow((void **)&T->pool.slot, &T->pool.cap, T->pool.len + 1, sizeof *T->pool.slot) != 0) {
        nb_release(t);
        return NULL;
    }
    T->pool.slot[T->pool.len++] = t;
    t->flags |= NB__POOLED;
    return t;
}

size_t nb_scope_begin(void) { return nb__thread()->pool.len; }

void nb_scope_end(size_t mark) {
    nb__thread_state *T = nb__thread();
    while (T->pool.len > mark) nb__scope_pop(T);
}

void nb_cleanup(void) {
    nb_scope_end(0);
    nb_trim();
    nb__conv_scratch_free();
}

/* ---- names ------------------------------------------------------------------- */
void nb_names_reset(void) { memset(nb__thread()->counts, 0, sizeof nb__thread()->counts); }

const char *nb_name(const nb_tensor *t) {
    if (!t) return nb__thread()->error.set ? NULL : nb__err("name: NULL tensor");
    if (dead_arg("name", t)) return NULL;
    nb_tensor *m = (nb_tensor *)t; /* the name is a cache, formatted on demand */
    if (m->name_kind == NB__NAME_AUX) return m->aux->name;
    size_t had_error = nb__thread()->error.set;
    nb__aux *a = aux_make(m, 0, 0, false);
    if (!a && !had_error) nb_clear_error(); /* (nb_name does not fail: see below) */
    if (!a) { /* no memory for the record: the name, in a buffer of this thread's */
        static _Thread_local char fallback[64];
        if (m->name_kind == NB__NAME_GRAD)
            snprintf(fallback, sizeof fallback, "%s_grad", nb__op_names[m->name_k]);
        else
            snprintf(fallback, sizeof fallback, "%s:%u", nb__op_names[m->op], m->name_k);
        return fallback;
    }
    if (m->name_kind == NB__NAME_GRAD)
        snprintf(a->name, sizeof a->name, "%s_grad", nb__op_names[m->name_k]);
    else
        snprintf(a->name, sizeof a->name, "%s:%u", nb__op_names[m->op], m->name_k);
    m->name_kind = NB__NAME_AUX;
    return a->name;
}

void nb__name_as_grad(nb_tensor *g, const nb_tensor *owner) {
    g->name_kind = NB__NAME_GRAD;
    g->name_k = owner->name_kind == NB__NAME_GRAD ? owner->name_k : owner->op;
    if (owner->op == NB__OP_CUSTOM && owner->aux && owner->aux->fn) { /* "<its name>_grad" */
        nb__aux *a = nb__aux_of(g, 0, 0);
        if (!a) return; /* (then "custom_grad") */
        snprintf(a->name, sizeof a->name, "%s_grad", ((const nb_function *)owner->aux->fn)->name);
        g->name_kind = NB__NAME_AUX;
    }
}

void nb_set_name(nb_tensor *t, const char *name) {
    if (!t || !name) {
        if (!nb__thread()->error.set) nb__err("set_name: NULL argument");
        return;
    }
    if (dead_arg("set_name", t)) return;
    nb__aux *a = nb__aux_of(t, 0, 0);
    if (!a) return;
    snprintf(a->name, sizeof a->name, "%s", name);
    t->name_kind = NB__NAME_AUX;
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
        long long n = (long long)t->numel;
        nb__unref(t);
        return nb__err("%s: NULL data for %lld elements", who, n);
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

/* Random tensors: the first numel values of the generator (rng.h), as
   nb_rng_uniform and nb_rng_normal draw them after nb_rng_seed(seed). */
nb_tensor *nb_rand(int ndim, const int64_t *shape, uint64_t seed) {
    nb_tensor *t = leaf("rand", ndim, shape);
    if (!t) return NULL;
    nb_rng r;
    nb_rng_seed(&r, seed);
    for (int64_t i = 0; i < t->numel; i++) t->data[i] = nb__rng_uniform(&r);
    return nb__pool(t);
}

nb_tensor *nb_randn(int ndim, const int64_t *shape, uint64_t seed) {
    nb_tensor *t = leaf("randn", ndim, shape);
    if (!t) return NULL;
    nb_rng r;
    nb_rng_seed(&r, seed);
    /* (Box-Muller: each pair of uniforms gives two values, cos then sin) */
    for (int64_t i = 0; i < t->numel; i++) t->data[i] = nb__rng_normal(&r);
    return nb__pool(t);
}

nb_tensor *nb_copy(const nb_tensor *src) {
    nb_tensor *arg = (nb_tensor *)src;
    if (nb__null_args("copy", 1, &arg)) return NULL;
    return nb_new(src->data, src->ndim, src->shape);
}

nb_tensor *nb__unrecorded(nb__op op, const nb_tensor *like) {
    nb_tensor *t = nb__alloc_like(nb__ops[op].name, like);
    if (!t) return NULL;
    t->op = (uint16_t)op;
    nb__name(t, op);
    return nb__pool(t);
}

void nb_retain_grad(nb_tensor *t) {
    if (!t) {
        if (!nb__thread()->error.set) nb__err("retain_grad: NULL argument 1");
        return;
    }
    if (dead_arg("retain_grad", t)) return;
    t->flags |= NB__RETAIN_GRAD;
}

/* ---- aliases: one parameter in several threads' graphs ------------------------ */
typedef struct {
    nb__storage base;
    nb_tensor *of; /* the tensor whose values the alias shares (a reference) */
} alias_storage;

static void alias_destroy(nb__storage *s) {
    alias_storage *a = (alias_storage *)(void *)s;
    nb__unref(a->of);
    nb__free(a);
}

nb_tensor *nb_alias(nb_tensor *t) {
    if (nb__null_args("alias", 1, &t)) return NULL;
    alias_storage *st = nb__malloc(sizeof *st);
    if (!st) return nb__err("alias: out of memory");
    st->base.refcount = 0;
    st->base.destroy = alias_destroy;
    st->of = nb__ref(t);
    nb_tensor *a = nb__alloc_external("alias", t->ndim, t->shape, t->data, &st->base);
    if (!a) {
        nb__unref(t);
        nb__free(st);
        return NULL;
    }
    nb__name(a, NB__OP_IN);
    a->flags |= NB__REQ;
    return nb__pool(a);
}

/* ---- parameters over a store's slabs (src/nn/hook.h) ---------------------------- */
nb_tensor *nb__param_new(const char *who, int ndim, const int64_t *shape, double *data,
                         nb__storage *values, double *grad, nb__storage *grads) {
    nb_tensor *t = nb__alloc_external(who, ndim, shape, data, values);
    if (!t) return NULL;
    nb_tensor *g = nb__alloc_external(who, ndim, shape, grad, grads);
    if (!g) {
        nb__unref(t);
        return NULL;
    }
    nb__name_as_grad(g, t);
    t->grad = g; /* t owns g's reference */
    t->flags |= NB__REQ;
    return t;
}

void nb__param_move(nb_tensor *t, double *data, double *grad) {
    t->data = data;
    if (t->grad) t->grad->data = grad;
}

int nb_accumulate_grad(nb_tensor *t, const nb_tensor *g) {
    nb_tensor *args[2] = {t, (nb_tensor *)g};
    if (nb__null_args("accumulate_grad", 2, args)) return -1;
    if (!nb__same_shape(t, g)) {
        char s1[NB__SHAPE_BUF], s2[NB__SHAPE_BUF];
        nb__err("accumulate_grad: a gradient of shape %s for a tensor of shape %s",
                nb__shape_str(g->ndim, g->shape, s1, sizeof s1), nb__shape_str(t->ndim, t->shape, s2, sizeof s2));
        return -1;
    }
    if (!t->grad) {
        nb_tensor *c = nb__alloc_like("accumulate_grad", t);
        if (!c) return -1;
        memset(c->data, 0, (size_t)c->numel * sizeof(double));
        nb__name_as_grad(c, t);
        t->grad = c;
    } else {
        nb__bump_grad(t->grad); /* (a graph may have read it through nb_grad) */
    }
    nb__add_inplace(t->grad, g);
    return 0;
}

nb_tensor *nb_detach(nb_tensor *a) {
    if (nb__null_args("detach", 1, &a)) return NULL;
    nb_tensor *t = nb__unrecorded(NB__OP_DETACH, a);
    if (t && t->numel) memcpy(t->data, a->data, (size_t)a->numel * sizeof(double));
    return t;
}

nb_tensor *nb__const(int ndim, const int64_t *shape, double value) {
    nb_tensor *t = nb__alloc("const", ndim, shape);
    if (!t) return NULL;
    t->op = NB__OP_CONST;
    nb__name(t, NB__OP_CONST);
    for (int64_t i = 0; i < t->numel; i++) t->data[i] = value;
    return nb__pool(t);
}

nb_tensor *nb_const(int ndim, const int64_t *shape, double value) {
    return nb__const(ndim, shape, value);
}

nb_tensor *nb__data_tensor(const char *who, int ndim, const int64_t *shape) {
    nb_tensor *t = nb__alloc(who, ndim, shape);
    if (!t) return NULL;
    nb__name(t, NB__OP_IN);
    t->flags &= (uint8_t)~NB__REQ;
    return nb__pool(t);
}

nb_tensor *nb__const_like(const nb_tensor *t, double value) {
    return nb__const(t->ndim, t->shape, value);
}

/* ---- inspection ------------------------------------------------------------ */
/* the accessors refuse a released tensor (see dead_arg) */
int nb_ndim(const nb_tensor *t) { return t && !dead_arg("ndim", t) ? t->ndim : -1; }
const int64_t *nb_shape(const nb_tensor *t) { return t && !dead_arg("shape", t) ? t->shape : NULL; }
int64_t nb_numel(const nb_tensor *t) { return t && !dead_arg("numel", t) ? t->numel : -1; }
const double *nb_data(const nb_tensor *t) { return t && !dead_arg("data", t) ? t->data : NULL; }
double *nb_data_mut(nb_tensor *t) {
    if (!t || dead_arg("data_mut", t)) return NULL;
    nb__bump(t); /* a node recorded before this change can no longer be differentiated */
    return t->data;
}
bool nb_requires_grad(const nb_tensor *t) { return t && !dead_arg("requires_grad", t) && (t->flags & NB__REQ); }
bool nb_is_leaf(const nb_tensor *t) { return t && !dead_arg("is_leaf", t) && t->nin == 0; }
int nb_num_parents(const nb_tensor *t) { return t && !dead_arg("num_parents", t) ? t->nin : 0; }
nb_tensor *nb_parent(const nb_tensor *t, int i) {
    if (!t || dead_arg("parent", t)) return NULL;
    return (i >= 0 && i < t->nin) ? nb__inputs(t)[i] : NULL; /* (past NB__MAX_IN: the side record) */
}
const char *nb_op_name(const nb_tensor *t) { return t && !dead_arg("op_name", t) ? nb__ops[t->op].name : NULL; }

void nb_set_requires_grad(nb_tensor *t, bool on) {
    if (!t) {
        if (!nb_last_error()) nb__err("set_requires_grad: NULL tensor"); /* keep the first error */
        return;
    }
    if (dead_arg("set_requires_grad", t)) return;
    if (on) t->flags |= NB__REQ;
    else t->flags &= (uint8_t)~NB__REQ;
}

double nb_item(const nb_tensor *t) {
    if (!t) {
        if (!nb__thread()->error.set) nb__err("item: NULL argument 1");
        return NAN;
    }
    if (dead_arg("item", t)) return NAN;
    if (t->numel != 1) {
        char s[NB__SHAPE_BUF];
        nb__err("item: a tensor of shape %s has %lld elements, not 1",
                nb__shape_str(t->ndim, t->shape, s, sizeof s), (long long)t->numel);
        return NAN;
    }
    return t->data[0];
}

nb_tensor *nb_grad(const nb_tensor *t) { return t && !dead_arg("grad", t) ? t->grad : NULL; }
nb_tensor *nb_tangent(const nb_tensor *t) { return t && !dead_arg("tangent", t) ? t->tangent : NULL; }

void nb_zero_grad(nb_tensor *t) {
    if (t && dead_arg("zero_grad", t)) return;
    if (t && t->grad) { /* (a graph may have read it through nb_grad) */
        memset(t->grad->data, 0, (size_t)t->grad->numel * sizeof(double));
        nb__bump_grad(t->grad);
    }
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
