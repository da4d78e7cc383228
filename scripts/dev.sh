#!/usr/bin/env bash
# kinema set-up on a fresh Debian 12 machine.
#   scripts/dev.sh demo    install missing packages, build, run the main job
#   scripts/dev.sh test    install missing packages, build, run every test
#   scripts/dev.sh build   install missing packages, build only
#   scripts/dev.sh setup   install missing packages (the tests' too) only; with
#                          --torch pip also .venv-torch/ (CI fetches it beside the 1.13 build)
# Each takes --torch to build against a PyTorch 2.x instead of Debian's LibTorch 1.13:
#   --torch pip      install the current torch from PyPI into .venv-torch/ (once)
#   --torch PYTHON   use the torch of an existing environment (e.g. ~/venv/bin/python)
# The build then goes to build-torch2/ (KINEMA_BUILD_DIR overrides).
#   scripts/dev.sh fuzz [--seconds N]   ASan+UBSan build (clang) of the parsers and operators:
#                          their doctests, then each libFuzzer target for N seconds
#                          (default 20; CI runs this) seeded with tests/fixtures
#   scripts/dev.sh gpu-check OUT_DIR [--dry-run]   build + CUDA tests + GPU benchmarks (--help)
#   scripts/dev.sh gpu-bundle                      what a GPU machine lacks, into .gpu-bundle/
set -euo pipefail
cd "$(dirname "$0")/.."

TORCH_PYTHON=""
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --torch) [ $# -ge 2 ] || { echo "scripts/dev.sh: --torch needs 'pip' or a python executable" >&2; exit 2; }
             TORCH_PYTHON=$2; shift 2 ;;
    --torch=*) TORCH_PYTHON=${1#--torch=}; shift ;;
    *) args+=("$1"); shift ;;
  esac
done
set -- "${args[@]+"${args[@]}"}"

BUILD_DIR=${KINEMA_BUILD_DIR:-$([ -n "$TORCH_PYTHON" ] && echo build-torch2 || echo build)}
JOBS=${KINEMA_JOBS:-$(nproc)}

# Debian packages kinema builds against (README: "Dependencies" says why each is there).
PACKAGES=(build-essential cmake pkg-config ccache git
  libtorch-dev libgloo-dev libluajit-5.1-dev luajit
  libavformat-dev libavcodec-dev libswscale-dev libavutil-dev
  libopencv-dev libcxxopts-dev doctest-dev nlohmann-json3-dev libsentencepiece-dev
  libreadline-dev libzip-dev libgoogle-perftools-dev libopenblas0-openmp gnuplot-nox wordnet-base
  libprotobuf-dev)
# Peers used only by tests' fixture scripts and benchmarks, never at run time.
PEERS=(python3-torch python3-torchvision python3-scipy python3-opencv python3-av python3-numpy
  python3-sentencepiece python3-regex
  tmux chromium python3-venv)
# The sanitizer/fuzz build only (scripts/dev.sh fuzz): clang, its ASan/UBSan/libFuzzer
# runtimes, and clang's OpenMP for ATen's parallel_for.
FUZZ_PACKAGES=(clang-14 libclang-rt-14-dev libomp-14-dev)

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

# The python whose torch the build uses (--torch): .venv-torch/ for 'pip',
# created and filled from PyPI on first use.
torch_python() {
  if [ "$TORCH_PYTHON" != pip ]; then
    "$TORCH_PYTHON" -c 'import torch' 2>/dev/null ||
      { echo "scripts/dev.sh: --torch $TORCH_PYTHON: that python cannot import torch" >&2; return 1; }
    echo "$TORCH_PYTHON"
    return
  fi
  local venv=.venv-torch
  if ! "$venv/bin/python" -c 'import torch' 2>/dev/null; then
    install_missing python3-venv >&2
    python3 -m venv "$venv" >&2
    echo "kinema: installing torch from PyPI into $venv" >&2
    # numpy: torch's tensor/array bridge, and the GPU benchmark script reads
    # its inputs through it. --no-compile: Python compiles each module when
    # first imported instead of all ~6300 files of torch and its dependencies up front.
    "$venv/bin/pip" install -q --no-compile torch numpy >&2
  fi
  echo "$venv/bin/python"
}

