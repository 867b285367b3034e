#include <l2o/core/error.h>
#include <l2o/problems/nn.h>

#include <torch/torch.h>

#include <cmath>
#include <sstream>

namespace l2o {
namespace problems {
namespace {

struct Preset {
  const char* name;
  const char* spec;
};
// The L2O-Entropy problems (SPEC §2); objective_subset is its default of 10000 train samples.
const Preset kPresets[] = {
    {"mnist_mlp", "mlp:dataset=mnist,hidden=20,act=sigmoid,batch=128,objective_subset=10000"},
    {"mnist_mlp_relu", "mlp:dataset=mnist,hidden=20,act=relu,batch=128,objective_subset=10000"},
    {"mnist_mlp_deeper", "mlp:dataset=mnist,hidden=20-20,act=sigmoid,batch=128,objective_subset=10000"},
    {"mnist_conv", "conv:dataset=mnist,filters=3x3x8-5x5x8,act=relu,batch=64,objective_subset=10000"},
    {"cifar10_conv", "conv:dataset=cifar10,filters=3x3x16-5x5x16,act=relu,batch=64,objective_subset=10000"},
};

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, sep)) out.push_back(item);
  return out;
}

int64_t to_int(const std::string& s, const std::string& what, const std::string& whole) {
  char* end = nullptr;
  const long v = std::strtol(s.c_str(), &end, 10);
  L2O_CHECK(!s.empty() && *end == '\0' && v > 0, what, "='", whole, "': '", s, "' is not a positive integer");
  return v;
}

torch::Tensor activate(const std::string& act, const torch::Tensor& x) {
  if (act == "sigmoid") return torch::sigmoid(x);
  if (act == "relu") return torch::relu(x);
  if (act == "tanh") return torch::tanh(x);
  return x;
}

}  // namespace

bool ClassifierProblem::is_preset(const std::string& name) {
  for (const auto& p : kPresets)
    if (name == p.name) return true;
  return false;
}

Spec ClassifierProblem::expand_preset(const Spec& spec) {
  for (const auto& p : kPresets) {
    if (spec.name() != p.name) continue;
    Spec full = Spec::parse(p.spec);
    for (const auto& kv : spec.values()) full.set(kv.first, kv.second);
    return full;
  }
  return spec;
}

ProblemPtr ClassifierProblem::from_spec(const Spec& given, at::Generator& gen) {
  const Spec spec = expand_preset(given);
  Options o;
  const std::string& n = spec.name();
  L2O_CHECK(n == "softmax" || n == "mlp" || n == "conv", "not a classifier problem: '", n, "'");
  o.model = n == "softmax" ? Model::kSoftmax : (n == "mlp" ? Model::kMlp : Model::kConv);
  if (o.model == Model::kMlp) {
    const std::string h = spec.get_string("hidden", "20");
    o.hidden.clear();
    for (const auto& s : split(h, '-')) o.hidden.push_back(to_int(s, "hidden", h));
  }
  if (o.model == Model::kConv) {
    const std::string f = spec.get_string("filters", "3x3x8-5x5x8");
    for (const auto& layer : split(f, '-')) {
      const auto dims = split(layer, 'x');
      L2O_CHECK(dims.size() == 3, "filters='", f, "': '", layer, "' is not HxWxC (e.g. 3x3x8)");
      o.filters.push_back({to_int(dims[0], "filters", f), to_int(dims[1], "filters", f), to_int(dims[2], "filters", f)});
      L2O_CHECK(o.filters.back()[0] % 2 == 1 && o.filters.back()[1] % 2 == 1, "filters='", f,
                "': kernel sizes must be odd (SAME padding)");
    }
  }
  o.activation = spec.get_string("act", o.model == Model::kConv ? "relu" : (o.model == Model::kMlp ? "sigmoid" : "identity"));
  L2O_CHECK(o.activation == "sigmoid" || o.activation == "relu" || o.activation == "tanh" || o.activation == "identity",
            "act='", o.activation, "' is not one of sigmoid, relu, tanh, identity");
  o.batch = spec.get_int("batch", o.batch);
  L2O_CHECK(o.batch >= 0, "batch=", o.batch, " must be >= 0 (0 = full batch)");
  o.objective_subset = spec.get_int("objective_subset", o.objective_subset);
  L2O_CHECK(o.objective_subset >= 0, "objective_subset=", o.objective_subset, " must be >= 0 (0 = whole train split)");
  o.l2 = spec.get_double("l2", o.l2);
  const std::string init = spec.get_string("init", "reference");
  L2O_CHECK(init == "reference" || init == "torch", "init='", init,
            "' is not one of reference (L2O-Scale's), torch (torch::nn defaults)");
  o.init = init == "torch" ? Init::kTorch : Init::kReference;
  auto data = data::make_dataset(spec, gen, "mnist");
  spec.check_all_used();
  return std::make_shared<ClassifierProblem>(given.str(), o, std::move(data), gen);
}

