// svbr-native: the C++ counterpart of `svbr deblur` for one image.
//   svbr-native photo.png --blur-map map.npy -o sharp.png [--model M.onnx|M.engine] [--tile N] [--backend B]
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "svbr/image_io.hpp"
#include "svbr/svbr.hpp"

namespace {

constexpr const char* kUsage =
    "usage: svbr-native [deblur] IMAGE --blur-map MAP -o OUTPUT [options]\n"
    "\n"
    "Remove spatially varying defocus blur from IMAGE (PNG/JPEG/BMP...) given its blur map: the defocus disk radius\n"
    "of every pixel in px. Radii above 6 px are deblurred on coarser pyramid levels up to --max-radius.\n"
    "\n"
    "options:\n"
    "  --blur-map MAP        .npy of radii in px (any real dtype, H×W), or an 8/16-bit PNG with --map-scale\n"
    "  -o, --output OUTPUT   output image (.png, .jpg, .jpeg, .bmp)\n"
    "  --map-scale S         radius in px of one PNG map unit; required for PNG maps\n"
    "  --strength S          apply S × the correction, in [0, 2] (default 1)\n"
    "  --max-radius PX       largest radius deblurred, in [6, 192] (default 48; 6 = one full-resolution pass)\n"
    "  --model M             ONNX model or TensorRT engine (default: the bundled model)\n"
    "  --backend B           auto (default), onnxruntime-cpu or tensorrt (those compiled in)\n"
    "  --tile N              tile edge in px, rounded up to a multiple of 4; 0 = one full-frame pass (default 512)\n"
    "  --halo N              context per tile in px (default 84: tiled output equals full-frame output)\n"
    "  --batch-size N        tiles per backend call (default: the backend's preference)\n"
    "  --threads N           ONNX Runtime intra-op threads (default: the engine's default, all cores)\n"
    "  --repeat N            deblur N times (benchmarking; the output of the last run is written)\n"
    "  --timing              print load/read/deblur/network/write times (ms) as one JSON line on stdout\n"
    "  -q, --quiet           no summary line\n"
    "  --version             print version and compiled-in backends\n";

struct CliError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

int parse_int(const std::string& option, const std::string& value) {
  try {
    std::size_t used = 0;
    const int v = std::stoi(value, &used);
    if (used != value.size()) throw std::invalid_argument(value);
    return v;
  } catch (const std::exception&) {
    throw CliError(option + " needs an integer, got '" + value + "'");
  }
}

double parse_double(const std::string& option, const std::string& value) {
  try {
    std::size_t used = 0;
    const double v = std::stod(value, &used);
    if (used != value.size()) throw std::invalid_argument(value);
    return v;
  } catch (const std::exception&) {
    throw CliError(option + " needs a number, got '" + value + "'");
  }
}

double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

/// Forwards to a backend and adds up the time spent in it (--timing: network time vs the rest).
class TimedBackend final : public svbr::Backend {
 public:
  explicit TimedBackend(std::unique_ptr<svbr::Backend> inner) : inner_(std::move(inner)) {
    name_ = inner_->name();
    device_ = inner_->device();
    precision_ = inner_->precision();
    model_path_ = inner_->model_path();
    metadata_ = inner_->metadata();
    preferred_batch_size_ = inner_->preferred_batch_size();
  }
  void run(const float* image, const float* map, int batch, int height, int width, float* sharp) override {
    const auto start = std::chrono::steady_clock::now();
    inner_->run(image, map, batch, height, width, sharp);
    total_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  }
  double total_ms = 0;

 private:
  std::unique_ptr<svbr::Backend> inner_;
};

std::string lower_suffix(const std::string& path) {
  std::string s = std::filesystem::path(path).extension().string();
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "deblur") args.erase(args.begin());
  std::string input, map_path, output, model, backend = "auto";
  std::optional<double> map_scale;
  double strength = 1.0, max_radius = svbr::pyramid::kDefaultMaxRadiusPx;
  int tile = 512, repeat = 1;
  std::optional<int> halo, batch_size, threads;
  bool quiet = false, timing = false;
  try {
    for (std::size_t i = 0; i < args.size(); ++i) {
      const std::string& a = args[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= args.size()) throw CliError(a + " needs a value");
        return args[++i];
      };
      if (a == "-h" || a == "--help") {
        std::fputs(kUsage, stdout);
        return 0;
      } else if (a == "--version") {
        std::printf("svbr-native %s (backends:", SVBR_VERSION);
        for (const auto& n : svbr::backend_names()) std::printf(" %s", n.c_str());
        std::printf("; CUDA kernels: %s)\n", SVBR_HAVE_CUDA_KERNELS ? "yes" : "no");
        return 0;
      } else if (a == "--blur-map") map_path = value();
      else if (a == "-o" || a == "--output") output = value();
      else if (a == "--map-scale") map_scale = parse_double(a, value());
      else if (a == "--model") model = value();
      else if (a == "--strength") strength = parse_double(a, value());
      else if (a == "--max-radius") max_radius = parse_double(a, value());
      else if (a == "--backend") backend = value();
      else if (a == "--tile") tile = parse_int(a, value());
      else if (a == "--halo") halo = parse_int(a, value());
      else if (a == "--batch-size") batch_size = parse_int(a, value());
      else if (a == "--threads") threads = parse_int(a, value());
      else if (a == "--repeat") repeat = parse_int(a, value());
      else if (a == "--timing") timing = true;
      else if (a == "-q" || a == "--quiet") quiet = true;
      else if (!a.empty() && a[0] == '-') throw CliError("unknown option " + a + " (see --help)");
      else if (input.empty()) input = a;
      else throw CliError("unexpected argument " + a);
    }
    if (input.empty() || map_path.empty() || output.empty()) {
      std::fputs(kUsage, stderr);
      throw CliError("IMAGE, --blur-map and -o are required");
    }
    if (tile < 0) throw CliError("--tile must be >= 0, got " + std::to_string(tile));
    if (repeat < 1) throw CliError("--repeat must be >= 1, got " + std::to_string(repeat));
    if (map_scale && !(*map_scale > 0)) throw CliError("--map-scale must be > 0");
    if (!svbr::io::can_write(output)) throw CliError("cannot write images with suffix '" + lower_suffix(output) + "': " + output);
    if (model.empty()) model = svbr::default_model_path();

