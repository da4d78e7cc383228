#!/usr/bin/env bash
# The GPU half of kinema's checks, run through scripts/dev.sh:
#   scripts/dev.sh gpu-check OUT_DIR [--dry-run] [--torch PYTHON]
#   scripts/dev.sh gpu-bundle
# `scripts/dev.sh gpu-check --help` documents both.
set -euo pipefail
cd "$(dirname "$0")/.."

BUNDLE=.gpu-bundle
BUNDLE_LIMIT_MB=64

usage() {
  cat <<'EOF'
scripts/dev.sh gpu-check OUT_DIR [--dry-run] [--torch PYTHON|pip]
  On a machine with an NVIDIA GPU and a CUDA-enabled PyTorch (no Debian -dev
  packages or internet needed when .gpu-bundle/ is present), in this order:
    1. records the machine: GPU, driver, torch and its CUDA, nvcc, glibc;
    2. builds kinema against that torch (CUDA kernels linked) into
       build-gpu/ (KINEMA_BUILD_DIR overrides), using .gpu-bundle/ for what
       the machine lacks;
    3. runs the CUDA tests (ctest -L cuda): kernels against the CPU kernels,
       bf16 autocast training steps, the 2-rank NCCL run (2 GPUs);
    4. runs the GPU benchmarks next to their peers:
       scripts/bench/gpu/bench_ops_gpu.py: roi_align vs torchvision,
       linear_assignment 4096 x 20x33, rwa/grounding similarity vs naive, time
       and peak memory;
       scripts/bench/models/run_bench_video_encoder.py: the ViT-B/16 video
       encoder (batch 2 x 8 frames x 224^2) forward+backward under bf16
       autocast, kinema from Lua vs the same ViT in PyTorch eager (and timm's,
       when PYTHON has timm): ms/iter and peak GPU memory;
       scripts/bench/train/run.py: the STOA base preset's training step
       (batch 8, bf16 autocast, random tensors of the loader's shapes: no
       video decoding), clips/s and peak GPU memory, kinema alone (no PyTorch
       STOA exists to set beside it);
  and writes OUT_DIR/report.md (figures side by side) and OUT_DIR/logs/.
  PYTHON (default: python3) is the interpreter whose torch is used; 'pip'
  means .venv-torch/ (scripts/dev.sh --torch pip, installed there on first use).
  Exit status: 0 when the build, every CUDA test and every benchmark ran.

  --dry-run  everything that works without a GPU: the machine record, the
             build (an existing one is reused: CI passes
             KINEMA_BUILD_DIR=build-torch2 --torch pip, the LibTorch 2.x build
             its previous step made), the CUDA tests (they report "skipped: no CUDA device"),
             the three benchmarks on the CPU at tiny sizes in seconds
             (exercised through the same scripts and Lua paths, not
             figures); the report lists each part that needs a GPU.

scripts/dev.sh gpu-bundle
  On this (Debian 12) machine: downloads the Debian packages kinema builds
  against that a GPU machine with only a CUDA PyTorch lacks (LuaJIT, libzip,
  readline, protobuf, pkg-config, Gloo/cxxopts/nlohmann-json/doctest/
  SentencePiece headers) and unpacks them into .gpu-bundle/prefix (ignored by
  git), with their shared-library dependencies that are not part of a base
  system. FFmpeg and OpenCV do not fit (with their codec and BLAS libraries
  ~260 MiB): with the bundle, gpu-check builds with -DKINEMA_WITH_MEDIA=OFF
  (no video decoding, no PNG encoding), says so in its report, and the tests
  that train on the synthetic videos (bf16 steps) report themselves skipped.
  The machine must bring a C++ compiler and CMake.
  Copy the checkout with .gpu-bundle/ to the GPU machine. The bundle records
  the newest glibc symbol version its libraries need; gpu-check compares it
  with the machine's and stops with the reason when the machine is older.
  Refuses to leave a bundle over 64 MiB.
EOF
}

log() { echo "gpu-check: $*" >&2; }

# ---------------------------------------------------------------- gpu-bundle
# Libraries every glibc-based machine with a compiler has; never bundled.
BASE_LIBS='^(ld-linux|libc|libm|libdl|libpthread|librt|libresolv|libutil|libgcc_s|libstdc\+\+|libz|libgomp|libcrypt|libselinux|libpcre2-8|libtinfo|libnsl)\.'

