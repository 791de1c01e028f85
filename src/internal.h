/*
 * nabla internals: the tensor node, the per-thread state, the op table and
 * the helpers every op family uses.  Not installed; tests may include it.
 */
#ifndef NABLA_INTERNAL_H
#define NABLA_INTERNAL_H

#include "nabla.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define NB__MAX_IN 3      /* the most inputs an op has (unary_grad: g, x, y) */
#define NB__NAME_LEN 24   /* "broadcast_to:4294967295" + NUL                  */

/* ---- the op table (generated from ops.def) ---------------------------- */
typedef enum nb__op {
#define NB_LEAF(ID, name) NB__OP_##ID,
#define NB_OP(ID, name, arity) NB__OP_##ID,
#include "ops.def"
#undef NB_LEAF
#undef NB_OP
    NB__OP_COUNT
} nb__op;

/* Reverse-mode rule.  g has out's shape.  For every input i with need[i],
   store in gin[i] the gradient of the input, of the input's shape or of a
   shape that broadcasts to it (the engine sums it back); leave the others
   NULL.  Results may be pooled (the engine runs each rule inside a scope and
   retains what it keeps) or be g itself.  With create_graph the rule must use
   differentiable ops only; without it, it may use fused kernels.  0 or -1. */
typedef int (*nb__vjp_fn)(nb_tensor *out, nb_tensor *g, bool create_graph,
                          const bool *need, nb_tensor **gin);
/* Forward-mode rule: the tangent of out from its inputs' tangents (tin[i]
   NULL means zero), built from ops on the inputs (never on `out`, which would
   make out -> tangent -> out a cycle).  Returns a pooled tensor or NULL. */
typedef nb_tensor *(*nb__jvp_fn)(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin);

typedef struct nb__opdef {
    const char *name;
    int arity;
    nb__vjp_fn vjp;
    nb__jvp_fn jvp;
} nb__opdef;

#define NB_LEAF(ID, name)
#define NB_OP(ID, name, arity)                                                        \
    int nb__vjp_##name(nb_tensor *out, nb_tensor *g, bool create_graph, const bool *need, \
                       nb_tensor **gin);                                              \
    nb_tensor *nb__jvp_##name(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin);
#include "ops.def"
#undef NB_LEAF
#undef NB_OP

extern const nb__opdef nb__ops[NB__OP_COUNT];

/* ---- the tensor node --------------------------------------------------- */
enum {
    NB__REQ = 1u << 0,     /* requires_grad                                  */
    NB__TARGET = 1u << 1,  /* during a sweep: an input of nb_autograd         */
    NB__REACH = 1u << 2,   /* during a sweep: a target lies upstream          */
    NB__KEEP = 1u << 3,    /* interior tensor that keeps its gradient          */
    NB__EXTERN = 1u << 4,  /* data is external: the block keeps a storage pointer
                              where inline data would start (nb__storage_of)   */
};
enum { NB__NAME_COUNTED, NB__NAME_GRAD, NB__NAME_CUSTOM };

/* Externally owned data (the parameter store's slab): refcounted so that a
   tensor kept past its store stays valid.  A tensor with external data has
   no inline data, so its block holds the storage pointer there instead. */
typedef struct nb__storage {
    int64_t refcount;
    void (*destroy)(struct nb__storage *);
} nb__storage;

struct nb_tensor {                       /* 192 bytes, data follows inline */
    /* cache line 0: what the sweep and the ops read */
    double *data;                        /* inline after the header, or external */
    nb_tensor *in[NB__MAX_IN];           /* parents (references held)     */
    nb_tensor *gacc;                     /* during a sweep: gradient so far */
    int32_t refcount;
    uint32_t visit;                      /* walk epoch mark (nb_autograd)  */
    uint16_t op;                         /* nb__op                        */
    uint8_t ndim, nin, flags, name_kind;
    uint8_t size_class;                  /* allocator class of the block  */
    uint8_t psub;                        /* unary_grad: which unary op    */
    int64_t numel;
    /* cache line 1 */
    nb_tensor *grad;                     /* leaves: accumulated gradient  */
    nb_tensor *tangent;                  /* forward mode                  */
    uint64_t seq;                        /* recorded nodes: after every recorded
                                            parent's seq (a Lamport clock) */
    int64_t shape[NB_MAX_DIMS];
    /* then parameters and naming */
    union {                              /* the op's parameters            */
        double f;                        /* pow exponent, scale factor    */
        struct { int32_t axis; int32_t keep; } ax;   /* reductions, softmax */
    } p;
    uint32_t name_k;                     /* the NameManager counter       */
    uint16_t name_op;                    /* op whose name it carries      */
    char name[NB__NAME_LEN];             /* formatted lazily              */
};

