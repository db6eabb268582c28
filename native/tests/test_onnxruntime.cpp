// The ONNX Runtime backend on the bundled model (built only with SVBR_HAVE_ONNXRUNTIME).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "svbr/svbr.hpp"

namespace {
float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  float m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

struct Inputs {
  std::vector<float> image, radius;
};
Inputs make(int h, int w) {
  std::mt19937 rng(7);
  Inputs in{std::vector<float>(h * w * 3), std::vector<float>(h * w)};
  for (auto& v : in.image) v = static_cast<float>(rng() % 256) / 255.0f;
  for (auto& v : in.radius) v = static_cast<float>(rng() % 600) / 100.0f;
  return in;
}

std::vector<float> deblur(svbr::Deblurrer& d, const Inputs& in, int h, int w) {
  std::vector<float> out(h * w * 3);
  d.deblur(svbr::ImageView<const float>{in.image.data(), h, w}, svbr::MapView{in.radius.data(), h, w},
           svbr::ImageView<float>{out.data(), h, w});
  return out;
}
}  // namespace

TEST(OnnxRuntime, LoadsTheBundledModelAndItsMetadata) {
  auto backend = svbr::create_backend("onnxruntime-cpu", SVBR_BUNDLED_MODEL);
  EXPECT_EQ(backend->name(), "onnxruntime-cpu");
  EXPECT_EQ(backend->device(), "cpu");
  EXPECT_EQ(backend->preferred_batch_size(), 1);
  EXPECT_FALSE(backend->precision().empty());
  auto automatic = svbr::create_backend("auto", SVBR_BUNDLED_MODEL);
  EXPECT_EQ(automatic->name(), "onnxruntime-cpu");
}

TEST(OnnxRuntime, TiledEqualsFullFrameOnTheBundledModel) {
  const int h = 61, w = 83;
  const Inputs in = make(h, w);
  svbr::Deblurrer full(SVBR_BUNDLED_MODEL, "onnxruntime-cpu", {std::nullopt, std::nullopt, 1});
  svbr::Deblurrer tiled(SVBR_BUNDLED_MODEL, "onnxruntime-cpu", {32, std::nullopt, 1});
  svbr::Deblurrer batched(SVBR_BUNDLED_MODEL, "onnxruntime-cpu", {32, std::nullopt, 3});
  ASSERT_EQ(tiled.count_tiles(h, w), 6u);
  const auto a = deblur(full, in, h, w), b = deblur(tiled, in, h, w), c = deblur(batched, in, h, w);
  EXPECT_LE(max_abs_diff(a, b), 1e-5f);  // the Python runtime's bound (tests/test_tiling.py)
  EXPECT_LE(max_abs_diff(b, c), 1e-5f);
  float lo = 1, hi = 0;
  for (float v : a) lo = std::min(lo, v), hi = std::max(hi, v);
  EXPECT_GE(lo, 0.0f);
  EXPECT_LE(hi, 1.0f);
}

TEST(OnnxRuntime, ClearErrors) {
  EXPECT_THROW(svbr::create_backend("onnxruntime-cpu", "/nonexistent.onnx"), svbr::ModelError);
  // a file that is not an ONNX model
  const std::string junk = std::string(SVBR_BINARY_DIR) + "/junk.onnx";
  std::vector<float> zeros(16, 0.0f);
  svbr::save_npy(junk, zeros.data(), {16});
  EXPECT_THROW(svbr::create_backend("onnxruntime-cpu", junk), svbr::ModelError);
  svbr::BackendOptions bad;
  bad.threads = -1;
  EXPECT_THROW(svbr::create_backend("onnxruntime-cpu", SVBR_BUNDLED_MODEL, bad), svbr::InvalidInput);
}
