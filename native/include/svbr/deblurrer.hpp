// svbr/deblurrer.hpp: photos in, sharp photos out (runtime/deblurrer.py's Deblurrer).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "svbr/backend.hpp"
#include "svbr/pyramid.hpp"
#include "svbr/tiling.hpp"

namespace svbr {

enum class ChannelOrder { BGR, RGB };

/// A non-owning H×W×C interleaved image. row_stride is in elements; 0 means width * channels.
template <class T>
struct ImageView {
  T* data = nullptr;
  int height = 0;
  int width = 0;
  int channels = 3;
  std::ptrdiff_t row_stride = 0;
  std::ptrdiff_t stride() const { return row_stride ? row_stride : static_cast<std::ptrdiff_t>(width) * channels; }
};

/// A non-owning H×W blur map: defocus disk radius per pixel in px (>= 0). Radii above 6 px are deblurred on coarser
/// pyramid levels up to DeblurOptions::max_radius_px and clipped to it (with a warning) beyond.
struct MapView {
  const float* data = nullptr;
  int height = 0;
  int width = 0;
  std::ptrdiff_t row_stride = 0;  ///< elements; 0 = width
  std::ptrdiff_t stride() const { return row_stride ? row_stride : width; }
};

struct DeblurOptions {
  /// Tile centre edge (px, rounded up to a multiple of 4); std::nullopt = one full-frame pass.
  std::optional<int> tile = 512;
  /// Context around every tile (px); std::nullopt = kHaloPx (84): tiled output equals full-frame output.
  std::optional<int> halo;
  /// Windows per backend call; std::nullopt = the backend's preferred batch size.
  std::optional<int> batch_size;
  /// How much of the correction to apply: input + strength · (network output − input), in float before rounding;
  /// 0 returns the input exactly, 1 the network's output (bit-identical to the single-pass path), up to 2.
  double strength = 1.0;
  /// The largest radius (px) deblurred, in [6, 192]: radii above 6 px are deblurred on a pyramid level that brings
  /// them to <= 6 px (1/2 up to 12 px, 1/4 up to 24, 1/8 up to 48 = the default); larger radii are clipped to it
  /// with a warning. 6 = one full-resolution pass (radii above 6 px clipped), the behaviour before the pyramid.
  double max_radius_px = 48.0;
};

/// on_progress(tiles_done, tiles_total), called after every batch.
using ProgressFn = std::function<void(std::size_t, std::size_t)>;
/// Receives warnings (radii above 6 px); the default handler prints to stderr.
using WarningFn = std::function<void(const std::string&)>;

/// Throws InvalidInput naming the first problem with a deblur call's arguments (validate_inputs in Python).
void validate_inputs(const ImageView<const std::uint8_t>& image, const MapView& map);
void validate_inputs(const ImageView<const float>& image, const MapView& map);

class Deblurrer {
 public:
  /// Wrap a loaded backend. Throws InvalidInput for bad options, ModelError when the model's metadata
  /// (svbr.max_radius_px, svbr.size_multiple) disagrees with this runtime.
  explicit Deblurrer(std::unique_ptr<Backend> backend, DeblurOptions options = {});
  /// Load `model` (ONNX or TensorRT engine) on the backend called `backend` (see create_backend).
  explicit Deblurrer(const std::string& model, const std::string& backend = "auto", DeblurOptions options = {},
                     const BackendOptions& backend_options = {});

  /// Remove spatially varying defocus blur. `out` must have the image's size and 3 channels (it may not
  /// alias `image`). uint8 output is rounded half to even, like the Python runtime.
  void deblur(const ImageView<const std::uint8_t>& image, const MapView& map, const ImageView<std::uint8_t>& out,
              ChannelOrder order = ChannelOrder::BGR, const ProgressFn& on_progress = {});
  /// float32 images in [0, 1].
  void deblur(const ImageView<const float>& image, const MapView& map, const ImageView<float>& out,
              ChannelOrder order = ChannelOrder::BGR, const ProgressFn& on_progress = {});
  /// Convenience: contiguous H×W×3 uint8 in, a new H×W×3 uint8 image out.
  std::vector<std::uint8_t> deblur(const std::uint8_t* image, int height, int width, const float* radius_px,
                                   ChannelOrder order = ChannelOrder::BGR);

  /// Tiles an H×W image is split into (one backend window each) at full resolution.
  std::size_t count_tiles(int height, int width) const;
  /// Tiles over all pyramid levels `map` needs (what on_progress counts).
  std::size_t count_tiles(const MapView& map) const;
  TilePlan plan(int height, int width) const;

  Backend& backend() { return *backend_; }
  const Backend& backend() const { return *backend_; }
  std::optional<int> tile() const { return tile_; }
  int halo() const { return halo_; }
  int batch_size() const { return batch_size_; }
  double strength() const { return strength_; }
  double max_radius_px() const { return max_radius_px_; }
  void set_warning_handler(WarningFn handler) { on_warning_ = std::move(handler); }

 private:
  template <class In, class Out>
  void run(const ImageView<const In>& image, const MapView& map, const ImageView<Out>& out, ChannelOrder order,
           const ProgressFn& on_progress);
  template <class In, class Out>
  void run_levels(const ImageView<const In>& image, const MapView& map, const ImageView<Out>& out,
                  ChannelOrder order, const ProgressFn& on_progress, const std::vector<int>& levels);
  /// Run the network over every window of `plan` (an H×W image + map), `batch_size_` at a time; only windows with
  /// need(origin) go to the network (a null `need`: all). consume(origin, output or nullptr) gets every window's
  /// network output (3×h×w RGB, in [unit] as the backend returns it); after each batch, progress(done).
  template <class In, class Need, class Consume>
  void run_windows(const In* image, std::ptrdiff_t image_stride, const float* map, std::ptrdiff_t map_stride,
                   const TilePlan& plan, ChannelOrder order, const Need& need, const Consume& consume,
                   const std::function<void(std::size_t)>& progress);
  void check_model_contract() const;
  void warn_large_radii(const MapView& map) const;

  std::unique_ptr<Backend> backend_;
  std::optional<int> tile_;
  int halo_ = kHaloPx;
  int batch_size_ = 1;
  double strength_ = 1.0;
  double max_radius_px_ = 48.0;
  WarningFn on_warning_;
  std::vector<float> net_image_, net_map_, net_out_;  // one batch of windows, reused
};

}  // namespace svbr
