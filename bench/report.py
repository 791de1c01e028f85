#!/usr/bin/env python3
"""Turns the raw lines of the benchmark programs into the markdown table.

    report.py RESULTS_DIR > table.md

RESULTS_DIR holds t1.txt and t2.txt (the workloads of every program at 1 and
2 threads: nabla, hand C, PyTorch, libtorch, ADOL-C, nabla from Python, and
hand C's DGEMM and STREAM figures for the limits), mem.txt, scale.txt and
dist.txt (W8, bench/w8.sh); every line is "<workload> <impl> <metric>
<value>" ('#' lines are comments, shown as notes).  A figure given several
times (several rounds) is reported as the median of its values.  Standard
library only.
"""
import datetime
import os
import platform
import statistics
import subprocess
import sys


def parse(path):
    res, notes = {}, []
    if not os.path.exists(path):
        return res, notes
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            if line.startswith("#"):
                notes.append(line[1:].strip())
                continue
            p = line.split()
            if len(p) != 4:
                continue
            try:
                res.setdefault((p[0], p[1], p[2]), []).append(float(p[3]))
            except ValueError:
                pass
    # run.sh may run each program several rounds: the median of the rounds
    return {k: statistics.median(v) for k, v in res.items()}, notes


def fmt(v, digits=3):
    if v is None:
        return "—"
    if v == 0:
        return "0"
    a = abs(v)
    if v == int(v) and a < 1e15:
        return "%d" % v
    if a >= 1000:
        return "%.0f" % v
    if a >= 100:
        return "%.1f" % v
    if a >= 10:
        return "%.2f" % v
    return "%.*g" % (digits, v)


def rel(speed_a, speed_b):
    """'2.1× faster' / '3.0× slower' for speed_a against speed_b"""
    if not speed_a or not speed_b:
        return "—"
    r = speed_a / speed_b
    return ("%s× faster" % fmt(r)) if r >= 1 else ("%s× slower" % fmt(1 / r))


# (key, label, metric, higher_is_better)
WORKLOADS = [
    ("W1", "W1 scalar chain, ns/op", "ns_per_op", False),
    ("W2", "W2 MLP step, µs/step", "us_per_step", False),
    ("W3", "W3 matmul 512³ fwd+bwd, GFLOP/s", "gflops", True),
    ("W4", "W4 element-wise 10⁶, ns/element", "ns_per_elem", False),
    ("W5", "W5 Fashion-MNIST epoch, s/epoch", "s_per_epoch", False),
    ("W6", "W6 conv2d N64 C32 14² K64 3×3 pad 1, fwd+bwd, GFLOP/s (hand C: dgemm of the same FLOPs)",
     "gflops", True),
    ("W7", "W7 Fashion-MNIST CNN epoch, s/epoch", "s_per_epoch", False),
]


# ---- the limit column: what the machine allows, from figures of this run
#
# GEMM FLOPs each workload must do, forward and backward (2mnk per product;
# no gradient for the data, so no dX for the first layer)
def gemm(m, n, k):
    return 2.0 * m * n * k


def mlp_flops(batch, sizes):
    """one training step of an MLP: forward, dW of every layer, dX of all but the first"""
    f = 0.0
    for l, (i, o) in enumerate(zip(sizes, sizes[1:])):
        f += 2 * gemm(batch, o, i) + (gemm(batch, i, o) if l else 0)
    return f


W2_FLOPS = mlp_flops(64, [64, 128, 10])                 # per step: 2.59 MFLOP
W5_FLOPS = mlp_flops(60000, [784, 256, 128, 10])         # per epoch: the 60,000 training images
# W7 per image: conv as a GEMM (K, C*R*R) @ (C*R*R, H*W), then the two Linear layers
W7_LAYERS = [gemm(32, 28 * 28, 1 * 9), gemm(64, 14 * 14, 32 * 9), gemm(1, 128, 3136), gemm(1, 10, 128)]
W7_FLOPS = 938 * 64 * (3 * sum(W7_LAYERS) - W7_LAYERS[0])  # 938 batches of 64, as its time is scaled
W4_BYTES = 16.0    # per element: read x, write dL/dx (y is only summed, never stored)


