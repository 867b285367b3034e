#pragma once
/// Machine- and human-readable results: per-step CSV, JSON summary, a Markdown table and a
/// loss-vs-step plot (gnuplot, log scale, PNG and SVG). Every file is written atomically.
#include <l2o/eval/evaluate.h>

#include <string>
#include <vector>

namespace l2o {
namespace eval {

/// `optimizer,spec,seed,step,loss` rows.
std::string curves_csv(const std::vector<Curves>& curves);
/// Markdown table: optimizer, Σ losses (mean ± s.e.), final loss (mean ± s.e.), ratio to `reference`
/// (index into summaries, or -1 for none), diverged runs.
std::string summary_table(const std::vector<Summary>& summaries, int reference = -1);
/// JSON object with one entry per optimizer plus the given metadata (a JSON object as text).
std::string summary_json(const std::vector<Summary>& summaries, const std::string& metadata_json);

/// Draws the mean loss per step of every optimizer (log y) to `<prefix>.png` and `<prefix>.svg`
/// with gnuplot. Throws l2o::Error if gnuplot is missing or fails.
void plot_curves(const std::string& prefix, const std::vector<Curves>& curves, const std::string& title,
                 const std::string& ylabel = "loss");

/// Draws columns of a CSV file against its first column (used for the meta-training curve).
void plot_csv(const std::string& png_path, const std::string& csv_path, const std::vector<std::string>& columns,
              const std::string& title, bool log_y);

}  // namespace eval
}  // namespace l2o
