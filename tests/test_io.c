/* The file readers against hostile files (src/io/): FIFOs, devices and
   directories are refused without blocking or reading; gzip bombs stop at
   the size the IDX header declares; CSV's size limit; CSV's NUL bytes,
   out-of-range numbers, byte-order mark and escaped messages; out-of-memory
   messages that name the reader and the file. */
#include "check.h"
#include "internal.h"
#include "io/io.h"
#include "nn/nn.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

static void expect_msg(const char *what, const char *part) {
    const char *m = nb_last_error();
    if (!has(m, part)) {
        fprintf(stderr, "  %s: expected '%s' in: %s\n", what, part, m ? m : "(none)");
        CHECK(0);
    } else {
        CHECK(1);
    }
}

/* ---- a hand-made deflate stream (RFC 1951, fixed Huffman codes), so the
   test needs no zlib: `lit` literal bytes, then one 0 and `copies` copies of
   258 zeros (length code 285, distance 1), optionally ended (end of block,
   CRC-32 and size trailer of RFC 1952). */
typedef struct {
    unsigned char *p;
    size_t n, cap;
    uint32_t acc;
    int bits;
} bitw;

static void put_bits(bitw *w, uint32_t v, int n) { /* LSB first */
    w->acc |= v << w->bits;
    w->bits += n;
    while (w->bits >= 8) {
        if (w->n == w->cap) {
            w->cap = w->cap ? 2 * w->cap : 4096;
            w->p = realloc(w->p, w->cap);
        }
        w->p[w->n++] = (unsigned char)w->acc;
        w->acc >>= 8;
        w->bits -= 8;
    }
}

static void put_huff(bitw *w, uint32_t code, int n) { /* Huffman codes go MSB first */
    uint32_t r = 0;
    for (int i = 0; i < n; i++) r |= ((code >> i) & 1u) << (n - 1 - i);
    put_bits(w, r, n);
}

static void put_literal(bitw *w, unsigned v) {
    if (v < 144) put_huff(w, 0x30 + v, 8);
    else put_huff(w, 0x190 + (v - 144), 9);
}