build() {
  install_missing "${PACKAGES[@]}"
  local torch_args=()
  if [ -n "$TORCH_PYTHON" ]; then
    local py prefix
    py=$(torch_python)
    prefix=$("$py" -c 'import torch; print(torch.utils.cmake_prefix_path)')
    echo "kinema: building against torch $("$py" -c 'import torch; print(torch.__version__)') ($prefix) in $BUILD_DIR"
    torch_args=(-DCMAKE_PREFIX_PATH="$prefix")
  else
    echo "kinema: building against Debian's LibTorch in $BUILD_DIR"
  fi
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release "${torch_args[@]+"${torch_args[@]}"}"
  cmake --build "$BUILD_DIR" -j "$JOBS"
}

# Sanitized parsers and operators (tests/fuzz/CMakeLists.txt): the doctests, then
# each libFuzzer target, started from the fixtures its parser reads (the hostile
# corpus included). A finding stops with the input saved under $dir/findings/.
fuzz() {
  local seconds=20
  while [ $# -gt 0 ]; do
    case "$1" in
      --seconds) if [ $# -lt 2 ] || ! [[ $2 =~ ^[0-9]+$ ]]; then
                   echo "scripts/dev.sh fuzz: --seconds needs a whole number" >&2; exit 2
                 fi
                 seconds=$2; shift 2 ;;
      *) echo "scripts/dev.sh fuzz: unknown argument '$1' (usage: fuzz [--seconds N])" >&2; exit 2 ;;
    esac
  done
  install_missing "${PACKAGES[@]}" "${FUZZ_PACKAGES[@]}"
  local dir=${KINEMA_SAN_DIR:-build-san}
  CC=clang-14 CXX=clang++-14 cmake -S tests/fuzz -B "$dir"
  cmake --build "$dir" -j "$JOBS"
  "$dir/test_sanitized"
  local fx=tests/fixtures
  local -A seeds=(
    [pickle]="$fx/io_*.pt $fx/formats_backbone.pt $fx/models_pos_embed.pt $fx/hostile/*.pt"
    [safetensors]="$fx/*.safetensors"
    [npz]="$fx/io_*.npy $fx/io_*.npz $fx/formats_butd_*.npz $fx/hostile/*.npz"
    [detections]="$fx/formats_butd_*.npz $fx/formats_vinvl.json $fx/formats_frame_boxes*.json $fx/formats_synth_boxes.json"
    [annotations]="$fx/formats_*.csv $fx/formats_*.tsv $fx/formats_*.json $fx/formats_*.jsonl $fx/formats_*.txt")
  # Scratch inputs of the targets stay in the build folder.
  mkdir -p "$dir/tmp" "$dir/findings"
  local scratch
  scratch=$(cd "$dir/tmp" && pwd)
  for target in pickle safetensors npz detections annotations; do
    local corpus="$dir/corpus/$target"
    mkdir -p "$corpus"
    # shellcheck disable=SC2086  # the globs expand here
    cp ${seeds[$target]} "$corpus/"
    echo "kinema: fuzzing $target for $seconds s"
    TMPDIR="$scratch" "$dir/fuzz_$target" -max_total_time="$seconds" -timeout=60 -rss_limit_mb=3072 \
      -artifact_prefix="$dir/findings/$target-" -print_final_stats=1 "$corpus" 2>&1 | grep -v '^#[0-9]'
  done
  rm -rf "$dir/tmp"
}

case "${1:-}" in
  build) build ;;
  setup)
    install_missing "${PACKAGES[@]}" "${PEERS[@]}"
    if [ -n "$TORCH_PYTHON" ]; then
      py=$(torch_python)
      echo "kinema: torch $("$py" -c 'import torch; print(torch.__version__)') in $py"
    fi
    ;;
  demo)
    build
    "$BUILD_DIR/kinema" run scripts/demo.lua "${@:2}"
    ;;
  test)
    install_missing "${PEERS[@]}"
    build
    built_at=$SECONDS
    ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS" --timeout 1200
    echo "kinema: set-up and build $built_at s, tests $((SECONDS - built_at)) s"
    ;;
  gpu-check)
    # The GPU machine's own torch (--torch PYTHON, default python3); see --help.
    [ -n "$TORCH_PYTHON" ] && TORCH_PYTHON=$(torch_python)
    TORCH_PYTHON=$TORCH_PYTHON KINEMA_BUILD_DIR=${KINEMA_BUILD_DIR:-build-gpu} exec bash scripts/gpu.sh check "${@:2}"
    ;;
  gpu-bundle) exec bash scripts/gpu.sh bundle ;;
  fuzz) fuzz "${@:2}" ;;
  *) echo "usage: scripts/dev.sh demo|test|build|setup [--torch pip|PYTHON] | fuzz [--seconds N] | gpu-check OUT_DIR [--dry-run] | gpu-bundle" >&2
     exit 2 ;;
esac
