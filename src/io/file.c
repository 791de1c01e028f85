/*
 * Reading files for the readers (IDX, CSV, parameter files): regular files
 * only, plain or through zlib, with a limit on what is read; escaping for
 * messages.
 */
#include "internal.h"
#include "io/io.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef NB_HAVE_ZLIB
#include <zlib.h>
#endif

/* ---- messages --------------------------------------------------------------- */

char *nb__escape(const unsigned char *s, size_t len, char *out, size_t n) {
    size_t k = 0;
    if (n == 0) return out;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = s[i];
        char tmp[5];
        size_t m;
        if (c >= 0x20 && c != 0x7f) tmp[0] = (char)c, m = 1;
        else if (c == '\r') memcpy(tmp, "\\r", 2), m = 2;
        else if (c == '\n') memcpy(tmp, "\\n", 2), m = 2;
        else if (c == '\t') memcpy(tmp, "\\t", 2), m = 2;
        else if (c == 0) memcpy(tmp, "\\0", 2), m = 2;
        else {
            static const char hex[] = "0123456789abcdef";
            tmp[0] = '\\', tmp[1] = 'x', tmp[2] = hex[c >> 4], tmp[3] = hex[c & 15];
            m = 4;
        }
        if (k + m >= n) break;
        memcpy(out + k, tmp, m);
        k += m;
    }
    out[k] = 0;
    return out;
}

/* the path as messages show it */
static const char *shown(const char *path, char *buf, size_t n) {
    return nb__escape((const unsigned char *)path, strlen(path), buf, n);
}

void nb__err_in_file(const char *who, const char *path) {
    nb__thread_state *T = nb__thread();
    char msg[sizeof T->error.msg];
    const char *cur = T->error.set ? T->error.msg : "failed";
    size_t l = strnlen(cur, sizeof msg - 1);
    memcpy(msg, cur, l);
    msg[l] = 0;
    char p[256];
    shown(path, p, sizeof p);
    size_t w = strlen(who);
    const char *rest = msg;
    if (strncmp(msg, who, w) == 0 && msg[w] == ':') {
        if (strstr(msg, p)) return; /* names both already */
        rest = msg + w + 1;
        while (*rest == ' ') rest++;
    }
    nb__err("%s: %s: %s", who, p, rest);
}

/* ---- opening and reading ------------------------------------------------------ */

static const char *kind_of(mode_t m) {
    if (S_ISDIR(m)) return "a directory";
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISSOCK(m)) return "a socket";
    return "not a regular file";
}

