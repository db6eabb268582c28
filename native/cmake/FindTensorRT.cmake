# FindTensorRT: the TensorRT runtime (nvinfer). Defines TensorRT::nvinfer and TensorRT_VERSION.
# Hints: TensorRT_ROOT (variable or environment), TENSORRT_ROOT (environment), /usr/local/TensorRT.
# JetPack installs headers in /usr/include/aarch64-linux-gnu and libraries in /usr/lib/aarch64-linux-gnu.
set(_trt_hints ${TensorRT_ROOT} $ENV{TensorRT_ROOT} $ENV{TENSORRT_ROOT} /usr/local/TensorRT)
find_path(TensorRT_INCLUDE_DIR NvInferRuntime.h HINTS ${_trt_hints}
  PATH_SUFFIXES include include/${CMAKE_LIBRARY_ARCHITECTURE})
find_library(TensorRT_nvinfer_LIBRARY NAMES nvinfer nvinfer_10 nvinfer_11 HINTS ${_trt_hints}
  PATH_SUFFIXES lib lib64 lib/x64 lib/${CMAKE_LIBRARY_ARCHITECTURE})
if(TensorRT_INCLUDE_DIR AND EXISTS "${TensorRT_INCLUDE_DIR}/NvInferVersion.h")
  file(STRINGS "${TensorRT_INCLUDE_DIR}/NvInferVersion.h" _trt_v
    REGEX "#define +(TRT_[A-Z]+_ENTERPRISE|NV_TENSORRT_(MAJOR|MINOR|PATCH)) ")
  foreach(_p MAJOR MINOR PATCH)
    if(_trt_v MATCHES "TRT_${_p}_ENTERPRISE +([0-9]+)")  # TensorRT >= 10.11
      set(TensorRT_VERSION_${_p} ${CMAKE_MATCH_1})
    elseif(_trt_v MATCHES "NV_TENSORRT_${_p} +([0-9]+)")
      set(TensorRT_VERSION_${_p} ${CMAKE_MATCH_1})
    endif()
  endforeach()
  set(TensorRT_VERSION "${TensorRT_VERSION_MAJOR}.${TensorRT_VERSION_MINOR}.${TensorRT_VERSION_PATCH}")
endif()
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(TensorRT REQUIRED_VARS TensorRT_nvinfer_LIBRARY TensorRT_INCLUDE_DIR
  VERSION_VAR TensorRT_VERSION)
if(TensorRT_FOUND AND NOT TARGET TensorRT::nvinfer)
  add_library(TensorRT::nvinfer UNKNOWN IMPORTED)
  set_target_properties(TensorRT::nvinfer PROPERTIES IMPORTED_LOCATION "${TensorRT_nvinfer_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${TensorRT_INCLUDE_DIR}")
endif()
mark_as_advanced(TensorRT_INCLUDE_DIR TensorRT_nvinfer_LIBRARY)
