#pragma once
/// The trained optimizers shipped with l2o (checkpoints/ in the source tree, installed to
/// <prefix>/share/l2o/checkpoints), found without a path.
#include <string>
#include <vector>

/// find_package(l2o) defines this for its users as the package's own share/l2o/checkpoints, so that a
/// program built against an installed l2o finds that prefix's checkpoints.
#ifndef L2O_PACKAGE_CHECKPOINT_DIR
#define L2O_PACKAGE_CHECKPOINT_DIR ""
#endif

namespace l2o {
namespace io {

/// <prefix>/share/l2o/<sub> for each prefix the binary holding l2o (an installed `l2o`, the Python
/// module, a program linked against the package) may sit under, nearest first; they need not exist.
std::vector<std::string> installed_share_dirs(const std::string& sub);

/// The directory of the shipped checkpoints, the first that exists of: $L2O_CHECKPOINT_DIR;
/// share/l2o/checkpoints under the prefix of the binary that holds l2o (an installed `l2o`, the
/// Python module); `package_dir` (the find_package(l2o) prefix, see above); the install prefix l2o
/// was configured with; the source tree's checkpoints/. Throws l2o::Error listing the places tried.
std::string checkpoint_dir(const std::string& package_dir = L2O_PACKAGE_CHECKPOINT_DIR);

/// The path of the shipped checkpoint `name` (e.g. "hrnn_mnist.pt"); throws l2o::Error naming the
/// directory and the checkpoints it holds when there is no such file.
std::string shipped_checkpoint(const std::string& name, const std::string& package_dir = L2O_PACKAGE_CHECKPOINT_DIR);

}  // namespace io
}  // namespace l2o
