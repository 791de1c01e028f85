/* The parameter store (one slab of values, one of gradients), layers, and
   saving/loading with every kind of bad file refused without side effects. */
#include "check.h"
#include "internal.h"
#include "nn/nn.h"

#include <math.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool has(const char *msg, const char *part) { return msg && strstr(msg, part); }

static void test_store(void) {
    size_t mark = nb_scope_begin();
    nb_params *P = nb_params_new();
    CHECK(P && nb_params_count(P) == 0 && nb_params_numel(P) == 0);
    nb_tensor *w = nb_params_add(P, "w", 2, (int64_t[]){2, 3});
    nb_tensor *b = nb_params_add(P, "b", 1, (int64_t[]){3});
    nb_tensor *s = nb_params_add(P, "s", 0, NULL);
    CHECK(w && b && s);
    CHECK(nb_params_count(P) == 3 && nb_params_numel(P) == 10);
    /* contiguous: w at 0, b at 6, s at 9, gradients at the same offsets */
    double *v = nb_params_data(P), *g = nb_params_grad(P);
    CHECK(nb_data(w) == v && nb_data(b) == v + 6 && nb_data(s) == v + 9);
    CHECK(nb_grad(w) && nb_data(nb_grad(w)) == g && nb_data(nb_grad(b)) == g + 6);
    CHECK(nb_requires_grad(w) && nb_is_leaf(w));
    CHECK_STR(nb_name(w), "w");
    CHECK_STR(nb_name(nb_grad(w)), "in_grad");
    CHECK_STR(nb_params_name(P, 1), "b");
    CHECK(nb_params_find(P, "b") == b && nb_params_find(P, "nope") == NULL);
    CHECK(nb_params_get(P, 3) == NULL && nb_params_get(P, -1) == NULL);
    for (int i = 0; i < 10; i++) CHECK(v[i] == 0.0 && g[i] == 0.0);

    /* errors leave the store unchanged */
    nb_clear_error();
    CHECK(nb_params_add(P, "w", 1, (int64_t[]){1}) == NULL && has(nb_last_error(), "already exists"));
    CHECK(nb_params_add(P, "", 1, (int64_t[]){1}) == NULL && has(nb_last_error(), "1 to 63"));
    char longname[80];
    memset(longname, 'x', 70);
    longname[70] = 0;
    CHECK(nb_params_add(P, longname, 1, (int64_t[]){1}) == NULL);
    CHECK(nb_params_add(P, "neg", 1, (int64_t[]){-2}) == NULL && nb_last_error());
    CHECK(nb_params_count(P) == 3 && nb_params_numel(P) == 10);

    /* a backward lands in the gradient slab: loss = sum(x @ w) with x (1, 2) = [2, 5]
       gives dw[i][j] = x[i] */
    nb_tensor *x = nb_matrix((double[]){2, 5}, 1, 2);
    nb_set_requires_grad(x, false);
    CHECK(nb_backward(nb_sum(nb_matmul(x, w)), NULL) == 0);
    const double want[6] = {2, 2, 2, 5, 5, 5};
    for (int i = 0; i < 6; i++) CHECK_NEAR(g[i], want[i], 0);
    CHECK(nb_data(nb_grad(w)) == g); /* the same tensor, not a replacement */
    /* accumulates */
    CHECK(nb_backward(nb_sum(nb_matmul(x, w)), NULL) == 0);
    CHECK_NEAR(g[3], 10, 0);
    nb_zero_grad(w);
    for (int i = 0; i < 6; i++) CHECK(g[i] == 0);
    g[7] = 3;
    nb_params_zero_grad(P);
    CHECK(g[7] == 0);

    /* growing moves the slabs: values and pointers follow */
    v[4] = 4.5;
    nb_data_mut(s)[0] = -1.25;
    for (int k = 0; k < 20; k++) {
        char name[16];
        snprintf(name, sizeof name, "big%d", k);
        CHECK(nb_params_add(P, name, 2, (int64_t[]){10, 50}) != NULL);
    }
    CHECK(nb_params_numel(P) == 10 + 20 * 500);
    v = nb_params_data(P);
    g = nb_params_grad(P);
    CHECK(nb_data(w) == v && nb_data(nb_grad(w)) == g && nb_data(s) == v + 9);
    CHECK(v[4] == 4.5 && v[9] == -1.25);
    nb_tensor *last = nb_params_find(P, "big19");
    CHECK(last && nb_data(last) == v + 10 + 19 * 500 && nb_data(nb_grad(last)) == g + 10 + 19 * 500);
    CHECK(nb_backward(nb_sum(nb_matmul(x, w)), NULL) == 0);
    CHECK(g[0] == 2 && g[5] == 5);

    /* a retained parameter outlives its store */
    nb_tensor *keep = nb_retain(b);
    nb_data_mut(b)[1] = 7;
    nb_params_free(P);
    CHECK(nb_data(keep)[1] == 7 && nb_numel(keep) == 3);
    nb_release(keep);
    nb_params_free(NULL);
    nb_scope_end(mark);
}

