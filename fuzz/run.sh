#!/bin/sh
# Runs the fuzz targets built by fuzz/build.sh.
#
#   fuzz/run.sh [SECONDS]   fuzz every target for its share of SECONDS (default
#                           300; fuzz_ops gets 1/2, fuzz_files and
#                           fuzz_lifetime 1/4 each) on a copy of
#                           its committed corpus, then replay the committed
#                           corpus; print executions and coverage.  Exit status
#                           non-zero when a target crashes, leaks, hangs (a unit
#                           over 25 s) or violates a property.
#   fuzz/run.sh --replay    only replay the committed corpus.
#   fuzz/run.sh --minimize TARGET DIR...
#                           (maintenance) replace fuzz/corpus/TARGET by a small
#                           subset of the inputs in DIR... reaching the same
#                           edges (a greedy set cover; fuzz/cover.c measures).
#
# Environment: FUZZ_BUILD (default build-fuzz), FUZZ_OUT (default
# $FUZZ_BUILD/run): work corpora, logs, crash artifacts, stats.txt.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD:-$root/build-fuzz}
out=${FUZZ_OUT:-$build/run}
targets="fuzz_ops fuzz_files fuzz_lifetime"
mkdir -p "$out"

# each unit must finish in 25 s; no unit may allocate more than 2 GB
FLAGS="-max_len=2048 -timeout=25 -rss_limit_mb=2560 -malloc_limit_mb=2048 -print_final_stats=1"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

bin_of() {
    b="$build/$1"
    if [ ! -x "$b" ]; then
        echo "fuzz/run.sh: $b is missing (run fuzz/build.sh first)" >&2
        exit 2
    fi
    echo "$b"
}

# last "cov: N ft: M" of a libFuzzer log
cov_of() { grep -o 'cov: [0-9]* ft: [0-9]*' "$1" | tail -1 | awk '{print $2, $4}'; }

