# Use ccache when present. Precompiled headers need the sloppiness settings
# below or ccache refuses to cache any compile that uses them.
find_program(KINEMA_CCACHE ccache)
if(KINEMA_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  # BASEDIR makes paths relative so that a fresh clone elsewhere hits the cache.
  set(_ccache ${CMAKE_COMMAND} -E env
      CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
      CCACHE_BASEDIR=${CMAKE_SOURCE_DIR}
      ${KINEMA_CCACHE})
  set(CMAKE_C_COMPILER_LAUNCHER ${_ccache})
  set(CMAKE_CXX_COMPILER_LAUNCHER ${_ccache})
  set(CMAKE_CUDA_COMPILER_LAUNCHER ${KINEMA_CCACHE})
  message(STATUS "kinema: using ccache (${KINEMA_CCACHE})")
endif()
