/*
 * Checkpoints: a run stopped after any step and continued from its
 * checkpoint in a fresh model ends with parameters bit-identical to the
 * uninterrupted run (Adam with its moments and step count, SGD with
 * momentum, the batcher's position, the lr schedule, an RNG, user values);
 * the same after SIGKILLs at random moments of a child process that
 * checkpoints every step (the file is never half-written); another
 * configuration, another optimizer, a truncated or corrupted file are
 * refused with a message naming the file, and nothing is changed.
 */
#include "check.h"
#include "nabla.h"

#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static bool has(const char *msg, const char *part) { return msg && strstr(msg, part); }

enum { NDATA = 103, NIN = 6, NCLS = 3, BATCH = 16, STEPS = 40 };
static const char *CONFIG = "model=6-12-3\nbatch=16\nseed=7\n";

static nb_tensor *X, *Y;

typedef struct run {
    nb_params *P;
    nb_mlp *net;
    nb_optim *opt;
    nb_batcher *bat;
    nb_train_state st;
    double user[2]; /* loss sum of the epoch, an RNG-driven value */
} run;

static void run_new(run *r, bool adam, uint64_t init_seed) {
    memset(r, 0, sizeof *r);
    r->P = nb_params_new();
    r->net = nb_mlp_new(r->P, "mlp", 3, (int64_t[]){NIN, 12, NCLS}, NB_ACT_TANH, NB_INIT_AUTO,
                        init_seed);
    r->opt = adam ? nb_adam_new(r->P, 0.01, 0.9, 0.999, 1e-8, 1e-4)
                  : nb_sgd_new(r->P, 0.05, 0.9, 1e-3);
    r->bat = nb_batcher_new(NDATA, BATCH, true, false, 7);
    nb_rng_seed(&r->st.rng, 99);
    r->st.user = r->user;
    r->st.n_user = 2;
}

static void run_free(run *r) {
    nb_batcher_free(r->bat);
    nb_optim_free(r->opt);
    nb_mlp_free(r->net);
    nb_params_free(r->P);
}

/* one training step: the next batch (a new epoch when one ends), a schedule
   from the step count, a random perturbation from the RNG in the loss's
   user value; false at the end of the data */
static int step(run *r) {
    const int64_t *idx;
    int64_t k = nb_batcher_next(r->bat, &idx);
    if (k == 0) {
        r->st.epoch++;
        r->st.batch = 0;
        r->user[0] = 0;
        k = nb_batcher_next(r->bat, &idx);
    }
    nb_optim_set_lr(r->opt, nb_optim_lr(r->opt) * (1.0 - 0.01 * nb_rng_uniform(&r->st.rng)));
    size_t mark = nb_scope_begin();
    nb_tensor *loss = nb_cross_entropy(nb_mlp_forward(r->net, nb_gather_rows(X, idx, k)),
                                       nb_gather_rows(Y, idx, k));
    int rc = (loss && nb_backward(loss, NULL) == 0 && nb_optim_step(r->opt) == 0) ? 0 : -1;
    if (loss) r->user[0] += nb_item(loss) * (double)k;
    r->user[1] += nb_rng_normal(&r->st.rng);
    nb_params_zero_grad(r->P);
    nb_scope_end(mark);
    r->st.batch++;
    r->st.step++;
    return rc;
}

static int resume(run *r, const char *path) {
    if (nb_checkpoint_load(path, CONFIG, r->P, r->opt, &r->st) != 0) return -1;
    return nb_batcher_seek(r->bat, r->st.epoch, r->st.batch);
}

static bool same_run(run *a, run *b) {
    return nb_params_numel(a->P) == nb_params_numel(b->P) &&
           memcmp(nb_params_data(a->P), nb_params_data(b->P),
                  sizeof(double) * (size_t)nb_params_numel(a->P)) == 0 &&
           memcmp(a->user, b->user, sizeof a->user) == 0 && a->st.step == b->st.step &&
           nb_optim_lr(a->opt) == nb_optim_lr(b->opt);
}

static char dir[1024];