/* allocation failures at every point of building a layer leave the store as it was */
static void test_failures(void) {
    size_t mark = nb_scope_begin();
    nb_params *P = nb_params_new();
    CHECK(nb_params_add(P, "first", 1, (int64_t[]){5}) != NULL);
    nb_params_data(P)[2] = 42;
    int failed = 0, ok = 0;
    for (int k = 1; k < 40 && !ok; k++) {
        nb__fail_alloc_after(k);
        nb_mlp *m = nb_mlp_new(P, "m", 3, (int64_t[]){300, 20, 4}, NB_ACT_RELU, NB_INIT_AUTO, 1);
        nb__fail_alloc_after(0);
        if (m) {
            ok = 1;
            CHECK(nb_params_count(P) == 5 && nb_params_numel(P) == 5 + 300 * 20 + 20 + 20 * 4 + 4);
            nb_mlp_free(m);
        } else {
            failed++;
            CHECK(has(nb_last_error(), "out of memory"));
            CHECK(nb_params_count(P) == 1 && nb_params_numel(P) == 5);
            CHECK(nb_params_data(P)[2] == 42);
        }
        nb_clear_error();
    }
    CHECK(ok && failed > 0);
    nb_params_free(P);
    nb_scope_end(mark);
}

static nb_tensor *f_linear(int n, nb_tensor *const *in, void *ctx) {
    return nb_linear_forward(ctx, in[0]); /* in[1], in[2]: the layer's own W and b */
}

