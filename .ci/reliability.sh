#!/bin/sh
# Reliability checks, run by .ci/run from the repository root after the main
# test suites.  Exits non-zero on any failure.
#
#   1. the fuzz targets (libFuzzer + ASan + UBSan): a bounded run of each on a
#      copy of its committed corpus, then a replay of the committed corpus;
#   2. the reliability tests (allocation failure, overflow, non-finite
#      values, threads) built with ASan + UBSan (LeakSanitizer included);
#   3. the thread test built with ThreadSanitizer.
#
# Environment:
#   NABLA_FUZZ_SECONDS  total fuzzing time, split over the targets (default 300;
#                       0 skips fuzzing but still replays the corpus)
#   CC_FUZZ             the clang used for the fuzz targets (default clang)
#   JOBS                parallel build jobs (default 2)
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 2
secs=${NABLA_FUZZ_SECONDS:-300}
jobs=${JOBS:-2}
status=0
summary=""
note() { summary="$summary
  $1"; }

section() { printf '\n==== %s ====\n' "$1"; }

# ---- 1. fuzzing ------------------------------------------------------------------
section "fuzz targets (libFuzzer, ASan, UBSan)"
if CC=${CC_FUZZ:-clang} fuzz/build.sh "$root/build-fuzz"; then
    if [ "$secs" -gt 0 ]; then
        if fuzz/run.sh "$secs"; then note "fuzz: passed ($secs s)"; else status=1; note "fuzz: FAILED"; fi
    else
        if fuzz/run.sh --replay; then note "fuzz: corpus replay passed"; else status=1; note "fuzz: replay FAILED"; fi
    fi
else
    status=1
    note "fuzz: BUILD FAILED (needs clang with libFuzzer: libclang-rt-dev)"
fi

# ---- 2. the reliability tests under ASan + UBSan ---------------------------------------
tests="test_alloc_fail test_overflow test_nonfinite test_threads"
section "reliability tests, ASan + UBSan + LSan"
if cmake -S . -B build-rel-asan -DCMAKE_BUILD_TYPE=Debug -DNABLA_SANITIZE=address,undefined \
        -DNABLA_OPENBLAS=OFF -DNABLA_BUILD_EXAMPLES=OFF -DNABLA_BUILD_BENCH=OFF >/dev/null &&
    cmake --build build-rel-asan -j "$jobs" --target $tests >build-rel-asan/build.log 2>&1; then
    for t in $tests; do
        # allocator_may_return_null: a request too large to satisfy returns NULL
        # (as malloc does) instead of stopping the test; nabla must handle it
        if ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1 \
            UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
            ./build-rel-asan/tests/$t >build-rel-asan/$t.log 2>&1; then
            note "$t (ASan+UBSan): $(tail -1 build-rel-asan/$t.log)"
        else
            status=1
            note "$t (ASan+UBSan): FAILED, see build-rel-asan/$t.log"
            tail -40 build-rel-asan/$t.log
        fi
    done
    grep -h "failure points\|points covered" build-rel-asan/test_alloc_fail.log 2>/dev/null
else
    status=1
    note "ASan build: FAILED"
    tail -30 build-rel-asan/build.log 2>/dev/null
fi

# ---- 3. threads under ThreadSanitizer ---------------------------------------------
section "test_threads and test_shared_params, ThreadSanitizer"
if cmake -S . -B build-rel-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNABLA_SANITIZE=thread \
        -DNABLA_OPENBLAS=OFF -DNABLA_BUILD_EXAMPLES=OFF -DNABLA_BUILD_BENCH=OFF >/dev/null &&
    cmake --build build-rel-tsan -j "$jobs" --target test_threads test_shared_params >build-rel-tsan/build.log 2>&1; then
    for t in test_threads test_shared_params; do
        if TSAN_OPTIONS=halt_on_error=1:exitcode=66 ./build-rel-tsan/tests/$t \
            >build-rel-tsan/$t.log 2>&1; then
            note "$t (TSan): $(tail -1 build-rel-tsan/$t.log), no data race"
        else
            status=1
            note "$t (TSan): FAILED, see build-rel-tsan/$t.log"
            grep -A30 "WARNING: ThreadSanitizer" build-rel-tsan/$t.log | head -60
            tail -5 build-rel-tsan/$t.log
        fi
    done
else
    status=1
    note "TSan build: FAILED"
    tail -30 build-rel-tsan/build.log 2>/dev/null
fi

section "reliability summary"
echo "$summary"
[ -f build-fuzz/run/stats.txt ] && { echo "  fuzz statistics:"; sed 's/^/    /' build-fuzz/run/stats.txt; }
if [ $status -eq 0 ]; then echo "reliability: PASSED"; else echo "reliability: FAILED"; fi
exit $status
