/*
 * The engine: record -> order -> sweep.
 *
 *   record:  every op calls nb__node() (engine.h: nb__link), which, when
 *            grad is enabled and an input requires grad, references the
 *            inputs and stamps the output with a sequence number above its
 *            parents' (a Lamport clock); then nb__finish() pools it.
 *   order:   nb_backward runs the nodes that hold a gradient in decreasing
 *            sequence order, from a max-heap (sweep_backward): no walk of the
 *            graph first.  nb_autograd, which must also know which nodes lead
 *            to its inputs, uses walk(), an iterative depth-first search whose
 *            post-order puts every node after all of its parents (sweep).
 *   sweep:   each node's gradient is complete when its turn comes; its VJP
 *            rule gives the inputs' gradients (backprop), which the engine
 *            sums back over broadcast axes and adds into the inputs'
 *            accumulators.  Nothing recurses on graph depth.
 * Forward mode: forward.c; Jacobians and Hessians: functional.c.
 */
#include "engine.h"
#include <math.h>
#include <string.h>

const nb__opdef nb__ops[NB__OP_COUNT] = {
#define NB_LEAF(ID, nm) [NB__OP_##ID] = {#nm, 0, NULL, NULL},
#define NB_OP(ID, nm, ar, rules) [NB__OP_##ID] = {#nm, ar, NB__VJP_##rules(nm), NB__JVP_##rules(nm)},
#include "ops.def"
#undef NB_LEAF
#undef NB_OP
};

/* ---- recording (the inline part is in engine.h) -------------------------------------- */
nb_tensor *nb__node(nb__op op, int ndim, const int64_t *shape, int nin, nb_tensor *const *in) {
    nb_tensor *t = nb__alloc(nb__ops[op].name, ndim, shape);
    return t ? nb__link(t, op, nin, in) : NULL;
}

bool nb__link_many(nb_tensor *t, int nin, nb_tensor *const *in) {
    nb__aux *a = nb__aux_of(t, 0, nin);
    if (!a) {
        nb__unref(t);
        return false;
    }
    for (int i = 0; i < nin; i++) a->held[i] = nb__ref(in[i]);
    return true;
}

/* ---- nb_autograd's order ------------------------------------------------------------
 * Iterative post-order DFS over the parents that require grad, marked by a
 * global 64-bit epoch (never wraps, never cleared).  REACH: a TARGET lies
 * upstream (recomputed for, and read only on, the nodes this walk visits).
 * It also lists the nodes that keep their accumulator after the sweep. */
static _Atomic uint64_t walk_epoch;

typedef struct {
    nb_tensor **order;   /* every node after all of its parents (nb_autograd only) */
    nb_tensor **results; /* the nodes holding an accumulator after the sweep */
    size_t n, nresults;
} walk_result;

/* after nb_autograd's sweep, does x keep its accumulator? */
static bool keeps_accum(const nb_tensor *x) { return (x->flags & (NB__TARGET | NB__RETAIN_GRAD)) != 0; }

static int push_result(nb__thread_state *T, size_t *n, nb_tensor *x) {
    if (*n == T->sweep.results_cap &&
        nb__grow((void **)&T->sweep.results, &T->sweep.results_cap, *n + 1, sizeof *T->sweep.results))
        return -1;
    T->sweep.results[(*n)++] = x;
    return 0;
}

/* Marks x visited and pushes it on the DFS stack; -1 when memory runs out. */
static int push(nb__thread_state *T, size_t sp, nb_tensor *x, uint64_t epoch) {
    if (sp + 1 > T->sweep.stack_cap) {
        size_t cap = T->sweep.stack_cap;
        if (nb__grow((void **)&T->sweep.stack, &cap, sp + 1, sizeof *T->sweep.stack) ||
            nb__grow((void **)&T->sweep.stack_i, &T->sweep.stack_cap, sp + 1, sizeof *T->sweep.stack_i))
            return -1;
    }
    x->visit = epoch;
    bool target = (x->flags & NB__TARGET) != 0; /* a target reaches itself */
    x->flags = (uint8_t)((x->flags & ~NB__REACH) | (target ? NB__REACH : 0));
    T->sweep.stack[sp] = x;
    T->sweep.stack_i[sp] = 0;
    return 0;
}

