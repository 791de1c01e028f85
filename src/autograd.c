/*
 * The engine: recording (nb__node / nb__finish), the topological order, the
 * backward sweep, nb_autograd for higher order, and forward mode.
 *
 *   record:  every op calls nb__node(), which links the inputs when grad is
 *            enabled and one of them requires grad and stamps the output with
 *            a sequence number above its parents' (nb__link), then
 *            nb__finish(), which propagates tangents (forward mode) and pools
 *            the result.
 *   order:   nb_backward runs the nodes holding a gradient in decreasing
 *            sequence order from a max-heap (sweep_backward); nb_autograd,
 *            which must also know which nodes lead to its inputs, uses walk(),
 *            an iterative depth-first search whose post-order puts every node
 *            after all of its parents (sweep).
 *   sweep:   each node's gradient is complete when its turn comes; its VJP
 *            rule gives the inputs' gradients (backprop), which the engine
 *            sums back over broadcast axes and adds into the inputs'
 *            accumulators.  Nothing recurses on graph depth.
 */
#include "internal.h"

#include <math.h>
#include <string.h>

/* ---- the op table, generated from ops.def ---------------------------------- */
const nb__opdef nb__ops[NB__OP_COUNT] = {
#define NB_LEAF(ID, nm) [NB__OP_##ID] = {#nm, 0, NULL, NULL},
#define NB_OP(ID, nm, ar) [NB__OP_##ID] = {#nm, ar, nb__vjp_##nm, nb__jvp_##nm},
#include "ops.def"
#undef NB_LEAF
#undef NB_OP
};

/* ---- recording ------------------------------------------------------------- */
bool nb_set_grad_enabled(bool on) {
    nb__tls *T = nb__T();
    bool prev = !T->grad_disabled;
    T->grad_disabled = !on;
    return prev;
}

bool nb_is_grad_enabled(void) { return !nb__T()->grad_disabled; }


nb_tensor *nb__node(nb__op op, int ndim, const int64_t *shape, int nin, nb_tensor *const *in) {
    nb_tensor *t = nb__alloc(nb__ops[op].name, ndim, shape);
    return t ? nb__link(t, op, nin, in) : NULL;
}

atomic_bool nb__duals_made;

nb_tensor *nb__finish_slow(nb_tensor *out, int nin, nb_tensor *const *in) {
    nb__tls *T = nb__T();
    if (atomic_load_explicit(&nb__duals_made, memory_order_relaxed) && !T->fwd_suspended) {
        nb_tensor *tin[NB__MAX_IN] = {0};
        bool any = false;
        for (int i = 0; i < nin; i++) {
            tin[i] = in[i]->tangent;
            any |= tin[i] != NULL;
        }
        if (any) {
            /* a JVP rule's own ops carry no tangents: no forward-over-forward */
            T->fwd_suspended = true;
            nb_tensor *tan = nb__ops[out->op].jvp(out, in, tin);
            T->fwd_suspended = false;
            if (tan && !nb__same_shape(tan, out)) {
                char s1[NB__SHAPE_BUF], s2[NB__SHAPE_BUF];
                tan = nb__err("%s: internal error: tangent of shape %s for an output of shape %s",
                              nb__ops[out->op].name, nb__shape_str(tan->ndim, tan->shape, s1, sizeof s1),
                              nb__shape_str(out->ndim, out->shape, s2, sizeof s2));
            }
            if (!tan) {
                nb__unref(out);
                return NULL;
            }
            out->tangent = nb__ref(tan);
        }
    }
    if (T->anomaly && !T->in_rule && !nb__check_finite(out, "forward")) {
        nb__unref(out);
        return NULL;
    }
    return nb__pool(out);
}

nb_tensor *nb__plain(nb__op op, const nb_tensor *like) {
    nb_tensor *t = nb__alloc_like(nb__ops[op].name, like);
    if (!t) return NULL;
    t->op = (uint16_t)op;
    nb__name(t, op);
    return nb__pool(t);
}

