#include <l2o/core/error.h>
#include <l2o/core/spec.h>
#include <l2o/core/version.h>
#include <l2o/io/checkpoint.h>
#include <l2o/io/files.h>
#include <l2o/learned/registry.h>

#include <torch/torch.h>
#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace l2o {
namespace io {

namespace {
constexpr const char* kKind = "l2o-checkpoint";

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

// LibTorch's zip reader skips the CRC-32 of the records it reads (miniz built without the check), and
// its TorchScript deserializer is not safe on damaged input: the checkpoint fuzz target found a
// flipped byte in data.pkl that makes torch::jit's type parser read out of bounds (SEGV). So every
// stored record (zip64 included) is checked against its CRC first, which turns damage into a clear error. (A file
// crafted with valid CRCs still reaches LibTorch: load only checkpoints you trust, as with torch.load.)
// CRC-32 of the raw deflate stream `in` (LibTorch deflates its code/ records) once inflated;
// `fail` is called (and must throw) when the stream is damaged.
template <typename Fail>
uint32_t inflated_crc(const Bytef* in, uint64_t size, const Fail& fail) {
  z_stream z{};
  if (inflateInit2(&z, -MAX_WBITS) != Z_OK) fail();
  z.next_in = const_cast<Bytef*>(in);
  z.avail_in = static_cast<uInt>(std::min<uint64_t>(size, UINT32_MAX));
  uLong crc = crc32(0L, Z_NULL, 0);
  Bytef out[1 << 14];
  int rc = Z_OK;
  while (rc == Z_OK) {
    z.next_out = out;
    z.avail_out = sizeof(out);
    rc = inflate(&z, Z_NO_FLUSH);
    crc = crc32(crc, out, static_cast<uInt>(sizeof(out) - z.avail_out));
    if (rc == Z_BUF_ERROR && z.avail_in == 0) break;  // input ended before the stream did
  }
  inflateEnd(&z);
  if (rc != Z_STREAM_END) fail();
  return static_cast<uint32_t>(crc);
}

void verify_records(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto u16 = [&](size_t at) -> uint32_t {
    return at + 2 <= data.size() ? uint32_t(uint8_t(data[at])) | uint32_t(uint8_t(data[at + 1])) << 8 : 0;
  };
  const auto u32 = [&](size_t at) -> uint32_t { return at + 4 <= data.size() ? u16(at) | u16(at + 2) << 16 : 0; };
  const auto corrupt = [&](const std::string& why) {
    L2O_FAIL("checkpoint '", path, "' is corrupt or not an l2o checkpoint (", why, ")");
  };
  // End of central directory: the last "PK\5\6" within the final 64 KiB + 22 bytes.
  size_t eocd = std::string::npos;
  for (size_t i = data.size() >= 22 ? data.size() - 22 : 0; data.size() >= 22; --i) {
    if (u32(i) == 0x06054b50) {
      eocd = i;
      break;
    }
    if (i == 0 || data.size() - i > 65557) break;
  }
  if (eocd == std::string::npos) corrupt("no zip directory");
  const auto u64 = [&](size_t at) -> uint64_t { return uint64_t{u32(at)} | uint64_t{u32(at + 4)} << 32; };
  uint64_t entries = u16(eocd + 10), directory = u32(eocd + 16);
  if (entries == 0xFFFF || directory == 0xFFFFFFFF) {  // zip64: the locator precedes the record
    if (eocd < 20 || u32(eocd - 20) != 0x07064b50) corrupt("no zip64 directory locator");
    const uint64_t record = u64(eocd - 20 + 8);
    if (record > data.size() || u32(record) != 0x06064b50) corrupt("bad zip64 directory record");
    entries = u64(record + 32);
    directory = u64(record + 48);
  }
  if (directory > data.size() || entries > data.size() / 46) corrupt("bad zip directory");
  size_t at = directory;
  for (uint64_t e = 0; e < entries; ++e) {
    if (u32(at) != 0x02014b50) corrupt("bad zip directory entry");
    const uint32_t method = u16(at + 10), crc = u32(at + 16);
    uint64_t size = u32(at + 20), local = u32(at + 42);
    const uint32_t name_len = u16(at + 28), extra_len = u16(at + 30), comment_len = u16(at + 32);
    const std::string name = data.substr(std::min(data.size(), at + 46), name_len);
    if (size == 0xFFFFFFFF || local == 0xFFFFFFFF || u32(at + 24) == 0xFFFFFFFF) {
      // zip64 extra field 0x0001: the 8-byte values that are 0xFFFFFFFF above, in the order
      // uncompressed size, compressed size, local header offset.
      size_t x = at + 46 + name_len;
      const size_t x_end = x + extra_len;
      while (x + 4 <= x_end && u16(x) != 0x0001) x += 4 + u16(x + 2);
      if (x + 4 > x_end) corrupt("zip record '" + name + "' lacks its zip64 sizes");
      size_t field = x + 4;
      if (u32(at + 24) == 0xFFFFFFFF) field += 8;
      if (size == 0xFFFFFFFF) size = u64(field), field += 8;
      if (local == 0xFFFFFFFF) local = u64(field);
    }
    at += 46 + size_t{name_len} + extra_len + comment_len;
    if (method != 0 && method != 8) corrupt("zip record '" + name + "' uses an unknown compression");
    if (local > data.size()) corrupt("bad zip record offset for '" + name + "'");
    if (u32(local) != 0x04034b50) corrupt("bad zip record header for '" + name + "'");
    const uint64_t begin = local + 30 + u16(local + 26) + u16(local + 28);
    if (begin > data.size() || data.size() - begin < size) corrupt("zip record '" + name + "' is truncated");
    const auto* bytes = reinterpret_cast<const Bytef*>(data.data() + begin);
    const uint32_t actual = method == 0 ? static_cast<uint32_t>(crc32_z(0L, bytes, static_cast<z_size_t>(size)))
                                        : inflated_crc(bytes, size, [&] { corrupt("zip record '" + name + "' does not inflate"); });
    if (actual != crc) corrupt("zip record '" + name + "' fails its CRC-32 check");
  }
}

torch::serialize::InputArchive open_archive(const std::string& path) {
  L2O_CHECK(std::filesystem::is_regular_file(path), "checkpoint '", path, "' does not exist");
  verify_records(path);
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path);
  } catch (const c10::Error& e) {
    L2O_FAIL("checkpoint '", path, "' is corrupt or not an l2o checkpoint (", first_line(e.what_without_backtrace()), ")");
  } catch (const std::exception& e) {
    // LibTorch's unpickler reports some damage with a plain std::runtime_error ("Can't hash IValues
    // with tag 'Tuple'", found by tests/fuzz/checkpoint_fuzz.cpp), not a c10::Error.
    L2O_FAIL("checkpoint '", path, "' is corrupt or not an l2o checkpoint (", first_line(e.what()), ")");
  }
  return archive;
}