static int walk(int nroots, nb_tensor *const *roots, walk_result *w) {
    nb__thread_state *T = nb__thread();
    uint64_t epoch = atomic_fetch_add(&walk_epoch, 1) + 1;
    size_t n = 0, sp = 0;
    w->n = w->nresults = 0;
    w->order = T->sweep.order;
    w->results = T->sweep.results;
    for (int r = 0; r < nroots; r++) {
        if (roots[r]->visit == epoch) continue;
        if (push(T, sp++, roots[r], epoch)) return -1;
        while (sp) {
            nb_tensor *x = T->sweep.stack[sp - 1];
            nb_tensor *const *in = nb__inputs(x);
            int i = T->sweep.stack_i[sp - 1];
            if (i < x->nin) {
                T->sweep.stack_i[sp - 1] = i + 1;
                if ((in[i]->flags & NB__REQ) && in[i]->visit != epoch && push(T, sp++, in[i], epoch))
                    return -1;
                continue;
            }
            sp--; /* all parents done: x is finished */
            for (int k = 0; k < x->nin; k++)
                if ((in[k]->flags & (NB__REQ | NB__REACH)) == (NB__REQ | NB__REACH))
                    x->flags |= NB__REACH; /* a REQ parent was visited by this walk */
            if (n == T->sweep.order_cap &&
                nb__grow((void **)&T->sweep.order, &T->sweep.order_cap, n + 1, sizeof *T->sweep.order))
                return -1;
            T->sweep.order[n++] = x;
            w->order = T->sweep.order;
            w->n = n;
            if (keeps_accum(x)) {
                if (push_result(T, &w->nresults, x)) return -1;
                w->results = T->sweep.results;
            }
        }
    }
    return 0;
}

/* does x lie upstream of y (through tensors that require grad)? */
bool nb__reaches(nb_tensor *y, nb_tensor *x) {
    walk_result w;
    x->flags |= NB__TARGET;
    bool r = walk(1, &y, &w) == 0 && (y->flags & NB__REACH);
    x->flags &= (uint8_t)~(NB__TARGET | NB__REACH);
    return r;
}

/* ---- accumulation ------------------------------------------------------------------ */
/* An unpooled copy of t's values that nobody else holds (so it may be
   added into in place), or NULL when memory runs out. */
static nb_tensor *private_copy(const nb_tensor *t, nb__op op) {
    nb_tensor *c = nb__alloc_like("backward", t);
    if (!c) return NULL;
    c->op = (uint16_t)op;
    memcpy(c->data, t->data, (size_t)c->numel * sizeof(double));
    return c;
}

/* x's accumulator += g.  In a plain sweep the accumulator is added into in
   place when nobody else holds it (else into a private copy); with
   create_graph the sum is an op. */
static int accumulate(nb_tensor *x, nb_tensor *g, bool create_graph) {
    if (!x->accum) {
        x->accum = nb__ref(g);
        return 0;
    }
    if (create_graph || !nb__sole_owner(x->accum)) { /* a recorded sum, or a private copy */
        nb_tensor *s = create_graph ? nb__ref(nb_add(x->accum, g)) : private_copy(x->accum, NB__OP_ADD);
        if (!s) return -1;
        nb__unref(x->accum);
        x->accum = s;
        if (create_graph) return 0;
    }
    nb__add_inplace(x->accum, g);
    return 0;
}

/* After a sweep: drops the accumulators left and the sweep's marks.  A sweep
   that succeeded left them on the results only; one that failed may have
   left them anywhere in the order. */
static void clear_sweep(const walk_result *w, bool failed) {
    nb_tensor **list = failed ? w->order : w->results;
    size_t n = failed ? w->n : w->nresults;
    for (size_t k = 0; k < n; k++) {
        nb_tensor *x = list[k];
        nb__unref(x->accum);
        x->accum = NULL;
        x->flags &= (uint8_t)~(NB__TARGET | NB__REACH);
    }
}