replay() { # target -> 0/1, prints a line
    t=$1
    b=$(bin_of "$t")
    dir="$root/fuzz/corpus/$t"
    n=$(ls "$dir" 2>/dev/null | wc -l)
    log="$out/$t.replay.log"
    # -runs=0: execute every input of the directory once, then stop
    # shellcheck disable=SC2086
    mkdir -p "$out/artifacts"
    if ! "$b" $FLAGS -runs=0 -artifact_prefix="$out/artifacts/$t-replay-" "$dir" >"$log" 2>&1; then
        echo "REPLAY FAILED: $t (committed corpus, $n inputs); log: $log"
        tail -40 "$log"
        echo "  every committed input that fails, and why:"
        for f in "$dir"/*; do
            # shellcheck disable=SC2086
            "$b" $FLAGS -artifact_prefix="$out/artifacts/$t-replay-" "$f" >"$out/one.log" 2>&1 ||
                echo "    $(basename "$f"): $(grep -m1 -E 'PROPERTY VIOLATED|runtime error|ERROR: |timed out|timeout' "$out/one.log" | cut -c1-160)"
        done
        return 1
    fi
    set -- $(cov_of "$log")
    echo "replay  $t: $n committed inputs, all pass; coverage ${1:-?} edges, ${2:-?} features"
    echo "$t replay_inputs=$n replay_cov=${1:-?} replay_ft=${2:-?}" >>"$out/stats.txt"
    return 0
}

fuzz() { # target seconds -> 0/1
    t=$1
    secs=$2
    b=$(bin_of "$t")
    work="$out/corpus/$t"
    mkdir -p "$work" "$out/artifacts"
    cp "$root/fuzz/corpus/$t"/* "$work"/ 2>/dev/null
    log="$out/$t.fuzz.log"
    echo "fuzz    $t for $secs s ..."
    # shellcheck disable=SC2086
    timeout $((secs + 120)) "$b" $FLAGS -max_total_time="$secs" \
        -artifact_prefix="$out/artifacts/$t-" "$work" >"$log" 2>&1
    rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{print $2}')
    rate=$(( ${execs:-0} / (secs > 0 ? secs : 1) ))
    set -- $(cov_of "$log")
    cov=${1:-?}
    ft=${2:-?}
    size=$(ls "$work" | wc -l)
    if [ $rc -ne 0 ]; then
        echo "FUZZ FAILED: $t (exit $rc) after ${execs:-?} executions; log: $log"
        grep -A60 -E 'PROPERTY VIOLATED|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error' "$log" | head -80
        ls "$out/artifacts"/"$t"-* 2>/dev/null | sed 's/^/  reproducer: /'
        echo "  (replay one with: $b <reproducer>; FUZZ_TRACE=1 prints the program for fuzz_ops and fuzz_lifetime)"
        return 1
    fi
    echo "fuzz    $t: ${execs:-?} executions in $secs s (${rate:-?}/s), coverage $cov edges, $ft features, corpus $size inputs"
    echo "$t seconds=$secs execs=${execs:-0} exec_per_s=${rate:-0} cov=$cov ft=$ft corpus=$size" >>"$out/stats.txt"
    return 0
}

minimize() { # target dir...
    t=$1
    shift
    tmp="$out/minimize.$t"
    rm -rf "$tmp"
    mkdir -p "$tmp/obj"
    # a driver that prints every input's edges (fuzz/cover.c), on the library
    # and the target built with coverage guards and no sanitizer
    cc=${CC:-clang}
    cflags="-std=c11 -O1 -D_POSIX_C_SOURCE=200809L -I$root/include -I$root/src -w"
    libs="-lm -lpthread"
    if printf '#include <zlib.h>\nint main(void){return 0;}\n' | $cc -x c - -lz -o /dev/null 2>/dev/null; then
        cflags="$cflags -DNB_HAVE_ZLIB=1"
        libs="$libs -lz"
    fi
    # (every library source but src/dist, as fuzz/build.sh)
    for s in "$root/fuzz/$t.c" $(find "$root/src" -name '*.c' -not -path '*/dist/*' | LC_ALL=C sort); do
        [ -f "$s" ] || continue
        o="$tmp/obj/$(echo "${s#"$root"/}" | tr / _).o"
        # shellcheck disable=SC2086
        $cc $cflags -fsanitize-coverage=trace-pc-guard -c "$s" -o "$o" || exit 1
    done
    # shellcheck disable=SC2086
    $cc $cflags "$root/fuzz/cover.c" "$tmp"/obj/*.o $libs -o "$tmp/cover" || exit 1
    find "$@" -type f | sort >"$tmp/inputs"
    python3 - "$tmp/cover" "$tmp/inputs" "$root/fuzz/corpus/$t" <<'EOF'
import hashlib, os, shutil, subprocess, sys
cover, inputs, dest = sys.argv[1], sys.argv[2], sys.argv[3]
paths = open(inputs).read().split()
cov = {}
i = 0
while i < len(paths):  # restart after an input that stops the driver
    p = subprocess.run([cover], input="\n".join(paths[i:]) + "\n", capture_output=True, text=True)
    done = 0
    for line in p.stdout.splitlines():
        f, *g = line.split()
        cov[f] = set(map(int, g))
        done += 1
    i += done + (1 if p.returncode != 0 else 0)
    if p.returncode != 0 and i <= len(paths):
        print(f"  (skipped {paths[i - 1]}: it stops the driver)")
left = set().union(*cov.values()) if cov else set()
total = len(left)
pick = []
while left:
    best = max(cov, key=lambda f: (len(cov[f] & left), -os.path.getsize(f)))
    gain = cov[best] & left
    if not gain:
        break
    pick.append(best)
    left -= gain
if os.path.isdir(dest):
    shutil.rmtree(dest)
os.makedirs(dest)
size = 0
for f in pick:
    data = open(f, "rb").read()
    size += len(data)
    open(os.path.join(dest, hashlib.sha1(data).hexdigest()[:16]), "wb").write(data)
print(f"{dest}: {len(pick)} inputs, {size} bytes, reaching all {total} edges of {len(cov)} inputs")
EOF
}

case "${1:-}" in
--replay)
    : >"$out/stats.txt"
    fail=0
    for t in $targets; do replay "$t" || fail=1; done
    exit $fail
    ;;
--minimize)
    shift
    minimize "$@"
    exit $?
    ;;
esac

total=${1:-300}
ops_secs=$((total / 2))
files_secs=$((total / 4))
lifetime_secs=$((total - ops_secs - files_secs))
: >"$out/stats.txt"
fail=0
fuzz fuzz_ops "$ops_secs" || fail=1
fuzz fuzz_files "$files_secs" || fail=1
fuzz fuzz_lifetime "$lifetime_secs" || fail=1
for t in $targets; do replay "$t" || fail=1; done
echo "fuzz statistics (also in $out/stats.txt):"
sed 's/^/  /' "$out/stats.txt"
exit $fail
