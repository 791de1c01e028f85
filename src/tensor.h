/*
 * tensor.h — the tensor node and its memory (src/tensor.c): the node's
 * layout, the per-thread state, errors, the block cache, scopes, reference
 * counts and names.  Included by every module of the library (through
 * engine.h for the ops and the engine); tests may include it too.  Not
 * installed: the public API is include/nabla.h.
 */
#ifndef NABLA_TENSOR_H
#define NABLA_TENSOR_H

#include "nabla.h"
#include "nn/hook.h" /* what src/nn may use of the core: implemented here */

#include <locale.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- the op ids (generated from ops.def) ------------------------------------ */
typedef enum nb__op {
#define NB_LEAF(ID, name) NB__OP_##ID,
#define NB_OP(ID, name, arity, rules) NB__OP_##ID,
#include "ops.def"
#undef NB_LEAF
#undef NB_OP
    NB__OP_COUNT
} nb__op;

extern const char *const nb__op_names[NB__OP_COUNT]; /* "add", "in", ... */

/* ---- the tensor node ---------------------------------------------------------- */
#define NB__MAX_IN 3      /* inputs kept in the node itself; more live in its aux record */
#define NB__MAX_INPUTS 64 /* the most inputs one node may have (concat and stack chain past it) */

enum {
    NB__REQ = 1u << 0,         /* requires_grad                                       */
    NB__TARGET = 1u << 1,      /* during nb_autograd's sweep: one of its inputs        */
    NB__REACH = 1u << 2,       /* during nb_autograd's sweep: a target lies upstream   */
    NB__RETAIN_GRAD = 1u << 3, /* interior tensor that stores its gradient (nb_retain_grad) */
    NB__EXTERN = 1u << 4,      /* data is external: the block keeps a storage pointer
                                  where inline data would start (nb__storage_of)        */
    NB__HAS_AUX = 1u << 5,     /* t->aux is set (read from the first cache line)        */
    NB__POOLED = 1u << 6,      /* a scope holds a reference (nb_release refuses to take
                                  the last one from it: an over-release)                */
};
/* how nb_name makes the name */
enum {
    NB__NAME_COUNTED, /* "<op>:<k>"                                          */
    NB__NAME_GRAD,    /* "<op of its owner>_grad"; name_k holds that op      */
    NB__NAME_AUX,     /* the string in the aux record (custom names, custom ops) */
};

/* Externally owned data (nb__storage, declared in nn/hook.h: the parameter
   store's slabs, an alias's original): refcounted so that a tensor kept past
   its store stays valid.  A tensor with external data has no inline data, so
   its block holds the storage pointer there instead. */

/* A node's side record, for what does not fit in the header: a name longer
   than a counter's, more than NB__MAX_IN inputs, the tensors and state of a
   custom op, an op's parameters beyond 8 bytes.  It lives in a block of the
   cache and dies with its node, which releases `held` and calls `destroy`. */
typedef struct nb__aux {
    uint8_t size_class;
    int32_t nheld;          /* tensors the node holds through the record         */
    nb_tensor **held;       /* inputs past NB__MAX_IN come first (all nin of them
                               when nin > NB__MAX_IN), then saved tensors         */
    void (*destroy)(void *state); /* a custom op's state destructor (or NULL)   */
    void *state;
    const void *fn;         /* custom ops: their nb_function                     */
    char name[64];          /* NB__NAME_AUX: the name                            */
    _Alignas(16) unsigned char data[]; /* the op's own parameters                */
} nb__aux;

struct nb_tensor {                       /* 192 bytes, data follows inline */
    /* cache line 0: what the sweep and the ops read */
    double *data;                        /* inline after the header, or external */
    nb_tensor *in[NB__MAX_IN];           /* parents (references held); all of them
                                            are in aux->held when nin > NB__MAX_IN */
    nb_tensor *accum;                    /* during a sweep: the gradient so far */
    int64_t refcount;                    /* 64 bits: cannot overflow          */
    uint16_t op;                         /* nb__op                            */
    uint8_t ndim, nin, flags, name_kind;
    uint8_t size_class;                  /* allocator class of the block      */
    uint8_t unary_op;                    /* unary_grad: which unary op's f'   */
    int64_t numel;
    /* cache line 1 */
    nb_tensor *grad;                     /* leaves: accumulated gradient      */
    nb_tensor *tangent;                  /* forward mode                      */
    uint64_t seq;                        /* recorded nodes: after every recorded
                                            parent's seq (a Lamport clock)     */
    int64_t shape[NB_MAX_DIMS];
    /* then the cold fields */
    uint64_t visit;                      /* walk epoch mark (nb_autograd)     */
    union {                              /* the op's parameters               */
        double f;                        /* pow exponent, scale factor        */
        struct { int32_t axis; int32_t keep; } ax;   /* reductions, softmax    */
        int32_t i[2];
    } p;
    nb__aux *aux;                        /* side record, or NULL              */
    uint32_t name_k;                     /* the NameManager counter (GRAD: the op) */
    uint32_t version;                    /* in-place changes (nb__bump)       */
    uint32_t in_version;                 /* sum of the inputs' versions when recorded */
};

