/*
 * The benchmark's workloads with nabla: the same computations as
 * bench_baseline.c (hand-written C) and bench_torch.py (PyTorch), built
 * from the public API only.  Each repetition builds its graph inside a
 * scope, so the graph's memory is handed back at nb_scope_end (timed: it is
 * part of what a step costs).  Medians after warm-up, one line per figure:
 *
 *   W1 nabla ns_per_op 42.1
 *
 *   bench_nabla [--threads N] [--quick] [--only W1,W2,W3,W4,W5,W6,W7,SCALE,MEM]
 *
 * W1  scalar chain y = tanh(y*w + b), 3333 steps, backward of sum(y)
 * W2  SGD step of X (64, 64) -> Linear 128 -> ReLU -> Linear 10 -> cross-entropy
 * W3  (512, 512) @ (512, 512), backward of the sum (3 GEMMs)
 * W4  y = sigmoid(x) * exp(-x*x) over 10^6 elements, backward of sum(y)
 * W5  one epoch of Fashion-MNIST: MLP 784-256-128-10, ReLU, Adam, batch 64
 * W6  conv2d x (64, 32, 14, 14), w (64, 32, 3, 3), pad 1: forward + backward; and the
 *     dgemm rate of one GEMM of the same FLOPs
 * W7  Fashion-MNIST with the CNN of fashion_mnist --model cnn, Adam, batch 64: 300 steps
 *     (30 with --quick) after 5 warm-up steps, the time scaled to an epoch of 938
 * SCALE  W1 at 10^3 .. 10^6 steps: time and peak memory
 * MEM    W2 over 10,000 steps: live/peak bytes after 100 vs after 10,000;
 *        graph bookkeeping bytes per node
 */
#include "bench_common.h"

#include <nabla.h>

#include "internal.h" /* the block cache's size classes, for the MEM figures */

#if defined(__has_include)
#if __has_include(<zlib.h>)
#include <zlib.h>
#define BENCH_HAVE_ZLIB 1
#endif
#endif

/* ---- helpers */

static void die_if_null(const void *p, const char *what) {
    if (!p) {
        const char *e = nb_last_error();
        fprintf(stderr, "bench_nabla: %s failed: %s\n", what, e ? e : "(no message)");
        exit(1);
    }
}

/* a leaf that requires grad, made from values; it belongs to the scope open
   when it is made (main opens one per workload) */
static nb_tensor *leaf(const double *data, int ndim, const int64_t *shape) {
    nb_tensor *t = nb_new(data, ndim, shape);
    die_if_null(t, "nb_new");
    return t;
}
/* a constant: no gradient */
static nb_tensor *constant(const double *data, int ndim, const int64_t *shape) {
    nb_tensor *t = leaf(data, ndim, shape);
    nb_set_requires_grad(t, false);
    return t;
}

/* x W^T + b: the Linear layer, W (out, in), b (out,); matmul_bt never copies W^T */
static nb_tensor *linear(nb_tensor *x, nb_tensor *W, nb_tensor *b) {
    return nb_add(nb_matmul_bt(x, W), b);
}

/* cross-entropy from logits (B, K) and a one-hot constant (B, K):
   -(1/B) sum(onehot * log_softmax(logits)) */
static nb_tensor *cross_entropy(nb_tensor *logits, nb_tensor *onehot, int64_t B) {
    return nb_scale(nb_sum(nb_prod(onehot, nb_log_softmax(logits, -1))), -1.0 / (double)B);
}

static void one_hot(double *dst, const int *labels, int64_t n, int k) {
    memset(dst, 0, sizeof(double) * (size_t)(n * k));
    for (int64_t i = 0; i < n; i++) dst[i * k + labels[i]] = 1.0;
}

static void sgd(nb_tensor *p, double lr) {
    double *d = nb_data_mut(p);
    nb_tensor *g = nb_grad(p);
    if (!g) return;
    const double *gd = nb_data(g);
    int64_t n = nb_numel(p);
    for (int64_t i = 0; i < n; i++) d[i] -= lr * gd[i];
    nb_zero_grad(p);
}

static nb_mem_stats mem(void) {
    nb_mem_stats s;
    nb_memory_stats(&s);
    return s;
}

/* ===================================================================== */
/* W1 */

/* builds the chain of `steps` steps and runs its backward; the caller owns
   the scope */
static nb_tensor *w1_chain(int64_t steps, nb_tensor *w, nb_tensor *b) {
    const double y0 = W1_Y0;
    const int64_t one = 1;
    nb_tensor *y = constant(&y0, 1, &one);
    for (int64_t i = 0; i < steps; i++) y = nb_tanh(nb_add(nb_prod(y, w), b));
    return y;
}

