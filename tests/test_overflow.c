/*
 * Size overflow: shapes whose element count overflows int64, or whose byte
 * size overflows size_t, are refused with a message naming the op, before
 * anything is allocated, and are never wrapped around to a small size.
 *
 * "Before anything is allocated" is checked with the failure-injection
 * hook: the first allocation of the call is armed to fail; if the hook is
 * still armed afterwards, the call tried no allocation at all.
 *
 * Also: a tensor with no elements but huge sizes, e.g. (0, 2^60, 2^20), is
 * either refused or safe to use (the strides and offsets that ops compute
 * from its sizes must not overflow); this is meaningful in the UBSan build
 * (.ci/reliability.sh), where a signed overflow aborts.  And work follows the
 * number of elements: an empty result with 2^40 batches returns at once (an
 * alarm fails the test after 120 s).
 */
#include "internal.h"

#include "check.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define P2(k) ((int64_t)1 << (k))

static int64_t live(void) {
    nb_mem_stats s;
    nb_memory_stats(&s);
    return s.live_tensors;
}

static int refusals;

/* The message starts with one of the names in `who` ("a|b") and a colon and
   says why (overflow, too many/large; for reshape, that the element counts
   differ: nothing was wrapped to match). */
static bool msg_ok(const char *m, const char *who) {
    if (!m) return false;
    bool named = false;
    const char *w = who;
    while (*w && !named) {
        size_t k = strcspn(w, "|");
        named = strncmp(m, w, k) == 0 && m[k] == ':';
        w += k + (w[k] == '|');
    }
    bool why = strstr(m, "overflow") || strstr(m, "too many") || strstr(m, "too large") ||
               strstr(m, "too big") || strstr(m, "cannot reshape");
    return named && why;
}

#define REFUSED(expr, who)                                                                   \
    do {                                                                                     \
        nb_clear_error();                                                                    \
        int64_t l0_ = live();                                                                \
        nb__fail_alloc_after(1);                                                             \
        void *r_ = (void *)(expr);                                                           \
        bool untouched_ = nb__fail_alloc_left() == 1;                                      \
        nb__fail_alloc_after(0);                                                             \
        const char *m_ = nb_last_error();                                                    \
        CHECK(r_ == NULL);                                                                   \
        CHECK(untouched_);                                                                   \
        CHECK(live() == l0_);                                                                \
        if (!msg_ok(m_, who)) {                                                              \
            fprintf(stderr, "%s:%d: %s: message %s%s%s (expected '%s: ... overflow')\n",      \
                    __FILE__, __LINE__, #expr, m_ ? "'" : "", m_ ? m_ : "(none)",            \
                    m_ ? "'" : "", who);                                                     \
            CHECK(0);                                                                        \
        } else {                                                                             \
            CHECK(1);                                                                        \
        }                                                                                    \
        refusals++;                                                                          \
    } while (0)

/* shapes whose element count or byte size overflows */
typedef struct {
    int ndim;
    int64_t s[NB_MAX_DIMS];
    const char *what;
} bad_shape;

static const bad_shape bad[] = {
    {2, {INT64_MAX, 2}, "INT64_MAX x 2"},
    {2, {P2(32), P2(32)}, "2^32 x 2^32 (wraps to 0 in int64)"},
    {8, {P2(8), P2(8), P2(8), P2(8), P2(8), P2(8), P2(8), P2(8)}, "8 dims of 2^8 (2^64)"},
    {1, {P2(61)}, "2^61 elements: 2^64 bytes (wraps size_t to 0)"},
    {1, {P2(62)}, "2^62 elements: 2^65 bytes"},
    {1, {INT64_MAX}, "INT64_MAX elements"},
    {2, {3037000500LL, 3037000500LL}, "just over INT64_MAX"},
    {3, {P2(31), P2(31), 4}, "2^64 in three factors"},
    {2, {P2(60), 16}, "2^64 elements"},
    {4, {P2(16), P2(16), P2(16), P2(16) + 1}, "2^64 + 2^48"},
    {2, {P2(61) + 1, 8}, "bytes = 2^67 + 64"},
    {3, {P2(21), P2(21), P2(21)}, "2^63"},
};
#define NBAD (int)(sizeof bad / sizeof *bad)