#define NB__HDR ((sizeof(struct nb_tensor) + 63) & ~(size_t)63)
static inline nb__storage *nb__storage_of(const nb_tensor *t) {
    nb__storage *s = NULL;
    if (t->flags & NB__EXTERN) memcpy(&s, (const char *)t + NB__HDR, sizeof s);
    return s;
}
_Static_assert(sizeof(struct nb_tensor) <= 192, "a node's bookkeeping stays within 192 bytes");
_Static_assert(offsetof(struct nb_tensor, grad) == 64, "the hot fields fill the first cache line");

/* A released tensor's block is back in the cache; until it is reused its
   refcount says it is dead, so that a use after release is an error.  In
   AddressSanitizer builds cached blocks are also poisoned (all but the
   free-list link), so every such use is reported. */
#define NB__DEAD_REFCOUNT (INT64_MIN / 2)
static inline bool nb__is_dead(const nb_tensor *t) { return t->refcount <= 0; }
#if defined(__SANITIZE_ADDRESS__)
#define NB__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NB__ASAN 1
#endif
#endif
#ifdef NB__ASAN
#include <sanitizer/asan_interface.h>
#define NB__POISON_BLOCK(b, bytes) ASAN_POISON_MEMORY_REGION((char *)(b) + sizeof(void *), (bytes) - sizeof(void *))
#define NB__UNPOISON_BLOCK(b, bytes) ASAN_UNPOISON_MEMORY_REGION((b), (bytes))
#else
#define NB__POISON_BLOCK(b, bytes) ((void)(b), (void)(bytes))
#define NB__UNPOISON_BLOCK(b, bytes) ((void)(b), (void)(bytes))
#endif

/* A node's inputs, wherever they are kept. */
static inline nb_tensor *const *nb__inputs(const nb_tensor *t) { /* (aux is set when nin > 3) */
    return t->nin <= NB__MAX_IN ? t->in : t->aux->held;
}

/* ---- errors --------------------------------------------------------------------- */
/* Switches the calling thread to the "C" locale (numbers printed and parsed
   with a point, whatever setlocale() the program made); returns what to hand
   to nb__c_locale_end.  If the C locale cannot be made (newlocale failed, out
   of memory) nothing changes and (locale_t)0 is returned. */
locale_t nb__c_locale_begin(void);
void nb__c_locale_end(locale_t prev);
/* An optional argument (`what`) that is NULL while an error set after the
   tensors it goes with were made (clock > after) is pending is taken for the
   NULL result of a failed expression: true + "<who>: the <what> is NULL while
   an error is pending (<it>); clear it with nb_clear_error() <meaning>". */
bool nb__null_while_pending(const char *who, const char *what, const char *meaning, uint64_t after);
/* Sets the thread's message (printf-like, in the "C" locale); returns NULL
   for `return nb__err(...)`. */
void *nb__err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* numpy's way of writing a shape: "(3, 1)", "(4,)", "()". Returns buf. */
const char *nb__shape_str(int ndim, const int64_t *shape, char *buf, size_t size);
#define NB__SHAPE_BUF NB_SHAPE_STR_SIZE /* (192) */
/* true when any argument is NULL or released; sets "<who>: NULL argument N"
   (if no error is set) or "<who>: argument N was released ..." */
bool nb__null_args_slow(const char *who, int n, nb_tensor *const *in);
static inline bool nb__null_args(const char *who, int n, nb_tensor *const *in) {
    for (int i = 0; i < n; i++)
        if (!in[i] || in[i]->refcount <= 0) return nb__null_args_slow(who, n, in);
    return false;
}
/* true when t is a released tensor (not NULL): sets "<who>: the tensor was
   already released ..." (the check of every accessor) */
