/*
 * Fashion-MNIST with an MLP 784-256-128-10 (ReLU), trained with Adam on
 * minibatches of 64 (reshuffled every epoch), cross-entropy from logits.
 * Pixels are standardised with the training set's mean and deviation; the
 * learning rate follows a cosine from --lr down to --lr / 20 over the run.
 * The defaults (10 epochs, lr 1e-3) reach about 0.897 test accuracy.
 *
 *   fashion_mnist [--model mlp|cnn] [--epochs N] [--batch B] [--lr X] [--hidden 256,128] [--seed S]
 *                 [--threads T] [--data DIR] [--out DIR] [--limit N] [--test-limit N]
 *                 [--checkpoint PATH [--checkpoint-every N] [--resume]]
 *
 * --data: the folder with train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
 *         t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz (also without .gz)
 *         default /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist)
 * --threads: threads for matmul and element-wise kernels (default 1).
 * --limit / --test-limit: use only the first N training / test examples.
 * --min-accuracy A: exit 1 when the final test accuracy is below A (for tests).
 * --checkpoint PATH: write a checkpoint (nb_checkpoint_save: parameters, Adam's
 *         moments and step count, the position in the run, the metrics so
 *         far, the configuration) every --checkpoint-every N steps (default
 *         100; 0: only at epoch ends) and at the end of every epoch.
 * --resume: continue from --checkpoint PATH when it exists (a checkpoint of
 *         another configuration, or a damaged one, is refused: exit 1); the
 *         resumed run ends with the same parameters, bit for bit, as an
 *         uninterrupted one.
 * --compare FILE [--compare-tol X]: at the end, exit 1 unless the parameters
 *         equal those saved in FILE (a model.nbp) within X relative
 *         (max |difference| / max |value|; default 0: bit for bit).
 * --die-at-step N [--die-rank R]: rank R (default 0) kills itself with
 *         SIGKILL after step N (for the fault tests).
 *
 * Data parallel over MPI (when nabla is built with it):
 *     mpirun -np 2 fashion_mnist [flags]
 * Every rank holds the model; each global minibatch of --batch examples is
 * split between the ranks (nb_shard), the gradients are summed over the
 * ranks, so the run is the single process's run up to summation order.
 * --dp sharded (default): a reduce-scatter of the gradient slab, each rank
 * runs Adam on its share, an all-gather of the values (nb_mpi_sharded_step);
 * --dp allreduce: one MPI_Allreduce of the slab, every rank runs Adam on all.  Only rank 0 prints and writes files
 * (checkpoints included); every rank resumes from the checkpoint.
 *
 * Prints one line per epoch, "epoch N: loss L, test accuracy A, S s" (S: the
 * epoch's training time), and finally "test accuracy: 0.XXXX".  On a terminal
 * a progress bar runs on stderr.  Writes into --out (default out/fashion_mnist):
 *   model.nbp    the trained parameters (nb_params_save)
 *   epochs.csv   epoch, mean training loss, test accuracy, seconds
 *   curves.svg   training loss and test accuracy per epoch
 * The saved file is loaded back into a fresh network, which must give
 * identical predictions on the test set.
 * Exits 77 (a skipped test for ctest) when the data set is missing.
 */
#include "nabla.h"
#include "nn_example.h"
#include "cnn_model.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_LAYERS 16

/* rank and number of ranks (0 and 1 without MPI); only rank 0 prints */
static int rank = 0, nranks = 1;
#define SAY(...)                         \
    do {                                 \
        if (rank == 0) printf(__VA_ARGS__); \
    } while (0)

/* sums v[0..n) over the ranks (nothing without MPI) */
static void reduce_sum(double *v, int64_t n) {
#if NABLA_HAVE_MPI
    if (nranks > 1) EX_CHECK(nb_mpi_allreduce_sum(v, n) == 0);
#else
    (void)v;
    (void)n;
#endif
}