static void w1_run(int64_t steps, nb_tensor *w, nb_tensor *b) {
    size_t mark = nb_scope_begin();
    nb_tensor *s = nb_sum(w1_chain(steps, w, b));
    die_if_null(s, "W1 graph");
    if (nb_backward(s, NULL)) die_if_null(NULL, "W1 backward");
    nb_scope_end(mark);
}

static void bench_w1(const bench_opts *o) {
    const double w0 = W1_W, b0 = W1_B;
    const int64_t one = 1;
    nb_tensor *w = leaf(&w0, 1, &one), *b = leaf(&b0, 1, &one);
    bench_reps r = bench_r(o, 5, 21);
    double *t = bench_xmalloc(sizeof(double) * (size_t)r.reps);
    for (int i = 0; i < r.warm + r.reps; i++) {
        double t0 = bench_now();
        nb_zero_grad(w);
        nb_zero_grad(b);
        w1_run(W1_STEPS, w, b);
        double t1 = bench_now();
        if (i >= r.warm) t[i - r.warm] = t1 - t0;
    }
    printf("W1 nabla ns_per_op %.4f\n", bench_median(t, r.reps) * 1e9 / (3.0 * W1_STEPS));
    printf("W1 nabla check %.12g\n", nb_item(nb_grad(w)) + nb_item(nb_grad(b)));
    free(t);
}

/* SCALE: W1 at 10^3 .. 10^6 steps.  Peak memory is nabla's own high-water
   mark (nb_memory_stats) above what was live before; the steps go up, so
   each size's peak is its own.  Run it in a process of its own. */
static void bench_scale(const bench_opts *o) {
    const double w0 = W1_W, b0 = W1_B;
    const int64_t one = 1;
    nb_tensor *w = leaf(&w0, 1, &one), *b = leaf(&b0, 1, &one);
    int64_t max_steps = o->quick ? 100000 : 1000000;
    long long rss0 = bench_maxrss_bytes();
    for (int64_t steps = 1000; steps <= max_steps; steps *= 10) {
        int reps = o->quick ? 3 : (steps >= 1000000 ? 3 : 7);
        double *t = bench_xmalloc(sizeof(double) * (size_t)reps);
        nb_mem_stats before = mem();
        w1_run(steps, w, b); /* warm-up */
        for (int i = 0; i < reps; i++) {
            double t0 = bench_now();
            w1_run(steps, w, b);
            t[i] = bench_now() - t0;
        }
        nb_mem_stats after = mem();
        printf("S%lld nabla ms %.4f\n", (long long)steps, bench_median(t, reps) * 1e3);
        printf("S%lld nabla peak_bytes %lld\n", (long long)steps,
               (long long)(after.peak_bytes - before.live_bytes));
        printf("S%lld nabla peak_rss_growth_bytes %lld\n", (long long)steps,
               bench_maxrss_bytes() - rss0);
        fflush(stdout);
        free(t);
    }
}

/* ===================================================================== */
/* W2 */

typedef struct w2_net {
    nb_tensor *W1, *b1, *W2, *b2; /* parameters */
    nb_tensor *X, *Y;             /* constants: the batch and its one-hot labels */
} w2_net;

static void w2_init(w2_net *n) {
    static double W1[W2_HID * W2_IN], b1[W2_HID], W2[W2_OUT * W2_HID], b2[W2_OUT];
    static double X[W2_B * W2_IN], Y[W2_B * W2_OUT];
    int labels[W2_B];
    bench_fill_normal(X, W2_B * W2_IN, SEED_W2_X);
    bench_init_linear(W1, b1, W2_IN, W2_HID, SEED_W2_W1, SEED_W2_B1);
    bench_init_linear(W2, b2, W2_HID, W2_OUT, SEED_W2_W2, SEED_W2_B2);
    bench_fill_labels(labels, W2_B, SEED_W2_LABELS, W2_OUT);
    one_hot(Y, labels, W2_B, W2_OUT);
    n->W1 = leaf(W1, 2, (int64_t[]){ W2_HID, W2_IN });
    n->b1 = leaf(b1, 1, (int64_t[]){ W2_HID });
    n->W2 = leaf(W2, 2, (int64_t[]){ W2_OUT, W2_HID });
    n->b2 = leaf(b2, 1, (int64_t[]){ W2_OUT });
    n->X = constant(X, 2, (int64_t[]){ W2_B, W2_IN });
    n->Y = constant(Y, 2, (int64_t[]){ W2_B, W2_OUT });
}

static nb_tensor *w2_loss(w2_net *n) {
    nb_tensor *h = nb_relu(linear(n->X, n->W1, n->b1));   /* (64, 128) */
    nb_tensor *logits = linear(h, n->W2, n->b2);            /* (64, 10)  */
    nb_tensor *loss = cross_entropy(logits, n->Y, W2_B);    /* ()        */
    die_if_null(loss, "W2 graph");
    return loss;
}