bool nb__dead_arg(const char *who, const nb_tensor *t);
/* Anomaly detection: the first non-finite element (-1 when all are finite), and
   a check that sets "anomaly: <phase> <name> produced NaN at element i". */
int64_t nb__first_nonfinite(const nb_tensor *t);
bool nb__check_finite(const nb_tensor *t, const char *phase);

/* ---- per-thread state -------------------------------------------------------------
 * One thread-local struct, in parts by the module that owns each. */

/* The block cache's size classes (nb__size_class): 256 bytes, then four
   classes per power of two, so at most 25% is wasted.  nb__shape_ok keeps
   every block below SIZE_MAX / 2, so a block of b bytes has 2^e < b <=
   2^(e+1) with e <= (bits of size_t) - 2: the last class is that e's fourth. */
#define NB__SIZE_BITS ((int)(sizeof(size_t) * 8))
#define NB__NCLASS (1 + ((NB__SIZE_BITS - 2) - 8) * 4 + 3 + 1)
_Static_assert(NB__NCLASS == 1 + 4 * (NB__SIZE_BITS - 9), "one class per quarter power of two from 2^8");

typedef struct nb__thread_state {
    bool initialised;          /* the exit handler is registered                      */
    struct {                   /* errors (tensor.c)                                    */
        bool set;
        uint64_t clock;        /* mode.clock when it was set: after which recorded nodes */
        char msg[512];
    } error;
    struct {                   /* modes (engine)                                       */
        bool grad_disabled;    /* nb_set_grad_enabled(false)                           */
        bool fwd_suspended;    /* inside a JVP rule: no nested tangents                */
        bool quiet_names;      /* inside a plain backward: its temporaries do not
                                  advance the user's name counters                     */
        bool in_rule;          /* inside a VJP rule: the sweep, not nb__finish, checks
                                  (and names) anomalies                                */
        bool anomaly;          /* detect the first NaN/inf producer                    */
        uint64_t clock;        /* the Lamport clock of recorded nodes' seq             */
    } mode;
    uint32_t counts[NB__OP_COUNT]; /* the NameManager's counters (names)              */
    struct {                   /* the scope stack: an autorelease pool (tensor.c)      */
        nb_tensor **slot;
        size_t len, cap;
    } pool;
    struct {                   /* the block cache (tensor.c)                           */
        void *free_list[NB__NCLASS];
        nb_mem_stats stats;
        int64_t fail_countdown; /* failure injection: the Nth allocation from now fails */
    } mem;
    struct {                   /* the engine's scratch, kept between sweeps (engine.c) */
        nb_tensor **order;     /* nb_autograd: every node after all of its parents    */
        size_t order_cap;
        nb_tensor **results;   /* the nodes a sweep leaves holding an accumulator      */
        size_t results_cap;
        nb_tensor **heap;      /* nb_backward's schedule (a max-heap by seq)           */
        size_t heap_cap;
        nb_tensor **stack;     /* nb_autograd's depth-first walk                       */
        int *stack_i;
        size_t stack_cap;
    } sweep;
    struct nb__custom_names *custom_names; /* counters of custom ops' names (custom.c) */
} nb__thread_state;
void nb__custom_names_free(void);  /* at thread exit (custom.c) */
void nb__conv_scratch_free(void);  /* at thread exit and nb_cleanup (ops/conv.c) */

extern _Thread_local nb__thread_state nb__thread_state_tls;
static inline nb__thread_state *nb__thread(void) { return &nb__thread_state_tls; }

/* ---- failure injection (tests): the Nth allocation from now fails; 0 = off --- */
static inline void nb__fail_alloc_after(int64_t n) { nb__thread()->mem.fail_countdown = n; }
/* allocations left before the injected failure (0: it happened, or none armed) */
static inline int64_t nb__fail_alloc_left(void) { return nb__thread()->mem.fail_countdown; }
/* true once the injected failure has happened (the countdown reached 0) */
static inline bool nb__fail_alloc_fired(void) { return nb__thread()->mem.fail_countdown == 0; }

