#include <l2o/core/error.h>
#include <l2o/optim/update_rule.h>

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

namespace l2o {
namespace optim {

const TensorList& State::at(const std::string& name) const {
  auto it = slots.find(name);
  L2O_CHECK(it != slots.end(), "optimizer state has no slot '", name, "'");
  return it->second;
}

State detach(const State& state) {
  State out;
  out.step = state.step;
  for (const auto& kv : state.slots) out.slots[kv.first] = l2o::detach(kv.second);
  return out;
}

void save_state(torch::serialize::OutputArchive& archive, const State& state) {
  archive.write("step", torch::tensor(state.step));
  std::string names;
  for (const auto& kv : state.slots) {
    names += kv.first + "\n";
    archive.write("slot/" + kv.first + "/size", torch::tensor(static_cast<int64_t>(kv.second.size())));
    for (size_t i = 0; i < kv.second.size(); ++i)
      archive.write("slot/" + kv.first + "/" + std::to_string(i), kv.second[i].detach(), /*is_buffer=*/true);
  }
  archive.write("slot_names", c10::IValue(names));
}

State load_state(torch::serialize::InputArchive& archive) {
  State state;
  torch::Tensor t;
  archive.read("step", t);
  state.step = t.item<int64_t>();
  c10::IValue names;
  archive.read("slot_names", names);
  const std::string all = names.toStringRef();
  size_t pos = 0;
  while (pos < all.size()) {
    const auto nl = all.find('\n', pos);
    const std::string name = all.substr(pos, nl - pos);
    pos = nl + 1;
    archive.read("slot/" + name + "/size", t);
    const int64_t n = t.item<int64_t>();
    TensorList list(n);
    for (int64_t i = 0; i < n; ++i) archive.read("slot/" + name + "/" + std::to_string(i), list[i], true);
    state.slots[name] = std::move(list);
  }
  return state;
}

}  // namespace optim
}  // namespace l2o
