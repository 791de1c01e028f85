/*
 * rng.h — nabla's one random generator, a splitmix64 stream (Steele, Lea &
 * Flood, "Fast splittable pseudorandom number generators", 2014), as
 * inline functions: the public nb_rng_* (rng.c) are these, and nb_rand and
 * nb_randn (tensor.c) inline them in their loops.  Not installed.
 */
#ifndef NABLA_RNG_H
#define NABLA_RNG_H

#include "nabla.h"

#include <math.h>
#include <stdint.h>

static inline uint64_t nb__rng_next(nb_rng *r) {
    /* state advances by the golden-ratio increment; the output is a
       bijective mix of the state */
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* U[0, 1): the top 53 bits */
static inline double nb__rng_uniform(nb_rng *r) {
    return (double)(nb__rng_next(r) >> 11) * (1.0 / 9007199254740992.0); /* / 2^53 */
}

/* N(0, 1) */
static inline double nb__rng_normal(nb_rng *r) {
    /* Box-Muller: two uniforms give two independent normals; keep one */
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u1 = 1.0 - nb__rng_uniform(r); /* (0, 1]: log is finite */
    double u2 = nb__rng_uniform(r);
    double rad = sqrt(-2.0 * log(u1));
    double th = 6.283185307179586 * u2; /* 2 pi */
    r->spare = rad * sin(th);
    r->has_spare = 1;
    return rad * cos(th);
}

#endif /* NABLA_RNG_H */