nb_tensor *nb_detach(nb_tensor *a) {
    if (nb__null_args("detach", 1, &a)) return NULL;
    nb_tensor *t = nb__plain(NB__OP_DETACH, a);
    if (t && t->numel) memcpy(t->data, a->data, (size_t)a->numel * sizeof(double));
    return t;
}

/* ---- forward mode ------------------------------------------------------------ */
nb_tensor *nb_dual(nb_tensor *primal, nb_tensor *tangent) {
    nb_tensor *args[2] = {primal, tangent};
    if (nb__null_args("dual", 2, args)) return NULL;
    if (!nb__same_shape(primal, tangent)) {
        char s1[NB__SHAPE_BUF], s2[NB__SHAPE_BUF];
        return nb__err("dual: tangent shape %s does not match primal shape %s",
                       nb__shape_str(tangent->ndim, tangent->shape, s1, sizeof s1),
                       nb__shape_str(primal->ndim, primal->shape, s2, sizeof s2));
    }
    nb_tensor *t = nb__node(NB__OP_DUAL, primal->ndim, primal->shape, 1, &primal);
    if (!t) return NULL;
    if (t->numel) memcpy(t->data, primal->data, (size_t)t->numel * sizeof(double));
    atomic_store(&nb__duals_made, true);
    t->tangent = nb__ref(tangent);
    return nb__pool(t);
}

int nb__vjp_dual(nb_tensor *out, nb_tensor *g, bool cg, const bool *need, nb_tensor **gin) {
    gin[0] = g;
    return 0;
}
nb_tensor *nb__jvp_dual(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin) {
    return tin[0];
}

/* ---- nb_autograd's topological order ------------------------------------------
 * Iterative post-order DFS over the parents that require grad.  Marks come
 * from a global epoch so that walks never need clearing.  REACH is set on a
 * node when a TARGET lies upstream of it (or it is one); it is recomputed for
 * every node a walk visits, and read only for nodes the same walk visited.
 *
 * The walk also lists the nodes that will still hold their accumulator when
 * the sweep is over ("held": its targets and interior tensors with
 * retain_grad), so that reading the results and clearing up
 * touch those few nodes only, not the whole graph. */
static _Atomic uint32_t walk_epoch;

typedef struct {
    nb_tensor **order; /* T->order: every node after all of its parents */
    size_t n;
    nb_tensor **held;  /* T->held */
    size_t nheld;
} walk_result;

static bool holds(const nb_tensor *x) { return (x->flags & (NB__TARGET | NB__KEEP)) != 0; }

/* Marks x visited and pushes it; -1 when memory runs out. */
static inline __attribute__((always_inline)) int push(nb__tls *T, size_t sp, nb_tensor *x,
                                                       uint32_t epoch) {
    if (sp + 1 > T->stack_cap) {
        size_t cap = T->stack_cap;
        if (nb__grow((void **)&T->stack, &cap, sp + 1, sizeof *T->stack) ||
            nb__grow((void **)&T->stack_i, &T->stack_cap, sp + 1, sizeof *T->stack_i))
            return -1;
    }
    x->visit = epoch;
    /* a node starts out reaching a target if it is one */
    bool target = (x->flags & NB__TARGET) != 0;
    x->flags = (uint8_t)((x->flags & ~NB__REACH) | (target ? NB__REACH : 0));
    T->stack[sp] = x;
    T->stack_i[sp] = 0;
    return 0;
}