static void test_linear(void) {
    size_t mark = nb_scope_begin();
    nb_params *P = nb_params_new();
    nb_linear l;
    CHECK(nb_linear_init(&l, P, "fc", 2, 3, true, NB_INIT_ZEROS, 0) == 0);
    CHECK(l.in == 2 && l.out == 3 && nb_shape(l.weight)[0] == 3 && nb_shape(l.weight)[1] == 2);
    CHECK(nb_params_find(P, "fc.weight") == l.weight && nb_params_find(P, "fc.bias") == l.bias);
    const double W[6] = {1, 2, 3, 4, 5, 6}, B[3] = {0.5, -1, 0};
    memcpy(nb_data_mut(l.weight), W, sizeof W);
    memcpy(nb_data_mut(l.bias), B, sizeof B);
    nb_tensor *x = nb_matrix((double[]){1, 1, 2, -1}, 2, 2);
    nb_set_requires_grad(x, false);
    nb_tensor *y = nb_linear_forward(&l, x); /* x W^T + b */
    CHECK(y && nb_ndim(y) == 2 && nb_shape(y)[0] == 2 && nb_shape(y)[1] == 3);
    /* row 0: [1+2, 3+4, 5+6] + b; row 1: [2-2, 6-4, 10-6] + b */
    const double want[6] = {3.5, 6, 11, 0.5, 1, 4};
    for (int i = 0; i < 6 && y; i++) CHECK_NEAR(nb_data(y)[i], want[i], 1e-15);
    CHECK(nb_backward(nb_sum(y), NULL) == 0);
    /* d sum / dW[o][i] = sum_b x[b][i] = [3, 0]; d/db = 2 */
    const double *g = nb_params_grad(P);
    const double gw[6] = {3, 0, 3, 0, 3, 0};
    for (int i = 0; i < 6; i++) CHECK_NEAR(g[i], gw[i], 0);
    for (int i = 0; i < 3; i++) CHECK_NEAR(g[6 + i], 2, 0);
    /* wrong input width */
    nb_clear_error();
    CHECK(nb_linear_forward(&l, nb_matrix((double[]){1, 2, 3}, 1, 3)) == NULL);
    CHECK(has(nb_last_error(), "linear: input of shape (1, 3), expected (..., 2)"));
    CHECK(nb_linear_forward(&l, NULL) == NULL);
    /* a duplicate layer name fails and leaves the store unchanged */
    nb_clear_error();
    CHECK(nb_linear_init(&l, P, "fc", 2, 3, true, NB_INIT_AUTO, 0) == -1 && nb_last_error());
    CHECK(nb_params_count(P) == 2);
    CHECK(nb_linear_init(&l, P, "nob", 4, 1, false, NB_INIT_AUTO, 0) == 0 && l.bias == NULL);
    CHECK(nb_params_count(P) == 3);
    nb_params_free(P);

    /* a wide layer with a small batch (computed as (W xᵀ)ᵀ inside): values and
       gradients against plain loops, then a finite-difference check */
    P = nb_params_new();
    CHECK(nb_linear_init(&l, P, "wide", 50, 40, true, NB_INIT_XAVIER_UNIFORM, 3) == 0);
    for (int o = 0; o < 40; o++) nb_data_mut(l.bias)[o] = 0.01 * o;
    nb_tensor *xw = nb_randn(2, (int64_t[]){3, 50}, 4);    /* requires grad */
    y = nb_linear_forward(&l, xw);
    CHECK(y && nb_shape(y)[0] == 3 && nb_shape(y)[1] == 40);
    double maxdiff = 0;
    for (int r = 0; y && r < 3; r++)
        for (int o = 0; o < 40; o++) {
            double acc = nb_data(l.bias)[o];
            for (int i = 0; i < 50; i++) acc += nb_data(xw)[r * 50 + i] * nb_data(l.weight)[o * 50 + i];
            maxdiff = fmax(maxdiff, fabs(acc - nb_data(y)[r * 40 + o]));
        }
    CHECK(maxdiff < 1e-13);
    CHECK(nb_backward(nb_sum(y), NULL) == 0);
    maxdiff = 0;
    for (int o = 0; o < 40; o++)
        for (int i = 0; i < 50; i++) {
            double want_w = nb_data(xw)[i] + nb_data(xw)[50 + i] + nb_data(xw)[100 + i];
            maxdiff = fmax(maxdiff, fabs(nb_data(nb_grad(l.weight))[o * 50 + i] - want_w));
        }
    for (int o = 0; o < 40; o++) maxdiff = fmax(maxdiff, fabs(nb_data(nb_grad(l.bias))[o] - 3));
    for (int r = 0; r < 3; r++)
        for (int i = 0; i < 50; i++) {
            double want_x = 0;
            for (int o = 0; o < 40; o++) want_x += nb_data(l.weight)[o * 50 + i];
            maxdiff = fmax(maxdiff, fabs(nb_data(nb_grad(xw))[r * 50 + i] - want_x));
        }
    CHECK(maxdiff < 1e-13);
    double err = 1;
    CHECK(nb_gradcheck(f_linear, 3, (nb_tensor *[]){xw, l.weight, l.bias}, &l, 1e-6, &err) == 0);
    CHECK(err < 1e-7);
    nb_params_free(P);

    /* MLP: parameter layout and shapes; init statistics */
    P = nb_params_new();
    nb_mlp *m = nb_mlp_new(P, "net", 4, (int64_t[]){784, 256, 128, 10}, NB_ACT_RELU, NB_INIT_AUTO, 5);
    CHECK(m && nb_mlp_num_layers(m) == 3);
    CHECK(nb_params_numel(P) == 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10);
    CHECK(nb_params_find(P, "net.0.weight") && nb_params_find(P, "net.2.bias"));
    const nb_linear *l0 = nb_mlp_layer(m, 0);
    CHECK(l0 && l0->in == 784 && l0->out == 256 && nb_mlp_layer(m, 3) == NULL);
    /* He normal: mean 0, variance 2 / fan_in */
    double s1 = 0, s2 = 0;
    int64_t n = nb_numel(l0->weight);
    for (int64_t i = 0; i < n; i++) s1 += nb_data(l0->weight)[i], s2 += nb_data(l0->weight)[i] * nb_data(l0->weight)[i];
    CHECK_NEAR(s1 / n, 0, 0.002);
    CHECK_NEAR(s2 / n, 2.0 / 784, 0.02 * 2.0 / 784);
    nb_tensor *x2 = nb_zeros(2, (int64_t[]){5, 784});
    nb_tensor *z = nb_mlp_forward(m, x2);
    CHECK(z && nb_shape(z)[0] == 5 && nb_shape(z)[1] == 10);
    /* same seed, same weights */
    nb_params *Q = nb_params_new();
    nb_mlp *m2 = nb_mlp_new(Q, "net", 4, (int64_t[]){784, 256, 128, 10}, NB_ACT_RELU, NB_INIT_AUTO, 5);
    CHECK(m2 && memcmp(nb_params_data(P), nb_params_data(Q), sizeof(double) * (size_t)nb_params_numel(P)) == 0);
    nb_clear_error();
    CHECK(nb_mlp_new(Q, "bad", 1, (int64_t[]){3}, NB_ACT_RELU, NB_INIT_AUTO, 0) == NULL && nb_last_error());
    CHECK(nb_mlp_new(Q, "bad", 2, (int64_t[]){3, 0}, NB_ACT_RELU, NB_INIT_AUTO, 0) == NULL);
    nb_mlp_free(m);
    nb_mlp_free(m2);
    nb_params_free(P);
    nb_params_free(Q);
    nb_scope_end(mark);
}

