#include <l2o/core/error.h>
#include <l2o/core/spec.h>
#include <l2o/eval/report.h>
#include <l2o/eval/suite.h>
#include <l2o/io/files.h>
#include <l2o/io/shipped_checkpoints.h>
#include <l2o/learned/registry.h>
#include <l2o/problems/registry.h>

#include <nlohmann/json.hpp>
#include <toml++/toml.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <set>
#include <sstream>

#ifndef L2O_DEFAULT_SUITE_DIR
#define L2O_DEFAULT_SUITE_DIR "configs/suites"
#endif

namespace l2o {
namespace eval {

namespace fs = std::filesystem;

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string at(const std::string& source, const toml::source_region& r) {
  return detail::cat(source, ":", r.begin.line, ":", r.begin.column);
}

bool is_folder_name(const std::string& s) {
  return !s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") ==
                           std::string::npos;
}

// Reading typed values of a toml table, with errors that name the file, line and key.
struct Reader {
  const toml::table& table;
  std::string source;
  // Where the table starts ("file" or "file:line:column") and what it is ("the suite", "[[problem]] 2").
  std::string location, what;

  const toml::node* find(const std::string& key, bool required) const {
    const toml::node* n = table.get(key);
    L2O_CHECK(n != nullptr || !required, location, ": ", what, " has no key '", key, "'");
    return n;
  }
  std::string string(const std::string& key, bool required, std::string fallback = "") const {
    const toml::node* n = find(key, required);
    if (n == nullptr) return fallback;
    L2O_CHECK(n->is_string(), at(source, n->source()), ": '", key, "' must be a quoted string");
    return n->as_string()->get();
  }
  int64_t integer(const std::string& key, bool required, int64_t fallback = 0) const {
    const toml::node* n = find(key, required);
    if (n == nullptr) return fallback;
    L2O_CHECK(n->is_integer(), at(source, n->source()), ": '", key, "' must be an integer");
    return n->as_integer()->get();
  }
  double number(const std::string& key, bool required, double fallback = 0) const {
    const toml::node* n = find(key, required);
    if (n == nullptr) return fallback;
    return to_double(*n, key);
  }
  double to_double(const toml::node& n, const std::string& what) const {
    if (const auto* f = n.as_floating_point()) return f->get();
    if (const auto* i = n.as_integer()) return static_cast<double>(i->get());
    L2O_FAIL(at(source, n.source()), ": '", what, "' must be a number");
  }
  void only(const std::vector<std::string>& keys) const {
    for (const auto& [key, node] : table) {
      const std::string k(key.str());
      if (std::find(keys.begin(), keys.end(), k) != keys.end()) continue;
      std::string known;
      for (const auto& x : keys) known += (known.empty() ? "" : ", ") + x;
      L2O_FAIL(at(source, key.source()), ": unknown key '", k, "' in ", what, " (known: ", known, ")");
    }
  }
};

std::string fmt(double v, int precision = 4) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (std::isnan(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*g", precision, v);
  return buf;
}

nlohmann::json num(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

std::string gp_quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) out += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
  return out + "\"";
}

// The baselines every problem runs: the suite's tuned ones, then Adam at the fixed rate.
std::vector<Baseline> problem_baselines(const Suite& suite) {
  std::vector<Baseline> out = suite.baselines;
  out.push_back({fixed_adam_spec(suite), {}});
  return out;
}

// Problem p's baselines and grid seeds: the suite's, or with known rates each tuned baseline's
// "grid" is its rate alone, run on every seed (which is the run the grid search ends with).
std::pair<std::vector<Baseline>, int64_t> baselines_of(const Suite& suite, const SuiteProblem& p, const SuiteRates* rates) {
  std::vector<Baseline> out = problem_baselines(suite);
  if (rates == nullptr) return {out, p.grid_seeds};
  const auto& r = rates->at(p.name);
  for (auto& b : out)
    if (!b.lrs.empty()) b.lrs = {r.at(b.spec)};
  return {out, p.seeds};
}

}  // namespace

std::string fixed_adam_spec(const Suite& suite) {
  return Spec::parse("adam").set("lr", suite.adam_fixed_lr).str();
}

void Suite::validate() const {
  L2O_CHECK(is_folder_name(name), "suite name '", name, "' must be non-empty and use only a-z, A-Z, 0-9, _ and -");
  const std::string in = "suite '" + name + "': ";
  L2O_CHECK(version >= 1, in, "version=", version, " must be >= 1");
  L2O_CHECK(seed >= 0, in, "seed=", seed, " must be >= 0");
  L2O_CHECK(adam_fixed_lr > 0 && std::isfinite(adam_fixed_lr), in, "adam_fixed_lr=", adam_fixed_lr, " must be > 0");
  bool has_adam = false;
  std::set<std::string> specs;
  for (const auto& b : baselines) {
    L2O_CHECK(!b.lrs.empty(), in, "baseline '", b.spec, "' has an empty learning-rate grid");
    for (double lr : b.lrs)
      L2O_CHECK(lr > 0 && std::isfinite(lr), in, "baseline '", b.spec, "': rate ", lr, " must be > 0");
    L2O_CHECK(!Spec::parse(b.spec).has("lr"), in, "baseline '", b.spec,
              "' sets lr itself; its rate comes from its grid (remove lr=...)");
    L2O_CHECK(specs.insert(b.spec).second, in, "baseline '", b.spec, "' is given twice");
    has_adam = has_adam || b.spec == "adam";
  }
  L2O_CHECK(has_adam, in, "[baselines] needs an 'adam' grid (Adam at its best rate is the reference of the scores)");
  L2O_CHECK(!problems.empty(), in, "no [[problem]] entries");
  std::set<std::string> names;
  for (const auto& p : problems) {
    L2O_CHECK(is_folder_name(p.name), in, "problem name '", p.name, "' must be non-empty and use only a-z, A-Z, 0-9, _ and -");
    const std::string pin = in + "problem '" + p.name + "': ";
    L2O_CHECK(names.insert(p.name).second, in, "problem name '", p.name, "' is given twice");
    L2O_CHECK(!p.spec.empty(), pin, "empty spec");
    L2O_CHECK(p.steps > 0, pin, "steps=", p.steps, " must be > 0");
    L2O_CHECK(p.seeds > 0, pin, "seeds=", p.seeds, " must be > 0");
    L2O_CHECK(p.record_every >= 0, pin, "record_every=", p.record_every, " must be >= 0 (0 = no records)");
    L2O_CHECK(p.record_rows >= 0, pin, "record_rows=", p.record_rows, " must be >= 0 (0 = whole splits)");
    L2O_CHECK(p.grid_seeds >= 1 && p.grid_seeds <= p.seeds, pin, "grid_seeds=", p.grid_seeds, " must be in 1..seeds (",
              p.seeds, ")");
  }
}

Suite parse_suite(const std::string& text, const std::string& source) {
  // Only ASCII: toml++ 3.3 reaches undefined behaviour on many non-ASCII code points (src/io/config.cpp).
  {
    int64_t line = 1, column = 1;
    for (char c : text) {
      L2O_CHECK(static_cast<unsigned char>(c) < 0x80, source, ":", line, ":", column,
                ": non-ASCII character in a suite file (write it in ASCII)");
      if (c == '\n') line += 1, column = 1;
      else column += 1;
    }
  }
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    std::string what(e.description());
    std::replace(what.begin(), what.end(), '\n', ' ');
    L2O_FAIL(at(source, e.source()), ": ", what);
  }
  const Reader top{root, source, source, "the suite"};
  top.only({"name", "version", "description", "seed", "adam_fixed_lr", "baselines", "problem"});
  Suite s;
  s.name = top.string("name", true);
  s.version = top.integer("version", true);
  s.description = top.string("description", false);
  s.seed = top.integer("seed", false, 0);
  s.adam_fixed_lr = top.number("adam_fixed_lr", false, 1e-3);
  if (const toml::node* b = top.find("baselines", true)) {
    L2O_CHECK(b->is_table(), at(source, b->source()), ": 'baselines' must be a table [baselines] of spec = [rates]");
    std::vector<std::pair<int64_t, Baseline>> ordered;
    for (const auto& [key, node] : *b->as_table()) {
      const std::string spec(key.str());
      const auto* arr = node.as_array();
      L2O_CHECK(arr != nullptr, at(source, node.source()), ": baseline '", spec, "' must be a list of learning rates");
      Baseline bl{spec, {}};
      for (const auto& x : *arr) bl.lrs.push_back(top.to_double(x, spec));
      ordered.emplace_back(static_cast<int64_t>(key.source().begin.line), std::move(bl));
    }
    // toml::table is ordered by key; keep the file's order for the tables and plots.
    std::stable_sort(ordered.begin(), ordered.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
    for (auto& kv : ordered) s.baselines.push_back(std::move(kv.second));
  }
  if (const toml::node* p = top.find("problem", true)) {
    const auto* arr = p->as_array();
    L2O_CHECK(arr != nullptr && arr->is_array_of_tables(), at(source, p->source()),
              ": 'problem' must be a list of tables ([[problem]] sections)");
    for (size_t i = 0; i < arr->size(); ++i) {
      const toml::table& t = *arr->get(i)->as_table();
      const Reader r{t, source, at(source, t.source()), "[[problem]] " + std::to_string(i + 1)};
      r.only({"name", "spec", "steps", "seeds", "record_every", "record_rows", "grid_seeds"});
      SuiteProblem sp;
      sp.name = r.string("name", true);
      sp.spec = r.string("spec", true);
      sp.steps = r.integer("steps", true);
      sp.seeds = r.integer("seeds", true);
      sp.record_every = r.integer("record_every", false, 0);
      sp.record_rows = r.integer("record_rows", false, 0);
      sp.grid_seeds = r.integer("grid_seeds", false, sp.seeds);
      s.problems.push_back(std::move(sp));
    }
  }
  s.validate();
  return s;
}

std::string default_suite_dir() {
  const char* env = std::getenv("L2O_SUITE_DIR");
  if (env != nullptr && *env != '\0') return env;
  std::error_code ec;
  for (const auto& dir : io::installed_share_dirs("suites"))
    if (fs::is_directory(dir, ec)) return dir;
  return L2O_DEFAULT_SUITE_DIR;
}

std::vector<std::string> list_suites(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file() && e.path().extension() == ".toml") out.push_back(e.path().stem().string());
  std::sort(out.begin(), out.end());
  return out;
}

