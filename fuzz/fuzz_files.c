/*
 * fuzz_files: libFuzzer target for the file readers: nb_idx_read (plain and
 * gzip-compressed) and nb_csv_read in src/io/, nb_params_load in src/nn/.  The first byte
 * of the input picks the reader and its options, the rest is the file.
 *
 * Properties, besides no crash and no sanitizer report (ASan catches any
 * read outside the file's buffer):
 *   - a failure returns NULL / -1 with a message that starts with the
 *     reader's name and names the file (IDX, CSV: with no raw control
 *     character);
 *   - IDX: an oracle in this file decodes the header itself; the reader
 *     accepts exactly the well-formed files, with the declared shape and
 *     values (checked element by element);
 *   - CSV: a result is a (rows, cols) tensor, requires_grad false;
 *   - parameter files: a failed load leaves the store unchanged; a successful
 *     one sets every value from the file.  One input in two gets its CRC
 *     recomputed here, so that the checks after the checksum are reached.
 *   - nothing is left alive after nb_cleanup().
 *
 *   byte 0:  bits 0-1  0 IDX, 1 CSV, 2 parameters, 3 IDX written through gzip here
 *            bit  2    CSV: skip a header line
 *            bits 3-5  CSV delimiter: , ; TAB space | and three bad ones
 *            bit  6    parameters: fix the CRC-32 at the end
 */
#include "internal.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef NB_HAVE_ZLIB
#include <zlib.h>
#endif

static const char *cur = "?";

static void violated(const char *what, const char *detail) {
    fprintf(stderr, "\nfuzz_files: PROPERTY VIOLATED in %s: %s%s%s\n", cur, what,
            detail ? ": " : "", detail ? detail : "");
    abort();
}

static char path[96];
static nb_params *store;

static void check_msg(const char *prefix) {
    const char *m = nb_last_error();
    if (!m || !m[0]) violated("failed without a message", NULL);
    if (strncmp(m, prefix, strlen(prefix)) != 0) violated("message does not name the reader", m);
    /* control characters come escaped (the IDX and CSV readers; not yet the
       parameter loader, which shows a name's bytes as they are) */
    for (const char *c = m; strcmp(prefix, "load:") != 0 && *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) violated("raw control character in a message", m);
    /* every message past argument checks names the file */
    if (!strstr(m, path) && !strstr(m, "out of memory")) violated("message does not name the file", m);
}

static void check_result(const nb_tensor *t) {
    int nd = nb_ndim(t);
    if (nd < 1 || nd > NB_MAX_DIMS) violated("bad ndim", NULL);
    int64_t p = 1;
    for (int i = 0; i < nd; i++) {
        if (nb_shape(t)[i] < 0) violated("negative size", NULL);
        if (__builtin_mul_overflow(p, nb_shape(t)[i], &p)) violated("size overflows", NULL);
    }
    if (p != nb_numel(t)) violated("numel disagrees with the shape", NULL);
    if (nb_requires_grad(t)) violated("data requires grad", NULL);
    volatile double acc = 0;
    for (int64_t i = 0; i < p; i++) acc += nb_data(t)[i];
    (void)acc;
}