ClassifierProblem::ClassifierProblem(std::string spec_text, Options options, data::DataSplits data, at::Generator& gen)
    : spec_text_(std::move(spec_text)), options_(std::move(options)), data_(std::move(data)) {
  const auto& train = data_.train;
  L2O_CHECK(train.size() > 0, spec_text_, ": empty train split");
  features_ = train.inputs.numel() / train.size();
  const int64_t classes = train.num_classes;
  switch (options_.model) {
    case Model::kSoftmax:
      shapes_ = {{features_, classes}, {classes}};
      break;
    case Model::kMlp: {
      int64_t prev = features_;
      for (int64_t h : options_.hidden) {
        shapes_.push_back({prev, h});
        shapes_.push_back({h});
        prev = h;
      }
      shapes_.push_back({prev, classes});
      shapes_.push_back({classes});
      break;
    }
    case Model::kConv: {
      L2O_CHECK(train.inputs.dim() == 4, spec_text_, ": a convnet needs image inputs [n, c, h, w]");
      int64_t channels = train.inputs.size(1);
      for (const auto& f : options_.filters) {
        shapes_.push_back({f[2], channels, f[0], f[1]});
        channels = f[2];
      }
      shapes_.push_back({channels * train.inputs.size(2) * train.inputs.size(3), classes});
      shapes_.push_back({classes});
      break;
    }
  }
  if (options_.objective_subset > 0 && options_.objective_subset < train.size()) {
    const auto rows = torch::randperm(train.size(), gen, torch::kLong).narrow(0, 0, options_.objective_subset);
    const auto sub = train.rows(rows);
    objective_ = {sub.inputs, sub.labels};
  } else {
    objective_ = {train.inputs, train.labels};
  }
}

TensorList ClassifierProblem::init_params(at::Generator& gen) const {
  TensorList out;
  if (options_.init == Init::kTorch) {
    // Weights are stored [in, out] for x·W (torch keeps [out, in]) and conv weights as torch does; a
    // bias takes the bound of the weight before it, as torch::nn::Linear::reset_parameters does.
    // The bounds are computed as torch::nn::init::kaiming_uniform_(w, √5) does, to the last bit.
    double bias_bound = 0;
    for (const auto& shape : shapes_) {
      if (shape.size() == 1) {
        out.push_back(torch::empty(shape).uniform_(-bias_bound, bias_bound, gen));
        continue;
      }
      const bool conv = shape.size() == 4;
      const int64_t fan_in = conv ? shape[1] * shape[2] * shape[3] : shape[0];
      const double gain = std::sqrt(2.0 / (1 + std::pow(std::sqrt(5.0), 2)));
      const double bound = std::sqrt(3.0) * (gain / std::sqrt(static_cast<double>(fan_in)));
      bias_bound = 1 / std::sqrt(static_cast<double>(fan_in));
      if (conv) {
        out.push_back(torch::empty(shape).uniform_(-bound, bound, gen));
      } else {
        out.push_back(torch::empty({shape[1], shape[0]}).uniform_(-bound, bound, gen).t().contiguous());
      }
    }
    return out;
  }
  for (const auto& shape : shapes_) {
    auto p = torch::empty(shape).normal_(0, 1, gen);
    // Reference inits: SoftmaxClassifier N(0,1)·1.2/√shape[0]; ConvNet N(0, 0.01).
    p = options_.model == Model::kConv ? p * 0.01 : p * (1.2 / std::sqrt(static_cast<double>(shape[0])));
    out.push_back(p);
  }
  return out;
}

torch::Tensor ClassifierProblem::logits(const TensorList& params, const torch::Tensor& inputs) const {
  const int64_t n = inputs.size(0);
  torch::Tensor x;
  size_t i = 0;
  if (options_.model == Model::kConv) {
    x = inputs.to(params[0].scalar_type());
    for (; i + 2 < params.size(); ++i) {
      const auto& w = params[i];
      x = activate(options_.activation, torch::conv2d(x, w, {}, 1, {w.size(2) / 2, w.size(3) / 2}));
    }
    x = x.reshape({n, -1});
    return torch::addmm(params[i + 1], x, params[i]);
  }
  x = inputs.reshape({n, features_}).to(params[0].scalar_type());
  x = torch::addmm(params[1], x, params[0]);
  for (i = 2; i + 1 < params.size(); i += 2) x = torch::addmm(params[i + 1], activate(options_.activation, x), params[i]);
  return x;
}

torch::Tensor ClassifierProblem::loss(const TensorList& params, const Batch& batch) const {
  const auto z = logits(params, batch.inputs);
  torch::Tensor data_loss;
  if (z.size(1) == 2) {
    // Reference SoftmaxClassifier with two classes: sigmoid cross-entropy on the first logit.
    data_loss = torch::binary_cross_entropy_with_logits(z.select(1, 0), batch.targets.to(z.scalar_type()));
  } else {
    data_loss = torch::nn::functional::cross_entropy(z, batch.targets);
  }
  if (options_.l2 == 0) return data_loss;
  torch::Tensor reg = torch::zeros({}, z.options());
  for (const auto& p : params) reg = reg + p.pow(2).sum();
  return data_loss + options_.l2 * reg / static_cast<double>(params.size());
}

Batch ClassifierProblem::sample_batch(at::Generator& gen) const {
  if (options_.batch == 0) return objective_;
  // Rows drawn uniformly with replacement: cheap, and independent across steps.
  const auto rows = torch::randint(data_.train.size(), {options_.batch}, gen, torch::kLong);
  return {data_.train.inputs.index_select(0, rows), data_.train.labels.index_select(0, rows)};
}

double ClassifierProblem::accuracy(const TensorList& params, const Batch& batch) const {
  const auto z = logits(params, batch.inputs);
  const auto pred = z.size(1) == 2 ? (z.select(1, 0) > 0).to(torch::kLong) : z.argmax(1);
  return pred.eq(batch.targets).to(torch::kDouble).mean().item<double>();
}

}  // namespace problems
}  // namespace l2o