/* first of DIR/NAME.gz, DIR/NAME that exists */
static const char *find_file(char *buf, size_t size, const char *dir, const char *name) {
    snprintf(buf, size, "%s/%s.gz", dir, name);
    if (access(buf, R_OK) == 0) return buf;
    snprintf(buf, size, "%s/%s", dir, name);
    if (access(buf, R_OK) == 0) return buf;
    return NULL;
}

/* The first `limit` entries (all when limit is 0) of the IDX file at path;
   with `rows`, flattened to (n, d): images (n, 28, 28) -> (n, 784).  Built in
   a scope of its own, so only the result stays in memory (not the file's
   full tensor); the caller owns the returned reference (nb_release). */
static nb_tensor *load(const char *path, int64_t limit, bool rows) {
    size_t mark = nb_scope_begin();
    nb_tensor *t = nb_idx_read(path);
    EX_CHECK(t && nb_ndim(t) >= 1);
    int64_t n = nb_shape(t)[0];
    if (limit > 0 && limit < n) {
        int64_t *idx = malloc(sizeof(int64_t) * (size_t)limit);
        EX_CHECK(idx);
        for (int64_t i = 0; i < limit; i++) idx[i] = i;
        t = nb_gather_rows(t, idx, limit);
        free(idx);
        EX_CHECK(t);
        n = limit;
    }
    if (rows) t = nb_reshape(t, 2, (int64_t[]){n, n ? nb_numel(t) / n : 0});
    EX_CHECK(t);
    nb_retain(t);
    nb_scope_end(mark);
    return t;
}

/* logits of every row of x, evaluated without a graph in chunks; into out (n, 10) */
static void predict(const ex_model *net, nb_tensor *x, double *out, int64_t classes) {
    int64_t n = nb_shape(x)[0], chunk = 1000;
    bool prev = nb_set_grad_enabled(false);
    int64_t *idx = malloc(sizeof(int64_t) * (size_t)chunk);
    EX_CHECK(idx);
    for (int64_t s = 0; s < n; s += chunk) {
        int64_t k = n - s < chunk ? n - s : chunk;
        for (int64_t i = 0; i < k; i++) idx[i] = s + i;
        size_t mark = nb_scope_begin();
        nb_tensor *z = ex_model_forward(net, nb_gather_rows(x, idx, k));
        EX_CHECK(z);
        memcpy(out + s * classes, nb_data(z), sizeof(double) * (size_t)(k * classes));
        nb_scope_end(mark);
    }
    free(idx);
    nb_set_grad_enabled(prev);
}

static double accuracy_of(const double *logits, nb_tensor *y, int64_t classes) {
    int64_t n = nb_shape(y)[0], right = 0;
    for (int64_t i = 0; i < n; i++) {
        const double *r = logits + i * classes;
        int64_t best = 0;
        for (int64_t j = 1; j < classes; j++)
            if (r[j] > r[best]) best = j;
        right += best == (int64_t)nb_data(y)[i];
    }
    return n ? (double)right / (double)n : 0.0;
}

static void progress(int epoch, int epochs, int64_t done, int64_t total, double loss,
                     double rate, double eta) {
    int width = 28, fill = (int)(width * done / (total ? total : 1));
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    fprintf(stderr, "\r\033[Kepoch %d/%d [%s] %lld/%lld  loss %.4f  %.0f ex/s  ETA %.0f s", epoch,
            epochs, bar, (long long)done, (long long)total, loss, rate, eta);
    fflush(stderr);
}

/* test-set accuracy with every rank predicting its share of the rows */
static double sharded_accuracy(const ex_model *net, nb_tensor *x, nb_tensor *y, double *logits) {
    int64_t n = nb_shape(x)[0], lo, cnt = nb_shard(n, rank, nranks, &lo);
    double right[2] = {0, 0};
    if (cnt > 0) {
        int64_t *idx = malloc(sizeof(int64_t) * (size_t)cnt);
        EX_CHECK(idx);
        for (int64_t i = 0; i < cnt; i++) idx[i] = lo + i;
        size_t mark = nb_scope_begin();
        nb_tensor *xs = nb_gather_rows(x, idx, cnt), *ys = nb_gather_rows(y, idx, cnt);
        EX_CHECK(xs && ys);
        predict(net, xs, logits, 10);
        right[0] = accuracy_of(logits, ys, 10) * (double)cnt;
        nb_scope_end(mark);
        free(idx);
    }
    right[1] = (double)cnt;
    reduce_sum(right, 2);
    return right[1] > 0 ? right[0] / right[1] : 0.0;
}

