/*
 * fuzz_lifetime: libFuzzer target for the lifetime rules of nabla's memory
 * model: dead tensors, over-release, mutation after recording, and threads
 * sharing parameters through aliases.  It decodes its input into a program
 * of nabla calls and keeps a model of every tensor the program makes: who
 * holds a reference to it (its scope, the harness's nb_retain calls, the
 * children that recorded it as an input, the owner of a gradient, the
 * aliases of a tensor), its version (in-place changes) and the versions its
 * inputs had when it was recorded.  After every call it checks:
 *
 *   - nothing crashes, and ASan, UBSan and LSan report nothing;
 *   - references: every live tensor's reference count is the number of
 *     holders the model lists; a tensor dies exactly when the model says it
 *     loses its last holder, and its block is then in this thread's cache,
 *     marked dead; no block is ever in the cache twice (nothing freed twice);
 *     a live tensor's values, shape, parents, requires_grad and name never
 *     change behind the program's back;
 *   - dead tensors: a tensor whose scope ended (or that was released) and
 *     that is passed to an op, an accessor, nb_backward / nb_autograd (as a
 *     root, an input or a seed), nb_retain, nb_release or the other calls
 *     that take a tensor is refused: NULL / -1 / NaN / false and a message
 *     "<call>: ... already released ...".  The library promises this only
 *     while the tensor's block is still in the cache of the thread that
 *     freed it and marked dead (nb__is_dead), i.e. not yet reused for
 *     another tensor or side record and not handed back by nb_trim; the
 *     harness uses a dead handle only then (it walks the free list and reads
 *     the block's reference count, see below), and forgets it otherwise;
 *   - over-release: nb_release on a tensor whose only holder is its scope
 *     (the harness never retained it, nothing recorded it) is refused with
 *     "release: ... more often than it was retained ..." and changes
 *     nothing; the scope later frees it once.  (With other holders, a child
 *     say, nb_release cannot know whose reference it drops: not promised,
 *     and the harness never does that.)
 *   - mutation after recording: after a tensor's values change in place
 *     (nb_data_mut, nb_init_tensor; nb_zero_grad, nb_accumulate_grad and
 *     nb_backward on a gradient that exists, which a graph may have read
 *     through nb_grad), nb_backward and nb_autograd fail exactly when a node
 *     their sweep runs was changed after it was computed, or has an input
 *     changed after it was recorded; the message names that tensor and that
 *     node (whose name is its op's: "exp:3").  A change before the recording
 *     does not count.  A failed sweep changes no stored gradient; a
 *     successful one leaves a gradient on every leaf it reached;
 *   - threads sharing parameters: 2 or 3 threads build losses from aliases
 *     of shared parameters (nb_alias) with small random op chains and run
 *     backward (1 to 3 times); after the joins the main thread adds the
 *     aliases' gradients into the parameters (nb_accumulate_grad).  Each
 *     alias's gradient equals, bit for bit, the one the same program gives
 *     on the main thread, and each parameter's gradient equals, bit for bit,
 *     the sum of those in the same order (the library promises sequential
 *     results bit for bit for independent graphs in threads, and
 *     accumulate_grad is a plain +=).  The tensors a worker made and the main
 *     thread freed (the aliases' gradients) are accounted for in the per-thread
 *     statistics at the end.
 *
 * Dead handles in AddressSanitizer builds: the library poisons a cached
 * block (all but its free-list link), so touching a dead tensor is an ASan
 * report by design.  To test the library's own refusal under ASan too, the
 * harness lifts the poison from the 8 bytes of the block's reference count
 * (the one field the dead check reads) for the duration of the call and puts
 * it back afterwards: any other read of the dead block is still an ASan
 * report, so a call that looks at anything but the count before refusing is
 * caught.  A refused call must leave that count as it was.
 *
 * Program: a sequence of instructions, one opcode byte then the operands it
 * reads; operand bytes pick among the live (or the usable dead) tensors.
 * FUZZ_TRACE=1 prints each instruction and its error; FUZZ_STATS=1 prints, at
 * exit, how often each property was exercised.
 */
#include "internal.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXN 48      /* tensors in the model per input          */
#define MAX_STEPS 96 /* instructions per input                  */
#define MAXDEPTH 6   /* nested scopes the program opens         */
#define SNAP 128     /* the most elements of a tensor           */
#define MAX_SCENES 2 /* thread scenes per input                 */

_Static_assert(offsetof(struct nb_tensor, refcount) % 8 == 0, "the count is one ASan granule");

/* ---- the harness's failure ---------------------------------------------------- */
static const char *cur_op = "?";
static bool trace;

static void violated(const char *what, const char *detail) {
    fprintf(stderr, "\nfuzz_lifetime: PROPERTY VIOLATED in %s: %s%s%s\n", cur_op, what,
            detail ? ": " : "", detail ? detail : "");
    abort();
}