/* ---- memory ------------------------------------------------------------------------ */
void *nb__malloc(size_t n);            /* honours failure injection; sets the error */
void nb__free(void *p);                /* (nb__realloc: nn/hook.h) */
int nb__grow(void **arr, size_t *cap, size_t need, size_t elem);  /* 0 / -1 */
bool nb__shape_ok(const char *who, int ndim, const int64_t *shape, int64_t *numel);

/* A new tensor node of the given shape, data uninitialised, refcount 1, not
   pooled, op IN but not yet named.  NULL + error (prefixed with `who`) on a
   bad shape, an overflowing size or no memory. */
nb_tensor *nb__alloc(const char *who, int ndim, const int64_t *shape);
/* The same for the shape of an existing tensor (already validated). */
nb_tensor *nb__alloc_like_slow(const char *who, const nb_tensor *like);
/* A node whose data is external: storage gets a reference. */
nb_tensor *nb__alloc_external(const char *who, int ndim, const int64_t *shape,
                              double *data, nb__storage *storage);
/* t's side record, made (empty, with room for `data_bytes` of parameters and
   `nheld` held tensors) if t has none.  NULL + error on no memory. */
nb__aux *nb__aux_of(nb_tensor *t, size_t data_bytes, int nheld);

static inline size_t nb__class_bytes(int cls) {
    if (cls == 0) return 256;
    unsigned c = (unsigned)cls - 1, e = (c >> 2) + 8, k = c & 3; /* 2^e, plus k+1 quarters */
    return ((size_t)1 << e) + ((size_t)(k + 1) << (e - 2));
}
/* the smallest class whose blocks hold `bytes` */
static inline int nb__size_class(size_t bytes) {
    if (bytes <= 256) return 0;
    int e = 63 - __builtin_clzll((unsigned long long)(bytes - 1)); /* 2^e < bytes <= 2^(e+1) */
    size_t k = (bytes - 1 - ((size_t)1 << e)) >> (e - 2);           /* quarter: 0..3 */
    return 1 + (e - 8) * 4 + (int)k;
}

/* A block of class cls becomes a tensor of ndim dimensions and numel
   elements with data inline, refcount 1, op IN, no graph, unnamed; the
   caller copies the shape.  Counted in the thread's statistics. */
static inline void nb__header_init(nb__thread_state *T, nb_tensor *t, int cls, int ndim,
                                   int64_t numel) {
    t->data = (double *)((char *)t + NB__HDR);
    t->in[0] = t->in[1] = t->in[2] = NULL;
    t->accum = t->grad = t->tangent = NULL;
    t->refcount = 1;
    t->visit = 0;
    t->numel = numel;
    t->op = NB__OP_IN;
    t->ndim = (uint8_t)ndim;
    t->nin = t->flags = t->name_kind = t->unary_op = 0;
    t->size_class = (uint8_t)cls;
    t->seq = 0;
    t->p.f = 0.0;
    t->aux = NULL;
    t->name_k = 0;
    t->version = t->in_version = 0;
    T->mem.stats.live_tensors++;
    T->mem.stats.tensors_made++;
    T->mem.stats.live_bytes += (int64_t)nb__class_bytes(cls);
    if (T->mem.stats.live_bytes > T->mem.stats.peak_bytes)
        T->mem.stats.peak_bytes = T->mem.stats.live_bytes;
}

/* The hot path of every op's output: a cached block of the right class,
   initialised in place.  The slow path (no cached block, failure injection)
   lives in tensor.c. */
static inline nb_tensor *nb__alloc_like(const char *who, const nb_tensor *like) {
    nb__thread_state *T = nb__thread();
    int cls = nb__size_class(NB__HDR + (size_t)like->numel * sizeof(double));
    nb_tensor *t = (nb_tensor *)T->mem.free_list[cls];
    if (!t || T->mem.fail_countdown) return nb__alloc_like_slow(who, like);
    NB__UNPOISON_BLOCK(t, nb__class_bytes(cls));
    T->mem.free_list[cls] = *(void **)t;
    nb__header_init(T, t, cls, like->ndim, like->numel);
    if (like->ndim <= 2) { /* (slots past ndim hold garbage that nobody reads) */
        t->shape[0] = like->shape[0];
        t->shape[1] = like->shape[1];
    } else {
        memcpy(t->shape, like->shape, (size_t)like->ndim * sizeof *like->shape);
    }
    return t;
}

