/*
 * Fashion-MNIST with an MLP 784-256-128-10 (ReLU), trained with Adam on
 * minibatches of 64 (reshuffled every epoch), cross-entropy from logits.
 * Pixels are standardised with the training set's mean and deviation; the
 * learning rate follows a cosine from --lr down to --lr / 20 over the run.
 * The defaults (10 epochs, lr 1e-3) reach about 0.897 test accuracy.
 *
 *   fashion_mnist [--model mlp|cnn] [--epochs N] [--batch B] [--lr X] [--hidden 256,128] [--seed S]
 *                 [--threads T] [--data DIR] [--out DIR] [--limit N] [--test-limit N]
 *
 * --data: the folder with train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
 *         t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz (also without .gz)
 *         default /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist)
 * --model cnn: the convolutional network of cnn_model.h instead of the MLP
 *         (conv 3x3 32, pool, conv 3x3 64, pool, Linear 128, Linear 10); its
 *         defaults: 4 epochs, lr 1e-3 (about 0.91-0.92 test accuracy).
 * --threads: threads for matmul and element-wise kernels (default 1).
 * --limit / --test-limit: use only the first N training / test examples.
 * --min-accuracy A: exit 1 when the final test accuracy is below A (for tests).
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_LAYERS 16

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

int main(int argc, char **argv) {
    int epochs = -1, threads = 0; /* -1, 0: the default */
    bool cnn = false;
    int64_t batch = 64, limit = 0, test_limit = 0;
    double lr = 1e-3, min_acc = 0;
    unsigned long long seed = 1;
    int64_t sizes[MAX_LAYERS + 2];
    int nsizes = 0;
    const char *hidden = "256,128";
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
        else {
            fprintf(stderr,
                    "usage: %s [--model mlp|cnn] [--epochs N] [--batch B] [--lr X] [--hidden 256,128] [--seed S]\n"
                    "          [--threads T] [--data DIR] [--out DIR] [--limit N] [--test-limit N]\n"
                    "          [--min-accuracy A]\n",
                    argv[0]);
            return 2;
        }
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
    if (ex_mkdirs(out)) return 1;

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
    printf("fashion_mnist: %lld training and %lld test images (loaded in %.1f s), %s",
           (long long)ntr, (long long)nte, ex_now() - t0, cnn ? "CNN conv32-pool-conv64-pool-128-10" : "MLP");
    for (int i = 0; i < nsizes && !cnn; i++) printf("%s%lld", i ? "-" : " ", (long long)sizes[i]);
    printf(" (ReLU), Adam lr %g, batch %lld, %d epochs, %d threads\n", lr, (long long)batch, epochs,
           threads);
    fflush(stdout);

    /* ---- model and optimizer */
    nb_params *P = nb_params_new();
    EX_CHECK(P);
    ex_model model, *net = &model;
    EX_CHECK(ex_model_init(net, cnn, P, nsizes, sizes, seed) == 0);
    nb_optim *opt = nb_adam_new(P, lr, 0.9, 0.999, 1e-8, 0.0);
    EX_CHECK(opt);
    nb_batcher *bat = nb_batcher_new(ntr, batch, true, false, seed);
    EX_CHECK(bat);
    int64_t nbatches = nb_batcher_num_batches(bat);

    char path[1200];
    FILE *csv = fopen(ex_path(path, sizeof path, out, "epochs.csv"), "w");
    if (!csv) {
        perror(path);
        return 1;
    }
    fprintf(csv, "epoch,loss,test_accuracy,seconds\n");
    double *ep_loss = calloc((size_t)epochs + 1, sizeof(double));
    double *ep_acc = calloc((size_t)epochs + 1, sizeof(double));
    double *ep_x = calloc((size_t)epochs + 1, sizeof(double));
    double *logits = malloc(sizeof(double) * (size_t)(nte * 10));
    EX_CHECK(ep_loss && ep_acc && ep_x && logits);
    bool bar = isatty(fileno(stderr));
    double acc = 0, total_time = 0;

    for (int ep = 1; ep <= epochs; ep++) {
        double te = ex_now(), last_bar = 0, loss_sum = 0;
        int64_t seen = 0, done = 0;
        const int64_t *idx;
        int64_t k;
        while ((k = nb_batcher_next(bat, &idx)) > 0) {
            /* the cosine schedule: lr at the start, lr / 20 at the end */
            double frac = ((double)(ep - 1) + (double)done / (double)nbatches) / (double)epochs;
            nb_optim_set_lr(opt, lr * (0.05 + 0.95 * 0.5 * (1 + cos(3.141592653589793 * frac))));
            size_t mark = nb_scope_begin();
            nb_tensor *xb = nb_gather_rows(xtr, idx, k);             /* (B, 784) */
            nb_tensor *yb = nb_gather_rows(ytr, idx, k);             /* (B,)     */
            nb_tensor *loss = nb_cross_entropy(ex_model_forward(net, xb), yb);
            EX_CHECK(loss && nb_backward(loss, NULL) == 0);
            EX_CHECK(nb_optim_step(opt) == 0);
            nb_params_zero_grad(P);
            loss_sum += nb_item(loss) * (double)k;
            nb_scope_end(mark);
            seen += k;
            done++;
            if (bar) {
                double now = ex_now();
                if (now - last_bar > 0.1 || done == nbatches) {
                    double rate = (double)seen / (now - te);
                    progress(ep, epochs, done, nbatches, loss_sum / (double)seen, rate,
                             (double)(ntr - seen) / rate);
                    last_bar = now;
                }
            }
        }
        double secs = ex_now() - te;
        total_time += secs;
        if (bar) fprintf(stderr, "\r\033[K");
        predict(net, xte, logits, 10);
        acc = accuracy_of(logits, yte, 10);
        ep_x[ep] = ep;
        ep_loss[ep] = loss_sum / (double)seen;
        ep_acc[ep] = acc;
        printf("epoch %d: loss %.4f, test accuracy %.4f, %.2f s\n", ep, ep_loss[ep], acc, secs);
        fflush(stdout);
        fprintf(csv, "%d,%.6f,%.4f,%.3f\n", ep, ep_loss[ep], acc, secs);
    }
    fclose(csv);
    if (epochs == 0) {
        predict(net, xte, logits, 10);
        acc = accuracy_of(logits, yte, 10);
    }

    /* ---- save, then load into a fresh network: predictions must be identical */
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

    /* ---- curves */
    if (epochs > 0) {
        double lmax = 0, amin = 1;
        for (int e = 1; e <= epochs; e++) {
            if (ep_loss[e] > lmax) lmax = ep_loss[e];
            if (ep_acc[e] < amin) amin = ep_acc[e];
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
        printf("wrote %s/epochs.csv and %s/curves.svg; %.2f s per epoch on average\n", out, out,
               total_time / epochs);
    }
    printf("test accuracy: %.4f\n", acc);
    int rc = 0;
    if (acc < min_acc) {
        fprintf(stderr, "fashion_mnist: test accuracy %.4f is below --min-accuracy %.4f\n", acc, min_acc);
        rc = 1;
    }

    free(ep_loss);
    free(ep_acc);
    free(ep_x);
    free(logits);
    free(logits2);
    nb_batcher_free(bat);
    nb_optim_free(opt);
    ex_model_free(net);
    ex_model_free(net2);
    nb_params_free(P);
    nb_params_free(Q);
    nb_release(xtr);
    nb_release(ytr);
    nb_release(xte);
    nb_release(yte);
    nb_cleanup();
    return rc;
}
