#include <l2o/core/error.h>
#include <l2o/core/spec.h>
#include <l2o/eval/report.h>
#include <l2o/io/files.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

namespace l2o {
namespace eval {

namespace {
std::string fmt(double v, int precision = 4) {
  if (std::isinf(v)) return "inf";
  if (std::isnan(v)) return "nan";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*g", precision, v);
  return buf;
}

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) out += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
  return out + "\"";
}
}  // namespace

void run_gnuplot(const std::string& script_path) {
  const std::string cmd = "gnuplot " + script_path + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  L2O_CHECK(pipe != nullptr, "cannot start gnuplot (install the Debian package gnuplot-nox)");
  std::string output;
  char buf[256];
  while (std::fgets(buf, sizeof(buf), pipe) != nullptr) output += buf;
  const int status = ::pclose(pipe);
  L2O_CHECK(status == 0, "gnuplot failed (install the Debian package gnuplot-nox): ",
            output.substr(0, output.find('\n')));
}

std::string curves_csv(const std::vector<Curves>& curves) {
  std::ostringstream out;
  out << "optimizer,spec,seed,step,loss\n";
  for (const auto& c : curves)
    for (size_t s = 0; s < c.losses.size(); ++s)
      for (size_t t = 0; t < c.losses[s].size(); ++t)
        out << quote(c.label) << ',' << quote(c.rule_spec) << ',' << s << ',' << t << ','
            << format_double(c.losses[s][t]) << '\n';
  return out.str();
}

std::string summary_table(const std::vector<Summary>& summaries, int reference) {
  std::ostringstream out;
  if (!summaries.empty() && summaries.front().has_records) {
    // Classification runs: the final full-split values of every seed.
    out << "| optimizer | final train loss | final train accuracy | final test loss | final test accuracy |"
           " s / step | diverged |\n|---|---|---|---|---|---|---|\n";
    for (const auto& s : summaries)
      out << "| " << s.label << " | " << fmt(s.mean_train_loss) << " ± " << fmt(s.se_train_loss, 2) << " | "
          << fmt(s.mean_train_accuracy) << " ± " << fmt(s.se_train_accuracy, 2) << " | " << fmt(s.mean_test_loss)
          << " ± " << fmt(s.se_test_loss, 2) << " | " << fmt(s.mean_test_accuracy) << " ± "
          << fmt(s.se_test_accuracy, 2) << " | " << fmt(s.seconds_per_step, 3) << " | " << s.diverged << '/'
          << s.seeds << " |\n";
    return out.str();
  }
  out << "| optimizer | sum of losses (mean ± s.e.) | final loss (mean ± s.e.) |";
  if (reference >= 0) out << " sum / " << summaries[reference].label << " |";
  out << " diverged |\n|---|---|---|" << (reference >= 0 ? "---|" : "") << "---|\n";
  for (const auto& s : summaries) {
    out << "| " << s.label << " | " << fmt(s.mean_sum) << " ± " << fmt(s.se_sum, 2) << " | " << fmt(s.mean_final)
        << " ± " << fmt(s.se_final, 2) << " |";
    if (reference >= 0) out << ' ' << fmt(s.mean_sum / summaries[reference].mean_sum, 3) << " |";
    out << ' ' << s.diverged << '/' << s.seeds << " |\n";
  }
  return out.str();
}

std::string summary_json(const std::vector<Summary>& summaries, const std::string& metadata_json) {
  nlohmann::json j = nlohmann::json::parse(metadata_json);
  auto num = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
  for (const auto& s : summaries) {
    j["optimizers"].push_back({{"label", s.label},
                               {"spec", s.rule_spec},
                               {"sum_of_losses_mean", num(s.mean_sum)},
                               {"sum_of_losses_se", num(s.se_sum)},
                               {"final_loss_mean", num(s.mean_final)},
                               {"final_loss_se", num(s.se_final)},
                               {"diverged_runs", s.diverged},
                               {"final_train_loss_mean", num(s.mean_train_loss)},
                               {"final_train_loss_se", num(s.se_train_loss)},
                               {"final_train_accuracy_mean", num(s.mean_train_accuracy)},
                               {"final_train_accuracy_se", num(s.se_train_accuracy)},
                               {"final_test_loss_mean", num(s.mean_test_loss)},
                               {"final_test_loss_se", num(s.se_test_loss)},
                               {"final_test_accuracy_mean", num(s.mean_test_accuracy)},
                               {"final_test_accuracy_se", num(s.se_test_accuracy)},
                               {"seconds_per_step", num(s.seconds_per_step)},
                               {"seeds", s.seeds}});
  }
  return j.dump(2) + "\n";
}

