/*
 * The random generator, nabla's only one (rng.h): the public nb_rng
 * functions.  nb_rand and nb_randn (tensor.c) draw from the same inline
 * generator, and src/nn (initialisation, permutations, the batcher) through
 * these functions.
 */
#include "rng.h"

void nb_rng_seed(nb_rng *r, uint64_t seed) {
    if (!r) return;
    r->state = seed;
    r->spare = 0.0;
    r->has_spare = 0;
}

uint64_t nb_rng_next(nb_rng *r) { return nb__rng_next(r); }

double nb_rng_uniform(nb_rng *r) { return nb__rng_uniform(r); }

double nb_rng_normal(nb_rng *r) { return nb__rng_normal(r); }

int64_t nb_rng_below(nb_rng *r, int64_t n) {
    if (n <= 1) return 0;
    /* rejection sampling: no modulo bias */
    uint64_t un = (uint64_t)n;
    uint64_t limit = UINT64_MAX - UINT64_MAX % un;
    uint64_t x;
    do x = nb__rng_next(r);
    while (x >= limit);
    return (int64_t)(x % un);
}
