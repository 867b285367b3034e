#include <l2o/core/error.h>
#include <l2o/problems/family.h>
#include <l2o/problems/registry.h>

#include <torch/torch.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace l2o {
namespace problems {
namespace {

double uniform01(at::Generator& gen) { return torch::rand({1}, gen, torch::kDouble).item<double>(); }

std::vector<std::string> split_on(const std::string& text, const std::string& sep) {
  std::vector<std::string> out;
  size_t begin = 0;
  while (true) {
    const size_t end = text.find(sep, begin);
    out.push_back(text.substr(begin, end == std::string::npos ? std::string::npos : end - begin));
    if (end == std::string::npos) return out;
    begin = end + sep.size();
  }
}

/// Reads the family keys of one spec in a fixed order, so a draw depends only on the generator.
class Drawer {
 public:
  Drawer(const Spec& family, at::Generator& gen) : family_(family), gen_(gen) {}

  /// One of the `+`-separated choices of `key`.
  std::string pick(const std::string& key, const std::string& fallback) {
    const std::string text = family_.get_string(key, fallback);
    const auto items = split_on(text, "+");
    for (const auto& item : items) {
      L2O_CHECK(!item.empty(), family_.name(), ": ", key, "='", text,
                "' has an empty choice (write choices as a+b+c)");
      L2O_CHECK(item.find("..") == std::string::npos, family_.name(), ": ", key, "='", text,
                "' mixes choices and a range (write a+b+c or lo..hi)");
    }
    if (items.size() == 1) return items.front();
    const auto k = static_cast<size_t>(uniform01(gen_) * static_cast<double>(items.size()));
    return items[std::min(k, items.size() - 1)];
  }

  /// An integer from `key`: a choice list, or `lo..hi` drawn uniformly (log-uniformly when `log`).
  int64_t draw_int(const std::string& key, const std::string& fallback, bool log, int64_t min_value = 1) {
    const std::string text = family_.get_string(key, fallback);
    const auto range = split_on(text, "..");
    if (range.size() == 1) {
      const int64_t v = to_int(key, text, pick(key, fallback));
      L2O_CHECK(v >= min_value, family_.name(), ": ", key, "=", v, " must be >= ", min_value);
      return v;
    }
    L2O_CHECK(range.size() == 2, family_.name(), ": ", key, "='", text, "' is not a range lo..hi");
    const int64_t lo = to_int(key, text, range[0]), hi = to_int(key, text, range[1]);
    L2O_CHECK(lo <= hi, family_.name(), ": ", key, "='", text, "' is an empty range (", lo, " > ", hi,
              "); give lo..hi with lo <= hi");
    L2O_CHECK(lo >= min_value, family_.name(), ": ", key, "='", text, "' must start at >= ", min_value);
    const double u = uniform01(gen_);
    // Log-uniform over the integers: floor(exp(U[log lo, log(hi + 1)))), each value's share its
    // interval's log-length.
    const double x = log ? std::exp(std::log(static_cast<double>(lo)) +
                                    u * (std::log(static_cast<double>(hi + 1)) - std::log(static_cast<double>(lo))))
                         : static_cast<double>(lo) + u * static_cast<double>(hi - lo + 1);
    return std::min(hi, std::max(lo, static_cast<int64_t>(std::floor(x))));
  }

  /// A positive range `lo..hi` (or a single value, lo = hi) from `key`, checked but not drawn from.
  std::pair<double, double> log_range(const std::string& key, const std::string& fallback) {
    const std::string text = family_.get_string(key, fallback);
    const auto range = split_on(text, "..");
    L2O_CHECK(range.size() <= 2, family_.name(), ": ", key, "='", text, "' is not a number or a range lo..hi");
    const double lo = to_double(key, text, range[0]);
    const double hi = range.size() == 2 ? to_double(key, text, range[1]) : lo;
    L2O_CHECK(lo > 0 && hi > 0, family_.name(), ": ", key, "='", text, "' must be > 0");
    L2O_CHECK(lo <= hi, family_.name(), ": ", key, "='", text, "' is an empty range (", lo, " > ", hi,
              "); give lo..hi with lo <= hi");
    return {lo, hi};
  }

  bool draw_probability(const std::string& key, double fallback) {
    const double p = family_.get_double(key, fallback);
    L2O_CHECK(p >= 0 && p <= 1, family_.name(), ": ", key, "=", p, " must lie in [0, 1]");
    return uniform01(gen_) < p;
  }

 private:
  int64_t to_int(const std::string& key, const std::string& whole, const std::string& s) const {
    errno = 0;
    char* end = nullptr;
    const long long v = std::strtoll(s.c_str(), &end, 10);
    L2O_CHECK(!s.empty() && *end == '\0' && errno == 0, family_.name(), ": ", key, "='", whole, "': '", s,
              "' is not an integer");
    return v;
  }
  double to_double(const std::string& key, const std::string& whole, const std::string& s) const {
    errno = 0;
    char* end = nullptr;
    const double v = std::strtod(s.c_str(), &end);
    L2O_CHECK(!s.empty() && *end == '\0' && errno == 0 && std::isfinite(v), family_.name(), ": ", key, "='", whole,
              "': '", s, "' is not a number");
    return v;
  }

