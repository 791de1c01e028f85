/*
 * Checkpoints: everything a training run needs to continue (parameters,
 * optimizer state, the run's position and random state, user values, the
 * configuration), in one checksummed file written atomically.  The format
 * is in nabla.h.
 */
#include "ckpt.h"
#include "io/atomic_write.h"
#include "io/crc32.h"

#include <math.h>
#include <string.h>

#define MAGIC "NBCHECKP"
#define VERSION 1u
enum { HAS_OPTIM = 1, HAS_STATE = 2 };

static void put_u32(unsigned char *b, uint32_t v) {
    for (int k = 0; k < 4; k++) b[k] = (unsigned char)(v >> (8 * k));
}
static void put_u64(unsigned char *b, uint64_t v) {
    for (int k = 0; k < 8; k++) b[k] = (unsigned char)(v >> (8 * k));
}
static void put_f64(unsigned char *b, double x) {
    uint64_t v;
    memcpy(&v, &x, 8);
    put_u64(b, v);
}
static uint32_t get_u32(const unsigned char *b) {
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) v |= (uint32_t)b[k] << (8 * k);
    return v;
}
static uint64_t get_u64(const unsigned char *b) {
    uint64_t v = 0;
    for (int k = 0; k < 8; k++) v |= (uint64_t)b[k] << (8 * k);
    return v;
}
static double get_f64(const unsigned char *b) {
    uint64_t v = get_u64(b);
    double x;
    memcpy(&x, &v, 8);
    return x;
}

#define OPT_HEAD (4 + 4 + 6 * 8 + 8 + 8) /* kind, nslabs, 6 coefficients, t, n */
#define STATE_HEAD (8 * 3 + 8 + 8 + 4 + 4 + 8) /* epoch batch step, rng, n_user */

int nb_checkpoint_save(const char *path, const char *config, const nb_params *p,
                       const nb_optim *o, const nb_train_state *s) {
    if (!path || !p) {
        nb_set_error("checkpoint_save: NULL %s", path ? "parameter store" : "path");
        return -1;
    }
    if (o && o->p != p) {
        nb_set_error("checkpoint_save: %s: the optimizer belongs to another parameter store", path);
        return -1;
    }
    if (s && (s->n_user < 0 || (s->n_user > 0 && !s->user))) {
        nb_set_error("checkpoint_save: %s: %lld user values at %p", path, (long long)s->n_user,
                     (const void *)(s ? s->user : NULL));
        return -1;
    }
    if (!config) config = "";
    size_t clen = strlen(config);
    if (clen > UINT32_MAX / 2) {
        nb_set_error("checkpoint_save: %s: configuration too long (%zu bytes)", path, clen);
        return -1;
    }
    size_t plen;
    unsigned char *pimg = nb__params_encode(p, &plen);
    if (!pimg) {
        nb_set_error("checkpoint_save: %s: out of memory", path);
        return -1;
    }
    int nsl = o ? nb__optim_nslabs(o) : 0;
    size_t size = 8 + 4 + 4 + 4 + clen;
    if (s) size += STATE_HEAD + 8 * (size_t)s->n_user;
    if (o) size += OPT_HEAD + 8 * (size_t)nsl * (size_t)o->n;
    size += 8 + plen + 4;
    unsigned char *buf = nn_malloc(size);
    if (!buf) {
        free(pimg);
        nb_set_error("checkpoint_save: %s: out of memory (%zu bytes)", path, size);
        return -1;
    }
    unsigned char *w = buf;
    memcpy(w, MAGIC, 8);
    put_u32(w + 8, VERSION);
    put_u32(w + 12, (o ? HAS_OPTIM : 0) | (s ? HAS_STATE : 0));
    put_u32(w + 16, (uint32_t)clen);
    memcpy(w + 20, config, clen);
    w += 20 + clen;
    if (s) {
        put_u64(w, (uint64_t)s->epoch);
        put_u64(w + 8, (uint64_t)s->batch);
        put_u64(w + 16, (uint64_t)s->step);
        put_u64(w + 24, s->rng.state);
        put_f64(w + 32, s->rng.spare);
        put_u32(w + 40, (uint32_t)s->rng.has_spare);
        put_u32(w + 44, 0);
        put_u64(w + 48, (uint64_t)s->n_user);
        w += STATE_HEAD;
        for (int64_t i = 0; i < s->n_user; i++, w += 8) put_f64(w, s->user[i]);
    }
    if (o) {
        put_u32(w, (uint32_t)o->kind);
        put_u32(w + 4, (uint32_t)nsl);
        const double co[6] = {o->lr, o->mom, o->b1, o->b2, o->eps, o->wd};
        for (int k = 0; k < 6; k++) put_f64(w + 8 + 8 * k, co[k]);
        put_u64(w + 56, (uint64_t)o->t);
        put_u64(w + 64, (uint64_t)o->n);
        w += OPT_HEAD;
        const double *sl[2] = {o->m, o->v};
        for (int k = 0; k < nsl; k++)
            for (int64_t i = 0; i < o->n; i++, w += 8) put_f64(w, sl[k][i]);
    }
    put_u64(w, (uint64_t)plen);
    memcpy(w + 8, pimg, plen);
    w += 8 + plen;
    free(pimg);
    put_u32(w, nb__crc32(0, buf, (size_t)(w - buf)));
    int rc = nb__write_file_atomic("checkpoint_save", path, buf, size);
    free(buf);
    return rc;
}

