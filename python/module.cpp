// l2o._C: the pybind11 bindings under the Python package l2o. No logic of its own: every call goes to
// the library (update rules, the torch::optim adapter, checkpoints); python/l2o/optim.py turns the
// adapter into torch.optim.Optimizer subclasses.
#include <l2o/core/error.h>
#include <l2o/core/runtime.h>
#include <l2o/core/version.h>
#include <l2o/io/checkpoint.h>
#include <l2o/io/shipped_checkpoints.h>
#include <l2o/learned/registry.h>
#include <l2o/optim/adapter.h>

#include <torch/extension.h>

#include <string>
#include <vector>

namespace py = pybind11;

namespace {

using l2o::optim::RuleOptimizer;
using l2o::optim::RulePtr;
using l2o::optim::State;

// The state crosses to Python as {"step": int, "slots": {name: [tensor, ...]}}: the rule's own
// structure (slots keyed by parameter index, or global lists), which torch.save can pickle.
py::dict state_to_python(const State& state) {
  py::dict slots;
  for (const auto& [name, tensors] : state.slots) slots[py::str(name)] = py::cast(tensors);
  py::dict out;
  out["step"] = state.step;
  out["slots"] = slots;
  return out;
}

State state_from_python(const py::dict& d) {
  L2O_CHECK(d.contains("step") && d.contains("slots"), "optimizer state needs the keys 'step' and 'slots'");
  State state;
  state.step = d["step"].cast<int64_t>();
  for (const auto& [name, tensors] : d["slots"].cast<py::dict>())
    state.slots[name.cast<std::string>()] = tensors.cast<std::vector<torch::Tensor>>();
  return state;
}

py::dict checkpoint_info(const std::string& path) {
  const l2o::io::CheckpointInfo info = l2o::io::read_checkpoint_info(path);
  py::dict out;
  out["format"] = info.format;
  out["rule"] = info.rule_spec;
  out["trainer"] = py::module_::import("json").attr("loads")(info.trainer_json);
  return out;
}

// What the C++ drop-in adapter gives for the same parameters and gradients: a fresh RuleOptimizer
// over copies of `params`, stepped once per entry of `grads`. The tests compare the Python optimizers
// with it.
std::vector<torch::Tensor> adapter_reference(const RulePtr& rule, const std::vector<torch::Tensor>& params,
                                             const std::vector<std::vector<torch::Tensor>>& grads) {
  std::vector<torch::Tensor> copies;
  for (const auto& p : params) copies.push_back(p.detach().clone().requires_grad_(true));
  RuleOptimizer optimizer(copies, rule);
  for (const auto& step : grads) {
    L2O_CHECK(step.size() == copies.size(), "adapter_reference: ", step.size(), " gradients for ", copies.size(),
              " parameters");
    for (size_t i = 0; i < copies.size(); ++i) copies[i].mutable_grad() = step[i].detach().clone();
    optimizer.step();
  }
  return copies;
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "l2o: learned optimizers on LibTorch (C++ bindings; use l2o.optim)";
  m.attr("__version__") = l2o::kVersion;
  // Library errors become l2o.Error (a RuntimeError) carrying the C++ message.
  static py::exception<l2o::Error> error(m, "Error", PyExc_RuntimeError);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const l2o::Error& e) {
      PyErr_SetString(error.ptr(), e.what());
    }
  });

  py::class_<l2o::optim::UpdateRule, RulePtr>(m, "UpdateRule", "An l2o update rule (hand-designed or learned)")
      .def_property_readonly("name", &l2o::optim::UpdateRule::name)
      .def_property_readonly("spec", [](const l2o::optim::UpdateRule& r) { return r.spec().str(); })
      .def_property_readonly("is_learned", &l2o::optim::UpdateRule::is_learned)
      .def("__repr__", [](const l2o::optim::UpdateRule& r) { return "<l2o rule " + r.spec().str() + ">"; });
  m.def("make_rule", &l2o::learned::make_rule, py::arg("spec"), "Builds a rule from a spec string, e.g. 'adam:lr=1e-3'");
  m.def("load_rule", &l2o::io::load_rule, py::arg("path"), py::arg("overrides") = "",
        "Rebuilds the learned rule saved in a checkpoint; overrides='max_log_lr=-3' replaces saved options");
  m.def("checkpoint_info", &checkpoint_info, py::arg("path"),
        "A checkpoint's metadata: {'format': int, 'rule': spec string, 'trainer': dict}");
  m.def("checkpoint_dir", [] { return l2o::io::checkpoint_dir(); }, "Directory of the checkpoints shipped with l2o");
  m.def("shipped_checkpoint", [](const std::string& name) { return l2o::io::shipped_checkpoint(name); },
        py::arg("name"), "Path of a shipped checkpoint, e.g. 'mlp_lopt_generalist.pt'");

  py::class_<RuleOptimizer>(m, "RuleOptimizer", "l2o::optim::RuleOptimizer over the given tensors (no copies)")
      .def(py::init<std::vector<torch::Tensor>, RulePtr>(), py::arg("params"), py::arg("rule"))
      .def("step", [](RuleOptimizer& o) { o.step(); }, "One update from each parameter's .grad, in place")
      .def_property_readonly("rule", [](const RuleOptimizer& o) { return o.rule().spec().str(); })
      .def_property_readonly("initialised", &RuleOptimizer::initialised)
      .def("get_state", [](const RuleOptimizer& o) { return state_to_python(o.rule_state()); })
      .def("set_state", [](RuleOptimizer& o, const py::dict& d) { o.set_rule_state(state_from_python(d)); });

  m.def("keep_freed_memory", &l2o::keep_freed_memory,
        "Keeps freed memory in the process instead of returning it to the system (glibc mallopt: no mmap "
        "for large blocks, no trimming of the heap top), as l2o's own programs do: a learned optimizer's "
        "step on a large model frees and allocates temporaries of many MB every step, which glibc "
        "otherwise page-faults in again each time. The l2o.optim optimizers call it when they are built; "
        "L2O_OS_MALLOC=1 in the environment keeps glibc's defaults.");
  m.def("set_threads", &l2o::set_threads, py::arg("threads"),
        "Sets LibTorch's intra-op threads (torch.set_num_threads; 0 keeps the current number) and keeps "
        "OpenBLAS, which Debian's torch calls for matrix products, at one thread; returns OpenBLAS's threads "
        "(0 if it is not loaded). With two LibTorch threads and OpenBLAS's default of one per core, their "
        "spinning workers take the cores from each other: l2o's MNIST meta-training ran 2.5x slower on two "
        "threads than on one (docs/benchmarks.md). l2o's own programs do this for --threads.");
  m.def("_adapter_reference", &adapter_reference, py::arg("rule"), py::arg("params"), py::arg("grads"));
}
