#pragma once
/// Library and checkpoint format versions.
namespace l2o {
/// Semantic version of the library.
constexpr const char* kVersion = "0.1.0";
/// Checkpoint format version; bumped whenever the archive layout changes.
constexpr int kCheckpointFormat = 1;
}  // namespace l2o