/* The value of key `key` (klen bytes) in a "key=value" per line text: a
   pointer to it and its length, or NULL. */
static const char *lookup(const char *text, size_t tlen, const char *key, size_t klen,
                          size_t *vlen) {
    const char *e = text + tlen;
    for (const char *l = text; l < e;) {
        const char *nl = memchr(l, '\n', (size_t)(e - l));
        const char *le = nl ? nl : e;
        const char *eq = memchr(l, '=', (size_t)(le - l));
        size_t kl = eq ? (size_t)(eq - l) : (size_t)(le - l);
        if (kl == klen && memcmp(l, key, klen) == 0) {
            const char *v = eq ? eq + 1 : le;
            *vlen = (size_t)(le - v);
            return v;
        }
        l = nl ? nl + 1 : e;
    }
    return NULL;
}

/* The first difference between two configurations, as a message; 0 when
   they are equal line for line (in any order). */
static int config_differs(const char *path, const char *a, size_t alen, const char *b,
                          size_t blen) {
    for (int pass = 0; pass < 2; pass++) {
        const char *x = pass ? b : a, *y = pass ? a : b;
        size_t xl = pass ? blen : alen, yl = pass ? alen : blen;
        const char *e = x + xl;
        for (const char *l = x; l < e;) {
            const char *nl = memchr(l, '\n', (size_t)(e - l));
            const char *le = nl ? nl : e;
            const char *eq = memchr(l, '=', (size_t)(le - l));
            size_t kl = eq ? (size_t)(eq - l) : (size_t)(le - l);
            const char *v = eq ? eq + 1 : le;
            size_t vl = (size_t)(le - v), ovl = 0;
            const char *ov = kl ? lookup(y, yl, l, kl, &ovl) : NULL;
            if (kl && (!ov || ovl != vl || memcmp(ov, v, vl) != 0)) {
                const char *fv = pass ? ov : v, *nv = pass ? v : ov;
                size_t fl = pass ? ovl : vl, nvl = pass ? vl : ovl;
                nb_set_error("checkpoint_load: %s: written by another configuration: %.*s is "
                             "%s%.*s%s in the checkpoint, %s%.*s%s now",
                             path, (int)kl, l, fv ? "'" : "", fv ? (int)fl : 6,
                             fv ? fv : "absent", fv ? "'" : "", nv ? "'" : "",
                             nv ? (int)nvl : 6, nv ? nv : "absent", nv ? "'" : "");
                return 1;
            }
            l = nl ? nl + 1 : e;
        }
    }
    return 0;
}