namespace {
using Series = std::vector<std::pair<double, double>>;

// Draws one line per series (log y optional) to <prefix>.png and <prefix>.svg.
void plot_series(const std::string& prefix, const std::vector<std::string>& names, const std::vector<Series>& series,
                 const std::string& title, const std::string& ylabel, bool log_y) {
  // One block per series, separated by two blank lines so gnuplot can address them with `index`.
  std::ostringstream data;
  for (const auto& line : series) {
    for (const auto& xy : line)
      if (std::isfinite(xy.second) && (!log_y || xy.second > 0))
        data << format_double(xy.first) << ' ' << format_double(xy.second) << '\n';
    data << "\n\n";
  }
  const std::string dat = prefix + ".plotdata.tmp", gp = prefix + ".gp.tmp";
  io::write_text_atomic(dat, data.str());
  std::ostringstream script;
  std::string plot;
  for (size_t i = 0; i < series.size(); ++i)
    plot += (i ? ", " : "") + quote(dat) + " index " + std::to_string(i) + " using 1:2 with lines lw 2 title " +
            quote(names[i]);
  const std::string common = "set title " + quote(title) + "\nset xlabel 'step'\nset ylabel " + quote(ylabel) +
                             (log_y ? "\nset logscale y" : "") + "\nset grid\nset key outside right\n";
  script << "set terminal pngcairo noenhanced size 1000,600 font ',11'\nset output " << quote(prefix + ".png.tmp") << '\n'
         << common << "plot " << plot << "\nset terminal svg noenhanced size 1000,600\nset output "
         << quote(prefix + ".svg.tmp") << "\nreplot\nunset output\n";
  io::write_text_atomic(gp, script.str());
  try {
    run_gnuplot(gp);
  } catch (...) {
    std::remove(dat.c_str());
    std::remove(gp.c_str());
    std::remove((prefix + ".png.tmp").c_str());
    std::remove((prefix + ".svg.tmp").c_str());
    throw;
  }
  std::remove(dat.c_str());
  std::remove(gp.c_str());
  std::rename((prefix + ".png.tmp").c_str(), (prefix + ".png").c_str());
  std::rename((prefix + ".svg.tmp").c_str(), (prefix + ".svg").c_str());
}
}  // namespace

void plot_curves(const std::string& prefix, const std::vector<Curves>& curves, const std::string& title,
                 const std::string& ylabel) {
  std::vector<std::string> names;
  std::vector<Series> series;
  for (const auto& c : curves) {
    size_t len = 0;
    for (const auto& f : c.losses) len = std::max(len, f.size());
    // Long minibatch curves are averaged over bins of steps (at most ~1000 points per line).
    const size_t bin = std::max<size_t>(1, len / 1000);
    Series line;
    for (size_t t0 = 0; t0 < len; t0 += bin) {
      double sum = 0;
      int n = 0;
      for (size_t t = t0; t < std::min(len, t0 + bin); ++t)
        for (const auto& f : c.losses)
          if (t < f.size() && std::isfinite(f[t])) sum += f[t], ++n;
      if (n > 0) line.emplace_back(static_cast<double>(t0), sum / n);
    }
    names.push_back(c.label);
    series.push_back(std::move(line));
  }
  plot_series(prefix, names, series, title, ylabel, true);
}

void plot_records(const std::string& prefix, const std::vector<Curves>& curves, const std::string& field,
                  const std::string& title, bool log_y) {
  std::vector<std::string> names;
  std::vector<Series> series;
  for (const auto& c : curves) {
    std::map<int64_t, std::pair<double, int>> at;
    for (const auto& rs : c.records)
      for (const auto& r : rs) {
        const double v = record_field(r, field);
        if (std::isfinite(v)) at[r.step].first += v, at[r.step].second += 1;
      }
    Series line;
    for (const auto& kv : at) line.emplace_back(static_cast<double>(kv.first), kv.second.first / kv.second.second);
    names.push_back(c.label);
    series.push_back(std::move(line));
  }
  plot_series(prefix, names, series, title, field, log_y);
}

double record_field(const Record& r, const std::string& field) {
  if (field == "train_loss") return r.train_loss;
  if (field == "train_accuracy") return r.train_accuracy;
  if (field == "test_loss") return r.test_loss;
  if (field == "test_accuracy") return r.test_accuracy;
  if (field == "grad_norm") return r.grad_norm;
  if (field == "param_norm") return r.param_norm;
  if (field == "seconds_per_step") return r.seconds_per_step;
  L2O_FAIL("unknown record field '", field, "'");
}

