#!/usr/bin/env bash
# kinema set-up on a fresh Debian 12 machine.
#   scripts/dev.sh demo    install missing packages, build, run the main job
#   scripts/dev.sh test    install missing packages, build, run every test
#   scripts/dev.sh build   install missing packages, build only
#   scripts/dev.sh sanitize  ASan+UBSan build (clang) of the parsers and operators:
#                          their doctests, then each libFuzzer target for
#                          KINEMA_FUZZ_SECONDS (default 10) seconds
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

# Sanitized parsers and operators (tests/fuzz/CMakeLists.txt). Each fuzz target
# starts from the fixtures its parser reads (the hostile corpus included);
# longer runs: KINEMA_FUZZ_SECONDS=3600 scripts/dev.sh sanitize.
sanitize() {
  install_missing "${PACKAGES[@]}" clang-14 libclang-rt-14-dev
  local dir=${KINEMA_SAN_DIR:-build-san} seconds=${KINEMA_FUZZ_SECONDS:-10}
  CC=clang-14 CXX=clang++-14 cmake -S tests/fuzz -B "$dir" -DCMAKE_BUILD_TYPE=Debug
  cmake --build "$dir" -j "$JOBS"
  ASAN_OPTIONS=detect_leaks=1 "$dir/test_sanitized"
  local fx=tests/fixtures
  declare -A seeds=(
    [pickle]="$fx/*.pt $fx/hostile/*.pt"
    [safetensors]="$fx/*.safetensors"
    [npz]="$fx/io_*.npy $fx/*.npz $fx/hostile/*.npz"
    [detections]="$fx/formats_butd_*.npz $fx/formats_vinvl.json $fx/formats_frame_boxes*.json $fx/formats_synth_boxes.json"
    [annotations]="$fx/formats_*.csv $fx/formats_*.tsv $fx/formats_*.json $fx/formats_*.jsonl $fx/formats_*.txt")
  for target in pickle safetensors npz detections annotations; do
    local corpus="$dir/corpus_$target"
    mkdir -p "$corpus"
    # shellcheck disable=SC2086  # the globs expand here
    cp -n ${seeds[$target]} "$corpus/"
    echo "kinema: fuzzing $target for $seconds s"
    "$dir/fuzz_$target" -max_total_time="$seconds" -max_len=65536 -timeout=20 -rss_limit_mb=4096 \
      -print_final_stats=1 "$corpus"
  done
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
  sanitize) sanitize ;;
  *) echo "usage: scripts/dev.sh demo|test|build|sanitize" >&2; exit 2 ;;
esac
