// svbr/cuda.hpp: CUDA pre/post-processing kernels (target svbr::cuda, built when nvcc is found).
//
// The same arithmetic as the CPU path (svbr/hd_math.hpp, compiled with --fmad=false), so GPU and CPU results are
// equal bit for bit: a zero-copy path for camera frames already in GPU memory (Jetson: NVMM/EGL buffers) feeding
// a TensorRT engine's device buffers. All pointers are device pointers; strides are in elements.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace svbr::cuda {

/// Where the windows of one batch lie: `origins` holds 2*n ints (row, column of each tile centre), in device memory.
struct WindowBatch {
  const int* origins = nullptr;
  int n = 0;
  int window_height = 0, window_width = 0, halo = 0;  ///< from the TilePlan
  int tile_height = 0, tile_width = 0;                ///< from the TilePlan
};

/// Gather reflect-padded windows from an H×W×3 uint8 image and an H×W float radius map (px) into the network
/// inputs: image N×3×h×w RGB /255, map N×1×h×w clip(r/6, 0, 1).
cudaError_t preprocess(const std::uint8_t* image, std::ptrdiff_t image_stride, const float* radius,
                       std::ptrdiff_t map_stride, int height, int width, bool bgr, const WindowBatch& batch,
                       float* net_image, float* net_map, cudaStream_t stream = nullptr);

/// Write the valid centres of the network output N×3×h×w (RGB in [0, 1]) into the H×W×3 uint8 image,
/// rint(clip(x, 0, 1) * 255), cropped to the image.
cudaError_t postprocess(const float* sharp, int height, int width, bool bgr, const WindowBatch& batch,
                        std::uint8_t* out, std::ptrdiff_t out_stride, cudaStream_t stream = nullptr);

}  // namespace svbr::cuda
