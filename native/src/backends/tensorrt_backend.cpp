// TensorRT backend: runtime API only (deserialize, named tensors, setInputShape, setTensorAddress, enqueueV3),
// TensorRT >= 10 (JetPack 6: 10.3; desktop: 10.x and 11.x). Engines come from `svbr build-engine`, with the JSON
// sidecar ENGINE.json holding the model's svbr.* metadata (runtime/backends/tensorrt_backend.py).
//
// Compiled only when CMake finds TensorRT (SVBR_WITH_TENSORRT=AUTO|ON). It was written against the public TensorRT
// 10/11 API reference and compiled here only against a stub header (SVBR_TENSORRT_SYNTAX_CHECK): run
// `ctest -L tensorrt` with SVBR_TEST_ENGINE set on a TensorRT machine before relying on it.
#include <NvInferRuntime.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#if __has_include(<nlohmann/json.hpp>)
#include <nlohmann/json.hpp>
#define SVBR_TRT_SIDECAR 1
#else
#define SVBR_TRT_SIDECAR 0
#endif

#include "svbr/backend.hpp"
#include "svbr/errors.hpp"

#if defined(TRT_MAJOR_ENTERPRISE)  // TensorRT >= 10.11 names its version macros TRT_*_ENTERPRISE
#define SVBR_TRT_MAJOR TRT_MAJOR_ENTERPRISE
#elif defined(NV_TENSORRT_MAJOR)
#define SVBR_TRT_MAJOR NV_TENSORRT_MAJOR
#else
#error "cannot tell the TensorRT version (no NV_TENSORRT_MAJOR / TRT_MAJOR_ENTERPRISE)"
#endif
#if SVBR_TRT_MAJOR < 10
#error "svbr's TensorRT backend needs TensorRT >= 10 (named tensors, enqueueV3)"
#endif

namespace svbr {

namespace {

class Logger final : public nvinfer1::ILogger {
 public:
  void log(Severity severity, const char* message) noexcept override {
    if (severity <= Severity::kWARNING) std::fprintf(stderr, "svbr: TensorRT: %s\n", message);
  }
};

void check_cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess) throw Error(std::string(what) + " failed: " + cudaGetErrorString(status));
}

std::string dims_str(const nvinfer1::Dims& d) {
  std::string s;
  for (int i = 0; i < d.nbDims; ++i) s += (i ? "×" : "") + std::to_string(d.d[i]);
  return s;
}

class TensorRTBackend final : public Backend {
 public:
  TensorRTBackend(const std::string& model_path, const BackendOptions& options) {
    namespace fs = std::filesystem;
    const std::string ext = fs::path(model_path).extension().string();
    if (ext == ".onnx")
      throw BackendUnavailable("the tensorrt backend runs engines (.engine/.plan) built by `svbr build-engine`, not " +
                               model_path + "; build one with `svbr build-engine --onnx " + model_path + " --out " +
                               fs::path(model_path).replace_extension(".engine").string() + "`");
    name_ = "tensorrt";
    model_path_ = model_path;
    device_ = "cuda:" + std::to_string(options.device_id);
    std::string built_with;
    read_sidecar(model_path + ".json", built_with);

    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices <= options.device_id)
      throw BackendUnavailable("no CUDA device " + std::to_string(options.device_id) + " for the tensorrt backend");
    check_cuda(cudaSetDevice(options.device_id), "cudaSetDevice");
    device_id_ = options.device_id;

