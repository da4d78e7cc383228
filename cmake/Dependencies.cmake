# Every external dependency is found here, once, so the layers share one view.
find_package(PkgConfig REQUIRED)

# LibTorch: Debian's libtorch-dev 1.13 (CPU) by default, or the LibTorch of a
# PyTorch 2.x install (CUDA-enabled from PyPI): scripts/dev.sh --torch passes
# -DCMAKE_PREFIX_PATH=$(python -c 'import torch; print(torch.utils.cmake_prefix_path)').
# GPU generations the CUDA kernels are built for, in Torch's own variable (its
# CUDA set-up turns it into nvcc flags): A100, H100, B200 and PTX for newer
# ones. Torch's default would probe the GPU or list archs CUDA 13 dropped.
if(NOT DEFINED TORCH_CUDA_ARCH_LIST AND NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST})
  set(TORCH_CUDA_ARCH_LIST "8.0;9.0;10.0+PTX")
endif()
find_package(Torch REQUIRED)
string(REPLACE " " ";" _torch_flags "${TORCH_CXX_FLAGS}")
add_compile_options(${_torch_flags})
list(GET TORCH_INCLUDE_DIRS 0 _torch_include)
get_filename_component(KINEMA_TORCH_PREFIX "${_torch_include}" DIRECTORY)
message(STATUS "kinema: LibTorch ${Torch_VERSION} from ${KINEMA_TORCH_PREFIX}")
# TorchConfig finds c10 and others with find_library, which searches the system
# folders first: where Debian's libtorch-dev is installed, a PyPI torch was
# linked together with Debian's libc10. Every library the chosen LibTorch has
# comes from its own lib/ folder.
set(_kinema_torch_libs)
foreach(_lib IN LISTS TORCH_LIBRARIES)
  if(IS_ABSOLUTE "${_lib}")
    string(FIND "${_lib}" "${KINEMA_TORCH_PREFIX}/" _at)
    get_filename_component(_name "${_lib}" NAME)
    if(NOT _at EQUAL 0 AND EXISTS "${KINEMA_TORCH_PREFIX}/lib/${_name}")
      set(_lib "${KINEMA_TORCH_PREFIX}/lib/${_name}")
    endif()
  endif()
  list(APPEND _kinema_torch_libs "${_lib}")
endforeach()
set(TORCH_LIBRARIES ${_kinema_torch_libs})

# Debian's C++ libraries (OpenCV, FFmpeg's C++ users, cxxopts, ...) use the
# C++11 std::string ABI. PyPI wheels before 2.7 were built with the old one,
# so strings could not cross between them and kinema: refuse such a LibTorch
# here instead of failing at link time with undefined std::__cxx11 symbols.
if(TORCH_CXX_FLAGS MATCHES "_GLIBCXX_USE_CXX11_ABI=0")
  message(FATAL_ERROR
    "kinema: this LibTorch (${Torch_VERSION}, ${KINEMA_TORCH_PREFIX}) uses the pre-C++11 std::string ABI "
    "(_GLIBCXX_USE_CXX11_ABI=0), which the system's C++ libraries (OpenCV, SentencePiece) do not. Use "
    "PyTorch >= 2.7 from PyPI (C++11 ABI) or the cxx11-abi LibTorch archive.")
endif()

set(KINEMA_WITH_CUDA OFF)
if(CAFFE2_USE_CUDA OR TORCH_CUDA_LIBRARIES)
  set(KINEMA_WITH_CUDA ON)
  enable_language(CUDA)
  # A PyPI torch brings its CUDA libraries (runtime, NCCL, cuDNN, ...) in the
  # wheel's nvidia/*/lib, newer than the toolkit's: libtorch_cuda.so finds
  # them through its own RPATH. Our binaries search there first as well, or
  # the linker resolves libtorch_cuda's libnccl.so.2 to the toolkit's older
  # copy (undefined ncclCommGrow, ...) and the process would run on the
  # toolkit's libcudart instead of the one torch was built with.
  get_filename_component(_site_packages "${KINEMA_TORCH_PREFIX}" DIRECTORY)
  file(GLOB KINEMA_WHEEL_CUDA_LIBS LIST_DIRECTORIES true "${_site_packages}/nvidia/*/lib")
  if(KINEMA_WHEEL_CUDA_LIBS)
    list(JOIN KINEMA_WHEEL_CUDA_LIBS ":" _wheel_rpath)
    set(KINEMA_WHEEL_RPATH "LINKER:-rpath,${_wheel_rpath}")
  endif()
  message(STATUS "kinema: CUDA-enabled Torch found (nvcc ${CMAKE_CUDA_COMPILER_VERSION}), building and "
                 "linking the CUDA kernels for ${TORCH_CUDA_ARCH_LIST}")
else()
  message(STATUS "kinema: CPU-only Torch, building without CUDA kernels")
  find_program(KINEMA_NVCC nvcc PATHS /usr/local/cuda/bin)
endif()

pkg_check_modules(LUAJIT REQUIRED IMPORTED_TARGET luajit)
# Video decoding/encoding (FFmpeg) and PNG frames in run reports (OpenCV). OFF
# builds without both (every video or PNG entry point then fails with the
# reason): the GPU check's bundle cannot carry FFmpeg's codec libraries.
option(KINEMA_WITH_MEDIA "Build video decoding (FFmpeg) and PNG encoding (OpenCV)" ON)
if(KINEMA_WITH_MEDIA)
  pkg_check_modules(FFMPEG REQUIRED IMPORTED_TARGET libavformat libavcodec libswscale libavutil)
  find_package(OpenCV REQUIRED COMPONENTS core imgproc imgcodecs)
else()
  message(STATUS "kinema: KINEMA_WITH_MEDIA=OFF, building without FFmpeg and OpenCV (no video, no PNG)")
endif()
pkg_check_modules(SENTENCEPIECE REQUIRED IMPORTED_TARGET sentencepiece)
pkg_check_modules(LIBZIP REQUIRED IMPORTED_TARGET libzip)
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
if(KINEMA_WHEEL_RPATH)
  target_link_options(kinema_torch INTERFACE "${KINEMA_WHEEL_RPATH}")
endif()
# ATen's at::parallel_for is a header template: with LibTorch built on OpenMP
# (both lines are) our kernels run serially unless we compile with OpenMP too.
# A PyPI LibTorch ships its own libgomp.so.1: link that one, so the process
# has a single OpenMP runtime (two copies share a soname and the loader would
# pick one by search order).
find_package(OpenMP REQUIRED COMPONENTS CXX)
set(KINEMA_TORCH_GOMP "${KINEMA_TORCH_PREFIX}/lib/libgomp.so.1")
if(EXISTS "${KINEMA_TORCH_GOMP}")
  target_compile_options(kinema_torch INTERFACE $<$<COMPILE_LANGUAGE:CXX>:${OpenMP_CXX_FLAGS}>)
  target_link_libraries(kinema_torch INTERFACE "${KINEMA_TORCH_GOMP}")
else()
  target_link_libraries(kinema_torch INTERFACE OpenMP::OpenMP_CXX)
endif()