int main(int argc, char **argv) {
#if NABLA_HAVE_MPI
    /* under mpirun (or any launcher that sets a world size), data parallel */
    if (getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK")) {
        if (nb_mpi_init(&argc, &argv) != 0) {
            fprintf(stderr, "fashion_mnist: %s\n", nb_last_error());
            return 1;
        }
        rank = nb_mpi_rank();
        nranks = nb_mpi_size();
    }
#endif
    int epochs = -1, threads = 0; /* -1, 0: the default */
    bool cnn = false;
    int64_t batch = 64, limit = 0, test_limit = 0, ck_every = 100, die_at = -1, die_rank = 0;
    double lr = 1e-3, min_acc = 0, cmp_tol = 0;
    unsigned long long seed = 1;
    int64_t sizes[MAX_LAYERS + 2];
    int nsizes = 0;
    bool resume = false, sharded = true;
    const char *hidden = "256,128", *ckpt = NULL, *compare = NULL;
    const char *data = "/usr/share/datasets/fashion-mnist", *out = "out/fashion_mnist";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model")) {
            const char *m = ex_arg(argc, argv, &i);
            if (strcmp(m, "mlp") && strcmp(m, "cnn")) {
                fprintf(stderr, "%s: --model wants mlp or cnn, got '%s'\n", argv[0], m);
                return 2;
            }
            cnn = !strcmp(m, "cnn");
        } else if (!strcmp(argv[i], "--epochs")) epochs = (int)ex_arg_int(argc, argv, &i, 0, 100000);
        else if (!strcmp(argv[i], "--batch")) batch = ex_arg_int(argc, argv, &i, 1, 1 << 20);
        else if (!strcmp(argv[i], "--lr")) lr = ex_arg_double(argc, argv, &i, 1e-12, 1e3);
        else if (!strcmp(argv[i], "--hidden")) hidden = ex_arg(argc, argv, &i);
        else if (!strcmp(argv[i], "--seed")) seed = (unsigned long long)ex_arg_int(argc, argv, &i, 0, INT64_MAX);
        else if (!strcmp(argv[i], "--threads")) threads = (int)ex_arg_int(argc, argv, &i, 1, 1024);
        else if (!strcmp(argv[i], "--data")) data = ex_arg(argc, argv, &i);
        else if (!strcmp(argv[i], "--out")) out = ex_arg(argc, argv, &i);
        else if (!strcmp(argv[i], "--limit")) limit = ex_arg_int(argc, argv, &i, 1, INT64_MAX);
        else if (!strcmp(argv[i], "--test-limit")) test_limit = ex_arg_int(argc, argv, &i, 1, INT64_MAX);
        else if (!strcmp(argv[i], "--min-accuracy")) min_acc = ex_arg_double(argc, argv, &i, 0, 1);
        else if (!strcmp(argv[i], "--checkpoint")) ckpt = ex_arg(argc, argv, &i);
        else if (!strcmp(argv[i], "--checkpoint-every")) ck_every = ex_arg_int(argc, argv, &i, 0, INT64_MAX);
        else if (!strcmp(argv[i], "--resume")) resume = true;
        else if (!strcmp(argv[i], "--dp")) {
            const char *v = ex_arg(argc, argv, &i);
            if (strcmp(v, "sharded") && strcmp(v, "allreduce")) {
                fprintf(stderr, "%s: --dp wants sharded or allreduce, got '%s'\n", argv[0], v);
                return 2;
            }
            sharded = !strcmp(v, "sharded");
        }
        else if (!strcmp(argv[i], "--compare")) compare = ex_arg(argc, argv, &i);
        else if (!strcmp(argv[i], "--compare-tol")) cmp_tol = ex_arg_double(argc, argv, &i, 0, 1);
        else if (!strcmp(argv[i], "--die-at-step")) die_at = ex_arg_int(argc, argv, &i, 0, INT64_MAX);
        else if (!strcmp(argv[i], "--die-rank")) die_rank = ex_arg_int(argc, argv, &i, 0, 1 << 20);
        else {
            if (rank == 0)
                fprintf(stderr,
                        "usage: %s [--model mlp|cnn] [--epochs N] [--batch B] [--lr X] [--hidden 256,128] [--seed S]\n"
                        "          [--threads T] [--data DIR] [--out DIR] [--limit N] [--test-limit N]\n"
                        "          [--min-accuracy A] [--checkpoint PATH [--checkpoint-every N] [--resume]]\n"
                        "          [--compare FILE [--compare-tol X]] [--die-at-step N [--die-rank R]]\n"
                        "          [--dp sharded|allreduce]\n",
                        argv[0]);
            return 2;
        }
    }
    (void)sharded; /* used only with MPI */
    if (resume && !ckpt) {
        fprintf(stderr, "%s: --resume needs --checkpoint PATH\n", argv[0]);
        return 2;
    }
    /* --hidden "256,128" -> sizes 784, 256, 128, 10 ("" or "none": no hidden layer) */
    sizes[nsizes++] = 784;
    if (strcmp(hidden, "") && strcmp(hidden, "none")) {
        const char *s = hidden;
        for (;;) {
            char *end;
            long long v = strtoll(s, &end, 10);
            if (end == s || v < 1 || v > 1 << 20 || nsizes > MAX_LAYERS || (*end && *end != ',')) {
                fprintf(stderr, "%s: --hidden wants sizes like 256,128, got '%s'\n", argv[0], hidden);
                return 2;
            }
            sizes[nsizes++] = v;
            if (!*end) break;
            s = end + 1;
        }
    }
    sizes[nsizes++] = 10;
    if (epochs < 0) epochs = cnn ? 4 : 10;
    /* one thread unless asked: on small 2-core machines that also run other
       work, a second thread (OpenBLAS's and nabla's) costs more than it gives */
    if (threads == 0) threads = 1;
    nb_set_num_threads(threads);

    char f1[1100], f2[1100], f3[1100], f4[1100];
    if (!find_file(f1, sizeof f1, data, "train-images-idx3-ubyte") ||
        !find_file(f2, sizeof f2, data, "train-labels-idx1-ubyte") ||
        !find_file(f3, sizeof f3, data, "t10k-images-idx3-ubyte") ||
        !find_file(f4, sizeof f4, data, "t10k-labels-idx1-ubyte")) {
        fprintf(stderr, "fashion_mnist: the data set is not in %s (install Debian's "
                        "dataset-fashion-mnist or pass --data DIR): skipped\n", data);
        return 77;
    }
    {   /* a first read: a build without zlib cannot read .gz files (a skip, too) */
        size_t mark = nb_scope_begin();
        if (!nb_idx_read(f4)) {
            const char *e = nb_last_error() ? nb_last_error() : "unknown error";
            fprintf(stderr, "fashion_mnist: %s%s\n", e, strstr(e, "without zlib") ? ": skipped" : "");
            return strstr(e, "without zlib") ? 77 : 1;
        }
        nb_scope_end(mark);
    }
    if (rank == 0 && ex_mkdirs(out)) return 1;

    /* ---- data: kept for the whole run, outside any step's scope */
    double t0 = ex_now();
    nb_tensor *xtr = load(f1, limit, true), *ytr = load(f2, limit, false);
    nb_tensor *xte = load(f3, test_limit, true), *yte = load(f4, test_limit, false);
    int64_t ntr = nb_shape(xtr)[0], nte = nb_shape(xte)[0];
    if (nb_ndim(ytr) != 1 || nb_ndim(yte) != 1 || nb_shape(ytr)[0] != ntr ||
        nb_shape(yte)[0] != nte || nb_shape(xtr)[1] != 784 || nb_shape(xte)[1] != 784) {
        fprintf(stderr, "fashion_mnist: images and labels do not match\n");
        return 1;
    }
    /* standardise with the training set's statistics */
    double mean = 0, sq = 0;
    const double *d = nb_data(xtr);
    for (int64_t i = 0; i < nb_numel(xtr); i++) mean += d[i], sq += d[i] * d[i];
    mean /= (double)nb_numel(xtr);
    double sd = sqrt(sq / (double)nb_numel(xtr) - mean * mean);
    if (!(sd > 0)) sd = 1;
    for (int k = 0; k < 2; k++) {
        nb_tensor *x = k ? xte : xtr;
        double *v = nb_data_mut(x);
        for (int64_t i = 0; i < nb_numel(x); i++) v[i] = (v[i] - mean) / sd;
    }
    SAY("fashion_mnist: %lld training and %lld test images (loaded in %.1f s), %s",
        (long long)ntr, (long long)nte, ex_now() - t0, cnn ? "CNN conv32-pool-conv64-pool-128-10" : "MLP");
    for (int i = 0; i < nsizes && !cnn; i++) SAY("%s%lld", i ? "-" : " ", (long long)sizes[i]);
    SAY(" (ReLU), Adam lr %g, batch %lld, %d epochs, %d threads", lr, (long long)batch, epochs,
        threads);
    if (nranks > 1) SAY(", %d MPI ranks (%lld examples per rank and step)", nranks,
                        (long long)((batch + nranks - 1) / nranks));
    SAY("\n");
    fflush(stdout);

    /* ---- model and optimizer */
    nb_params *P = nb_params_new();
    EX_CHECK(P);
    ex_model model, *net = &model;
    EX_CHECK(ex_model_init(net, cnn, P, nsizes, sizes, seed) == 0);
