# FindONNXRuntime: ONNX Runtime's C/C++ API. Defines the imported target onnxruntime::onnxruntime.
#
# Looked up, in order:
#  1. a system package's CMake config (Debian trixie / Ubuntu: libonnxruntime-dev), unless ONNXRUNTIME_ROOT is given
#     (release tarballs' configs point at lib64/ and include/onnxruntime/, which they lack);
#  2. ONNXRUNTIME_ROOT (variable or environment): a release tarball (include/, lib/), a Debian-style tree
#     (include/onnxruntime/) or the `capi/` folder of the onnxruntime Python wheel (library only; give the headers
#     with -DONNXRuntime_INCLUDE_DIR=..., e.g. from an unpacked libonnxruntime-dev .deb).
# Linking the wheel's library makes C++ results equal the Python runtime's bit for bit (same kernels).
if(NOT ONNXRUNTIME_ROOT AND NOT DEFINED ENV{ONNXRUNTIME_ROOT} AND NOT ONNXRuntime_LIBRARY)
  find_package(onnxruntime CONFIG QUIET)
  if(TARGET onnxruntime::onnxruntime)
    set(ONNXRuntime_FOUND TRUE)
    if(NOT ONNXRuntime_FIND_QUIETLY)
      message(STATUS "Found ONNXRuntime: system package config ${onnxruntime_DIR}")
    endif()
    return()
  endif()
endif()

find_path(ONNXRuntime_INCLUDE_DIR onnxruntime_cxx_api.h
  HINTS ${ONNXRUNTIME_ROOT} ENV ONNXRUNTIME_ROOT
  PATH_SUFFIXES include include/onnxruntime include/onnxruntime/core/session)
find_library(ONNXRuntime_LIBRARY NAMES onnxruntime libonnxruntime.so.1
  HINTS ${ONNXRUNTIME_ROOT} ENV ONNXRUNTIME_ROOT PATH_SUFFIXES lib lib64 capi)
if(NOT ONNXRuntime_LIBRARY)
  set(_ort_root "${ONNXRUNTIME_ROOT}")
  if(NOT _ort_root AND DEFINED ENV{ONNXRUNTIME_ROOT})
    set(_ort_root "$ENV{ONNXRUNTIME_ROOT}")
  endif()
  if(_ort_root)  # a wheel ships only libonnxruntime.so.1.X.Y
    file(GLOB _ort_libs "${_ort_root}/libonnxruntime.so.1.*" "${_ort_root}/capi/libonnxruntime.so.1.*")
    if(_ort_libs)
      list(SORT _ort_libs)
      list(POP_BACK _ort_libs _ort_lib)
      set(ONNXRuntime_LIBRARY "${_ort_lib}" CACHE FILEPATH "ONNX Runtime library" FORCE)
    endif()
  endif()
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(ONNXRuntime REQUIRED_VARS ONNXRuntime_LIBRARY ONNXRuntime_INCLUDE_DIR)

if(ONNXRuntime_FOUND AND NOT TARGET onnxruntime::onnxruntime)
  set(_ort_link "${ONNXRuntime_LIBRARY}")
  get_filename_component(_ort_name "${ONNXRuntime_LIBRARY}" NAME)
  if(_ort_name MATCHES "^libonnxruntime\\.so\\.1\\.")
    # Binaries record the SONAME libonnxruntime.so.1, which a wheel does not ship: link through a symlink with
    # that name, so the loader finds it via the RUNPATH.
    set(_ort_dir "${CMAKE_BINARY_DIR}/onnxruntime-lib")
    file(MAKE_DIRECTORY "${_ort_dir}")
    file(CREATE_LINK "${ONNXRuntime_LIBRARY}" "${_ort_dir}/libonnxruntime.so.1" SYMBOLIC)
    set(_ort_link "${_ort_dir}/libonnxruntime.so.1")
    set(ONNXRuntime_SONAME_LINK "${_ort_link}")  # installed next to libsvbr (a symlink to the wheel's library)
  endif()
  add_library(onnxruntime::onnxruntime SHARED IMPORTED)
  set_target_properties(onnxruntime::onnxruntime PROPERTIES
    IMPORTED_LOCATION "${_ort_link}" INTERFACE_INCLUDE_DIRECTORIES "${ONNXRuntime_INCLUDE_DIR}")
endif()
mark_as_advanced(ONNXRuntime_INCLUDE_DIR ONNXRuntime_LIBRARY)
