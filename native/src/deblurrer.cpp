// Port of runtime/deblurrer.py: validation, the network contract (pre/post-processing) and tiling around a
// backend. Compiled with -ffp-contract=off so that the float arithmetic is the same as numpy's.
#include "svbr/deblurrer.hpp"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>

namespace svbr {

namespace {

std::string shape_str(int h, int w, int c) {
  std::ostringstream s;
  s << "(" << h << ", " << w << ", " << c << ")";
  return s.str();
}

std::string fmt4g(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

template <class T>
void validate_image_shape(const ImageView<const T>& image) {
  if (image.channels != 3)
    throw InvalidInput("image must have 3 colour channels (H×W×3), got " + std::to_string(image.channels) +
                       ": shape " + shape_str(image.height, image.width, image.channels));
  if (image.height <= 0 || image.width <= 0)
    throw InvalidInput("image is empty: shape " + shape_str(image.height, image.width, image.channels));
  if (image.data == nullptr) throw InvalidInput("image has no data (null pointer)");
  if (image.stride() < static_cast<std::ptrdiff_t>(image.width) * 3)
    throw InvalidInput("image row_stride " + std::to_string(image.row_stride) + " is smaller than width × 3");
}

void validate_map(const MapView& map, int height, int width) {
  if (map.height != height || map.width != width)
    throw InvalidInput("blur_map size (" + std::to_string(map.height) + ", " + std::to_string(map.width) +
                       ") does not match the image size (" + std::to_string(height) + ", " + std::to_string(width) +
                       ")");
  if (map.data == nullptr) throw InvalidInput("blur_map has no data (null pointer)");
  if (map.stride() < map.width) throw InvalidInput("blur_map row_stride is smaller than its width");
  float low = map.data[0];
  bool finite = true;
  for (int y = 0; y < map.height; ++y) {
    const float* row = map.data + y * map.stride();
    for (int x = 0; x < map.width; ++x) {
      if (!std::isfinite(row[x])) finite = false;
      low = std::min(low, row[x]);
    }
  }
  if (!finite) throw InvalidInput("blur_map contains NaN or infinite radii");
  if (low < 0)
    throw InvalidInput("blur_map contains negative radii (min " + fmt4g(low) + " px); radii must be >= 0");
}

template <class T>
void validate_out(const ImageView<T>& out, int height, int width, const void* in) {
  if (out.data == nullptr) throw InvalidInput("output image has no data (null pointer)");
  if (out.height != height || out.width != width || out.channels != 3)
    throw InvalidInput("output image must be " + shape_str(height, width, 3) + ", got " +
                       shape_str(out.height, out.width, out.channels));
  if (out.stride() < static_cast<std::ptrdiff_t>(width) * 3)
    throw InvalidInput("output row_stride is smaller than width × 3");
  if (static_cast<const void*>(out.data) == in) throw InvalidInput("output must not alias the input image");
}

inline float to_network(std::uint8_t v) { return math::unit_from_u8(v); }
inline float to_network(float v) { return v; }
inline void from_network(float x, std::uint8_t& out) { out = math::u8_from_unit(x); }
inline void from_network(float x, float& out) { out = math::clip_unit(x); }

}  // namespace

void validate_inputs(const ImageView<const std::uint8_t>& image, const MapView& map) {
  validate_image_shape(image);
  validate_map(map, image.height, image.width);
}

void validate_inputs(const ImageView<const float>& image, const MapView& map) {
  validate_image_shape(image);
  float low = image.data[0], high = image.data[0];
  bool finite = true;
  for (int y = 0; y < image.height; ++y) {
    const float* row = image.data + y * image.stride();
    for (int x = 0; x < image.width * 3; ++x) {
      if (!std::isfinite(row[x])) finite = false;
      low = std::min(low, row[x]);
      high = std::max(high, row[x]);
    }
  }
  if (!finite) throw InvalidInput("float32 image contains NaN or infinite values");
  if (low < 0.0f || high > 1.0f)
    throw InvalidInput("float32 image values must lie in [0, 1], got " + fmt4g(low) + ".." + fmt4g(high));
  validate_map(map, image.height, image.width);
}

Deblurrer::Deblurrer(std::unique_ptr<Backend> backend, DeblurOptions options)
    : backend_(std::move(backend)), tile_(options.tile) {
  if (!backend_) throw InvalidInput("Deblurrer needs a backend (got a null pointer)");
  if (options.tile && *options.tile < 1)
    throw InvalidInput("tile must be a positive number of pixels or None, got " + std::to_string(*options.tile));
  if (options.halo && *options.halo < 0)
    throw InvalidInput("halo must be >= 0 px or None, got " + std::to_string(*options.halo));
  if (options.batch_size && *options.batch_size < 1)
    throw InvalidInput("batch_size must be >= 1 or None, got " + std::to_string(*options.batch_size));
  halo_ = options.halo.value_or(kHaloPx);
  batch_size_ = options.batch_size.value_or(std::max(1, backend_->preferred_batch_size()));
  on_warning_ = [](const std::string& message) { std::fprintf(stderr, "svbr: warning: %s\n", message.c_str()); };
  check_model_contract();
}

Deblurrer::Deblurrer(const std::string& model, const std::string& backend, DeblurOptions options,
                     const BackendOptions& backend_options)
    : Deblurrer(create_backend(backend, model, backend_options), options) {}

void Deblurrer::check_model_contract() const {
  const auto& metadata = backend_->metadata();
  const std::pair<const char*, double> expected[] = {{"svbr.max_radius_px", kMaxRadiusPx},
                                                     {"svbr.size_multiple", kSizeMultiple}};
  for (const auto& [key, value] : expected) {
    auto it = metadata.find(key);
    if (it == metadata.end()) continue;
    double stored = 0;
    try {
      stored = std::stod(it->second);
    } catch (const std::exception&) {
      throw ModelError(backend_->model_path() + " has an unreadable " + key + "=" + it->second);
    }
    if (stored != value) {
      std::ostringstream s;
      s << backend_->model_path() << " was exported with " << key << "=" << it->second << ", this runtime uses "
        << value;
      throw ModelError(s.str());
    }
  }
}

TilePlan Deblurrer::plan(int height, int width) const { return plan_tiles(height, width, tile_, halo_, kSizeMultiple); }

std::size_t Deblurrer::count_tiles(int height, int width) const { return plan(height, width).size(); }

void Deblurrer::warn_large_radii(const MapView& map) const {
  float largest = map.data[0];
  for (int y = 0; y < map.height; ++y) {
    const float* row = map.data + y * map.stride();
    for (int x = 0; x < map.width; ++x) largest = std::max(largest, row[x]);
  }
  if (largest > kMaxRadiusPx && on_warning_) {
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "blur_map has radii up to %.3g px; SVBR-Net is trained for radii up to 6 px, larger radii are "
                  "clipped to 6 px",
                  static_cast<double>(largest));
    on_warning_(buf);
  }
}

template <class In, class Out>
void Deblurrer::run(const ImageView<const In>& image, const MapView& map, const ImageView<Out>& out,
                    ChannelOrder order, const ProgressFn& on_progress) {
  validate_inputs(image, map);
  validate_out(out, image.height, image.width, image.data);
  warn_large_radii(map);
  const TilePlan plan = this->plan(image.height, image.width);
  const int wh = plan.window_height(), ww = plan.window_width();
  const std::size_t plane = static_cast<std::size_t>(wh) * ww;
  const std::size_t batch = std::min<std::size_t>(static_cast<std::size_t>(batch_size_), plan.size());
  net_image_.resize(batch * 3 * plane);
  net_map_.resize(batch * plane);
  net_out_.resize(batch * 3 * plane);
  // network channel k (RGB) <-> image channel src[k]
  const int src[3] = {order == ChannelOrder::BGR ? 2 : 0, 1, order == ChannelOrder::BGR ? 0 : 2};
  for (std::size_t first = 0; first < plan.size(); first += batch) {
    const std::size_t n = std::min(batch, plan.size() - first);
    for (std::size_t i = 0; i < n; ++i) {  // gather + normalise: uint8 BGR H×W×3 -> float RGB 3×h×w
      const Origin origin = plan.origins[first + i];
      const std::vector<int> rows = reflect_indices(origin.row - plan.halo, origin.row - plan.halo + wh, plan.height);
      const std::vector<int> cols =
          reflect_indices(origin.column - plan.halo, origin.column - plan.halo + ww, plan.width);
      float* img = net_image_.data() + i * 3 * plane;
      float* mp = net_map_.data() + i * plane;
      for (int y = 0; y < wh; ++y) {
        const In* line = image.data + rows[y] * image.stride();
        const float* map_line = map.data + rows[y] * map.stride();
        float* r = img + y * ww;
        float* g = r + plane;
        float* b = g + plane;
        float* m = mp + y * ww;
        for (int x = 0; x < ww; ++x) {
          const In* px = line + cols[x] * 3;
          r[x] = to_network(px[src[0]]);
          g[x] = to_network(px[src[1]]);
          b[x] = to_network(px[src[2]]);
          m[x] = math::map_from_radius(map_line[cols[x]]);
        }
      }
    }
    backend_->run(net_image_.data(), net_map_.data(), static_cast<int>(n), wh, ww, net_out_.data());
    for (std::size_t i = 0; i < n; ++i) {  // stitch the valid centre + denormalise
      const Origin origin = plan.origins[first + i];
      const int rows = std::min(plan.tile_height, plan.height - origin.row);
      const int cols = std::min(plan.tile_width, plan.width - origin.column);
      const float* res = net_out_.data() + i * 3 * plane;
      for (int y = 0; y < rows; ++y) {
        Out* line = out.data + (origin.row + y) * out.stride() + static_cast<std::ptrdiff_t>(origin.column) * 3;
        const std::size_t offset = static_cast<std::size_t>(plan.halo + y) * ww + plan.halo;
        for (int k = 0; k < 3; ++k) {
          const float* channel = res + k * plane + offset;
          Out* dst = line + src[k];
          for (int x = 0; x < cols; ++x) from_network(channel[x], dst[3 * x]);
        }
      }
    }
    if (on_progress) on_progress(first + n, plan.size());
  }
}

void Deblurrer::deblur(const ImageView<const std::uint8_t>& image, const MapView& map,
                       const ImageView<std::uint8_t>& out, ChannelOrder order, const ProgressFn& on_progress) {
  run(image, map, out, order, on_progress);
}

void Deblurrer::deblur(const ImageView<const float>& image, const MapView& map, const ImageView<float>& out,
                       ChannelOrder order, const ProgressFn& on_progress) {
  run(image, map, out, order, on_progress);
}

std::vector<std::uint8_t> Deblurrer::deblur(const std::uint8_t* image, int height, int width, const float* radius_px,
                                            ChannelOrder order) {
  std::vector<std::uint8_t> out(static_cast<std::size_t>(std::max(height, 0)) * std::max(width, 0) * 3);
  deblur(ImageView<const std::uint8_t>{image, height, width, 3}, MapView{radius_px, height, width},
         ImageView<std::uint8_t>{out.data(), height, width, 3}, order);
  return out;
}

}  // namespace svbr
