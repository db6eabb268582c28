// Deblur one image with svbr: a BGR uint8 frame and a per-pixel blur radius map (px) in, a sharp frame out.
#include <svbr/svbr.hpp>

#include <cstdio>
#include <vector>

int main(int argc, char** argv) {
  const int height = 120, width = 160;
  std::vector<std::uint8_t> frame(height * width * 3, 128);  // e.g. a camera frame, BGR interleaved
  std::vector<float> radius_px(height * width, 2.5f);        // e.g. from a depth map and the lens model
  try {
    svbr::Deblurrer deblurrer(argc > 1 ? argv[1] : svbr::default_model_path(), "auto", {/*tile=*/256});
    std::vector<std::uint8_t> sharp = deblurrer.deblur(frame.data(), height, width, radius_px.data());
    std::printf("deblurred %dx%d on %s (%zu tiles), first pixel %d\n", width, height,
                deblurrer.backend().name().c_str(), deblurrer.count_tiles(height, width), sharp[0]);
  } catch (const svbr::Error& e) {  // InvalidInput, ModelError, BackendUnavailable
    std::fprintf(stderr, "svbr: %s\n", e.what());
    return 1;
  }
  return 0;
}
