// ONNX Runtime backend (C++ API, CPU execution provider): runtime/backends/onnxruntime_backend.py.
#include <onnxruntime_cxx_api.h>

#include <array>
#include <set>
#include <string>

#include "svbr/backend.hpp"
#include "svbr/errors.hpp"

namespace svbr {

namespace {

Ort::Env& ort_env() {
  static Ort::Env env(ORT_LOGGING_LEVEL_WARNING, "svbr");
  return env;
}

class OnnxRuntimeBackend final : public Backend {
 public:
  OnnxRuntimeBackend(const std::string& model_path, const BackendOptions& options) {
    name_ = "onnxruntime-cpu";
    device_ = "cpu";
    model_path_ = model_path;
    preferred_batch_size_ = 1;
    Ort::SessionOptions session_options;
    session_options.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
    if (options.threads) {
      if (*options.threads < 0) throw InvalidInput("threads must be >= 0, got " + std::to_string(*options.threads));
      session_options.SetIntraOpNumThreads(*options.threads);
    }
    try {
      session_ = Ort::Session(ort_env(), model_path.c_str(), session_options);
    } catch (const Ort::Exception& e) {
      throw ModelError("ONNX Runtime cannot load " + model_path + ": " + e.what());
    }
    Ort::AllocatorWithDefaultOptions allocator;
    std::set<std::string> inputs, outputs;
    for (std::size_t i = 0; i < session_.GetInputCount(); ++i)
      inputs.insert(session_.GetInputNameAllocated(i, allocator).get());
    for (std::size_t i = 0; i < session_.GetOutputCount(); ++i)
      outputs.insert(session_.GetOutputNameAllocated(i, allocator).get());
    if (inputs != std::set<std::string>{kInputImageName, kInputMapName} || !outputs.count(kOutputName)) {
      std::string found;
      for (const auto& n : inputs) found += (found.empty() ? "" : ", ") + n;
      throw ModelError(model_path + " is not an SVBR-Net model: inputs [" + found + "]");
    }
    Ort::ModelMetadata meta = session_.GetModelMetadata();
    for (const auto& key : meta.GetCustomMetadataMapKeysAllocated(allocator)) {
      auto value = meta.LookupCustomMetadataMapAllocated(key.get(), allocator);
      metadata_[key.get()] = value ? value.get() : "";
    }
    auto p = metadata_.find("svbr.precision");
    precision_ = p != metadata_.end() ? p->second : "fp32";  // Python also inspects the graph when this is absent
  }

  void run(const float* image, const float* blur_map, int batch, int height, int width, float* sharp) override {
    if (batch < 1 || height < 1 || width < 1 || height % 4 || width % 4)
      throw InvalidInput("network inputs must be N×C×H×W with N >= 1 and H, W positive multiples of 4, got N=" +
                         std::to_string(batch) + " H=" + std::to_string(height) + " W=" + std::to_string(width));
    const std::array<int64_t, 4> image_shape{batch, 3, height, width}, map_shape{batch, 1, height, width};
    const std::size_t plane = static_cast<std::size_t>(height) * width;
    Ort::MemoryInfo memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
    std::array<Ort::Value, 2> inputs{
        Ort::Value::CreateTensor<float>(memory, const_cast<float*>(image), batch * 3 * plane, image_shape.data(), 4),
        Ort::Value::CreateTensor<float>(memory, const_cast<float*>(blur_map), batch * plane, map_shape.data(), 4)};
    Ort::Value output =
        Ort::Value::CreateTensor<float>(memory, sharp, batch * 3 * plane, image_shape.data(), 4);  // written in place
    const char* input_names[] = {kInputImageName, kInputMapName};
    const char* output_names[] = {kOutputName};
    try {
      session_.Run(Ort::RunOptions{nullptr}, input_names, inputs.data(), 2, output_names, &output, 1);
    } catch (const Ort::Exception& e) {
      throw Error(std::string("ONNX Runtime failed on ") + model_path_ + ": " + e.what());
    }
  }

 private:
  Ort::Session session_{nullptr};
};

}  // namespace

std::unique_ptr<Backend> make_onnxruntime_backend(const std::string& model_path, const BackendOptions& options) {
  return std::make_unique<OnnxRuntimeBackend>(model_path, options);
}

}  // namespace svbr
