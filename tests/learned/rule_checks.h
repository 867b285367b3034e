#pragma once
// Checks every learned rule must pass (STYLE "Tests"): derivatives against float64 central
// differences, save → load → step equals uninterrupted stepping, adapter equals functional rule.
#include <l2o/core/error.h>
#include <l2o/core/rng.h>
#include <l2o/io/checkpoint.h>
#include <l2o/learned/registry.h>
#include <l2o/optim/adapter.h>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <sstream>
#include <string>

#include <unistd.h>

namespace l2o {
namespace rule_checks {

// ‖a − b‖∞ / max(‖b‖∞, 1e-30), in float64.
inline double rel_err(const torch::Tensor& a, const torch::Tensor& b) {
  const auto ad = a.detach().to(torch::kDouble), bd = b.detach().to(torch::kDouble);
  return (ad - bd).abs().max().item<double>() / std::max(bd.abs().max().item<double>(), 1e-30);
}

// A two-tensor float64 quadratic q(θ) = ½‖Aθ₀ − b‖² + ¼‖θ₁ − c‖² with a differentiable gradient, so
// that derivatives w.r.t. θ flow through the rule's dependence on g as well as on θ.
struct Quadratic {
  torch::Tensor a, b, c;
  Quadratic() {
    auto gen = make_generator(17);
    a = torch::randn({6, 6}, gen, torch::kDouble) / 2 + torch::eye(6, torch::kDouble);
    b = torch::randn({6}, gen, torch::kDouble);
    c = torch::randn({2, 2}, gen, torch::kDouble);
  }
  TensorList init() const {
    auto gen = make_generator(18);
    return {torch::randn({6}, gen, torch::kDouble), torch::randn({2, 2}, gen, torch::kDouble)};
  }
  TensorList grad(const TensorList& p) const { return {a.t().mv(a.mv(p[0]) - b), (p[1] - c) / 2}; }
};

// Compares torch::autograd::grad of f() w.r.t. each tensor in xs with central differences on up to
// `entries` entries per tensor; returns the largest |gradient| seen so callers can assert that the
// check was not vacuous. relative_step: a step of 1e-5·|x| instead of 1e-6, for inputs (mean squares,
// decays) that can be small where f is curved.
inline double expect_gradients_match_fd(const std::function<torch::Tensor()>& f, const std::vector<torch::Tensor>& xs,
                                        const std::string& what, int64_t entries = 6, bool relative_step = false,
                                        double abs_tol = 1e-7) {
  const auto grads = torch::autograd::grad({f()}, xs, {}, false, false, /*allow_unused=*/true);
  torch::NoGradGuard no_grad;
  double largest = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    auto flat = xs[i].view({-1});
    for (int64_t j = 0; j < std::min<int64_t>(flat.numel(), entries); ++j) {
      const double old = flat[j].item<double>();
      const double h = relative_step && old != 0 ? 1e-5 * std::abs(old) : 1e-6;
      flat[j] = old + h;
      const double up = f().item<double>();
      flat[j] = old - h;
      const double down = f().item<double>();
      flat[j] = old;
      const double fd = (up - down) / (2 * h);
      const double ad = grads[i].defined() ? grads[i].reshape({-1})[j].item<double>() : 0.0;
      largest = std::max(largest, std::abs(ad));
      EXPECT_NEAR(ad, fd, abs_tol + 1e-5 * std::abs(fd)) << what << " tensor " << i << " entry " << j;
    }
  }
  return largest;
}

// Runs `steps` updates of rule on q from state, without a graph.
inline void run(const optim::UpdateRule& rule, const Quadratic& q, TensorList& params, optim::State& state, int steps) {
  torch::NoGradGuard no_grad;
  for (int t = 0; t < steps; ++t) {
    auto r = rule.update(params, q.grad(params), state);
    params = r.params;
    state = r.state;
  }
}

// Steps 10 times uninterrupted; then 5 times, checkpoints φ (io::save_checkpoint) and the state
// (optim::save_state), rebuilds both from disk and steps 5 more. The results must be identical.
// `rule` must hold float64 φ that differs from a fresh rule's.
inline void expect_save_load_continue_equals_uninterrupted(optim::UpdateRule& rule, const std::string& tag) {
  const Quadratic q;
  auto gen = make_generator(3);
  TensorList full = q.init();
  optim::State full_state = rule.init(full, gen);
  run(rule, q, full, full_state, 10);

  gen = make_generator(3);
  TensorList part = q.init();
  optim::State part_state = rule.init(part, gen);
  run(rule, q, part, part_state, 5);
  const auto dir = std::filesystem::temp_directory_path() / ("l2o_rule_checks_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / (tag + ".pt")).string();
  io::save_checkpoint(path, rule, nullptr);
  std::stringstream stream;
  {
    torch::serialize::OutputArchive out;
    optim::save_state(out, part_state);
    out.save_to(stream);
  }
  // Rebuilt from the spec stored in the checkpoint, converted to float64 before φ is read: loading a
  // float64 φ into float32 tensors would reinterpret its bytes (InputArchive::read uses set_).
  optim::RulePtr loaded = learned::make_rule(io::read_checkpoint_info(path).rule_spec);
  loaded->module()->to(torch::kDouble);
  io::load_into(path, *loaded, nullptr);
  torch::serialize::InputArchive in;
  in.load_from(stream);
  optim::State loaded_state = optim::load_state(in);
  run(*loaded, q, part, loaded_state, 5);

  EXPECT_EQ(loaded->spec().str(), rule.spec().str());
  EXPECT_EQ(loaded_state.step, full_state.step);
  for (size_t i = 0; i < full.size(); ++i) EXPECT_TRUE(torch::equal(part[i], full[i])) << tag << " tensor " << i;
}

// A small model trained by RuleOptimizer and, on a copy, by the functional rule: equal after 20 steps.
// The global seed is set before both inits, for rules whose initial state is random.
inline void expect_adapter_equals_functional(const optim::RulePtr& rule) {
  struct Model : torch::nn::Module {
    Model() {
      fc1 = register_module("fc1", torch::nn::Linear(4, 8));
      fc2 = register_module("fc2", torch::nn::Linear(8, 1));
    }
    torch::Tensor forward(const torch::Tensor& x) { return fc2->forward(torch::tanh(fc1->forward(x))); }
    torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  };
  auto make_model = [] {
    torch::manual_seed(11);
    return std::make_shared<Model>();
  };
  auto batch_loss = [](Model& m, int step) {
    auto gen = at::detail::createCPUGenerator(100 + step);
    const auto x = torch::randn({16, 4}, gen);
    return (m.forward(x) - x.sum(1, true).sin()).pow(2).mean();
  };
  auto model = make_model();
  optim::RuleOptimizer opt(model->parameters(), rule);
  auto reference = make_model();
  TensorList theta = l2o::detach(reference->parameters());
  torch::manual_seed(42);
  optim::State state = rule->init(theta);
  for (int s = 0; s < 20; ++s) {
    opt.zero_grad();
    batch_loss(*model, s).backward();
    if (s == 0) torch::manual_seed(42);  // the adapter initialises its state on its first step
    opt.step();
    {
      torch::NoGradGuard g;
      auto params = reference->parameters();
      for (size_t i = 0; i < params.size(); ++i) params[i].copy_(theta[i]);
    }
    reference->zero_grad();
    batch_loss(*reference, s).backward();
    TensorList grads;
    for (const auto& p : reference->parameters()) grads.push_back(p.grad().clone());
    torch::NoGradGuard g;
    auto r = rule->update(theta, grads, state);
    theta = r.params;
    state = r.state;
  }
  const auto params = model->parameters();
  const auto initial = make_model()->parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    EXPECT_TRUE(torch::allclose(params[i], theta[i], 1e-6, 1e-7)) << i;
    EXPECT_FALSE(torch::equal(params[i], initial[i])) << "parameter " << i << " never moved";
  }
}

}  // namespace rule_checks
}  // namespace l2o