int nb__file_open(nb__file *f, const char *who, const char *path, bool gunzip) {
    memset(f, 0, sizeof *f);
    f->who = who;
    f->path = path;
    f->fd = -1;
    char p[256];
    /* O_NONBLOCK: opening a FIFO must not wait for a writer */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        nb__err("%s: %s: cannot open (%s)", who, shown(path, p, sizeof p), strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        nb__err("%s: %s: cannot stat (%s)", who, shown(path, p, sizeof p), strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        nb__err("%s: %s: %s, not a regular file (only regular files are read)", who,
                shown(path, p, sizeof p), kind_of(st.st_mode));
        close(fd);
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl != -1) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    f->fd = fd;
    f->size = (uint64_t)st.st_size;
    unsigned char magic[2];
    ssize_t got;
    do got = pread(fd, magic, 2, 0);
    while (got < 0 && errno == EINTR);
    if (!gunzip || got != 2 || magic[0] != 0x1f || magic[1] != 0x8b) return 0;
#ifdef NB_HAVE_ZLIB
    gzFile gz = gzdopen(fd, "rb");
    if (!gz) {
        nb__err("%s: %s: out of memory (opening gzip data)", who, shown(path, p, sizeof p));
        close(fd);
        f->fd = -1;
        return -1;
    }
    f->gz = true;
    f->gzf = gz;
    return 0;
#else
    nb__err("%s: %s: gzip-compressed, but nabla was built without zlib (gunzip the file first)",
            who, shown(path, p, sizeof p));
    close(fd);
    f->fd = -1;
    return -1;
#endif
}

int64_t nb__file_read(nb__file *f, void *buf, size_t n) {
    unsigned char *b = buf;
    size_t done = 0;
    char p[256];
    while (done < n) {
        size_t want = n - done;
        if (want > (1u << 30)) want = 1u << 30;
#ifdef NB_HAVE_ZLIB
        if (f->gz) {
            int got = gzread(f->gzf, b + done, (unsigned)want);
            int errnum = Z_OK;
            const char *msg = gzerror(f->gzf, &errnum);
            if (got < 0 || (errnum != Z_OK && errnum != Z_STREAM_END)) {
                nb__err("%s: %s: corrupted or truncated gzip data (%s)", f->who,
                        shown(f->path, p, sizeof p), msg && *msg ? msg : "zlib error");
                return -1;
            }
            if (got == 0) break;
            done += (size_t)got;
            continue;
        }
#endif
        ssize_t got = read(f->fd, b + done, want);
        if (got < 0) {
            if (errno == EINTR) continue;
            nb__err("%s: %s: read error (%s)", f->who, shown(f->path, p, sizeof p), strerror(errno));
            return -1;
        }
        if (got == 0) break;
        done += (size_t)got;
    }
    return (int64_t)done;
}

void nb__file_close(nb__file *f) {
#ifdef NB_HAVE_ZLIB
    if (f->gz) {
        gzclose(f->gzf); /* closes the descriptor too */
        f->gz = false;
        f->gzf = NULL;
        f->fd = -1;
    }
#endif
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
}

/* Doubles a read buffer's capacity, up to `limit` bytes.  On failure frees
   buf and returns NULL with the error set. */
static unsigned char *grow_buffer(unsigned char *buf, size_t *cap, size_t limit) {
    size_t c = *cap > SIZE_MAX / 2 ? SIZE_MAX : *cap * 2;
    if (c > limit) c = limit;
    unsigned char *nbuf = c > *cap ? nb__realloc(buf, c) : NULL;
    if (!nbuf) {
        nb__free(buf);
        return NULL;
    }
    *cap = c;
    return nbuf;
}

unsigned char *nb__read_file_max(const char *who, const char *path, size_t *len, bool gunzip,
                                 size_t max) {
    *len = 0;
    nb__file f;
    if (nb__file_open(&f, who, path, gunzip) != 0) return NULL;
    char p[256];
    if (!f.gz && f.size > max) {
        nb__err("%s: %s: too large (%llu bytes; at most %zu are read)", who,
                shown(path, p, sizeof p), (unsigned long long)f.size, max);
        nb__file_close(&f);
        return NULL;
    }
    /* room for one byte more than allowed, to tell "exactly max" from "more" */
    size_t limit = max < SIZE_MAX ? max + 1 : max;
    size_t cap = f.gz ? (size_t)1 << 20 : (size_t)f.size + 1;
    if (cap > limit) cap = limit;
    if (cap < 64) cap = 64 < limit ? 64 : limit;
    size_t n = 0;
    unsigned char *buf = nb__malloc(cap);
    while (buf) {
        if (n == cap) {
            if (cap == limit) {
                nb__free(buf);
                buf = nb__err("%s: %s: more than %zu bytes%s (the most this reader takes)", who,
                              shown(path, p, sizeof p), max, f.gz ? " after decompression" : "");
                break;
            }
            if (!(buf = grow_buffer(buf, &cap, limit))) break;
        }
        int64_t got = nb__file_read(&f, buf + n, cap - n);
        if (got < 0) {
            nb__free(buf);
            buf = NULL;
            break;
        }
        if (got == 0) break;
        n += (size_t)got;
    }
    nb__file_close(&f);
    if (!buf) {
        nb__err_in_file(who, path);
        return NULL;
    }
    *len = n;
    return buf;
}

unsigned char *nb__read_file(const char *who, const char *path, size_t *len, bool gunzip) {
    return nb__read_file_max(who, path, len, gunzip, SIZE_MAX / 2);
}
