#!/usr/bin/env bash
# The main job: installs dependencies and the Fashion-MNIST dataset, builds,
# and trains the default MLP (784-256-128-10, Adam, batch 64).  Arguments go
# to build/examples/fashion_mnist (e.g. --epochs 3).  Results land in out/fashion_mnist/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh dataset-fashion-mnist
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)" --target fashion_mnist
exec build/examples/fashion_mnist "$@"