    std::ifstream file(model_path, std::ios::binary);
    const std::vector<char> blob((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    if (blob.empty()) throw ModelError("cannot read the TensorRT engine " + model_path);
    runtime_.reset(nvinfer1::createInferRuntime(logger_));
    if (!runtime_) throw BackendUnavailable("TensorRT: createInferRuntime failed");
    engine_.reset(runtime_->deserializeCudaEngine(blob.data(), blob.size()));
    if (!engine_)
      throw ModelError("TensorRT " + std::to_string(getInferLibVersion()) + " could not load " + model_path +
                       (built_with.empty() ? "" : " (built with TensorRT " + built_with + ")") +
                       ": engines only run with the TensorRT version and GPU model that built them; rebuild with "
                       "`svbr build-engine`");
    check_io();
    const nvinfer1::Dims opt = engine_->getProfileShape(kInputImageName, 0, nvinfer1::OptProfileSelector::kOPT);
    min_ = engine_->getProfileShape(kInputImageName, 0, nvinfer1::OptProfileSelector::kMIN);
    max_ = engine_->getProfileShape(kInputImageName, 0, nvinfer1::OptProfileSelector::kMAX);
    preferred_batch_size_ = static_cast<int>(opt.d[0]);  // the batch the engine was tuned for
    const std::size_t image_elems = static_cast<std::size_t>(max_.d[0]) * 3 * max_.d[2] * max_.d[3];
    check_cuda(cudaMalloc(&d_image_, image_elems * sizeof(float)), "cudaMalloc");
    check_cuda(cudaMalloc(&d_map_, image_elems / 3 * sizeof(float)), "cudaMalloc");
    check_cuda(cudaMalloc(&d_sharp_, image_elems * sizeof(float)), "cudaMalloc");
    check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    context_.reset(engine_->createExecutionContext());
    if (!context_) throw Error("TensorRT: createExecutionContext failed (out of GPU memory?)");
    // addresses never change: bound once
    if (!context_->setTensorAddress(kInputImageName, d_image_) || !context_->setTensorAddress(kInputMapName, d_map_) ||
        !context_->setTensorAddress(kOutputName, d_sharp_))
      throw Error("TensorRT: setTensorAddress failed");
  }

  ~TensorRTBackend() override {
    context_.reset();
    engine_.reset();
    runtime_.reset();
    if (d_image_) cudaFree(d_image_);
    if (d_map_) cudaFree(d_map_);
    if (d_sharp_) cudaFree(d_sharp_);
    if (stream_) cudaStreamDestroy(stream_);
  }

  void run(const float* image, const float* blur_map, int batch, int height, int width, float* sharp) override {
    if (height < min_.d[2] || height > max_.d[2] || width < min_.d[3] || width > max_.d[3] || batch < 1)
      throw InvalidInput("input " + std::to_string(batch) + "×3×" + std::to_string(height) + "×" +
                         std::to_string(width) + " is outside the engine's profile (" + dims_str(min_) + " .. " +
                         dims_str(max_) + "): use the tile, halo and batch the engine was built for "
                         "(svbr build-engine --tile/--halo/--max-batch)");
    check_cuda(cudaSetDevice(device_id_), "cudaSetDevice");
    const std::size_t plane = static_cast<std::size_t>(height) * width;
    const int most = static_cast<int>(max_.d[0]);
    for (int first = 0; first < batch; first += most) {  // batches larger than the profile run in chunks
      const int n = std::max<int>(static_cast<int>(min_.d[0]), std::min(most, batch - first));
      const int real = std::min(n, batch - first);
      if (!context_->setInputShape(kInputImageName, nvinfer1::Dims4{n, 3, height, width}) ||
          !context_->setInputShape(kInputMapName, nvinfer1::Dims4{n, 1, height, width}))
        throw InvalidInput("TensorRT rejected input shape " + std::to_string(n) + "×3×" + std::to_string(height) +
                           "×" + std::to_string(width));
      check_cuda(cudaMemcpyAsync(d_image_, image + first * 3 * plane, real * 3 * plane * sizeof(float),
                                 cudaMemcpyHostToDevice, stream_), "cudaMemcpyAsync");
      check_cuda(cudaMemcpyAsync(d_map_, blur_map + first * plane, real * plane * sizeof(float),
                                 cudaMemcpyHostToDevice, stream_), "cudaMemcpyAsync");
      if (!context_->enqueueV3(stream_)) throw Error("TensorRT execution failed (see the TensorRT log above)");
      check_cuda(cudaMemcpyAsync(sharp + first * 3 * plane, d_sharp_, real * 3 * plane * sizeof(float),
                                 cudaMemcpyDeviceToHost, stream_), "cudaMemcpyAsync");
      check_cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
    }
  }

 private:
  void read_sidecar(const std::string& path, std::string& built_with) {
    if (!std::filesystem::is_regular_file(path)) return;  // engines built elsewhere have none
#if SVBR_TRT_SIDECAR
    try {
      std::ifstream file(path);
      const nlohmann::json sidecar = nlohmann::json::parse(file);
      if (sidecar.contains("svbr"))
        for (const auto& [key, value] : sidecar["svbr"].items())
          metadata_[key] = value.is_string() ? value.get<std::string>() : value.dump();
      if (sidecar.contains("tensorrt") && sidecar["tensorrt"].is_string()) built_with = sidecar["tensorrt"];
    } catch (const nlohmann::json::exception& e) {
      throw ModelError("cannot read the engine sidecar " + path + ": " + e.what());
    }
#endif
    auto p = metadata_.find("svbr.precision");
    precision_ = p != metadata_.end() ? p->second : "unknown";
  }

  void check_io() const {
    std::vector<std::string> inputs, outputs;
    for (int i = 0; i < engine_->getNbIOTensors(); ++i) {
      const char* name = engine_->getIOTensorName(i);
      (engine_->getTensorIOMode(name) == nvinfer1::TensorIOMode::kINPUT ? inputs : outputs).push_back(name);
      if (engine_->getTensorDataType(name) != nvinfer1::DataType::kFLOAT)
        throw ModelError(model_path_ + ": tensor " + name + " is not float32; svbr engines keep float32 I/O");
    }
    const bool ok = inputs.size() == 2 && outputs.size() == 1 && outputs[0] == kOutputName &&
                    ((inputs[0] == kInputImageName && inputs[1] == kInputMapName) ||
                     (inputs[1] == kInputImageName && inputs[0] == kInputMapName));
    if (!ok) {
      std::string found;
      for (const auto& n : inputs) found += (found.empty() ? "" : ", ") + n;
      throw ModelError(model_path_ + " is not an SVBR-Net engine: inputs [" + found + "]");
    }
  }

  Logger logger_;  // must outlive runtime_, engine_, context_
  std::unique_ptr<nvinfer1::IRuntime> runtime_;
  std::unique_ptr<nvinfer1::ICudaEngine> engine_;
  std::unique_ptr<nvinfer1::IExecutionContext> context_;
  nvinfer1::Dims min_{}, max_{};
  void *d_image_ = nullptr, *d_map_ = nullptr, *d_sharp_ = nullptr;
  cudaStream_t stream_ = nullptr;
  int device_id_ = 0;
};

}  // namespace

std::unique_ptr<Backend> make_tensorrt_backend(const std::string& model_path, const BackendOptions& options) {
  return std::make_unique<TensorRTBackend>(model_path, options);
}

}  // namespace svbr