/* One node's turn in a sweep: offers buffers, runs x's rule on its gradient
   (x->accum) for the inputs in need[], then un-broadcasts the results and
   adds them into the inputs' accumulators.  keep_x: x keeps its accumulator
   afterwards (so the rule may not overwrite it).  Inputs whose accumulator
   this creates are listed in fresh[] (*nfresh of them). */
static int backprop(nb__thread_state *T, nb_tensor *x, const bool *need, bool create_graph,
                    bool keep_x, nb_tensor **fresh, int *nfresh) {
    nb_tensor *const *in = nb__inputs(x);
    nb_tensor *gin[NB__MAX_INPUTS], *acc[NB__MAX_INPUTS]; /* (the first nin are used) */
    bool done[NB__MAX_INPUTS];
    *nfresh = 0;
    if (atomic_load_explicit(&nb__mutated, memory_order_relaxed) && !nb__versions_hold(x, in) &&
        nb__check_versions(x, in))
        return -1;
    nb__rule r = {x, in, x->accum, create_graph, need, gin, NULL, acc, done};
    if (!create_graph && !T->mode.anomaly) { /* the plain sweep's shortcuts */
        for (int i = 0; i < x->nin; i++) {
            nb_tensor *a = in[i]->accum;
            gin[i] = NULL;
            done[i] = false;
            acc[i] = need[i] && a && nb__sole_owner(a) ? a : NULL;
        }
        if (!keep_x && nb__sole_owner(x->accum)) r.writable = x->accum;
    } else {
        for (int i = 0; i < x->nin; i++) {
            gin[i] = acc[i] = NULL;
            done[i] = false;
        }
    }
    size_t mark = T->pool.len;
    T->mode.in_rule = true;
    int rc = nb__ops[x->op].vjp(&r);
    T->mode.in_rule = false;
    for (int i = 0; i < x->nin && rc == 0; i++) {
        if (!need[i] || done[i]) continue;
        nb_tensor *g = gin[i];
        if (!g) {
            rc = -1;
            break;
        }
        if (!nb__same_shape(g, in[i])) {
            g = nb_sum_to(g, in[i]->ndim, in[i]->shape); /* un-broadcast */
            if (!g) {
                rc = -1;
                break;
            }
            if (!nb__same_shape(g, in[i])) { /* the assignment's invariant, checked every time */
                char s1[NB__SHAPE_BUF], s2[NB__SHAPE_BUF];
                nb__err("backward: internal error: the gradient of input %d of %s has shape %s, "
                        "not %s", i + 1, nb_name(x), nb__shape_str(g->ndim, g->shape, s1, sizeof s1),
                        nb__shape_str(in[i]->ndim, in[i]->shape, s2, sizeof s2));
                rc = -1;
                break;
            }
        }
        int64_t bad = T->mode.anomaly ? nb__first_nonfinite(g) : -1;
        if (bad >= 0) {
            nb__err("anomaly: backward of %s produced %s in the gradient of input %d "
                    "(%s) at element %lld", nb_name(x), isnan(g->data[bad]) ? "NaN" : "inf",
                    i + 1, nb_name(in[i]), (long long)bad);
            rc = -1;
            break;
        }
        if (!in[i]->accum) { /* the first contribution: just hold it */
            in[i]->accum = nb__ref(g);
            fresh[(*nfresh)++] = in[i];
        } else {
            rc = accumulate(in[i], g, create_graph);
        }
    }
    while (T->pool.len > mark) nb__scope_pop(T); /* the rule's scope */
    return rc;
}

