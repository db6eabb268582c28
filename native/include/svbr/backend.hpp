// svbr/backend.hpp: the one interface every inference engine implements (runtime/backends/base.py).
//
// A backend maps network inputs to the network output; normalisation, tiling and colour order live in
// svbr::Deblurrer, so backends stay small and interchangeable.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace svbr {

/// Names of the network's graph inputs and output (ONNX, TensorRT).
inline constexpr const char* kInputImageName = "image";
inline constexpr const char* kInputMapName = "blur_map";
inline constexpr const char* kOutputName = "sharp";

class Backend {
 public:
  virtual ~Backend() = default;
  Backend() = default;
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;

  /// Run the network on a batch of `batch` windows of height × width (multiples of 4).
  /// image: float N×3×H×W RGB in [0, 1]; blur_map: float N×1×H×W, radius / 6 in [0, 1];
  /// sharp: float N×3×H×W written by the backend. All contiguous, host memory.
  virtual void run(const float* image, const float* blur_map, int batch, int height, int width, float* sharp) = 0;

  /// Registry name, e.g. "onnxruntime-cpu".
  const std::string& name() const { return name_; }
  /// Where it runs, e.g. "cpu" or "cuda:0".
  const std::string& device() const { return device_; }
  /// "fp32", "fp16", "int8" (the model's svbr.precision metadata) or "unknown".
  const std::string& precision() const { return precision_; }
  /// Windows per run() call that keep the device busy.
  int preferred_batch_size() const { return preferred_batch_size_; }
  /// The model file it loaded.
  const std::string& model_path() const { return model_path_; }
  /// The model's svbr.* metadata (strings), empty when it has none.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 protected:
  std::string name_, device_ = "cpu", precision_ = "unknown", model_path_;
  int preferred_batch_size_ = 1;
  std::map<std::string, std::string> metadata_;
};

/// Options passed to a backend's constructor (those a backend does not use are ignored).
struct BackendOptions {
  std::optional<int> threads;  ///< intra-op CPU threads (ONNX Runtime); unset = the engine's default
  int device_id = 0;           ///< GPU index (TensorRT)
};

/// Every backend name this build knows, "auto" first (compiled-in ones only).
std::vector<std::string> backend_names();

/// Load `model_path` on the backend called `name`: "onnxruntime-cpu", "tensorrt" or "auto" (TensorRT for
/// .engine/.plan files when compiled in, else ONNX Runtime). Throws BackendUnavailable, ModelError.
std::unique_ptr<Backend> create_backend(const std::string& name, const std::string& model_path,
                                        const BackendOptions& options = {});

/// The model used when none is given: $SVBR_MODEL, else the installed bundled model
/// (<prefix>/share/svbr/svbrnet.onnx), else runtime/models/svbrnet.onnx of the source tree it was built from.
std::string default_model_path();

}  // namespace svbr
