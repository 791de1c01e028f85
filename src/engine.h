/*
 * engine.h — recording and differentiation rules: the op table, what a VJP
 * rule is handed (nb__rule), how an op records its output (nb__node,
 * nb__finish), and the helpers rules share.  Included by the engine
 * (src/engine.c, src/forward.c, src/functional.c) and by every op family in
 * src/ops/.  Not installed.
 */
#ifndef NABLA_ENGINE_H
#define NABLA_ENGINE_H

#include "tensor.h"

/* ---- rules ------------------------------------------------------------------------
 * A VJP rule gets everything it may use, and everything it may do, in one
 * struct.  For every input i with need[i] it stores in gin[i] the gradient
 * of that input: of the input's shape, or of a shape that broadcasts to it
 * (the engine sums it back: rules never un-broadcast).  Results may be
 * pooled temporaries (the engine runs each rule inside a scope and keeps a
 * reference to what it uses), or g itself.  With create_graph the rule must
 * build its results from differentiable ops only; without it, it may use
 * fused kernels and the two shortcuts below.
 *
 * Shortcuts of a plain backward (both NULL under create_graph or anomaly mode):
 *   writable    g itself when nobody but the sweep holds it: the rule may
 *               overwrite it element by element and return it (nb__rule_buffer);
 *   acc[i]      input i's gradient accumulator when nobody else holds it: the
 *               rule may add its result for input i straight into it, then
 *               sets done[i] (and leaves gin[i] NULL).  Returns 0 or -1. */
typedef struct nb__rule {
    nb_tensor *out;            /* the node whose rule runs                         */
    nb_tensor *const *in;      /* its inputs (out->nin of them)                     */
    nb_tensor *g;              /* the gradient of out, out's shape                 */
    bool create_graph;
    const bool *need;          /* need[i]: input i wants a gradient                */
    nb_tensor **gin;           /* the rule's results, NULL-initialised             */
    nb_tensor *writable;       /* g, when the rule may overwrite it (else NULL)    */
    nb_tensor *const *acc;     /* acc[i]: an accumulator the rule may add into     */
    bool *done;                /* done[i]: the rule added input i's gradient itself */
} nb__rule;
typedef int (*nb__vjp_fn)(nb__rule *r);

/* Forward-mode rule: the tangent of out from its inputs' tangents (tin[i]
   NULL means zero), built from ops on the inputs (never on `out`, which would
   make out -> tangent -> out a cycle).  Returns a pooled tensor or NULL. */
typedef nb_tensor *(*nb__jvp_fn)(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin);

typedef struct nb__opdef {
    const char *name;
    int arity;                 /* -1: any number of inputs                          */
    nb__vjp_fn vjp;
    nb__jvp_fn jvp;
} nb__opdef;
extern const nb__opdef nb__ops[NB__OP_COUNT];

/* The rules of each row's family (see ops.def): `own` rows define
   nb__vjp_<name> and nb__jvp_<name>; a family defines one pair for all its rows. */
#define NB__VJP_own(name) nb__vjp_##name
#define NB__JVP_own(name) nb__jvp_##name
#define NB__VJP_unary(name) nb__vjp_unary
#define NB__JVP_unary(name) nb__jvp_unary
#define NB__VJP_reduce(name) nb__vjp_reduce
#define NB__JVP_reduce(name) nb__jvp_reduce
#define NB__VJP_custom(name) nb__vjp_custom
#define NB__VJP_none(name) nb__vjp_none
#define NB__JVP_none(name) nb__jvp_none
#define NB__JVP_custom(name) nb__jvp_custom
#define NB__DECLARE_RULES(vjp, jvp)                                                   \
    int vjp(nb__rule *r);                                                             \
    nb_tensor *jvp(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin);
#define NB_LEAF(ID, name)
#define NB_OP(ID, name, arity, rules) NB__DECLARE_RULES(NB__VJP_##rules(name), NB__JVP_##rules(name))
#include "ops.def"
#undef NB_LEAF
#undef NB_OP

/* The buffer for a rule's result shaped like `like`: g itself when the sweep
   made it writable and it has like's shape (once per rule), else a fresh
   unrecorded tensor.  NULL + error on no memory. */
