/*
 * CSV files of numbers: one row per line, fields separated by `delim`,
 * optionally quoted ("1.5"), blank lines skipped, an optional header line,
 * CRLF or LF line ends, an optional UTF-8 byte-order mark.  Numbers are
 * read in the "C" locale (a point, whatever setlocale() says).
 */
#include "internal.h"
#include "io/io.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* at most 1 GiB of text (after decompression) */
#define CSV_MAX_BYTES ((size_t)1 << 30)

static bool blank(unsigned char c) { return c == ' ' || c == '\t'; }

nb_tensor *nb_csv_read(const char *path, char delim, bool header) {
    if (!path) return nb__err("csv_read: NULL path");
    if (delim == '\n' || delim == '\r' || delim == '"' || delim == 0)
        return nb__err("csv_read: bad delimiter %d", (int)delim);
    size_t len;
    unsigned char *b = nb__read_file_max("csv_read", path, &len, true, CSV_MAX_BYTES);
    if (!b) return NULL;
    char sp[256];
    nb__escape((const unsigned char *)path, strlen(path), sp, sizeof sp);
    locale_t prev = nb__c_locale_begin();
    double *vals = NULL;
    size_t nvals = 0, cap = 0;
    int64_t rows = 0, cols = -1;
    nb_tensor *t = NULL;
    bool skip = header;
    size_t i = 0;
    int64_t line = 0;
    if (len >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF) i = 3; /* UTF-8 BOM */
    while (i < len) {
        size_t ls = i;
        while (i < len && b[i] != '\n') i++;
        size_t le = i; /* [ls, le) is the line */
        if (i < len) i++;
        line++;
        if (le > ls && b[le - 1] == '\r') le--;
        size_t k = ls;
        while (k < le && blank(b[k]) && b[k] != (unsigned char)delim) k++;
        if (k == le) continue; /* blank */
        if (skip) {
            skip = false;
            continue;
        }
        int64_t nf = 0;
        size_t fs = ls;
        for (;;) {
            size_t fe = fs;
            while (fe < le && b[fe] != (unsigned char)delim) fe++;
            /* the field [fs, fe): trim, unquote, parse */
            size_t a = fs, z = fe;
            while (a < z && isspace(b[a])) a++;
            while (z > a && isspace(b[z - 1])) z--;
            if (z - a >= 2 && b[a] == '"' && b[z - 1] == '"') a++, z--;
            char field[128], shown[4 * sizeof field];
            if (z - a >= sizeof field) {
                nb__err("csv_read: %s:%lld: field %lld is too long (%zu characters)", sp,
                        (long long)line, (long long)nf + 1, z - a);
                goto fail;
            }
            if (memchr(b + a, 0, z - a)) {
                nb__err("csv_read: %s:%lld: field %lld ('%s') contains a NUL byte", sp,
                        (long long)line, (long long)nf + 1,
                        nb__escape(b + a, z - a, shown, sizeof shown));
                goto fail;
            }
            memcpy(field, b + a, z - a);
            field[z - a] = 0;
            char *endp;
            errno = 0;
            double v = strtod(field, &endp);
            if (z == a || *endp != 0) {
                nb__err("csv_read: %s:%lld: field %lld ('%s') is not a number", sp,
                        (long long)line, (long long)nf + 1,
                        nb__escape(b + a, z - a, shown, sizeof shown));
                goto fail;
            }
            if (errno == ERANGE && isinf(v)) { /* "1e400"; "inf" itself is taken */
                nb__err("csv_read: %s:%lld: field %lld ('%s') is out of range for a double "
                        "(magnitude above %g)",
                        sp, (long long)line, (long long)nf + 1, field, 1.7976931348623157e308);
                goto fail;
            }
            if (nvals == cap && nb__grow((void **)&vals, &cap, nvals + 1, sizeof *vals)) {
                nb__err_in_file("csv_read", path);
                goto fail;
            }
            vals[nvals++] = v;
            nf++;
            if (fe >= le) break;
            fs = fe + 1;
        }
        if (cols < 0) cols = nf;
        else if (nf != cols) {
            nb__err("csv_read: %s:%lld: %lld fields, the rows before have %lld", sp,
                    (long long)line, (long long)nf, (long long)cols);
            goto fail;
        }
        rows++;
    }
    if (rows == 0) {
        nb__err("csv_read: %s: no data rows", sp);
        goto fail;
    }
    t = nb__data_tensor("csv_read", 2, (int64_t[]){rows, cols});
    if (t) memcpy(t->data, vals, nvals * sizeof *vals);
    else nb__err_in_file("csv_read", path);
fail:
    nb__c_locale_end(prev);
    nb__free(vals);
    nb__free(b);
    return t;
}