/* one training step; returns the loss */
static double w2_step(w2_net *n) {
    size_t mark = nb_scope_begin();
    nb_tensor *loss = w2_loss(n);
    if (nb_backward(loss, NULL)) die_if_null(NULL, "W2 backward");
    double l = nb_item(loss);
    sgd(n->W1, W2_LR);
    sgd(n->b1, W2_LR);
    sgd(n->W2, W2_LR);
    sgd(n->b2, W2_LR);
    nb_scope_end(mark);
    return l;
}

static void bench_w2(const bench_opts *o) {
    w2_net n;
    w2_init(&n);
    double loss = 0;
    for (int s = 0; s < 50; s++) loss = w2_step(&n);
    printf("W2 nabla check %.12g\n", loss);
    bench_reps r = bench_r(o, 3, 15);
    int steps = o->quick ? 50 : 500;
    double *t = bench_xmalloc(sizeof(double) * (size_t)r.reps);
    for (int i = 0; i < r.warm + r.reps; i++) {
        double t0 = bench_now();
        for (int s = 0; s < steps; s++) w2_step(&n);
        double t1 = bench_now();
        if (i >= r.warm) t[i - r.warm] = (t1 - t0) / steps;
    }
    printf("W2 nabla us_per_step %.4f\n", bench_median(t, r.reps) * 1e6);
    free(t);
}

/* ---- MEM: steady state of W2, and bookkeeping bytes per graph node */

/* the nodes of the graph behind t that are not in `skip` (iterative DFS
   over parents; pointer set by linear search is fine at this size) */
static int64_t graph_nodes(nb_tensor *t, nb_tensor *const *skip, int nskip,
                           int64_t *data_bytes, int64_t *round_bytes) {
    enum { MAXN = 4096 };
    static nb_tensor *seen[MAXN], *stack[MAXN];
    int64_t nseen = 0, nstack = 0;
    *data_bytes = *round_bytes = 0;
    stack[nstack++] = t;
    while (nstack) {
        nb_tensor *u = stack[--nstack];
        int known = 0;
        for (int64_t i = 0; i < nseen && !known; i++) known = seen[i] == u;
        for (int i = 0; i < nskip && !known; i++) known = skip[i] == u;
        if (known || nseen == MAXN) continue;
        seen[nseen++] = u;
        *data_bytes += nb_numel(u) * (int64_t)sizeof(double);
        /* the block cache's size-class rounding of this node's block (the
           class formula is the library's own, from src/internal.h) */
        size_t need = NB__HDR + (size_t)nb_numel(u) * sizeof(double);
        *round_bytes += (int64_t)(nb__class_bytes(nb__size_class(need)) - need);
        for (int k = 0; k < nb_num_parents(u) && nstack < MAXN; k++)
            stack[nstack++] = nb_parent(u, k);
    }
    return nseen;
}

