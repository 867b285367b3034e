// `l2o hessian`: the curvature of a problem's loss (SPEC §4) at θ₀ or after N steps of an optimizer —
// Hutchinson trace, top eigenvalues by power iteration with deflation, and the stochastic Lanczos
// quadrature spectral density, written as JSON and CSV and drawn.
#include "common.h"

#include <l2o/autodiff/curvature.h>
#include <l2o/core/error.h>
#include <l2o/core/rng.h>
#include <l2o/core/tensor_list.h>
#include <l2o/eval/report.h>
#include <l2o/io/checkpoint.h>
#include <l2o/io/files.h>
#include <l2o/learned/registry.h>
#include <l2o/problems/registry.h>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <sstream>

namespace l2o {
namespace app {

namespace {
struct HessianArgs {
  std::string problem = "mnist_mlp", checkpoint, optimizer, output_dir = "runs/hessian";
  int64_t num_steps = 0, seed = 0, probes = 100, top_n = 3, lanczos_steps = 30, lanczos_probes = 5;
  int threads = 0;
};
}  // namespace

void add_hessian(CLI::App& app) {
  auto a = std::make_shared<HessianArgs>();
  auto* cmd = app.add_subcommand("hessian", "trace, top eigenvalues and spectral density of a problem's Hessian");
  add_config_option(cmd);
  cmd->add_option("--problem", a->problem, "problem spec (see l2o problems)")->capture_default_str();
  auto* ck = cmd->add_option("--checkpoint", a->checkpoint, "run this learned optimizer for --num_steps first");
  cmd->add_option("--optimizer", a->optimizer, "or this rule spec, e.g. adam:lr=0.01")->excludes(ck);
  cmd->add_option("--num_steps", a->num_steps, "optimizer steps before the analysis (0 = at initialisation)")
      ->capture_default_str();
  cmd->add_option("--seed", a->seed, "seed of the problem draw, the minibatches and the probes")->capture_default_str();
  cmd->add_option("--probes", a->probes, "Rademacher probes of the Hutchinson trace")->capture_default_str();
  cmd->add_option("--top_n", a->top_n, "eigenvalues of largest magnitude by power iteration")->capture_default_str();
  cmd->add_option("--lanczos_steps", a->lanczos_steps, "Lanczos steps per probe")->capture_default_str();
  cmd->add_option("--lanczos_probes", a->lanczos_probes, "Lanczos probes of the spectral density")->capture_default_str();
  cmd->add_option("-o,--output_dir", a->output_dir, "folder for hessian.json, density.csv, nodes.csv, density.png")
      ->capture_default_str();
  add_threads_option(cmd, &a->threads);
  cmd->callback([a] {
    apply_threads(a->threads);
    L2O_CHECK(a->num_steps >= 0, "--num_steps ", a->num_steps, " must be >= 0");
    L2O_CHECK(a->probes >= 2, "--probes ", a->probes, " must be >= 2 (the standard error needs two)");
    L2O_CHECK(a->num_steps == 0 || !a->checkpoint.empty() || !a->optimizer.empty(),
              "--num_steps ", a->num_steps, " needs --checkpoint or --optimizer");
    const autodiff::PowerIterationOptions power = autodiff::PowerIterationOptions().top_n(a->top_n);
    power.validate();
    const autodiff::LanczosOptions lanczos_options =
        autodiff::LanczosOptions().iterations(a->lanczos_steps).probes(a->lanczos_probes);
    lanczos_options.validate();
    optim::RulePtr rule;
    if (!a->checkpoint.empty()) rule = load_checkpoint_arg(a->checkpoint);
    if (!a->optimizer.empty()) rule = learned::make_rule(a->optimizer);
    at::Generator gen = make_generator(static_cast<uint64_t>(a->seed));
    const problems::ProblemPtr problem = problems::make_problem(a->problem, gen);
    io::ensure_writable_dir(a->output_dir);

    TensorList params = problem->init_params(gen);
    if (rule && a->num_steps > 0) {
      // Not eval::run_seed: that loop also draws a minibatch at θ_N, which would shift the random
      // stream of the probes below and change every documented analysis (docs/entropy/hessian).
      optim::State state;
      {
        torch::NoGradGuard no_grad;
        state = rule->init(params, gen);
      }
      for (int64_t t = 0; t < a->num_steps; ++t) {
        TensorList leaves = fresh_leaves(params);
        const auto batch = problem->deterministic() ? problem->objective_batch() : problem->sample_batch(gen);
        const torch::Tensor loss = problem->loss(leaves, batch);
        L2O_CHECK(std::isfinite(loss.item<double>()), rule->name(), " diverged at step ", t, " on ", a->problem);
        const TensorList grads = problem->perturb_gradients(torch::autograd::grad({loss}, leaves), gen);
        torch::NoGradGuard no_grad;
        auto r = rule->update(detach(leaves), grads, state);
        params = std::move(r.params);
        state = std::move(r.state);
      }
    }
    // The analysis is of the meta-objective's loss (full batch or its fixed subset).
    TensorList leaves = fresh_leaves(params);
    const torch::Tensor loss = problem->loss(leaves, problem->objective_batch());
    const autodiff::HessianOperator hessian(loss, leaves);
    const auto trace = autodiff::hutchinson_trace(hessian, a->probes, gen);
    const auto top = autodiff::top_eigenpairs(hessian, gen, power);
    const auto slq = autodiff::lanczos(hessian, gen, lanczos_options);

    const auto nodes = slq.density.nodes.to(torch::kDouble), weights = slq.density.weights.to(torch::kDouble);
    const double lo = nodes.min().item<double>(), hi = nodes.max().item<double>();
    const double span = std::max(hi - lo, 1e-12 + 1e-3 * std::abs(hi));
    const double sigma = span / 50;
    const auto grid = torch::linspace(lo - 0.1 * span, hi + 0.1 * span, 400, torch::kDouble);
    const auto density = autodiff::gaussian_density({nodes, weights}, grid, sigma);
    std::ostringstream dcsv, ncsv;
    dcsv << "eigenvalue,density\n";
    for (int64_t i = 0; i < grid.size(0); ++i)
      dcsv << format_double(grid[i].item<double>()) << ',' << format_double(density[i].item<double>()) << '\n';
    ncsv << "node,weight\n";
    for (int64_t i = 0; i < nodes.size(0); ++i)
      ncsv << format_double(nodes[i].item<double>()) << ',' << format_double(weights[i].item<double>()) << '\n';
    const std::string dir = a->output_dir;
    io::write_text_atomic(dir + "/density.csv", dcsv.str());
    io::write_text_atomic(dir + "/nodes.csv", ncsv.str());
    nlohmann::json j = {{"problem", problem->name()},
                        {"optimizer", rule ? rule->spec().str() : ""},
                        {"num_steps", rule ? a->num_steps : 0},
                        {"seed", a->seed},
                        {"num_params", hessian.numel()},
                        {"loss", loss.item<double>()},
                        {"trace", trace.trace.item<double>()},
                        {"trace_standard_error", trace.standard_error},
                        {"probes", a->probes},
                        {"top_eigenvalues", top.eigenvalues},
                        {"power_iterations", top.iterations},
                        {"lanczos_steps", a->lanczos_steps},
                        {"lanczos_probes", a->lanczos_probes},
                        {"ritz_sum", slq.ritz_sum.item<double>()},
                        {"density_sigma", sigma},
                        {"hessian_vector_products", hessian.products()}};
    io::write_text_atomic(dir + "/hessian.json", j.dump(2) + "\n");
    const std::string where = rule && a->num_steps > 0
                                  ? "after " + std::to_string(a->num_steps) + " steps of " + rule->name()
                                  : std::string("at initialisation");
    eval::plot_csv(dir + "/density.png", dir + "/density.csv", {"density"},
                   "Hessian spectral density (SLQ), " + a->problem + " " + where, false, "eigenvalue");
    std::printf("%s %s: %lld parameters, loss %.6g\n", a->problem.c_str(), where.c_str(),
                static_cast<long long>(hessian.numel()), loss.item<double>());
    std::printf("trace (Hutchinson, %lld probes): %.6g ± %.2g\n", static_cast<long long>(a->probes),
                trace.trace.item<double>(), trace.standard_error);
    std::printf("top eigenvalues (power iteration):");
    for (double e : top.eigenvalues) std::printf(" %.6g", e);
    std::printf("\nHessian-vector products: %lld\nwritten: %s/{hessian.json,density.csv,nodes.csv,density.png}\n",
                static_cast<long long>(hessian.products()), dir.c_str());
  });
}

}  // namespace app
}  // namespace l2o