/* Checks a root's seed and starts its accumulator with it (NULL: ones). */
static int seed_root(const char *who, nb_tensor *root, nb_tensor *seed, bool create_graph) {
    if (seed && !nb__same_shape(seed, root)) {
        char s1[NB__SHAPE_BUF], s2[NB__SHAPE_BUF];
        nb__err("%s: seed of shape %s does not match the output's shape %s", who,
                nb__shape_str(seed->ndim, seed->shape, s1, sizeof s1),
                nb__shape_str(root->ndim, root->shape, s2, sizeof s2));
        return -1;
    }
    if (!seed && !(seed = nb__const_like(root, 1.0))) return -1;
    return accumulate(root, seed, create_graph);
}

/* nb_autograd's sweep from roots with their seeds (NULL: ones) in the walk's
   order.  On return (0 or -1) the results still hold their accumulators:
   the caller reads what it needs, then calls clear_sweep(). */
static int sweep(int nroots, nb_tensor *const *roots, nb_tensor *const *seeds, bool create_graph,
                 walk_result *w) {
    nb__thread_state *T = nb__thread();
    if (walk(nroots, roots, w) != 0) return -1;
    for (int r = 0; r < nroots; r++)
        if ((roots[r]->flags & NB__REQ) &&
            seed_root("autograd", roots[r], seeds ? seeds[r] : NULL, create_graph) != 0)
            return -1;
    bool saved = T->mode.grad_disabled, saved_quiet = T->mode.quiet_names;
    T->mode.grad_disabled = !create_graph;
    T->mode.quiet_names = !create_graph;
    int rc = 0;
    for (size_t k = w->n; k-- > 0 && rc == 0;) {
        nb_tensor *x = w->order[k];
        if (!x->accum || !(x->flags & NB__REACH)) goto drop;
        nb_tensor *const *in = nb__inputs(x);
        bool need[NB__MAX_INPUTS], any = false;
        for (int i = 0; i < x->nin; i++)
            any |= need[i] = (in[i]->flags & (NB__REQ | NB__REACH)) == (NB__REQ | NB__REACH);
        nb_tensor *fresh[NB__MAX_INPUTS];
        int nfresh;
        if (any) rc = backprop(T, x, need, create_graph, keeps_accum(x), fresh, &nfresh);
    drop:
        if (!keeps_accum(x)) {
            nb__unref(x->accum);
            x->accum = NULL;
        }
    }
    T->mode.grad_disabled = saved;
    T->mode.quiet_names = saved_quiet;
    return rc;
}

/* ---- nb_backward's order: no walk ------------------------------------------------
 * Every recorded node's seq is larger than its recorded parents' (nb__link),
 * so running the nodes that hold a gradient in decreasing seq order runs
 * each after every node that can still send it one (all were made after
 * it).  A max-heap keyed by seq holds the interior nodes whose gradient has
 * begun to arrive; each enters once, when its accumulator is created. */
static inline void heap_push(nb__thread_state *T, size_t *n, nb_tensor *x) { /* room made by the caller */
    size_t i = (*n)++;
    while (i > 0) { /* sift up */
        size_t up = (i - 1) / 2;
        if (T->sweep.heap[up]->seq >= x->seq) break;
        T->sweep.heap[i] = T->sweep.heap[up];
        i = up;
    }
    T->sweep.heap[i] = x;
}

static inline nb_tensor *heap_pop(nb__thread_state *T, size_t *n) {
    nb_tensor **h = T->sweep.heap;
    if (*n == 1) return h[--*n]; /* a chain: one node waits at a time */
    nb_tensor *top = h[0], *last = h[--*n];
    size_t i = 0, m = *n;
    for (;;) { /* sift down */
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && h[c + 1]->seq > h[c]->seq) c++;
        if (h[c]->seq <= last->seq) break;
        h[i] = h[c];
        i = c;
    }
    if (m) h[i] = last;
    return top;
}

/* A node that has just received its first gradient: leaves and retained
   tensors keep it (results), interior nodes wait for their turn (heap).
   All or nothing: -1 (no memory) leaves x in neither list. */