static void bench_mem(const bench_opts *o) {
    /* 1. bookkeeping per node, on W1's chain: every tensor there holds one
       double, so data bytes = 8 per tensor */
    {
        const double w0 = W1_W, b0 = W1_B;
        const int64_t one = 1;
        nb_tensor *w = leaf(&w0, 1, &one), *b = leaf(&b0, 1, &one);
        w1_run(W1_STEPS, w, b); /* warm the cache */
        size_t mark = nb_scope_begin();
        nb_mem_stats s0 = mem();
        nb_tensor *y = nb_sum(w1_chain(W1_STEPS, w, b));
        die_if_null(y, "MEM W1 graph");
        nb_mem_stats s1 = mem();
        int64_t nodes = s1.live_tensors - s0.live_tensors;
        int64_t bytes = s1.live_bytes - s0.live_bytes;
        printf("MEM nabla w1_graph_nodes %lld\n", (long long)nodes);
        printf("MEM nabla w1_graph_bytes %lld\n", (long long)bytes);
        /* every tensor there holds one double: its block rounds up alike */
        int64_t rounding = nodes * (int64_t)(nb__class_bytes(nb__size_class(NB__HDR + 8)) - (NB__HDR + 8));
        printf("MEM nabla w1_graph_rounding_bytes %lld\n", (long long)rounding);
        if (nodes > 0)
            printf("MEM nabla w1_bookkeeping_bytes_per_node %.1f\n",
                   (double)(bytes - 8 * nodes - rounding) / (double)nodes);
        nb_backward(y, NULL);
        nb_mem_stats s2 = mem();
        printf("MEM nabla w1_graph_bytes_after_backward %lld\n",
               (long long)(s2.live_bytes - s0.live_bytes));
        nb_scope_end(mark);
    }
    /* 2. the W2 graph: nodes walked from the loss, minus the parameters */
    w2_net n;
    w2_init(&n);
    w2_step(&n); /* gradients exist from here on, as in the steady state */
    {
        size_t mark = nb_scope_begin();
        nb_mem_stats s0 = mem();
        nb_tensor *loss = w2_loss(&n);
        nb_mem_stats s1 = mem();
        nb_tensor *skip[] = { n.W1, n.b1, n.W2, n.b2, n.X, n.Y };
        int64_t data = 0, rounding = 0;
        int64_t walked = graph_nodes(loss, skip, 6, &data, &rounding);
        int64_t made = s1.live_tensors - s0.live_tensors;
        int64_t bytes = s1.live_bytes - s0.live_bytes;
        printf("MEM nabla w2_graph_nodes_walked %lld\n", (long long)walked);
        printf("MEM nabla w2_graph_tensors_made %lld\n", (long long)made);
        printf("MEM nabla w2_graph_bytes %lld\n", (long long)bytes);
        printf("MEM nabla w2_graph_data_bytes %lld\n", (long long)data);
        printf("MEM nabla w2_graph_rounding_bytes %lld\n", (long long)rounding);
        if (made > 0)
            printf("MEM nabla w2_bookkeeping_bytes_per_node %.1f\n",
                   (double)(bytes - data - rounding) / (double)made);
        nb_scope_end(mark);
    }
    /* 3. steady state over W2 steps */
    int total = o->quick ? 1000 : 10000;
    for (int s = 1; s < 100; s++) w2_step(&n);
    nb_mem_stats a = mem();
    long long rss_a = bench_maxrss_bytes();
    for (int s = 100; s < total; s++) w2_step(&n);
    nb_mem_stats z = mem();
    long long rss_z = bench_maxrss_bytes();
    printf("MEM nabla steps %d\n", total);
    printf("MEM nabla live_bytes_100 %lld\n", (long long)a.live_bytes);
    printf("MEM nabla live_bytes_end %lld\n", (long long)z.live_bytes);
    printf("MEM nabla peak_bytes_100 %lld\n", (long long)a.peak_bytes);
    printf("MEM nabla peak_bytes_end %lld\n", (long long)z.peak_bytes);
    printf("MEM nabla live_tensors_100 %lld\n", (long long)a.live_tensors);
    printf("MEM nabla live_tensors_end %lld\n", (long long)z.live_tensors);
    printf("MEM nabla cached_bytes_end %lld\n", (long long)z.cached_bytes);
    printf("MEM nabla system_allocs_100 %lld\n", (long long)a.system_allocs);
    printf("MEM nabla system_allocs_end %lld\n", (long long)z.system_allocs);
    printf("MEM nabla maxrss_100 %lld\n", rss_a);
    printf("MEM nabla maxrss_end %lld\n", rss_z);
}

/* ===================================================================== */
/* W3 */

static void bench_w3(const bench_opts *o) {
    const int64_t n = W3_N, shape[2] = { W3_N, W3_N };
    double *a = bench_xmalloc(sizeof(double) * (size_t)(n * n));
    double *bb = bench_xmalloc(sizeof(double) * (size_t)(n * n));
    bench_fill_normal(a, n * n, SEED_W3_A);
    bench_fill_normal(bb, n * n, SEED_W3_B);
    nb_tensor *A = leaf(a, 2, shape), *B = leaf(bb, 2, shape);
    free(a);
    free(bb);
    bench_reps r = bench_r(o, 3, 15);
    double *t = bench_xmalloc(sizeof(double) * (size_t)r.reps);
    double s = 0;
    for (int i = 0; i < r.warm + r.reps; i++) {
        nb_zero_grad(A); /* untimed: PyTorch's counterpart is grad = None */
        nb_zero_grad(B);
        double t0 = bench_now();
        size_t mark = nb_scope_begin();
        nb_tensor *sum = nb_sum(nb_matmul(A, B));
        die_if_null(sum, "W3 graph");
        if (nb_backward(sum, NULL)) die_if_null(NULL, "W3 backward");
        s = nb_item(sum);
        nb_scope_end(mark);
        double t1 = bench_now();
        if (i >= r.warm) t[i - r.warm] = t1 - t0;
    }
    double med = bench_median(t, r.reps);
    printf("W3 nabla gflops %.4f\n", 3.0 * 2.0 * (double)(n * n * n) / med * 1e-9);
    printf("W3 nabla ms %.4f\n", med * 1e3);
    printf("W3 nabla check %.12g\n", s + nb_data(nb_grad(A))[1] + nb_data(nb_grad(B))[2]);
    free(t);
}

