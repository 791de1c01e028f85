/*
 * The benchmark's workloads W1-W5 with libtorch, PyTorch's C++ API (eager,
 * float64): the same computations, sizes, step counts, inputs (the generator
 * of bench_common.h) and timing method as bench_nabla.c, and the same output
 * lines, "<workload> libtorch <metric> <value>", check values included.
 * It is bench_torch.py without the Python interpreter.
 *
 *   bench_libtorch [--threads N] [--quick] [--only W1,W2,W3,W4,W5]
 *
 * Threads: at::set_num_threads(N) for the intra-op pool and one inter-op
 * thread; OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and MKL_NUM_THREADS = N and
 * OMP_WAIT_POLICY=PASSIVE unless set (bench_torch.py's settings).  OpenMP and
 * OpenBLAS read them when they load, before main, so the program sets them
 * and runs itself again once.
 */
#include "bench_common.h"

#include <torch/torch.h>
#include <ATen/Parallel.h>

#include <unistd.h>

#include <string>
#include <vector>

#if defined(__has_include)
#if __has_include(<zlib.h>) && defined(BENCH_HAVE_ZLIB)
#include <zlib.h>
#define BENCH_READ_IDX 1
#endif
#endif

namespace F = torch::nn::functional;

static const torch::TensorOptions f64 = torch::TensorOptions().dtype(torch::kFloat64);

/* a (shape) tensor of N(0, 1) values from stream `seed` */
static torch::Tensor normal_tensor(uint64_t seed, std::vector<int64_t> shape) {
    torch::Tensor t = torch::empty(shape, f64);
    bench_fill_normal(t.data_ptr<double>(), t.numel(), seed);
    return t;
}

/* torch::nn::Linear's parameters from the shared generator (bench_init_linear) */
static void init_linear(torch::nn::Linear &lin, int in, int out, uint64_t seed_w, uint64_t seed_b) {
    torch::NoGradGuard no_grad;
    bench_init_linear(lin->weight.data_ptr<double>(), lin->bias.data_ptr<double>(), in, out,
                      seed_w, seed_b);
}

static double median(std::vector<double> &v) {
    return bench_median(v.data(), static_cast<int>(v.size()));
}

/* ===================================================================== */
/* W1: y = tanh(y*w + b), 3333 steps from the constant y0; backward of sum(y).
   The gradients are dropped (grad = None) and the graph freed inside the
   timed region, as in bench_torch.py. */

static void bench_w1(const bench_opts *o) {
    torch::Tensor w = torch::full({ 1 }, W1_W, f64.requires_grad(true));
    torch::Tensor b = torch::full({ 1 }, W1_B, f64.requires_grad(true));
    bench_reps r = bench_r(o, 5, 21);
    std::vector<double> t(static_cast<size_t>(r.reps));
    for (int i = 0; i < r.warm + r.reps; i++) {
        double t0 = bench_now();
        w.mutable_grad().reset();
        b.mutable_grad().reset();
        {
            torch::Tensor y = torch::full({ 1 }, W1_Y0, f64);
            for (int k = 0; k < W1_STEPS; k++) y = torch::tanh(y * w + b);
            y.sum().backward();
        } /* the graph goes here */
        double t1 = bench_now();
        if (i >= r.warm) t[static_cast<size_t>(i - r.warm)] = t1 - t0;
    }
    printf("W1 libtorch ns_per_op %.4f\n", median(t) * 1e9 / (3.0 * W1_STEPS));
    printf("W1 libtorch check %.12g\n", w.grad().item<double>() + b.grad().item<double>());
}

/* ===================================================================== */
/* W2: SGD steps of X (64, 64) -> Linear 128 -> ReLU -> Linear 10 -> cross-entropy */

struct MLP2 : torch::nn::Module {
    torch::nn::Linear l1{ nullptr }, l2{ nullptr };
    MLP2() {
        l1 = register_module("l1", torch::nn::Linear(W2_IN, W2_HID));
        l2 = register_module("l2", torch::nn::Linear(W2_HID, W2_OUT));
        init_linear(l1, W2_IN, W2_HID, SEED_W2_W1, SEED_W2_B1);
        init_linear(l2, W2_HID, W2_OUT, SEED_W2_W2, SEED_W2_B2);
    }
    torch::Tensor forward(const torch::Tensor &x) { return l2(torch::relu(l1(x))); }
};