Suite load_suite(const std::string& name_or_path, const std::string& dir) {
  const bool is_path = name_or_path.find('/') != std::string::npos ||
                       (name_or_path.size() > 5 && name_or_path.substr(name_or_path.size() - 5) == ".toml");
  const std::string path = is_path ? name_or_path : (fs::path(dir) / (name_or_path + ".toml")).string();
  std::error_code ec;
  if (!is_path && !fs::is_regular_file(path, ec)) {
    std::string known;
    for (const auto& n : list_suites(dir)) known += (known.empty() ? "" : ", ") + n;
    L2O_FAIL("unknown suite '", name_or_path, "' (", known.empty() ? "no suites" : "known: " + known, " in ", dir,
             "; or give a path to a .toml file)");
  }
  L2O_CHECK(fs::is_regular_file(path, ec), "suite file '", path, "' does not exist");
  Suite s = parse_suite(io::read_text(path), path);
  const std::string stem = fs::path(path).stem().string();
  L2O_CHECK(s.name == stem, path, ": name = \"", s.name, "\" differs from the file name '", stem,
            "' (a suite is looked up by its file name)");
  s.path = path;
  return s;
}

double loss_ratio(double a, double b) { return a == b ? 1.0 : a / b; }

double median(std::vector<double> xs) {
  if (xs.empty()) return kNaN;
  std::sort(xs.begin(), xs.end());
  const size_t n = xs.size();
  return n % 2 == 1 ? xs[n / 2] : 0.5 * (xs[n / 2 - 1] + xs[n / 2]);
}

