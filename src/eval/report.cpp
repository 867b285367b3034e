#include <l2o/core/error.h>
#include <l2o/core/spec.h>
#include <l2o/eval/report.h>
#include <l2o/io/files.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
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

// Runs gnuplot on `script`; the script and data files are temporary.
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
}  // namespace

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
                               {"seeds", s.seeds}});
  }
  return j.dump(2) + "\n";
}

void plot_curves(const std::string& prefix, const std::vector<Curves>& curves, const std::string& title,
                 const std::string& ylabel) {
  // Data: one block per optimizer (mean over the seeds that reached step t), separated by two blank
  // lines so gnuplot can address them with `index`.
  std::ostringstream data;
  for (const auto& c : curves) {
    size_t len = 0;
    for (const auto& f : c.losses) len = std::max(len, f.size());
    for (size_t t = 0; t < len; ++t) {
      double sum = 0;
      int n = 0;
      for (const auto& f : c.losses)
        if (t < f.size() && std::isfinite(f[t])) sum += f[t], ++n;
      if (n > 0 && sum / n > 0) data << t << ' ' << format_double(sum / n) << '\n';
    }
    data << "\n\n";
  }
  const std::string dat = prefix + ".plotdata.tmp", gp = prefix + ".gp.tmp";
  io::write_text_atomic(dat, data.str());
  std::ostringstream script;
  std::string plot;
  for (size_t i = 0; i < curves.size(); ++i)
    plot += (i ? ", " : "") + quote(dat) + " index " + std::to_string(i) + " using 1:2 with lines lw 2 title " +
            quote(curves[i].label);
  const std::string common = "set title " + quote(title) + "\nset xlabel 'step'\nset ylabel " + quote(ylabel) +
                             "\nset logscale y\nset grid\nset key outside right\n";
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

void plot_csv(const std::string& png_path, const std::string& csv_path, const std::vector<std::string>& columns,
              const std::string& title, bool log_y) {
  std::string plot;
  for (const auto& c : columns)
    plot += (plot.empty() ? "" : ", ") + quote(csv_path) + " using 1:" + quote(c) + " with lines lw 2 title " + quote(c);
  std::ostringstream script;
  script << "set datafile separator ','\nset datafile missing ''\nset key autotitle columnhead\n"
         << "set terminal pngcairo noenhanced size 1000,600 font ',11'\nset output " << quote(png_path + ".tmp") << '\n'
         << "set title " << quote(title) << "\nset xlabel 'meta-iteration'\nset grid\n"
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
