#!/usr/bin/env bash
# A/B: two builds of bench_nabla side by side, in one run, on one machine.
#
#     bench/ab.sh OLD_BENCH_NABLA NEW_BENCH_NABLA [ROUNDS] [WORKLOADS]
#
# e.g. (the commit before a change, built in /tmp/base):
#     git worktree add /tmp/base <commit> && cmake -S /tmp/base -B /tmp/base/build \
#         -DCMAKE_BUILD_TYPE=Release && cmake --build /tmp/base/build --target bench_nabla
#     bench/ab.sh /tmp/base/build/bench/bench_nabla build-bench/bench/bench_nabla 7
#
# For each workload (default W1,W2,W3,W4,W5; one thread) the two programs take
# turns, ROUNDS times each (default 7), so that a slow spell of a shared
# machine touches both alike.  Prints a markdown table: each side's median of
# the workload's headline figure, and new/old as a time ratio (> 1: the new
# build is slower; for W3, a rate, the ratio is inverted so that > 1 still
# means slower).  The check values of the two builds must agree.
set -euo pipefail
OLD=$1
NEW=$2
ROUNDS=${3:-7}
WS=${4:-W1,W2,W3,W4,W5}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

metric() { # W -> the headline metric's name
    case $1 in
        W1) echo ns_per_op ;; W2) echo us_per_step ;; W3) echo gflops ;;
        W4) echo ns_per_elem ;; W5) echo s_per_epoch ;; *) echo "" ;;
    esac
}
median() { sort -g | awk '{a[NR] = $1} END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

echo "| workload | old | new | new/old (time) | check |"
echo "|---|---|---|---|---|"
for W in ${WS//,/ }; do
    m=$(metric "$W")
    : >"$tmp/old" && : >"$tmp/new"
    for r in $(seq "$ROUNDS"); do
        for side in old new; do
            bin=$OLD
            [ $side = new ] && bin=$NEW
            OPENBLAS_NUM_THREADS=1 "$bin" --threads 1 --only "$W" >>"$tmp/$side"
        done
    done
    mo=$(awk -v m="$m" '$3 == m {print $4}' "$tmp/old" | median)
    mn=$(awk -v m="$m" '$3 == m {print $4}' "$tmp/new" | median)
    co=$(awk '$3 == "check" {print $4}' "$tmp/old" | sort -u | tr '\n' ' ')
    cn=$(awk '$3 == "check" {print $4}' "$tmp/new" | sort -u | tr '\n' ' ')
    ratio=$(awk -v o="$mo" -v n="$mn" -v w="$W" 'BEGIN { r = (w == "W3") ? o / n : n / o; printf "%.3f", r }')
    agree="agree"
    [ "$co" = "$cn" ] || agree="DIFFER: $co / $cn"
    echo "| $W $m | $mo | $mn | $ratio | $agree |"
done
