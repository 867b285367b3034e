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

/// `optimizer,spec,seed,step,train_loss,...,seconds_per_step` rows of every record.
std::string records_csv(const std::vector<Curves>& curves);
/// A record's field by name (train_loss, train_accuracy, test_loss, test_accuracy, grad_norm,
/// param_norm, seconds_per_step).
double record_field(const Record& record, const std::string& field);
/// Draws the mean over seeds of one record field per optimizer against the step.
void plot_records(const std::string& prefix, const std::vector<Curves>& curves, const std::string& field,
                  const std::string& title, bool log_y);
/// Writes the whole report of a meta-test into `dir`: curves.csv, summary.json (metadata + summaries),
/// table.md (ratios against summaries[reference] when reference >= 0), loss.png/svg and, when there
/// are records, records.csv and train_loss / test_loss / test_accuracy plots (the test ones when the
/// problem has a test split). Returns the table.
std::string write_report(const std::string& dir, const std::vector<Curves>& curves,
                         const std::vector<Summary>& summaries, const std::string& metadata_json, int reference,
                         const std::string& title);
/// Runs gnuplot on the script file `script_path` (its data and output files are the caller's).
/// Throws l2o::Error with gnuplot's first line of output if gnuplot is missing or fails.
void run_gnuplot(const std::string& script_path);
/// Draws columns of a CSV file against its first column (used for the meta-training curve). Columns
/// without any value are left out; `log_y` falls back to a linear axis when a value is <= 0.
void plot_csv(const std::string& png_path, const std::string& csv_path, const std::vector<std::string>& columns,
              const std::string& title, bool log_y, const std::string& xlabel = "meta-iteration");

}  // namespace eval
}  // namespace l2o
