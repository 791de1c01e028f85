#!/usr/bin/env bash
# W8: data parallelism over MPI.  One epoch of the main job (Fashion-MNIST,
# MLP 784-256-128-10, Adam, global batch 256, 1 thread per rank) with 1 rank
# and with 2 ranks (mpirun -np 2; the default sharded step, and --dp
# allreduce), ROUNDS rounds taking turns, and the cost of the gradient
# all-reduce (one call vs 4 or 16 buckets).
#     bench/w8.sh BUILD_DIR OUT_FILE [--quick]
# Appends "W8 nabla <metric> <value>" lines to OUT_FILE (report.py reads
# them from dist.txt).  Needs nabla built with MPI and the data set.
set -u
BUILD=$1
FILE=$2
QUICK=${3:-}
FM=$BUILD/examples/fashion_mnist
AR=$BUILD/bench/bench_allreduce
MPIRUN=(mpirun --allow-run-as-root --oversubscribe --mca btl self,vader -np 2)
ROUNDS=3
LIMIT=()
if [ -n "$QUICK" ]; then ROUNDS=1; LIMIT=(--limit 5120); fi
if ! grep -q "NABLA_HAVE_MPI 1" "$BUILD/include/nabla_config.h" 2>/dev/null; then
    echo "# W8 skipped: nabla was built without MPI (install libopenmpi-dev openmpi-bin)" >>"$FILE"
    exit 0
fi
if [ ! -x "$FM" ]; then echo "# W8 skipped: $FM missing" >>"$FILE"; exit 0; fi
ARGS=(--epochs 1 --batch 256 --threads 1 --test-limit 1000 "${LIMIT[@]}" --out "$BUILD/bench-results/w8")
epoch_s() { grep -m1 '^epoch 1:' | sed 's/.*, \([0-9.]*\) s$/\1/'; }
echo "# W8: one epoch, global batch 256, 1 thread per rank; ${ROUNDS} rounds" >>"$FILE"
for round in $(seq "$ROUNDS"); do
    a=$(OPENBLAS_NUM_THREADS=1 "$FM" "${ARGS[@]}" 2>/dev/null | epoch_s)
    b=$(OPENBLAS_NUM_THREADS=1 "${MPIRUN[@]}" -x OPENBLAS_NUM_THREADS "$FM" "${ARGS[@]}" 2>/dev/null | epoch_s)
    c=$(OPENBLAS_NUM_THREADS=1 "${MPIRUN[@]}" -x OPENBLAS_NUM_THREADS "$FM" "${ARGS[@]}" --dp allreduce 2>/dev/null | epoch_s)
    [ -n "$a" ] && echo "W8 nabla epoch_s_1rank $a" >>"$FILE"
    [ -n "$b" ] && echo "W8 nabla epoch_s_2ranks $b" >>"$FILE"
    [ -n "$c" ] && echo "W8 nabla epoch_s_2ranks_allreduce $c" >>"$FILE"
    echo "   W8 round $round: 1 rank $a s, 2 ranks $b s (sharded step), $c s (all-reduce + full step)" >&2
done
if [ -x "$AR" ]; then "${MPIRUN[@]}" "$AR" $QUICK >>"$FILE" 2>/dev/null || echo "# bench_allreduce failed" >>"$FILE"; fi
