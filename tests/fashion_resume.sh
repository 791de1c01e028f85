#!/usr/bin/env bash
# Checkpoints of the main job survive kills (ctest, at a reduced size):
#   tests/fashion_resume.sh BIN OUTDIR [LAUNCH...]
# BIN is build/examples/fashion_mnist; LAUNCH (optional) the MPI launcher
# with its flags (e.g. mpirun --allow-run-as-root --oversubscribe -np 2).
#  1. a reference run, uninterrupted;
#  2. the same run with a checkpoint after every step, killed with SIGKILL
#     at random moments (loading, training, writing the checkpoint) and
#     resumed until it completes; under MPI a rank kills itself at a random
#     step instead, and the whole job must stop within 30 s;
#  3. the resumed run's parameters must equal the reference's: bit for bit
#     in one process, within 1e-12 relative under MPI (--compare), with the
#     same loss and accuracy per epoch;
#  4. a truncated checkpoint and another configuration are refused, naming
#     the file / the setting.
# Exits 77 (skipped) when the data set is missing.
set -u
BIN=$1
OUT=$2
shift 2
LAUNCH=("$@")
ARGS=(--epochs 2 --limit 1500 --test-limit 500 --batch 50 --threads 1)
TOL=0
[ ${#LAUNCH[@]} -gt 0 ] && TOL=1e-12
rm -rf "$OUT"
mkdir -p "$OUT"
fail() { echo "fashion_resume: FAILED: $*" >&2; exit 1; }

"$BIN" "${ARGS[@]}" --out "$OUT/ref" > "$OUT/ref.log" 2>&1
rc=$?
[ $rc -eq 77 ] && { echo "fashion_resume: data set missing: skipped"; exit 77; }
[ $rc -eq 0 ] || { cat "$OUT/ref.log"; fail "the reference run failed"; }

CK="$OUT/run/ck.nbc"
mkdir -p "$OUT/run"
RUN=("${LAUNCH[@]}" "$BIN" "${ARGS[@]}" --out "$OUT/run" --checkpoint "$CK" --checkpoint-every 1
     --resume --compare "$OUT/ref/model.nbp" --compare-tol $TOL)
kills=0
done_ok=0
steps=60   # 2 epochs of 30 steps
for attempt in $(seq 1 40); do
    if [ ${#LAUNCH[@]} -eq 0 ]; then
        # one process: SIGKILL from outside after a random delay that grows
        "${RUN[@]}" > "$OUT/run.log" 2>&1 &
        pid=$!
        delay=$(awk -v a="$attempt" -v r="$RANDOM" 'BEGIN { printf "%.3f", 0.5 + 0.15 * a + (r % 1000) / 1000 }')
        ( sleep "$delay"; kill -9 $pid 2>/dev/null ) &
        killer=$!
        wait $pid 2>/dev/null
        rc=$?
        kill $killer 2>/dev/null
        wait $killer 2>/dev/null
    else
        # MPI: rank 1 dies at a random step after the checkpoint's; the job must end, fast
        at=$(( (RANDOM % steps) + 1 ))
        t0=$(date +%s)
        timeout 60 "${RUN[@]}" --die-at-step $at --die-rank 1 > "$OUT/run.log" 2>&1
        rc=$?
        t1=$(date +%s)
        [ $rc -eq 124 ] && fail "a rank died at step $at and the job hung (killed after 60 s)"
        [ $((t1 - t0)) -le 30 ] || fail "a rank died at step $at; the job took $((t1 - t0)) s to stop"
        if [ $rc -ne 0 ] && ! grep -q "kills itself" "$OUT/run.log"; then
            # dying after the last step is no death: the run completed
            cat "$OUT/run.log"; fail "rank death: unexpected failure"
        fi
        if [ $rc -ne 0 ]; then echo "fashion_resume: rank 1 killed at step $at: the job stopped in $((t1 - t0)) s (exit $rc)"; fi
    fi
    grep -h "resumed from" "$OUT/run.log" | sed 's/^/fashion_resume: attempt '"$attempt"': /'
    if [ $rc -eq 0 ]; then done_ok=1; break; fi
    kills=$((kills + 1))
    if grep -q "checkpoint_load" "$OUT/run.log"; then cat "$OUT/run.log"; fail "a checkpoint left by a kill was refused"; fi
done
[ $done_ok -eq 1 ] || fail "the run never completed"
[ $kills -gt 0 ] || fail "no kill happened (the run was too fast for the delays)"
grep -q "compare with" "$OUT/run.log" || { cat "$OUT/run.log"; fail "no comparison"; }
cut -d, -f1-3 "$OUT/ref/epochs.csv" > "$OUT/a.csv"
cut -d, -f1-3 "$OUT/run/epochs.csv" > "$OUT/b.csv"
cmp -s "$OUT/a.csv" "$OUT/b.csv" || { diff "$OUT/a.csv" "$OUT/b.csv"; fail "per-epoch loss/accuracy differ"; }
grep "test accuracy:" "$OUT/ref.log" > "$OUT/a.acc"
grep "test accuracy:" "$OUT/run.log" > "$OUT/b.acc"
cmp -s "$OUT/a.acc" "$OUT/b.acc" || fail "test accuracy differs: $(cat "$OUT/a.acc") vs $(cat "$OUT/b.acc")"
echo "fashion_resume: $kills kills, resumed to the end: $(grep 'compare with' "$OUT/run.log")"

# refusals: a truncated checkpoint, another configuration
head -c 5000 "$CK" > "$OUT/trunc.nbc"
"${LAUNCH[@]}" "$BIN" "${ARGS[@]}" --out "$OUT/x" --checkpoint "$OUT/trunc.nbc" --resume > "$OUT/x.log" 2>&1 &&
    fail "a truncated checkpoint was accepted"
grep -q "trunc.nbc: truncated" "$OUT/x.log" || { cat "$OUT/x.log"; fail "no message naming the truncated file"; }
"${LAUNCH[@]}" "$BIN" --epochs 2 --limit 1500 --test-limit 500 --batch 64 --threads 1 --out "$OUT/x" \
    --checkpoint "$CK" --resume > "$OUT/x.log" 2>&1 && fail "a checkpoint of another configuration was accepted"
grep -q "batch is '50' in the checkpoint, '64' now" "$OUT/x.log" || { cat "$OUT/x.log"; fail "no message naming the setting"; }
echo "fashion_resume: truncated and foreign checkpoints refused"
exit 0