#define NB__HDR ((sizeof(struct nb_tensor) + 63) & ~(size_t)63)
static inline nb__storage *nb__storage_of(const nb_tensor *t) {
    nb__storage *s = NULL;
    if (t->flags & NB__EXTERN) memcpy(&s, (const char *)t + NB__HDR, sizeof s);
    return s;
}
_Static_assert(sizeof(struct nb_tensor) <= 192, "a node's bookkeeping stays within 192 bytes");
_Static_assert(offsetof(struct nb_tensor, grad) == 64, "the hot fields fill the first cache line");

/* ---- per-thread state ---------------------------------------------------- */
#define NB__NCLASS 232
typedef struct nb__tls {
    bool initialised;
    bool grad_disabled;        /* nb_set_grad_enabled(false)                 */
    bool fwd_suspended;        /* inside a JVP rule: no nested tangents       */
    bool quiet_names;          /* inside a plain backward: its temporaries do not
                                  advance the user's name counters              */
    bool in_rule;              /* inside a VJP rule: the sweep, not nb__finish,
                                  checks (and names) anomalies                   */
    bool has_error;
    bool anomaly;              /* detect the first NaN/inf producer           */
    nb_tensor *donated;        /* in a plain sweep: the gradient the running rule
                                  may overwrite (nobody else holds it)          */
    nb_tensor *acc_into[NB__MAX_IN]; /* in a plain sweep: inputs' accumulators the
                                  running rule may add its result into directly */
    bool acc_done[NB__MAX_IN]; /* ... and did                                  */
    char error[512];
    uint32_t counts[NB__OP_COUNT];
    /* the scope stack (autorelease pool) */
    nb_tensor **pool;
    size_t pool_len, pool_cap;
    /* the block cache */
    void *free_list[NB__NCLASS];
    nb_mem_stats stats;
    /* scratch for graph walks */
    nb_tensor **order;
    size_t order_cap;
    nb_tensor **held;          /* the nodes a sweep leaves holding results  */
    size_t held_cap;
    nb_tensor **heap;          /* nb_backward's schedule (a max-heap by seq)  */
    size_t heap_cap;
    nb_tensor **stack;
    int *stack_i;
    size_t stack_cap;
    /* failure injection (tests): fail the Nth allocation from now; 0 = off */
    int64_t fail_countdown;
    uint64_t clock;            /* the Lamport clock of recorded nodes' seq     */
} nb__tls;

extern _Thread_local nb__tls nb__tls_state;
static inline nb__tls *nb__T(void) { return &nb__tls_state; }

/* ---- errors -------------------------------------------------------------- */
/* Sets the thread's message (printf-like); returns NULL for `return nb__err(...)`. */
void *nb__err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* numpy's way of writing a shape: "(3, 1)", "(4,)", "()". Returns buf. */
const char *nb__shape_str(int ndim, const int64_t *shape, char *buf, size_t size);
#define NB__SHAPE_BUF 192

/* ---- memory ------------------------------------------------------------- */
void *nb__malloc(size_t n);            /* honours failure injection; sets error */
void *nb__realloc(void *p, size_t n);
void nb__free(void *p);
/* A new tensor node of the given shape, data uninitialised, refcount 1, not
   pooled, op IN but not yet named.  NULL + error (prefixed with `who`) on a
   bad shape, an overflowing size or no memory. */
nb_tensor *nb__alloc(const char *who, int ndim, const int64_t *shape);
/* The same for the shape of an existing tensor (already validated). */
nb_tensor *nb__alloc_like_slow(const char *who, const nb_tensor *like);

/* The block cache's size classes: 256 bytes, then four classes per power of
   two (so at most 25% is wasted). */
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
static inline void nb__header_init(nb__tls *T, nb_tensor *t, int cls, int ndim, int64_t numel) {
    t->data = (double *)((char *)t + NB__HDR);
    t->in[0] = t->in[1] = t->in[2] = NULL;
    t->gacc = t->grad = t->tangent = NULL;
    t->refcount = 1;
    t->visit = 0;
    t->numel = numel;
    t->op = NB__OP_IN;
    t->ndim = (uint8_t)ndim;
    t->nin = t->flags = t->name_kind = t->psub = 0;
    t->size_class = (uint8_t)cls;
    t->seq = 0;
    t->p.f = 0.0;
    t->name_k = 0;
    t->name_op = NB__OP_IN;
    t->name[0] = 0;
    T->stats.live_tensors++;
    T->stats.live_bytes += (int64_t)nb__class_bytes(cls);
    if (T->stats.live_bytes > T->stats.peak_bytes) T->stats.peak_bytes = T->stats.live_bytes;
}