#if NABLA_HAVE_MPI
    if (nranks > 1) EX_CHECK(nb_mpi_broadcast_params(P, 0) == 0); /* all start from rank 0's */
#endif
    nb_optim *opt = nb_adam_new(P, lr, 0.9, 0.999, 1e-8, 0.0);
    EX_CHECK(opt);
    nb_batcher *bat = nb_batcher_new(ntr, batch, true, false, seed);
    EX_CHECK(bat);
    int64_t nbatches = nb_batcher_num_batches(bat);

    /* ---- the run's state: metrics so far (user values of the checkpoint):
       [0] loss sum of the current epoch, [1] examples seen in it (both over
       all ranks), then per epoch e >= 1: loss, test accuracy, seconds */
    int64_t n_user = 2 + 3 * (int64_t)epochs;
    double *user = calloc((size_t)n_user, sizeof(double));
    EX_CHECK(user);
    double *ep_loss = calloc((size_t)epochs + 1, sizeof(double));
    double *ep_acc = calloc((size_t)epochs + 1, sizeof(double));
    double *ep_x = calloc((size_t)epochs + 1, sizeof(double));
    double *ep_secs = calloc((size_t)epochs + 1, sizeof(double));
    double *logits = malloc(sizeof(double) * (size_t)(nte * 10));
    EX_CHECK(ep_loss && ep_acc && ep_x && ep_secs && logits);
    nb_train_state st = {0};
    st.user = user;
    st.n_user = n_user;
    char config[1024];
    {
        int at = snprintf(config, sizeof config, "model=%s", cnn ? "cnn:" : "");
        for (int i = 0; i < nsizes; i++)
            at += snprintf(config + at, sizeof config - (size_t)at, "%s%lld", i ? "-" : "",
                           (long long)sizes[i]);
        snprintf(config + at, sizeof config - (size_t)at,
                 " relu\noptimizer=adam 0.9 0.999 1e-08\nlr=%.17g cosine to lr/20\nbatch=%lld\n"
                 "epochs=%d\nseed=%llu\nlimit=%lld\ntest_limit=%lld\n",
                 lr, (long long)batch, epochs, seed, (long long)limit, (long long)test_limit);
    }
    int first_epoch = 1;
    int64_t first_batch = 0;
    if (resume) {
        if (access(ckpt, F_OK) != 0) {
            SAY("no checkpoint at %s yet: starting from the beginning\n", ckpt);
        } else {
            if (nb_checkpoint_load(ckpt, config, P, opt, &st) != 0) {
                if (rank == 0) fprintf(stderr, "fashion_mnist: %s\n", nb_last_error());
                return 1;
            }
            EX_CHECK(nb_batcher_seek(bat, st.epoch, st.batch) == 0);
            first_epoch = (int)st.epoch + 1;
            first_batch = st.batch;
            for (int e = 1; e <= epochs; e++) {
                ep_loss[e] = user[2 + 3 * (e - 1)];
                ep_acc[e] = user[3 + 3 * (e - 1)];
                ep_secs[e] = user[4 + 3 * (e - 1)];
                ep_x[e] = e;
            }
            SAY("resumed from %s: epoch %d, batch %lld of %lld (step %lld)\n", ckpt, first_epoch,
                (long long)first_batch, (long long)nbatches, (long long)st.step);
        }
    }
    /* the checkpoint: the metrics summed over the ranks, rank 0 writes */
    double loss_sum = 0;
    int64_t seen = 0;
    bool bar = rank == 0 && isatty(fileno(stderr));