static int walk(int nroots, nb_tensor *const *roots, walk_result *w) {
    nb__tls *T = nb__T();
    uint32_t epoch = atomic_fetch_add(&walk_epoch, 1) + 1;
    if (epoch == 0) epoch = atomic_fetch_add(&walk_epoch, 1) + 1;
    size_t n = 0, nheld = 0, sp = 0;
    w->n = w->nheld = 0;
    for (int r = 0; r < nroots; r++) {
        if (roots[r]->visit == epoch) continue;
        if (push(T, sp++, roots[r], epoch)) return -1;
        while (sp) {
            nb_tensor *x = T->stack[sp - 1];
            int i = T->stack_i[sp - 1];
            if (i < x->nin) {
                T->stack_i[sp - 1] = i + 1;
                nb_tensor *p = x->in[i];
                if (!(p->flags & NB__REQ) || p->visit == epoch) continue;
                if (push(T, sp++, p, epoch)) return -1;
                continue;
            }
            /* all parents done: x is finished */
            sp--;
            for (int k = 0; k < x->nin; k++)
                if ((x->in[k]->flags & (NB__REQ | NB__REACH)) == (NB__REQ | NB__REACH))
                    x->flags |= NB__REACH; /* a REQ parent was visited by this walk */
            if (n == T->order_cap && nb__grow((void **)&T->order, &T->order_cap, n + 1, sizeof *T->order))
                return -1;
            T->order[n++] = x;
            if (holds(x)) {
                if (nheld == T->held_cap &&
                    nb__grow((void **)&T->held, &T->held_cap, nheld + 1, sizeof *T->held))
                    return -1;
                T->held[nheld++] = x;
            }
            w->n = n;
            w->nheld = nheld;
        }
    }
    w->order = T->order;
    w->held = T->held;
    return 0;
}

/* An unpooled copy of t's values that nobody else holds (so it may be
   added into in place), or NULL when memory runs out. */
static nb_tensor *private_copy(const nb_tensor *t) {
    nb_tensor *c = nb__alloc_like("backward", t);
    if (c) memcpy(c->data, t->data, (size_t)c->numel * sizeof(double));
    return c;
}

/* dst's accumulator += g.  In a plain sweep the accumulator is added into in
   place when nobody else holds it; with create_graph the sum is an op. */
static int accumulate(nb_tensor *x, nb_tensor *g, bool create_graph) {
    if (!x->gacc) {
        x->gacc = nb__ref(g);
        return 0;
    }
    if (create_graph) {
        nb_tensor *s = nb_add(x->gacc, g);
        if (!s) return -1;
        nb__unref(x->gacc);
        x->gacc = nb__ref(s);
        return 0;
    }
    if (x->gacc->refcount == 1 && !(x->gacc->flags & NB__EXTERN)) {
        nb__add_inplace(x->gacc, g);
        return 0;
    }
    nb_tensor *s = private_copy(x->gacc);
    if (!s) return -1;
    s->op = s->name_op = NB__OP_ADD;
    nb__add_inplace(s, g);
    nb__unref(x->gacc);
    x->gacc = s;
    return 0;
}

/* After a sweep: drops the accumulators left and the sweep's marks.  A sweep
   that succeeded left them on the held nodes only; one that failed may have
   left them anywhere in the order. */
static void clear_sweep(const walk_result *w, bool failed) {
    nb_tensor **list = failed ? w->order : w->held;
    size_t n = failed ? w->n : w->nheld;
    for (size_t k = 0; k < n; k++) {
        nb_tensor *x = list[k];
        nb__unref(x->gacc);
        x->gacc = NULL;
        x->flags &= (uint8_t)~(NB__TARGET | NB__REACH);
    }
}

/* One node's turn in a sweep: runs x's rule on its gradient (x->gacc) for
   the inputs in need[], and adds the results into those inputs'
   accumulators.  hold_x: x keeps its accumulator afterwards (so the rule may
   not overwrite it).  Inputs whose accumulator this creates are listed in
   fresh[] (*nfresh of them), for a caller that schedules by them. */