/* The hot path of every op's output: a cached block of the right class,
   initialised in place.  The slow path (no cached block, failure injection)
   lives in tensor.c. */
static inline nb_tensor *nb__alloc_like(const char *who, const nb_tensor *like) {
    nb__tls *T = nb__T();
    int cls = nb__size_class(NB__HDR + (size_t)like->numel * sizeof(double));
    nb_tensor *t = (nb_tensor *)T->free_list[cls];
    if (!t || T->fail_countdown) return nb__alloc_like_slow(who, like);
    T->free_list[cls] = *(void **)t;
    nb__header_init(T, t, cls, like->ndim, like->numel);
    if (like->ndim <= 2) { /* (slots past ndim hold garbage that nobody reads) */
        t->shape[0] = like->shape[0];
        t->shape[1] = like->shape[1];
    } else {
        memcpy(t->shape, like->shape, (size_t)like->ndim * sizeof *like->shape);
    }
    return t;
}

/* nb_release's hot path: the count drops; the dead are freed out of line */
void nb__free_dead(nb_tensor *t);
static inline void nb__unref(nb_tensor *t) {
    if (t && --t->refcount == 0) nb__free_dead(t);
}
static inline nb_tensor *nb__ref(nb_tensor *t) {
    if (t) t->refcount++;
    return t;
}
/* A node whose data is external: storage gets a reference. */
nb_tensor *nb__alloc_external(const char *who, int ndim, const int64_t *shape,
                              double *data, nb__storage *storage);
/* assigns "<op>:<k>" (formatted only when asked for) */
static inline void nb__name(nb_tensor *t, nb__op op) {
    nb__tls *T = nb__T();
    t->name_op = (uint16_t)op;
    t->name_k = T->quiet_names ? 0 : T->counts[op]++;
    t->name_kind = NB__NAME_COUNTED;
    t->name[0] = 0;
}
/* hands t's reference to the innermost scope; NULL-safe */
nb_tensor *nb__pool_slow(nb_tensor *t);
static inline nb_tensor *nb__pool(nb_tensor *t) {
    nb__tls *T = nb__T();
    if (t && T->pool_len < T->pool_cap) {
        T->pool[T->pool_len++] = t;
        return t;
    }
    return nb__pool_slow(t);
}
int nb__grow(void **arr, size_t *cap, size_t need, size_t elem);  /* 0 / -1 */
bool nb__shape_ok(const char *who, int ndim, const int64_t *shape, int64_t *numel);

/* ---- building ops ------------------------------------------------------- */
/* The common path of every op: allocate the output of `shape`, name it, and
   if grad is enabled and an input requires grad, record the inputs. */
nb_tensor *nb__node(nb__op op, int ndim, const int64_t *shape, int nin, nb_tensor *const *in);
/* nb__node with the shape of `like`, an existing tensor (no re-validation) */
/* names t as an output of op and, when recording, links its inputs */
static inline nb_tensor *nb__link(nb_tensor *t, nb__op op, int nin, nb_tensor *const *in) {
    t->op = (uint16_t)op;
    nb__name(t, op);
    if (!nb__T()->grad_disabled) {
        bool req = false;
        for (int i = 0; i < nin; i++) req |= (in[i]->flags & NB__REQ) != 0;
        if (req) {
            /* a Lamport clock: after every parent, even one made elsewhere */
            nb__tls *T = nb__T();
            uint64_t seq = T->clock;
            for (int i = 0; i < nin; i++) {
                t->in[i] = nb__ref(in[i]);
                if (in[i]->seq >= seq) seq = in[i]->seq + 1;
            }
            t->seq = seq;
            T->clock = seq + 1;
            t->nin = (uint8_t)nin;
            t->flags |= NB__REQ;
        }
    }
    return t;
}
static inline nb_tensor *nb__node_like(nb__op op, const nb_tensor *like, int nin,
                                       nb_tensor *const *in) {
    nb_tensor *t = nb__alloc_like(nb__ops[op].name, like);
    return t ? nb__link(t, op, nin, in) : NULL;
}
/* After the forward kernel: forward-mode tangent, anomaly check, pooling.
   Releases out and returns NULL if a step fails. */
nb_tensor *nb__finish_slow(nb_tensor *out, int nin, nb_tensor *const *in);
/* Set once a dual tensor has ever been made (by any thread): until then no
   tensor has a tangent and nb__finish need not look.  A thread that is handed
   a dual made by another has synchronised with its making, so sees the flag. */