static void test_resume_any_step(bool adam) {
    char path[1100];
    snprintf(path, sizeof path, "%s/ck_%s.nbc", dir, adam ? "adam" : "sgd");
    run ref;
    run_new(&ref, adam, 1);
    for (int s = 0; s < STEPS; s++) CHECK(step(&ref) == 0);
    int ok = 0;
    for (int stop = 0; stop <= STEPS; stop += 3) {
        run a, b;
        run_new(&a, adam, 1);
        for (int s = 0; s < stop; s++) step(&a);
        CHECK(nb_checkpoint_save(path, CONFIG, a.P, a.opt, &a.st) == 0);
        run_free(&a);
        run_new(&b, adam, 12345); /* other initial values: all must come from the file */
        if (resume(&b, path) != 0) {
            fprintf(stderr, "%s\n", nb_last_error());
            CHECK(0);
        }
        for (int64_t s = b.st.step; s < STEPS; s++) step(&b);
        ok += same_run(&ref, &b);
        run_free(&b);
    }
    CHECK(ok == STEPS / 3 + 1);
    /* without the optimizer's state (a fresh optimizer), the run differs:
       the comparison can fail */
    run a, b;
    run_new(&a, adam, 1);
    for (int s = 0; s < 10; s++) step(&a);
    CHECK(nb_checkpoint_save(path, CONFIG, a.P, a.opt, &a.st) == 0);
    run_new(&b, adam, 1);
    CHECK(resume(&b, path) == 0);
    nb_optim_free(b.opt);
    b.opt = adam ? nb_adam_new(b.P, nb_optim_lr(a.opt), 0.9, 0.999, 1e-8, 1e-4)
                 : nb_sgd_new(b.P, nb_optim_lr(a.opt), 0.9, 1e-3);
    for (int s = 10; s < STEPS; s++) step(&b);
    CHECK(!same_run(&ref, &b));
    run_free(&a);
    run_free(&b);
    run_free(&ref);
    unlink(path);
}

static void test_refusals(void) {
    char path[1100], bad[1100];
    snprintf(path, sizeof path, "%s/ck_refuse.nbc", dir);
    snprintf(bad, sizeof bad, "%s/ck_bad.nbc", dir);
    run a, b;
    run_new(&a, true, 1);
    for (int s = 0; s < 5; s++) step(&a);
    CHECK(nb_checkpoint_save(path, CONFIG, a.P, a.opt, &a.st) == 0);
    run_new(&b, true, 2);
    double before = nb_params_data(b.P)[0];
    /* another configuration: the differing key and both values are named */
    CHECK(nb_checkpoint_load(path, "model=6-12-3\nbatch=32\nseed=7\n", b.P, b.opt, &b.st) == -1);
    CHECK(has(nb_last_error(), path) && has(nb_last_error(), "another configuration") &&
          has(nb_last_error(), "batch is '16' in the checkpoint, '32' now"));
    CHECK(nb_checkpoint_load(path, "model=6-12-3\nbatch=16\n", b.P, b.opt, &b.st) == -1 &&
          has(nb_last_error(), "seed is '7' in the checkpoint, absent now"));
    CHECK(nb_checkpoint_load(path, "model=6-12-3\nbatch=16\nseed=7\nextra=1\n", b.P, b.opt,
                             &b.st) == -1 &&
          has(nb_last_error(), "extra is absent in the checkpoint, '1' now"));
    /* another optimizer */
    nb_optim *sgd = nb_sgd_new(b.P, 0.1, 0.9, 0);
    CHECK(nb_checkpoint_load(path, CONFIG, b.P, sgd, &b.st) == -1 &&
          has(nb_last_error(), "Adam state, the optimizer is SGD"));
    nb_optim_free(sgd);
    nb_optim *adam2 = nb_adam_new(b.P, 0.1, 0.95, 0.999, 1e-8, 1e-4);
    CHECK(nb_checkpoint_load(path, CONFIG, b.P, adam2, &b.st) == -1 &&
          has(nb_last_error(), "beta1 is 0.90000000000000002 in the file, 0.94999999999999996 now"));
    nb_optim_free(adam2);
    /* another model */
    nb_params *Q = nb_params_new();
    nb_mlp *other = nb_mlp_new(Q, "mlp", 3, (int64_t[]){NIN, 13, NCLS}, NB_ACT_TANH, NB_INIT_AUTO, 1);
    CHECK(nb_checkpoint_load(path, CONFIG, Q, NULL, NULL) == -1 &&
          has(nb_last_error(), "holds a training state, the caller gives none"));
    CHECK(nb_checkpoint_save(bad, CONFIG, a.P, NULL, NULL) == 0);
    CHECK(nb_checkpoint_load(bad, CONFIG, Q, NULL, NULL) == -1 &&
          has(nb_last_error(), bad) && has(nb_last_error(), "'mlp.0.weight' has shape"));
    nb_mlp_free(other);
    nb_params_free(Q);
    /* truncated at every length and every byte flipped: refused, naming the file */
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *img = malloc((size_t)len);
    CHECK(fread(img, 1, (size_t)len, f) == (size_t)len);
    fclose(f);
    int refused = 0, tries = 0, named = 0;
    for (long cut = 0; cut < len; cut += (cut < 200 ? 1 : 97)) {
        FILE *g = fopen(bad, "wb");
        fwrite(img, 1, (size_t)cut, g);
        fclose(g);
        tries++;
        nb_clear_error();
        refused += nb_checkpoint_load(bad, CONFIG, b.P, b.opt, &b.st) == -1;
        named += has(nb_last_error(), bad);
    }
    for (long at = 0; at < len; at += (at < 200 ? 1 : 131)) {
        img[at] ^= 0x10;
        FILE *g = fopen(bad, "wb");
        fwrite(img, 1, (size_t)len, g);
        fclose(g);
        img[at] ^= 0x10;
        tries++;
        nb_clear_error();
        refused += nb_checkpoint_load(bad, CONFIG, b.P, b.opt, &b.st) == -1;
        named += has(nb_last_error(), bad);
    }
    CHECK(refused == tries && named == tries);
    printf("checkpoint: %d truncated or corrupted copies of a %ld-byte checkpoint: %d refused "
           "naming the file\n", tries, len, named);
    CHECK(nb_params_data(b.P)[0] == before && b.st.step == 0 && nb_optim_steps(b.opt) == 0);
    CHECK(nb_checkpoint_load("/nonexistent/ck.nbc", CONFIG, b.P, b.opt, &b.st) == -1 &&
          has(nb_last_error(), "/nonexistent/ck.nbc"));
    /* the same keys in another order are the same configuration */
    CHECK(nb_checkpoint_load(path, "seed=7\nbatch=16\nmodel=6-12-3", b.P, b.opt, &b.st) == 0);
    CHECK(b.st.step == 5 && nb_optim_steps(b.opt) == 5 &&
          memcmp(nb_params_data(a.P), nb_params_data(b.P), 8 * (size_t)nb_params_numel(a.P)) == 0);
    free(img);
    run_free(&a);
    run_free(&b);
    unlink(path);
    unlink(bad);
}

