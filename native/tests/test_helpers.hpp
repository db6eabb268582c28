// Shared helpers for the svbr tests.
#pragma once

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "svbr/backend.hpp"

namespace svbr::test {

inline nlohmann::json load_vectors(const std::string& name) {
  std::ifstream file(std::string(SVBR_VECTOR_DIR) + "/" + name);
  if (!file) throw std::runtime_error("missing test vectors " + name + " (python native/tests/make_vectors.py)");
  return nlohmann::json::parse(file);
}

/// A backend computing a known function in plain C++: per channel, a box mean of radius `radius` over the window
/// (zeros outside it) of the image, plus 0.01 × map. Its receptive-field half-width is `radius`.
class BoxBackend : public Backend {
 public:
  explicit BoxBackend(int radius = 3, std::map<std::string, std::string> metadata = {}, int preferred = 1)
      : radius_(radius) {
    name_ = "fake-box";
    model_path_ = "fake.onnx";
    metadata_ = std::move(metadata);
    preferred_batch_size_ = preferred;
  }
  void run(const float* image, const float* blur_map, int batch, int height, int width, float* sharp) override {
    ++calls;
    windows += batch;
    last_height = height;
    last_width = width;
    const std::size_t plane = static_cast<std::size_t>(height) * width;
    for (int n = 0; n < batch; ++n)
      for (int k = 0; k < 3; ++k) {
        const float* in = image + (n * 3 + k) * plane;
        const float* map = blur_map + n * plane;
        float* out = sharp + (n * 3 + k) * plane;
        for (int y = 0; y < height; ++y)
          for (int x = 0; x < width; ++x) {
            float sum = 0;
            for (int dy = -radius_; dy <= radius_; ++dy)
              for (int dx = -radius_; dx <= radius_; ++dx) {
                const int yy = y + dy, xx = x + dx;
                if (yy >= 0 && yy < height && xx >= 0 && xx < width) sum += in[yy * width + xx];
              }
            out[y * width + x] = sum / float((2 * radius_ + 1) * (2 * radius_ + 1)) + 0.01f * map[y * width + x];
          }
      }
  }
  int calls = 0, windows = 0, last_height = 0, last_width = 0;

 private:
  int radius_;
};

}  // namespace svbr::test
