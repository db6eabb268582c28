# ctest "install.find_package": install this build to a scratch prefix, build native/examples against it with
# find_package(svbr), run the example app on the installed bundled model.
#   cmake -DBUILD_DIR=... -DPREFIX=... -DEXAMPLE_SRC=... -P TestFindPackage.cmake
file(REMOVE_RECURSE "${PREFIX}" "${PREFIX}-example")
execute_process(COMMAND ${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${PREFIX}" RESULT_VARIABLE rc OUTPUT_QUIET)
if(rc)
  message(FATAL_ERROR "cmake --install failed: ${rc}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -S "${EXAMPLE_SRC}" -B "${PREFIX}-example" "-DCMAKE_PREFIX_PATH=${PREFIX}"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc)
  message(FATAL_ERROR "configuring the example with find_package(svbr) failed:\n${out}\n${err}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build "${PREFIX}-example" RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc)
  message(FATAL_ERROR "building the example failed:\n${out}\n${err}")
endif()
execute_process(COMMAND "${PREFIX}-example/example_app" "${PREFIX}/share/svbr/svbrnet.onnx" RESULT_VARIABLE rc
                OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc)
  message(FATAL_ERROR "example_app failed (${rc}):\n${out}\n${err}")
endif()
message("${out}")