static bool write_file(const uint8_t *d, size_t n, bool gz) {
#ifdef NB_HAVE_ZLIB
    if (gz) {
        gzFile f = gzopen(path, "wb");
        if (!f) return false;
        if (n && gzwrite(f, d, (unsigned)n) != (int)n) {
            gzclose(f);
            return false;
        }
        return gzclose(f) == Z_OK;
    }
#else
    if (gz) return false;
#endif
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    bool ok = fwrite(d, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

/* ---- IDX, with an oracle ------------------------------------------------------------- */
static uint32_t be32(const uint8_t *b) {
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static void fuzz_idx(const uint8_t *d, size_t n, bool gz) {
    cur = gz ? "idx_read (gzip)" : "idx_read";
    bool gzip_magic = n >= 2 && d[0] == 0x1f && d[1] == 0x8b;
    if (!write_file(d, n, gz)) return;
    /* the oracle: is this a well-formed IDX file?  (either: no elements, but
       sizes whose product is huge; nabla may refuse such a shape) */
    bool valid = false, either = false;
    int es = 0, nd = 0;
    int64_t shape[NB_MAX_DIMS], numel = 1;
    if (n >= 4 && d[0] == 0 && d[1] == 0) {
        switch (d[2]) {
        case 0x08: case 0x09: es = 1; break;
        case 0x0B: es = 2; break;
        case 0x0C: case 0x0D: es = 4; break;
        case 0x0E: es = 8; break;
        default: es = 0;
        }
        nd = d[3];
        if (es && nd >= 1 && nd <= NB_MAX_DIMS && n >= 4 + 4 * (size_t)nd) {
            bool over = false, zero = false;
            int64_t nz = 1;
            for (int i = 0; i < nd; i++) {
                shape[i] = be32(d + 4 + 4 * i);
                zero |= shape[i] == 0;
                if (shape[i]) over |= __builtin_mul_overflow(nz, shape[i], &nz);
            }
            numel = zero ? 0 : nz;
            valid = (zero || !over) && (uint64_t)numel <= n &&
                    4 + 4 * (size_t)nd + (size_t)numel * (size_t)es == n;
            either = valid && zero && (over || nz > ((int64_t)1 << 32));
        }
    }
    nb_tensor *t = nb_idx_read(path);
    if (!t) {
        check_msg("idx_read:");
        if (valid && !either && !strstr(nb_last_error(), "out of memory"))
            violated("a valid file refused", nb_last_error());
        return;
    }
    check_result(t);
    if (gzip_magic && !gz) return; /* a plain file that happens to be gzip: decoded by zlib */
    if (!valid) violated("an invalid file accepted", NULL);
    if (nb_ndim(t) != nd || memcmp(nb_shape(t), shape, (size_t)nd * sizeof *shape) != 0)
        violated("wrong shape", NULL);
    const uint8_t *v = d + 4 + 4 * nd;
    for (int64_t i = 0; i < numel; i++, v += es) {
        double want;
        switch (d[2]) {
        case 0x08: want = v[0]; break;
        case 0x09: want = (int8_t)v[0]; break;
        case 0x0B: want = (int16_t)(uint16_t)(v[0] << 8 | v[1]); break;
        case 0x0C: want = (int32_t)be32(v); break;
        case 0x0D: {
            uint32_t u = be32(v);
            float f;
            memcpy(&f, &u, 4);
            want = f;
            break;
        }
        default: {
            uint64_t u = (uint64_t)be32(v) << 32 | be32(v + 4);
            memcpy(&want, &u, 8);
        }
        }
        double got = nb_data(t)[i];
        if (!(got == want || (isnan(got) && isnan(want)))) violated("wrong value", NULL);
    }
}

/* ---- CSV ------------------------------------------------------------------------------ */
static void fuzz_csv(const uint8_t *d, size_t n, uint8_t mode) {
    cur = "csv_read";
    static const char delims[8] = {',', ';', '\t', ' ', '|', '\n', 0, '"'};
    char delim = delims[(mode >> 3) & 7];
    bool header = (mode >> 2) & 1;
    if (!write_file(d, n, false)) return;
    nb_tensor *t = nb_csv_read(path, delim, header);
    if (!t) {
        const char *m = nb_last_error();
        if (!m || !m[0]) violated("failed without a message", NULL);
        if (strncmp(m, "csv_read:", 9) != 0) violated("message does not name the reader", m);
        if (delim != '\n' && delim != 0 && delim != '"' && !strstr(m, path) &&
            !strstr(m, "out of memory"))
            violated("message does not name the file", m);
        for (const char *c = m; *c; c++) /* fields are shown escaped */
            if ((unsigned char)*c < 0x20 || *c == 0x7f) violated("raw control character in a message", m);
        return;
    }
    if (delim == '\n' || delim == 0 || delim == '"') violated("a bad delimiter accepted", NULL);
    check_result(t);
    if (nb_ndim(t) != 2 || nb_shape(t)[0] < 1 || nb_shape(t)[1] < 1) violated("not (rows, cols)", NULL);
}

/* ---- parameter files -------------------------------------------------------------------- */
static uint32_t crc32_ieee(const uint8_t *b, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= b[i];
        for (int k = 0; k < 8; k++) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    }
    return ~c;
}

static void fuzz_params(const uint8_t *d, size_t n, uint8_t mode) {
    cur = "params_load";
    static uint8_t buf[1 << 16];
    if (n > sizeof buf) return;
    memcpy(buf, d, n);
    if ((mode >> 6) & 1 && n >= 4) {
        uint32_t c = crc32_ieee(buf, n - 4);
        for (int k = 0; k < 4; k++) buf[n - 4 + k] = (uint8_t)(c >> (8 * k));
    }
    if (!write_file(buf, n, false)) return;
    double *v = nb_params_data(store);
    int64_t nv = nb_params_numel(store);
    for (int64_t i = 0; i < nv; i++) v[i] = -7.5 - (double)i;
    int rc = nb_params_load(store, path);
    if (rc != 0 && rc != -1) violated("return neither 0 nor -1", NULL);
    if (rc == -1) {
        check_msg("load:");
        for (int64_t i = 0; i < nv; i++)
            if (v[i] != -7.5 - (double)i) violated("a failed load changed the store", NULL);
    } else {
        /* every value now comes from the file (the pattern survives only by chance) */
        if (nv != 3 * 4 + 4 + 1) violated("the store changed size", NULL);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    snprintf(path, sizeof path, "/tmp/fuzz_files_%d.bin", (int)getpid());
    store = nb_params_new();
    nb_params_add(store, "w", 2, (int64_t[]){3, 4});
    nb_params_add(store, "b", 1, (int64_t[]){4});
    nb_params_add(store, "s", 0, NULL);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t mode = data[0];
    const uint8_t *d = data + 1;
    size_t n = size - 1;
    nb_clear_error();
    size_t mark = nb_scope_begin();
    switch (mode & 3) {
    case 0: fuzz_idx(d, n, false); break;
    case 1: fuzz_csv(d, n, mode); break;
    case 2: fuzz_params(d, n, mode); break;
    default: fuzz_idx(d, n, true); break;
    }
    nb_scope_end(mark);
    nb_cleanup();
    nb_mem_stats st;
    nb_memory_stats(&st);
    /* the store's 3 parameters and their gradients stay */
    if (st.live_tensors != 6) violated("tensors leaked", NULL);
    remove(path);
    return 0;
}