static int backprop(nb__tls *T, nb_tensor *x, const bool *need, bool create_graph, bool hold_x,
                    nb_tensor **fresh, int *nfresh) {
    *nfresh = 0;
    size_t mark = T->pool_len;
    nb_tensor *gin[NB__MAX_IN] = {0};
    T->in_rule = true;
    /* A gradient only this node holds, and that it drops after its rule, may
       serve as the rule's output buffer ... */
    T->donated = !create_graph && x->gacc->refcount == 1 && !(x->gacc->flags & NB__EXTERN) && !hold_x
                     ? x->gacc : NULL;
    /* ... and an input's private accumulator may take the rule's result
       directly (no temporary) */
    bool direct = !create_graph && !T->anomaly;
    for (int i = 0; i < x->nin; i++) {
        nb_tensor *acc = x->in[i]->gacc;
        T->acc_into[i] = direct && need[i] && acc && acc->refcount == 1 && !(acc->flags & NB__EXTERN)
                             ? acc : NULL;
        T->acc_done[i] = false;
    }
    int rc = nb__ops[x->op].vjp(x, x->gacc, create_graph, need, gin);
    T->donated = NULL;
    T->in_rule = false;
    for (int i = 0; i < NB__MAX_IN; i++) T->acc_into[i] = NULL;
    for (int i = 0; i < x->nin && rc == 0; i++) {
        if (!need[i] || T->acc_done[i]) continue;
        nb_tensor *in = x->in[i], *g = gin[i];
        /* unbroadcast: the engine, not the rule, sums g back to in's shape */
        if (g && !nb__same_shape(g, in)) g = nb_sum_to(g, in->ndim, in->shape);
        if (!g) {
            rc = -1;
            break;
        }
        if (!nb__same_shape(g, in)) { /* the seed's invariant, checked every time */
            char s1[NB__SHAPE_BUF], s2[NB__SHAPE_BUF];
            nb__err("backward: internal error: the gradient of input %d of %s has shape %s, "
                    "not %s", i + 1, nb_name(x), nb__shape_str(g->ndim, g->shape, s1, sizeof s1),
                    nb__shape_str(in->ndim, in->shape, s2, sizeof s2));
            rc = -1;
            break;
        }
        int64_t bad = T->anomaly ? nb__first_nonfinite(g) : -1;
        if (bad >= 0) {
            nb__err("anomaly: backward of %s produced %s in the gradient of input %d "
                    "(%s) at element %lld", nb_name(x), isnan(g->data[bad]) ? "NaN" : "inf",
                    i + 1, nb_name(in), (long long)bad);
            rc = -1;
            break;
        }
        if (!in->gacc) { /* the first contribution: just hold it */
            in->gacc = nb__ref(g);
            fresh[(*nfresh)++] = in;
        } else {
            rc = accumulate(in, g, create_graph);
        }
    }
    while (T->pool_len > mark) nb__unref(T->pool[--T->pool_len]); /* the rule's scope */
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

/* Runs the reverse sweep from roots with their seeds (NULL: ones) in the
   walk's order (nb_autograd).  On return (0 or -1) the held nodes still hold
   their accumulators: the caller reads what it needs, then calls
   clear_sweep(). */
static int sweep(const char *who, int nroots, nb_tensor *const *roots, nb_tensor *const *seeds,
                 bool create_graph, walk_result *w) {
    nb__tls *T = nb__T();
    if (walk(nroots, roots, w) != 0) return -1;
    size_t n = w->n;
    for (int r = 0; r < nroots; r++)
        if ((roots[r]->flags & NB__REQ) &&
            seed_root(who, roots[r], seeds ? seeds[r] : NULL, create_graph) != 0)
            return -1;

    bool saved = T->grad_disabled, saved_quiet = T->quiet_names;
    T->grad_disabled = !create_graph;
    T->quiet_names = !create_graph;
    int rc = 0;
    for (size_t k = n; k-- > 0 && rc == 0;) {
        nb_tensor *x = w->order[k];
        if (!x->gacc) continue;
        bool need[NB__MAX_IN] = {false};
        bool any = false;
        if (x->flags & NB__REACH)
            for (int i = 0; i < x->nin; i++) {
                need[i] = (x->in[i]->flags & (NB__REQ | NB__REACH)) == (NB__REQ | NB__REACH);
                any |= need[i];
            }
        nb_tensor *fresh[NB__MAX_IN];
        int nfresh;
        if (any) rc = backprop(T, x, need, create_graph, holds(x), fresh, &nfresh);
        if (!holds(x)) {
            nb__unref(x->gacc);
            x->gacc = NULL;
        }
    }
    T->grad_disabled = saved;
    T->quiet_names = saved_quiet;
    return rc;
}

/* ---- nb_backward's schedule: no walk ------------------------------------------
 * Every recorded node's seq is larger than its recorded parents' (nb__link),
 * so running the rules of the nodes that hold a gradient in decreasing seq
 * order runs each node after every node that can still send it one: those
 * were all made after it.  (If a child C of x were still to come when x's
 * turn came, the chain of nodes through which C's gradient would arrive
 * would start at a node still waiting, whose seq exceeds C's, which exceeds
 * x's: but x was the largest.)  A max-heap keyed by seq holds the interior
 * nodes whose gradient has begun to arrive; each enters once, when its
 * accumulator is created.  Leaves only collect.  So a backward touches each
 * node when a gradient reaches it, with no pointer-chasing walk before, and
 * no node that cannot reach a leaf needing a gradient is ever visited twice. */
static int heap_push(nb__tls *T, size_t *n, nb_tensor *x) {
    if (*n == T->heap_cap && nb__grow((void **)&T->heap, &T->heap_cap, *n + 1, sizeof *T->heap))
        return -1;
    size_t i = (*n)++;
    while (i > 0) { /* sift up */
        size_t up = (i - 1) / 2;
        if (T->heap[up]->seq >= x->seq) break;
        T->heap[i] = T->heap[up];
        i = up;
    }
    T->heap[i] = x;
    return 0;
}

static nb_tensor *heap_pop(nb__tls *T, size_t *n) {
    if (*n == 1) { /* a chain: one node waits at a time */
        *n = 0;
        return T->heap[0];
    }
    nb_tensor *top = T->heap[0], *last = T->heap[--*n];
    size_t i = 0, m = *n;
    for (;;) { /* sift down */
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && T->heap[c + 1]->seq > T->heap[c]->seq) c++;
        if (T->heap[c]->seq <= last->seq) break;
        T->heap[i] = T->heap[c];
        i = c;
    }
    if (m) T->heap[i] = last;
    return top;
}

