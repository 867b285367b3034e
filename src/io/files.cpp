#include <l2o/core/error.h>
#include <l2o/io/files.h>

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace l2o {
namespace io {

namespace fs = std::filesystem;

void write_atomic(const std::string& path, const std::function<void(const std::string&)>& writer) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  try {
    writer(tmp);
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    L2O_FAIL("cannot write '", path, "': ", why);
  }
}

void write_text_atomic(const std::string& path, const std::string& content) {
  write_atomic(path, [&](const std::string& tmp) {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    L2O_CHECK(out.good(), "cannot write '", path, "': ", std::strerror(errno));
    out << content;
    out.flush();
    L2O_CHECK(out.good(), "cannot write '", path, "': write failed");
  });
}

void ensure_writable_dir(const std::string& dir) {
  L2O_CHECK(!dir.empty(), "output folder is empty");
  std::error_code ec;
  fs::create_directories(dir, ec);
  L2O_CHECK(!ec && fs::is_directory(dir), "cannot create output folder '", dir, "': ",
            ec ? ec.message() : "not a directory");
  L2O_CHECK(::access(dir.c_str(), W_OK | X_OK) == 0, "output folder '", dir, "' is not writable");
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  L2O_CHECK(in.good(), "cannot read '", path, "': ", std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string csv_field(const std::string& s, bool always_quote) {
  if (!always_quote && s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

}  // namespace io
}  // namespace l2o
