#include <l2o/core/error.h>
#include <l2o/data/idx.h>

#include <torch/torch.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <vector>

namespace l2o {
namespace data {

namespace {
// Reads the whole file through zlib, which passes uncompressed files through unchanged.
std::vector<uint8_t> slurp(const std::string& path) {
  L2O_CHECK(std::filesystem::is_regular_file(path), "data file '", path, "' does not exist");
  gzFile f = gzopen(path.c_str(), "rb");
  L2O_CHECK(f != nullptr, "cannot open data file '", path, "'");
  std::vector<uint8_t> bytes;
  uint8_t buf[1 << 16];
  int n = 0;
  while ((n = gzread(f, buf, sizeof(buf))) > 0) bytes.insert(bytes.end(), buf, buf + n);
  int err = 0;
  const char* msg = gzerror(f, &err);
  const std::string why = (n < 0 || (err != Z_OK && err != Z_STREAM_END)) ? std::string(msg) : "";
  gzclose(f);
  L2O_CHECK(why.empty(), "data file '", path, "' is corrupt (", why, ")");
  return bytes;
}

uint32_t big_endian(const std::vector<uint8_t>& b, size_t at) {
  return (uint32_t{b[at]} << 24) | (uint32_t{b[at + 1]} << 16) | (uint32_t{b[at + 2]} << 8) | uint32_t{b[at + 3]};
}
}  // namespace

torch::Tensor read_idx(const std::string& path) {
  const std::vector<uint8_t> bytes = slurp(path);
  L2O_CHECK(bytes.size() >= 4, "data file '", path, "' is truncated (", bytes.size(), " bytes)");
  const uint32_t magic = big_endian(bytes, 0);
  // Bytes 0-1 are zero, byte 2 is the element type (0x08 = unsigned byte), byte 3 the rank.
  L2O_CHECK((magic >> 8) == 0x08 && (magic & 0xff) >= 1 && (magic & 0xff) <= 4, "data file '", path,
            "' is not an unsigned-byte IDX file (magic 0x", std::hex, magic, ")");
  const size_t rank = magic & 0xff;
  L2O_CHECK(bytes.size() >= 4 + 4 * rank, "data file '", path, "' is truncated (no complete header)");
  const size_t header = 4 + 4 * rank;
  std::vector<int64_t> shape;
  // The product of the sizes with 0 counted as 1 bounds both the element count and every stride
  // LibTorch computes: 65536^4 overflowed the count back to 0 (and past the size check below), and
  // [0, ~2^32, ~2^28, ~2^27] gave an empty tensor whose strides overflow int64 (the idx fuzz target).
  constexpr size_t kMaxSpan = size_t{1} << 48;
  size_t count = 1, span = 1;
  for (size_t d = 0; d < rank; ++d) {
    shape.push_back(big_endian(bytes, 4 + 4 * d));
    const auto n = static_cast<size_t>(shape.back());
    L2O_CHECK(!__builtin_mul_overflow(span, std::max<size_t>(n, 1), &span) && span <= kMaxSpan, "data file '", path,
              "' is corrupt: its header's sizes describe more than 2^48 elements");
    count *= n;
  }
  L2O_CHECK(bytes.size() - header == count, "data file '", path, "' is truncated or padded: header promises ", count,
            " bytes, file holds ", bytes.size() - header);
  auto out = torch::empty(shape, torch::kUInt8);
  // An empty tensor may have no storage at all: memcpy from or to a null pointer is undefined even
  // for 0 bytes (UBSan, tests/fuzz/crashes/idx/empty_payload).
  if (count > 0) std::memcpy(out.data_ptr<uint8_t>(), bytes.data() + header, count);
  return out;
}

Split read_idx_split(const std::string& dir, const std::string& prefix, const std::string& package_hint) {
  auto find = [&](const std::string& stem) {
    for (const char* suffix : {"", ".gz"}) {
      const std::string p = dir + "/" + prefix + "-" + stem + suffix;
      if (std::filesystem::exists(p)) return p;
    }
    L2O_FAIL("data set file '", dir, "/", prefix, "-", stem, "[.gz]' is missing (", package_hint, ")");
  };
  const torch::Tensor images = read_idx(find("images-idx3-ubyte"));
  const torch::Tensor labels = read_idx(find("labels-idx1-ubyte"));
  L2O_CHECK(images.dim() == 3 && labels.dim() == 1 && images.size(0) == labels.size(0), "data set in '", dir,
            "': ", prefix, " images and labels disagree (", images.sizes(), " vs ", labels.sizes(), ")");
  return {images.unsqueeze(1).to(torch::kFloat) / 255.0, labels.to(torch::kLong)};
}

}  // namespace data
}  // namespace l2o