/* ---- reference counts and scopes --------------------------------------------------- */
/* the count drops; the dead are freed out of line (iteratively) */
void nb__free_dead(nb_tensor *t);
static inline void nb__unref(nb_tensor *t) {
    if (t && --t->refcount == 0) nb__free_dead(t);
}
static inline nb_tensor *nb__ref(nb_tensor *t) {
    if (t) t->refcount++;
    return t;
}
/* Does a reference held by the caller make it t's only holder, so that t may
   be overwritten or added into in place?  (External data never is.) */
static inline bool nb__sole_owner(const nb_tensor *t) {
    return t->refcount == 1 && !(t->flags & NB__EXTERN);
}
/* hands t's reference to the innermost scope; NULL-safe */
nb_tensor *nb__pool_slow(nb_tensor *t);
static inline nb_tensor *nb__pool(nb_tensor *t) {
    nb__thread_state *T = nb__thread();
    if (t && T->pool.len < T->pool.cap) {
        T->pool.slot[T->pool.len++] = t;
        t->flags |= NB__POOLED;
        return t;
    }
    return nb__pool_slow(t);
}
/* the innermost scope gives up its last reference */
static inline void nb__scope_pop(nb__thread_state *T) {
    nb_tensor *t = T->pool.slot[--T->pool.len];
    t->flags &= (uint8_t)~NB__POOLED;
    nb__unref(t);
}

/* ---- in-place changes ----------------------------------------------------------------- */
/* Set once any tensor's values have been changed in place: from then on the
   sweep checks that no tensor a rule reads changed after it was recorded
   (nb__check_versions, engine.h). */
extern atomic_bool nb__mutated;
/* Every public call that changes an existing tensor's values in place calls
   this (nb_data_mut, nb_zero_grad, nb_accumulate_grad, nb_backward on a
   gradient that exists; src/nn's writers through nb_data_mut): a node
   recorded before the change can no longer be differentiated.  Never on
   the recording or sweep paths: only where a stored value changes. */
static inline void nb__bump(nb_tensor *t) {
    t->version++;
    if (!atomic_load_explicit(&nb__mutated, memory_order_relaxed)) /* (one write, ever) */
        atomic_store_explicit(&nb__mutated, true, memory_order_relaxed);
}
/* t's gradient g changes in place (nb_zero_grad, nb_accumulate_grad, a
   backward adding into it): as nb__bump, except when t's own reference is
   g's only one.  Then no node has g as an input (a node holds a reference
   to each input) and g is no op's result (no rule reads its values), so no
   recorded graph can go stale: nothing is counted, and the sweep keeps
   skipping its checks (a training loop's zero_grad on gradients no graph
   read costs nothing).  Only here is the holder of the one reference known;
   a tensor in general may be held by a node alone (its scope ended), so
   nb__bump itself always counts. */
static inline void nb__bump_grad(nb_tensor *g) {
    if (g->refcount == 1 && g->nin == 0) return;
    nb__bump(g);
}

/* ---- names -------------------------------------------------------------------------- */
/* assigns "<op>:<k>" (formatted only when asked for) */
static inline void nb__name(nb_tensor *t, nb__op op) {
    nb__thread_state *T = nb__thread();
    t->name_k = T->mode.quiet_names ? 0 : T->counts[op]++;
    t->name_kind = NB__NAME_COUNTED;
}
/* names g as the gradient of owner: "<owner's op>_grad" */
void nb__name_as_grad(nb_tensor *g, const nb_tensor *owner);

/* ---- small shape helpers --------------------------------------------------------------- */
static inline bool nb__same_shape(const nb_tensor *a, const nb_tensor *b) {
    if (a->ndim != b->ndim || a->numel != b->numel) return false;
    if (a->ndim <= 1) return true; /* (from the first cache line alone) */
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}
/* numpy broadcasting of two shapes; false if they cannot be. */
bool nb__broadcast_shape(int na, const int64_t *sa, int nb, const int64_t *sb,
                         int *nout, int64_t *out);
/* Normalises axis into [0, ndim); false + error naming `who` otherwise. */
bool nb__axis(const char *who, const nb_tensor *a, int axis, int *out);

/* Constants (no graph, requires_grad false, named "const:<k>"), pooled. */
nb_tensor *nb__const(int ndim, const int64_t *shape, double value);
nb_tensor *nb__const_like(const nb_tensor *t, double value);

#endif /* NABLA_TENSOR_H */