int64_t count_not_learned(const Curves& curves, int64_t num_steps) {
  int64_t n = 0;
  for (size_t s = 0; s < curves.losses.size(); ++s) {
    double initial = kNaN, final = kNaN;
    bool complete = false;
    if (s < curves.records.size() && !curves.records[s].empty()) {
      const auto& rs = curves.records[s];
      initial = rs.front().train_loss;
      final = rs.back().train_loss;
      complete = rs.back().step == num_steps && std::isfinite(final);
    } else {
      const auto& f = curves.losses[s];
      if (f.empty()) continue;
      initial = f.front();
      final = f.back();
      complete = static_cast<int64_t>(f.size()) == num_steps + 1 && std::isfinite(final);
    }
    if (complete && final > 0.5 * initial) ++n;
  }
  return n;
}

std::vector<SuiteScore> score_problem(const Comparison& c, const std::vector<std::string>& optimizers, size_t learned,
                                      int best, int fixed, int64_t num_steps) {
  const size_t n = c.summaries.size();
  L2O_CHECK(optimizers.size() == n && c.curves.size() == n && learned + c.baselines.size() == n,
            "score_problem: ", optimizers.size(), " names for ", n, " summaries (", learned, " learned, ",
            c.baselines.size(), " baselines)");
  L2O_CHECK(best >= 0 && best < static_cast<int>(n) && fixed >= 0 && fixed < static_cast<int>(n),
            "score_problem: reference index out of range");
  // Problems without a test split (the zoo's) have no accuracy; summarize() would count a diverged
  // seed as accuracy 0 there.
  bool has_accuracy = false;
  for (const auto& curves : c.curves)
    for (const auto& rs : curves.records)
      for (const auto& r : rs) has_accuracy = has_accuracy || std::isfinite(r.test_accuracy);
  auto loss = [](const Summary& s) { return s.has_records ? s.mean_train_loss : s.mean_final; };
  auto loss_se = [](const Summary& s) { return s.has_records ? s.se_train_loss : s.se_final; };
  auto accuracy = [&](const Summary& s) { return s.has_records && has_accuracy ? s.mean_test_accuracy : kNaN; };
  std::vector<SuiteScore> out;
  for (size_t i = 0; i < n; ++i) {
    const Summary& s = c.summaries[i];
    SuiteScore r;
    r.optimizer = optimizers[i];
    r.label = s.label;
    r.learned = i < learned;
    r.lr = i < learned ? kNaN : c.baselines[i - learned].lr;
    r.final_train_loss = loss(s);
    r.final_train_loss_se = loss_se(s);
    r.test_accuracy = accuracy(s);
    r.test_accuracy_se = std::isnan(r.test_accuracy) ? kNaN : s.se_test_accuracy;
    r.ratio_best = loss_ratio(r.final_train_loss, loss(c.summaries[best]));
    r.ratio_fixed = loss_ratio(r.final_train_loss, loss(c.summaries[fixed]));
    r.accuracy_diff_best = r.test_accuracy - accuracy(c.summaries[best]);
    r.accuracy_diff_fixed = r.test_accuracy - accuracy(c.summaries[fixed]);
    r.seeds = s.seeds;
    r.diverged = s.diverged;
    r.not_learned = count_not_learned(c.curves[i], num_steps);
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<SuiteSummary> summarize_suite(const std::vector<ProblemScores>& problems, const std::string& best_optimizer) {
  std::vector<SuiteSummary> out;
  if (problems.empty()) return out;
  std::vector<std::string> order;
  for (const auto& sc : problems.front().scores)
    if (sc.optimizer != best_optimizer) order.push_back(sc.optimizer);
  for (const auto& name : order) {
    SuiteSummary sum;
    sum.optimizer = name;
    std::vector<double> best, fixed;
    sum.worst_ratio_best = sum.worst_ratio_fixed = -std::numeric_limits<double>::infinity();
    for (const auto& p : problems)
      for (const auto& sc : p.scores) {
        if (sc.optimizer != name) continue;
        sum.learned = sc.learned;
        sum.problems += 1;
        best.push_back(sc.ratio_best);
        fixed.push_back(sc.ratio_fixed);
        sum.wins_best += sc.ratio_best < 1;
        sum.wins_fixed += sc.ratio_fixed < 1;
        if (sc.ratio_best > sum.worst_ratio_best) sum.worst_ratio_best = sc.ratio_best, sum.worst_problem_best = p.problem.name;
        if (sc.ratio_fixed > sum.worst_ratio_fixed)
          sum.worst_ratio_fixed = sc.ratio_fixed, sum.worst_problem_fixed = p.problem.name;
        sum.diverged += sc.diverged;
        sum.not_learned += sc.not_learned;
        sum.seeds += sc.seeds;
      }
    sum.median_ratio_best = median(best);
    sum.median_ratio_fixed = median(fixed);
    out.push_back(std::move(sum));
  }
  return out;
}

SuiteRates read_suite_rates(const std::string& path, const Suite& suite) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(io::read_text(path));
  } catch (const nlohmann::json::exception& e) {
    L2O_FAIL("--rates_from '", path, "' is not a suite.json (", e.what(), ")");
  }
  const std::string what = "--rates_from '" + path + "': ";
  try {
    L2O_CHECK(j.at("suite").get<std::string>() == suite.name && j.at("version").get<int64_t>() == suite.version, what,
              "a run of suite '", j.at("suite").get<std::string>(), "' v", j.at("version").get<int64_t>(), ", not '",
              suite.name, "' v", suite.version);
    SuiteRates rates;
    for (const auto& p : suite.problems) {
      const nlohmann::json* found = nullptr;
      for (const auto& q : j.at("problems"))
        if (q.at("name").get<std::string>() == p.name) found = &q;
      L2O_CHECK(found != nullptr, what, "has no problem '", p.name, "'");
      const auto& q = *found;
      L2O_CHECK(q.at("spec").get<std::string>() == p.spec && q.at("steps").get<int64_t>() == p.steps &&
                    q.at("seeds").get<int64_t>() == p.seeds && q.value("record_every", int64_t{0}) == p.record_every &&
                    q.value("record_rows", int64_t{0}) == p.record_rows,
                what, "problem '", p.name, "' ran with another spec, steps, seeds or records");
      for (const auto& b : suite.baselines) {
        for (const auto& o : q.at("optimizers"))
          if (!o.at("learned").get<bool>() && o.at("optimizer").get<std::string>() == b.spec && o.at("lr").is_number())
            rates[p.name][b.spec] = o.at("lr").get<double>();
        L2O_CHECK(rates[p.name].count(b.spec) > 0, what, "problem '", p.name, "' has no rate for baseline '", b.spec, "'");
      }
    }
    return rates;
  } catch (const nlohmann::json::exception& e) {
    L2O_FAIL(what, "missing or mistyped field (", e.what(), ")");
  }
}