/* ---- files ------------------------------------------------------------------ */
static char dir[256];

static void write_bytes(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(fwrite(b, 1, n, f) == n);
    fclose(f);
}

static unsigned char *read_bytes(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *b = malloc(1 << 20);
    *n = fread(b, 1, 1 << 20, f);
    fclose(f);
    return b;
}

/* a store with a (2, 3) "w" and a (3,) "b" holding 1..9 */
static nb_params *small_store(const char *wname, int64_t rows) {
    nb_params *P = nb_params_new();
    nb_params_add(P, wname, 2, (int64_t[]){rows, 3});
    nb_params_add(P, "b", 1, (int64_t[]){3});
    for (int64_t i = 0; i < nb_params_numel(P); i++) nb_params_data(P)[i] = (double)(i + 1);
    return P;
}

/* refused with a message containing `part`, and P's values untouched */
static void refused(nb_params *P, const char *path, const char *part) {
    int64_t n = nb_params_numel(P);
    double *before = malloc(sizeof(double) * (size_t)n);
    memcpy(before, nb_params_data(P), sizeof(double) * (size_t)n);
    nb_clear_error();
    CHECK(nb_params_load(P, path) == -1);
    if (!has(nb_last_error(), part)) {
        fprintf(stderr, "  expected '%s' in: %s\n", part, nb_last_error() ? nb_last_error() : "(none)");
        CHECK(0);
    }
    CHECK(memcmp(before, nb_params_data(P), sizeof(double) * (size_t)n) == 0);
    free(before);
}

