// create_backend(): the compiled-in backends by registry name (runtime/backends/__init__.py).
#include <filesystem>
#include <string>

#include "svbr/backend.hpp"
#include "svbr/config.hpp"
#include "svbr/errors.hpp"

namespace svbr {

#if SVBR_HAVE_ONNXRUNTIME
std::unique_ptr<Backend> make_onnxruntime_backend(const std::string& model_path, const BackendOptions& options);
#endif
#if SVBR_HAVE_TENSORRT
std::unique_ptr<Backend> make_tensorrt_backend(const std::string& model_path, const BackendOptions& options);
#endif

std::vector<std::string> backend_names() {
  std::vector<std::string> names{"auto"};
#if SVBR_HAVE_TENSORRT
  names.push_back("tensorrt");
#endif
#if SVBR_HAVE_ONNXRUNTIME
  names.push_back("onnxruntime-cpu");
#endif
  return names;
}

namespace {
bool is_engine(const std::string& path) {
  const std::string ext = std::filesystem::path(path).extension().string();
  return ext == ".engine" || ext == ".plan" || ext == ".trt";
}

std::string joined_names() {
  std::string out;
  for (const auto& n : backend_names()) out += (out.empty() ? "" : ", ") + n;
  return out;
}
}  // namespace

std::unique_ptr<Backend> create_backend(const std::string& name, const std::string& model_path,
                                        const BackendOptions& options) {
  (void)options;  // unused when no backend is compiled in
  if (!std::filesystem::is_regular_file(model_path)) throw ModelError("model not found: " + model_path);
  std::string chosen = name;
  if (name == "auto") chosen = is_engine(model_path) ? "tensorrt" : "onnxruntime-cpu";
  if (chosen == "onnxruntime-cpu") {
#if SVBR_HAVE_ONNXRUNTIME
    if (is_engine(model_path))
      throw ModelError("onnxruntime-cpu runs ONNX models, not TensorRT engines: " + model_path);
    return make_onnxruntime_backend(model_path, options);
#else
    throw BackendUnavailable("backend onnxruntime-cpu was not compiled into this build of svbr "
                             "(configure with -DSVBR_WITH_ONNXRUNTIME=ON); available: " + joined_names());
#endif
  }
  if (chosen == "tensorrt") {
#if SVBR_HAVE_TENSORRT
    return make_tensorrt_backend(model_path, options);
#else
    throw BackendUnavailable("backend tensorrt was not compiled into this build of svbr (TensorRT was not found at "
                             "configure time; -DSVBR_WITH_TENSORRT=ON -DTensorRT_ROOT=...); available: " +
                             joined_names());
#endif
  }
  throw InvalidInput("unknown backend '" + name + "'; choose from " + joined_names() +
                     " (names of backends not compiled in: onnxruntime-cpu, tensorrt)");
}

}  // namespace svbr