int64_t suite_steps(const Suite& suite, size_t learned, const SuiteRates* rates) {
  int64_t total = 0;
  for (const auto& p : suite.problems) {
    const auto [baselines, grid_seeds] = baselines_of(suite, p, rates);
    total += compare_runs(learned, baselines, p.seeds, grid_seeds) * p.steps;
  }
  return total;
}

SuiteResult run_suite(const Suite& suite, const std::vector<LabelledRule>& learned, const std::string& output_dir,
                      const SuiteProgress& progress, const SuiteRates* rates) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  // Everything is checked before any work, so bad input leaves no files behind.
  suite.validate();
  const std::vector<Baseline> baselines = problem_baselines(suite);
  std::vector<std::string> optimizers;
  std::set<std::string> seen;
  for (const auto& [label, rule] : learned) {
    L2O_CHECK(rule != nullptr, "learned optimizer '", label, "' is null");
    optimizers.push_back(label);
  }
  for (const auto& b : baselines) {
    learned::make_rule(b.spec);
    optimizers.push_back(b.spec);
  }
  for (const auto& o : optimizers)
    L2O_CHECK(seen.insert(o).second, "two optimizers of the suite are called '", o, "' (label them LABEL=PATH)");
  int best = -1;
  for (size_t i = 0; i < baselines.size(); ++i)
    if (baselines[i].spec == "adam") best = static_cast<int>(learned.size() + i);
  const int fixed = static_cast<int>(optimizers.size()) - 1;
  for (const auto& p : suite.problems) {
    try {
      problems::ProblemSet::parse(p.spec);
    } catch (const Error& e) {
      L2O_FAIL("suite '", suite.name, "': problem '", p.name, "': ", e.what());
    }
    if (rates != nullptr)
      for (const auto& b : suite.baselines)
        L2O_CHECK(rates->count(p.name) > 0 && rates->at(p.name).count(b.spec) > 0, "suite '", suite.name,
                  "': no rate given for baseline '", b.spec, "' on problem '", p.name, "'");
  }
  io::ensure_writable_dir(output_dir);

  SuiteResult result;
  const int64_t total = suite_steps(suite, learned.size(), rates);
  int64_t done = 0;
  for (const auto& p : suite.problems) {
    const auto problem_start = Clock::now();
    EvalOptions options;
    options.problem = p.spec;
    options.num_steps = p.steps;
    options.seeds = p.seeds;
    options.seed = suite.seed;
    options.record_every = p.record_every;
    options.record_rows = p.record_rows;
    const auto [run_baselines, grid_seeds] = baselines_of(suite, p, rates);
    const Comparison c = compare(learned, run_baselines, options, grid_seeds, [&](const std::string& label) {
      done += p.steps;
      if (progress) progress(done, total, p.name + ": " + label);
    });
    nlohmann::json grid_rates = nlohmann::json::object(), grid_scores = nlohmann::json::object();
    for (size_t i = 0; i < run_baselines.size(); ++i) {
      if (run_baselines[i].lrs.empty()) continue;
      grid_rates[run_baselines[i].spec] = run_baselines[i].lrs;
      for (const auto& s : c.baselines[i].scores) grid_scores[run_baselines[i].spec].push_back({{"lr", s.first}, {"score", num(s.second)}});
    }
    const nlohmann::json meta = {
        {"suite", suite.name},
        {"suite_version", suite.version},
        {"suite_problem", p.name},
        {"problem", p.spec},
        {"num_steps", p.steps},
        {"seeds", p.seeds},
        {"seed", suite.seed},
        {"record_every", p.record_every},
        {"record_rows", p.record_rows},
        {"grid_seeds", p.grid_seeds},
        {"lr_grid", grid_rates},
        {"grid_scores", grid_scores},
        {"baseline_selection", rates != nullptr
                                   ? std::string("the rates an earlier run of the suite chose (--rates_from), run on all seeds")
                                   : std::string(p.record_every > 0 ? "lowest mean final full train loss"
                                                                    : "lowest mean sum of losses") +
                                         " over the first grid_seeds seeds"}};
    const std::string dir = (fs::path(output_dir) / p.name).string();
    io::ensure_writable_dir(dir);
    write_report(dir, c.curves, c.summaries, meta.dump(), best,
                 suite.name + " v" + std::to_string(suite.version) + ": " + p.name + " (" + p.spec + "), mean over " +
                     std::to_string(p.seeds) + " seeds");
    ProblemScores ps;
    ps.problem = p;
    ps.scores = score_problem(c, optimizers, learned.size(), best, fixed, p.steps);
    ps.seconds = std::chrono::duration<double>(Clock::now() - problem_start).count();
    result.problems.push_back(std::move(ps));
  }
  result.summaries = summarize_suite(result.problems, "adam");
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  write_suite_report(output_dir, suite, result);
  return result;
}

