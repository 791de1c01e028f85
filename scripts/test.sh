#!/usr/bin/env bash
# The test command: installs dependencies, builds with warnings as errors,
# and runs the whole suite with ctest.  Extra arguments go to cmake's
# configure step (e.g. -DNABLA_SANITIZE=address,undefined); BUILD_DIR picks
# the build directory (default: build).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh dataset-fashion-mnist
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DNABLA_WERROR=ON "$@"
cmake --build "$BUILD_DIR" -j"$(nproc)"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j"$(nproc)"
