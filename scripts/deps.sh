#!/usr/bin/env bash
# Installs what nabla's build, tests and examples use, on Debian/Ubuntu.
# Usage: scripts/deps.sh [extra packages...]   (as root, or with sudo available)
set -euo pipefail
pkgs=(cmake make gcc clang libclang-rt-14-dev pkg-config libopenblas-dev zlib1g-dev graphviz
      libopenmpi-dev openmpi-bin "$@")  # Open MPI: data parallelism (src/dist) and its tests
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