namespace {
std::string fixed_label(const Suite& suite) { return "Adam " + format_double(suite.adam_fixed_lr); }
}  // namespace

std::string suite_table(const Suite& suite, const SuiteResult& result) {
  std::ostringstream out;
  const std::string fx = fixed_label(suite);
  out << "# Held-out suite " << suite.name << " (version " << suite.version << ")\n\n";
  if (!suite.description.empty()) out << suite.description << "\n\n";
  out << "Ratios are the mean final full-train loss over the problem's seeds divided by that of Adam at its best grid "
         "rate (\"/ Adam-best\") and of Adam at lr "
      << format_double(suite.adam_fixed_lr) << " (\"/ " << fx
      << "\"); below 1 is better, \"won\" counts problems with a ratio below 1. A seed that diverged counts as an "
         "infinite loss; \"not learned\" counts finished seeds whose final train loss is above half of the initial "
         "one.\n\n## Summary\n\n";
  out << "| optimizer | median / Adam-best | median / " << fx << " | won vs Adam-best | won vs " << fx
      << " | worst / Adam-best | worst / " << fx << " | diverged seeds | not-learned seeds |\n"
      << "|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& s : result.summaries)
    out << "| " << s.optimizer << (s.learned ? " (learned)" : "") << " | " << fmt(s.median_ratio_best, 3) << " | "
        << fmt(s.median_ratio_fixed, 3) << " | " << s.wins_best << '/' << s.problems << " | " << s.wins_fixed << '/'
        << s.problems << " | " << fmt(s.worst_ratio_best, 3) << " (" << s.worst_problem_best << ") | "
        << fmt(s.worst_ratio_fixed, 3) << " (" << s.worst_problem_fixed << ") | " << s.diverged << '/' << s.seeds
        << " | " << s.not_learned << '/' << s.seeds << " |\n";
  out << "\n## Problems\n\n| problem | spec | steps | seeds (grid) | records | minutes |\n|---|---|---|---|---|---|\n";
  for (const auto& p : result.problems) {
    const auto& q = p.problem;
    const std::string records = q.record_every == 0 ? "none"
                                                    : "every " + std::to_string(q.record_every) +
                                                          (q.record_rows > 0 ? ", " + std::to_string(q.record_rows) + " rows" : "");
    out << "| " << q.name << " | `" << q.spec << "` | " << q.steps << " | " << q.seeds << " (" << q.grid_seeds << ") | "
        << records << " | " << fmt(p.seconds / 60, 3) << " |\n";
  }
  out << "\nTotal: " << fmt(result.seconds / 60, 3) << " minutes.\n\n## Per problem\n\n";
  out << "| problem | optimizer | final train loss | test accuracy | / Adam-best | / " << fx
      << " | diverged | not learned |\n|---|---|---|---|---|---|---|---|\n";
  for (const auto& p : result.problems)
    for (const auto& s : p.scores)
      out << "| " << p.problem.name << " | " << s.label << " | " << fmt(s.final_train_loss) << " ± "
          << fmt(s.final_train_loss_se, 2) << " | "
          << (std::isnan(s.test_accuracy) ? "-" : fmt(s.test_accuracy) + " ± " + fmt(s.test_accuracy_se, 2)) << " | " << fmt(s.ratio_best, 3) << " | " << fmt(s.ratio_fixed, 3) << " | " << s.diverged << '/' << s.seeds
          << " | " << s.not_learned << '/' << s.seeds << " |\n";
  return out.str();
}