extern atomic_bool nb__duals_made;
static inline nb_tensor *nb__finish(nb_tensor *out, int nin, nb_tensor *const *in) {
    if (!atomic_load_explicit(&nb__duals_made, memory_order_relaxed) && !nb__T()->anomaly)
        return nb__pool(out);
    return nb__finish_slow(out, nin, in);
}
/* true when any argument is NULL; sets "<who>: NULL argument" if no error is set */
bool nb__null_args_slow(const char *who, int n, nb_tensor *const *in);
static inline bool nb__null_args(const char *who, int n, nb_tensor *const *in) {
    for (int i = 0; i < n; i++)
        if (!in[i]) return nb__null_args_slow(who, n, in);
    return false;
}
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

/* An un-recorded tensor shaped like `like`, data uninitialised, named as an
   output of op, pooled: for fused kernels of a plain backward. */
nb_tensor *nb__plain(nb__op op, const nb_tensor *like);

/* For a rule of a plain backward: a buffer for a result shaped like `like`.
   It is g itself when the sweep donated g (nobody else holds it: the rule
   may overwrite it element by element) and g has like's shape, at most once
   per rule; otherwise a fresh nb__plain tensor.  NULL + error on no memory. */
static inline nb_tensor *nb__grad_buffer(nb__op op, nb_tensor *g, const nb_tensor *like) {
    nb__tls *T = nb__T();
    if (g && T->donated == g && nb__same_shape(g, like)) {
        T->donated = NULL;
        return g;
    }
    return nb__plain(op, like);
}

/* For a rule of a plain backward: input i's gradient accumulator when the
   rule may add its result for input i straight into it (then it calls
   nb__acc_done(i) and leaves gin[i] NULL); NULL when it may not.  Offered
   only when nobody else holds the accumulator and anomaly mode is off. */
static inline nb_tensor *nb__acc_into(int i) { return nb__T()->acc_into[i]; }
static inline void nb__acc_done(int i) { nb__T()->acc_done[i] = true; }

/* Unary op by id (used by rules that need f' as an expression). */
nb_tensor *nb__unary(nb__op op, nb_tensor *a, double param);
nb_tensor *nb__unary_grad(nb__op sub, double param, nb_tensor *g, nb_tensor *x, nb_tensor *y);
/* Element-wise in-place accumulate: dst += src (same shape). */
void nb__add_inplace(nb_tensor *dst, const nb_tensor *src);
/* Un-recorded constant mask of out-broadcast shape: 1 where a > b, 0.5 where
   a == b, 0 elsewhere (the max gate's routing of the gradient). */
nb_tensor *nb__mask_gt(nb_tensor *a, nb_tensor *b);
/* Same shape as `like`: t itself, or t broadcast to it (NULL-safe). */
nb_tensor *nb__bto(nb_tensor *t, const nb_tensor *like);
/* A rule's ending: -1 when an input that needs a gradient got NULL (an op
   inside the rule failed and set the error). */
static inline int nb__rule_ok(int n, const bool *need, nb_tensor *const *gin) {
    for (int i = 0; i < n; i++)
        if (need[i] && !gin[i]) return -1;
    return 0;
}

/* GEMM: C (m,n) = alpha * op(A) op(B) + beta * C, row-major; OpenBLAS when built with it.
   With nb_set_num_threads(n > 1), from NB__GEMM_SPLIT_WORK multiply-adds on
   it runs as n blocks of C on nabla's thread pool, each a single-threaded
   GEMM (a minibatch product: Fashion-MNIST's 64 x 784 x 256 gains 1.3x on
   2 cores), and from NB__GEMM_PARALLEL_WORK on with OpenBLAS's own threads,
   which do better on large products (512^3: 104 against 62 GFLOP/s). */
#define NB__GEMM_SPLIT_WORK (1 << 21)
#define NB__GEMM_PARALLEL_WORK (1 << 25)
void nb__gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
              const double *A, int64_t lda, const double *B, int64_t ldb, double beta,
              double *C, int64_t ldc);

/* ---- threads -------------------------------------------------------------- */
int nb__num_threads(void);
/* Runs fn(lo, hi, ctx) over [0, n) split into chunks, on up to nb__num_threads()
   threads when n >= min_per_thread * 2; otherwise inline. */
void nb__parallel_for(int64_t n, int64_t min_per_thread,
                      void (*fn)(int64_t lo, int64_t hi, void *ctx), void *ctx);

/* ---- failure injection (tests): the Nth allocation from now fails; 0 = off --- */
static inline void nb__fail_alloc_after(int64_t n) { nb__T()->fail_countdown = n; }

/* ---- anomaly detection ------------------------------------------------------ */
bool nb__check_finite(const nb_tensor *t, const char *phase);
int64_t nb__first_nonfinite(const nb_tensor *t);   /* index, or -1 when all finite */

#endif /* NABLA_INTERNAL_H */