static void test_save_load(void) {
    size_t mark = nb_scope_begin();
    char path[512], bad[512];
    snprintf(path, sizeof path, "%s/p.nbp", dir);
    snprintf(bad, sizeof bad, "%s/bad.nbp", dir);

    CHECK(nb__crc32(0, "123456789", 9) == 0xCBF43926u); /* the standard check value */

    nb_params *P = small_store("w", 2);
    CHECK(nb_params_save(P, path) == 0);
    size_t n;
    unsigned char *f = read_bytes(path, &n);
    CHECK(f != NULL);
    /* the layout by hand: 16 + (4+1+4+16) + (4+1+4+8) + 9*8 + 4 */
    CHECK(n == 16 + 25 + 17 + 72 + 4);
    CHECK(memcmp(f, "NBPARAMS\1\0\0\0\2\0\0\0", 16) == 0);
    CHECK(memcmp(f + 16, "\1\0\0\0w\2\0\0\0\2\0\0\0\0\0\0\0\3\0\0\0\0\0\0\0", 25) == 0);
    CHECK(memcmp(f + 41, "\1\0\0\0b\1\0\0\0\3\0\0\0\0\0\0\0", 17) == 0);
    /* 1.0 as little-endian float64: 00 00 00 00 00 00 f0 3f */
    CHECK(memcmp(f + 58, "\0\0\0\0\0\0\xf0\x3f", 8) == 0);
    uint32_t crc = (uint32_t)f[n - 4] | (uint32_t)f[n - 3] << 8 | (uint32_t)f[n - 2] << 16 | (uint32_t)f[n - 1] << 24;
    CHECK(crc == nb__crc32(0, f, n - 4));

    /* round trip, bit for bit, special values included */
    double *v = nb_params_data(P);
    v[0] = -0.0, v[1] = 1e-310, v[2] = 1.0 / 3.0, v[3] = -1e300;
    CHECK(nb_params_save(P, path) == 0);
    nb_params *Q = small_store("w", 2);
    nb_params_data(Q)[0] = 99;
    CHECK(nb_params_load(Q, path) == 0);
    CHECK(memcmp(nb_params_data(P), nb_params_data(Q), sizeof(double) * 9) == 0);
    /* names are matched, not positions: a store with the same tensors in another order */
    nb_params *R = nb_params_new();
    nb_params_add(R, "b", 1, (int64_t[]){3});
    nb_params_add(R, "w", 2, (int64_t[]){2, 3});
    CHECK(nb_params_load(R, path) == 0);
    CHECK(nb_params_data(R)[0] == 7 && nb_params_data(R)[5] == 1.0 / 3.0);
    nb_params_free(R);
    free(f);

    /* ---- bad files: each refused with a message, nothing changed */
    f = read_bytes(path, &n);
    refused(Q, "/nonexistent/dir/p.nbp", "cannot open");
    write_bytes(bad, "", 0);
    refused(Q, bad, "truncated");
    write_bytes(bad, "NOTPARAMxxxxxxxxxxxxxxxx", 24);
    refused(Q, bad, "bad magic");
    /* every truncation */
    int trunc_ok = 1;
    for (size_t k = 1; k < n; k++) {
        write_bytes(bad, f, k);
        nb_clear_error();
        if (nb_params_load(Q, bad) != -1 || !nb_last_error()) trunc_ok = 0;
    }
    CHECK(trunc_ok);
    write_bytes(bad, f, n - 10);
    refused(Q, bad, "truncated");
    /* every single corrupted byte (CRC-32 catches them all) */
    int corrupt_ok = 1;
    for (size_t k = 0; k < n; k++) {
        f[k] ^= 0x5a;
        write_bytes(bad, f, n);
        nb_clear_error();
        if (nb_params_load(Q, bad) != -1 || !nb_last_error()) corrupt_ok = 0;
        f[k] ^= 0x5a;
    }
    CHECK(corrupt_ok);
    f[70] ^= 1; /* a data byte */
    write_bytes(bad, f, n);
    refused(Q, bad, "checksum mismatch");
    f[70] ^= 1;
    /* trailing garbage */
    unsigned char *g = malloc(n + 3);
    memcpy(g, f, n);
    memcpy(g + n, "xyz", 3);
    write_bytes(bad, g, n + 3);
    refused(Q, bad, "unexpected bytes");
    free(g);
    /* another version, with a valid checksum */
    f[8] = 2;
    uint32_t c2 = nb__crc32(0, f, n - 4);
    unsigned char *h = malloc(n);
    memcpy(h, f, n);
    for (int k = 0; k < 4; k++) h[n - 4 + k] = (unsigned char)(c2 >> (8 * k));
    write_bytes(bad, h, n);
    refused(Q, bad, "unsupported version 2");
    f[8] = 1;
    free(h);
    /* shape mismatch: a store whose "w" is (3, 3) */
    nb_params *S = small_store("w", 3);
    refused(S, path, "parameter 'w' has shape (2, 3) in the file but (3, 3) in memory");
    nb_params_free(S);
    /* a store that lacks "w" (has "v"), or has one more tensor */
    S = small_store("v", 2);
    refused(S, path, "the store lacks");
    nb_params_add(S, "w", 2, (int64_t[]){2, 3});
    refused(S, path, "the file holds 2 tensors, the store 3");
    nb_params_free(S);
    /* the same name twice (well-formed otherwise) */
    S = nb_params_new();
    nb_params_add(S, "a", 1, (int64_t[]){1});
    nb_params_add(S, "b", 1, (int64_t[]){1});
    CHECK(nb_params_save(S, bad) == 0);
    free(f);
    f = read_bytes(bad, &n);
    f[16 + 4] = 'b'; /* rename "a" to "b" */
    c2 = nb__crc32(0, f, n - 4);
    for (int k = 0; k < 4; k++) f[n - 4 + k] = (unsigned char)(c2 >> (8 * k));
    write_bytes(bad, f, n);
    refused(S, bad, "appears twice");
    nb_params_free(S);
    /* a header announcing a huge tensor */
    S = small_store("w", 2);
    CHECK(nb_params_save(S, bad) == 0);
    free(f);
    f = read_bytes(bad, &n);
    f[16 + 4 + 1 + 4 + 7] = 0x7f; /* w's first size becomes ~2^62 */
    write_bytes(bad, f, n);
    refused(S, bad, "corrupted header");
    nb_params_free(S);
    free(f);
    /* saving where it cannot */
    nb_clear_error();
    CHECK(nb_params_save(P, "/nonexistent/dir/p.nbp") == -1 && has(nb_last_error(), "cannot open"));
    CHECK(nb_params_save(NULL, path) == -1 && nb_params_load(NULL, path) == -1);

    nb_params_free(P);
    nb_params_free(Q);
    unlink(bad);
    unlink(path);
    nb_scope_end(mark);
}