std::string suite_json(const Suite& suite, const SuiteResult& result) {
  nlohmann::json j;
  j["suite"] = suite.name;
  j["version"] = suite.version;
  j["description"] = suite.description;
  j["file"] = suite.path;
  j["seed"] = suite.seed;
  j["adam_fixed_lr"] = suite.adam_fixed_lr;
  j["seconds"] = result.seconds;
  j["baselines"] = nlohmann::json::array();
  for (const auto& b : suite.baselines) j["baselines"].push_back({{"spec", b.spec}, {"lr_grid", b.lrs}});
  j["definitions"] = {
      {"final_train_loss", "mean over seeds of the final full-train loss (the final objective without records); "
                           "a diverged seed counts as infinite"},
      {"ratio_to_adam_best", "final_train_loss / that of Adam at its best grid rate (tuned on the first grid_seeds)"},
      {"ratio_to_adam_fixed", "final_train_loss / that of Adam at adam_fixed_lr"},
      {"not_learned", "finished seeds whose final train loss is above half of the initial one"},
      {"wins", "problems with a ratio below 1"},
      {"null", "an infinite or undefined number"}};
  j["problems"] = nlohmann::json::array();
  for (const auto& p : result.problems) {
    nlohmann::json pj = {{"name", p.problem.name},         {"spec", p.problem.spec},
                         {"steps", p.problem.steps},       {"seeds", p.problem.seeds},
                         {"record_every", p.problem.record_every}, {"record_rows", p.problem.record_rows},
                         {"grid_seeds", p.problem.grid_seeds},
                         {"seconds", p.seconds},           {"optimizers", nlohmann::json::array()}};
    for (const auto& s : p.scores)
      pj["optimizers"].push_back({{"optimizer", s.optimizer},
                                  {"label", s.label},
                                  {"learned", s.learned},
                                  {"lr", num(s.lr)},
                                  {"final_train_loss_mean", num(s.final_train_loss)},
                                  {"final_train_loss_se", num(s.final_train_loss_se)},
                                  {"test_accuracy_mean", num(s.test_accuracy)},
                                  {"test_accuracy_se", num(s.test_accuracy_se)},
                                  {"ratio_to_adam_best", num(s.ratio_best)},
                                  {"ratio_to_adam_fixed", num(s.ratio_fixed)},
                                  {"test_accuracy_minus_adam_best", num(s.accuracy_diff_best)},
                                  {"test_accuracy_minus_adam_fixed", num(s.accuracy_diff_fixed)},
                                  {"seeds", s.seeds},
                                  {"diverged", s.diverged},
                                  {"not_learned", s.not_learned}});
    j["problems"].push_back(std::move(pj));
  }
  j["summary"] = nlohmann::json::array();
  for (const auto& s : result.summaries)
    j["summary"].push_back({{"optimizer", s.optimizer},
                            {"learned", s.learned},
                            {"problems", s.problems},
                            {"median_ratio_to_adam_best", num(s.median_ratio_best)},
                            {"median_ratio_to_adam_fixed", num(s.median_ratio_fixed)},
                            {"wins_vs_adam_best", s.wins_best},
                            {"wins_vs_adam_fixed", s.wins_fixed},
                            {"worst_ratio_to_adam_best", num(s.worst_ratio_best)},
                            {"worst_problem_vs_adam_best", s.worst_problem_best},
                            {"worst_ratio_to_adam_fixed", num(s.worst_ratio_fixed)},
                            {"worst_problem_vs_adam_fixed", s.worst_problem_fixed},
                            {"diverged", s.diverged},
                            {"not_learned", s.not_learned},
                            {"seeds", s.seeds}});
  return j.dump(2) + "\n";
}

