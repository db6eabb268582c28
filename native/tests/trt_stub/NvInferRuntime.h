// A stub of the TensorRT 10 runtime API: only the declarations src/backends/tensorrt_backend.cpp uses, written from
// NVIDIA's public API reference. For -DSVBR_TENSORRT_SYNTAX_CHECK=ON (compile only, never linked) on machines
// without TensorRT; it cannot catch signature drift in real TensorRT headers.
#pragma once
#include <cstdint>
#include <cuda_runtime_api.h>

#define NV_TENSORRT_MAJOR 10
#define NV_TENSORRT_MINOR 3
#define NV_TENSORRT_PATCH 0

extern "C" int32_t getInferLibVersion() noexcept;

namespace nvinfer1 {
class Dims64 {
 public:
  static constexpr int32_t MAX_DIMS{8};
  int32_t nbDims;
  int64_t d[MAX_DIMS];
};
using Dims = Dims64;
class Dims4 : public Dims {
 public:
  Dims4(int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    nbDims = 4;
    d[0] = d0, d[1] = d1, d[2] = d2, d[3] = d3;
  }
};
enum class DataType : int32_t { kFLOAT = 0, kHALF = 1, kINT8 = 2, kINT32 = 3, kBOOL = 4 };
enum class TensorIOMode : int32_t { kNONE = 0, kINPUT = 1, kOUTPUT = 2 };
enum class OptProfileSelector : int32_t { kMIN = 0, kOPT = 1, kMAX = 2 };

class ILogger {
 public:
  enum class Severity : int32_t { kINTERNAL_ERROR = 0, kERROR = 1, kWARNING = 2, kINFO = 3, kVERBOSE = 4 };
  virtual void log(Severity severity, const char* msg) noexcept = 0;
  virtual ~ILogger() = default;
};

class IExecutionContext {
 public:
  virtual ~IExecutionContext() noexcept = default;
  bool setInputShape(const char* tensorName, const Dims& dims) noexcept;
  bool setTensorAddress(const char* tensorName, void* data) noexcept;
  Dims getTensorShape(const char* tensorName) const noexcept;
  bool enqueueV3(cudaStream_t stream) noexcept;
};

class ICudaEngine {
 public:
  virtual ~ICudaEngine() noexcept = default;
  int32_t getNbIOTensors() const noexcept;
  const char* getIOTensorName(int32_t index) const noexcept;
  TensorIOMode getTensorIOMode(const char* tensorName) const noexcept;
  DataType getTensorDataType(const char* tensorName) const noexcept;
  Dims getProfileShape(const char* tensorName, int32_t profileIndex, OptProfileSelector select) const noexcept;
  IExecutionContext* createExecutionContext() noexcept;
};

class IRuntime {
 public:
  virtual ~IRuntime() noexcept = default;
  ICudaEngine* deserializeCudaEngine(const void* blob, std::size_t size) noexcept;
};

IRuntime* createInferRuntimeStub(ILogger* logger) noexcept;  // real TensorRT: createInferRuntime_INTERNAL
inline IRuntime* createInferRuntime(ILogger& logger) noexcept { return createInferRuntimeStub(&logger); }
}  // namespace nvinfer1
