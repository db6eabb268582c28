// Port of runtime/deblurrer.py: validation, the network contract (pre/post-processing) and tiling around a
// backend. Compiled with -ffp-contract=off so that the float arithmetic is the same as numpy's.
#include "svbr/deblurrer.hpp"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <type_traits>

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
  if (!(std::isfinite(options.strength) && options.strength >= 0.0 && options.strength <= 2.0)) {
    char buf[128];
    std::snprintf(buf, sizeof buf, "strength must be a finite number in [0, 2], got %g", options.strength);
    throw InvalidInput(buf);
  }
  strength_ = options.strength;
  max_radius_px_ = pyramid::validate_max_radius(options.max_radius_px);
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
  if (!(largest > max_radius_px_) || !on_warning_) return;
  char buf[512];
  if (max_radius_px_ == kMaxRadiusPx) {
    std::snprintf(buf, sizeof buf,
                  "blur_map has radii up to %.3g px; SVBR-Net is trained for radii up to 6 px, larger radii are "
                  "clipped to 6 px (max_radius_px=6: no coarser pyramid levels)",
                  static_cast<double>(largest));
  } else {
    const int coarsest = pyramid::level_count(max_radius_px_) - 1;
    std::snprintf(buf, sizeof buf,
                  "blur_map has radii up to %.3g px; radii above max_radius_px=%g px are clipped to %g px (its "
                  "coarsest pyramid level, 1/%d, brings %g px into the 6 px SVBR-Net is trained for; raise "
                  "max_radius_px, up to 192 px, to deblur more)",
                  static_cast<double>(largest), max_radius_px_, max_radius_px_, 1 << coarsest, max_radius_px_);
  }
  on_warning_(buf);
}

std::size_t Deblurrer::count_tiles(const MapView& map) const {
  const std::vector<int> levels =
      pyramid::level_plan(map.data, map.stride(), map.height, map.width, max_radius_px_);
  std::size_t total = 0;
  for (int level : levels) {
    int h = map.height, w = map.width;
    if (level > 0) pyramid::level_size(map.height, map.width, level, h, w);
    total += plan(h, w).size();
  }
  return total;
}