static size_t gzip_zeros(const unsigned char *lit, size_t nlit, size_t copies, bool end,
                         unsigned char **out) {
    bitw w = {0};
    static const unsigned char hdr[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
    for (int i = 0; i < 10; i++) put_bits(&w, hdr[i], 8);
    put_bits(&w, 1, 1); /* BFINAL */
    put_bits(&w, 1, 2); /* BTYPE = 01, fixed codes */
    for (size_t i = 0; i < nlit; i++) put_literal(&w, lit[i]);
    put_literal(&w, 0);
    for (size_t i = 0; i < copies; i++) {
        put_huff(&w, 0xC5, 8); /* length code 285: 258 bytes */
        put_huff(&w, 0, 5);    /* distance code 0: distance 1 */
    }
    if (end) {
        put_huff(&w, 0, 7); /* end of block */
        if (w.bits) put_bits(&w, 0, 8 - w.bits);
        uint32_t crc = nb__crc32(0, lit, nlit);
        static const unsigned char zeros[258 * 16] = {0};
        crc = nb__crc32(crc, zeros, 1);
        size_t left = copies * 258;
        while (left) {
            size_t k = left < sizeof zeros ? left : sizeof zeros;
            crc = nb__crc32(crc, zeros, k);
            left -= k;
        }
        uint32_t size = (uint32_t)(nlit + 1 + copies * 258);
        for (int i = 0; i < 4; i++) put_bits(&w, (crc >> (8 * i)) & 255, 8);
        for (int i = 0; i < 4; i++) put_bits(&w, (size >> (8 * i)) & 255, 8);
    } else if (w.bits) {
        put_bits(&w, 0, 8 - w.bits);
    }
    *out = w.p;
    return w.n;
}

/* ---- FIFOs, devices, directories ----------------------------------------------------- */
static void test_not_regular(void) {
    size_t mark = nb_scope_begin();
    /* a FIFO with no writer: opening it for reading would wait forever */
    check_alarm(60, "test_io: a reader blocked on a FIFO\n");
    const char *fifo = tmp("fifo");
    CHECK(mkfifo(fifo, 0600) == 0);
    nb_clear_error();
    CHECK(nb_idx_read(fifo) == NULL);
    expect_msg("idx_read FIFO", "a FIFO, not a regular file");
    CHECK(has(nb_last_error(), "idx_read: ") && has(nb_last_error(), fifo));
    nb_clear_error();
    CHECK(nb_csv_read(fifo, ',', false) == NULL);
    expect_msg("csv_read FIFO", "a FIFO, not a regular file");
    nb_params *P = nb_params_new();
    CHECK(nb_params_add(P, "w", 1, (int64_t[]){2}) != NULL);
    nb_clear_error();
    CHECK(nb_params_load(P, fifo) == -1);
    expect_msg("params_load FIFO", "a FIFO, not a regular file");
    /* /dev/zero never ends: reading it would fill memory */
    if (access("/dev/zero", R_OK) == 0) {
        nb_clear_error();
        CHECK(nb_csv_read("/dev/zero", ',', false) == NULL);
        expect_msg("csv_read /dev/zero", "a character device");
        nb_clear_error();
        CHECK(nb_idx_read("/dev/zero") == NULL);
        expect_msg("idx_read /dev/zero", "a character device");
        nb_clear_error();
        CHECK(nb_params_load(P, "/dev/zero") == -1);
        expect_msg("params_load /dev/zero", "a character device");
    }
    /* a directory */
    nb_clear_error();
    CHECK(nb_idx_read(dir) == NULL);
    expect_msg("idx_read directory", "a directory");
    nb_clear_error();
    CHECK(nb_csv_read(dir, ',', false) == NULL);
    expect_msg("csv_read directory", "a directory");
    alarm(0);
    nb_params_free(P);
    remove(fifo);
    nb_scope_end(mark);
}

/* ---- gzip bombs and size limits -------------------------------------------------------- */
static void test_bombs(void) {
    size_t mark = nb_scope_begin();
    /* IDX ubyte (16,) followed by 64 MiB of zeros: the header declares 16
       bytes, so the reader inflates 16 + 1 and refuses. */
    const unsigned char hdr[8] = {0, 0, 0x08, 1, 0, 0, 0, 15}; /* 8 + 15 bytes */
    size_t copies = (64u << 20) / 258;
    unsigned char *gz;
    size_t n = gzip_zeros(hdr, sizeof hdr, copies, true, &gz);
    write_bytes(tmp("bomb.idx.gz"), gz, n);
    nb_clear_error();
    nb_tensor *t = nb_idx_read(tmp("bomb.idx.gz"));
    bool zlib = !has(nb_last_error(), "without zlib");
    if (!zlib) {
        printf("(built without zlib: skipping the gzip bombs)\n");
    } else {
        CHECK(t == NULL);
        /* refused after reading the declared size: not after inflating the
           whole 64 MiB (that would give "67108... unexpected bytes") */
        expect_msg("idx bomb", "more data than the header announces (23 bytes)");
        /* the same stream cut short, far past the declared size: a reader
           that inflates everything meets the cut and reports corrupted data;
           this one stops long before it */
        free(gz);
        n = gzip_zeros(hdr, sizeof hdr, copies, false, &gz);
        write_bytes(tmp("cut.idx.gz"), gz, n);
        nb_clear_error();
        CHECK(nb_idx_read(tmp("cut.idx.gz")) == NULL);
        expect_msg("idx cut bomb", "more data than the header announces");
        CHECK(!has(nb_last_error(), "gzip"));
        /* an exact stream of the declared size is read, its CRC checked */
        free(gz);
        /* (1036,): 7, 8, 9, then 1 + 4 * 258 zeros */
        const unsigned char h3[11] = {0, 0, 0x08, 1, 0, 0, 0x04, 0x0C, 7, 8, 9};
        n = gzip_zeros(h3, sizeof h3, 4, true, &gz);
        write_bytes(tmp("ok.idx.gz"), gz, n);
        nb_clear_error();
        t = nb_idx_read(tmp("ok.idx.gz"));
        CHECK(t && nb_numel(t) == 1036 && nb_data(t)[0] == 7 && nb_data(t)[2] == 9 &&
              nb_data(t)[3] == 0 && nb_data(t)[1035] == 0);
        gz[n - 8] ^= 1; /* a wrong CRC: caught, since the reader reads to the end */
        write_bytes(tmp("badcrc.idx.gz"), gz, n);
        nb_clear_error();
        CHECK(nb_idx_read(tmp("badcrc.idx.gz")) == NULL);
        expect_msg("idx bad crc", "corrupted or truncated gzip");
        /* the whole-file reader's limit counts decompressed bytes */
        free(gz);
        n = gzip_zeros(NULL, 0, (2u << 20) / 258, true, &gz);
        write_bytes(tmp("zeros.gz"), gz, n);
        size_t len = 0;
        nb_clear_error();
        unsigned char *b = nb__read_file_max("csv_read", tmp("zeros.gz"), &len, true, 1u << 20);
        CHECK(b == NULL);
        expect_msg("read_file_max gzip", "more than 1048576 bytes after decompression");
        nb__free(b);
    }
    free(gz);
    /* a plain file over CSV's 1 GiB: refused from its size, not read (a
       sparse file, so the test writes nothing) */
    int fd = open(tmp("huge.csv"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    CHECK(ftruncate(fd, ((off_t)1 << 30) + 1) == 0);
    close(fd);
    nb_clear_error();
    CHECK(nb_csv_read(tmp("huge.csv"), ',', false) == NULL);
    expect_msg("csv too large", "too large (1073741825 bytes; at most 1073741824 are read)");
    /* a plain IDX file longer than its header says: refused from its size */
    fd = open(tmp("long.idx"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0 && write(fd, "\0\0\x08\x01\0\0\0\x02", 8) == 8);
    CHECK(ftruncate(fd, ((off_t)1 << 32) + 10) == 0);
    close(fd);
    nb_clear_error();
    CHECK(nb_idx_read(tmp("long.idx")) == NULL);
    expect_msg("idx long", "4294967296 unexpected bytes after the data");
    remove(tmp("huge.csv"));
    remove(tmp("long.idx"));
    nb_scope_end(mark);
}

/* ---- CSV contents ------------------------------------------------------------------ */
static void csv_refused(const void *text, size_t n, const char *part) {
    write_bytes(tmp("bad.csv"), text, n);
    nb_clear_error();
    CHECK(nb_csv_read(tmp("bad.csv"), ',', false) == NULL);
    expect_msg("csv", part);
    const char *m = nb_last_error();
    CHECK(m && !strchr(m, '\r') && has(m, "csv_read: ") && has(m, tmp("bad.csv")));
}

static void test_csv(void) {
    size_t mark = nb_scope_begin();
    csv_refused("1,2\n1\0garbage,3\n", 16, "bad.csv:2: field 1 ('1\\0garbage') contains a NUL byte");
    csv_refused("1,2\n3,1e400\n", 12, "bad.csv:2: field 2 ('1e400') is out of range for a double");
    csv_refused("-1e999\n", 7, "bad.csv:1: field 1 ('-1e999') is out of range");
    csv_refused("1,2\r\n3,4\r5\r\n", 12, "bad.csv:2: field 2 ('4\\r5') is not a number");
    csv_refused("1,\x01x\n", 5, "field 2 ('\\x01x')");
    /* a byte-order mark, with and without a header line */
    const char bom[] = "\xEF\xBB\xBF" "1.5,2\n3,4\n";
    write_bytes(tmp("bom.csv"), bom, strlen(bom));
    nb_tensor *t = nb_csv_read(tmp("bom.csv"), ',', false);
    CHECK(t && nb_shape(t)[0] == 2 && nb_shape(t)[1] == 2 && nb_data(t)[0] == 1.5 &&
          nb_data(t)[3] == 4);
    const char bomh[] = "\xEF\xBB\xBF" "a,b\r\n1,2\r\n";
    write_bytes(tmp("bomh.csv"), bomh, strlen(bomh));
    t = nb_csv_read(tmp("bomh.csv"), ',', true);
    CHECK(t && nb_shape(t)[0] == 1 && nb_data(t)[1] == 2);
    /* what stays accepted: explicit infinities and NaN, underflow to a
       subnormal or zero */
    write_bytes(tmp("inf.csv"), "inf,-inf,nan,1e-310,1e-400\n", 27);
    t = nb_csv_read(tmp("inf.csv"), ',', false);
    CHECK(t && isinf(nb_data(t)[0]) && nb_data(t)[1] < 0 && isnan(nb_data(t)[2]) &&
          nb_data(t)[3] > 0 && nb_data(t)[3] < 1e-300 && nb_data(t)[4] == 0);
    nb_scope_end(mark);
}

/* ---- out-of-memory messages name the reader and the file ----------------------------- */
static void oom_sweep(const char *who, const char *path, bool csv) {
    int64_t N, bad = 0;
    for (N = 1; N < 1000; N++) {
        nb_clear_error();
        size_t mark = nb_scope_begin();
        nb__fail_alloc_after(N);
        nb_tensor *t = csv ? nb_csv_read(path, ',', false) : nb_idx_read(path);
        bool fired = nb__fail_alloc_fired();
        nb__fail_alloc_after(0);
        nb_scope_end(mark);
        if (t) break;
        const char *m = nb_last_error();
        if (!fired || !m || strncmp(m, who, strlen(who)) != 0 || m[strlen(who)] != ':' ||
            !has(m, path) || !has(m, "out of memory")) {
            fprintf(stderr, "  %s, allocation %lld fails: %s\n", who, (long long)N, m ? m : "(none)");
            bad++;
        }
    }
    CHECK(N > 1 && N < 1000);
    CHECK(bad == 0);
}

static void test_oom_messages(void) {
    const unsigned char idx[12] = {0, 0, 0x08, 1, 0, 0, 0, 4, 1, 2, 3, 4};
    write_bytes(tmp("m.idx"), idx, sizeof idx);
    oom_sweep("idx_read", tmp("m.idx"), false);
    /* (1048771,) = 1 + 4065 * 258 zeros: over 2^20 bytes, so the gzip path
       grows its buffer */
    unsigned char *gz;
    const unsigned char hg[8] = {0, 0, 0x08, 1, 0, 0x10, 0x00, 0xC3};
    size_t n = gzip_zeros(hg, sizeof hg, 4065, true, &gz);
    write_bytes(tmp("m.idx.gz"), gz, n);
    free(gz);
    nb_clear_error();
    if (nb_idx_read(tmp("m.idx.gz"))) oom_sweep("idx_read", tmp("m.idx.gz"), false);
    else expect_msg("gzip idx", "without zlib");
    char text[4096];
    size_t k = 0;
    for (int i = 0; i < 300; i++) k += (size_t)snprintf(text + k, sizeof text - k, "%d,%d.5\n", i, -i);
    write_bytes(tmp("m.csv"), text, k);
    oom_sweep("csv_read", tmp("m.csv"), true);
    nb_cleanup();
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/nabla_io_XXXXXX");
    if (!mkdtemp(dir)) return 1;
    test_not_regular();
    test_bombs();
    test_csv();
    test_oom_messages();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    nb_cleanup();
    return check_report("io");
}