static inline int arrived(nb__thread_state *T, nb_tensor *x, size_t *nheap, size_t *nresults) {
    bool result = x->nin == 0 || (x->flags & NB__RETAIN_GRAD);
    if (x->nin && *nheap == T->sweep.heap_cap &&
        nb__grow((void **)&T->sweep.heap, &T->sweep.heap_cap, *nheap + 1, sizeof *T->sweep.heap))
        return -1;
    if (result && push_result(T, nresults, x)) return -1;
    if (x->nin) heap_push(T, nheap, x);
    return 0;
}

/* nb_backward's sweep from root with seed (NULL: ones).  On return (0 or -1)
   w->results lists the nodes still holding accumulators, as after sweep(). */
static int sweep_backward(nb_tensor *root, nb_tensor *seed, walk_result *w) {
    nb__thread_state *T = nb__thread();
    size_t nheap = 0, nresults = 0;
    w->order = NULL;
    w->n = 0;
    int rc = seed_root("backward", root, seed, false);
    if (rc == 0 && (rc = arrived(T, root, &nheap, &nresults)) != 0) {
        nb__unref(root->accum);
        root->accum = NULL;
    }
    bool saved = T->mode.grad_disabled, saved_quiet = T->mode.quiet_names;
    T->mode.grad_disabled = true;
    T->mode.quiet_names = true;
    while (nheap && rc == 0) {
        nb_tensor *x = heap_pop(T, &nheap);
        nb_tensor *const *in = nb__inputs(x);
        bool need[NB__MAX_INPUTS], any = false;
        for (int i = 0; i < x->nin; i++) any |= need[i] = (in[i]->flags & NB__REQ) != 0;
        nb_tensor *fresh[NB__MAX_INPUTS];
        int nfresh = 0;
        bool keep = (x->flags & NB__RETAIN_GRAD) != 0;
        if (any) rc = backprop(T, x, need, false, keep, fresh, &nfresh);
        for (int i = 0; i < nfresh; i++) {
            if (rc == 0) rc = arrived(T, fresh[i], &nheap, &nresults);
            if (rc != 0) { /* in neither list: drop it here */
                nb__unref(fresh[i]->accum);
                fresh[i]->accum = NULL;
            }
        }
        if (!keep) {
            nb__unref(x->accum);
            x->accum = NULL;
        }
    }
    while (nheap) { /* after a failure: the nodes still waiting drop what they had */
        nb_tensor *x = heap_pop(T, &nheap);
        if (!(x->flags & NB__RETAIN_GRAD)) {
            nb__unref(x->accum);
            x->accum = NULL;
        }
    }
    T->mode.grad_disabled = saved;
    T->mode.quiet_names = saved_quiet;
    w->results = T->sweep.results;
    w->nresults = nresults;
    return rc;
}

/* after a sweep: does x store the gradient it received? (leaves, and
   interior tensors marked by nb_retain_grad) */
static bool stores_grad(const nb_tensor *x) {
    return x->accum && (x->flags & NB__REQ) && (x->nin == 0 || (x->flags & NB__RETAIN_GRAD));
}

int nb_backward(nb_tensor *t, const nb_tensor *seed) {
    nb_tensor *args[2] = {t, (nb_tensor *)seed};
    if (nb__null_args("backward", seed ? 2 : 1, args)) return -1;
    /* a NULL seed: maybe an expression failed after t */
    if (!seed && nb__null_while_pending("backward", "seed", "to backpropagate ones", t->seq)) return -1;
    if (!(t->flags & NB__REQ))
        return nb__err("backward: %s does not require grad (made with grad disabled, or from "
                       "tensors that do not require grad)", nb_name(t)) ? 0 : -1;
    size_t mark = nb_scope_begin();
    walk_result w = {0};
    int rc = sweep_backward(t, (nb_tensor *)seed, &w);
    /* Deliver into the leaves in two phases, so that a failure changes no
       stored gradient: first make each new gradient private, then commit. */
    for (size_t k = 0; k < w.nresults && rc == 0; k++) {
        nb_tensor *x = w.results[k];
        if (!stores_grad(x) || x->grad) continue;
        if (!nb__sole_owner(x->accum) || x->accum->nin) {
            nb_tensor *c = private_copy(x->accum, NB__OP_IN);
            if (!c) {
                rc = -1;
                break;
            }
            nb__unref(x->accum);
            x->accum = c;
        }
    }
    for (size_t k = 0; k < w.nresults && rc == 0; k++) {
        nb_tensor *x = w.results[k];
        if (!stores_grad(x)) continue;
        if (x->grad) { /* in place: a graph that read it through nb_grad is stale */
            nb__add_inplace(x->grad, x->accum);
            nb__bump_grad(x->grad);
        } else { /* the private accumulator becomes the gradient */
            x->grad = x->accum;
            x->accum = NULL;
            x->grad->flags &= NB__HAS_AUX;
            nb__name_as_grad(x->grad, x);
        }
    }
    clear_sweep(&w, false); /* (sweep_backward drops the rest itself) */
    nb_scope_end(mark);
    return rc;
}

