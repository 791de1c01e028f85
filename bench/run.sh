#!/usr/bin/env bash
# The benchmark, in one command (from anywhere; it works in the repo root):
#
#     bench/run.sh            # full run (about 10 minutes on 2 cores)
#     bench/run.sh --quick    # smoke run: tiny repetition counts
#
# Installs python3-torch, libtorch-dev, libadolc-dev and dataset-fashion-mnist
# with apt-get when they are missing, builds bench_nabla and bench_baseline in
# build-bench (Release) and the peers bench_libtorch and bench_adolc in
# build-bench/peers (bench/peers, a CMake project of its own), runs nabla, the
# hand-written C baselines, PyTorch (eager, float64), libtorch (C++) and ADOL-C
# (W1) with 1 thread and then 2 threads, with the dgemm rate and memory
# bandwidth the limit column comes from, then W8 (the Fashion-MNIST epoch on
# 1 and 2 MPI ranks, bench/w8.sh), and prints a markdown table, also written
# to bench/results.md.  The raw lines are kept in build-bench/bench-results/.
# BENCH_JOBS=N sets the build's parallel jobs (default 2).
set -euo pipefail

QUICK=""
for a in "$@"; do
    case "$a" in
        --quick) QUICK="--quick" ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown option $a (try --quick)" >&2; exit 2 ;;
    esac
done

cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=$ROOT/build-bench
OUT=$BUILD/bench-results
PY=/usr/bin/python3
JOBS=${BENCH_JOBS:-2}

