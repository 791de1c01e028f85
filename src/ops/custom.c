/*
 * Custom operations: a user's op defined by callbacks (nabla.h, "Custom
 * operations"), like PyTorch's autograd.Function.  A node of op CUSTOM keeps
 * its nb_function, the user's state and the saved tensors in its side
 * record (tensor.h: nb__aux), which dies with the node: the saved tensors
 * are released and the state's destructor runs exactly once.
 *
 * The per-application context the callbacks see is the node itself: during
 * forward an unrecorded placeholder node, afterwards the recorded output.
 */
#include "engine.h"

#include <stdlib.h>
#include <string.h>

struct nb_ctx { /* (never defined: an nb_ctx * is the node's nb_tensor *) */
    int unused;
};
static nb_tensor *node_of(const nb_ctx *c) { return (nb_tensor *)(void *)(uintptr_t)c; }
static nb_ctx *ctx_of(nb_tensor *t) { return (nb_ctx *)(void *)t; }

/* ---- names: "<name>:<k>", a counter per name and thread ------------------------------ */
typedef struct nb__custom_names {
    size_t n, cap;
    struct entry {
        char *name;
        uint32_t count;
    } *e;
} custom_names;

static uint32_t *counter(const char *name) {
    nb__thread_state *T = nb__thread();
    for (int i = 0; i < NB__OP_COUNT; i++) /* the library's own ops: the NameManager's */
        if (strcmp(nb__op_names[i], name) == 0) return &T->counts[i];
    custom_names *c = T->custom_names;
    for (size_t i = 0; c && i < c->n; i++)
        if (strcmp(c->e[i].name, name) == 0) return &c->e[i].count;
    if (!c) { /* the first custom name of this thread: a fresh, empty table */
        if (!(c = T->custom_names = nb__malloc(sizeof *c))) return NULL;
        *c = (custom_names){0, 0, NULL};
    }
    if (c->n == c->cap && nb__grow((void **)&c->e, &c->cap, c->n + 1, sizeof *c->e)) return NULL;
    size_t len = strlen(name);
    char *copy = nb__malloc(len + 1);
    if (!copy) return NULL;
    memcpy(copy, name, len + 1);
    c->e[c->n] = (struct entry){copy, 0};
    return &c->e[c->n++].count;
}

int64_t nb_names_next(const char *name) {
    if (!name || !*name) {
        nb__err("names_next: %s name", name ? "empty" : "NULL");
        return -1;
    }
    uint32_t *k = counter(name);
    return k ? (int64_t)(*k)++ : -1;
}

void nb__custom_names_free(void) {
    custom_names *c = nb__thread()->custom_names;
    if (!c) return;
    for (size_t i = 0; i < c->n; i++) free(c->e[i].name);
    free(c->e);
    free(c);
    nb__thread()->custom_names = NULL;
}

/* ---- the context -------------------------------------------------------------------- */
#define MAX_SAVED 16

int nb_ctx_save(nb_ctx *ctx, int n, nb_tensor *const *ts) {
    nb_tensor *node = ctx ? node_of(ctx) : NULL;
    if (!node || n < 0 || (n > 0 && !ts)) {
        nb__err("ctx_save: needs a context and %d tensors", n);
        return -1;
    }
    nb__aux *a = node->aux;
    int first = node->p.i[0] > NB__MAX_IN ? node->p.i[0] : 0, have = a->nheld - first;
    for (int i = 0; i < n; i++) {
        if (!ts[i]) {
            if (!nb__thread()->error.set) nb__err("ctx_save: NULL tensor %d", i + 1);
            return -1;
        }
        if (nb__dead_arg("ctx_save", ts[i])) return -1;
        int slot = -1;
        for (int k = first; k < first + MAX_SAVED; k++)
            if (!a->held[k]) {
                slot = k;
                break;
            }
        if (slot < 0) {
            nb__err("ctx_save: %s can save at most %d tensors", a->name, MAX_SAVED);
            return -1;
        }
        a->held[slot] = nb__ref(ts[i]);
    }
    (void)have;
    return 0;
}

int nb_ctx_num_saved(const nb_ctx *ctx) {
    if (!ctx) return 0;
    nb_tensor *node = node_of(ctx);
    int first = node->p.i[0] > NB__MAX_IN ? node->p.i[0] : 0, n = 0;
    while (n < MAX_SAVED && node->aux->held[first + n]) n++;
    return n;
}

nb_tensor *nb_ctx_saved(const nb_ctx *ctx, int i) {
    if (!ctx || i < 0 || i >= nb_ctx_num_saved(ctx)) return NULL;
    nb_tensor *node = node_of(ctx);
    return node->aux->held[(node->p.i[0] > NB__MAX_IN ? node->p.i[0] : 0) + i];
}

bool nb_ctx_needs_grad(const nb_ctx *ctx, int i) {
    if (!ctx) return false;
    nb_tensor *node = node_of(ctx);
    const bool *need = (const bool *)node->aux->data;
    return i >= 0 && i < (int)node->p.i[0] && need[i];
}

void *nb_ctx_state(const nb_ctx *ctx) { return ctx ? node_of(ctx)->aux->state : NULL; }

int nb_ctx_num_inputs(const nb_ctx *ctx) { return ctx ? node_of(ctx)->p.i[0] : 0; }

/* ---- apply ------------------------------------------------------------------------------- */
/* The node's record: need[] flags in data, then (inputs past NB__MAX_IN and)
   MAX_SAVED slots for saved tensors in held. */