static void bench_w2(const bench_opts *o) {
    torch::Tensor X = normal_tensor(SEED_W2_X, { W2_B, W2_IN });
    std::vector<int> lab(W2_B);
    bench_fill_labels(lab.data(), W2_B, SEED_W2_LABELS, W2_OUT);
    torch::Tensor y = torch::empty({ W2_B }, torch::kInt64);
    for (int i = 0; i < W2_B; i++) y.data_ptr<int64_t>()[i] = lab[static_cast<size_t>(i)];
    auto model = std::make_shared<MLP2>();
    torch::optim::SGD opt(model->parameters(), torch::optim::SGDOptions(W2_LR));
    auto step = [&]() {
        torch::Tensor loss = F::cross_entropy(model->forward(X), y);
        loss.backward();
        opt.step();
        opt.zero_grad();
        return loss;
    };
    torch::Tensor loss;
    for (int s = 0; s < 50; s++) loss = step();
    printf("W2 libtorch check %.12g\n", loss.item<double>());
    bench_reps r = bench_r(o, 3, 15);
    int steps = o->quick ? 50 : 500;
    std::vector<double> t(static_cast<size_t>(r.reps));
    for (int i = 0; i < r.warm + r.reps; i++) {
        double t0 = bench_now();
        for (int s = 0; s < steps; s++) step();
        double t1 = bench_now();
        if (i >= r.warm) t[static_cast<size_t>(i - r.warm)] = (t1 - t0) / steps;
    }
    printf("W2 libtorch us_per_step %.4f\n", median(t) * 1e6);
}

/* ===================================================================== */
/* W3: (512, 512) @ (512, 512), backward of the sum */

static void bench_w3(const bench_opts *o) {
    const int64_t n = W3_N;
    torch::Tensor A = normal_tensor(SEED_W3_A, { n, n }).requires_grad_();
    torch::Tensor B = normal_tensor(SEED_W3_B, { n, n }).requires_grad_();
    bench_reps r = bench_r(o, 3, 15);
    std::vector<double> t(static_cast<size_t>(r.reps));
    double s = 0;
    for (int i = 0; i < r.warm + r.reps; i++) {
        double t0 = bench_now();
        A.mutable_grad().reset();
        B.mutable_grad().reset();
        torch::Tensor sum = torch::matmul(A, B).sum();
        sum.backward();
        s = sum.item<double>();
        double t1 = bench_now();
        if (i >= r.warm) t[static_cast<size_t>(i - r.warm)] = t1 - t0;
    }
    double med = median(t);
    printf("W3 libtorch gflops %.4f\n", 3.0 * 2.0 * (double)(n * n * n) / med * 1e-9);
    printf("W3 libtorch ms %.4f\n", med * 1e3);
    printf("W3 libtorch check %.12g\n",
           s + A.grad()[0][1].item<double>() + B.grad()[0][2].item<double>());
}

/* ===================================================================== */
/* W4: (sigmoid(x) * exp(-x * x)).sum() over 10^6 elements, backward */

static void bench_w4(const bench_opts *o) {
    torch::Tensor x = normal_tensor(SEED_W4_X, { W4_N }).requires_grad_();
    bench_reps r = bench_r(o, 3, 21);
    std::vector<double> t(static_cast<size_t>(r.reps));
    double s = 0;
    for (int i = 0; i < r.warm + r.reps; i++) {
        double t0 = bench_now();
        x.mutable_grad().reset();
        torch::Tensor sum = (torch::sigmoid(x) * torch::exp(-x * x)).sum();
        sum.backward();
        s = sum.item<double>();
        double t1 = bench_now();
        if (i >= r.warm) t[static_cast<size_t>(i - r.warm)] = t1 - t0;
    }
    printf("W4 libtorch ns_per_elem %.4f\n", median(t) * 1e9 / (double)W4_N);
    printf("W4 libtorch check %.12g\n", s + x.grad()[12345].item<double>());
}

/* ===================================================================== */
/* W5: one epoch of Fashion-MNIST, MLP 784-256-128-10, ReLU, Adam, batch 64,
   file order every epoch; the epoch's mean loss of the first epoch is the check */

#ifdef BENCH_READ_IDX
/* a gzip-compressed IDX file of unsigned bytes: its bytes and dimensions
   (empty when it cannot be read) */
static std::vector<unsigned char> read_idx(const char *path, std::vector<int64_t> &dims) {
    std::vector<unsigned char> data;
    gzFile f = gzopen(path, "rb");
    if (!f) return data;
    unsigned char magic[4];
    bool ok = gzread(f, magic, 4) == 4 && !magic[0] && !magic[1] && magic[2] == 0x08 &&
              magic[3] >= 1 && magic[3] <= 4;
    int64_t total = 1;
    for (int i = 0; ok && i < magic[3]; i++) {
        unsigned char d[4];
        ok = gzread(f, d, 4) == 4;
        int64_t v = ((int64_t)d[0] << 24) | ((int64_t)d[1] << 16) | ((int64_t)d[2] << 8) | d[3];
        dims.push_back(v);
        total *= v;
    }
    if (ok) {
        data.resize(static_cast<size_t>(total));
        for (int64_t got = 0; ok && got < total;) {
            int64_t want = total - got > (1 << 30) ? (1 << 30) : total - got;
            int k = gzread(f, data.data() + got, static_cast<unsigned>(want));
            ok = k > 0;
            got += k;
        }
    }
    gzclose(f);
    if (!ok) data.clear();
    return data;
}
#endif

