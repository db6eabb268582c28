// A small .npy reader/writer (format versions 1.0-3.0, little-endian, C order).
#include "svbr/npy.hpp"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>

#include "svbr/errors.hpp"

namespace svbr {

namespace {

std::string header_value(const std::string& header, const std::string& key, const std::string& path) {
  const std::size_t at = header.find("'" + key + "'");
  if (at == std::string::npos) throw InvalidInput("cannot read " + path + " as a .npy array: no '" + key + "' in header");
  std::size_t colon = header.find(':', at);
  std::size_t start = header.find_first_not_of(' ', colon + 1);
  if (colon == std::string::npos || start == std::string::npos)
    throw InvalidInput("cannot read " + path + " as a .npy array: malformed header");
  if (header[start] == '(') return header.substr(start + 1, header.find(')', start) - start - 1);
  if (header[start] == '\'') return header.substr(start + 1, header.find('\'', start + 1) - start - 1);
  return header.substr(start, header.find_first_of(",}", start) - start);
}

float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = (h & 0x8000u) << 16, exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
  std::uint32_t bits;
  if (exponent == 0) {
    if (mantissa == 0) {
      bits = sign;
    } else {  // subnormal: value = mantissa * 2^-24, exact in float
      float v = static_cast<float>(mantissa) * 5.9604644775390625e-8f;
      std::memcpy(&bits, &v, 4);
      bits |= sign;
    }
  } else if (exponent == 31) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  }
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

template <class T>
void convert(const char* raw, std::size_t count, std::vector<float>& out) {
  for (std::size_t i = 0; i < count; ++i) {
    T v;
    std::memcpy(&v, raw + i * sizeof(T), sizeof(T));
    out[i] = static_cast<float>(v);  // round to nearest, as numpy's astype(float32)
  }
}

}  // namespace

NpyArray load_npy(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw InvalidInput("cannot open " + path);
  std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0)
    throw InvalidInput("cannot read " + path + " as a .npy array: not a .npy file");
  const int major = static_cast<unsigned char>(bytes[6]);
  std::size_t header_len, offset;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) throw InvalidInput("cannot read " + path + " as a .npy array: truncated header");
    header_len = 0;
    for (int i = 0; i < 4; ++i) header_len |= static_cast<std::size_t>(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
    offset = 12;
  } else {
    throw InvalidInput("cannot read " + path + " as a .npy array: unsupported format version " + std::to_string(major));
  }
  if (bytes.size() < offset + header_len) throw InvalidInput("cannot read " + path + " as a .npy array: truncated header");
  const std::string header = bytes.substr(offset, header_len);
  NpyArray array;
  array.dtype = header_value(header, "descr", path);
  if (header_value(header, "fortran_order", path).find("True") != std::string::npos)
    throw InvalidInput("cannot read " + path + ": Fortran-ordered arrays are not supported (save a C-ordered array)");
  std::stringstream dims(header_value(header, "shape", path));
  std::string item;
  std::size_t count = 1;
  while (std::getline(dims, item, ',')) {
    if (item.find_first_not_of(" ") == std::string::npos) continue;
    const std::size_t d = std::stoull(item);
    array.shape.push_back(d);
    count *= d;
  }
  const std::string& d = array.dtype;
  if (d.size() < 3 || (d[0] == '>' && d.substr(1) != "u1" && d.substr(1) != "i1"))
    throw InvalidInput("blur map " + path + " must be a little-endian array, got dtype " + d);
  const std::string kind = d.substr(1);
  if (kind.size() < 2 || kind.find_first_not_of("0123456789", 1) != std::string::npos)
    throw InvalidInput("blur map " + path + " must hold real numbers, got dtype " + d);
  const std::size_t itemsize = std::stoul(kind.substr(1));
  const char* raw = bytes.data() + offset + header_len;
  if (bytes.size() - offset - header_len < count * itemsize)
    throw InvalidInput("cannot read " + path + " as a .npy array: file is truncated");
  array.data.resize(count);
  if (kind == "f4") convert<float>(raw, count, array.data);
  else if (kind == "f8") convert<double>(raw, count, array.data);
  else if (kind == "f2") {
    for (std::size_t i = 0; i < count; ++i) {
      std::uint16_t h;
      std::memcpy(&h, raw + 2 * i, 2);
      array.data[i] = half_to_float(h);
    }
  } else if (kind == "u1") convert<std::uint8_t>(raw, count, array.data);
  else if (kind == "u2") convert<std::uint16_t>(raw, count, array.data);
  else if (kind == "u4") convert<std::uint32_t>(raw, count, array.data);
  else if (kind == "u8") convert<std::uint64_t>(raw, count, array.data);
  else if (kind == "i1") convert<std::int8_t>(raw, count, array.data);
  else if (kind == "i2") convert<std::int16_t>(raw, count, array.data);
  else if (kind == "i4") convert<std::int32_t>(raw, count, array.data);
  else if (kind == "i8") convert<std::int64_t>(raw, count, array.data);
  else throw InvalidInput("blur map " + path + " must hold real numbers, got dtype " + d);
  return array;
}

void save_npy(const std::string& path, const float* data, const std::vector<std::size_t>& shape) {
  std::string dims;
  std::size_t count = 1;
  for (std::size_t d : shape) {
    dims += std::to_string(d) + ", ";
    count *= d;
  }
  if (shape.size() > 1) dims.erase(dims.size() - 2);
  else if (shape.size() == 1) dims.erase(dims.size() - 1);
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::ofstream file(path, std::ios::binary);
  if (!file) throw InvalidInput("cannot write " + path);
  const unsigned char preamble[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                                      static_cast<unsigned char>(header.size() & 0xff),
                                      static_cast<unsigned char>(header.size() >> 8)};
  file.write(reinterpret_cast<const char*>(preamble), 10);
  file << header;
  file.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(count * sizeof(float)));
  if (!file) throw InvalidInput("failed to write " + path);
}

}  // namespace svbr