/* ===================================================================== */
/* W4: the same ops as PyTorch's  (sigmoid(x) * exp(-x * x)).sum() */

static void bench_w4(const bench_opts *o) {
    const int64_t n = W4_N;
    double *xd = bench_xmalloc(sizeof(double) * (size_t)n);
    bench_fill_normal(xd, n, SEED_W4_X);
    nb_tensor *x = leaf(xd, 1, &n);
    free(xd);
    bench_reps r = bench_r(o, 3, 21);
    double *t = bench_xmalloc(sizeof(double) * (size_t)r.reps);
    double s = 0;
    for (int i = 0; i < r.warm + r.reps; i++) {
        nb_zero_grad(x); /* untimed: PyTorch's counterpart is grad = None */
        double t0 = bench_now();
        size_t mark = nb_scope_begin();
        nb_tensor *y = nb_prod(nb_sigmoid(x), nb_exp(nb_prod(nb_neg(x), x)));
        nb_tensor *sum = nb_sum(y);
        die_if_null(sum, "W4 graph");
        if (nb_backward(sum, NULL)) die_if_null(NULL, "W4 backward");
        s = nb_item(sum);
        nb_scope_end(mark);
        double t1 = bench_now();
        if (i >= r.warm) t[i - r.warm] = t1 - t0;
    }
    printf("W4 nabla ns_per_elem %.4f\n", bench_median(t, r.reps) * 1e9 / (double)n);
    printf("W4 nabla check %.12g\n", s + nb_data(nb_grad(x))[12345]);
    free(t);
}

/* ===================================================================== */
/* W5: Fashion-MNIST, one epoch = ceil(60000 / 64) = 938 steps (the last of
   32 samples), in file order every epoch (as bench_torch.py). */

#ifdef BENCH_HAVE_ZLIB
/* reads a gzip-compressed IDX file of unsigned bytes: returns the data
   (malloc'd) and its dimensions, or NULL */
static unsigned char *read_idx_gz(const char *path, int *ndim, int64_t dims[4]) {
    gzFile f = gzopen(path, "rb");
    if (!f) return NULL;
    unsigned char h[4];
    unsigned char *data = NULL;
    if (gzread(f, h, 4) != 4 || h[0] || h[1] || h[2] != 0x08 || h[3] < 1 || h[3] > 4) goto fail;
    *ndim = h[3];
    int64_t total = 1;
    for (int i = 0; i < *ndim; i++) {
        unsigned char d[4];
        if (gzread(f, d, 4) != 4) goto fail;
        dims[i] = ((int64_t)d[0] << 24) | ((int64_t)d[1] << 16) | ((int64_t)d[2] << 8) | d[3];
        total *= dims[i];
    }
    data = bench_xmalloc((size_t)total);
    for (int64_t got = 0; got < total;) {
        int64_t want = total - got > (1 << 30) ? (1 << 30) : total - got;
        int k = gzread(f, data + got, (unsigned)want);
        if (k <= 0) goto fail;
        got += k;
    }
    gzclose(f);
    return data;
fail:
    free(data);
    gzclose(f);
    return NULL;
}
#endif

/* The model lives in the library's parameter store (one value slab, one
   gradient slab) and trains with the library's Adam, as the main job does. */
typedef struct w5_net {
    nb_params *P;
    nb_tensor *W[3], *b[3];
    nb_optim *opt;
} w5_net;

static void w5_init(w5_net *n) {
    static const int sizes[4] = { 784, 256, 128, 10 };
    n->P = nb_params_new();
    die_if_null(n->P, "nb_params_new");
    for (int l = 0; l < 3; l++) {
        int in = sizes[l], out = sizes[l + 1];
        char name[16];
        snprintf(name, sizeof name, "W%d", l);
        n->W[l] = nb_params_add(n->P, name, 2, (int64_t[]){ out, in });
        snprintf(name, sizeof name, "b%d", l);
        n->b[l] = nb_params_add(n->P, name, 1, (int64_t[]){ out });
        die_if_null(n->W[l] && n->b[l] ? n : NULL, "nb_params_add");
    }
    /* the values every implementation starts from (the slab may have moved
       while it grew, so the tensors are written after the last add) */
    for (int l = 0; l < 3; l++)
        bench_init_linear(nb_data_mut(n->W[l]), nb_data_mut(n->b[l]), sizes[l], sizes[l + 1],
                          SEED_W5_BASE + 2 * l, SEED_W5_BASE + 2 * l + 1);
    n->opt = nb_adam_new(n->P, W5_LR, 0.9, 0.999, 1e-8, 0.0);
    die_if_null(n->opt, "nb_adam_new");
}