static void creation(void) {
    static double data[16];
    for (int i = 0; i < NBAD; i++) {
        const bad_shape *b = &bad[i];
        fprintf(stderr, "  creation with %s\n", b->what);
        REFUSED(nb_zeros(b->ndim, b->s), "zeros|full");
        REFUSED(nb_ones(b->ndim, b->s), "ones|full");
        REFUSED(nb_full(b->ndim, b->s, 3.0), "full");
        REFUSED(nb_randn(b->ndim, b->s, 1), "randn");
        REFUSED(nb_rand(b->ndim, b->s, 1), "rand");
        REFUSED(nb_new(data, b->ndim, b->s), "new");
    }
    REFUSED(nb_vector(data, INT64_MAX), "new|vector");
    REFUSED(nb_matrix(data, P2(32), P2(32)), "new|matrix");
    REFUSED(nb_column(data, INT64_MAX), "new|column");
}

static void reshape_and_broadcast(void) {
    size_t mark = nb_scope_begin();
    int64_t s6[2] = {2, 3}, s0[2] = {0, 3};
    nb_tensor *a = nb_ones(2, s6), *z = nb_zeros(2, s0), *one = nb_scalar(2.0);
    for (int i = 0; i < NBAD; i++) {
        const bad_shape *b = &bad[i];
        REFUSED(nb_broadcast_to(one, b->ndim, b->s), "broadcast_to");
        REFUSED(nb_reshape(a, b->ndim, b->s), "reshape");
    }
    /* a 0-element tensor into shapes whose product wraps to 0 */
    int64_t w1[2] = {P2(32), P2(32)}, w2[2] = {P2(62), 4}, w3[3] = {P2(32), -1, P2(32)};
    int64_t w4[8] = {P2(8), P2(8), P2(8), P2(8), P2(8), P2(8), P2(8), P2(8)};
    REFUSED(nb_reshape(z, 2, w1), "reshape");
    REFUSED(nb_reshape(z, 2, w2), "reshape");
    REFUSED(nb_reshape(z, 8, w4), "reshape");
    /* -1 next to sizes whose product overflows: nothing to infer */
    nb_clear_error();
    CHECK(nb_reshape(z, 3, w3) == NULL && nb_last_error() != NULL);
    int64_t w5[2] = {INT64_MAX, -1};
    nb_clear_error();
    CHECK(nb_reshape(a, 2, w5) == NULL && nb_last_error() != NULL);
    /* control: a valid -1 */
    int64_t ok[2] = {3, -1};
    nb_tensor *r = nb_reshape(a, 2, ok);
    CHECK(r && nb_shape(r)[0] == 3 && nb_shape(r)[1] == 2);
    nb_scope_end(mark);
}

/* results whose size overflows, from inputs that are fine */
static void results(void) {
    size_t mark = nb_scope_begin();
    /* (2^31, 0) @ (0, 2^31) = (2^31, 2^31): 2^62 elements, 2^65 bytes */
    int64_t sa[2] = {P2(31), 0}, sb[2] = {0, P2(31)};
    nb_tensor *a = nb_zeros(2, sa), *b = nb_zeros(2, sb);
    CHECK(a != NULL && b != NULL);
    REFUSED(nb_matmul(a, b), "matmul");
    /* batched: (2^20, 2^20, 0) @ (0, 2^30) -> (2^20, 2^20, 2^30) */
    int64_t sc[3] = {P2(20), P2(20), 0}, sd[2] = {0, P2(30)};
    nb_tensor *c = nb_zeros(3, sc), *d = nb_zeros(2, sd);
    CHECK(c != NULL && d != NULL);
    REFUSED(nb_matmul(c, d), "matmul");
    /* batch axes that broadcast to an overflowing count:
       (2^32, 1, 0, 1) @ (2^32, 1, 0)... the output (2^32, 2^32, 0, 0) has no
       elements, so it may be made; (2^32, 1, 1, 0) @ (1, 2^32, 0, 1) gives
       (2^32, 2^32, 1, 1): 2^64 elements */
    int64_t se[4] = {P2(32), 1, 1, 0}, sf[4] = {1, P2(32), 0, 1};
    nb_tensor *e = nb_zeros(4, se), *f = nb_zeros(4, sf);
    CHECK(e != NULL && f != NULL);
    REFUSED(nb_matmul(e, f), "matmul");
    /* a reduction of a 0-element tensor whose result would overflow */
    int64_t sg[3] = {0, P2(32), P2(32)};
    nb_tensor *g = nb_zeros(3, sg);
    if (g) { /* nabla may refuse such a tensor outright; if it makes it: */
        REFUSED(nb_sum_axis(g, 0, false), "sum_axis");
        REFUSED(nb_mean_axis(g, 0, true), "mean_axis");
    }
    /* a store refuses an overflowing parameter and stays as it was */
    nb_params *P = nb_params_new();
    int64_t small[1] = {4};
    CHECK(nb_params_add(P, "w", 1, small) != NULL);
    for (int i = 0; i < NBAD; i++) REFUSED(nb_params_add(P, "big", bad[i].ndim, bad[i].s), "params_add");
    /* two parameters each fine, together more values than fit */
    int64_t half[1] = {P2(61)};
    nb_clear_error();
    CHECK(nb_params_add(P, "half1", 1, half) == NULL); /* 2^64 bytes: refused by size */
    CHECK(nb_last_error() != NULL);
    CHECK(nb_params_count(P) == 1 && nb_params_numel(P) == 4);
    nb_params_free(P);
    /* a batcher over an absurd count */
    nb_clear_error();
    CHECK(nb_batcher_new(INT64_MAX, 1, true, false, 1) == NULL && nb_last_error() != NULL);
    nb_scope_end(mark);
}