nb_tensor *nb__unrecorded(nb__op op, const nb_tensor *like);
static inline nb_tensor *nb__rule_buffer(nb__rule *r, nb__op op, const nb_tensor *like) {
    nb_tensor *w = r->writable;
    if (w && nb__same_shape(w, like)) {
        r->writable = NULL;
        return w;
    }
    return nb__unrecorded(op, like);
}
/* A rule's ending: -1 when an input that needs a gradient got NULL (an op
   inside the rule failed and set the error). */
static inline int nb__rule_ok(const nb__rule *r) {
    for (int i = 0; i < r->out->nin; i++)
        if (r->need[i] && !r->gin[i] && !r->done[i]) return -1;
    return 0;
}

/* ---- recording ----------------------------------------------------------------------- */
/* The common path of every op: allocate the output of `shape`, name it, and
   if grad is enabled and an input requires grad, record the inputs. */
nb_tensor *nb__node(nb__op op, int ndim, const int64_t *shape, int nin, nb_tensor *const *in);
/* records in[0..nin) as t's parents when nin > NB__MAX_IN (slow path of nb__link) */
bool nb__link_many(nb_tensor *t, int nin, nb_tensor *const *in);
/* names t as an output of op and, when recording, links its inputs.  NULL
   (t released) only when more than NB__MAX_IN inputs find no memory. */
static inline nb_tensor *nb__link(nb_tensor *t, nb__op op, int nin, nb_tensor *const *in) {
    nb__thread_state *T = nb__thread();
    t->op = (uint16_t)op;
    nb__name(t, op);
    if (!T->mode.grad_disabled) {
        bool req = false;
        for (int i = 0; i < nin; i++) req |= (in[i]->flags & NB__REQ) != 0;
        if (req) {
            /* a Lamport clock: after every parent, even one made elsewhere */
            uint64_t seq = T->mode.clock;
            uint32_t ver = 0;
            for (int i = 0; i < nin; i++) {
                if (in[i]->seq >= seq) seq = in[i]->seq + 1;
                ver += in[i]->version;
            }
            if (nin <= NB__MAX_IN) {
                for (int i = 0; i < nin; i++) t->in[i] = nb__ref(in[i]);
            } else if (!nb__link_many(t, nin, in)) {
                return NULL;
            }
            t->seq = seq;
            T->mode.clock = seq + 1;
            t->nin = (uint8_t)nin;
            t->in_version = ver;
            t->flags |= NB__REQ;
        }
    }
    return t;
}
/* nb__node with the shape of `like`, an existing tensor (no re-validation) */
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
    if (!atomic_load_explicit(&nb__duals_made, memory_order_relaxed) && !nb__thread()->mode.anomaly)
        return nb__pool(out);
    return nb__finish_slow(out, nin, in);
}

/* (nb__mutated and nb__bump, the in-place changes the sweep checks: tensor.h) */
/* -1 + error when x or one of its inputs in[] changed since x was recorded:
   the inline test, then (rarely) the out-of-line one that names the tensor */
int nb__check_versions(const nb_tensor *x, nb_tensor *const *in);
static inline bool nb__versions_hold(const nb_tensor *x, nb_tensor *const *in) {
    uint32_t ver = 0;
    for (int i = 0; i < x->nin; i++) ver += in[i]->version;
    return !x->version && ver == x->in_version;
}

/* does x lie upstream of y, through tensors that require grad? (a walk) */
bool nb__reaches(nb_tensor *y, nb_tensor *x);

/* ---- helpers the rules share ------------------------------------------------------------ */
/* Unary op by id, and its fused gradient g * f'(x) given y = f(x) (elementwise.c). */
nb_tensor *nb__unary(nb__op op, nb_tensor *a, double param);
nb_tensor *nb__unary_grad(nb__op unary_op, double param, nb_tensor *g, nb_tensor *x, nb_tensor *y);
/* Element-wise in-place accumulate: dst += src (same shape). */
void nb__add_inplace(nb_tensor *dst, const nb_tensor *src);
/* Un-recorded constant mask of the broadcast shape: 1 where a > b, 0.5 where
   a == b, 0 elsewhere (the max gate's routing of the gradient). */
nb_tensor *nb__mask_gt(nb_tensor *a, nb_tensor *b);
/* t itself when it has like's shape, else t broadcast to it (NULL-safe). */
nb_tensor *nb__broadcast_like(nb_tensor *t, const nb_tensor *like);

#endif /* NABLA_ENGINE_H */
