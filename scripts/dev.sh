#!/usr/bin/env bash
# kinema set-up on a fresh Debian 12 machine.
#   scripts/dev.sh demo    install missing packages, build, run the main job
#   scripts/dev.sh test    install missing packages, build, run every test
#   scripts/dev.sh build   install missing packages, build only
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${KINEMA_BUILD_DIR:-build}
JOBS=${KINEMA_JOBS:-$(nproc)}

# Debian packages kinema builds against (README: "Dependencies" says why each is there).
PACKAGES=(build-essential cmake pkg-config ccache git
  libtorch-dev libgloo-dev libluajit-5.1-dev luajit
  libavformat-dev libavcodec-dev libswscale-dev libavutil-dev
  libopencv-dev libcxxopts-dev doctest-dev nlohmann-json3-dev libsentencepiece-dev
  libreadline-dev libzip-dev libgoogle-perftools-dev libopenblas0-openmp gnuplot-nox wordnet-base)
# Peers used only by tests' fixture scripts and benchmarks, never at run time.
PEERS=(python3-torch python3-torchvision python3-scipy python3-opencv python3-av python3-numpy
  python3-sentencepiece python3-regex)

install_missing() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "kinema: installing ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
}

build() {
  install_missing "${PACKAGES[@]}"
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release
  cmake --build "$BUILD_DIR" -j "$JOBS"
}

case "${1:-}" in
  build) build ;;
  demo)
    build
    "$BUILD_DIR/kinema" run scripts/demo.lua "${@:2}"
    ;;
  test)
    install_missing "${PEERS[@]}"
    build
    ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS" --timeout 1200
    ;;
  *) echo "usage: scripts/dev.sh demo|test|build" >&2; exit 2 ;;
esac