template <class In, class Need, class Consume>
void Deblurrer::run_windows(const In* image, std::ptrdiff_t image_stride, const float* map,
                            std::ptrdiff_t map_stride, const TilePlan& plan, ChannelOrder order, const Need& need,
                            const Consume& consume, const std::function<void(std::size_t)>& progress) {
  const int wh = plan.window_height(), ww = plan.window_width();
  const std::size_t plane = static_cast<std::size_t>(wh) * ww;
  const std::size_t batch = std::min<std::size_t>(static_cast<std::size_t>(batch_size_), plan.size());
  net_image_.resize(batch * 3 * plane);
  net_map_.resize(batch * plane);
  net_out_.resize(batch * 3 * plane);
  // network channel k (RGB) <-> image channel src[k]
  const int src[3] = {order == ChannelOrder::BGR ? 2 : 0, 1, order == ChannelOrder::BGR ? 0 : 2};
  std::vector<int> slot(batch);
  for (std::size_t first = 0; first < plan.size(); first += batch) {
    const std::size_t n = std::min(batch, plan.size() - first);
    std::size_t used = 0;
    for (std::size_t i = 0; i < n; ++i) {  // gather + normalise the needed windows: H×W×3 -> float RGB 3×h×w
      const Origin origin = plan.origins[first + i];
      if (!need(origin)) {
        slot[i] = -1;
        continue;
      }
      slot[i] = static_cast<int>(used);
      const std::vector<int> rows = reflect_indices(origin.row - plan.halo, origin.row - plan.halo + wh, plan.height);
      const std::vector<int> cols =
          reflect_indices(origin.column - plan.halo, origin.column - plan.halo + ww, plan.width);
      float* img = net_image_.data() + used * 3 * plane;
      float* mp = net_map_.data() + used * plane;
      for (int y = 0; y < wh; ++y) {
        const In* line = image + rows[y] * image_stride;
        const float* map_line = map + rows[y] * map_stride;
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
      ++used;
    }
    if (used) backend_->run(net_image_.data(), net_map_.data(), static_cast<int>(used), wh, ww, net_out_.data());
    for (std::size_t i = 0; i < n; ++i)
      consume(plan.origins[first + i], slot[i] < 0 ? nullptr : net_out_.data() + slot[i] * 3 * plane);
    if (progress) progress(first + n);
  }
}

template <class In, class Out>
void Deblurrer::run(const ImageView<const In>& image, const MapView& map, const ImageView<Out>& out,
                    ChannelOrder order, const ProgressFn& on_progress) {
  validate_inputs(image, map);
  validate_out(out, image.height, image.width, image.data);
  warn_large_radii(map);
  const std::vector<int> levels = pyramid::level_plan(map.data, map.stride(), map.height, map.width, max_radius_px_);
  if (!(levels.size() == 1 && strength_ == 1.0)) {
    run_levels(image, map, out, order, on_progress, levels);
    return;
  }
  // today's single full-resolution pass, rounded per window
  const TilePlan plan = this->plan(image.height, image.width);
  const int ww = plan.window_width();
  const std::size_t plane = static_cast<std::size_t>(plan.window_height()) * ww;
  const int src[3] = {order == ChannelOrder::BGR ? 2 : 0, 1, order == ChannelOrder::BGR ? 0 : 2};
  auto consume = [&](Origin origin, const float* res) {  // stitch the valid centre + denormalise
    const int rows = std::min(plan.tile_height, plan.height - origin.row);
    const int cols = std::min(plan.tile_width, plan.width - origin.column);
    for (int y = 0; y < rows; ++y) {
      Out* line = out.data + (origin.row + y) * out.stride() + static_cast<std::ptrdiff_t>(origin.column) * 3;
      const std::size_t offset = static_cast<std::size_t>(plan.halo + y) * ww + plan.halo;
      for (int k = 0; k < 3; ++k) {
        const float* channel = res + k * plane + offset;
        Out* dst = line + src[k];
        for (int x = 0; x < cols; ++x) from_network(channel[x], dst[3 * x]);
      }
    }
  };
  std::function<void(std::size_t)> progress;
  if (on_progress) progress = [&](std::size_t done) { on_progress(done, plan.size()); };
  run_windows(image.data, image.stride(), map.data, map.stride(), plan, order, [](Origin) { return true; }, consume,
              progress);
}

template <class In, class Out>
void Deblurrer::run_levels(const ImageView<const In>& image, const MapView& map, const ImageView<Out>& out,
                           ChannelOrder order, const ProgressFn& on_progress, const std::vector<int>& levels) {
  // runtime/deblurrer.py's _deblur_levels: every coarser level runs the exact tiled path on its downscaled image
  // and keeps its correction (level-sized float); then level 0 runs tiled and each window is blended,
  // strength-scaled and rounded on its own.
  constexpr bool kU8 = std::is_same<In, std::uint8_t>::value;
  const int height = image.height, width = image.width;
  const int src[3] = {order == ChannelOrder::BGR ? 2 : 0, 1, order == ChannelOrder::BGR ? 0 : 2};
  // network output (RGB plane k) -> image units, clipped (network_to_float)
  auto net_value = [](float x) { return kU8 ? math::clip_unit(x) * 255.0f : math::clip_unit(x); };

  struct Level {
    int level, height, width;
    std::vector<float> correction;  // height × width × 3, image channel order
    pyramid::Taps rows, cols;
  };
  std::vector<Level> coarse;
  std::vector<TilePlan> plans;
  std::size_t total = 0, done = 0;
  for (int level : levels) {
    if (level == 0) continue;
    Level l{level, 0, 0, {}, {}, {}};
    pyramid::level_size(height, width, level, l.height, l.width);
    plans.push_back(plan(l.height, l.width));
    total += plans.back().size();
    coarse.push_back(std::move(l));
  }
  const TilePlan full = plan(height, width);
  total += full.size();

  for (std::size_t i = 0; i < coarse.size(); ++i) {
    Level& l = coarse[i];
    const TilePlan& p = plans[i];
    std::vector<In> small(static_cast<std::size_t>(l.height) * l.width * 3);
    pyramid::resize_area(image.data, image.stride(), height, width, 3, small.data(), l.height, l.width);
    std::vector<float> small_map(static_cast<std::size_t>(l.height) * l.width);
    pyramid::resize_area(map.data, map.stride(), height, width, 1, small_map.data(), l.height, l.width);
    const float scale = static_cast<float>(std::ldexp(1.0, -l.level));
    for (float& v : small_map) v = v * scale;
    l.correction.assign(static_cast<std::size_t>(l.height) * l.width * 3, 0.0f);
    const int ww = p.window_width();
    const std::size_t plane = static_cast<std::size_t>(p.window_height()) * ww;
    auto consume = [&](Origin origin, const float* res) {
      const int rows = std::min(p.tile_height, p.height - origin.row);
      const int cols = std::min(p.tile_width, p.width - origin.column);
      for (int y = 0; y < rows; ++y) {
        const std::size_t line = (static_cast<std::size_t>(origin.row + y) * l.width + origin.column) * 3;
        const std::size_t offset = static_cast<std::size_t>(p.halo + y) * ww + p.halo;
        for (int k = 0; k < 3; ++k) {
          const float* channel = res + k * plane + offset;
          for (int x = 0; x < cols; ++x) {
            const std::size_t at = line + static_cast<std::size_t>(x) * 3 + src[k];
            l.correction[at] = net_value(channel[x]) - static_cast<float>(small[at]);
          }
        }
      }
    };
    std::function<void(std::size_t)> progress;
    if (on_progress) progress = [&, offset = done](std::size_t finished) { on_progress(offset + finished, total); };
    run_windows(small.data(), static_cast<std::ptrdiff_t>(l.width) * 3, small_map.data(), l.width, p, order,
                [](Origin) { return true; }, consume, progress);
    done += p.size();
    l.rows = pyramid::bilinear_taps(height, l.height);
    l.cols = pyramid::bilinear_taps(width, l.width);
  }

  const float strength = static_cast<float>(strength_);
  const int ww = full.window_width();
  const std::size_t plane = static_cast<std::size_t>(full.window_height()) * ww;
  auto need = [&](Origin origin) {  // a window whose centre has no level-0 weight skips the network
    const std::vector<int> rows = reflect_indices(origin.row, origin.row + full.tile_height, height);
    const std::vector<int> cols = reflect_indices(origin.column, origin.column + full.tile_width, width);
    float weights[pyramid::kMaxLevels + 1];
    for (int r : rows) {
      const float* line = map.data + r * map.stride();
      for (int c : cols) {
        pyramid::level_weights(line[c], max_radius_px_, weights);
        if (weights[0] > 0.0f) return true;
      }
    }
    return false;
  };
  auto consume = [&](Origin origin, const float* res) {
    const int rows = std::min(full.tile_height, height - origin.row);
    const int cols = std::min(full.tile_width, width - origin.column);
    float weights[pyramid::kMaxLevels + 1];
    for (int y = 0; y < rows; ++y) {
      const int row = origin.row + y;
      const In* in_line = image.data + row * image.stride();
      const float* map_line = map.data + row * map.stride();
      Out* out_line = out.data + row * out.stride();
      const std::size_t offset = static_cast<std::size_t>(full.halo + y) * ww + full.halo;
      for (int x = 0; x < cols; ++x) {
        const int column = origin.column + x;
        float value[3], base[3];
        for (int k = 0; k < 3; ++k) {
          base[src[k]] = static_cast<float>(in_line[column * 3 + src[k]]);
          value[src[k]] = res ? net_value(res[k * plane + offset + x]) : base[src[k]];
        }
        if (!coarse.empty()) {
          pyramid::level_weights(map_line[column], max_radius_px_, weights);
          if (weights[0] != 1.0f) {  // blend (runtime.pyramid.blend); exactly level 0 where w[0] == 1
            float result[3];
            for (int c = 0; c < 3; ++c) result[c] = value[c] * weights[0];
            for (const Level& l : coarse) {
              const float* s = l.correction.data();
              const std::size_t top = static_cast<std::size_t>(l.rows.lower[row]) * l.width;
              const std::size_t bottom = static_cast<std::size_t>(l.rows.upper[row]) * l.width;
              const std::size_t left = static_cast<std::size_t>(l.cols.lower[column]) * 3;
              const std::size_t right = static_cast<std::size_t>(l.cols.upper[column]) * 3;
              const float rw = l.rows.weight[row], cw = l.cols.weight[column];
              const float w = weights[l.level];
              for (int c = 0; c < 3; ++c) {
                const float tl = s[(top * 3) + left + c], bl = s[(bottom * 3) + left + c];
                const float tr = s[(top * 3) + right + c], br = s[(bottom * 3) + right + c];
                const float lv = tl + rw * (bl - tl), rv = tr + rw * (br - tr);
                const float upsampled = lv + cw * (rv - lv);
                result[c] = result[c] + w * (base[c] + upsampled);
              }
            }
            for (int c = 0; c < 3; ++c) value[c] = result[c];
          }
        }
        for (int c = 0; c < 3; ++c) {
          float v = value[c];
          if (strength_ != 1.0) v = base[c] + strength * (v - base[c]);
          if constexpr (kU8) {
            v = v < 0.0f ? 0.0f : (v > 255.0f ? 255.0f : v);
            out_line[column * 3 + c] = static_cast<std::uint8_t>(std::nearbyint(v));
          } else {
            out_line[column * 3 + c] = math::clip_unit(v);
          }
        }
      }
    }
  };
  std::function<void(std::size_t)> progress;
  if (on_progress) progress = [&, offset = done](std::size_t finished) { on_progress(offset + finished, total); };
  run_windows(image.data, image.stride(), map.data, map.stride(), full, order, need, consume, progress);
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
