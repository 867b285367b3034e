#include <l2o/core/error.h>
#include <l2o/io/shipped_checkpoints.h>

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <vector>

#ifndef L2O_INSTALL_CHECKPOINT_DIR
#define L2O_INSTALL_CHECKPOINT_DIR ""
#endif
#ifndef L2O_SOURCE_CHECKPOINT_DIR
#define L2O_SOURCE_CHECKPOINT_DIR ""
#endif

namespace l2o {
namespace io {

namespace fs = std::filesystem;

// The executable or shared object this function was linked into: an installed tree is relocatable
// (cmake --install --prefix P), so its own location says where P/share is.
std::vector<std::string> installed_share_dirs(const std::string& sub) {
  std::vector<std::string> out;
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&installed_share_dirs), &info) == 0 || info.dli_fname == nullptr) return out;
  std::error_code ec;
  fs::path dir = fs::weakly_canonical(fs::path(info.dli_fname), ec).parent_path();
  // <prefix>/bin/l2o is one level below the prefix, <prefix>/lib/python3/dist-packages/l2o/_l2o.so four.
  for (int up = 0; up < 5 && !dir.empty(); ++up, dir = dir.parent_path()) {
    out.push_back((dir / "share" / "l2o" / sub).string());
    if (dir == dir.root_path()) break;
  }
  return out;
}

std::string checkpoint_dir(const std::string& package_dir) {
  if (const char* env = std::getenv("L2O_CHECKPOINT_DIR"); env != nullptr && *env != '\0') {
    L2O_CHECK(fs::is_directory(env), "L2O_CHECKPOINT_DIR='", env, "' is not a directory");
    return env;
  }
  std::vector<std::string> tried = installed_share_dirs("checkpoints");
  for (const char* dir : {package_dir.c_str(), L2O_INSTALL_CHECKPOINT_DIR, L2O_SOURCE_CHECKPOINT_DIR})
    if (*dir != '\0') tried.push_back(dir);
  std::string list;
  for (const auto& dir : tried) {
    std::error_code ec;
    if (fs::is_directory(dir, ec)) return dir;
    list += (list.empty() ? "" : ", ") + dir;
  }
  L2O_FAIL("no shipped checkpoints found (looked in ", list, "; set L2O_CHECKPOINT_DIR)");
}

std::string shipped_checkpoint(const std::string& name, const std::string& package_dir) {
  const std::string dir = checkpoint_dir(package_dir);
  const fs::path path = fs::path(dir) / name;
  if (fs::is_regular_file(path)) return path.string();
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().extension() == ".pt") names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  std::string known;
  for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
  L2O_FAIL("no shipped checkpoint '", name, "' in ", dir, " (it holds: ", known.empty() ? "none" : known, ")");
}

}  // namespace io
}  // namespace l2o