std::string read_string(torch::serialize::InputArchive& archive, const std::string& key, const std::string& path) {
  c10::IValue v;
  L2O_CHECK(archive.try_read(key, v) && v.isString(), "checkpoint '", path, "' has no '", key,
            "' entry: not an l2o checkpoint");
  return v.toStringRef();
}

CheckpointInfo read_info(torch::serialize::InputArchive& archive, const std::string& path) {
  CheckpointInfo info;
  L2O_CHECK(read_string(archive, "kind", path) == kKind, "file '", path, "' is not an l2o checkpoint");
  c10::IValue format;
  L2O_CHECK(archive.try_read("format", format) && format.isInt(), "checkpoint '", path, "' has no format version");
  info.format = format.toInt();
  L2O_CHECK(info.format == kCheckpointFormat, "checkpoint '", path, "' has format version ", info.format,
            " but this l2o reads version ", kCheckpointFormat);
  info.rule_spec = read_string(archive, "rule", path);
  info.trainer_json = read_string(archive, "trainer", path);
  return info;
}
}  // namespace

void save_checkpoint(const std::string& path, optim::UpdateRule& rule, const torch::optim::Optimizer* meta_optimizer,
                     const std::string& trainer_json) {
  L2O_CHECK(rule.module() != nullptr, "cannot checkpoint '", rule.name(), "': it has no learned parameters");
  torch::serialize::OutputArchive archive;
  archive.write("kind", c10::IValue(std::string(kKind)));
  archive.write("format", c10::IValue(static_cast<int64_t>(kCheckpointFormat)));
  archive.write("rule", c10::IValue(rule.spec().str()));
  archive.write("trainer", c10::IValue(trainer_json));
  torch::serialize::OutputArchive phi;
  rule.module()->save(phi);
  archive.write("phi", phi);
  if (meta_optimizer != nullptr) {
    torch::serialize::OutputArchive opt;
    meta_optimizer->save(opt);
    archive.write("meta_optimizer", opt);
  }
  write_atomic(path, [&](const std::string& tmp) {
    try {
      archive.save_to(tmp);
    } catch (const c10::Error& e) {
      L2O_FAIL("cannot write checkpoint '", path, "': ", first_line(e.what_without_backtrace()));
    }
  });
}

CheckpointInfo read_checkpoint_info(const std::string& path) {
  auto archive = open_archive(path);
  return read_info(archive, path);
}

