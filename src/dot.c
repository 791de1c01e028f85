/*
 * nb_dot: the graph behind a tensor in Graphviz's DOT language.
 *
 *   digraph nabla {
 *     t0 [label="{ prod:1 | shape () | data 2 | grad 1 }"];   a record per tensor
 *     op0 [label="prod"];                                      an ellipse per op
 *     t1 -> op0;  t2 -> op0;  op0 -> t0;                       inputs -> op -> output
 *   }
 *
 * The walk is iterative (an explicit stack: graphs can be a million nodes
 * deep) and visits each tensor once (an open-addressing set of pointers).
 * Node ids are the visit order, so the output is deterministic.
 * Render with: dot -Tpng graph.dot -o graph.png
 */
#include "internal.h"
#include "io/io.h"

#include <string.h>

#define DOT_MAX_SHOWN 8 /* tensors up to this many elements show data and grad */

/* ---- a set of visited tensors, pointer -> id ----------------------------- */

typedef struct {
    const nb_tensor **key;
    size_t *id;
    size_t cap, len; /* cap: a power of two, kept at most half full */
} ptrset;

static size_t ptr_hash(const void *p, size_t cap) {
    uint64_t h = (uint64_t)(uintptr_t)p;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return (size_t)h & (cap - 1);
}

static bool set_alloc(ptrset *s, size_t cap) {
    s->key = nb__malloc(cap * sizeof *s->key);
    s->id = nb__malloc(cap * sizeof *s->id);
    if (!s->key || !s->id) {
        nb__free(s->key);
        nb__free(s->id);
        s->key = NULL;
        s->id = NULL;
        return false;
    }
    memset(s->key, 0, cap * sizeof *s->key);
    s->cap = cap;
    s->len = 0;
    return true;
}

static void set_free(ptrset *s) {
    nb__free(s->key);
    nb__free(s->id);
    s->key = NULL;
    s->id = NULL;
}

/* The slot of p: where it is, or the empty slot where it would go. */
static size_t set_slot(const ptrset *s, const nb_tensor *p) {
    size_t i = ptr_hash(p, s->cap);
    while (s->key[i] && s->key[i] != p) i = (i + 1) & (s->cap - 1);
    return i;
}

static bool set_find(const ptrset *s, const nb_tensor *p, size_t *id) {
    size_t i = set_slot(s, p);
    if (!s->key[i]) return false;
    *id = s->id[i];
    return true;
}

/* Inserts p with `id` unless present.  1: inserted, 0: was there (*id set to
   its id), -1: out of memory. */
static int set_insert(ptrset *s, const nb_tensor *p, size_t *id) {
    size_t i = set_slot(s, p);
    if (s->key[i]) {
        *id = s->id[i];
        return 0;
    }
    if (2 * (s->len + 1) > s->cap) {
        ptrset big;
        if (s->cap > SIZE_MAX / 4 || !set_alloc(&big, s->cap * 2)) return -1;
        for (size_t j = 0; j < s->cap; j++)
            if (s->key[j]) {
                size_t k = set_slot(&big, s->key[j]);
                big.key[k] = s->key[j];
                big.id[k] = s->id[j];
            }
        big.len = s->len;
        set_free(s);
        *s = big;
        i = set_slot(s, p);
    }
    s->key[i] = p;
    s->id[i] = *id;
    s->len++;
    return 1;
}

/* ---- the explicit stack ------------------------------------------------- */

typedef struct {
    const nb_tensor **item;
    size_t len, cap;
} pstack;

static bool stack_push(pstack *st, const nb_tensor *t) {
    if (st->len == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 256;
        if (cap > SIZE_MAX / sizeof *st->item) return false;
        const nb_tensor **item = nb__malloc(cap * sizeof *item);
        if (!item) return false;
        if (st->len) memcpy(item, st->item, st->len * sizeof *item);
        nb__free(st->item);
        st->item = item;
        st->cap = cap;
    }
    st->item[st->len++] = t;
    return true;
}

/* ---- writing ---------------------------------------------------------------- */

/* A string inside a double-quoted record label: the record's own
   punctuation and the quote are escaped, control characters dropped. */