def limit(key, res):
    """(value in the workload's metric, how it was computed) or (None, why not)"""
    rate = res.get(("DGEMM", "c", "gflops_512"))
    bw = res.get(("STREAM", "c", "copy_gbs"))
    if key == "W1":
        c = res.get(("W1", "c", "ns_per_op"))
        return c, "hand C"
    if key in ("W3", "W6"):
        return rate, "dgemm rate at 512³"
    if key == "W4":
        return (W4_BYTES / bw if bw else None), "%g bytes per element at the copy bandwidth" % W4_BYTES
    flops, scale, unit = {"W2": (W2_FLOPS, 1e6, "µs"), "W5": (W5_FLOPS, 1, "s"),
                          "W7": (W7_FLOPS, 1, "s")}.get(key, (None, 1, ""))
    if flops is None:
        return None, ""
    amount = ("%s MFLOP" % fmt(flops * 1e-6)) if flops < 1e9 else ("%s GFLOP" % fmt(flops * 1e-9))
    return ((flops / (rate * 1e9) * scale) if rate else None,
            "%s per %s at the dgemm rate at 512³" % (amount, "step" if key == "W2" else "epoch"))


def speed(v, higher):
    if v is None or v == 0:
        return None
    return v if higher else 1.0 / v


def goal(key, n, t, c, higher, n1, t32=None):
    """goal text and whether it is met; n, t, c are the figures of nabla,
    torch, C; n1 nabla's figure at 1 thread (for the 2-thread rows)"""
    sn, st, sc = speed(n, higher), speed(t, higher), speed(c, higher)
    checks = []
    if key == "W1":
        checks.append(("≤ 5× C time", sn and sc and sc / sn <= 5))
        checks.append(("≥ 200× faster than PyTorch", sn and st and sn / st >= 200))
    elif key == "W2":
        checks.append(("≥ 3× faster than PyTorch", sn and st and sn / st >= 3))
    elif key == "W3":
        checks.append(("≥ 0.95× dgemm", sn and sc and sn / sc >= 0.95))
        checks.append(("≥ 1× PyTorch", sn and st and sn / st >= 1))
    elif key == "W4":
        checks.append(("≤ 1.25× C time", sn and sc and sc / sn <= 1.25))
    elif key == "W5":
        checks.append(("≥ 1.5× faster than PyTorch", sn and st and sn / st >= 1.5))
    elif key == "W6":
        checks.append(("≥ 0.7× dgemm", sn and sc and sn / sc >= 0.7))
        checks.append(("≥ 1.5× faster than PyTorch", sn and st and sn / st >= 1.5))
    elif key == "W7":
        checks.append(("≥ 1.5× faster than PyTorch", sn and st and sn / st >= 1.5))
    text = "; ".join("%s %s" % (g, "✅" if ok else "❌") for g, ok in checks)
    if key == "W7" and t32:
        text += "; PyTorch float32: %s s (nabla %s)" % (fmt(t32), rel(speed(n, higher), speed(t32, higher)))
    if n1 is not None and key in ("W3", "W4", "W5", "W6", "W7"):
        s1 = speed(n1, higher)
        gain = sn / s1 if (sn and s1) else None
        text += "; gain over 1 thread %s %s" % (fmt(gain) + "×" if gain else "—",
                                                 "✅" if gain and gain > 1.05 else "❌")
    return text


def check_line(res_by_thr):
    """compares the 'check' values (loss / gradient sums) of the programs"""
    rows = []
    for key, _, _, _ in WORKLOADS:
        vals = {}
        for res in res_by_thr:
            for impl in ("nabla", "torch", "c", "py", "libtorch", "adolc", "adolc_reuse"):
                v = res.get((key, impl, "check"))
                if v is not None and impl not in vals:
                    vals[impl] = v
        if "nabla" not in vals or len(vals) < 2:
            continue
        ref = vals["nabla"]
        worst = max(abs(v - ref) / max(1.0, abs(ref)) for v in vals.values())
        rows.append("%s %s (max rel. diff %.1e)" % (
            key, " / ".join("%s %.10g" % (k, v) for k, v in sorted(vals.items())), worst))
    return rows


def machine():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cores = os.cpu_count()
    return cpu, cores


