// CUDA pre/post-processing kernels; per-pixel math shared with the CPU path (svbr/hd_math.hpp).
#include "svbr/cuda.hpp"
#include "svbr/hd_math.hpp"

namespace svbr::cuda {

namespace {

__global__ void preprocess_kernel(const std::uint8_t* image, std::ptrdiff_t image_stride, const float* radius,
                                  std::ptrdiff_t map_stride, int height, int width, int r_channel, int b_channel,
                                  WindowBatch batch, float* net_image, float* net_map) {
  const int x = blockIdx.x * blockDim.x + threadIdx.x;
  const int y = blockIdx.y * blockDim.y + threadIdx.y;
  const int n = blockIdx.z;
  if (x >= batch.window_width || y >= batch.window_height || n >= batch.n) return;
  const int row = math::reflect101(static_cast<long long>(batch.origins[2 * n]) - batch.halo + y, height);
  const int col = math::reflect101(static_cast<long long>(batch.origins[2 * n + 1]) - batch.halo + x, width);
  const std::size_t plane = static_cast<std::size_t>(batch.window_height) * batch.window_width;
  const std::size_t at = static_cast<std::size_t>(y) * batch.window_width + x;
  const std::uint8_t* px = image + row * image_stride + col * 3;
  float* img = net_image + n * 3 * plane;
  img[at] = math::unit_from_u8(px[r_channel]);
  img[plane + at] = math::unit_from_u8(px[1]);
  img[2 * plane + at] = math::unit_from_u8(px[b_channel]);
  net_map[n * plane + at] = math::map_from_radius(radius[row * map_stride + col]);
}

__global__ void postprocess_kernel(const float* sharp, int height, int width, int r_channel, int b_channel,
                                   WindowBatch batch, std::uint8_t* out, std::ptrdiff_t out_stride) {
  const int x = blockIdx.x * blockDim.x + threadIdx.x;
  const int y = blockIdx.y * blockDim.y + threadIdx.y;
  const int n = blockIdx.z;
  if (x >= batch.tile_width || y >= batch.tile_height || n >= batch.n) return;
  const int row = batch.origins[2 * n] + y, col = batch.origins[2 * n + 1] + x;
  if (row >= height || col >= width) return;  // the padded part of the canvas
  const std::size_t plane = static_cast<std::size_t>(batch.window_height) * batch.window_width;
  const std::size_t at = static_cast<std::size_t>(batch.halo + y) * batch.window_width + batch.halo + x;
  const float* res = sharp + n * 3 * plane;
  std::uint8_t* px = out + row * out_stride + col * 3;
  px[r_channel] = math::u8_from_unit(res[at]);
  px[1] = math::u8_from_unit(res[plane + at]);
  px[b_channel] = math::u8_from_unit(res[2 * plane + at]);
}

}  // namespace

cudaError_t preprocess(const std::uint8_t* image, std::ptrdiff_t image_stride, const float* radius,
                       std::ptrdiff_t map_stride, int height, int width, bool bgr, const WindowBatch& batch,
                       float* net_image, float* net_map, cudaStream_t stream) {
  if (batch.n <= 0) return cudaSuccess;
  const dim3 block(32, 8);
  const dim3 grid((batch.window_width + 31) / 32, (batch.window_height + 7) / 8, batch.n);
  preprocess_kernel<<<grid, block, 0, stream>>>(image, image_stride, radius, map_stride, height, width, bgr ? 2 : 0,
                                                bgr ? 0 : 2, batch, net_image, net_map);
  return cudaGetLastError();
}

cudaError_t postprocess(const float* sharp, int height, int width, bool bgr, const WindowBatch& batch,
                        std::uint8_t* out, std::ptrdiff_t out_stride, cudaStream_t stream) {
  if (batch.n <= 0) return cudaSuccess;
  const dim3 block(32, 8);
  const dim3 grid((batch.tile_width + 31) / 32, (batch.tile_height + 7) / 8, batch.n);
  postprocess_kernel<<<grid, block, 0, stream>>>(sharp, height, width, bgr ? 2 : 0, bgr ? 0 : 2, batch, out,
                                                 out_stride);
  return cudaGetLastError();
}

}  // namespace svbr::cuda