/* A tensor with no elements but huge sizes: refused, or usable without any
   size or stride computation overflowing (UBSan checks the latter). */
static void empty_but_huge(void) {
    size_t mark = nb_scope_begin();
    int64_t s[3] = {0, P2(60), P2(20)};
    nb_tensor *a = nb_zeros(3, s);
    if (!a) {
        CHECK(nb_last_error() != NULL);
        printf("  (0, 2^60, 2^20) is refused at creation\n");
        nb_scope_end(mark);
        return;
    }
    printf("  (0, 2^60, 2^20) is accepted; ops on it must not overflow\n");
    CHECK(nb_numel(a) == 0);
    nb_tensor *r;
    nb_clear_error();
    r = nb_broadcast_to(a, 3, s);
    CHECK(r == NULL ? nb_last_error() != NULL : nb_numel(r) == 0);
    r = nb_softmax(a, 0);
    CHECK(r == NULL ? nb_last_error() != NULL : nb_numel(r) == 0);
    r = nb_log_softmax(a, 2);
    CHECK(r == NULL ? nb_last_error() != NULL : nb_numel(r) == 0);
    r = nb_transpose(a);
    CHECK(r == NULL ? nb_last_error() != NULL : nb_numel(r) == 0);
    r = nb_sum_axis(a, 2, true);
    CHECK(r == NULL ? nb_last_error() != NULL : nb_numel(r) == 0);
    r = nb_max_axis(a, 1, false);
    CHECK(r == NULL ? nb_last_error() != NULL : nb_numel(r) == 0);
    nb_tensor *c = nb_zeros(3, (int64_t[]){0, 1, 1}); /* general broadcasting path */
    r = c ? nb_add(a, c) : NULL;
    CHECK(r == NULL ? nb_last_error() != NULL : nb_numel(r) == 0);
    int64_t sb[3] = {0, P2(20), 1};
    nb_tensor *b = nb_zeros(3, sb);
    r = b ? nb_matmul(a, b) : NULL;
    CHECK(r == NULL ? nb_last_error() != NULL : nb_numel(r) == 0);
    if (nb_requires_grad(a)) {
        nb_tensor *loss = nb_sum(nb_tanh(nb_transpose(a)));
        CHECK(loss == NULL || nb_backward(loss, NULL) == 0 || nb_last_error() != NULL);
    }
    nb_scope_end(mark);
}

/* An empty result with a huge batch count: the work must follow the
   elements, not the batch count (2^40 empty products would take hours). */