static void put_label_text(FILE *out, const char *s) {
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (strchr("{}|<>\"\\", c)) {
            fputc('\\', out);
            fputc(c, out);
        } else if (c < 0x20 || c == 0x7f) {
            fputc('?', out);
        } else {
            fputc(c, out);
        }
    }
}

static void put_values(FILE *out, const char *what, const nb_tensor *t) {
    const double *d = nb_data(t);
    int64_t n = nb_numel(t);
    if (!d && n > 0) return;
    fprintf(out, " | %s ", what);
    if (nb_ndim(t) == 0) {
        fprintf(out, "%.4g", d[0]);
        return;
    }
    fputc('[', out);
    for (int64_t i = 0; i < n; i++) fprintf(out, "%s%.4g", i ? " " : "", d[i]);
    fputc(']', out);
}

static void put_tensor(FILE *out, const nb_tensor *t, size_t id) {
    fprintf(out, "  t%zu [label=\"{ ", id);
    put_label_text(out, nb_name(t));
    fputs(" | shape (", out);
    int ndim = nb_ndim(t);
    const int64_t *shape = nb_shape(t);
    for (int d = 0; d < ndim && shape; d++)
        fprintf(out, "%s%lld", d ? ", " : "", (long long)shape[d]);
    fputs(ndim == 1 ? ",)" : ")", out);
    if (nb_numel(t) <= DOT_MAX_SHOWN) {
        put_values(out, "data", t);
        const nb_tensor *g = nb_grad(t);
        if (g && nb_numel(g) <= DOT_MAX_SHOWN) put_values(out, "grad", g);
    }
    fputs(" }\"", out);
    if (!nb_requires_grad(t)) fputs(", style=\"dashed\"", out);
    else if (nb_is_leaf(t)) fputs(", style=\"filled\", fillcolor=\"#dbe8fb\"", out);
    fputs("];\n", out);
}

int nb_dot(const nb_tensor *t, FILE *out) {
    if (!t) { /* a failed op's result: its message stands */
        if (!nb_last_error()) nb__err("dot: NULL tensor");
        return -1;
    }
    if (nb__dead_arg("dot", t)) return -1;
    if (!out) {
        nb__err("dot: NULL output stream");
        return -1;
    }
    ptrset seen = {0};
    pstack st = {0};
    const char *why = NULL;
    locale_t prev = nb__c_locale_begin(); /* numbers with a point, whatever setlocale says */
    size_t next_id = 0, id0 = next_id++;
    if (!set_alloc(&seen, 1024) || set_insert(&seen, t, &id0) < 0 || !stack_push(&st, t)) {
        why = "out of memory";
        goto done;
    }
    fputs("digraph nabla {\n"
          "  rankdir=LR;\n"
          "  node [shape=record, fontname=\"Helvetica\", fontsize=10];\n",
          out);
    while (st.len > 0) {
        const nb_tensor *n = st.item[--st.len];
        size_t id = 0;
        set_find(&seen, n, &id); /* every stacked tensor is in the set */
        put_tensor(out, n, id);
        int np = nb_num_parents(n);
        if (np > 0 || !nb_is_leaf(n)) {
            fprintf(out, "  op%zu [shape=ellipse, label=\"", id);
            const char *op = nb_op_name(n);
            for (; op && *op; op++) { /* a plain quoted string: escape \ and " */
                if (*op == '"' || *op == '\\') fputc('\\', out);
                fputc(*op, out);
            }
            fprintf(out, "\"];\n  op%zu -> t%zu;\n", id, id);
        }
        for (int i = 0; i < np; i++) {
            const nb_tensor *p = nb_parent(n, i);
            if (!p) continue;
            size_t pid = next_id;
            int r = set_insert(&seen, p, &pid);
            if (r < 0 || (r == 1 && !stack_push(&st, p))) {
                why = "out of memory";
                goto done;
            }
            if (r == 1) next_id++;
            fprintf(out, "  t%zu -> op%zu;\n", pid, id);
        }
        if (ferror(out)) {
            why = "write failed";
            goto done;
        }
    }
    fputs("}\n", out);
    if (fflush(out) != 0 || ferror(out)) why = "write failed";
done:
    nb__c_locale_end(prev);
    set_free(&seen);
    nb__free(st.item);
    if (why) {
        nb__err("dot: %s", why);
        return -1;
    }
    return 0;
}
