/*
 * The seeded initialisations of nb_init_tensor (Xavier, He), drawn from the
 * public generator nb_rng.
 */
#include "nn.h"

#include <math.h>

int nb_init_tensor(nb_tensor *t, nb_init_kind kind, int64_t fan_in, int64_t fan_out,
                   uint64_t seed) {
    if (!t) {
        if (!nb_last_error()) nb_set_error("init: NULL tensor");
        return -1;
    }
    if (nb_check_args("init", 1, &t)) return -1;
    bool xavier = kind == NB_INIT_AUTO || kind == NB_INIT_XAVIER_UNIFORM || kind == NB_INIT_XAVIER_NORMAL;
    bool he = kind == NB_INIT_HE_UNIFORM || kind == NB_INIT_HE_NORMAL;
    if (!xavier && !he && kind != NB_INIT_ZEROS) {
        nb_set_error("init: unknown kind %d", (int)kind);
        return -1;
    }
    if (xavier && (fan_in < 1 || fan_out < 1)) {
        nb_set_error("init: Xavier needs fan_in and fan_out >= 1, got %lld and %lld",
                     (long long)fan_in, (long long)fan_out);
        return -1;
    }
    if (he && fan_in < 1) {
        nb_set_error("init: He needs fan_in >= 1, got %lld", (long long)fan_in);
        return -1;
    }
    /* every check passed: the values change in place (a graph recorded
       before no longer holds: nb_data_mut bumps t's version) */
    double *d = nb_data_mut(t);
    int64_t n = nb_numel(t);
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
        if (kind == NB_INIT_HE_NORMAL) {
            a = sqrt(2.0 / (double)fan_in);
            for (int64_t i = 0; i < n; i++) d[i] = a * nb_rng_normal(&r);
        } else {
            a = sqrt(6.0 / (double)fan_in);
            for (int64_t i = 0; i < n; i++) d[i] = a * (2.0 * nb_rng_uniform(&r) - 1.0);
        }
        return 0;
    }
    return -1; /* (not reached: the kind was checked) */
}
