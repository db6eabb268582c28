// CUDA pre/post kernels equal the CPU path bit for bit. Exits 77 (ctest: skipped) without a CUDA device.
#include <cuda_runtime_api.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "svbr/cuda.hpp"
#include "svbr/svbr.hpp"

namespace {
/// Records the CPU path's network inputs and replies with a fixed pseudo-random output.
class Recorder : public svbr::Backend {
 public:
  Recorder() { name_ = "recorder"; }
  void run(const float* image, const float* map, int batch, int h, int w, float* sharp) override {
    const std::size_t plane = static_cast<std::size_t>(h) * w;
    images.insert(images.end(), image, image + batch * 3 * plane);
    maps.insert(maps.end(), map, map + batch * plane);
    std::mt19937 rng(11 + static_cast<unsigned>(replies.size()));
    for (std::size_t i = 0; i < batch * 3 * plane; ++i) sharp[i] = static_cast<float>(rng() % 1200) / 1000.0f - 0.1f;
    replies.insert(replies.end(), sharp, sharp + batch * 3 * plane);
  }
  std::vector<float> images, maps, replies;
};

#define CHECK(call)                                                                              \
  do {                                                                                           \
    cudaError_t e = (call);                                                                      \
    if (e != cudaSuccess) {                                                                      \
      std::fprintf(stderr, "%s failed: %s\n", #call, cudaGetErrorString(e));                    \
      return 1;                                                                                  \
    }                                                                                            \
  } while (0)
}  // namespace

int main() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("SKIP: no CUDA device (%s)\n", cudaGetErrorString(cudaGetDeviceCount(&devices)));
    return 77;
  }
  const int h = 45, w = 71;
  std::mt19937 rng(5);
  std::vector<std::uint8_t> image(h * w * 3);
  std::vector<float> radius(h * w);
  for (auto& v : image) v = static_cast<std::uint8_t>(rng() % 256);
  for (auto& v : radius) v = static_cast<float>(rng() % 800) / 100.0f;
  auto* recorder = new Recorder();
  svbr::Deblurrer cpu(std::unique_ptr<svbr::Backend>(recorder), {16, 8, 64});
  cpu.set_warning_handler({});
  const auto expected = cpu.deblur(image.data(), h, w, radius.data());
  const svbr::TilePlan plan = cpu.plan(h, w);
  const int n = static_cast<int>(plan.size());
  std::vector<int> origins;
  for (const auto& o : plan.origins) origins.insert(origins.end(), {o.row, o.column});
  const std::size_t plane = static_cast<std::size_t>(plan.window_height()) * plan.window_width();

  std::uint8_t *d_image, *d_out;
  float *d_radius, *d_net_image, *d_net_map, *d_sharp;
  int* d_origins;
  CHECK(cudaMalloc(reinterpret_cast<void**>(&d_image), image.size()));
  CHECK(cudaMalloc(reinterpret_cast<void**>(&d_out), image.size()));
  CHECK(cudaMalloc(reinterpret_cast<void**>(&d_radius), radius.size() * 4));
  CHECK(cudaMalloc(reinterpret_cast<void**>(&d_net_image), n * 3 * plane * 4));
  CHECK(cudaMalloc(reinterpret_cast<void**>(&d_net_map), n * plane * 4));
  CHECK(cudaMalloc(reinterpret_cast<void**>(&d_sharp), n * 3 * plane * 4));
  CHECK(cudaMalloc(reinterpret_cast<void**>(&d_origins), origins.size() * 4));
  CHECK(cudaMemcpy(d_image, image.data(), image.size(), cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(d_radius, radius.data(), radius.size() * 4, cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(d_origins, origins.data(), origins.size() * 4, cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(d_sharp, recorder->replies.data(), n * 3 * plane * 4, cudaMemcpyHostToDevice));
  svbr::cuda::WindowBatch batch{d_origins, n, plan.window_height(), plan.window_width(), plan.halo, plan.tile_height,
                                plan.tile_width};
  CHECK(svbr::cuda::preprocess(d_image, w * 3, d_radius, w, h, w, true, batch, d_net_image, d_net_map));
  CHECK(svbr::cuda::postprocess(d_sharp, h, w, true, batch, d_out, w * 3));
  CHECK(cudaDeviceSynchronize());
  std::vector<float> net_image(n * 3 * plane), net_map(n * plane);
  std::vector<std::uint8_t> out(image.size());
  CHECK(cudaMemcpy(net_image.data(), d_net_image, net_image.size() * 4, cudaMemcpyDeviceToHost));
  CHECK(cudaMemcpy(net_map.data(), d_net_map, net_map.size() * 4, cudaMemcpyDeviceToHost));
  CHECK(cudaMemcpy(out.data(), d_out, out.size(), cudaMemcpyDeviceToHost));
  int failures = 0;
  if (std::memcmp(net_image.data(), recorder->images.data(), net_image.size() * 4)) {
    std::printf("FAIL: preprocess image differs from the CPU path\n");
    ++failures;
  }
  if (std::memcmp(net_map.data(), recorder->maps.data(), net_map.size() * 4)) {
    std::printf("FAIL: preprocess map differs from the CPU path\n");
    ++failures;
  }
  if (out != expected) {
    std::printf("FAIL: postprocess differs from the CPU path\n");
    ++failures;
  }
  for (void* p : {(void*)d_image, (void*)d_out, (void*)d_radius, (void*)d_net_image, (void*)d_net_map, (void*)d_sharp,
                  (void*)d_origins})
    cudaFree(p);
  std::printf("%s: %d windows of %dx%d, CUDA kernels vs CPU path\n", failures ? "FAILED" : "PASSED", n,
              plan.window_height(), plan.window_width());
  return failures ? 1 : 0;
}