    auto start = std::chrono::steady_clock::now();
    svbr::DeblurOptions options;
    options.tile = tile ? std::optional<int>(tile) : std::nullopt;
    options.halo = halo;
    options.batch_size = batch_size;
    options.strength = strength;
    options.max_radius_px = max_radius;
    svbr::BackendOptions backend_options;
    backend_options.threads = threads;
    auto timed = std::make_unique<TimedBackend>(svbr::create_backend(backend, model, backend_options));
    TimedBackend* network = timed.get();
    svbr::Deblurrer deblurrer(std::move(timed), options);
    const std::string image_name = std::filesystem::path(input).filename().string();
    deblurrer.set_warning_handler([&](const std::string& message) {
      std::fprintf(stderr, "svbr-native: warning: %s: %s\n", image_name.c_str(), message.c_str());
    });
    const double load_ms = ms_since(start);

    start = std::chrono::steady_clock::now();
    svbr::io::Image image = svbr::io::read_bgr(input);
    std::vector<float> radius;
    int map_h = 0, map_w = 0;
    const std::string map_suffix = lower_suffix(map_path);
    if (map_suffix == ".npy") {
      if (!std::filesystem::is_regular_file(map_path)) throw CliError("blur map not found: " + map_path);
      svbr::NpyArray array = svbr::load_npy(map_path);
      if (array.shape.size() != 2) {
        std::string shape;
        for (auto d : array.shape) shape += (shape.empty() ? "" : ", ") + std::to_string(d);
        throw CliError("blur map " + map_path + " must be a 2-D array of radii (H×W), got shape (" + shape + ")");
      }
      map_h = static_cast<int>(array.shape[0]);
      map_w = static_cast<int>(array.shape[1]);
      radius = std::move(array.data);
    } else if (map_suffix == ".png") {
      if (!map_scale) throw CliError("blur map " + map_path + " is a PNG: give --map-scale (px of radius per PNG unit)");
      radius = svbr::io::read_grey_png(map_path, map_h, map_w);
      const float scale = static_cast<float>(*map_scale);  // float32 product, as the Python CLI
      for (float& v : radius) v *= scale;
    } else {
      throw CliError("blur map " + map_path + " must be a .npy or .png file");
    }
    if (map_h != image.height || map_w != image.width)
      throw CliError("blur map " + map_path + " is " + std::to_string(map_w) + "×" + std::to_string(map_h) +
                     " px but image " + input + " is " + std::to_string(image.width) + "×" +
                     std::to_string(image.height) + " px");
    const double read_ms = ms_since(start);

    std::vector<std::uint8_t> sharp(image.pixels.size());
    std::vector<double> deblur_ms, network_ms;
    for (int r = 0; r < repeat; ++r) {
      network->total_ms = 0;
      start = std::chrono::steady_clock::now();
      try {
        deblurrer.deblur(svbr::ImageView<const std::uint8_t>{image.pixels.data(), image.height, image.width, 3},
                         svbr::MapView{radius.data(), map_h, map_w},
                         svbr::ImageView<std::uint8_t>{sharp.data(), image.height, image.width, 3});
      } catch (const svbr::InvalidInput& e) {
        throw CliError(image_name + ": " + e.what());
      }
      deblur_ms.push_back(ms_since(start));
      network_ms.push_back(network->total_ms);
    }
    start = std::chrono::steady_clock::now();
    svbr::io::write_bgr(output, sharp.data(), image.height, image.width);
    const double write_ms = ms_since(start);
    if (timing) {
      std::printf("{\"backend\": \"%s\", \"height\": %d, \"width\": %d, \"tiles\": %zu, \"load_ms\": %.3f, "
                  "\"read_ms\": %.3f, \"write_ms\": %.3f, \"deblur_ms\": [",
                  deblurrer.backend().name().c_str(), image.height, image.width,
                  deblurrer.count_tiles(svbr::MapView{radius.data(), map_h, map_w}), load_ms, read_ms, write_ms);
      for (std::size_t i = 0; i < deblur_ms.size(); ++i) std::printf("%s%.3f", i ? ", " : "", deblur_ms[i]);
      std::printf("], \"network_ms\": [");
      for (std::size_t i = 0; i < network_ms.size(); ++i) std::printf("%s%.3f", i ? ", " : "", network_ms[i]);
      std::printf("]}\n");
    } else if (!quiet) {
      std::printf("wrote 1 image to %s (%s)\n", output.c_str(), deblurrer.backend().name().c_str());
    }
  } catch (const CliError& e) {
    std::fprintf(stderr, "svbr-native: error: %s\n", e.what());
    return 2;
  } catch (const svbr::Error& e) {
    std::fprintf(stderr, "svbr-native: error: %s\n", e.what());
    return 2;
  }
  return 0;
}
