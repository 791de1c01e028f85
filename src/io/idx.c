/*
 * The IDX format of MNIST (http://yann.lecun.com/exdb/mnist/): a header
 * 00 00 <type> <ndim>, ndim big-endian uint32 sizes, then the data,
 * big-endian, row-major.  Plain or gzip-compressed.
 *
 * The header says how many bytes follow, so the reader never reads more
 * than that plus one byte (to tell a file with trailing bytes): a gzip file
 * that inflates to gigabytes is refused after inflating the declared size.
 */
#include "internal.h"
#include "io/io.h"

#include <string.h>

/* at most 2^40 elements (8 TiB of float64): anything larger is refused from
   the header alone */
#define IDX_MAX_NUMEL ((uint64_t)1 << 40)

static uint32_t be32(const unsigned char *s) {
    return (uint32_t)s[0] << 24 | (uint32_t)s[1] << 16 | (uint32_t)s[2] << 8 | s[3];
}

static void decode(int type, int es, const unsigned char *s, uint64_t numel, double *d) {
    for (uint64_t i = 0; i < numel; i++, s += es) {
        switch (type) {
        case 0x08: d[i] = s[0]; break;
        case 0x09: d[i] = (int8_t)s[0]; break;
        case 0x0B: d[i] = (int16_t)(uint16_t)((unsigned)s[0] << 8 | s[1]); break;
        case 0x0C: d[i] = (int32_t)be32(s); break;
        case 0x0D: {
            uint32_t u = be32(s);
            float f;
            memcpy(&f, &u, 4);
            d[i] = f;
            break;
        }
        case 0x0E: {
            uint64_t u = 0;
            for (int k = 0; k < 8; k++) u = u << 8 | s[k];
            memcpy(&d[i], &u, 8);
            break;
        }
        }
    }
}

nb_tensor *nb_idx_read(const char *path) {
    if (!path) return nb__err("idx_read: NULL path");
    char p[256];
    const char *sp = nb__escape((const unsigned char *)path, strlen(path), p, sizeof p);
    nb__file f;
    if (nb__file_open(&f, "idx_read", path, true) != 0) return NULL;
    nb_tensor *t = NULL;
    unsigned char *data = NULL;
    unsigned char h[4 + 4 * NB_MAX_DIMS];
    int64_t got = nb__file_read(&f, h, 4);
    if (got < 0) goto out;
    if (got < 4 || h[0] != 0 || h[1] != 0) {
        nb__err("idx_read: %s: not an IDX file (the first bytes must be 00 00 <type> <ndim>)", sp);
        goto out;
    }
    int type = h[2], ndim = h[3], es;
    switch (type) {
    case 0x08: case 0x09: es = 1; break;
    case 0x0B: es = 2; break;
    case 0x0C: case 0x0D: es = 4; break;
    case 0x0E: es = 8; break;
    default:
        nb__err("idx_read: %s: unknown data type 0x%02x (expected 08, 09, 0B, 0C, 0D or 0E)", sp,
                type);
        goto out;
    }
    if (ndim < 1 || ndim > NB_MAX_DIMS) {
        nb__err("idx_read: %s: %d dimensions (1 to %d supported)", sp, ndim, NB_MAX_DIMS);
        goto out;
    }
    size_t hdr = 4 + 4 * (size_t)ndim;
    int64_t g2 = nb__file_read(&f, h + 4, hdr - 4);
    if (g2 < 0) goto out;
    if ((size_t)g2 < hdr - 4) {
        nb__err("idx_read: %s: truncated header (%zu bytes, %zu needed)", sp, 4 + (size_t)g2, hdr);
        goto out;
    }
    int64_t shape[NB_MAX_DIMS];
    uint64_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        shape[d] = be32(h + 4 + 4 * d);
        if (shape[d] && numel > IDX_MAX_NUMEL / (uint64_t)shape[d]) {
            nb__err("idx_read: %s: sizes too large (more than 2^40 elements)", sp);
            goto out;
        }
        numel *= (uint64_t)shape[d];
    }
    size_t bytes = (size_t)numel * (size_t)es, expect = hdr + bytes;
    if (!f.gz && f.size != expect) { /* plain: the size on disk says it all */
        if (f.size < expect)
            nb__err("idx_read: %s: truncated: %llu bytes, the header announces %zu", sp,
                    (unsigned long long)f.size, expect);
        else
            nb__err("idx_read: %s: %llu unexpected bytes after the data", sp,
                    (unsigned long long)(f.size - expect));
        goto out;
    }
    /* the data and one byte more; a gzip stream grows the buffer as it
       inflates, so a short stream never costs the declared size */
    size_t cap = bytes + 1, n = 0;
    if (f.gz && cap > ((size_t)1 << 20)) cap = (size_t)1 << 20;
    data = nb__malloc(cap);
    if (!data) {
        nb__err_in_file("idx_read", path);
        goto out;
    }
    for (;;) {
        int64_t r = nb__file_read(&f, data + n, cap - n);
        if (r < 0) goto out; /* a read error or corrupted gzip data: its message stands */
        n += (size_t)r;
        if (n < cap || cap == bytes + 1) break; /* the end, or the byte after the data */
        size_t c = cap * 2 < bytes + 1 ? cap * 2 : bytes + 1;
        unsigned char *nd = nb__realloc(data, c);
        if (!nd) {
            nb__err_in_file("idx_read", path);
            goto out;
        }
        data = nd;
        cap = c;
    }
    if (n > bytes) {
        nb__err("idx_read: %s: more data than the header announces (%zu bytes)", sp, expect);
        goto out;
    }
    if (n < bytes) {
        nb__err("idx_read: %s: truncated: %zu bytes, the header announces %zu", sp, hdr + n,
                expect);
        goto out;
    }
    t = nb__data_tensor("idx_read", ndim, shape);
    if (!t) {
        nb__err_in_file("idx_read", path);
        goto out;
    }
    decode(type, es, data, numel, t->data);
out:
    nb__free(data);
    nb__file_close(&f);
    return t;
}