static void w5_adam(w5_net *n) {
    if (nb_optim_step(n->opt)) die_if_null(NULL, "nb_optim_step");
    nb_params_zero_grad(n->P);
}

static void w5_free(w5_net *n) {
    nb_optim_free(n->opt);
    nb_params_free(n->P);
}

static void bench_w5(const bench_opts *o) {
#ifndef BENCH_HAVE_ZLIB
    (void)o;
    printf("# W5 skipped: built without zlib\n");
#else
    int ndi = 0, ndl = 0;
    int64_t di[4], dl[4];
    unsigned char *img = read_idx_gz(W5_DATA_DIR "/train-images-idx3-ubyte.gz", &ndi, di);
    unsigned char *lab = read_idx_gz(W5_DATA_DIR "/train-labels-idx1-ubyte.gz", &ndl, dl);
    if (!img || !lab || ndi != 3 || ndl != 1 || di[0] != dl[0] || di[1] * di[2] != 784) {
        printf("# W5 skipped: Fashion-MNIST not found or unreadable in %s "
               "(apt-get install dataset-fashion-mnist)\n", W5_DATA_DIR);
        free(img);
        free(lab);
        return;
    }
    const int64_t N = di[0], D = 784, K = 10, BS = W5_BATCH;
    double *X = bench_xmalloc(sizeof(double) * (size_t)(N * D));
    double *Y = bench_xmalloc(sizeof(double) * (size_t)(N * K));
    for (int64_t i = 0; i < N * D; i++) X[i] = img[i] / 255.0;
    memset(Y, 0, sizeof(double) * (size_t)(N * K));
    for (int64_t i = 0; i < N; i++) Y[i * K + lab[i]] = 1.0;
    free(img);
    free(lab);

    int64_t full = (N + BS - 1) / BS, batches = o->quick ? 100 : full;
    int epochs = o->quick ? 2 : 3;
    w5_net net;
    w5_init(&net);
    double times[8], first_loss = 0;
    for (int e = 0; e < epochs; e++) {
        double total = 0, t0 = bench_now();
        for (int64_t k = 0; k < batches; k++) {
            int64_t lo = k * BS, bs = lo + BS <= N ? BS : N - lo;
            size_t mark = nb_scope_begin();
            nb_tensor *x = constant(X + lo * D, 2, (int64_t[]){ bs, D });
            nb_tensor *y = constant(Y + lo * K, 2, (int64_t[]){ bs, K });
            nb_tensor *h = nb_relu(linear(x, net.W[0], net.b[0]));
            h = nb_relu(linear(h, net.W[1], net.b[1]));
            nb_tensor *loss = cross_entropy(linear(h, net.W[2], net.b[2]), y, bs);
            die_if_null(loss, "W5 graph");
            if (nb_backward(loss, NULL)) die_if_null(NULL, "W5 backward");
            total += nb_item(loss);
            w5_adam(&net);
            nb_scope_end(mark);
        }
        times[e] = bench_now() - t0;
        if (e == 0) first_loss = total / (double)batches;
    }
    printf("W5 nabla s_per_epoch %.4f\n",
           bench_median(times, epochs) * (double)full / (double)batches);
    printf("W5 nabla check %.12g\n", first_loss);
    if (batches != full)
        printf("# W5 nabla: quick mode, %lld of %lld batches, time scaled to a full epoch\n",
               (long long)batches, (long long)full);
    w5_free(&net);
    free(X);
    free(Y);
#endif
}

/* ===================================================================== */
/* W6: one conv layer of the CNN, x (64, 32, 14, 14), w (64, 32, 3, 3), b (64,),
   padding 1: forward and backward (dx, dw, db) of sum(conv2d(x, w, b)).  Beside
   it, the rate of one GEMM of the same FLOPs, (K, C*R*R) @ (C*R*R, N*H*H). */

