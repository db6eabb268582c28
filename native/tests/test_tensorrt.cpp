// The TensorRT backend on a real engine: SVBR_TEST_ENGINE=model.engine (from `svbr build-engine`) and, for parity,
// SVBR_TEST_ONNX=the ONNX model it was built from. Exits 77 (ctest: skipped) when TensorRT was not compiled in or
// no engine is given.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>

#include "svbr/svbr.hpp"

int main() {
#if !SVBR_HAVE_TENSORRT
  std::printf("SKIP: this build has no TensorRT backend (TensorRT was not found at configure time)\n");
  return 77;
#else
  const char* engine = std::getenv("SVBR_TEST_ENGINE");
  if (!engine || !*engine) {
    std::printf("SKIP: set SVBR_TEST_ENGINE to an engine built by `svbr build-engine` to test the TensorRT backend\n");
    return 77;
  }
  try {
    const int h = 96, w = 120;
    std::mt19937 rng(9);
    std::vector<std::uint8_t> image(h * w * 3);
    std::vector<float> radius(h * w);
    for (auto& v : image) v = static_cast<std::uint8_t>(rng() % 256);
    for (auto& v : radius) v = static_cast<float>(rng() % 600) / 100.0f;
    svbr::Deblurrer trt(engine, "tensorrt", {64});
    const auto a = trt.deblur(image.data(), h, w, radius.data());
    std::printf("tensorrt: %s, precision %s, batch %d\n", trt.backend().device().c_str(),
                trt.backend().precision().c_str(), trt.batch_size());
    const char* onnx = std::getenv("SVBR_TEST_ONNX");
    if (onnx && *onnx) {
      svbr::Deblurrer ort(onnx, "onnxruntime-cpu", {64});
      const auto b = ort.deblur(image.data(), h, w, radius.data());
      int worst = 0;
      double sum = 0;
      for (std::size_t i = 0; i < a.size(); ++i) {
        const int d = std::abs(int(a[i]) - int(b[i]));
        worst = std::max(worst, d);
        sum += d;
      }
      std::printf("tensorrt vs onnxruntime-cpu: max |diff| %d levels, mean %.4f\n", worst, sum / a.size());
      if (worst > 8) return 1;  // FP32 engines differ by float rounding only; FP16/INT8 need statistical bounds
    }
  } catch (const svbr::Error& e) {
    std::printf("FAIL: %s\n", e.what());
    return 1;
  }
  std::printf("PASSED\n");
  return 0;
#endif
}