/* Appends x to the held list (nodes that keep their accumulator). */
static int hold(nb__tls *T, size_t *nheld, nb_tensor *x) {
    if (*nheld == T->held_cap && nb__grow((void **)&T->held, &T->held_cap, *nheld + 1, sizeof *T->held))
        return -1;
    T->held[(*nheld)++] = x;
    return 0;
}

/* A node that has just received its first gradient: leaves and retained
   tensors keep it, interior nodes wait for their turn.  All or nothing: -1
   (no memory) leaves x in neither list. */
static int arrived(nb__tls *T, nb_tensor *x, size_t *nheap, size_t *nheld) {
    bool held = x->nin == 0 || (x->flags & NB__KEEP);
    if (x->nin && *nheap == T->heap_cap &&
        nb__grow((void **)&T->heap, &T->heap_cap, *nheap + 1, sizeof *T->heap))
        return -1;
    if (held && hold(T, nheld, x)) return -1;
    return x->nin ? heap_push(T, nheap, x) : 0; /* (room made above: cannot fail) */
}

/* nb_backward's sweep from root with seed (NULL: ones).  On return (0 or -1)
   w->held lists the nodes still holding accumulators, as after sweep(). */
static int sweep_backward(nb_tensor *root, nb_tensor *seed, walk_result *w) {
    nb__tls *T = nb__T();
    size_t nheap = 0, nheld = 0;
    w->order = NULL;
    w->n = 0;
    int rc = seed_root("backward", root, seed, false);
    if (rc == 0 && (rc = arrived(T, root, &nheap, &nheld)) != 0) {
        nb__unref(root->gacc);
        root->gacc = NULL;
    }
    bool saved = T->grad_disabled, saved_quiet = T->quiet_names;
    T->grad_disabled = true;
    T->quiet_names = true;
    while (nheap && rc == 0) {
        nb_tensor *x = heap_pop(T, &nheap);
        bool need[NB__MAX_IN] = {false};
        bool any = false;
        for (int i = 0; i < x->nin; i++) {
            need[i] = (x->in[i]->flags & NB__REQ) != 0;
            any |= need[i];
        }
        nb_tensor *fresh[NB__MAX_IN];
        int nfresh = 0;
        bool keep = (x->flags & NB__KEEP) != 0;
        if (any) rc = backprop(T, x, need, false, keep, fresh, &nfresh);
        for (int i = 0; i < nfresh; i++) {
            if (rc == 0) rc = arrived(T, fresh[i], &nheap, &nheld);
            if (rc != 0) { /* in neither list: drop it here */
                nb__unref(fresh[i]->gacc);
                fresh[i]->gacc = NULL;
            }
        }
        if (!keep) {
            nb__unref(x->gacc);
            x->gacc = NULL;
        }
    }
    /* after a failure: the nodes still waiting drop what they had (the held
       ones are cleared by the caller) */
    while (nheap) {
        nb_tensor *x = heap_pop(T, &nheap);
        if (!(x->flags & NB__KEEP)) {
            nb__unref(x->gacc);
            x->gacc = NULL;
        }
    }
    T->grad_disabled = saved;
    T->quiet_names = saved_quiet;
    w->held = T->held;
    w->nheld = nheld;
    return rc;
}