static void bench_w6(const bench_opts *o) {
    const int64_t N = W6_N, C = W6_C, H = W6_H, K = W6_K, R = W6_R;
    const int64_t xs[4] = { N, C, H, H }, ws[4] = { K, C, R, R }, bs[1] = { K };
    double *xd = bench_xmalloc(sizeof(double) * (size_t)(N * C * H * H));
    double *wd = bench_xmalloc(sizeof(double) * (size_t)(K * C * R * R));
    double *bd = bench_xmalloc(sizeof(double) * (size_t)K);
    bench_fill_normal(xd, N * C * H * H, SEED_W6_X);
    double k = 1.0 / sqrt((double)(C * R * R));
    bench_fill_uniform(wd, K * C * R * R, SEED_W6_W, -k, k);
    bench_fill_uniform(bd, K, SEED_W6_B, -k, k);
    nb_tensor *x = leaf(xd, 4, xs), *w = leaf(wd, 4, ws), *b = leaf(bd, 1, bs);
    bench_reps r = bench_r(o, 3, 21);
    double *t = bench_xmalloc(sizeof(double) * (size_t)r.reps), s = 0;
    for (int i = 0; i < r.warm + r.reps; i++) {
        nb_zero_grad(x), nb_zero_grad(w), nb_zero_grad(b);
        double t0 = bench_now();
        size_t mark = nb_scope_begin();
        nb_tensor *y = nb_sum(nb_conv2d(x, w, b, 1, 1));
        die_if_null(y, "W6 conv2d");
        if (nb_backward(y, NULL)) die_if_null(NULL, "W6 backward");
        s = nb_item(y);
        nb_scope_end(mark);
        if (i >= r.warm) t[i - r.warm] = bench_now() - t0;
    }
    double med = bench_median(t, r.reps);
    double flops = 3.0 * 2.0 * (double)(N * H * H) * (double)K * (double)(C * R * R);
    printf("W6 nabla ms %.4f\n", med * 1e3);
    printf("W6 nabla gflops %.4f\n", flops / med * 1e-9);
    printf("W6 nabla check %.12g\n", s + nb_data(nb_grad(x))[7] + nb_data(nb_grad(w))[5] +
                                         nb_data(nb_grad(b))[3]);
    /* the dgemm rate on the same FLOPs: (K, CRR) @ (CRR, N*H*H), no graph */
    int64_t crr = C * R * R, cols = N * H * H;
    double *ad = bench_xmalloc(sizeof(double) * (size_t)(crr * cols));
    bench_fill_normal(ad, crr * cols, SEED_W6_X);
    bool prev = nb_set_grad_enabled(false);
    nb_tensor *A = constant(wd, 2, (int64_t[]){ K, crr }), *B = constant(ad, 2, (int64_t[]){ crr, cols });
    free(ad);
    for (int i = 0; i < r.warm + r.reps; i++) {
        double t0 = bench_now();
        size_t mark = nb_scope_begin();
        die_if_null(nb_matmul(A, B), "W6 matmul");
        nb_scope_end(mark);
        if (i >= r.warm) t[i - r.warm] = bench_now() - t0;
    }
    med = bench_median(t, r.reps);
    printf("W6 nabla dgemm_gflops %.4f\n", flops / 3.0 / med * 1e-9);
    nb_set_grad_enabled(prev);
    free(t);
    free(xd);
    free(wd);
    free(bd);
}

/* ===================================================================== */
/* W7: one epoch of the CNN of fashion_mnist --model cnn (conv 3x3 32, ReLU,
   max-pool 2, conv 3x3 64, ReLU, max-pool 2, Linear 128, ReLU, Linear 10),
   Adam, batch 64, in file order (as W5).  Parameters like PyTorch's default
   initialisation (uniform +-1/sqrt(fan_in)), from the shared generator. */

#ifdef BENCH_HAVE_ZLIB
typedef struct w7_net {
    nb_params *P;
    nb_tensor *W[4], *b[4];
    nb_optim *opt;
} w7_net;

static void w7_init(w7_net *n) {
    static const int64_t wsh[4][4] = { { 32, 1, 3, 3 }, { 64, 32, 3, 3 }, { 128, 3136 }, { 10, 128 } };
    static const int wnd[4] = { 4, 4, 2, 2 };
    n->P = nb_params_new();
    die_if_null(n->P, "nb_params_new");
    for (int l = 0; l < 4; l++) {
        char name[16];
        snprintf(name, sizeof name, "W%d", l);
        n->W[l] = nb_params_add(n->P, name, wnd[l], wsh[l]);
        snprintf(name, sizeof name, "b%d", l);
        n->b[l] = nb_params_add(n->P, name, 1, wsh[l]);
        die_if_null(n->W[l] && n->b[l] ? n : NULL, "nb_params_add");
    }
    for (int l = 0; l < 4; l++) {
        int64_t out = wsh[l][0], fan = nb_numel(n->W[l]) / out;
        double k = 1.0 / sqrt((double)fan);
        bench_fill_uniform(nb_data_mut(n->W[l]), out * fan, SEED_W7_BASE + 2 * l, -k, k);
        bench_fill_uniform(nb_data_mut(n->b[l]), out, SEED_W7_BASE + 2 * l + 1, -k, k);
    }
    n->opt = nb_adam_new(n->P, W7_LR, 0.9, 0.999, 1e-8, 0.0);
    die_if_null(n->opt, "nb_adam_new");
}
#endif

