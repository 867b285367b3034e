#pragma once
/// Atomic file output: write to a temporary file beside the target, then rename, so a crash never
/// leaves a half-written result or checkpoint.
#include <functional>
#include <string>

namespace l2o {
namespace io {

/// Writes `content` to `path` atomically. Throws l2o::Error with the path on failure.
void write_text_atomic(const std::string& path, const std::string& content);

/// Calls `writer(tmp_path)` and renames tmp_path to `path`; removes tmp_path if writer throws.
void write_atomic(const std::string& path, const std::function<void(const std::string&)>& writer);

/// Creates `dir` (and parents) if needed and checks that files can be written in it, so a run fails
/// before any work rather than after it. Throws l2o::Error naming the folder.
void ensure_writable_dir(const std::string& dir);

/// Reads a whole text file; throws l2o::Error naming the path if it cannot.
std::string read_text(const std::string& path);

/// `s` as one CSV field (RFC 4180): in double quotes, inner quotes doubled, when it holds a comma,
/// a quote or a newline, or always with `always_quote`.
std::string csv_field(const std::string& s, bool always_quote = false);

}  // namespace io
}  // namespace l2o