int nb_autograd(int n_out, nb_tensor *const *outputs, nb_tensor *const *seeds, int n_in,
                nb_tensor *const *inputs, nb_tensor **grads, bool create_graph) {
    if (n_out < 1 || n_in < 1 || !outputs || !inputs || !grads) {
        nb__err("autograd: needs at least one output, one input and a grads array "
                "(got %d outputs, %d inputs)", n_out, n_in);
        return -1;
    }
    for (int i = 0; i < n_in; i++) grads[i] = NULL;
    if (nb__null_args("autograd", n_out, outputs) || nb__null_args("autograd", n_in, inputs))
        return -1;
    for (int j = 0; seeds && j < n_out; j++) {
        char s1[NB__SHAPE_BUF], s2[NB__SHAPE_BUF];
        if (seeds[j] && nb__is_dead(seeds[j])) {
            nb__err("autograd: seed %d was already released (used after its scope ended, or "
                    "released more often than retained)", j + 1);
            return -1;
        }
        if (!seeds[j] || !nb__same_shape(seeds[j], outputs[j])) {
            if (!seeds[j]) nb__err("autograd: NULL seed for output %d", j + 1);
            else nb__err("autograd: seed %d has shape %s but output %d has shape %s", j + 1,
                         nb__shape_str(seeds[j]->ndim, seeds[j]->shape, s1, sizeof s1), j + 1,
                         nb__shape_str(outputs[j]->ndim, outputs[j]->shape, s2, sizeof s2));
            return -1;
        }
    }
    for (int i = 0; i < n_in; i++) inputs[i]->flags |= NB__TARGET;
    size_t mark = nb_scope_begin();
    walk_result w = {0};
    int rc = sweep(n_out, outputs, seeds, create_graph, &w);
    nb_tensor *res[64], **keep = n_in <= 64 ? res : nb__malloc((size_t)n_in * sizeof *keep);
    if (!keep) rc = -1;
    for (int i = 0; rc == 0 && i < n_in; i++) {
        nb_tensor *x = inputs[i];
        keep[i] = (x->flags & NB__REACH) && x->accum ? nb__ref(x->accum) : NULL;
    }
    /* inputs the walk never reached are in neither list: clear them here */
    for (int i = 0; i < n_in; i++) inputs[i]->flags &= (uint8_t)~(NB__TARGET | NB__REACH);
    clear_sweep(&w, rc != 0);
    nb_scope_end(mark);
    if (!keep) return -1;
    if (rc != 0)
        for (int i = 0; i < n_in; i++) keep[i] = NULL; /* (none was taken) */
    for (int i = 0; i < n_in; i++) { /* hand the results to the caller's scope */
        if (rc == 0) {
            grads[i] = keep[i] ? nb__pool(keep[i]) : nb__const_like(inputs[i], 0.0);
            if (!grads[i]) rc = -1;
        } else {
            nb__unref(keep[i]);
        }
    }
    if (rc != 0)
        for (int i = 0; i < n_in; i++) grads[i] = NULL;
    if (keep != res) nb__free(keep);
    return rc;
}