# ---- dependencies
need=()
if ! $PY -c "import torch" >/dev/null 2>&1; then need+=(python3-torch); fi
# the peers: libtorch's CMake config, ADOL-C's pkg-config file
have_torch_cmake() {
    local f
    for f in /usr/lib/*/cmake/Torch/TorchConfig.cmake /usr/lib/cmake/Torch/TorchConfig.cmake \
             /usr/share/cmake/Torch/TorchConfig.cmake; do
        [ -f "$f" ] && return 0
    done
    return 1
}
if ! have_torch_cmake; then need+=(libtorch-dev); fi
if ! pkg-config --exists adolc 2>/dev/null; then need+=(libadolc-dev); fi
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    need+=(dataset-fashion-mnist)
fi
if [ ${#need[@]} -gt 0 ]; then
    echo "== installing ${need[*]}" >&2
    SUDO=""
    if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi
    $SUDO apt-get update -q >&2 || true
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need[@]}" >&2 ||
        echo "run.sh: could not install ${need[*]}; the affected columns will be empty" >&2
fi

# ---- build
echo "== building in $BUILD" >&2
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >&2
cmake --build "$BUILD" -j"$JOBS" --target bench_nabla bench_baseline bench_allreduce fashion_mnist >&2
# the Python package (bench_python.py: nabla from Python), when it can be built
HAVE_PY=0
if cmake --build "$BUILD" -j"$JOBS" --target nabla_python >&2 2>/dev/null; then HAVE_PY=1; fi
# the peers, each when its package is there (a project of its own: nabla
# never depends on them)
HAVE_LT=0
HAVE_AD=0
if cmake -S "$ROOT/bench/peers" -B "$BUILD/peers" -DCMAKE_BUILD_TYPE=Release >&2; then
    if cmake --build "$BUILD/peers" -j"$JOBS" --target bench_libtorch >&2; then HAVE_LT=1; fi
    if cmake --build "$BUILD/peers" -j"$JOBS" --target bench_adolc >&2; then HAVE_AD=1; fi
fi
[ $HAVE_LT = 1 ] || echo "run.sh: bench_libtorch not built; the libtorch column will be empty" >&2
[ $HAVE_AD = 1 ] || echo "run.sh: bench_adolc not built; the ADOL-C column will be empty" >&2

# ---- run
rm -rf "$OUT"
mkdir -p "$OUT"
NB=$BUILD/bench/bench_nabla
BL=$BUILD/bench/bench_baseline
TP=$ROOT/bench/bench_torch.py
LT=$BUILD/peers/bench_libtorch
AD=$BUILD/peers/bench_adolc

# run NAME FILE THREADS CMD...: appends CMD's lines to FILE; a failing program
# leaves a note instead of stopping the run
run() {
    local name=$1 file=$2 thr=$3
    shift 3
    echo "== $name, $thr thread(s)" >&2
    if ! OMP_NUM_THREADS=$thr OPENBLAS_NUM_THREADS=$thr "$@" >>"$file" 2>"$OUT/stderr.tmp"; then
        echo "# $name failed (threads $thr): $(tail -n 3 "$OUT/stderr.tmp" | tr '\n' ' ')" >>"$file"
        echo "   $name FAILED; see $file" >&2
    fi
    cat "$OUT/stderr.tmp" >>"$OUT/stderr.txt"
}

# the machine should be otherwise idle: other work on its cores distorts
# every figure, the 2-thread ones most
# busy: % of all cores' time spent by other work over 2 seconds
busy() {
    local a b
    a=($(head -1 /proc/stat)); sleep 2; b=($(head -1 /proc/stat))
    awk -v u=$((b[1]+b[2]+b[3]+b[6]+b[7]+b[8]-a[1]-a[2]-a[3]-a[6]-a[7]-a[8])) \
        -v t=$((b[1]+b[2]+b[3]+b[4]+b[5]+b[6]+b[7]+b[8]-a[1]-a[2]-a[3]-a[4]-a[5]-a[6]-a[7]-a[8])) \
        'BEGIN { printf "%.0f", t ? 100 * u / t : 0 }'
}
B0=$(busy)
echo "start $B0" >"$OUT/load.txt"
if [ "$B0" -gt 10 ]; then
    echo "run.sh: WARNING: the cores are ${B0}% busy with other work; figures will be noisy" >&2
fi

HAVE_TORCH=1
$PY -c "import torch" >/dev/null 2>&1 || HAVE_TORCH=0

# workload by workload, the programs back to back, for ROUNDS rounds (the
# table takes the median of the rounds), so that a slow spell of the machine
# touches them all alike; LIMITS is hand C's dgemm rate and memory bandwidth
# (the limit column), measured in the same turns
ROUNDS=3
[ -z "$QUICK" ] || ROUNDS=1
for thr in 1 2; do
    if [ $thr = 1 ]; then WS="W1 W2 W3 W4 W5 W6 W7 LIMITS"; else WS="W2 W3 W4 W5 W6 W7 LIMITS"; fi
    f=$OUT/t$thr.txt
    echo "# rounds $ROUNDS" >>"$f"
    for W in $WS; do for round in $(seq $ROUNDS); do
        if [ $W = LIMITS ]; then
            run "dgemm rate and memory bandwidth (round $round)" "$f" $thr "$BL" --threads $thr \
                $QUICK --only DGEMM,STREAM
            continue
        fi
        run "nabla $W (round $round)" "$f" $thr "$NB" --threads $thr $QUICK --only $W
        if [ $W != W5 ] && [ $W != W6 ] && [ $W != W7 ]; then
            run "hand C $W (round $round)" "$f" $thr "$BL" --threads $thr $QUICK --only $W
        fi
        if [ $HAVE_TORCH = 1 ]; then
            run "PyTorch $W (round $round)" "$f" $thr $PY "$TP" --threads $thr $QUICK --only $W
        fi
        if [ $HAVE_LT = 1 ] && case $W in W1|W2|W3|W4|W5) true;; *) false;; esac; then
            run "libtorch $W (round $round)" "$f" $thr "$LT" --threads $thr $QUICK --only $W
        fi
        if [ $HAVE_AD = 1 ] && [ $W = W1 ]; then
            run "ADOL-C $W (round $round)" "$f" $thr "$AD" $QUICK --only $W
        fi
        if [ $HAVE_PY = 1 ] && [ $thr = 1 ] && case $W in W1|W2|W5) true;; *) false;; esac; then
            run "nabla from Python $W (round $round)" "$f" $thr env PYTHONPATH="$BUILD/python" \
                $PY "$ROOT/bench/bench_python.py" --threads $thr $QUICK --only $W
        fi
    done; done
    [ $HAVE_TORCH = 1 ] || echo "# PyTorch missing: python3-torch could not be installed" >>"$f"
    [ $HAVE_LT = 1 ] || echo "# libtorch missing: libtorch-dev could not be installed or bench_libtorch not built" >>"$f"
    [ $HAVE_AD = 1 ] || echo "# ADOL-C missing: libadolc-dev could not be installed or bench_adolc not built" >>"$f"
done
# memory and scaling in processes of their own (their peaks are per process)
run "nabla memory" "$OUT/mem.txt" 1 "$NB" $QUICK --only MEM
run "nabla scaling" "$OUT/scale.txt" 1 "$NB" $QUICK --only SCALE
run "hand C scaling" "$OUT/scale.txt" 1 "$BL" $QUICK --only SCALE
if [ $HAVE_TORCH = 1 ]; then
    run "PyTorch scaling" "$OUT/scale.txt" 1 $PY "$TP" $QUICK --only SCALE
fi

# W8: data parallelism over MPI (1 and 2 ranks), in processes of their own
echo "== W8 (MPI data parallelism)" >&2
bash "$ROOT/bench/w8.sh" "$BUILD" "$OUT/dist.txt" $QUICK

echo "end $(busy)" >>"$OUT/load.txt"

# ---- the table
$PY "$ROOT/bench/report.py" "$OUT" >"$OUT/results.md"
if [ -n "$QUICK" ]; then
    sed -i '1a\
\
**quick run: tiny repetition counts, not for quoting**' "$OUT/results.md"
fi
cp "$OUT/results.md" "$ROOT/bench/results.md"
cat "$ROOT/bench/results.md"