struct MLP5 : torch::nn::Module {
    torch::nn::Linear l[3] = { nullptr, nullptr, nullptr };
    MLP5() {
        static const int sizes[4] = { 784, 256, 128, 10 };
        for (int k = 0; k < 3; k++) {
            l[k] = register_module("l" + std::to_string(k), torch::nn::Linear(sizes[k], sizes[k + 1]));
            init_linear(l[k], sizes[k], sizes[k + 1], SEED_W5_BASE + 2 * k, SEED_W5_BASE + 2 * k + 1);
        }
    }
    torch::Tensor forward(const torch::Tensor &x) {
        return l[2](torch::relu(l[1](torch::relu(l[0](x)))));
    }
};

static void bench_w5(const bench_opts *o) {
#ifndef BENCH_READ_IDX
    (void)o;
    printf("# W5 skipped: bench_libtorch built without zlib\n");
#else
    std::vector<int64_t> di, dl;
    std::vector<unsigned char> img = read_idx(W5_DATA_DIR "/train-images-idx3-ubyte.gz", di);
    std::vector<unsigned char> lab = read_idx(W5_DATA_DIR "/train-labels-idx1-ubyte.gz", dl);
    if (img.empty() || lab.empty() || di.size() != 3 || dl.size() != 1 || di[0] != dl[0] ||
        di[1] * di[2] != 784) {
        printf("# W5 skipped: Fashion-MNIST not found or unreadable in %s "
               "(apt-get install dataset-fashion-mnist)\n", W5_DATA_DIR);
        return;
    }
    const int64_t N = di[0], D = 784, BS = W5_BATCH;
    torch::Tensor X = torch::empty({ N, D }, f64), Y = torch::empty({ N }, torch::kInt64);
    double *xd = X.data_ptr<double>();
    int64_t *yd = Y.data_ptr<int64_t>();
    for (int64_t i = 0; i < N * D; i++) xd[i] = img[static_cast<size_t>(i)] / 255.0;
    for (int64_t i = 0; i < N; i++) yd[i] = lab[static_cast<size_t>(i)];

    int64_t full = (N + BS - 1) / BS, batches = o->quick ? 100 : full;
    int epochs = o->quick ? 2 : 3;
    auto model = std::make_shared<MLP5>();
    torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(W5_LR));
    std::vector<double> times;
    double first_loss = 0;
    for (int e = 0; e < epochs; e++) {
        double total = 0, t0 = bench_now();
        for (int64_t k = 0; k < batches; k++) {
            int64_t lo = k * BS, hi = lo + BS <= N ? lo + BS : N;
            torch::Tensor loss = F::cross_entropy(model->forward(X.slice(0, lo, hi)), Y.slice(0, lo, hi));
            opt.zero_grad();
            loss.backward();
            opt.step();
            total += loss.item<double>();
        }
        times.push_back(bench_now() - t0);
        if (e == 0) first_loss = total / (double)batches;
    }
    printf("W5 libtorch s_per_epoch %.4f\n", median(times) * (double)full / (double)batches);
    printf("W5 libtorch check %.12g\n", first_loss);
    if (batches != full)
        printf("# W5 libtorch: quick mode, %lld of %lld batches, time scaled to a full epoch\n",
               (long long)batches, (long long)full);
#endif
}

/* ===================================================================== */

/* sets the thread variables OpenMP and OpenBLAS read when they load and
   runs the program again, once; returns when they are already in place (or
   the exec failed: the run then goes on with what was set) */
static void threads_env(int threads, char **argv) {
    std::string n = std::to_string(threads);
    const char *vars[] = { "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS" };
    bool same = getenv("OMP_WAIT_POLICY") != nullptr;
    for (const char *v : vars) {
        const char *cur = getenv(v);
        same = same && cur && n == cur;
    }
    if (same || getenv("BENCH_LIBTORCH_ENV")) return;
    for (const char *v : vars) setenv(v, n.c_str(), 1);
    setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
    setenv("BENCH_LIBTORCH_ENV", "1", 1);
    execv("/proc/self/exe", argv);
    fprintf(stderr, "bench_libtorch: could not run itself again; thread settings may not apply\n");
}

int main(int argc, char **argv) {
    bench_opts o;
    if (bench_parse(argc, argv, &o)) return 2;
    threads_env(o.threads, argv);
    at::set_num_interop_threads(1);
    at::set_num_threads(o.threads);
    torch::set_default_dtype(caffe2::TypeMeta::Make<double>());
    printf("# libtorch %d.%d.%d C++ eager float64, threads %d (inter-op 1), OMP_WAIT_POLICY=%s%s\n",
           TORCH_VERSION_MAJOR, TORCH_VERSION_MINOR, TORCH_VERSION_PATCH, at::get_num_threads(),
           getenv("OMP_WAIT_POLICY") ? getenv("OMP_WAIT_POLICY") : "(unset)", o.quick ? ", quick" : "");
    fflush(stdout);
    static const struct { const char *name; void (*fn)(const bench_opts *); } all[] = {
        { "W1", bench_w1 }, { "W2", bench_w2 }, { "W3", bench_w3 }, { "W4", bench_w4 }, { "W5", bench_w5 },
    };
    for (const auto &w : all) {
        if (!bench_want(&o, w.name)) continue;
        w.fn(&o);
        fflush(stdout);
    }
    return 0;
}