  const Spec& family_;
  at::Generator& gen_;
};

/// Data keys of a drawn member: a real data set, or `random` (make_classification) of drawn size.
void draw_data(Drawer& d, Spec& member, bool images) {
  const std::string dataset = d.pick("dataset", images ? "mnist+fashion_mnist" : "mnist+fashion_mnist+random");
  // Drawn even for real data sets, so that the draws after them do not depend on the data set picked.
  const int64_t features = d.draw_int("features", "8..64", true);
  const int64_t classes = d.draw_int("classes", "2..10", false, 2);
  member.set("dataset", dataset);
  if (dataset == "random") {
    L2O_CHECK(!images, "conv_family: dataset=random has no images (pick mnist, fashion_mnist, cifar10)");
    member.set("features", features).set("classes", classes).set("samples", int64_t{2000});
  }
}

/// The keys every member shares: batch, initialisation, meta-objective subset, l2.
void draw_training(Drawer& d, const Spec& family, Spec& member, const std::string& batch,
                   const std::string& objective_subset) {
  member.set("batch", d.draw_int("batch", batch, true));
  member.set("init", d.pick("init", "torch+reference"));
  member.set("objective_subset", d.draw_int("objective_subset", objective_subset, true));
  if (family.has("l2")) member.set("l2", family.get_double("l2", 1e-3));
}

/// Wraps `member` in `reparam` (scales drawn log-uniformly in [lo, hi] by the wrapper) with
/// probability reparam_prob, unless reparam is 1.
std::string maybe_reparam(Drawer& d, const Spec& family, const Spec& member) {
  const auto range = d.log_range("reparam", "1");
  const bool wrap = d.draw_probability("reparam_prob", 0.5);
  const std::string per = family.get_string("reparam_per", "tensor");
  L2O_CHECK(per == "tensor" || per == "coordinate", family.name(), ": reparam_per='", per,
            "' is not one of tensor, coordinate");
  if ((range.first == 1 && range.second == 1) || !wrap) return member.str();
  Spec wrapped("reparam");
  wrapped.set("min", range.first).set("max", range.second).set("per", per);
  wrapped.set("of", to_inline_spec(member.str()));
  return wrapped.str();
}

std::string draw_mlp(const Spec& family, at::Generator& gen) {
  Drawer d(family, gen);
  Spec member("mlp");
  draw_data(d, member, false);
  const int64_t depth = d.draw_int("depth", "1..2", false);
  std::string hidden;
  for (int64_t l = 0; l < depth; ++l)
    hidden += (l ? "-" : "") + std::to_string(d.draw_int("width", "16..128", true));
  member.set("hidden", hidden);
  member.set("act", d.pick("act", "relu+tanh+sigmoid"));
  draw_training(d, family, member, "32+64+128", "1000");
  const std::string out = maybe_reparam(d, family, member);
  family.check_all_used();
  return out;
}

std::string draw_conv(const Spec& family, at::Generator& gen) {
  Drawer d(family, gen);
  Spec member("conv");
  draw_data(d, member, true);
  const int64_t layers = d.draw_int("layers", "1..2", false);
  std::string filters;
  for (int64_t l = 0; l < layers; ++l) {
    const int64_t k = d.draw_int("kernel", "3+5", false);
    L2O_CHECK(k % 2 == 1, family.name(), ": kernel=", k, " must be odd (SAME padding)");
    const int64_t c = d.draw_int("channels", "4..8", true);
    filters += (l ? "-" : "") + std::to_string(k) + "x" + std::to_string(k) + "x" + std::to_string(c);
  }
  member.set("filters", filters);
  member.set("act", d.pick("act", "relu+tanh"));
  draw_training(d, family, member, "32+64", "128");
  const std::string out = maybe_reparam(d, family, member);
  family.check_all_used();
  return out;
}

}  // namespace

bool is_family(const std::string& name) { return name == "mlp_family" || name == "conv_family"; }

std::string draw_family_spec(const Spec& family, at::Generator& gen) {
  if (family.name() == "mlp_family") return draw_mlp(family, gen);
  if (family.name() == "conv_family") return draw_conv(family, gen);
  L2O_FAIL("unknown problem family '", family.name(), "' (known: mlp_family, conv_family)");
}

ProblemPtr make_family_problem(const Spec& family, at::Generator& gen) {
  return make_problem(draw_family_spec(family, gen), gen);
}

std::vector<std::pair<std::string, std::string>> family_catalogue() {
  return {
      {"mlp_family",
       "family: MLPs drawn per meta-iteration (dataset=mnist+fashion_mnist+random, features=8..64 and "
       "classes=2..10 for random, depth=1..2, width=16..128 log-uniform per layer, act=relu+tanh+sigmoid, "
       "batch=32+64+128, init=torch+reference, objective_subset=1000, l2, reparam=1 or lo..hi with "
       "reparam_prob=0.5 and reparam_per=tensor|coordinate); a+b = choices, lo..hi = range"},
      {"conv_family",
       "family: convnets drawn per meta-iteration (dataset=mnist+fashion_mnist, layers=1..2, kernel=3+5, "
       "channels=4..8 log-uniform per layer, act=relu+tanh, batch=32+64, init=torch+reference, "
       "objective_subset=128, l2, reparam as mlp_family)"},
  };
}

}  // namespace problems
}  // namespace l2o