static void empty_batches(void) {
    size_t mark = nb_scope_begin();
    int64_t sa[4] = {P2(20), P2(20), 0, 3}, sb[2] = {3, 2};
    nb_tensor *a = nb_zeros(4, sa), *b = nb_zeros(2, sb);
    if (a && b) {
        nb_tensor *c = nb_matmul(a, b);
        CHECK(c != NULL && nb_numel(c) == 0);
        if (c) {
            /* the gradient of b is a sum of 2^40 empty products; nabla may
               refuse it (it forms the per-batch products first), but with a
               message and without a wait */
            nb_tensor *s = nb_sum(c);
            nb_clear_error();
            CHECK(s != NULL && (nb_backward(s, NULL) == 0 || nb_last_error() != NULL));
        }
        nb_tensor *m = nb_max_axis(a, 3, false); /* (2^20, 2^20, 0): empty */
        CHECK(m != NULL && nb_numel(m) == 0);
        nb_tensor *sm = nb_softmax(a, 1);
        CHECK(sm != NULL && nb_numel(sm) == 0);
    }
    nb_scope_end(mark);
}

/* Readers: files that declare huge sizes are refused with a message, and
   nothing of that size is allocated (the injection hook would report it:
   only the file buffer may be allocated). */
static void write_file(const char *path, const unsigned char *b, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    fwrite(b, 1, n, f);
    fclose(f);
}

static void readers(void) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/nabla_overflow_%d.bin", (int)getpid());
    /* IDX float64, 4 dims of 0xFFFFFFFF: 2^128 elements declared */
    unsigned char idx[4 + 16 + 8] = {0, 0, 0x0E, 4};
    memset(idx + 4, 0xFF, 16);
    write_file(path, idx, sizeof idx);
    nb_clear_error();
    int64_t l0 = live();
    CHECK(nb_idx_read(path) == NULL);
    CHECK(nb_last_error() != NULL && strncmp(nb_last_error(), "idx_read:", 9) == 0);
    CHECK(live() == l0);
    /* IDX ubyte, 2 dims of 2^32-1: 2^64 elements, wraps to 1 in 64 bits */
    unsigned char idx2[4 + 8 + 1] = {0, 0, 0x08, 2, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 7};
    write_file(path, idx2, sizeof idx2);
    nb_clear_error();
    CHECK(nb_idx_read(path) == NULL && nb_last_error() != NULL);
    /* IDX: 0 x 2^32-1 x 2^32-1 x 2^32-1: no elements, huge sizes */
    unsigned char idx3[4 + 16] = {0, 0, 0x08, 4, 0, 0, 0, 0};
    memset(idx3 + 8, 0xFF, 12);
    write_file(path, idx3, sizeof idx3);
    nb_clear_error();
    nb_tensor *t = nb_idx_read(path);
    CHECK(t == NULL ? nb_last_error() != NULL : nb_numel(t) == 0);
    /* a parameter file declaring a tensor of 2^62 x 2^62 values */
    nb_params *P = nb_params_new();
    CHECK(nb_params_add(P, "w", 1, (int64_t[]){2}) != NULL);
    unsigned char pf[8 + 4 + 4 + 4 + 1 + 4 + 16 + 4] = "NBPARAMS";
    unsigned char *q = pf + 8;
    uint32_t u[3] = {1, 1, 1};
    memcpy(q, &u[0], 4); /* version, little-endian on the machines we build on */
    memcpy(q + 4, &u[1], 4); /* count */
    memcpy(q + 8, &u[2], 4); /* name length */
    q[12] = 'w';
    uint32_t nd = 2;
    memcpy(q + 13, &nd, 4);
    int64_t big = P2(62);
    memcpy(q + 17, &big, 8);
    memcpy(q + 25, &big, 8);
    write_file(path, pf, sizeof pf);
    double before = nb_params_data(P)[0];
    nb_clear_error();
    CHECK(nb_params_load(P, path) == -1);
    CHECK(nb_last_error() != NULL && strncmp(nb_last_error(), "load:", 5) == 0);
    CHECK(nb_params_data(P)[0] == before);
    nb_params_free(P);
    remove(path);
}


int main(void) {
    check_alarm(120, "test_overflow: timed out (work that grows with sizes, not elements?)\n");
    size_t top = nb_scope_begin();
    creation();
    reshape_and_broadcast();
    results();
    empty_but_huge();
    empty_batches();
    readers();
    nb_scope_end(top);
    nb_cleanup();
    CHECK(live() == 0);
    printf("overflowing requests refused: %d\n", refusals);
    return check_report("test_overflow");
}
