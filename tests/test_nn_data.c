/* Data: IDX (plain and gzip), CSV, minibatches, permutations, the RNG and
   initialisation; every bad file refused with a message, never a crash. */
#include "check.h"
#include "internal.h"
#include "nn/nn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool has(const char *msg, const char *part) { return msg && strstr(msg, part); }
static char dir[256];

static const char *tmp(const char *name) {
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/%s", dir, name);
    return buf;
}

static void write_bytes(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(fwrite(b, 1, n, f) == n);
    fclose(f);
}

/* A gzip member holding `n` bytes in one "stored" deflate block (RFC 1951/1952),
   built by hand so the test needs no zlib.  Returns its size. */
static size_t gzip_stored(const unsigned char *d, size_t n, unsigned char *out) {
    static const unsigned char hdr[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
    memcpy(out, hdr, 10);
    size_t k = 10;
    out[k++] = 1; /* BFINAL = 1, BTYPE = 00 */
    out[k++] = (unsigned char)(n & 255), out[k++] = (unsigned char)(n >> 8);
    out[k++] = (unsigned char)(~n & 255), out[k++] = (unsigned char)((~n >> 8) & 255);
    memcpy(out + k, d, n);
    k += n;
    uint32_t crc = nb__crc32(0, d, n);
    for (int i = 0; i < 4; i++) out[k++] = (unsigned char)(crc >> (8 * i));
    for (int i = 0; i < 4; i++) out[k++] = (unsigned char)((uint32_t)n >> (8 * i));
    return k;
}

static void idx_refused(const void *b, size_t n, const char *part) {
    write_bytes(tmp("bad.idx"), b, n);
    nb_clear_error();
    nb_tensor *t = nb_idx_read(tmp("bad.idx"));
    CHECK(t == NULL);
    if (!has(nb_last_error(), part)) {
        fprintf(stderr, "  expected '%s' in: %s\n", part, nb_last_error() ? nb_last_error() : "(none)");
        CHECK(0);
    }
}

static void test_idx(void) {
    size_t mark = nb_scope_begin();
    /* ubyte, 3-d (2, 2, 3) */
    unsigned char u8[4 + 12 + 12] = {0, 0, 0x08, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3};
    for (int i = 0; i < 12; i++) u8[16 + i] = (unsigned char)(i * 20 + 15);
    write_bytes(tmp("a.idx"), u8, sizeof u8);
    nb_tensor *t = nb_idx_read(tmp("a.idx"));
    CHECK(t && nb_ndim(t) == 3 && nb_shape(t)[0] == 2 && nb_shape(t)[1] == 2 && nb_shape(t)[2] == 3);
    CHECK(t && !nb_requires_grad(t));
    for (int i = 0; t && i < 12; i++) CHECK(nb_data(t)[i] == i * 20 + 15);
    CHECK(t && nb_data(t)[11] == 235);
    /* the same through gzip */
    unsigned char gz[256];
    size_t gn = gzip_stored(u8, sizeof u8, gz);
    write_bytes(tmp("a.idx.gz"), gz, gn);
    nb_clear_error();
    t = nb_idx_read(tmp("a.idx.gz"));
    bool zlib = t != NULL || !has(nb_last_error(), "without zlib");
    if (zlib) {
        CHECK(t && nb_numel(t) == 12 && nb_data(t)[5] == 115);
        /* corrupted gzip: a wrong CRC in the trailer, then a cut stream */
        gz[gn - 6] ^= 0xff;
        idx_refused(gz, gn, "corrupted or truncated gzip");
        gz[gn - 6] ^= 0xff;
        idx_refused(gz, gn - 12, "gzip");
        idx_refused(gz, 12, "gzip");
    }
    /* signed byte, int16, int32, float32, float64: big-endian */
    const unsigned char i8[] = {0, 0, 0x09, 1, 0, 0, 0, 2, 0xff, 0x7f};
    write_bytes(tmp("b.idx"), i8, sizeof i8);
    t = nb_idx_read(tmp("b.idx"));
    CHECK(t && nb_data(t)[0] == -1 && nb_data(t)[1] == 127);
    const unsigned char i16[] = {0, 0, 0x0B, 1, 0, 0, 0, 2, 0x80, 0x00, 0x01, 0x02};
    write_bytes(tmp("c.idx"), i16, sizeof i16);
    t = nb_idx_read(tmp("c.idx"));
    CHECK(t && nb_data(t)[0] == -32768 && nb_data(t)[1] == 258);
    const unsigned char i32[] = {0, 0, 0x0C, 1, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xfe};
    write_bytes(tmp("d.idx"), i32, sizeof i32);
    t = nb_idx_read(tmp("d.idx"));
    CHECK(t && nb_data(t)[0] == -2);
    const unsigned char f32[] = {0, 0, 0x0D, 1, 0, 0, 0, 1, 0x3f, 0xc0, 0, 0};        /* 1.5f  */
    write_bytes(tmp("e.idx"), f32, sizeof f32);
    t = nb_idx_read(tmp("e.idx"));
    CHECK(t && nb_data(t)[0] == 1.5);
    const unsigned char f64[] = {0, 0, 0x0E, 1, 0, 0, 0, 1, 0xc0, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18}; /* -pi */
    write_bytes(tmp("f.idx"), f64, sizeof f64);
    t = nb_idx_read(tmp("f.idx"));
    CHECK(t && nb_data(t)[0] == -3.141592653589793);

    /* bad files */
    nb_clear_error();
    CHECK(nb_idx_read(tmp("missing.idx")) == NULL && has(nb_last_error(), "cannot open"));
    CHECK(has(nb_last_error(), "missing.idx"));
    idx_refused("", 0, "not an IDX file");
    idx_refused("\x01\x00\x08\x01", 4, "not an IDX file");
    idx_refused("\0\0\x07\x01\0\0\0\1x", 9, "unknown data type 0x07");
    idx_refused("\0\0\x08\x00", 4, "0 dimensions");
    idx_refused("\0\0\x08\x09", 4, "9 dimensions");
    idx_refused("\0\0\x08\x02\0\0\0\2", 8, "truncated header");
    idx_refused(u8, sizeof u8 - 1, "truncated: 27 bytes, the header announces 28");
    unsigned char more[sizeof u8 + 2];
    memcpy(more, u8, sizeof u8);
    more[sizeof u8] = more[sizeof u8 + 1] = 0;
    idx_refused(more, sizeof more, "2 unexpected bytes");
    /* sizes that would overflow: 2^32-1 x 2^32-1 x ... */
    idx_refused("\0\0\x08\x03\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 16, "too large");
    /* every truncation of a valid file is refused */
    int all = 1;
    for (size_t k = 0; k < sizeof u8; k++) {
        write_bytes(tmp("bad.idx"), u8, k);
        nb_clear_error();
        if (nb_idx_read(tmp("bad.idx")) != NULL || !nb_last_error()) all = 0;
    }
    CHECK(all);
    nb_scope_end(mark);
}

/* the real data set, when installed */
static void test_fashion(void) {
    const char *path = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";
    if (access(path, R_OK) != 0) {
        printf("(fashion-mnist not installed: skipping its check)\n");
        return;
    }
    size_t mark = nb_scope_begin();
    nb_clear_error();
    nb_tensor *y = nb_idx_read(path);
    if (!y && has(nb_last_error(), "without zlib")) {
        printf("(built without zlib: skipping the fashion-mnist check)\n");
        nb_scope_end(mark);
        return;
    }
    CHECK(y && nb_ndim(y) == 1 && nb_shape(y)[0] == 10000);
    const double first[10] = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7};
    for (int i = 0; y && i < 10; i++) CHECK(nb_data(y)[i] == first[i]);
    int64_t count[10] = {0};
    for (int64_t i = 0; y && i < 10000; i++) count[(int)nb_data(y)[i]]++;
    for (int k = 0; k < 10; k++) CHECK(count[k] == 1000);
    nb_tensor *x = nb_idx_read("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz");
    CHECK(x && nb_ndim(x) == 3 && nb_shape(x)[0] == 10000 && nb_shape(x)[1] == 28 && nb_shape(x)[2] == 28);
    nb_scope_end(mark);
}

static void csv_refused(const char *text, bool header, const char *part) {
    write_bytes(tmp("bad.csv"), text, strlen(text));
    nb_clear_error();
    CHECK(nb_csv_read(tmp("bad.csv"), ',', header) == NULL);
    if (!has(nb_last_error(), part)) {
        fprintf(stderr, "  expected '%s' in: %s\n", part, nb_last_error() ? nb_last_error() : "(none)");
        CHECK(0);
    }
}

static void test_csv(void) {
    size_t mark = nb_scope_begin();
    const char *text = "x,y,label\r\n1, 2.5 ,0\r\n\r\n-3e2,\"4\",1\n  \n0.125,-0,2\n";
    write_bytes(tmp("a.csv"), text, strlen(text));
    nb_tensor *t = nb_csv_read(tmp("a.csv"), ',', true);
    CHECK(t && nb_ndim(t) == 2 && nb_shape(t)[0] == 3 && nb_shape(t)[1] == 3 && !nb_requires_grad(t));
    const double want[9] = {1, 2.5, 0, -300, 4, 1, 0.125, -0.0, 2};
    for (int i = 0; t && i < 9; i++) CHECK(nb_data(t)[i] == want[i]);
    /* another delimiter, no header, no final newline */
    write_bytes(tmp("b.csv"), "1;2\n3;4", 7);
    t = nb_csv_read(tmp("b.csv"), ';', false);
    CHECK(t && nb_shape(t)[0] == 2 && nb_shape(t)[1] == 2 && nb_data(t)[3] == 4);
    /* bad files */
    nb_clear_error();
    CHECK(nb_csv_read(tmp("none.csv"), ',', false) == NULL && has(nb_last_error(), "cannot open"));
    csv_refused("x,y\n1,2\n", false, "bad.csv:1: field 1 ('x') is not a number");
    csv_refused("1,2\n3,4,5\n", false, ":2: 3 fields, the rows before have 2");
    csv_refused("1,2\n3\n", false, ":2: 1 fields");
    csv_refused("1,,2\n", false, ":1: field 2 ('') is not a number");
    csv_refused("1,2x\n", false, "field 2 ('2x')");
    csv_refused("", false, "no data rows");
    csv_refused("a,b\n", true, "no data rows");
    csv_refused("\n\n  \n", false, "no data rows");
    char lng[300];
    memset(lng, '1', 299);
    lng[299] = 0;
    csv_refused(lng, false, "too long");
    /* binary junk: an error, not a crash */
    unsigned char junk[256];
    for (int i = 0; i < 256; i++) junk[i] = (unsigned char)(i * 37 + 11);
    write_bytes(tmp("junk.csv"), junk, sizeof junk);
    nb_clear_error();
    CHECK(nb_csv_read(tmp("junk.csv"), ',', false) == NULL && nb_last_error());
    nb_clear_error();
    CHECK(nb_csv_read(tmp("a.csv"), '\n', false) == NULL && has(nb_last_error(), "delimiter"));
    nb_scope_end(mark);
}

static void test_batches(void) {
    size_t mark = nb_scope_begin();
    /* gather */
    nb_tensor *x = nb_matrix((double[]){0, 1, 10, 11, 20, 21, 30, 31}, 4, 2);
    nb_tensor *g = nb_gather_rows(x, (int64_t[]){3, 0, 3}, 3);
    CHECK(g && nb_shape(g)[0] == 3 && nb_shape(g)[1] == 2 && !nb_requires_grad(g));
    const double want[6] = {30, 31, 0, 1, 30, 31};
    for (int i = 0; g && i < 6; i++) CHECK(nb_data(g)[i] == want[i]);
    nb_clear_error();
    CHECK(nb_gather_rows(x, (int64_t[]){4}, 1) == NULL);
    CHECK(has(nb_last_error(), "gather_rows: index 4 (at 0) out of range for shape (4, 2)"));
    CHECK(nb_gather_rows(x, (int64_t[]){-1}, 1) == NULL);
    CHECK(nb_gather_rows(nb_scalar(1), (int64_t[]){0}, 1) == NULL);

    /* permutations: each is one, reproducible, and seeds differ */
    enum { N = 1000 };
    static int64_t p1[N], p2[N], p3[N];
    nb_permutation(N, 42, p1);
    nb_permutation(N, 42, p2);
    nb_permutation(N, 43, p3);
    static int seen[N];
    memset(seen, 0, sizeof seen);
    int ok = 1;
    for (int i = 0; i < N; i++) {
        if (p1[i] < 0 || p1[i] >= N || seen[p1[i]]++) ok = 0;
    }
    CHECK(ok);
    CHECK(memcmp(p1, p2, sizeof p1) == 0 && memcmp(p1, p3, sizeof p1) != 0);
    int fixed = 0;
    for (int i = 0; i < N; i++) fixed += p1[i] == i;
    CHECK(fixed < 10); /* about 1 expected for a random permutation */

    /* batcher: 10 examples in batches of 4: 4, 4, 2, then 0 at the epoch's end */
    nb_batcher *b = nb_batcher_new(10, 4, true, false, 7);
    CHECK(b && nb_batcher_num_batches(b) == 3 && nb_batcher_epoch(b) == 0);
    int64_t epoch_perm[2][10];
    for (int e = 0; e < 2; e++) {
        const int64_t *idx;
        int64_t k, got = 0;
        int sizes[4] = {0}, nb = 0;
        int cnt[10] = {0};
        while ((k = nb_batcher_next(b, &idx)) > 0) {
            if (nb < 4) sizes[nb] = (int)k;
            nb++;
            for (int64_t i = 0; i < k; i++) {
                cnt[idx[i]]++;
                epoch_perm[e][got + i] = idx[i];
            }
            got += k;
        }
        CHECK(nb == 3 && sizes[0] == 4 && sizes[1] == 4 && sizes[2] == 2 && got == 10);
        for (int i = 0; i < 10; i++) CHECK(cnt[i] == 1);
        CHECK(nb_batcher_epoch(b) == e + 1);
    }
    CHECK(memcmp(epoch_perm[0], epoch_perm[1], sizeof epoch_perm[0]) != 0); /* reshuffled */
    nb_batcher_free(b);
    /* same seed, same batches; drop_last; no shuffle */
    b = nb_batcher_new(10, 4, true, false, 7);
    const int64_t *idx;
    CHECK(nb_batcher_next(b, &idx) == 4 && memcmp(idx, epoch_perm[0], 4 * sizeof(int64_t)) == 0);
    nb_batcher_free(b);
    b = nb_batcher_new(10, 4, false, true, 0);
    CHECK(nb_batcher_num_batches(b) == 2);
    CHECK(nb_batcher_next(b, &idx) == 4 && idx[0] == 0 && idx[3] == 3);
    CHECK(nb_batcher_next(b, &idx) == 4 && idx[0] == 4);
    CHECK(nb_batcher_next(b, &idx) == 0);
    CHECK(nb_batcher_next(b, &idx) == 4 && idx[0] == 0); /* the next epoch */
    nb_batcher_free(b);
    nb_clear_error();
    CHECK(nb_batcher_new(0, 4, true, false, 0) == NULL && has(nb_last_error(), "batcher"));
    CHECK(nb_batcher_new(5, 0, true, false, 0) == NULL);
    /* a batch size near INT64_MAX: one short batch, or none with drop_last
       (counting batches as (n + bs - 1) / bs overflows: UBSan stops here) */
    b = nb_batcher_new(10, INT64_MAX, false, false, 0);
    CHECK(b && nb_batcher_num_batches(b) == 1);
    CHECK(nb_batcher_next(b, &idx) == 10 && idx[9] == 9);
    CHECK(nb_batcher_next(b, &idx) == 0);
    nb_batcher_free(b);
    b = nb_batcher_new(10, INT64_MAX - 3, true, true, 7);
    CHECK(b && nb_batcher_num_batches(b) == 0 && nb_batcher_next(b, &idx) == 0);
    nb_batcher_free(b);
    nb_batcher_free(NULL);
    nb_scope_end(mark);
}

static void test_rng_init(void) {
    /* splitmix64's published first outputs for seed 0 */
    nb_rng r;
    nb_rng_seed(&r, 0);
    CHECK(nb_rng_next(&r) == 0xE220A8397B1DCDAFull);
    CHECK(nb_rng_next(&r) == 0x6E789E6AA1B965F4ull);
    CHECK(nb_rng_next(&r) == 0x06C45D188009454Full);
    nb_rng_seed(&r, 1);
    double s = 0, s2 = 0, lo = 1, hi = 0;
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        double u = nb_rng_uniform(&r);
        s += u;
        lo = fmin(lo, u), hi = fmax(hi, u);
    }
    CHECK(lo >= 0 && hi < 1);
    CHECK_NEAR(s / n, 0.5, 0.005);
    s = 0;
    for (int i = 0; i < n; i++) {
        double z = nb_rng_normal(&r);
        s += z, s2 += z * z;
    }
    CHECK_NEAR(s / n, 0, 0.01);
    CHECK_NEAR(s2 / n, 1, 0.02);
    int cnt[3] = {0};
    for (int i = 0; i < 30000; i++) cnt[nb_rng_below(&r, 3)]++;
    for (int k = 0; k < 3; k++) CHECK(abs(cnt[k] - 10000) < 400);

    size_t mark = nb_scope_begin();
    nb_tensor *w = nb_zeros(2, (int64_t[]){300, 200});
    /* Xavier uniform: within +-sqrt(6 / 500), variance a^2 / 3 = 2 / 500 */
    CHECK(nb_init_tensor(w, NB_INIT_XAVIER_UNIFORM, 200, 300, 9) == 0);
    double a = sqrt(6.0 / 500), m = 0, v = 0, mx = 0;
    for (int i = 0; i < 60000; i++) {
        double x = nb_data(w)[i];
        m += x, v += x * x, mx = fmax(mx, fabs(x));
    }
    CHECK(mx <= a && mx > 0.99 * a);
    CHECK_NEAR(m / 60000, 0, 0.002);
    CHECK_NEAR(v / 60000, 2.0 / 500, 0.03 * 2.0 / 500);
    /* He normal: variance 2 / fan_in; Xavier normal: 2 / (in + out); He uniform bound */
    CHECK(nb_init_tensor(w, NB_INIT_HE_NORMAL, 200, 300, 9) == 0);
    v = 0;
    for (int i = 0; i < 60000; i++) v += nb_data(w)[i] * nb_data(w)[i];
    CHECK_NEAR(v / 60000, 2.0 / 200, 0.03 * 2.0 / 200);
    /* huge fans: no signed overflow (UBSan in CI), tiny finite values */
    CHECK(nb_init_tensor(w, NB_INIT_XAVIER_UNIFORM, INT64_MAX, INT64_MAX, 9) == 0);
    CHECK(isfinite(nb_data(w)[0]) && fabs(nb_data(w)[0]) < 1e-9);
    CHECK(nb_init_tensor(w, NB_INIT_XAVIER_NORMAL, INT64_MAX, INT64_MAX, 9) == 0);
    CHECK(isfinite(nb_data(w)[0]) && fabs(nb_data(w)[0]) < 1e-8);
    CHECK(nb_init_tensor(w, NB_INIT_XAVIER_NORMAL, 200, 300, 9) == 0);
    v = 0;
    for (int i = 0; i < 60000; i++) v += nb_data(w)[i] * nb_data(w)[i];
    CHECK_NEAR(v / 60000, 2.0 / 500, 0.03 * 2.0 / 500);
    CHECK(nb_init_tensor(w, NB_INIT_HE_UNIFORM, 200, 300, 9) == 0);
    mx = 0;
    for (int i = 0; i < 60000; i++) mx = fmax(mx, fabs(nb_data(w)[i]));
    CHECK(mx <= sqrt(6.0 / 200) && mx > 0.99 * sqrt(6.0 / 200));
    /* reproducible */
    nb_tensor *w2 = nb_zeros(2, (int64_t[]){300, 200});
    CHECK(nb_init_tensor(w2, NB_INIT_HE_UNIFORM, 200, 300, 9) == 0);
    CHECK(memcmp(nb_data(w), nb_data(w2), 60000 * sizeof(double)) == 0);
    CHECK(nb_init_tensor(w, NB_INIT_ZEROS, 0, 0, 0) == 0 && nb_data(w)[123] == 0);
    nb_clear_error();
    CHECK(nb_init_tensor(w, NB_INIT_HE_NORMAL, 0, 3, 0) == -1 && has(nb_last_error(), "fan_in"));
    CHECK(nb_init_tensor(NULL, NB_INIT_ZEROS, 1, 1, 0) == -1);
    nb_scope_end(mark);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/nabla_nn_data_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_idx();
    test_fashion();
    test_csv();
    test_batches();
    test_rng_init();
    const char *files[] = {"a.idx", "a.idx.gz", "b.idx", "c.idx", "d.idx", "e.idx", "f.idx",
                           "bad.idx", "a.csv", "b.csv", "bad.csv", "junk.csv"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) unlink(tmp(files[i]));
    rmdir(dir);
    nb_cleanup();
    return check_report("nn_data");
}