int nb_checkpoint_load(const char *path, const char *config, nb_params *p, nb_optim *o,
                       nb_train_state *s) {
    if (!path || !p) {
        nb_set_error("checkpoint_load: NULL %s", path ? "parameter store" : "path");
        return -1;
    }
    if (o && o->p != p) {
        nb_set_error("checkpoint_load: %s: the optimizer belongs to another parameter store", path);
        return -1;
    }
    if (!config) config = "";
    size_t len;
    unsigned char *buf = nb__read_file("checkpoint_load", path, &len, false);
    if (!buf) return -1;
    double *ns[2] = {NULL, NULL};
    const unsigned char *r = buf, *end = buf + len;

#define FAIL(...)             \
    do {                      \
        nb_set_error(__VA_ARGS__); \
        goto fail;            \
    } while (0)
#define NEED(n, what)                                                                          \
    do {                                                                                       \
        if ((size_t)(end - r) < (size_t)(n))                                                   \
            FAIL("checkpoint_load: %s: truncated file (%zu bytes, ends inside %s)", path, len, \
                 what);                                                                        \
    } while (0)

    /* 1. the structure, bounds-checked */
    NEED(8, "the magic");
    if (memcmp(r, MAGIC, 8) != 0)
        FAIL("checkpoint_load: %s: not a nabla checkpoint (bad magic)", path);
    NEED(20, "the header");
    uint32_t version = get_u32(r + 8), flags = get_u32(r + 12), clen = get_u32(r + 16);
    if (version != VERSION)
        FAIL("checkpoint_load: %s: unsupported version %u (this nabla reads version %u)", path,
             version, VERSION);
    if (flags & ~(uint32_t)(HAS_OPTIM | HAS_STATE))
        FAIL("checkpoint_load: %s: corrupted header (flags %08x)", path, flags);
    r += 20;
    NEED(clen, "the configuration");
    const char *fconf = (const char *)r;
    r += clen;
    const unsigned char *st = NULL, *op = NULL;
    int64_t n_user = 0, on = 0;
    uint32_t nsl = 0;
    if (flags & HAS_STATE) {
        NEED(STATE_HEAD, "the training state");
        st = r;
        n_user = (int64_t)get_u64(r + 48);
        r += STATE_HEAD;
        if (n_user < 0 || (uint64_t)n_user > (uint64_t)(end - r) / 8)
            FAIL("checkpoint_load: %s: truncated file (%zu bytes, announces %lld user values)",
                 path, len, (long long)n_user);
        r += 8 * (size_t)n_user;
    }
    if (flags & HAS_OPTIM) {
        NEED(OPT_HEAD, "the optimizer state");
        op = r;
        nsl = get_u32(r + 4);
        on = (int64_t)get_u64(r + 64);
        r += OPT_HEAD;
        if (nsl > 2 || on < 0 || (uint64_t)on > (uint64_t)(end - r) / 16)
            FAIL("checkpoint_load: %s: truncated or corrupted optimizer state (%u slabs of %lld "
                 "values in a %zu-byte file)",
                 path, nsl, (long long)on, len);
        r += 8 * (size_t)nsl * (size_t)on;
    }
    NEED(8, "the parameters' length");
    uint64_t plen = get_u64(r);
    r += 8;
    if (plen > (uint64_t)(end - r) || (size_t)(end - r) - plen < 4)
        FAIL("checkpoint_load: %s: truncated file (%zu bytes, the parameters announce %llu)", path,
             len, (unsigned long long)plen);
    const unsigned char *pimg = r;
    r += plen;
    if ((size_t)(end - r) != 4)
        FAIL("checkpoint_load: %s: %zu unexpected bytes after the data", path,
             (size_t)(end - r) - 4);
    /* 2. the checksum */
    uint32_t want = get_u32(r), got = nb__crc32(0, buf, len - 4);
    if (want != got)
        FAIL("checkpoint_load: %s: checksum mismatch, the file is corrupted (CRC-32 %08x, "
             "stored %08x)",
             path, got, want);
    /* 3. the file against the caller's run */
    if (config_differs(path, fconf, clen, config, strlen(config))) goto fail;
    if (!!st != !!s)
        FAIL("checkpoint_load: %s: the file %s a training state, the caller %s", path,
             st ? "holds" : "has no", s ? "asks for one" : "gives none");
    if (s && n_user != s->n_user)
        FAIL("checkpoint_load: %s: the file holds %lld user values, the caller expects %lld", path,
             (long long)n_user, (long long)s->n_user);
    if (s && n_user > 0 && !s->user) FAIL("checkpoint_load: %s: NULL user values", path);
    if (!!op != !!o)
        FAIL("checkpoint_load: %s: the file %s optimizer state, the caller %s", path,
             op ? "holds" : "has no", o ? "gives an optimizer" : "gives none");
    if (o) {
        static const char *const names[6] = {"lr", "momentum", "beta1", "beta2", "eps",
                                             "weight decay"};
        uint32_t kind = get_u32(op);
        if (kind != (uint32_t)o->kind)
            FAIL("checkpoint_load: %s: the file holds %s state, the optimizer is %s", path,
                 kind == NB__OPT_ADAM ? "Adam" : kind == NB__OPT_SGD ? "SGD" : "unknown",
                 o->kind == NB__OPT_ADAM ? "Adam" : "SGD");
        const double mine[6] = {o->lr, o->mom, o->b1, o->b2, o->eps, o->wd};
        for (int k = 1; k < 6; k++) { /* lr is restored, the others must agree */
            double f = get_f64(op + 8 + 8 * k);
            if (!(f == mine[k]))
                FAIL("checkpoint_load: %s: the optimizer's %s is %.17g in the file, %.17g now",
                     path, names[k], f, mine[k]);
        }
        double flr = get_f64(op + 8);
        if (!(flr > 0) || !isfinite(flr))
            FAIL("checkpoint_load: %s: corrupted optimizer state (lr %g)", path, flr);
        if ((int)nsl != nb__optim_nslabs(o))
            FAIL("checkpoint_load: %s: corrupted optimizer state (%u state slabs, %s needs %d)",
                 path, nsl, o->kind == NB__OPT_ADAM ? "Adam" : "SGD", nb__optim_nslabs(o));
        if (on > p->numel)
            FAIL("checkpoint_load: %s: the optimizer state covers %lld values, the store has %lld",
                 path, (long long)on, (long long)p->numel);
        if ((int64_t)get_u64(op + 56) < 0)
            FAIL("checkpoint_load: %s: corrupted optimizer state (negative step count)", path);
        for (uint32_t k = 0; k < nsl; k++) {
            ns[k] = nn_malloc((size_t)(on ? on : 1) * sizeof(double));
            if (!ns[k]) FAIL("checkpoint_load: %s: out of memory", path);
        }
    }
    if (nb__params_decode("checkpoint_load", path, pimg, (size_t)plen, p, false)) goto fail;

    /* 4. everything checked: copy in */
    nb__params_decode("checkpoint_load", path, pimg, (size_t)plen, p, true);
    if (s) {
        s->epoch = (int64_t)get_u64(st);
        s->batch = (int64_t)get_u64(st + 8);
        s->step = (int64_t)get_u64(st + 16);
        s->rng.state = get_u64(st + 24);
        s->rng.spare = get_f64(st + 32);
        s->rng.has_spare = (int)get_u32(st + 40);
        for (int64_t i = 0; i < n_user; i++) s->user[i] = get_f64(st + STATE_HEAD + 8 * i);
    }
    if (o) {
        const unsigned char *sv = op + OPT_HEAD;
        for (uint32_t k = 0; k < nsl; k++)
            for (int64_t i = 0; i < on; i++, sv += 8) ns[k][i] = get_f64(sv);
        free(o->m);
        free(o->v);
        o->m = ns[0];
        o->v = ns[1];
        o->n = on;
        o->lr = get_f64(op + 8);
        o->t = (int64_t)get_u64(op + 56);
    }
    free(buf);
    return 0;
fail:
    free(ns[0]);
    free(ns[1]);
    free(buf);
    return -1;
#undef NEED
#undef FAIL
}