static void violatedf(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void violatedf(const char *what, const char *fmt, ...) {
    char b[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, sizeof b, fmt, ap);
    va_end(ap);
    violated(what, b);
}

/* ---- what was exercised (FUZZ_STATS=1) ------------------------------------------ */
enum {
    ST_DEAD_PROBE, ST_DEAD_FORGOTTEN, ST_OVER_RELEASE, ST_LEGIT_RELEASE, ST_RELEASE_SKIPPED,
    ST_DEATHS, ST_SWEEP_OK, ST_SWEEP_STALE, ST_SWEEP_NOREQ, ST_MUTATIONS, ST_SCENES,
    ST_SCENE_THREADS, ST_COUNT
};
static const char *const st_names[ST_COUNT] = {
    "dead handles passed to a call", "dead handles forgotten (block reused or trimmed)",
    "over-releases refused", "releases of retained tensors", "releases not promised (skipped)",
    "tensors freed", "sweeps that succeeded", "sweeps refused for a mutation",
    "sweeps refused (root needs no grad)", "in-place changes", "thread scenes", "worker threads",
};
static long stats[ST_COUNT];
static void print_stats(void) {
    for (int i = 0; i < ST_COUNT; i++) fprintf(stderr, "fuzz_lifetime: %-48s %ld\n", st_names[i], stats[i]);
}

/* ---- the model ---------------------------------------------------------------------- */
enum { LIVE = 1, DEAD, GONE };             /* GONE: dead, and its block may have been reused */
enum { K_LEAF, K_OP, K_GRAD, K_ALIAS, K_DETACH };

typedef struct {
    nb_tensor *t;
    int state, kind;
    int cls;            /* the block's size class                                   */
    int scope;          /* the depth of the scope that holds it, -1 when none       */
    int retains;        /* the harness's nb_retain calls not yet released           */
    int nin, in[2];     /* recorded inputs (model indices), one reference per slot   */
    uint32_t in_ver[2]; /* their versions when recorded                             */
    int owner;          /* K_GRAD: whose gradient; K_ALIAS: the tensor it aliases    */
    int root;           /* the tensor whose storage holds the values (aliases share) */
    uint32_t version;   /* in-place changes                                          */
    bool req;
    int ndim;
    int64_t shape[2], numel;
    char name[64];
    double snap[SNAP];  /* the values, for all but gradients                        */
} node;

typedef struct {
    const uint8_t *p;
    size_t n, i;
    node N[MAXN];
    int nn;
    size_t marks[MAXDEPTH + 1];
    int depth;         /* user scopes open */
    bool grad_off;
    int scenes;
} fz;

static fz Z;
/* Tensors a worker made and this thread freed (the aliases' gradients),
   since the start: the per-thread statistics count them here as freed but
   not made. */
static int64_t foreign_tensors, foreign_bytes;

static uint8_t u8(fz *z) { return z->i < z->n ? z->p[z->i++] : 0; }
static bool more(const fz *z) { return z->i < z->n; }
static double val(fz *z) { return ((int)u8(z) - 128) / 32.0; } /* [-4, 4) in steps of 1/32 */

/* the k-th node (k from a byte) in state st (-1: none) */
static int pick(fz *z, int st) {
    int cnt = 0;
    for (int i = 0; i < z->nn; i++) cnt += z->N[i].state == st;
    uint8_t b = u8(z);
    if (cnt == 0) return -1;
    int k = b % cnt;
    for (int i = 0; i < z->nn; i++)
        if (z->N[i].state == st && k-- == 0) return i;
    return -1;
}

static int model_rc(const fz *z, int i) {
    const node *n = &z->N[i];
    int rc = (n->scope >= 0) + n->retains;
    for (int j = 0; j < z->nn; j++) {
        const node *m = &z->N[j];
        if (m->state != LIVE) continue;
        for (int k = 0; k < m->nin; k++) rc += m->in[k] == i;
        if (m->kind == K_ALIAS && m->owner == i) rc++;
    }
    if (n->kind == K_GRAD && z->N[n->owner].state == LIVE) rc++;
    return rc;
}

/* ---- the block cache, read without touching poisoned memory ------------------------- */
static const void **cached; /* every block in this thread's cache, sorted */
static size_t ncached, cached_cap;

static int ptr_cmp(const void *a, const void *b) {
    uintptr_t x = (uintptr_t) * (const void *const *)a, y = (uintptr_t) * (const void *const *)b;
    return x < y ? -1 : x > y;
}

/* Collects the free lists (the link is the one word a cached block keeps
   unpoisoned) and fails if a block is in them twice: freed twice. */
static void scan_cache(void) {
    nb__thread_state *T = nb__thread();
    ncached = 0;
    for (int c = 0; c < NB__NCLASS; c++)
        for (void *b = T->mem.free_list[c]; b; b = *(void **)b) {
            if (ncached == cached_cap) {
                cached_cap = cached_cap ? 2 * cached_cap : 1024;
                if (cached_cap > ((size_t)1 << 22)) violated("the block cache holds a cycle", NULL);
                cached = realloc(cached, cached_cap * sizeof *cached);
                if (!cached) abort();
            }
            cached[ncached++] = b;
        }
    if (ncached) qsort(cached, ncached, sizeof *cached, ptr_cmp);
    for (size_t k = 1; k < ncached; k++)
        if (cached[k] == cached[k - 1]) violatedf("a block is in the cache twice (freed twice)", "%p", cached[k]);
}

static bool is_cached(const void *t) {
    return ncached && bsearch(&t, cached, ncached, sizeof *cached, ptr_cmp) != NULL;
}

/* A cached block's reference-count word.  In ASan builds the harness lifts
   the poison from that word only, for as long as it reads it (or for the
   length of a call on a dead handle: lift/drop). */
static int64_t *count_word(nb_tensor *t) { return &t->refcount; }
static void lift(nb_tensor *t) {
#ifdef NB__ASAN
    ASAN_UNPOISON_MEMORY_REGION(count_word(t), sizeof(int64_t));
#else
    (void)t;
#endif
}
static void drop(nb_tensor *t) {
#ifdef NB__ASAN
    ASAN_POISON_MEMORY_REGION(count_word(t), sizeof(int64_t));
#else
    (void)t;
#endif
}
static int64_t dead_count(nb_tensor *t) {
    lift(t);
    int64_t v = *(volatile int64_t *)count_word(t);
    drop(t);
    return v;
}

/* ---- checks after every call ------------------------------------------------------------ */
static int by_name(const fz *z, const char *s, size_t len) {
    for (int i = 0; i < z->nn; i++)
        if (strlen(z->N[i].name) == len && memcmp(z->N[i].name, s, len) == 0) return i;
    return -1;
}

/* Applies the deaths the model predicts (iteratively: a dead child lets its
   inputs go), checks each against the library, and checks every tensor. */
static void settle(fz *z) {
    bool died[MAXN] = {false};
    for (bool changed = true; changed;) {
        changed = false;
        for (int i = 0; i < z->nn; i++)
            if (z->N[i].state == LIVE && model_rc(z, i) == 0) {
                z->N[i].state = DEAD;
                died[i] = changed = true;
                stats[ST_DEATHS]++;
            }
    }
    scan_cache();
    for (int i = 0; i < z->nn; i++) {
        node *n = &z->N[i];
        if (n->state == LIVE) {
            if (is_cached(n->t)) violatedf("a tensor was freed while it still has holders", "%s", n->name);
            int rc = model_rc(z, i);
            if (n->t->refcount != rc)
                violatedf("reference count differs from the holders", "%s: count %lld, holders %d (scope %d, retains %d)",
                          n->name, (long long)n->t->refcount, rc, n->scope >= 0, n->retains);
            if (nb_ndim(n->t) != n->ndim || nb_numel(n->t) != n->numel ||
                memcmp(nb_shape(n->t), n->shape, (size_t)n->ndim * sizeof(int64_t)) != 0)
                violatedf("a live tensor's shape changed", "%s", n->name);
            if (nb_requires_grad(n->t) != n->req) violatedf("requires_grad changed", "%s", n->name);
            if (nb_num_parents(n->t) != n->nin || nb_is_leaf(n->t) != (n->nin == 0))
                violatedf("the recorded parents changed", "%s", n->name);
            for (int k = 0; k < n->nin; k++)
                if (nb_parent(n->t, k) != z->N[n->in[k]].t) violatedf("a parent changed", "%s", n->name);
            const char *nm = nb_name(n->t);
            if (!nm || strcmp(nm, n->name) != 0) violatedf("a live tensor's name changed", "%s -> %s", n->name, nm ? nm : "NULL");
            if (n->kind != K_GRAD && memcmp(nb_data(n->t), n->snap, (size_t)n->numel * sizeof(double)) != 0)
                violatedf("a live tensor's values changed behind the program's back", "%s", n->name);
        } else if (n->state == DEAD) {
            if (died[i]) {
                if (!is_cached(n->t)) violatedf("a tensor that lost its last holder was not freed", "%s", n->name);
                int64_t c = dead_count(n->t);
                if (c != NB__DEAD_REFCOUNT)
                    violatedf("a freed tensor is not marked dead", "%s: count %lld", n->name, (long long)c);
            } else if (!is_cached(n->t) || dead_count(n->t) > 0) {
                n->state = GONE; /* reused (as a tensor or a side record) or trimmed */
                stats[ST_DEAD_FORGOTTEN]++;
            }
        }
    }
}

/* ---- registering what a call returned --------------------------------------------------- */
static int add_node(fz *z, nb_tensor *t, int kind) {
    node *n = &z->N[z->nn];
    memset(n, 0, sizeof *n);
    n->t = t;
    n->state = LIVE;
    n->kind = kind;
    n->cls = t->size_class;
    n->scope = kind == K_GRAD ? -1 : z->depth;
    n->owner = -1;
    n->root = z->nn;
    n->req = nb_requires_grad(t);
    n->ndim = nb_ndim(t);
    if (n->ndim < 0 || n->ndim > 2) violated("a result of unexpected rank", NULL);
    memcpy(n->shape, nb_shape(t), (size_t)n->ndim * sizeof(int64_t));
    n->numel = nb_numel(t);
    if (n->numel > SNAP) violated("a result larger than expected", NULL);
    if (kind == K_GRAD) {
        char b[32];
        snprintf(b, sizeof b, "g%d", z->nn); /* gradients share names ("in_grad") */
        nb_set_name(t, b);
    }
    const char *nm = nb_name(t);
    if (!nm) violated("a new tensor has no name", NULL);
    snprintf(n->name, sizeof n->name, "%s", nm);
    if (by_name(z, n->name, strlen(n->name)) >= 0) violatedf("two tensors have one name", "%s", n->name);
    if (kind != K_GRAD) memcpy(n->snap, nb_data(t), (size_t)n->numel * sizeof(double));
    return z->nn++;
}

/* After an in-place change of node i's values (every call that makes one
   bumps the tensor's version, as nb_data_mut does): the version and every
   snapshot of the storage it shares. */
static void changed_values(fz *z, int i) {
    z->N[i].version++;
    stats[ST_MUTATIONS]++;
    int r = z->N[i].root;
    for (int j = 0; j < z->nn; j++)
        if (z->N[j].state == LIVE && z->N[j].root == r && z->N[j].kind != K_GRAD)
            memcpy(z->N[j].snap, nb_data(z->N[j].t), (size_t)z->N[j].numel * sizeof(double));
}

static int node_of_ptr(const fz *z, const nb_tensor *t) {
    for (int i = 0; t && i < z->nn; i++)
        if (z->N[i].state == LIVE && z->N[i].t == t) return i;
    return -1;
}

/* the message of a failed call: present and "<who>: ..." */
static const char *failed_with(const char *who) {
    const char *m = nb_last_error();
    if (!m || !m[0]) violated("a call failed without a message", NULL);
    size_t k = strlen(who);
    if (strncmp(m, who, k) != 0 || m[k] != ':') violatedf("the message does not start with the call's name", "expected '%s:', got '%s'", who, m);
    return m;
}

/* ---- shapes --------------------------------------------------------------------------- */
static int gen_shape(fz *z, int64_t *s) {
    uint8_t b = u8(z);
    switch (b % 8) {
    case 0: return 0;
    case 1: case 2: case 3: s[0] = 1 + (b >> 3) % 8; return 1;
    case 7: s[0] = (b & 8) ? 100 : 40; return 1; /* blocks of other size classes */
    default: s[0] = 1 + (b >> 3) % 4; s[1] = 1 + (b >> 5) % 4; return 2;
    }
}

static bool bcast(int na, const int64_t *sa, int nbd, const int64_t *sb, int *n, int64_t *out) {
    int m = na > nbd ? na : nbd;
    for (int k = 0; k < m; k++) { /* aligned from the right */
        int ia = k - (m - na), ib = k - (m - nbd);
        int64_t x = ia >= 0 ? sa[ia] : 1, y = ib >= 0 ? sb[ib] : 1;
        if (x != y && x != 1 && y != 1) return false;
        out[k] = x == 1 ? y : x;
    }
    *n = m;
    return true;
}

static int64_t numel_of(int nd, const int64_t *s) {
    int64_t p = 1;
    for (int k = 0; k < nd; k++) p *= s[k];
    return p;
}

/* ---- instructions: making tensors ------------------------------------------------------- */
static double buf[SNAP];

static void op_leaf(fz *z) {
    if (z->nn >= MAXN) return;
    int64_t s[2];
    int nd = gen_shape(z, s);
    int64_t n = numel_of(nd, s);
    for (int64_t k = 0; k < n; k++) buf[k] = k < 8 ? val(z) : (double)(k % 7) / 4.0;
    bool req = u8(z) % 4 != 0;
    cur_op = "nb_new";
    nb_tensor *t = nb_new(buf, nd, s);
    if (!t) violated("nb_new failed", nb_last_error());
    if (!req) nb_set_requires_grad(t, false);
    int i = add_node(z, t, K_LEAF);
    if (z->N[i].req != req) violated("requires_grad of a new leaf", NULL);
}

/* the result of an op on inputs in[0..nin): the graph rules, then the model */
static void op_result(fz *z, nb_tensor *r, int nin, const int *in, int kind) {
    bool rec = false;
    for (int k = 0; k < nin; k++) rec |= z->N[in[k]].req;
    rec &= !z->grad_off;
    if (nb_requires_grad(r) != rec || nb_num_parents(r) != (rec ? nin : 0))
        violated("the result does not follow the graph rules", NULL);
    int i = add_node(z, r, kind);
    node *n = &z->N[i];
    if (rec) {
        n->nin = nin;
        for (int k = 0; k < nin; k++) {
            n->in[k] = in[k];
            n->in_ver[k] = z->N[in[k]].version;
        }
    }
}

static void op_unary(fz *z) {
    uint8_t w = u8(z);
    int a = pick(z, LIVE);
    if (a < 0 || z->nn >= MAXN) return;
    nb_tensor *x = z->N[a].t, *r = NULL;
    static const char *const names[8] = {"nb_neg", "nb_exp", "nb_tanh", "nb_square", "nb_sin", "nb_sigmoid", "nb_scale", "nb_sum"};
    cur_op = names[w % 8];
    switch (w % 8) {
    case 0: r = nb_neg(x); break;
    case 1: r = nb_exp(x); break;
    case 2: r = nb_tanh(x); break;
    case 3: r = nb_square(x); break;
    case 4: r = nb_sin(x); break;
    case 5: r = nb_sigmoid(x); break;
    case 6: r = nb_scale(x, val(z)); break;
    default: r = (w & 8) ? nb_mean(x) : nb_sum(x); break;
    }
    if (!r) violated("a valid unary op failed", nb_last_error());
    op_result(z, r, 1, &a, K_OP);
}

static void op_binary(fz *z) {
    uint8_t w = u8(z);
    int a = pick(z, LIVE), b = pick(z, LIVE);
    if (a < 0 || b < 0 || z->nn >= MAXN) return;
    node *A = &z->N[a], *B = &z->N[b];
    int nd;
    int64_t s[4];
    bool ok = bcast(A->ndim, A->shape, B->ndim, B->shape, &nd, s);
    if (ok && (nd > 2 || numel_of(nd, s) > SNAP)) return;
    static const char *const names[4] = {"add", "sub", "prod", "maximum"};
    static char who[16]; /* (cur_op outlives the call) */
    snprintf(who, sizeof who, "nb_%s", names[w % 4]);
    cur_op = who;
    nb_tensor *r;
    switch (w % 4) {
    case 0: r = nb_add(A->t, B->t); break;
    case 1: r = nb_sub(A->t, B->t); break;
    case 2: r = nb_prod(A->t, B->t); break;
    default: r = nb_maximum(A->t, B->t); break;
    }
    if (!ok) {
        if (r) violated("shapes that cannot be broadcast were accepted", NULL);
        failed_with(names[w % 4]);
        return;
    }
    if (!r) violated("a valid binary op failed", nb_last_error());
    if (nb_ndim(r) != nd || memcmp(nb_shape(r), s, (size_t)nd * sizeof *s) != 0)
        violated("the result has the wrong shape", NULL);
    int in[2] = {a, b};
    op_result(z, r, 2, in, K_OP);
}

static void op_derive(fz *z) { /* detach, copy, alias, or a gradient as a tensor of its own */
    uint8_t w = u8(z);
    int a = pick(z, LIVE);
    if (a < 0 || z->nn >= MAXN) return;
    nb_tensor *x = z->N[a].t, *r;
    switch (w % 4) {
    case 0:
        cur_op = "nb_detach";
        r = nb_detach(x);
        if (!r || nb_requires_grad(r) || nb_num_parents(r)) violated("nb_detach", nb_last_error());
        add_node(z, r, K_DETACH);
        break;
    case 1:
        cur_op = "nb_copy";
        r = nb_copy(x);
        if (!r || !nb_requires_grad(r) || nb_num_parents(r)) violated("nb_copy", nb_last_error());
        add_node(z, r, K_LEAF);
        break;
    case 2: {
        cur_op = "nb_alias";
        r = nb_alias(x);
        if (!r || !nb_requires_grad(r) || nb_num_parents(r) || nb_data(r) != nb_data(x))
            violated("nb_alias: not a leaf sharing the values", nb_last_error());
        int i = add_node(z, r, K_ALIAS);
        z->N[i].owner = a;
        z->N[i].root = z->N[a].root;
        break;
    }
    default: {
        cur_op = "nb_grad";
        nb_tensor *g = nb_grad(x);
        if (!g || node_of_ptr(z, g) >= 0) return;
        int i = add_node(z, g, K_GRAD);
        z->N[i].owner = a;
        if (z->N[i].req) violated("a gradient requires grad", NULL);
        break;
    }
    }
}

/* ---- instructions: scopes and references ---------------------------------------------- */
static void op_scope(fz *z) {
    uint8_t w = u8(z);
    if ((w & 1) && z->depth < MAXDEPTH) {
        cur_op = "nb_scope_begin";
        z->marks[++z->depth] = nb_scope_begin();
    } else if (z->depth > 0) {
        cur_op = "nb_scope_end";
        nb_scope_end(z->marks[z->depth]);
        for (int i = 0; i < z->nn; i++)
            if (z->N[i].state == LIVE && z->N[i].scope == z->depth) z->N[i].scope = -1;
        z->depth--;
    }
}

/* Calls f on dead handle(s) with the count word readable (see the top). */
typedef struct {
    int ids[3];
    int n;
    int64_t before[3];
} dead_set;

static void dead_begin(fz *z, dead_set *d) {
    for (int k = 0; k < d->n; k++) {
        nb_tensor *t = z->N[d->ids[k]].t;
        d->before[k] = dead_count(t);
        lift(t);
    }
    nb_clear_error();
}

static void dead_end(fz *z, dead_set *d) {
    scan_cache();
    for (int k = 0; k < d->n; k++) {
        node *n = &z->N[d->ids[k]];
        if (!is_cached(n->t)) { /* the call reused the block: it is no longer dead */
            n->state = GONE;
            continue;
        }
        if (*(volatile int64_t *)count_word(n->t) != d->before[k])
            violatedf("a refused call changed a dead tensor's count", "%s", n->name);
        drop(n->t);
    }
    stats[ST_DEAD_PROBE]++;
}

/* who: the call's name, or names separated by '|' (either may report) */
static void expect_dead_msg(const char *who) {
    const char *bar = strchr(who, '|');
    char first[32];
    if (bar) {
        snprintf(first, sizeof first, "%.*s", (int)(bar - who), who);
        const char *m = nb_last_error();
        size_t k = strlen(first);
        if (m && strncmp(m, first, k) == 0 && m[k] == ':') who = first;
        else who = bar + 1;
    }
    const char *m = failed_with(who);
    if (!strstr(m, "already released")) violatedf("a dead tensor's refusal does not say it was released", "%s", m);
}

static void op_retain(fz *z) {
    int a = pick(z, LIVE);
    if (a < 0) return;
    cur_op = "nb_retain";
    if (nb_retain(z->N[a].t) != z->N[a].t) violated("nb_retain did not return its argument", NULL);
    z->N[a].retains++;
}

static void op_release(fz *z) {
    uint8_t w = u8(z);
    cur_op = "nb_release";
    if (w % 3 == 2) { /* a dead one */
        int a = pick(z, DEAD);
        if (a < 0) return;
        dead_set d = {{a}, 1, {0}};
        dead_begin(z, &d);
        nb_release(z->N[a].t);
        expect_dead_msg("release");
        dead_end(z, &d);
        return;
    }
    int a = pick(z, LIVE);
    if (a < 0) return;
    node *n = &z->N[a];
    nb_clear_error();
    if (n->retains > 0) { /* the harness's own reference */
        nb_release(n->t);
        if (nb_last_error()) violated("a release of a retained tensor was refused", nb_last_error());
        n->retains--;
        stats[ST_LEGIT_RELEASE]++;
    } else if (n->scope >= 0 && model_rc(z, a) == 1) { /* the scope's last reference */
        nb_release(n->t);
        if (!nb_last_error()) violatedf("an over-release was accepted (its scope's last reference)", "%s", n->name);
        const char *m = failed_with("release");
        if (!strstr(m, "more often than")) violated("an over-release is refused with the wrong message", m);
        if (!strstr(m, n->name)) violated("an over-release message does not name the tensor", m);
        stats[ST_OVER_RELEASE]++;
    } else {
        stats[ST_RELEASE_SKIPPED]++; /* someone else's reference: not promised */
    }
}

/* ---- instructions: dead handles ----------------------------------------------------------- */
static nb_tensor *f_sumsq(nb_tensor *x, void *c) { (void)c; return nb_sum(nb_square(x)); }
static nb_tensor *m_sumsq(int n, nb_tensor *const *x, void *c) { (void)c; (void)n; return nb_sum(nb_square(x[0])); }
static nb_tensor *cf_fwd(nb_ctx *c, int n, nb_tensor *const *x) { (void)c; (void)n; return nb_scale(x[0], 2.0); }
static int cf_bwd(nb_ctx *c, nb_tensor *g, nb_tensor **gx) { (void)c; gx[0] = nb_scale(g, 2.0); return gx[0] ? 0 : -1; }
static const nb_function twice_fn = {"twice", cf_fwd, cf_bwd, NULL};
static nb_tensor *save_me; /* what saver's forward saves for backward */
static nb_tensor *sv_fwd(nb_ctx *c, int n, nb_tensor *const *x) {
    (void)n;
    return nb_ctx_save(c, 1, &save_me) == 0 ? nb_scale(x[0], 2.0) : NULL;
}
static const nb_function saver_fn = {"saver", sv_fwd, cf_bwd, NULL};
static FILE *devnull;

/* Every call that takes a tensor, on dead tensor d (L: a second operand,
   live or dead); T: returns a pointer (NULL on failure), R: an int that is
   -1 on failure (or made so from NaN, false, 0 or a void call). */
#define PROBES(T, R)                                                  \
    T("neg", nb_neg(d)) T("exp", nb_exp(d)) T("log", nb_log(d))       \
    T("tanh", nb_tanh(d)) T("sigmoid", nb_sigmoid(d)) T("relu", nb_relu(d)) \
    T("abs", nb_abs(d)) T("square", nb_square(d)) T("sqrt", nb_sqrt(d)) \
    T("sin", nb_sin(d)) T("cos", nb_cos(d)) T("pow", nb_pow(d, 3.0))  \
    T("scale", nb_scale(d, 2.0)) T("add", nb_add(d, L)) T("add", nb_add(L, d)) \
    T("sub", nb_sub(L, d)) T("prod", nb_prod(d, d)) T("div", nb_div(d, L)) \
    T("maximum", nb_maximum(L, d)) T("minimum", nb_minimum(d, L))     \
    T("where", nb_where(L, L, d)) T("clip", nb_clip(d, -1, 1))        \
    T("eq", nb_eq(d, L)) T("ge", nb_ge(L, d)) T("sum", nb_sum(d))     \
    T("mean", nb_mean(d)) T("max", nb_max(d)) T("min", nb_min(d))     \
    T("sum_axis", nb_sum_axis(d, 0, true)) T("mean_axis", nb_mean_axis(d, 0, false)) \
    T("max_axis", nb_max_axis(d, 0, false)) T("min_axis", nb_min_axis(d, 0, false)) \
    T("argmax", nb_argmax(d, 0, false)) T("argmin", nb_argmin(d, 0, false)) \
    T("logsumexp", nb_logsumexp(d, 0, false)) T("var", nb_var(d, 0, false, 0)) \
    T("softmax", nb_softmax(d, 0)) T("log_softmax", nb_log_softmax(d, 0)) \
    T("matmul", nb_matmul(d, L)) T("matmul_bt", nb_matmul_bt(L, d))   \
    T("transpose", nb_transpose(d)) T("reshape", nb_reshape(d, 1, (int64_t[]){-1})) \
    T("broadcast_to", nb_broadcast_to(d, 2, (int64_t[]){1, 1}))       \
    T("sum_to", nb_sum_to(d, 0, NULL)) T("permute", nb_permute(d, NULL)) \
    T("expand_dims", nb_expand_dims(d, 0)) T("squeeze", nb_squeeze(d, 0)) \
    T("slice", nb_slice(d, 0, 0, 1, 1)) T("take", nb_take(d, idx, 1, 0)) \
    T("concat", nb_concat(3, ts, 0)) T("stack", nb_stack(3, ts, 0))   \
    T("conv2d", nb_conv2d(d, L, NULL, 1, 0)) T("conv2d", nb_conv2d(L, L, d, 1, 0)) \
    T("max_pool2d", nb_max_pool2d(d, 1, 1)) T("avg_pool2d", nb_avg_pool2d(d, 1, 1)) \
    T("detach", nb_detach(d)) T("dual", nb_dual(d, L)) T("dual", nb_dual(L, d)) \
    T("alias", nb_alias(d)) T("copy", nb_copy(d))                     \
    T("twice", nb_apply(&twice_fn, 1, &d, NULL, NULL))                \
    T("jacobian", nb_jacobian(f_sumsq, d, NULL)) T("hessian", nb_hessian(f_sumsq, d, NULL)) \
    T("hvp", nb_hvp(f_sumsq, d, L, NULL)) T("hvp", nb_hvp(f_sumsq, L, d, NULL)) \
    T("grad", nb_grad(d)) T("parent", nb_parent(d, 0)) T("tangent", nb_tangent(d)) \
    T("retain", nb_retain(d)) T("shape", (const void *)nb_shape(d))  \
    T("data", (const void *)nb_data(d)) T("data_mut", (const void *)nb_data_mut(d)) \
    T("name", (const void *)nb_name(d)) T("op_name", (const void *)nb_op_name(d)) \
    T("mse_loss", nb_mse_loss(d, L)) T("cross_entropy", nb_cross_entropy(L, d)) \
    T("bce_with_logits", nb_bce_with_logits(d, L)) T("activate", nb_activate(d, NB_ACT_TANH)) \
    T("gather_rows", nb_gather_rows(d, idx, 1))                       \
    R("ndim", nb_ndim(d) == -1 ? -1 : 0) R("numel", nb_numel(d) == -1 ? -1 : 0) \
    R("item", isnan(nb_item(d)) ? -1 : 0) R("requires_grad", nb_requires_grad(d) ? 0 : -1) \
    R("is_leaf", nb_is_leaf(d) ? 0 : -1) R("num_parents", nb_num_parents(d) == 0 ? -1 : 0) \
    R("repr", nb_repr(d, rbuf, sizeof rbuf)) R("dot", nb_dot(d, devnull)) \
    R("backward", nb_backward(d, NULL)) R("backward", nb_backward(L, d)) \
    R("accumulate_grad", nb_accumulate_grad(d, L)) R("accumulate_grad", nb_accumulate_grad(L, d)) \
    R("argmax_rows", nb_argmax_rows(d, idx)) R("accuracy", isnan(nb_accuracy(d, L)) ? -1 : 0) \
    R("init", nb_init_tensor(d, NB_INIT_ZEROS, 1, 1, 0))              \
    R("gradcheck", nb_gradcheck(m_sumsq, 1, &d, NULL, 1e-6, &err) == -1 ? -1 : 0) \
    R("release", (nb_release(d), -1)) R("set_name", (nb_set_name(d, "x"), -1)) \
    R("set_requires_grad", (nb_set_requires_grad(d, false), -1))     \
    R("retain_grad", (nb_retain_grad(d), -1)) R("zero_grad", (nb_zero_grad(d), -1)) \
    R("autograd", nb_autograd(2, (nb_tensor *[]){L, d}, NULL, 1, &L, g, cg)) \
    R("autograd", nb_autograd(1, &L, NULL, 2, (nb_tensor *[]){L, d}, g, cg)) \
    R("autograd", nb_autograd(1, &L, &d, 1, &L, g, cg))                \
    T("ctx_save|saver", (save_me = d, nb_apply(&saver_fn, 1, &L, NULL, NULL))) /* (last: see op_dead) */

#define COUNT_(name, call) +1
enum { NPROBES = 0 PROBES(COUNT_, COUNT_) };

/* Runs probe k; returns the call's name after checking that it failed. */
static const char *probe(int k, nb_tensor *d, nb_tensor *L, bool cg) {
    int64_t idx[1] = {0};
    nb_tensor *ts[3] = {L, d, L}, *g[2] = {NULL, NULL};
    char rbuf[64];
    double err;
    (void)ts;
#define T_(name, call)                                                     \
    if (k-- == 0) {                                                        \
        if ((call) != NULL) violatedf("a dead tensor was accepted", "%s", name); \
        who = name;                                                        \
    } else
#define R_(name, call)                                                     \
    if (k-- == 0) {                                                        \
        if ((call) != -1) violatedf("a dead tensor was accepted", "%s", name); \
        who = name;                                                        \
    } else
    const char *who = NULL;
    PROBES(T_, R_) {}
#undef T_
#undef R_
    if (g[0] || g[1]) violated("a refused nb_autograd left gradients", NULL);
    return who;
}

static void op_dead(fz *z) {
    uint8_t w = u8(z), two = u8(z);
    /* the second operand first: making it may take a dead tensor's block */
    size_t mark = nb_scope_begin();
    int l = pick(z, LIVE);
    nb_tensor *L = l >= 0 ? z->N[l].t : nb_scalar(1.0);
    int lcls = L->size_class;
    settle(z);
    int a = pick(z, DEAD);
    if (a < 0) {
        nb_scope_end(mark);
        return;
    }
    dead_set d = {{a}, 1, {0}};
    int b = (two & 1) ? pick(z, DEAD) : -1; /* sometimes the second operand is dead too */
    if (b >= 0 && z->N[b].t != z->N[a].t) {
        d.ids[d.n++] = b;
        L = z->N[b].t;
        lcls = z->N[b].cls;
    }
    static char who[96]; /* (cur_op outlives the call) */
    int k = w % NPROBES;
    /* nb_apply makes blocks (its context node, its record, its output) before
       the forward callback saves d: only a block no other size can take
       stays dead until then */
    int dcls = z->N[a].cls;
    if (k == NPROBES - 1 && (dcls <= 3 || dcls == lcls)) k = 0;
    snprintf(who, sizeof who, "probe %d on dead %s", k, z->N[a].name);
    cur_op = who;
    dead_begin(z, &d);
    expect_dead_msg(probe(k, z->N[a].t, L, (two & 2) != 0));
    dead_end(z, &d);
    nb_scope_end(mark);
}

/* ---- instructions: in-place changes ---------------------------------------------------------- */
static void op_mutate(fz *z) {
    uint8_t w = u8(z);
    int a = pick(z, LIVE);
    if (a < 0) return;
    node *n = &z->N[a];
    nb_tensor *g = nb_grad(n->t);
    int gi = node_of_ptr(z, g);
    switch (w % 4) {
    case 0: case 1: {
        cur_op = "nb_data_mut";
        double *p = nb_data_mut(n->t);
        if (!p) violated("nb_data_mut failed", nb_last_error());
        if (w & 4)
            for (int64_t k = 0; k < n->numel; k++) p[k] = val(z);
        changed_values(z, a);
        break;
    }
    case 2:
        cur_op = "nb_init_tensor";
        if (nb_init_tensor(n->t, NB_INIT_XAVIER_UNIFORM, 2, 3, w) != 0) violated("nb_init_tensor failed", nb_last_error());
        changed_values(z, a);
        break;
    default:
        cur_op = "nb_zero_grad";
        nb_zero_grad(n->t);
        if (g && gi >= 0) changed_values(z, gi); /* (one not in the model was never recorded) */
        break;
    }
}

static void op_accumulate(fz *z) {
    int a = pick(z, LIVE), b = pick(z, LIVE);
    if (a < 0 || b < 0) return;
    node *A = &z->N[a], *B = &z->N[b];
    cur_op = "nb_accumulate_grad";
    nb_tensor *g = nb_grad(A->t);
    int gi = node_of_ptr(z, g);
    bool same = A->ndim == B->ndim && memcmp(A->shape, B->shape, (size_t)A->ndim * sizeof(int64_t)) == 0;
    int rc = nb_accumulate_grad(A->t, B->t);
    if (rc != (same ? 0 : -1)) violated("nb_accumulate_grad accepts exactly gradients of the tensor's shape", nb_last_error());
    if (!same) {
        failed_with("accumulate_grad");
        return;
    }
    if (nb_grad(A->t) == NULL || (g && nb_grad(A->t) != g)) violated("nb_accumulate_grad: the gradient was not kept", NULL);
    if (g && gi >= 0) changed_values(z, gi); /* (added into the one that exists) */
}

/* ---- instructions: sweeps ---------------------------------------------------------------------- */
/* Which nodes a sweep runs (V), and which it reaches; see engine.c.  Backward:
   from the root, through inputs that require grad.  Autograd: the same, but
   only through nodes from which an input lies upstream (REACH). */
static void sweep_model(const fz *z, bool autograd, int nout, const int *outs, int nins,
                        const int *ins, bool *V, bool *reached) {
    bool walked[MAXN] = {false}, reach[MAXN] = {false};
    memset(V, 0, MAXN * sizeof *V);
    memset(reached, 0, MAXN * sizeof *reached);
    const node *N = z->N;
    if (autograd) {
        for (int o = 0; o < nout; o++) walked[outs[o]] = true;
        for (bool ch = true; ch;) {
            ch = false;
            for (int x = 0; x < z->nn; x++)
                if (walked[x])
                    for (int k = 0; k < N[x].nin; k++)
                        if (N[N[x].in[k]].req && !walked[N[x].in[k]]) walked[N[x].in[k]] = ch = true;
        }
        for (int k = 0; k < nins; k++) reach[ins[k]] = true;
        for (bool ch = true; ch;) {
            ch = false;
            for (int x = 0; x < z->nn; x++)
                if (walked[x] && !reach[x])
                    for (int k = 0; k < N[x].nin; k++)
                        if (N[N[x].in[k]].req && reach[N[x].in[k]]) reach[x] = ch = true;
        }
    }
    for (int o = 0; o < nout; o++)
        if (!autograd || N[outs[o]].req) reached[outs[o]] = true;
    for (bool ch = true; ch;) {
        ch = false;
        for (int x = 0; x < z->nn; x++) {
            if (!reached[x] || V[x] || N[x].nin == 0 || (autograd && !reach[x])) continue;
            bool any = false;
            for (int k = 0; k < N[x].nin; k++) {
                int i = N[x].in[k];
                bool need = N[i].req && (!autograd || reach[i]);
                if (need) {
                    any = true;
                    if (!reached[i]) reached[i] = ch = true;
                }
            }
            if (any) V[x] = ch = true;
        }
    }
}

static bool stale(const fz *z, int x) {
    const node *n = &z->N[x];
    if (n->version) return true;
    for (int k = 0; k < n->nin; k++)
        if (z->N[n->in[k]].version != n->in_ver[k]) return true;
    return false;
}

/* Does message m name a stale node of V and what changed?  Forms:
   "<tensor> was modified in place ... after it was computed" (the node itself)
   "<tensor> was modified in place ... after <node> used it" (an input)
   "one of <t1>, <t2> was modified in place ... after <node> used it" (the
   inputs that have ever changed, when the library cannot tell which one did
   after the recording: each must be an input that changed, one of them after). */
static bool names_stale(const fz *z, const char *m, const bool *V) {
    const char *p = strstr(m, ": ");
    const char *q = strstr(m, " was modified in place");
    if (!p || !q || q < p + 2) return false;
    p += 2;
    const char *a = strstr(q, " after ");
    if (!a) return false;
    a += 7;
    if (strncmp(a, "it was computed", 15) == 0) {
        int t = by_name(z, p, (size_t)(q - p));
        return t >= 0 && V[t] && z->N[t].version > 0;
    }
    const char *u = strstr(a, " used it");
    if (!u) return false;
    int x = by_name(z, a, (size_t)(u - a));
    if (x < 0 || !V[x] || !stale(z, x) || z->N[x].version) return false;
    bool list = strncmp(p, "one of ", 7) == 0, after = false;
    int listed = 0;
    if (list) p += 7;
    while (p < q) { /* each name of the list (one without "one of ") */
        const char *e = list ? strstr(p, ", ") : NULL;
        if (!e || e > q) e = q;
        int t = by_name(z, p, (size_t)(e - p)), hits = 0;
        for (int k = 0; t >= 0 && k < z->N[x].nin; k++)
            if (z->N[x].in[k] == t) {
                hits += z->N[t].version > 0;
                after |= z->N[t].version != z->N[x].in_ver[k];
            }
        if (!hits) return false; /* not an input, or one that never changed */
        listed++;
        p = e == q ? q : e + 2;
    }
    return after && (list ? listed >= 2 : listed == 1);
}

typedef struct {
    nb_tensor *g;
    double v[SNAP];
} grad_snap;
static grad_snap gsnap[MAXN];

static void snap_grads(fz *z) {
    for (int i = 0; i < z->nn; i++) {
        gsnap[i].g = z->N[i].state == LIVE ? z->N[i].t->grad : NULL;
        if (gsnap[i].g) memcpy(gsnap[i].v, gsnap[i].g->data, (size_t)gsnap[i].g->numel * sizeof(double));
    }
}

static void grads_unchanged(fz *z, const char *why) {
    for (int i = 0; i < z->nn; i++) {
        if (z->N[i].state != LIVE) continue;
        nb_tensor *g = z->N[i].t->grad;
        if (g != gsnap[i].g || (g && memcmp(g->data, gsnap[i].v, (size_t)g->numel * sizeof(double)) != 0))
            violatedf(why, "the gradient of %s", z->N[i].name);
    }
}

static void check_sweep(fz *z, int rc, const bool *V, bool noreq) {
    bool any_stale = false;
    for (int x = 0; x < z->nn; x++) any_stale |= V[x] && stale(z, x);
    if (noreq) {
        if (rc != -1) violated("a root that requires no grad was accepted", NULL);
        failed_with("backward");
        stats[ST_SWEEP_NOREQ]++;
        return;
    }
    if (any_stale) {
        if (rc != -1) violated("a tensor changed in place after it was recorded, and the sweep did not notice", NULL);
        const char *m = nb_last_error();
        if (!m || (strncmp(m, "backward:", 9) != 0 && strncmp(m, "autograd:", 9) != 0))
            violated("a mutation's refusal does not start with backward: or autograd:", m);
        if (!names_stale(z, m, V)) violated("a mutation's refusal does not name a changed tensor and the node that used it", m);
        stats[ST_SWEEP_STALE]++;
    } else {
        if (rc != 0) violated("a sweep with no tensor changed after recording failed", nb_last_error());
        stats[ST_SWEEP_OK]++;
    }
}

static void op_backward(fz *z) {
    uint8_t w = u8(z);
    int a = pick(z, LIVE);
    if (a < 0) return;
    node *R = &z->N[a];
    bool V[MAXN], reached[MAXN];
    sweep_model(z, false, 1, &a, 0, NULL, V, reached);
    size_t mark = nb_scope_begin();
    nb_tensor *seed = NULL;
    bool bad_seed = (w & 7) == 7;
    if (bad_seed) { /* a seed of another shape */
        int64_t s[2] = {R->ndim ? R->shape[0] + 1 : 2, R->ndim == 2 ? R->shape[1] : 0};
        seed = nb_full(R->ndim ? R->ndim : 1, s, 0.5);
    } else if (w & 1) {
        seed = nb_full(R->ndim, R->shape, 0.5);
    }
    /* leaves reached that already have a gradient get it added in place */
    int had[MAXN];
    for (int i = 0; i < z->nn; i++)
        had[i] = reached[i] && z->N[i].nin == 0 && z->N[i].req ? node_of_ptr(z, z->N[i].t->grad) : -1;
    snap_grads(z);
    cur_op = "nb_backward";
    nb_clear_error();
    int rc = nb_backward(R->t, seed);
    if (bad_seed) {
        if (rc != -1) violated("a seed of the wrong shape was accepted", NULL);
        failed_with("backward");
    } else {
        check_sweep(z, rc, V, !R->req);
    }
    if (rc != 0) {
        grads_unchanged(z, "a failed backward changed a stored gradient");
    } else {
        for (int i = 0; i < z->nn; i++) {
            if (!reached[i] || z->N[i].nin || !z->N[i].req) continue;
            nb_tensor *g = z->N[i].t->grad;
            if (!g || g->ndim != z->N[i].ndim || g->numel != z->N[i].numel)
                violatedf("a leaf the sweep reached has no gradient of its shape", "%s", z->N[i].name);
            if (had[i] >= 0) changed_values(z, had[i]); /* (added into in place) */
        }
    }
    nb_scope_end(mark);
}

static void op_autograd(fz *z) {
    uint8_t w = u8(z);
    int outs[2], ins[2];
    int nout = 1 + (w & 1), nins = 1 + ((w >> 1) & 1);
    bool cg = (w >> 2) & 1;
    for (int k = 0; k < nout; k++)
        if ((outs[k] = pick(z, LIVE)) < 0) return;
    for (int k = 0; k < nins; k++)
        if ((ins[k] = pick(z, LIVE)) < 0) return;
    bool V[MAXN], reached[MAXN];
    sweep_model(z, true, nout, outs, nins, ins, V, reached);
    size_t mark = nb_scope_begin();
    nb_tensor *o[2], *in[2], *g[2] = {NULL, NULL}, *seeds[2];
    for (int k = 0; k < nout; k++) {
        o[k] = z->N[outs[k]].t;
        seeds[k] = (w & 8) ? nb_full(z->N[outs[k]].ndim, z->N[outs[k]].shape, 2.0) : NULL;
    }
    for (int k = 0; k < nins; k++) in[k] = z->N[ins[k]].t;
    snap_grads(z);
    cur_op = cg ? "nb_autograd(create_graph)" : "nb_autograd";
    nb_clear_error();
    int rc = nb_autograd(nout, o, (w & 8) ? seeds : NULL, nins, in, g, cg);
    check_sweep(z, rc, V, false);
    grads_unchanged(z, "nb_autograd changed a stored gradient");
    for (int k = 0; k < nins; k++) {
        if (rc == 0 && (!g[k] || nb_ndim(g[k]) != z->N[ins[k]].ndim || nb_numel(g[k]) != z->N[ins[k]].numel))
            violated("nb_autograd: a result missing or of the wrong shape", NULL);
        if (rc != 0 && g[k]) violated("a failed nb_autograd left a result", NULL);
    }
    nb_scope_end(mark); /* the results, and with create_graph their graph */
}

static void op_flags(fz *z) {
    uint8_t w = u8(z);
    if (w & 1) {
        cur_op = "nb_set_grad_enabled";
        z->grad_off = (w & 2) != 0;
        nb_set_grad_enabled(!z->grad_off);
        return;
    }
    int a = pick(z, LIVE);
    if (a < 0) return;
    cur_op = "nb_set_requires_grad";
    z->N[a].req = (w & 2) != 0;
    nb_set_requires_grad(z->N[a].t, z->N[a].req);
}

static void op_churn(fz *z) {
    /* allocations that reuse cached blocks, some with side records (names):
       dead handles whose blocks they take become unusable (GONE) */
    uint8_t w = u8(z);
    cur_op = "churn";
    size_t mark = nb_scope_begin();
    int64_t s[2];
    int nd = gen_shape(z, s);
    for (int k = 0; k < 1 + (w & 7); k++) {
        nb_tensor *t = nb_zeros(nd, s);
        if (w & 8) (void)nb_name(t);
        if (w & 16) nb_set_name(t, "churn");
    }
    nb_scope_end(mark);
    if ((w & 0xe0) == 0xe0) {
        cur_op = "nb_trim";
        nb_trim(); /* every cached block goes back to the system */
    }
}

/* A scope that makes a few tensors and ends at once: the common way a
   program ends up holding handles of dead tensors (or, through a retain,
   of tensors that die when released). */
static void op_burst(fz *z) {
    uint8_t w = u8(z);
    if (z->depth >= MAXDEPTH) return;
    z->marks[++z->depth] = nb_scope_begin();
    op_leaf(z);
    settle(z);
    for (int k = 0; k < (w & 3); k++) {
        if (w & 4) op_binary(z);
        else op_unary(z);
        settle(z);
    }
    if (w & 8) op_retain(z);
    cur_op = "nb_scope_end (burst)";
    nb_scope_end(z->marks[z->depth]);
    for (int i = 0; i < z->nn; i++)
        if (z->N[i].state == LIVE && z->N[i].scope == z->depth) z->N[i].scope = -1;
    z->depth--;
}

/* ---- threads sharing parameters -------------------------------------------------------------- */
#define W_STEPS 6
#define W_MAXP 2
typedef struct {
    uint8_t op, a, b;
    double c;
} wstep;
typedef struct {
    int np, r, c, nsteps, reps;
    wstep s[W_STEPS];
    double x[16];
} wprog;
typedef struct {
    const wprog *p;
    nb_tensor *alias[W_MAXP];
    int ok;
    char err[256];
} wjob;

/* The worker's program on aliases al[0..np): values v[0..np) are the
   aliases, v[np] the data, each step adds one; the loss is the sum of the
   last.  Returns 0, or -1 with the error in err. */
static int run_prog(const wprog *p, nb_tensor *const *al, char *err, size_t errsz) {
    for (int rep = 0; rep < p->reps; rep++) {
        size_t m = nb_scope_begin();
        nb_tensor *v[W_MAXP + 1 + W_STEPS];
        int nv = 0;
        for (int k = 0; k < p->np; k++) v[nv++] = al[k];
        v[nv] = nb_matrix(p->x, p->r, p->c);
        nb_set_requires_grad(v[nv++], false);
        for (int k = 0; k < p->nsteps; k++) {
            const wstep *s = &p->s[k];
            nb_tensor *a = v[s->a % nv], *b = v[s->b % nv], *y;
            switch (s->op % 10) {
            case 0: y = nb_tanh(a); break;
            case 1: y = nb_sin(a); break;
            case 2: y = nb_square(a); break;
            case 3: y = nb_sigmoid(a); break;
            case 4: y = nb_scale(a, s->c); break;
            case 5: y = nb_add(a, b); break;
            case 6: y = nb_prod(a, b); break;
            case 7: y = nb_sub(a, b); break;
            case 8: y = nb_maximum(a, b); break;
            default: y = nb_add(a, nb_mean_axis(b, 0, true)); break; /* broadcast, summed back */
            }
            v[nv++] = y;
        }
        nb_tensor *loss = nb_sum(v[nv - 1]);
        /* (a loss from the data alone needs no backward) */
        int rc = nb_requires_grad(loss) ? nb_backward(loss, NULL) : loss ? 0 : -1;
        if (rc != 0) snprintf(err, errsz, "%s", nb_last_error() ? nb_last_error() : "no message");
        nb_scope_end(m);
        if (rc != 0) return -1;
    }
    return 0;
}

static void *worker(void *arg) {
    wjob *j = arg;
    j->ok = run_prog(j->p, j->alias, j->err, sizeof j->err) == 0;
    nb_cleanup();
    return NULL;
}

static bool same_bits(double a, double b) {
    return memcmp(&a, &b, sizeof a) == 0 || (isnan(a) && isnan(b));
}

static void op_threads(fz *z) {
    if (z->scenes >= MAX_SCENES) return;
    z->scenes++;
    stats[ST_SCENES]++;
    cur_op = "threads";
    wprog prog[3];
    int nth = 2 + u8(z) % 2;
    uint8_t shp = u8(z);
    int r = 1 + shp % 4, c = 1 + (shp >> 2) % 4, np = 1 + (shp >> 4) % 2;
    bool prior = (shp >> 5) & 1;
    for (int t = 0; t < nth; t++) {
        wprog *p = &prog[t];
        p->np = np;
        p->r = r;
        p->c = c;
        p->nsteps = u8(z) % (W_STEPS + 1);
        p->reps = 1 + u8(z) % 3;
        for (int k = 0; k < p->nsteps; k++) {
            p->s[k].op = u8(z);
            p->s[k].a = u8(z);
            p->s[k].b = u8(z);
            p->s[k].c = val(z);
        }
        for (int k = 0; k < r * c; k++) p->x[k] = val(z);
    }
    bool saved = nb_set_grad_enabled(true);
    size_t mark = nb_scope_begin();
    nb_tensor *W[W_MAXP];
    for (int k = 0; k < np; k++) {
        W[k] = nb_randn(2, (int64_t[]){r, c}, u8(z));
        if (prior && nb_accumulate_grad(W[k], W[k]) != 0) violated("nb_accumulate_grad", nb_last_error());
    }
    wjob job[3];
    pthread_t th[3];
    for (int t = 0; t < nth; t++) {
        job[t].p = &prog[t];
        job[t].ok = 0;
        job[t].err[0] = 0;
        for (int k = 0; k < np; k++)
            if (!(job[t].alias[k] = nb_alias(W[k]))) violated("nb_alias", nb_last_error());
    }
    for (int t = 0; t < nth; t++)
        if (pthread_create(&th[t], NULL, worker, &job[t]) != 0) violated("pthread_create", NULL);
    for (int t = 0; t < nth; t++) pthread_join(th[t], NULL);
    stats[ST_SCENE_THREADS] += nth;
    /* the owner adds the aliases' gradients, in thread order */
    for (int t = 0; t < nth; t++) {
        if (!job[t].ok) violated("a worker's backward failed", job[t].err);
        for (int k = 0; k < np; k++) {
            nb_tensor *g = nb_grad(job[t].alias[k]);
            if (!g) continue;
            foreign_tensors++;
            foreign_bytes += (int64_t)nb__class_bytes(g->size_class);
            if (nb_accumulate_grad(W[k], g) != 0) violated("nb_accumulate_grad", nb_last_error());
        }
    }
    /* the same programs again, one after the other, on this thread */
    double want[W_MAXP][16];
    for (int k = 0; k < np; k++)
        for (int e = 0; e < r * c; e++) want[k][e] = prior ? 0.0 + nb_data(W[k])[e] : 0.0;
    bool any[W_MAXP] = {prior, prior};
    for (int t = 0; t < nth; t++) {
        nb_tensor *al[W_MAXP];
        for (int k = 0; k < np; k++) al[k] = nb_alias(W[k]);
        char err[256];
        if (run_prog(&prog[t], al, err, sizeof err) != 0) violated("the sequential run failed", err);
        for (int k = 0; k < np; k++) {
            nb_tensor *g = nb_grad(al[k]), *gt = nb_grad(job[t].alias[k]);
            if (!g != !gt) violated("a worker's alias got a gradient exactly when the sequential run's did not", NULL);
            if (!g) continue;
            any[k] = true;
            for (int e = 0; e < r * c; e++) {
                if (!same_bits(nb_data(gt)[e], nb_data(g)[e]))
                    violatedf("a worker's gradient differs from the sequential one", "thread %d, parameter %d, element %d: %a vs %a",
                              t, k, e, nb_data(gt)[e], nb_data(g)[e]);
                want[k][e] += nb_data(g)[e];
            }
        }
    }
    for (int k = 0; k < np; k++) {
        nb_tensor *g = nb_grad(W[k]);
        if (!g != !any[k]) violated("a parameter has a gradient exactly when no alias gave one", NULL);
        for (int e = 0; g && e < r * c; e++)
            if (!same_bits(nb_data(g)[e], want[k][e]))
                violatedf("the accumulated gradient differs from the sequential sum", "parameter %d, element %d: %a vs %a", k,
                          e, nb_data(g)[e], want[k][e]);
    }
    nb_scope_end(mark);
    nb_set_grad_enabled(saved);
}

/* ---- the program -------------------------------------------------------------------------------- */
static void run(fz *z) {
    for (int step = 0; step < MAX_STEPS && more(z); step++) {
        uint8_t op = u8(z);
        nb_clear_error();
        cur_op = "?";
        switch (op % 16) {
        case 0: case 1: op_leaf(z); break;
        case 2: case 3: op_unary(z); break;
        case 4: op_binary(z); break;
        case 5: op_derive(z); break;
        case 6: op_scope(z); break;
        case 7: op_retain(z); break;
        case 8: op_release(z); break;
        case 9: case 10: op_dead(z); break;
        case 11: op_mutate(z); break;
        case 12: op_backward(z); break;
        case 13: if (op & 16) op_autograd(z); else op_accumulate(z); break;
        case 14: if (op & 16) op_churn(z); else op_flags(z); break;
        default: if ((op & 48) == 48) op_threads(z); else op_burst(z); break;
        }
        if (trace) fprintf(stderr, "step %3d  op %3d  %-28s %s\n", step, op % 16, cur_op, nb_last_error() ? nb_last_error() : "");
        settle(z);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    devnull = fopen("/dev/null", "w");
    trace = getenv("FUZZ_TRACE") != NULL;
    if (getenv("FUZZ_STATS")) atexit(print_stats);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz *z = &Z;
    memset(z, 0, sizeof *z);
    z->p = data;
    z->n = size;
    nb_names_reset();
    nb_set_grad_enabled(true);
    nb_set_anomaly_detection(false);
    run(z);

    /* teardown: the harness's references, then every scope */
    cur_op = "teardown";
    nb_set_grad_enabled(true);
    while (z->depth > 0) {
        nb_scope_end(z->marks[z->depth]);
        for (int i = 0; i < z->nn; i++)
            if (z->N[i].state == LIVE && z->N[i].scope == z->depth) z->N[i].scope = -1;
        z->depth--;
        settle(z);
    }
    for (int i = 0; i < z->nn; i++)
        while (z->N[i].state == LIVE && z->N[i].retains > 0) {
            nb_release(z->N[i].t);
            z->N[i].retains--;
            settle(z);
        }
    nb_scope_end(0);
    for (int i = 0; i < z->nn; i++)
        if (z->N[i].state == LIVE) z->N[i].scope = -1;
    settle(z);
    for (int i = 0; i < z->nn; i++)
        if (z->N[i].state == LIVE) violatedf("a tensor outlived every holder", "%s", z->N[i].name);
    nb_cleanup();
    nb_clear_error();
    nb_mem_stats st;
    nb_memory_stats(&st);
    if (st.live_tensors != -foreign_tensors || st.live_bytes != -foreign_bytes) {
        char b[160];
        snprintf(b, sizeof b, "%lld tensors (%lld bytes) alive after nb_cleanup; expected %lld (%lld) for the workers' gradients freed here",
                 (long long)st.live_tensors, (long long)st.live_bytes, (long long)-foreign_tensors,
                 (long long)-foreign_bytes);
        violated("leak", b);
    }
    return 0;
}