/* after a sweep: does x store the gradient it received? (leaves, and
   interior tensors marked by nb_retain_grad) */
static bool keeps_grad(const nb_tensor *x) {
    return x->gacc && (x->flags & NB__REQ) && (x->nin == 0 || (x->flags & NB__KEEP));
}

void nb_retain_grad(nb_tensor *t) {
    if (!t) {
        if (!nb__T()->has_error) nb__err("retain_grad: NULL argument 1");
        return;
    }
    t->flags |= NB__KEEP;
}

int nb_backward(nb_tensor *t, const nb_tensor *seed) {
    nb_tensor *args[1] = {t};
    if (nb__null_args("backward", 1, args)) return -1;
    if (!(t->flags & NB__REQ)) {
        nb__err("backward: %s does not require grad (made with grad disabled, or from "
                "tensors that do not require grad)", nb_name(t));
        return -1;
    }
    size_t mark = nb_scope_begin();
    walk_result w = {0};
    int rc = sweep_backward(t, (nb_tensor *)seed, &w);
    if (rc == 0) {
        /* Deliver into the leaves in two phases, so that a failure changes no
           stored gradient: first make each new gradient private, then commit. */
        for (size_t k = 0; k < w.nheld && rc == 0; k++) {
            nb_tensor *x = w.held[k];
            if (!keeps_grad(x) || x->grad) continue;
            if (x->gacc->refcount > 1 || (x->gacc->flags & NB__EXTERN) || x->gacc->nin) {
                nb_tensor *c = private_copy(x->gacc);
                if (!c) {
                    rc = -1;
                    break;
                }
                nb__unref(x->gacc);
                x->gacc = c;
            }
        }
        for (size_t k = 0; k < w.nheld && rc == 0; k++) {
            nb_tensor *x = w.held[k];
            if (!keeps_grad(x)) continue;
            if (x->grad) {
                nb__add_inplace(x->grad, x->gacc);
            } else {
                nb_tensor *g = x->gacc;
                x->gacc = NULL;
                g->flags = 0; /* (never external: made private above) */
                g->name_kind = NB__NAME_GRAD;
                g->name_op = x->name_op;
                g->name[0] = 0;
                x->grad = g;
            }
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
    if (seeds) {
        for (int j = 0; j < n_out; j++) {
            if (!seeds[j]) {
                nb__err("autograd: NULL seed for output %d", j + 1);
                return -1;
            }
            if (!nb__same_shape(seeds[j], outputs[j])) {
                char s1[NB__SHAPE_BUF], s2[NB__SHAPE_BUF];
                nb__err("autograd: seed %d has shape %s but output %d has shape %s", j + 1,
                        nb__shape_str(seeds[j]->ndim, seeds[j]->shape, s1, sizeof s1), j + 1,
                        nb__shape_str(outputs[j]->ndim, outputs[j]->shape, s2, sizeof s2));
                return -1;
            }
        }
    }
    for (int i = 0; i < n_in; i++) inputs[i]->flags |= NB__TARGET;
    size_t mark = nb_scope_begin();
    walk_result w = {0};
    int rc = sweep("autograd", n_out, outputs, seeds, create_graph, &w);
    nb_tensor *res[64], **keep = n_in <= 64 ? res : nb__malloc((size_t)n_in * sizeof *keep);
    if (!keep) rc = -1;
    for (int i = 0; rc == 0 && i < n_in; i++) {
        nb_tensor *x = inputs[i];
        keep[i] = (x->flags & NB__REACH) && x->gacc ? nb__ref(x->gacc) : NULL;
    }
    /* inputs the walk never reached are in neither list: clear them here */
    for (int i = 0; i < n_in; i++) inputs[i]->flags &= (uint8_t)~(NB__TARGET | NB__REACH);
    clear_sweep(&w, rc != 0);
    nb_scope_end(mark);
    if (!keep) return -1;
    if (rc != 0)
        for (int i = 0; i < n_in; i++) keep[i] = NULL;
    /* hand the results to the caller's scope */
    for (int i = 0; i < n_in; i++) {
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

/* ---- Jacobians and Hessians -----------------------------------------------------
 * nb_jacobian picks the cheaper mode: forward (one JVP per input element) when
 * x has fewer elements than f(x), reverse (one VJP per output element) else. */
/* Calls the user's f; a NULL result always comes with a message. */
static nb_tensor *call_f(const char *who, nb_fn f, nb_tensor *x, void *ctx) {
    nb_tensor *y = f(x, ctx);
    if (!y && !nb__T()->has_error) nb__err("%s: f returned NULL", who);
    return y;
}

static nb_tensor *basis(const nb_tensor *like, int64_t i) {
    nb_tensor *e = nb__const_like(like, 0.0);
    if (e) e->data[i] = 1.0;
    return e;
}

nb_tensor *nb_jacobian(nb_fn f, nb_tensor *x, void *ctx) {
    if (!f) return nb__err("jacobian: NULL function");
    if (nb__null_args("jacobian", 1, &x)) return NULL;
    size_t outer = nb_scope_begin();
    nb_tensor *xr = nb_detach(x);
    if (!xr) goto fail;
    if (xr) nb_set_requires_grad(xr, true);
    nb_tensor *y = call_f("jacobian", f, xr, ctx);
    if (!y) goto fail;
    int64_t m = y->numel, n = x->numel, shape[2] = {m, n};
    nb_tensor *J = nb__alloc("jacobian", 2, shape);
    if (!J) goto fail;
    J->op = NB__OP_IN;
    nb__name(J, NB__OP_IN);
    if (n < m) {
        for (int64_t i = 0; i < n; i++) {
            size_t mk = nb_scope_begin();
            nb_tensor *e = basis(x, i), *xd = nb_dual(nb_detach(x), e);
            nb_tensor *yi = xd ? call_f("jacobian", f, xd, ctx) : NULL;
            nb_tensor *t = yi ? nb_tangent(yi) : NULL;
            if (!t) {
                if (yi) nb__err("jacobian: f's output carries no tangent");
                nb_scope_end(mk);
                nb__unref(J);
                goto fail;
            }
            for (int64_t r = 0; r < m; r++) J->data[r * n + i] = t->data[r];
            nb_scope_end(mk);
        }
    } else if (!(y->flags & NB__REQ)) {
        memset(J->data, 0, (size_t)(m * n) * sizeof(double)); /* f does not depend on x */
    } else {
        for (int64_t r = 0; r < m; r++) {
            size_t mk = nb_scope_begin();
            nb_tensor *e = basis(y, r), *g = NULL;
            if (!e || nb_autograd(1, &y, &e, 1, &xr, &g, false) != 0) {
                nb_scope_end(mk);
                nb__unref(J);
                goto fail;
            }
            memcpy(J->data + r * n, g->data, (size_t)n * sizeof(double));
            nb_scope_end(mk);
        }
    }
    nb_scope_end(outer);
    return nb__pool(J);
fail:
    nb_scope_end(outer);
    return NULL;
}

typedef struct {
    nb_fn f;
    void *ctx;
    const char *who;
} grad_ctx;

/* x -> grad f(x), recorded (create_graph), so its Jacobian is the Hessian */
static nb_tensor *grad_of(nb_tensor *x, void *p) {
    grad_ctx *c = p;
    nb_tensor *y = call_f(c->who, c->f, x, c->ctx), *g = NULL;
    if (!y) return NULL;
    if (y->numel != 1) {
        char s[NB__SHAPE_BUF];
        return nb__err("%s: f(x) must have one element, got shape %s", c->who,
                       nb__shape_str(y->ndim, y->shape, s, sizeof s));
    }
    if (!(y->flags & NB__REQ)) return nb__const_like(x, 0.0);
    if (nb_autograd(1, &y, NULL, 1, &x, &g, true) != 0) return NULL;
    return g;
}

nb_tensor *nb_hessian(nb_fn f, nb_tensor *x, void *ctx) {
    if (!f) return nb__err("hessian: NULL function");
    if (nb__null_args("hessian", 1, &x)) return NULL;
    /* reverse over reverse: one VJP of the recorded gradient per row */
    size_t outer = nb_scope_begin();
    nb_tensor *xr = nb_detach(x);
    grad_ctx c = {f, ctx, "hessian"};
    if (xr) nb_set_requires_grad(xr, true);
    nb_tensor *g = xr ? grad_of(xr, &c) : NULL;
    if (!g) {
        nb_scope_end(outer);
        return NULL;
    }
    int64_t n = x->numel, shape[2] = {n, n};
    nb_tensor *H = nb__alloc("hessian", 2, shape);
    if (!H) {
        nb_scope_end(outer);
        return NULL;
    }
    H->op = NB__OP_IN;
    nb__name(H, NB__OP_IN);
    for (int64_t r = 0; r < n; r++) {
        size_t mk = nb_scope_begin();
        if (!(g->flags & NB__REQ)) {
            memset(H->data + r * n, 0, (size_t)n * sizeof(double));
        } else {
            nb_tensor *e = basis(g, r), *h = NULL;
            if (!e || nb_autograd(1, &g, &e, 1, &xr, &h, false) != 0) {
                nb_scope_end(mk);
                nb__unref(H);
                nb_scope_end(outer);
                return NULL;
            }
            memcpy(H->data + r * n, h->data, (size_t)n * sizeof(double));
        }
        nb_scope_end(mk);
    }
    nb_scope_end(outer);
    return nb__pool(H);
}

nb_tensor *nb_hvp(nb_fn f, nb_tensor *x, nb_tensor *v, void *ctx) {
    if (!f) return nb__err("hvp: NULL function");
    nb_tensor *args[2] = {x, v};
    if (nb__null_args("hvp", 2, args)) return NULL;
    if (!nb__same_shape(x, v)) {
        char s1[NB__SHAPE_BUF], s2[NB__SHAPE_BUF];
        return nb__err("hvp: v has shape %s but x has shape %s",
                       nb__shape_str(v->ndim, v->shape, s1, sizeof s1),
                       nb__shape_str(x->ndim, x->shape, s2, sizeof s2));
    }
    size_t outer = nb_scope_begin();
    nb_tensor *xr = nb_detach(x), *hv = NULL;
    if (xr) nb_set_requires_grad(xr, true);
    grad_ctx c = {f, ctx, "hvp"};
    nb_tensor *g = xr ? grad_of(xr, &c) : NULL;
    if (g && !(g->flags & NB__REQ)) hv = nb__const_like(x, 0.0);
    else if (g && nb_autograd(1, &g, &v, 1, &xr, &hv, false) != 0) hv = NULL;
    nb__ref(hv);
    nb_scope_end(outer);
    return nb__pool(hv);
}

/* ---- anomaly detection ---------------------------------------------------------- */
bool nb_set_anomaly_detection(bool on) {
    nb__tls *T = nb__T();
    bool prev = T->anomaly;
    T->anomaly = on;
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
