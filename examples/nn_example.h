/*
 * Small helpers shared by the training examples (minimize, regression,
 * classify2d, fashion_mnist): option parsing, output folders, timing, and
 * stopping with nabla's error message.  Header-only; not part of the library.
 */
#ifndef NABLA_NN_EXAMPLE_H
#define NABLA_NN_EXAMPLE_H

#include "nabla.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* Stops the program when a nabla call failed (examples may exit; the library never does). */
#define EX_CHECK(cond)                                                              \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #cond,    \
                    nb_last_error() ? nb_last_error() : "(no message)");            \
            exit(1);                                                                \
        }                                                                           \
    } while (0)

static inline double ex_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* mkdir -p; 0 or -1 (with a message on stderr) */
static inline int ex_mkdirs(const char *path) {
    char buf[1024];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) {
        fprintf(stderr, "bad output folder '%s'\n", path);
        return -1;
    }
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == 0) {
            char c = buf[i];
            buf[i] = 0;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
                fprintf(stderr, "cannot create folder '%s': %s\n", buf, strerror(errno));
                return -1;
            }
            buf[i] = c;
        }
    }
    return 0;
}

/* "dir/name" into buf */
static inline const char *ex_path(char *buf, size_t size, const char *dir, const char *name) {
    snprintf(buf, size, "%s/%s", dir, name);
    return buf;
}

/* Option values: exits with a message when a value is missing or malformed. */
static inline const char *ex_arg(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        fprintf(stderr, "%s: option %s needs a value\n", argv[0], argv[*i]);
        exit(2);
    }
    return argv[++*i];
}
static inline long long ex_arg_int(int argc, char **argv, int *i, long long lo, long long hi) {
    const char *opt = argv[*i], *s = ex_arg(argc, argv, i);
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi) {
        fprintf(stderr, "%s: %s wants an integer in [%lld, %lld], got '%s'\n", argv[0], opt, lo,
                hi, s);
        exit(2);
    }
    return v;
}
static inline double ex_arg_double(int argc, char **argv, int *i, double lo, double hi) {
    const char *opt = argv[*i], *s = ex_arg(argc, argv, i);
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || end == s || !(v >= lo && v <= hi)) {
        fprintf(stderr, "%s: %s wants a number in [%g, %g], got '%s'\n", argv[0], opt, lo, hi, s);
        exit(2);
    }
    return v;
}

/* HSV (h in [0, 1)) to a "#rrggbb" colour, for one colour per trajectory. */
static inline void ex_hsv(double h, double s, double v, char out[8]) {
    double r = v, g = v, b = v;
    int k = (int)(h * 6) % 6;
    double f = h * 6 - (int)(h * 6), p = v * (1 - s), q = v * (1 - f * s), t = v * (1 - (1 - f) * s);
    switch (k) {
    case 0: r = v, g = t, b = p; break;
    case 1: r = q, g = v, b = p; break;
    case 2: r = p, g = v, b = t; break;
    case 3: r = p, g = q, b = v; break;
    case 4: r = t, g = p, b = v; break;
    default: r = v, g = p, b = q; break;
    }
    snprintf(out, 8, "#%02x%02x%02x", (int)(r * 255 + 0.5), (int)(g * 255 + 0.5), (int)(b * 255 + 0.5));
}

#endif