static void bench_w7(const bench_opts *o) {
#ifndef BENCH_HAVE_ZLIB
    (void)o;
    printf("# W7 skipped: built without zlib\n");
#else
    int ndi = 0, ndl = 0;
    int64_t di[4], dl[4];
    unsigned char *img = read_idx_gz(W5_DATA_DIR "/train-images-idx3-ubyte.gz", &ndi, di);
    unsigned char *lab = read_idx_gz(W5_DATA_DIR "/train-labels-idx1-ubyte.gz", &ndl, dl);
    if (!img || !lab || ndi != 3 || ndl != 1 || di[0] != dl[0] || di[1] * di[2] != 784) {
        printf("# W7 skipped: Fashion-MNIST not found or unreadable in %s\n", W5_DATA_DIR);
        free(img);
        free(lab);
        return;
    }
    const int64_t N = di[0], D = 784, K = 10, BS = W7_BATCH;
    double *X = bench_xmalloc(sizeof(double) * (size_t)(N * D));
    double *Y = bench_xmalloc(sizeof(double) * (size_t)(N * K));
    for (int64_t i = 0; i < N * D; i++) X[i] = img[i] / 255.0;
    memset(Y, 0, sizeof(double) * (size_t)(N * K));
    for (int64_t i = 0; i < N; i++) Y[i * K + lab[i]] = 1.0;
    free(img);
    free(lab);

    /* 300 of the epoch's 938 steps (30 quick), the time scaled to the epoch:
       every step costs the same, and the whole benchmark stays within minutes */
    int64_t full = (N + BS - 1) / BS, batches = o->quick ? 30 : 300;
    w7_net n;
    w7_init(&n);
    double first_loss = 0, total = 0, t0 = 0;
    for (int64_t k = -5; k < batches; k++) { /* 5 warm-up steps, then the epoch */
        if (k == 0) t0 = bench_now();
        int64_t lo = (k < 0 ? k + 5 : k) * BS, bs = lo + BS <= N ? BS : N - lo;
        size_t mark = nb_scope_begin();
        nb_tensor *x = constant(X + lo * D, 4, (int64_t[]){ bs, 1, 28, 28 });
        nb_tensor *y = constant(Y + lo * K, 2, (int64_t[]){ bs, K });
        nb_tensor *h = nb_max_pool2d(nb_relu(nb_conv2d(x, n.W[0], n.b[0], 1, 1)), 2, 2);
        h = nb_max_pool2d(nb_relu(nb_conv2d(h, n.W[1], n.b[1], 1, 1)), 2, 2);
        h = nb_relu(linear(nb_reshape(h, 2, (int64_t[]){ bs, -1 }), n.W[2], n.b[2]));
        nb_tensor *loss = cross_entropy(linear(h, n.W[3], n.b[3]), y, bs);
        die_if_null(loss, "W7 graph");
        if (nb_backward(loss, NULL)) die_if_null(NULL, "W7 backward");
        if (k >= 0) total += nb_item(loss);
        if (k == -5) first_loss = nb_item(loss);
        if (nb_optim_step(n.opt)) die_if_null(NULL, "nb_optim_step");
        nb_params_zero_grad(n.P);
        nb_scope_end(mark);
    }
    double secs = bench_now() - t0;
    printf("W7 nabla s_per_epoch %.4f\n", secs * (double)full / (double)batches);
    printf("W7 nabla check %.12g\n", first_loss);
    printf("W7 nabla mean_loss %.6f\n", total / (double)batches);
    if (batches != full)
        printf("# W7 nabla: %lld of %lld batches, time scaled to a full epoch\n",
               (long long)batches, (long long)full);
    nb_optim_free(n.opt);
    nb_params_free(n.P);
    free(X);
    free(Y);
#endif
}

int main(int argc, char **argv) {
    bench_opts o;
    if (bench_parse(argc, argv, &o)) return 2;
    nb_set_num_threads(o.threads);
    printf("# nabla %d.%d, threads %d%s\n", NABLA_VERSION_MAJOR, NABLA_VERSION_MINOR,
           o.threads, o.quick ? ", quick" : "");
    fflush(stdout);
    static const struct { const char *name; void (*fn)(const bench_opts *); } all[] = {
        { "W1", bench_w1 }, { "W2", bench_w2 }, { "W3", bench_w3 }, { "W4", bench_w4 },
        { "W5", bench_w5 }, { "W6", bench_w6 }, { "W7", bench_w7 }, { "MEM", bench_mem }, { "SCALE", bench_scale },
    };
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
        if (!bench_want(&o, all[i].name)) continue;
        /* every tensor a workload makes (parameters included) goes into this
           scope and is freed when the workload ends */
        size_t mark = nb_scope_begin();
        all[i].fn(&o);
        nb_scope_end(mark);
        fflush(stdout);
    }
    nb_cleanup();
    return 0;
}