static nb__aux *record(nb_tensor *node, const nb_function *fn, int n) {
    int extra = n > NB__MAX_IN ? n : 0;
    nb__aux *a = nb__aux_of(node, (size_t)NB__MAX_INPUTS, extra + MAX_SAVED);
    if (!a) return NULL;
    a->fn = fn;
    return a;
}

nb_tensor *nb_apply(const nb_function *fn, int n, nb_tensor *const *inputs, void *state,
                    void (*free_state)(void *state)) {
    const char *who = fn && fn->name && *fn->name ? fn->name : "apply";
    if (!fn || !fn->name || !*fn->name || !fn->forward || !fn->backward || n < 0 ||
        n > NB__MAX_INPUTS || (n > 0 && !inputs)) {
        nb__err("apply: needs a function with a name, a forward and a backward, and 0 to %d "
                "inputs (got %d)", NB__MAX_INPUTS, n);
        goto fail;
    }
    if (n > 0 && nb__null_args(who, n, inputs)) goto fail;
    /* the context during forward: a placeholder node holding the record */
    nb_tensor *ctxnode = nb__alloc(who, 0, NULL);
    nb__aux *a = ctxnode ? record(ctxnode, fn, n) : NULL;
    if (!a) {
        nb__unref(ctxnode);
        goto fail;
    }
    ctxnode->op = NB__OP_CUSTOM;
    ctxnode->p.i[0] = n;
    a->state = state; /* the record owns the state from here on */
    a->destroy = free_state;
    bool *need = (bool *)a->data;
    bool recording = nb_is_grad_enabled();
    for (int i = 0; i < n; i++) need[i] = recording && (inputs[i]->flags & NB__REQ);
    size_t mark = nb_scope_begin();
    bool prev = nb_set_grad_enabled(false);
    nb_tensor *y = fn->forward(ctx_of(ctxnode), n, inputs);
    nb_set_grad_enabled(prev);
    nb_tensor *out = y ? nb__alloc(who, y->ndim, y->shape) : NULL;
    if (!y && !nb__thread()->error.set) nb__err("%s: forward returned NULL", who);
    if (out && out->numel) memcpy(out->data, y->data, (size_t)y->numel * sizeof(double));
    nb_scope_end(mark);
    if (out) { /* the output takes the record over, then records its inputs */
        out->aux = a;
        out->flags |= NB__HAS_AUX;
        ctxnode->aux = NULL;
        ctxnode->flags &= (uint8_t)~NB__HAS_AUX;
        out->p.i[0] = n;
        if (!nb__link(out, NB__OP_CUSTOM, n, inputs)) out = NULL; /* (released it) */
    }
    nb__unref(ctxnode);
    if (!out) return NULL;
    int64_t k = nb_names_next(fn->name);
    snprintf(a->name, sizeof a->name, "%s:%lld", fn->name, (long long)(k < 0 ? 0 : k));
    out->name_kind = NB__NAME_AUX;
    return nb__finish(out, n, inputs);
fail:
    if (free_state) free_state(state);
    return NULL;
}

/* ---- rules ------------------------------------------------------------------------------ */
int nb__vjp_custom(nb__rule *r) {
    nb_tensor *out = r->out;
    const nb_function *fn = out->aux->fn;
    int n = out->nin;
    for (int i = 0; i < n; i++) r->gin[i] = NULL;
    bool *need = (bool *)out->aux->data;
    for (int i = 0; i < n; i++) need[i] = r->need[i];
    if (fn->backward(ctx_of(out), r->g, r->gin) != 0) {
        if (!nb__thread()->error.set) nb__err("%s: backward failed", out->aux->name);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        nb_tensor *g = r->gin[i], *x = r->in[i];
        if (!r->need[i]) {
            r->gin[i] = NULL; /* (a gradient nobody asked for is dropped) */
            continue;
        }
        if (!g) { /* no gradient for this input: zeros */
            if (!(r->gin[i] = nb__const_like(x, 0.0))) return -1;
            continue;
        }
        int nd;
        int64_t bs[NB_MAX_DIMS];
        bool ok = nb__same_shape(g, x) ||
                  (nb__broadcast_shape(g->ndim, g->shape, x->ndim, x->shape, &nd, bs) &&
                   nd == g->ndim && memcmp(bs, g->shape, (size_t)nd * sizeof *bs) == 0);
        if (!ok) {
            char s1[NB__SHAPE_BUF], s2[NB__SHAPE_BUF];
            nb__err("%s: backward returned a gradient of shape %s for input %d of shape %s",
                    out->aux->name, nb__shape_str(g->ndim, g->shape, s1, sizeof s1), i + 1,
                    nb__shape_str(x->ndim, x->shape, s2, sizeof s2));
            return -1;
        }
    }
    return 0;
}

nb_tensor *nb__jvp_custom(nb_tensor *out, nb_tensor *const *in, nb_tensor *const *tin) {
    const nb_function *fn = out->aux->fn;
    if (!fn->jvp)
        return nb__err("%s: forward mode needs a jvp callback, and this custom op has none",
                       out->aux->name);
    nb_tensor *t = fn->jvp(ctx_of(out), out->p.i[0], tin);
    if (!t && !nb__thread()->error.set) nb__err("%s: jvp returned NULL", out->aux->name);
    if (t && !nb__same_shape(t, out)) {
        char s1[NB__SHAPE_BUF], s2[NB__SHAPE_BUF];
        return nb__err("%s: jvp returned a tangent of shape %s for an output of shape %s",
                       out->aux->name, nb__shape_str(t->ndim, t->shape, s1, sizeof s1),
                       nb__shape_str(out->ndim, out->shape, s2, sizeof s2));
    }
    return t;
}
