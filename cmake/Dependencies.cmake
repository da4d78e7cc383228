# Every external dependency is found here, once, so the layers share one view.
find_package(PkgConfig REQUIRED)

# LibTorch: Debian's libtorch-dev (CPU) or a CUDA-enabled one from a PyTorch
# install (pass -DCMAKE_PREFIX_PATH=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')).
find_package(Torch REQUIRED)
string(REPLACE " " ";" _torch_flags "${TORCH_CXX_FLAGS}")
add_compile_options(${_torch_flags})

set(KINEMA_WITH_CUDA OFF)
if(CAFFE2_USE_CUDA OR TORCH_CUDA_LIBRARIES)
  set(KINEMA_WITH_CUDA ON)
  enable_language(CUDA)
  message(STATUS "kinema: CUDA-enabled Torch found, building CUDA kernels")
else()
  message(STATUS "kinema: CPU-only Torch, building without CUDA kernels")
  find_program(KINEMA_NVCC nvcc PATHS /usr/local/cuda/bin)
endif()

pkg_check_modules(LUAJIT REQUIRED IMPORTED_TARGET luajit)
pkg_check_modules(FFMPEG REQUIRED IMPORTED_TARGET libavformat libavcodec libswscale libavutil)
pkg_check_modules(SENTENCEPIECE REQUIRED IMPORTED_TARGET sentencepiece)
pkg_check_modules(LIBZIP REQUIRED IMPORTED_TARGET libzip)
find_package(OpenCV REQUIRED COMPONENTS core imgproc)
find_package(nlohmann_json 3 REQUIRED)
find_package(cxxopts REQUIRED)
find_package(doctest REQUIRED)
find_library(READLINE_LIBRARY readline REQUIRED)
find_path(READLINE_INCLUDE_DIR readline/readline.h REQUIRED)
find_package(Threads REQUIRED)

# tcmalloc for the host process: Lua frees tensors in bursts at collection time,
# which glibc malloc handles poorly (scripts/bench/dispatch: 1-element ops 0.87 ->
# 0.63 us). Optional so a private LibTorch prefix (e.g. on a GPU box) still builds.
pkg_check_modules(TCMALLOC IMPORTED_TARGET libtcmalloc_minimal)
if(NOT TCMALLOC_FOUND)
  message(STATUS "kinema: libtcmalloc_minimal not found, the host uses glibc malloc")
endif()

# Gloo (c10d CPU backend) comes inside libtorch; libgloo-dev provides headers.
find_path(GLOO_INCLUDE_DIR gloo/config.h)

# One interface target carrying Torch for all layers (include dirs as SYSTEM so
# Torch's own warnings do not drown ours).
add_library(kinema_torch INTERFACE)
target_link_libraries(kinema_torch INTERFACE ${TORCH_LIBRARIES})
target_include_directories(kinema_torch SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
# ATen's at::parallel_for is a header template: with LibTorch built on OpenMP
# (Debian's is) our kernels run serially unless we compile with OpenMP too.
find_package(OpenMP REQUIRED COMPONENTS CXX)
target_link_libraries(kinema_torch INTERFACE OpenMP::OpenMP_CXX)
