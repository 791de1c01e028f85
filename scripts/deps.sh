#!/usr/bin/env bash
# Installs what nabla's build, tests and examples use, on Debian/Ubuntu.
# Usage: scripts/deps.sh [extra packages...]   (as root, or with sudo available)
# (python3-dev, python3-numpy, python3-pytest: the Python package nabla and its tests)
set -euo pipefail
pkgs=(cmake make gcc clang libclang-rt-14-dev pkg-config libopenblas-dev libxsmm-dev zlib1g-dev graphviz locales
      python3-dev python3-numpy python3-pytest
      libopenmpi-dev openmpi-bin "$@")  # Open MPI: data parallelism (src/dist) and its tests
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# a locale whose decimal separator is a comma, for tests/test_locale.c
# (readers and writers must not follow it)
if ! locale -a 2>/dev/null | grep -qi '^de_DE\.utf-\?8$'; then
  echo "deps: making the de_DE.UTF-8 locale"
  $SUDO localedef -i de_DE -f UTF-8 de_DE.UTF-8
fi