#if NABLA_HAVE_MPI
#define SYNC_OPTIM() \
    if (nranks > 1 && sharded) EX_CHECK(nb_mpi_sync_optim(opt) == 0)
#else
#define SYNC_OPTIM() (void)0
#endif
#define WRITE_CHECKPOINT()                                                       \
    do {                                                                         \
        double m_[2] = {loss_sum, (double)seen};                                 \
        reduce_sum(m_, 2);                                                       \
        user[0] = m_[0];                                                         \
        user[1] = m_[1];                                                         \
        for (int e_ = 1; e_ <= epochs; e_++) {                                   \
            user[2 + 3 * (e_ - 1)] = ep_loss[e_];                                \
            user[3 + 3 * (e_ - 1)] = ep_acc[e_];                                 \
            user[4 + 3 * (e_ - 1)] = ep_secs[e_];                                \
        }                                                                        \
        SYNC_OPTIM();                                                            \
        if (rank == 0) EX_CHECK(nb_checkpoint_save(ckpt, config, P, opt, &st) == 0); \
    } while (0)
    if (st.step > 0 && rank == 0) loss_sum = user[0], seen = (int64_t)user[1];

    double acc = 0, total_time = 0;
    for (int ep = first_epoch; ep <= epochs; ep++) {
        double te = ex_now(), last_bar = 0;
        int64_t done = ep == first_epoch ? first_batch : 0, seen0 = seen;
        if (ep != first_epoch || first_batch == 0) loss_sum = 0, seen = 0, seen0 = 0;
        const int64_t *idx;
        int64_t k;
        while ((k = nb_batcher_next(bat, &idx)) > 0) {
            /* the cosine schedule: lr at the start, lr / 20 at the end */
            double frac = ((double)(ep - 1) + (double)done / (double)nbatches) / (double)epochs;
            nb_optim_set_lr(opt, lr * (0.05 + 0.95 * 0.5 * (1 + cos(3.141592653589793 * frac))));
            /* this rank's share of the global minibatch */
            int64_t lo, cnt = nb_shard(k, rank, nranks, &lo);
            size_t mark = nb_scope_begin();
            if (cnt > 0) {
                nb_tensor *xb = nb_gather_rows(xtr, idx + lo, cnt);      /* (b, 784) */
                nb_tensor *yb = nb_gather_rows(ytr, idx + lo, cnt);      /* (b,)     */
                nb_tensor *loss = nb_cross_entropy(ex_model_forward(net, xb), yb);
                EX_CHECK(loss && nb_backward(loss, NULL) == 0);
                loss_sum += nb_item(loss) * (double)cnt;
            }
            /* the mean over the global batch: sum_r (cnt_r / k) grad_r, then the
               step; under MPI by default the step's work is shared out
               (nb_mpi_sharded_step), with --dp allreduce every rank steps
               the whole slab after one all-reduce */
#if NABLA_HAVE_MPI
            if (nranks > 1 && sharded)
                EX_CHECK(nb_mpi_sharded_step(P, opt, (double)cnt / (double)k) == 0);
            else if (nranks > 1)
                EX_CHECK(nb_mpi_allreduce_grad(P, (double)cnt / (double)k) == 0);
            if (!(nranks > 1 && sharded))
#endif
                EX_CHECK(nb_optim_step(opt) == 0);
            nb_params_zero_grad(P);
            nb_scope_end(mark);
            seen += cnt;
            done++;
            st.epoch = ep - 1;
            st.batch = done;
            st.step++;
            if (ckpt && ck_every > 0 && st.step % ck_every == 0 && done < nbatches)
                WRITE_CHECKPOINT();
            if (st.step == die_at && rank == die_rank) {
                fprintf(stderr, "fashion_mnist: rank %d kills itself after step %lld (--die-at-step)\n",
                        rank, (long long)st.step);
                raise(SIGKILL);
            }
            if (bar) {
                double now = ex_now();
                if (now - last_bar > 0.1 || done == nbatches) {
                    double rate = (double)(seen - seen0) * nranks / (now - te);
                    progress(ep, epochs, done, nbatches, seen ? loss_sum / (double)seen : 0, rate,
                             (double)(ntr - seen * nranks) / rate);
                    last_bar = now;
                }
            }
        }
        double secs = ex_now() - te;
        total_time += secs;
        if (bar) fprintf(stderr, "\r\033[K");
        acc = sharded_accuracy(net, xte, yte, logits);
        double m[2] = {loss_sum, (double)seen};
        reduce_sum(m, 2);
        ep_x[ep] = ep;
        ep_loss[ep] = m[1] > 0 ? m[0] / m[1] : 0;
        ep_acc[ep] = acc;
        ep_secs[ep] = secs;
        SAY("epoch %d: loss %.4f, test accuracy %.4f, %.2f s\n", ep, ep_loss[ep], acc, secs);
        fflush(stdout);
        st.epoch = ep;
        st.batch = 0;
        loss_sum = 0;
        seen = 0;
        if (ckpt) WRITE_CHECKPOINT();
    }
    if (rank == 0) {
        char cpath[1200];
        FILE *csv = fopen(ex_path(cpath, sizeof cpath, out, "epochs.csv"), "w");
        if (!csv) {
            perror(cpath);
            return 1;
        }
        fprintf(csv, "epoch,loss,test_accuracy,seconds\n");
        for (int e = 1; e <= epochs; e++)
            fprintf(csv, "%d,%.6f,%.4f,%.3f\n", e, ep_loss[e], ep_acc[e], ep_secs[e]);
        fclose(csv);
    }
    acc = epochs > 0 ? ep_acc[epochs] : sharded_accuracy(net, xte, yte, logits);
    int rc = 0;
    if (rank == 0) {
        /* ---- save, then load into a fresh network: predictions must be identical */
        char path[1200];
        predict(net, xte, logits, 10);
        EX_CHECK(nb_params_save(P, ex_path(path, sizeof path, out, "model.nbp")) == 0);
        nb_params *Q = nb_params_new();
        EX_CHECK(Q);
        ex_model model2, *net2 = &model2;
        EX_CHECK(ex_model_init(net2, cnn, Q, nsizes, sizes, seed + 12345) == 0);
        EX_CHECK(nb_params_load(Q, path) == 0);
        double *logits2 = malloc(sizeof(double) * (size_t)(nte * 10));
        EX_CHECK(logits2);
        predict(net2, xte, logits2, 10);
        if (memcmp(logits, logits2, sizeof(double) * (size_t)(nte * 10)) != 0) {
            fprintf(stderr, "fashion_mnist: the reloaded parameters predict differently\n");
            return 1;
        }
        printf("saved %s (%lld parameters); reloaded: identical predictions\n", path,
               (long long)nb_params_numel(P));
        free(logits2);
        ex_model_free(net2);
        /* ---- against a reference run's parameters (--compare) */
        if (compare) {
            EX_CHECK(nb_params_load(Q, compare) == 0);
            const double *a = nb_params_data(P), *b = nb_params_data(Q);
            double scale = 0, diff = 0;
            for (int64_t i = 0; i < nb_params_numel(P); i++) {
                if (fabs(b[i]) > scale) scale = fabs(b[i]);
                if (fabs(a[i] - b[i]) > diff) diff = fabs(a[i] - b[i]);
            }
            bool same = memcmp(a, b, sizeof(double) * (size_t)nb_params_numel(P)) == 0;
            double rel = scale > 0 ? diff / scale : diff;
            printf("compare with %s: %s, max relative difference %.3g (tolerance %g)\n", compare,
                   same ? "bit-identical" : "different bits", rel, cmp_tol);
            if (!(rel <= cmp_tol) || (cmp_tol == 0 && !same)) {
                fprintf(stderr, "fashion_mnist: the parameters differ from %s by %.3g relative, "
                                "more than %g\n", compare, rel, cmp_tol);
                rc = 1;
            }
        }
        nb_params_free(Q);

        /* ---- curves */
        if (epochs > 0) {
            double lmax = 0, amin = 1;
            for (int e = 1; e <= epochs; e++) {
                if (ep_loss[e] > lmax) lmax = ep_loss[e];
                if (ep_acc[e] < amin) amin = ep_acc[e];
                ep_x[e] = e;
            }
            double x1 = epochs > 1 ? epochs : 2;
            nb_plot *pl = nb_plot_new(2, 480, 360);
            EX_CHECK(pl);
            EX_CHECK(nb_plot_panel(pl, 0, 1, x1, 0, lmax * 1.1 + 1e-9, "training loss (cross-entropy)", "epoch", "loss") == 0);
            EX_CHECK(nb_plot_line(pl, epochs, ep_x + 1, ep_loss + 1, "#1f77b4", 2, 3) == 0);
            double alo = floor(amin * 50) / 50;
            if (alo > 0.98) alo = 0.98;
            EX_CHECK(nb_plot_panel(pl, 1, 1, x1, alo, 1.0, "test accuracy", "epoch", "accuracy") == 0);
            EX_CHECK(nb_plot_line(pl, epochs, ep_x + 1, ep_acc + 1, "#d62728", 2, 3) == 0);
            EX_CHECK(nb_plot_save(pl, ex_path(path, sizeof path, out, "curves.svg")) == 0);
            nb_plot_free(pl);
            double tsum = 0;
            for (int e = 1; e <= epochs; e++) tsum += ep_secs[e];
            printf("wrote %s/epochs.csv and %s/curves.svg; %.2f s per epoch on average\n", out, out,
                   tsum / epochs);
        }
        printf("test accuracy: %.4f\n", acc);
        if (acc < min_acc) {
            fprintf(stderr, "fashion_mnist: test accuracy %.4f is below --min-accuracy %.4f\n", acc, min_acc);
            rc = 1;
        }
    }
    (void)total_time;

    free(ep_loss);
    free(ep_acc);
    free(ep_x);
    free(ep_secs);
    free(user);
    free(logits);
    nb_batcher_free(bat);
    nb_optim_free(opt);
    ex_model_free(net);
    nb_params_free(P);
    nb_release(xtr);
    nb_release(ytr);
    nb_release(xte);
    nb_release(yte);
    nb_cleanup();
#if NABLA_HAVE_MPI
    if (nranks > 1) {
        /* the job fails when any rank fails (only rank 0 checks) */
        double r = rc;
        reduce_sum(&r, 1);
        rc = r != 0;
        nb_mpi_finalize();
    }
#endif
    return rc;
}