std::string suite_csv(const Suite& suite, const SuiteResult& result) {
  std::ostringstream out;
  out << "suite,version,problem,spec,steps,seeds,optimizer,label,learned,lr,final_train_loss_mean,"
         "final_train_loss_se,test_accuracy_mean,test_accuracy_se,ratio_to_adam_best,ratio_to_adam_fixed,diverged,"
         "not_learned\n";
  for (const auto& p : result.problems)
    for (const auto& s : p.scores)
      out << io::csv_field(suite.name) << ',' << suite.version << ',' << io::csv_field(p.problem.name) << ','
          << io::csv_field(p.problem.spec) << ',' << p.problem.steps << ',' << p.problem.seeds << ','
          << io::csv_field(s.optimizer) << ',' << io::csv_field(s.label) << ',' << (s.learned ? 1 : 0) << ','
          << format_double(s.lr) << ',' << format_double(s.final_train_loss) << ','
          << format_double(s.final_train_loss_se) << ',' << format_double(s.test_accuracy) << ','
          << format_double(s.test_accuracy_se) << ',' << format_double(s.ratio_best) << ','
          << format_double(s.ratio_fixed) << ',' << s.diverged << ',' << s.not_learned << '\n';
  return out.str();
}

void plot_suite(const std::string& prefix, const Suite& suite, const SuiteResult& result) {
  if (result.problems.empty()) return;
  // One cluster per problem, one bar per optimizer but the reference (whose bar would be 0).
  std::vector<std::string> names;
  for (const auto& s : result.problems.front().scores)
    if (s.optimizer != "adam") names.push_back(s.optimizer == fixed_adam_spec(suite) ? fixed_label(suite) : s.optimizer);
  const double cap = 3;
  bool capped = false;
  std::ostringstream data;
  for (const auto& p : result.problems) {
    data << p.problem.name;
    for (const auto& s : p.scores) {
      if (s.optimizer == "adam") continue;
      double v = std::log10(s.ratio_best);
      if (std::isnan(v)) v = 0;
      if (std::abs(v) > cap) v = v > 0 ? cap : -cap, capped = true;
      data << '\t' << format_double(v);
    }
    data << '\n';
  }
  const std::string dat = prefix + ".plotdata.tmp", gp = prefix + ".gp.tmp";
  io::write_text_atomic(dat, data.str());
  std::string plot;
  for (size_t i = 0; i < names.size(); ++i)
    plot += (i ? ", " : "") + gp_quote(dat) + " using " + std::to_string(i + 2) + (i ? "" : ":xtic(1)") + " title " +
            gp_quote(names[i]);
  const std::string title = suite.name + " v" + std::to_string(suite.version) +
                            ": final train loss vs Adam at its best grid rate (below 0 is better" +
                            (capped ? "; bars capped at +-3" : "") + ")";
  std::ostringstream script;
  const std::string common = "set title " + gp_quote(title) +
                             "\nset datafile separator '\\t'\nset style data histograms\nset style histogram clustered "
                             "gap 1\nset style fill solid 0.85 border -1\nset boxwidth 0.9\nset xtics rotate by 30 right "
                             "nomirror\nset ylabel 'log10(final train loss / Adam-best)'\nset grid ytics\nset key "
                             "outside right\nset xzeroaxis lt -1\n";
  script << "set terminal pngcairo noenhanced size 1200,600 font ',11'\nset output " << gp_quote(prefix + ".png.tmp")
         << '\n'
         << common << "plot " << plot << "\nset terminal svg noenhanced size 1200,600\nset output "
         << gp_quote(prefix + ".svg.tmp") << "\nreplot\nunset output\n";
  io::write_text_atomic(gp, script.str());
  try {
    run_gnuplot(gp);
  } catch (...) {
    for (const auto& f : {dat, gp, prefix + ".png.tmp", prefix + ".svg.tmp"}) std::remove(f.c_str());
    throw;
  }
  std::remove(dat.c_str());
  std::remove(gp.c_str());
  std::rename((prefix + ".png.tmp").c_str(), (prefix + ".png").c_str());
  std::rename((prefix + ".svg.tmp").c_str(), (prefix + ".svg").c_str());
}

void write_suite_report(const std::string& dir, const Suite& suite, const SuiteResult& result) {
  io::ensure_writable_dir(dir);
  io::write_text_atomic(dir + "/table.md", suite_table(suite, result));
  io::write_text_atomic(dir + "/suite.json", suite_json(suite, result));
  io::write_text_atomic(dir + "/suite.csv", suite_csv(suite, result));
  plot_suite(dir + "/ratios", suite, result);
}

}  // namespace eval
}  // namespace l2o