std::string records_csv(const std::vector<Curves>& curves) {
  std::ostringstream out;
  out << "optimizer,spec,seed,step,train_loss,train_accuracy,test_loss,test_accuracy,grad_norm,param_norm,"
         "seconds_per_step\n";
  for (const auto& c : curves)
    for (size_t s = 0; s < c.records.size(); ++s)
      for (const auto& r : c.records[s])
        out << quote(c.label) << ',' << quote(c.rule_spec) << ',' << s << ',' << r.step << ','
            << format_double(r.train_loss) << ',' << format_double(r.train_accuracy) << ','
            << format_double(r.test_loss) << ',' << format_double(r.test_accuracy) << ','
            << format_double(r.grad_norm) << ',' << format_double(r.param_norm) << ','
            << format_double(r.seconds_per_step) << '\n';
  return out.str();
}

std::string write_report(const std::string& dir, const std::vector<Curves>& curves,
                         const std::vector<Summary>& summaries, const std::string& metadata_json, int reference,
                         const std::string& title) {
  const std::string table = summary_table(summaries, reference);
  io::write_text_atomic(dir + "/curves.csv", curves_csv(curves));
  io::write_text_atomic(dir + "/summary.json", summary_json(summaries, metadata_json));
  io::write_text_atomic(dir + "/table.md", table);
  const bool records = !summaries.empty() && summaries.front().has_records;
  plot_curves(dir + "/loss", curves, title, records ? "minibatch loss (mean over seeds)" : "loss");
  if (records) {
    io::write_text_atomic(dir + "/records.csv", records_csv(curves));
    plot_records(dir + "/train_loss", curves, "train_loss", title + " (full train split)", true);
    // Problems without a test split (the zoo's) have no test values to draw.
    bool has_test = false;
    for (const auto& c : curves)
      for (const auto& rs : c.records)
        for (const auto& r : rs) has_test = has_test || std::isfinite(r.test_loss);
    if (has_test) {
      plot_records(dir + "/test_loss", curves, "test_loss", title + " (test split)", true);
      plot_records(dir + "/test_accuracy", curves, "test_accuracy", title + " (test split)", false);
    }
  }
  return table;
}

void plot_csv(const std::string& png_path, const std::string& csv_path, const std::vector<std::string>& columns,
              const std::string& title, bool log_y, const std::string& xlabel) {
  // Columns without a single number (validation never run) are left out, and a log scale is
  // only used when every value is positive (log-ratio meta-losses are negative).
  std::vector<std::string> drawn;
  {
    std::ifstream in(csv_path);
    L2O_CHECK(in.good(), "cannot read '", csv_path, "' to plot it");
    std::string line;
    std::getline(in, line);
    std::vector<std::string> header;
    for (std::stringstream ss(line); std::getline(ss, line, ',');) header.push_back(line);
    std::vector<int> index;
    for (const auto& c : columns) {
      const auto it = std::find(header.begin(), header.end(), c);
      L2O_CHECK(it != header.end(), "'", csv_path, "' has no column '", c, "' to plot");
      index.push_back(static_cast<int>(it - header.begin()));
    }
    std::vector<bool> has_value(columns.size(), false);
    while (std::getline(in, line)) {
      std::vector<std::string> cells;
      for (std::stringstream ss(line); std::getline(ss, line, ',');) cells.push_back(line);
      for (size_t k = 0; k < columns.size(); ++k) {
        if (index[k] >= static_cast<int>(cells.size()) || cells[index[k]].empty()) continue;
        const double v = std::strtod(cells[index[k]].c_str(), nullptr);
        if (!std::isfinite(v)) continue;
        has_value[k] = true;
        if (v <= 0) log_y = false;
      }
    }
    for (size_t k = 0; k < columns.size(); ++k)
      if (has_value[k]) drawn.push_back(columns[k]);
    L2O_CHECK(!drawn.empty(), "'", csv_path, "' has no values to plot");
  }
  std::string plot;
  for (const auto& c : drawn)
    plot += (plot.empty() ? "" : ", ") + quote(csv_path) + " using 1:" + quote(c) + " with lines lw 2 title " + quote(c);
  std::ostringstream script;
  script << "set datafile separator ','\nset datafile missing ''\nset key autotitle columnhead\n"
         << "set terminal pngcairo noenhanced size 1000,600 font ',11'\nset output " << quote(png_path + ".tmp") << '\n'
         << "set title " << quote(title) << "\nset xlabel " << quote(xlabel) << "\nset grid\n"
         << (log_y ? "set logscale y\n" : "") << "plot " << plot << "\nunset output\n";
  const std::string gp = png_path + ".gp.tmp";
  io::write_text_atomic(gp, script.str());
  try {
    run_gnuplot(gp);
  } catch (...) {
    std::remove(gp.c_str());
    std::remove((png_path + ".tmp").c_str());
    throw;
  }
  std::remove(gp.c_str());
  std::rename((png_path + ".tmp").c_str(), png_path.c_str());
}

}  // namespace eval
}  // namespace l2o