namespace {
// Module::load calls Tensor::set_ with the stored tensor, which reinterprets a float64 checkpoint's
// storage in a float32 rule. Here every tensor is read on its own, its shape checked, and copied in
// with a cast, so φ keeps the rule's dtype.
void load_module(torch::nn::Module& module, torch::serialize::InputArchive& archive, const std::string& path) {
  torch::NoGradGuard no_grad;
  auto copy_in = [&](const std::string& key, torch::Tensor& target, bool is_buffer) {
    torch::Tensor stored;
    L2O_CHECK(archive.try_read(key, stored, is_buffer), "checkpoint '", path, "' has no tensor '", key, "'");
    L2O_CHECK(stored.sizes() == target.sizes(), "checkpoint '", path, "': tensor '", key, "' has shape ",
              stored.sizes(), ", the optimizer expects ", target.sizes());
    target.copy_(stored);
  };
  for (auto& p : module.named_parameters(/*recurse=*/false)) copy_in(p.key(), p.value(), false);
  for (auto& b : module.named_buffers(/*recurse=*/false)) copy_in(b.key(), b.value(), true);
  for (const auto& child : module.named_children()) {
    torch::serialize::InputArchive sub;
    L2O_CHECK(archive.try_read(child.key(), sub), "checkpoint '", path, "' has no module '", child.key(), "'");
    load_module(*child.value(), sub, path);
  }
}

// φ and, if asked, the meta-optimizer state from an archive whose header has been read.
// With `same_spec` false only the optimizer's name must agree (φ's names and shapes are checked tensor
// by tensor).
void load_state_from(torch::serialize::InputArchive& archive, const CheckpointInfo& info, const std::string& path,
                     optim::UpdateRule& rule, torch::optim::Optimizer* meta_optimizer, bool same_spec = true) {
  if (same_spec) {
    L2O_CHECK(info.rule_spec == rule.spec().str(), "checkpoint '", path, "' holds optimizer '", info.rule_spec,
              "', not '", rule.spec().str(), "'");
  } else {
    const std::string saved = Spec::parse(info.rule_spec).name();
    L2O_CHECK(saved == rule.spec().name(), "checkpoint '", path, "' holds optimizer '", saved, "', not '",
              rule.spec().name(), "'");
  }
  L2O_CHECK(rule.module() != nullptr, "optimizer '", rule.name(), "' has no learned parameters to load");
  try {
    torch::serialize::InputArchive phi;
    L2O_CHECK(archive.try_read("phi", phi), "checkpoint '", path, "' has no parameters");
    load_module(*rule.module(), phi, path);
    if (meta_optimizer != nullptr) {
      torch::serialize::InputArchive opt;
      L2O_CHECK(archive.try_read("meta_optimizer", opt), "checkpoint '", path, "' has no meta-optimizer state");
      meta_optimizer->load(opt);
    }
  } catch (const l2o::Error&) {
    throw;
  } catch (const c10::Error& e) {
    L2O_FAIL("checkpoint '", path, "' does not match optimizer '", info.rule_spec, "' (",
             first_line(e.what_without_backtrace()), ")");
  } catch (const std::exception& e) {
    L2O_FAIL("checkpoint '", path, "' does not match optimizer '", info.rule_spec, "' (", first_line(e.what()), ")");
  }
}
}  // namespace

void load_into(const std::string& path, optim::UpdateRule& rule, torch::optim::Optimizer* meta_optimizer) {
  auto archive = open_archive(path);
  load_state_from(archive, read_info(archive, path), path, rule, meta_optimizer);
}

void load_phi_into(const std::string& path, optim::UpdateRule& rule) {
  auto archive = open_archive(path);
  load_state_from(archive, read_info(archive, path), path, rule, nullptr, /*same_spec=*/false);
}

std::pair<std::string, std::string> split_checkpoint_options(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || text.find('=', colon) == std::string::npos) return {text, ""};
  return {text.substr(0, colon), text.substr(colon + 1)};
}

optim::RulePtr load_rule(const std::string& path, const std::string& overrides) {
  auto archive = open_archive(path);
  const CheckpointInfo info = read_info(archive, path);
  Spec spec = Spec::parse(info.rule_spec);
  if (!overrides.empty()) {
    const Spec changed = Spec::parse(spec.name() + ":" + overrides);
    // Unknown keys are refused by make_rule (options at their defaults may be absent from the spec).
    for (const auto& [key, value] : changed.values()) spec.set(key, value);
  }
  optim::RulePtr rule = learned::make_rule(spec.str());
  load_state_from(archive, info, path, *rule, nullptr, /*same_spec=*/overrides.empty());
  return rule;
}

}  // namespace io
}  // namespace l2o