bundle() {
  local deb_dir=$BUNDLE/debs prefix=$BUNDLE/prefix
  rm -rf "$BUNDLE"
  mkdir -p "$deb_dir" "$prefix"
  # No FFmpeg or OpenCV: with their codec and BLAS dependencies they come to
  # ~260 MiB. gpu-check builds with -DKINEMA_WITH_MEDIA=OFF when it uses the bundle.
  local dev=(libluajit-5.1-dev libluajit-5.1-2 libzip-dev libzip4 libreadline-dev libreadline8
    libgloo-dev libcxxopts-dev nlohmann-json3-dev doctest-dev libsentencepiece-dev libsentencepiece0
    libprotobuf-dev libprotobuf32 libprotobuf-lite32 pkgconf pkgconf-bin libpkgconf3)
  (cd "$deb_dir" && apt-get download "${dev[@]}" >/dev/null)
  # Shared libraries those need that a base system lacks, by package.
  local libs pkgs
  libs=$(for f in /usr/lib/x86_64-linux-gnu/{libzip.so.4,libluajit-5.1.so.2,libreadline.so.8,libsentencepiece.so.0,libprotobuf.so.32,libpkgconf.so.3}; do
      ldd "$f" | awk '/=>/ {print $3}'
    done | sort -u | while read -r lib; do
      basename "$lib" | grep -Eq "$BASE_LIBS" || echo "$lib"
    done)
  pkgs=$(for lib in $libs; do dpkg -S "$(readlink -f "$lib")" 2>/dev/null || dpkg -S "$lib"; done |
         cut -d: -f1 | sort -u)
  # shellcheck disable=SC2086
  (cd "$deb_dir" && apt-get download $pkgs >/dev/null)
  for deb in "$deb_dir"/*.deb; do dpkg-deb -x "$deb" "$prefix"; done
  rm -rf "$deb_dir" "$prefix"/usr/share/{doc,man,lintian,bug}
  find "$prefix" -name '*.a' -delete  # kinema links shared libraries only
  # Versioned symlinks inside the prefix point at absolute /usr paths: make them relative.
  find "$prefix" -type l | while read -r link; do
    local target
    target=$(readlink "$link")
    case "$target" in /*) ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$prefix$target")" "$link" ;; esac
  done
  # The newest glibc symbol version any bundled library needs.
  find "$prefix" -name '*.so*' -type f -exec objdump -T {} + 2>/dev/null |
    grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1 | sed 's/GLIBC_//' > "$BUNDLE/GLIBC"
  local mb
  mb=$(du -sm "$BUNDLE" | cut -f1)
  echo "gpu-bundle: $BUNDLE: ${mb} MiB, $(find "$prefix" -name '*.so*' -type f | wc -l) libraries, needs glibc >= $(cat "$BUNDLE/GLIBC")"
  if [ "$mb" -gt "$BUNDLE_LIMIT_MB" ]; then
    echo "gpu-bundle: $BUNDLE is ${mb} MiB, over the ${BUNDLE_LIMIT_MB} MiB limit" >&2
    return 1
  fi
}

# ---------------------------------------------------------------- gpu-check
check() {
  local out="" dry=0
  while [ $# -gt 0 ]; do
    case "$1" in
      --dry-run) dry=1 ;;
      -h|--help) usage; return 0 ;;
      -*) echo "gpu-check: unknown option $1 (see --help)" >&2; return 2 ;;
      *) [ -z "$out" ] || { echo "gpu-check: one OUT_DIR, got '$out' and '$1'" >&2; return 2; }; out=$1 ;;
    esac
    shift
  done
  [ -n "$out" ] || { usage >&2; return 2; }
  mkdir -p "$out/logs"
  out=$(cd "$out" && pwd)
  local py=${TORCH_PYTHON:-python3} build=${KINEMA_BUILD_DIR:-build-gpu} report=$out/report.md
  local start=$SECONDS failures=0 needs_gpu=()
  : > "$report"
  r() { printf '%s\n' "$*" >> "$report"; }

  r "# kinema GPU check ($(date -u +%Y-%m-%dT%H:%MZ)$([ $dry = 1 ] && echo ', dry run'))"
  r ""
  r "## Machine"
  r ""
  "$py" -c 'import torch' 2>/dev/null || { echo "gpu-check: $py cannot import torch (pass --torch PYTHON)" >&2; return 1; }
  local torch_info gpu
  torch_info=$("$py" -c 'import torch; print("torch %s, CUDA %s, cuDNN %s, C++11 ABI %s" % (torch.__version__, torch.version.cuda, torch.backends.cudnn.version(), torch._C._GLIBCXX_USE_CXX11_ABI))')
  gpu=$("$py" -c 'import torch; print(", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())) if torch.cuda.is_available() else "")' 2>/dev/null || true)
  r "- python: $py ($("$py" --version 2>&1)); $torch_info"
  r "- GPUs: ${gpu:-none}"
  r "- driver: $(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1 || true)"
  r "- nvcc: $(nvcc --version 2>/dev/null | grep -o 'release [0-9.]*' || echo 'not found')"
  r "- glibc $(ldd --version | head -1 | grep -o '[0-9.]*$'), $(c++ --version | head -1), $(cmake --version | head -1)"
  if [ -z "$gpu" ] && [ $dry = 0 ]; then
    echo "gpu-check: no CUDA device visible to $py; use --dry-run for what works without one" >&2
    return 1
  fi

  # Build: the bundle supplies what the machine lacks.
  local prefix torch_prefix media=ON
  torch_prefix=$("$py" -c 'import torch; print(torch.utils.cmake_prefix_path)')
  local cmake_prefix="$torch_prefix"
  # The bundle only where the machine lacks the Debian packages (here they are
  # installed and the build keeps video support).
  if [ -d "$BUNDLE/prefix" ] && ! pkg-config --exists luajit libavformat opencv4 2>/dev/null; then
    local need have
    need=$(cat "$BUNDLE/GLIBC")
    have=$(ldd --version | head -1 | grep -o '[0-9.]*$')
    if [ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -1)" != "$need" ]; then
      echo "gpu-check: $BUNDLE needs glibc >= $need, this machine has $have; build on it with its own packages" >&2
      return 1
    fi
    prefix=$(cd "$BUNDLE/prefix" && pwd)
    cmake_prefix="$torch_prefix;$prefix/usr;$prefix/usr/lib/x86_64-linux-gnu/cmake"
    export PKG_CONFIG_PATH="$prefix/usr/lib/x86_64-linux-gnu/pkgconfig:$prefix/usr/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
    export PKG_CONFIG_SYSROOT_DIR="$prefix"
    export CPATH="$prefix/usr/include:$prefix/usr/include/x86_64-linux-gnu${CPATH:+:$CPATH}"
    # Debian 12 still installs some libraries (readline, bz2) under /lib.
    local libdirs="$prefix/usr/lib/x86_64-linux-gnu:$prefix/lib/x86_64-linux-gnu"
    export LIBRARY_PATH="$libdirs${LIBRARY_PATH:+:$LIBRARY_PATH}"
    export LD_LIBRARY_PATH="$libdirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export PATH="$prefix/usr/bin:$PATH"  # pkg-config (pkgconf)
    media=OFF
    r "- build dependencies: $BUNDLE (needs glibc >= $need)"
    r "- **built without media support** (-DKINEMA_WITH_MEDIA=OFF: the bundle carries no FFmpeg/OpenCV):"
    r "  no video decoding, so tests that need the synthetic videos report themselves skipped"
  else
    r "- build dependencies: the system's"
  fi
  r ""
  r "## Build"
  r ""
  local t0=$SECONDS
  if cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$cmake_prefix" -DKINEMA_WITH_MEDIA=$media > "$out/logs/configure.log" 2>&1 &&
     cmake --build "$build" -j "$(nproc)" > "$out/logs/build.log" 2>&1; then
    r "- built in $((SECONDS - t0)) s into $build: \`$("$build/kinema" --version)\`"
    r "- CUDA objects linked: $(ls "$build"/ops/CMakeFiles/kinema_ops.dir/cuda/ 2>/dev/null | grep -c '\.o$') (ops/cuda)"
  else
    r "- **build failed** after $((SECONDS - t0)) s: see logs/configure.log, logs/build.log"
    log "build failed; see $out/logs"
    return 1
  fi

  r ""
  r "## CUDA tests (ctest -L cuda)"
  r ""
  ctest --test-dir "$build" -L cuda --output-on-failure -V > "$out/logs/cuda_tests.log" 2>&1 || failures=$((failures + 1))
  r '```'
  grep -E 'Test +#|skipped:|tests passed|tests failed' "$out/logs/cuda_tests.log" | sed 's/^[0-9]*: //' >> "$report" || true
  r '```'
  if [ -z "$gpu" ]; then needs_gpu+=("the CUDA tests (each skipped above)"); fi

  r ""
  r "## Benchmarks"
  r ""
  # One benchmark script: on a GPU its markdown tables go into the report; without
  # one (tiny sizes on the CPU) a line saying that it ran and how many rows it gave.
  bench() {
    local name=$1 rows=$2 what=$3
    shift 3
    if "$py" "$@" > "$out/logs/$name.md" 2> "$out/logs/$name.log"; then
      if [ -n "$gpu" ]; then cat "$out/logs/$name.md" >> "$report"
      else r "- $what: ran, $(grep -c "$rows" "$out/logs/$name.md") rows (logs/$name.md)"; fi
    else
      r "- **$what failed**: see logs/$name.log"
      failures=$((failures + 1))
    fi
  }
  local ops=(scripts/bench/gpu/bench_ops_gpu.py --lib "$build/ops/libkinema_ops.so" --json "$out/bench_ops.json")
  if [ -n "$gpu" ]; then
    r "### Operators"
    r ""
    r "On $gpu, median of 20 alternating runs (method: scripts/bench/gpu/bench_ops_gpu.py)."
    r ""
    bench bench_ops '^| [a-z]' "bench_ops_gpu.py" "${ops[@]}" --device cuda
  else
    r "No GPU: the benchmark scripts ran on the CPU at tiny sizes to exercise them (not figures)."
    r ""
    bench bench_ops '^| [a-z]' "bench_ops_gpu.py --device cpu --small" "${ops[@]}" --device cpu --small --reps 1
    needs_gpu+=("the GPU benchmarks: roi_align vs torchvision, linear_assignment 4096 x 20x33 (goal <= 1 ms on an H100), rwa/grounding similarity vs naive (time, peak memory)")
  fi

  # The ViT-B/16 video encoder from Lua vs PyTorch eager, and STOA's base training step.
  local vit=(scripts/bench/models/run_bench_video_encoder.py --build "$build" --kinema "$build/kinema" --lua --no-cxx
             --peers "$py" --amp bf16)
  local stoa=(scripts/bench/train/run.py --kinema "$build/kinema" --recipes stoa --inputs tensors
              --data "$out/bench_train_synth")
  if [ -n "$gpu" ]; then
    vit+=(--configs base --device cuda --iters 10 --warmup 3 --threads 4)
    stoa+=(--device cuda --base-only --base-batch 8 --base-steps 10 --base-warmup 3 --threads 4)
    local vit_what="run_bench_video_encoder.py --configs base --device cuda"
    local stoa_what="train/run.py --recipes stoa --device cuda, base preset, batch 8"
    r ""
    r "### ViT-B/16 video encoder, batch 2 x 8 frames x 224^2, forward+backward, bf16 autocast"
    r ""
    r "kinema from Lua vs PyTorch eager on $gpu (method: scripts/bench/models/run_bench_video_encoder.py)."
    r ""
  else
    vit+=(--configs tiny --device cpu --iters 1 --warmup 1 --threads 2)
    stoa+=(--device cpu --rounds 1 --steps 1 --warmup 1 --batch 4 --threads 2)
    local vit_what="run_bench_video_encoder.py --configs tiny --device cpu --amp bf16 --lua --no-cxx"
    local stoa_what="train/run.py --recipes stoa --inputs tensors --device cpu, tiny preset, batch 4"
  fi
  bench bench_vit '^| tiny' "$vit_what" "${vit[@]}"
  if [ -n "$gpu" ]; then
    r ""
    r "### STOA base preset, training step: kinema alone (no PyTorch STOA peer exists)"
    r ""
    r "Batch 8, the recipe's bf16 autocast, AdamW, on random tensors of the loader's shapes (no video decoding;"
    r "the loader has its own benchmark, scripts/bench/loader) (method: scripts/bench/train/run.py)."
    r ""
  fi
  bench bench_train '^| stoa' "$stoa_what" "${stoa[@]}"
  if [ -z "$gpu" ]; then
    needs_gpu+=("the ViT-B/16 video encoder 2 x 8 x 224^2 forward+backward under bf16 autocast, kinema from Lua vs PyTorch eager (ms/iter, peak GPU memory)")
    needs_gpu+=("the STOA base preset's training clips/s and peak GPU memory (bf16 autocast)")
  fi

  if [ ${#needs_gpu[@]} -gt 0 ]; then
    r ""
    r "## Needs a GPU (not proven by this run)"
    r ""
    for item in "${needs_gpu[@]}"; do r "- $item"; done
  fi
  r ""
  r "Total: $((SECONDS - start)) s; failures: $failures."
  log "report: $report ($((SECONDS - start)) s, $failures failures)"
  [ $failures -eq 0 ]
}

case "${1:-}" in
  check) shift; check "$@" ;;
  bundle) shift; bundle "$@" ;;
  *) usage >&2; exit 2 ;;
esac