/* a trained-looking network saved and loaded predicts identically */
static void test_predictions(void) {
    size_t mark = nb_scope_begin();
    char path[512];
    snprintf(path, sizeof path, "%s/mlp.nbp", dir);
    nb_params *P = nb_params_new(), *Q = nb_params_new();
    const int64_t sz[4] = {6, 16, 8, 3};
    nb_mlp *a = nb_mlp_new(P, "m", 4, sz, NB_ACT_TANH, NB_INIT_AUTO, 11);
    nb_mlp *b = nb_mlp_new(Q, "m", 4, sz, NB_ACT_TANH, NB_INIT_AUTO, 99);
    CHECK(a && b);
    /* biases non-zero too */
    for (int64_t i = 0; i < nb_params_numel(P); i++) nb_params_data(P)[i] += 0.01 * (double)(i % 7);
    nb_tensor *x = nb_randn(2, (int64_t[]){20, 6}, 3);
    nb_tensor *za = nb_mlp_forward(a, x), *zb = nb_mlp_forward(b, x);
    CHECK(za && zb && memcmp(nb_data(za), nb_data(zb), sizeof(double) * 60) != 0);
    CHECK(nb_params_save(P, path) == 0);
    CHECK(nb_params_load(Q, path) == 0);
    zb = nb_mlp_forward(b, x);
    CHECK(zb && memcmp(nb_data(za), nb_data(zb), sizeof(double) * 60) == 0);
    nb_mlp_free(a);
    nb_mlp_free(b);
    nb_params_free(P);
    nb_params_free(Q);
    unlink(path);
    nb_scope_end(mark);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/nabla_nn_params_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_store();
    test_failures();
    test_linear();
    test_save_load();
    test_predictions();
    rmdir(dir);
    nb_cleanup();
    return check_report("nn_params");
}
