/*
 * Random numbers for training: a splitmix64 stream (Steele, Lea & Flood,
 * "Fast splittable pseudorandom number generators", 2014), uniform and
 * normal variates, and the seeded initialisations of nb_init_tensor.
 */
#include "nn.h"

#include <math.h>

void nb_rng_seed(nb_rng *r, uint64_t seed) {
    if (!r) return;
    r->state = seed;
    r->spare = 0.0;
    r->has_spare = 0;
}

uint64_t nb_rng_next(nb_rng *r) {
    /* state advances by the golden-ratio increment; the output is a
       bijective mix of the state */
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double nb_rng_uniform(nb_rng *r) {
    return (double)(nb_rng_next(r) >> 11) * (1.0 / 9007199254740992.0); /* / 2^53 */
}

double nb_rng_normal(nb_rng *r) {
    /* Box-Muller: two uniforms give two independent normals; keep one */
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u1 = 1.0 - nb_rng_uniform(r); /* (0, 1]: log is finite */
    double u2 = nb_rng_uniform(r);
    double rad = sqrt(-2.0 * log(u1));
    double th = 6.283185307179586 * u2;
    r->spare = rad * sin(th);
    r->has_spare = 1;
    return rad * cos(th);
}

int64_t nb_rng_below(nb_rng *r, int64_t n) {
    if (n <= 1) return 0;
    /* rejection sampling: no modulo bias */
    uint64_t un = (uint64_t)n;
    uint64_t limit = UINT64_MAX - UINT64_MAX % un;
    uint64_t x;
    do x = nb_rng_next(r);
    while (x >= limit);
    return (int64_t)(x % un);
}

int nb_init_tensor(nb_tensor *t, nb_init_kind kind, int64_t fan_in, int64_t fan_out,
                   uint64_t seed) {
    if (!t) {
        if (!nb_last_error()) nb__err("init: NULL tensor");
        return -1;
    }
    double *d = t->data;
    int64_t n = t->numel;
    nb_rng r;
    nb_rng_seed(&r, seed);
    double a;
    switch (kind) {
    case NB_INIT_ZEROS:
        for (int64_t i = 0; i < n; i++) d[i] = 0.0;
        return 0;
    case NB_INIT_AUTO:
    case NB_INIT_XAVIER_UNIFORM:
    case NB_INIT_XAVIER_NORMAL:
        if (fan_in < 1 || fan_out < 1) {
            nb__err("init: Xavier needs fan_in and fan_out >= 1, got %lld and %lld",
                    (long long)fan_in, (long long)fan_out);
            return -1;
        }
        if (kind == NB_INIT_XAVIER_NORMAL) {
            a = sqrt(2.0 / ((double)fan_in + (double)fan_out) /* (no int64 overflow) */);
            for (int64_t i = 0; i < n; i++) d[i] = a * nb_rng_normal(&r);
        } else {
            a = sqrt(6.0 / ((double)fan_in + (double)fan_out) /* (no int64 overflow) */);
            for (int64_t i = 0; i < n; i++) d[i] = a * (2.0 * nb_rng_uniform(&r) - 1.0);
        }
        return 0;
    case NB_INIT_HE_UNIFORM:
    case NB_INIT_HE_NORMAL:
        if (fan_in < 1) {
            nb__err("init: He needs fan_in >= 1, got %lld", (long long)fan_in);
            return -1;
        }
        if (kind == NB_INIT_HE_NORMAL) {
            a = sqrt(2.0 / (double)fan_in);
            for (int64_t i = 0; i < n; i++) d[i] = a * nb_rng_normal(&r);
        } else {
            a = sqrt(6.0 / (double)fan_in);
            for (int64_t i = 0; i < n; i++) d[i] = a * (2.0 * nb_rng_uniform(&r) - 1.0);
        }
        return 0;
    }
    nb__err("init: unknown kind %d", (int)kind);
    return -1;
}