def main():
    d = sys.argv[1]
    r1, n1 = parse(os.path.join(d, "t1.txt"))
    r2, n2 = parse(os.path.join(d, "t2.txt"))
    rm, nm = parse(os.path.join(d, "mem.txt"))
    rs, ns = parse(os.path.join(d, "scale.txt"))
    cpu, cores = machine()
    out = []
    w = out.append
    w("# nabla benchmark")
    w("")
    w("- date: %s" % datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S %Z").strip())
    w("- machine: %s, %s cores (%s)" % (cpu, cores, platform.platform()))
    for note in sorted(set(n1 + n2)):
        if note.startswith(("nabla", "PyTorch", "hand-written", "libtorch", "ADOL-C")) and "threads" in note:
            continue
        if note.startswith("rounds"):
            continue
        w("- note: %s" % note)
    lp = os.path.join(d, "load.txt")
    if os.path.exists(lp):
        with open(lp) as f:
            loads = dict(line.split(None, 1) for line in f if line.strip())
        start, end = loads.get("start", "?").strip(), loads.get("end", "?").strip()
        w("- other work on the cores (share of all cores' time, 2 s samples): %s%% before the "
          "run, %s%% after it%s" % (
              start, end,
              " — WARNING: the machine was not idle, figures are noisy"
              if any(v.isdigit() and int(v) > 10 for v in (start, end)) else ""))
    for peer in ("PyTorch", "libtorch", "ADOL-C"):
        vers = [n for n in n1 if n.startswith(peer + " ")]
        if vers:
            w("- %s" % vers[0].replace(", quick", "").replace(", threads 1 (inter-op 1)", ", inter-op 1")
              .replace(", threads 1", ""))
    rounds = [n.split()[1] for n in n1 if n.startswith("rounds ") and n.split()[1] != "1"]
    w("- every figure is a median over repetitions%s, all measured in this one run; "
      "'faster/slower' compares nabla's speed with the others'"
      % ((" (and then over %s rounds, the programs taking turns)" % rounds[0]) if rounds else ""))
    w("")
    w("| workload | threads | nabla | PyTorch | libtorch | ADOL-C | hand C | limit | "
      "nabla vs PyTorch | nabla vs libtorch | nabla vs ADOL-C | nabla vs C | nabla vs limit | goal |")
    w("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for key, label, metric, higher in WORKLOADS:
        for thr, res in (("1", r1), ("2", r2)):
            n = res.get((key, "nabla", metric))
            t = res.get((key, "torch", metric))
            lt = res.get((key, "libtorch", metric))
            c = res.get((key, "c", metric))
            if key == "W6":
                c = res.get((key, "nabla", "dgemm_gflops"))
            if n is None and t is None and c is None and lt is None:
                continue
            lim = limit(key, res)[0]
            nb1 = r1.get((key, "nabla", metric)) if thr == "2" else None
            sn = speed(n, higher)
            # W1: ADOL-C retaping every repetition, then a row with one tape reused
            adolc = [("adolc", label, goal(key, n, t, c, higher, nb1, res.get((key, "torch32", metric))))]
            if key == "W1":
                adolc.append(("adolc_reuse", label + " — ADOL-C reusing one tape", ""))
            for impl, lab, g_ in adolc:
                a = res.get((key, impl, metric))
                w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                    lab, thr, fmt(n), fmt(t), fmt(lt), fmt(a), fmt(c), fmt(lim),
                    rel(sn, speed(t, higher)), rel(sn, speed(lt, higher)),
                    rel(sn, speed(a, higher)), rel(sn, speed(c, higher)),
                    rel(sn, speed(lim, higher)), g_))
    w("")
    # how each limit was computed, with the figures it came from
    w("Columns: *libtorch* is PyTorch's C++ API (same library, no interpreter); *ADOL-C* "
      "records W1 on a tape and calls gradient() (first W1 row: the tape recorded again every "
      "repetition; second: recorded once, evaluated at new inputs each repetition); *limit* is "
      "what the machine allows, from figures of this same run:")
    w("")
    for thr, res in (("1", r1), ("2", r2)):
        rate = res.get(("DGEMM", "c", "gflops_512"))
        bw = res.get(("STREAM", "c", "copy_gbs"))
        tr = res.get(("STREAM", "c", "triad_gbs"))
        if rate is None and bw is None:
            continue
        w("- %s thread%s: OpenBLAS dgemm at 512³ %s GFLOP/s; bandwidth over W4's 10⁶ doubles: "
          "copy %s GB/s, triad %s GB/s" % (thr, "" if thr == "1" else "s", fmt(rate), fmt(bw), fmt(tr)))
    for key, label, metric, higher in WORKLOADS:
        how = limit(key, r1)[1]
        if how and any(res.get((key, "nabla", metric)) is not None for res in (r1, r2)):
            w("- %s: %s" % (key, how))
    g2 = [(thr, res.get(("W2", "c", "gemm_us_per_step"))) for thr, res in (("1", r1), ("2", r2))]
    if any(v is not None for _, v in g2):
        w("- W2's five GEMMs alone at their own (small) shapes, as hand C calls them: " +
          ", ".join("%s µs/step at %s thread%s" % (fmt(v), thr, "" if thr == "1" else "s")
                    for thr, v in g2 if v is not None))
    w("")

    # ---- nabla from Python (bench_python.py) beside PyTorch eager (also from Python)
    if any(k[1] == "py" for k in r1):
        w("## From Python: nabla's package beside PyTorch eager (1 thread)")
        w("")
        w("| workload | nabla from Python | PyTorch | nabla in C | Python vs PyTorch | "
          "Python vs C | goal |")
        w("|---|---|---|---|---|---|---|")
        for key, label, metric, higher in WORKLOADS:
            p_ = r1.get((key, "py", metric))
            if p_ is None:
                continue
            t = r1.get((key, "torch", metric))
            n = r1.get((key, "nabla", metric))
            sp, st, sn = speed(p_, higher), speed(t, higher), speed(n, higher)
            goals = {"W1": ("≥ 30× faster than PyTorch", sp and st and sp / st >= 30),
                     "W2": ("≥ 1.8× faster than PyTorch, ≤ 1.15× C time",
                            sp and st and sn and sp / st >= 1.8 and sn / sp <= 1.15),
                     "W5": ("≤ 1.1× C time", sp and sn and sn / sp <= 1.1)}
            g_ = goals.get(key)
            w("| %s | %s | %s | %s | %s | %s | %s |" % (
                label, fmt(p_), fmt(t), fmt(n), rel(sp, st), rel(sp, sn),
                ("%s %s" % (g_[0], "✅" if g_[1] else "❌")) if g_ else ""))
        w("")

    # ---- memory
    if rm:
        g = lambda m: rm.get(("MEM", "nabla", m))  # noqa: E731
        steps = int(g("steps") or 0)
        w("## Memory (nabla, W2 training steps; W1 and W2 graphs)")
        w("")
        w("| figure | after 100 steps | after %d steps | goal |" % steps)
        w("|---|---|---|---|")
        for m, label in (("live_bytes", "live bytes"), ("peak_bytes", "peak bytes"),
                         ("live_tensors", "live tensors"), ("system_allocs", "system allocations"),
                         ("maxrss", "process max RSS")):
            a, z = g(m + "_100"), g(m + "_end")
            ok = (a is not None and z is not None and z <= a)
            goal_txt = "no growth %s" % ("✅" if ok else "❌") if m != "maxrss" else \
                "(includes the process; informative)"
            w("| %s | %s | %s | %s |" % (label, fmt(a), fmt(z), goal_txt))
        w("")
        w("| graph | nodes | block bytes | data bytes | size-class rounding bytes | "
          "bookkeeping bytes/node (blocks − data − rounding) | goal (+ 8-byte scope slot) |")
        w("|---|---|---|---|---|---|---|")
        b1 = g("w1_bookkeeping_bytes_per_node")
        if b1 is not None:
            nodes = g("w1_graph_nodes")
            w("| W1 chain, 3333 steps (forward) | %s | %s | %s | %s | %.1f | ≤ 256 %s |" % (
                fmt(nodes), fmt(g("w1_graph_bytes")), fmt(8 * nodes if nodes else None),
                fmt(g("w1_graph_rounding_bytes")), b1, "✅" if b1 + 8 <= 256 else "❌"))
        b2 = g("w2_bookkeeping_bytes_per_node")
        if b2 is not None:
            w("| W2 step (forward; %s walked from the loss) | %s | %s | %s | %s | %.1f | ≤ 256 %s |" % (
                fmt(g("w2_graph_nodes_walked")), fmt(g("w2_graph_tensors_made")),
                fmt(g("w2_graph_bytes")), fmt(g("w2_graph_data_bytes")),
                fmt(g("w2_graph_rounding_bytes")), b2, "✅" if b2 + 8 <= 256 else "❌"))
        if g("w1_graph_bytes_after_backward") is not None:
            w("")
            w("W1 graph bytes after its backward (gradients included): %s" %
              fmt(g("w1_graph_bytes_after_backward")))
        w("")

    # ---- scaling
    if rs:
        w("## Scaling: W1 at 10³ … 10⁶ steps (1 thread)")
        w("")
        w("| steps | nabla ms | nabla ns/op | nabla peak bytes | bytes/step | PyTorch ms | "
          "PyTorch RSS growth | hand C ms |")
        w("|---|---|---|---|---|---|---|---|")
        per_step_t, per_step_m = [], []
        for s in (1000, 10000, 100000, 1000000):
            k = "S%d" % s
            ms = rs.get((k, "nabla", "ms"))
            pk = rs.get((k, "nabla", "peak_bytes"))
            tm = rs.get((k, "torch", "ms"))
            if ms is None and tm is None:
                continue
            if ms:
                per_step_t.append(ms / s)
            if pk:
                per_step_m.append(pk / s)
            w("| %d | %s | %s | %s | %s | %s | %s | %s |" % (
                s, fmt(ms), fmt(ms * 1e6 / (3 * s)) if ms else "—", fmt(pk),
                fmt(pk / s) if pk else "—", fmt(tm),
                fmt(rs.get((k, "torch", "peak_rss_growth_bytes"))),
                fmt(rs.get((k, "c", "ms")))))
        if len(per_step_t) >= 2:
            w("")
            w("Linearity (per-step cost, largest ÷ smallest size): time %.2f, peak memory %s "
              "(1.00 = perfectly linear)" % (
                  max(per_step_t) / min(per_step_t),
                  "%.2f" % (max(per_step_m) / min(per_step_m)) if len(per_step_m) >= 2 else "—"))
        w("")

    # ---- W8: data parallelism over MPI
    rd, nd = parse(os.path.join(d, "dist.txt"))
    if rd or nd:
        w("## W8: data-parallel Fashion-MNIST epoch over MPI (global batch 256, 1 thread per rank)")
        w("")
        for note in nd:
            w("- note: %s" % note)
        t1 = rd.get(("W8", "nabla", "epoch_s_1rank"))
        t2 = rd.get(("W8", "nabla", "epoch_s_2ranks"))
        if t1 is not None or t2 is not None:
            w("")
            w("| ranks | epoch s | speed-up | goal |")
            w("|---|---|---|---|")
            w("| 1 | %s | 1 | |" % fmt(t1))
            up = t1 / t2 if t1 and t2 else None
            w("| 2 (mpirun -np 2, sharded step) | %s | %s | ≥ 1.6× %s |" % (
                fmt(t2), ("%.2f×" % up) if up else "—",
                "" if up is None else ("✅" if up >= 1.6 else "❌")))
            t3 = rd.get(("W8", "nabla", "epoch_s_2ranks_allreduce"))
            if t3:
                w("| 2 (--dp allreduce: one all-reduce, full step on each rank) | %s | %s | |" % (
                    fmt(t3), ("%.2f×" % (t1 / t3)) if t1 else "—"))
        ar = [(b, rd.get(("W8", "nabla", "allreduce_ms_%dbuckets" % b))) for b in (1, 4, 16)]
        if any(v is not None for _, v in ar):
            w("")
            w("Gradient all-reduce of the 235,146-double slab (1.9 MB), 2 ranks, ms per step: " +
              ", ".join("%d bucket%s %s" % (b, "" if b == 1 else "s", fmt(v)) for b, v in ar))
        ua = rd.get(("W8", "nabla", "update_ms_allreduce"))
        us = rd.get(("W8", "nabla", "update_ms_sharded"))
        if ua is not None or us is not None:
            w("")
            w("A step's exchange and Adam update of that slab, 2 ranks, ms per step: "
              "all-reduce + full step %s, sharded step (ring reduce-scatter, Adam on the "
              "share, all-gather) %s" % (fmt(ua), fmt(us)))
        w("")

    rows = check_line([r1, r2])
    if rows:
        w("## Same computation? (each program's check value: a loss or a gradient sum)")
        w("")
        for r in rows:
            w("- " + r)
        w("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