/* A child trains to STEPS, checkpointing after every step; it is killed
   with SIGKILL at a random moment; the run resumed from what is on disk
   (as often as needed) must end bit-identical to an uninterrupted one. */
static void test_sigkill(void) {
    char path[1100];
    snprintf(path, sizeof path, "%s/ck_kill.nbc", dir);
    run ref;
    run_new(&ref, true, 1);
    for (int s = 0; s < STEPS * 4; s++) step(&ref);
    unsigned seed = (unsigned)time(NULL);
    srand(seed);
    int identical = 0, kills = 0, rounds = 6;
    for (int round = 0; round < rounds; round++) {
        unlink(path);
        for (int attempt = 0; attempt < 50; attempt++) {
            fflush(NULL);
            pid_t pid = fork();
            if (pid == 0) {
                run r;
                run_new(&r, true, 1);
                struct stat sb;
                if (stat(path, &sb) == 0 && resume(&r, path) != 0) {
                    fprintf(stderr, "child: %s\n", nb_last_error());
                    _exit(3);
                }
                for (int64_t s = r.st.step; s < STEPS * 4; s++) {
                    if (step(&r) != 0 ||
                        nb_checkpoint_save(path, CONFIG, r.P, r.opt, &r.st) != 0) {
                        fprintf(stderr, "child: %s\n", nb_last_error());
                        _exit(4);
                    }
                }
                _exit(0);
            }
            /* kill after 0 to 30 ms (before, during or between writes), plus
               20 ms more per attempt, so that a slow disk still lets the run
               progress; the last attempt runs to its end */
            long us = (long)(rand() % 30000) + 20000L * attempt;
            struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
            nanosleep(&ts, NULL);
            if (attempt < 49) kill(pid, SIGKILL);
            int status;
            waitpid(pid, &status, 0);
            if (WIFSIGNALED(status)) {
                kills++;
                continue;
            }
            CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
            break;
        }
        run fin;
        run_new(&fin, true, 5);
        CHECK(resume(&fin, path) == 0);
        CHECK(fin.st.step == STEPS * 4);
        identical += same_run(&ref, &fin);
        run_free(&fin);
    }
    printf("checkpoint: %d SIGKILLs in %d runs (seed %u); %d of %d resumed runs bit-identical\n",
           kills, rounds, seed, identical, rounds);
    CHECK(kills > 0);
    CHECK(identical == rounds);
    run_free(&ref);
    unlink(path);
}

int main(void) {
    snprintf(dir, sizeof dir, "%s/out/test_checkpoint", NABLA_BINARY_DIR);
    char up[1100];
    snprintf(up, sizeof up, "%s/out", NABLA_BINARY_DIR);
    mkdir(up, 0777);
    mkdir(dir, 0777);
    /* a data set: NDATA points, NCLS classes from a fixed rule */
    X = nb_zeros(2, (int64_t[]){NDATA, NIN});
    Y = nb_zeros(1, (int64_t[]){NDATA});
    nb_retain(X);
    nb_retain(Y);
    nb_rng g;
    nb_rng_seed(&g, 3);
    double *x = nb_data_mut(X), *y = nb_data_mut(Y);
    for (int i = 0; i < NDATA; i++) {
        double s = 0;
        for (int j = 0; j < NIN; j++) s += (x[i * NIN + j] = nb_rng_normal(&g)) * (j + 1);
        y[i] = s > 1 ? 2 : s > -1 ? 1 : 0;
    }
    test_resume_any_step(true);
    test_resume_any_step(false);
    test_refusals();
    test_sigkill();
    nb_release(X);
    nb_release(Y);
    nb_cleanup();
    printf("checkpoint: %d passed, %d failed\n", check_passed_, check_failed_);
    return check_failed_ != 0;
}
