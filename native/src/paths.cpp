// default_model_path(): SVBR_MODEL, else the installed bundled model, else the source tree's.
#include <cstdlib>
#include <filesystem>

#include "svbr/backend.hpp"

namespace svbr {

std::string default_model_path() {
  if (const char* env = std::getenv("SVBR_MODEL"); env && *env) return env;
  for (const char* candidate : {SVBR_INSTALLED_MODEL, SVBR_SOURCE_MODEL})
    if (std::filesystem::is_regular_file(candidate)) return candidate;
  return SVBR_SOURCE_MODEL;
}

}  // namespace svbr
