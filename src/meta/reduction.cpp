#include <l2o/io/files.h>
#include <l2o/meta/reduction.h>

#include <torch/torch.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace l2o {
namespace meta {

namespace {
constexpr int64_t kMetrics = 11;

void write_metrics(const UnrollMetrics& m, double* out) {
  const double values[kMetrics] = {m.loss_sum, m.contributions, m.active_next, m.nonfinite_entries, m.regularizer,
                                   m.hvps,     m.finished,      m.final_loss_sum, m.steps,           m.diverged,
                                   m.imitation};
  std::copy(values, values + kMetrics, out);
}

UnrollMetrics read_metrics(const double* in) {
  UnrollMetrics m;
  m.loss_sum = in[0], m.contributions = in[1], m.active_next = in[2], m.nonfinite_entries = in[3];
  m.regularizer = in[4], m.hvps = in[5], m.finished = in[6], m.final_loss_sum = in[7], m.steps = in[8];
  m.diverged = in[9], m.imitation = in[10];
  return m;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  L2O_CHECK(in.good(), "cannot read checkpoint '", path, "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
}  // namespace

MetaGradientReduction::MetaGradientReduction(std::vector<torch::Tensor> params, std::shared_ptr<Communicator> comm)
    : params_(std::move(params)), comm_(std::move(comm)) {
  int64_t size = 0;
  for (const auto& p : params_) {
    offsets_.push_back(size);
    size += p.numel();
  }
  offsets_.push_back(size);
  flags_ = size;
  // The meta-gradient is summed in float64: the sum of two floats is then exact, so 2 ranks × 1 task
  // and 1 process × 2 tasks give the same bits, and one task's mean is its own gradient.
  buffer_ = torch::zeros({size + static_cast<int64_t>(params_.size()) + kMetrics}, torch::kDouble);
}

int64_t MetaGradientReduction::buffer_bytes() const { return buffer_.numel() * 8; }

void MetaGradientReduction::begin() {
  buffer_.zero_();
  local_ = UnrollMetrics();
}

void MetaGradientReduction::add_gradient() {
  torch::NoGradGuard no_grad;
  double* flags = buffer_.data_ptr<double>() + flags_;
  for (size_t i = 0; i < params_.size(); ++i) {
    const torch::Tensor& g = params_[i].grad();
    if (!g.defined()) continue;
    buffer_.slice(0, offsets_[i], offsets_[i + 1]).add_(g.reshape({-1}).to(torch::kDouble));
    flags[i] += 1;
  }
}

UnrollMetrics MetaGradientReduction::reduce(const std::string& where) {
  torch::NoGradGuard no_grad;
  double* data = buffer_.data_ptr<double>();
  write_metrics(local_, data + flags_ + static_cast<int64_t>(params_.size()));
  if (distributed()) comm_->all_reduce_sum(buffer_, "all-reduce of the meta-gradient (" + where + ")");
  const UnrollMetrics global = read_metrics(data + flags_ + static_cast<int64_t>(params_.size()));
  if (global.contributions <= 0) return global;
  for (size_t i = 0; i < params_.size(); ++i) {
    torch::Tensor& p = params_[i];
    if (data[flags_ + static_cast<int64_t>(i)] <= 0) {
      // No task anywhere touched this tensor: leave it out of the step on every rank (a stale local
      // .grad() would otherwise move it on this rank only).
      p.mutable_grad() = torch::Tensor();
      continue;
    }
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    p.mutable_grad().copy_(buffer_.slice(0, offsets_[i], offsets_[i + 1]).div(global.contributions).view(p.sizes()));
  }
  return global;
}

void MetaGradientReduction::broadcast_parameters() {
  if (!distributed()) return;
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    torch::Tensor data = params_[i].detach();
    comm_->broadcast(data, 0, "broadcast of phi tensor " + std::to_string(i) + " from rank 0");
  }
}

IterationEnd MetaGradientReduction::end_iteration(std::optional<double> validation, double seconds,
                                                  uint64_t phi_checksum, int64_t iteration) {
  IterationEnd end{validation, seconds};
  if (!distributed()) return end;
  // The checksum travels as two exact 32-bit halves of a float64 each.
  torch::Tensor msg = torch::tensor({validation ? 1.0 : 0.0, validation.value_or(0.0), seconds,
                                     static_cast<double>(phi_checksum >> 32),
                                     static_cast<double>(phi_checksum & 0xffffffffULL)},
                                    torch::kDouble);
  comm_->broadcast(msg, 0, "broadcast of the end of meta-iteration " + std::to_string(iteration) + " from rank 0");
  const double* m = msg.data_ptr<double>();
  end.validation = m[0] > 0 ? std::optional<double>(m[1]) : std::nullopt;
  end.seconds = m[2];
  const uint64_t root = (static_cast<uint64_t>(m[3]) << 32) | static_cast<uint64_t>(m[4]);
  if (root != phi_checksum) {
    throw CollectiveError(detail::cat("phi differs between ranks after meta-iteration ", iteration, ": rank ", rank(),
                                      " has checksum ", checksum_hex(phi_checksum), ", rank 0 has ",
                                      checksum_hex(root)));
  }
  return end;
}

std::string share_checkpoint(Communicator& comm, const std::string& path) {
  const bool root = comm.rank() == 0;
  const std::filesystem::path best = std::filesystem::path(path).parent_path() / "best.pt";
  const std::string latest_bytes = comm.broadcast_bytes(root && !path.empty() ? read_bytes(path) : std::string(), 0,
                                                        "broadcast of the checkpoint to resume from");
  const std::string best_bytes =
      comm.broadcast_bytes(root && !path.empty() && std::filesystem::exists(best) ? read_bytes(best.string()) : "", 0,
                           "broadcast of the best checkpoint");
  if (root || latest_bytes.empty()) return root ? path : "";
  const auto dir = std::filesystem::temp_directory_path() /
                   ("l2o_rank" + std::to_string(comm.rank()) + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  io::write_text_atomic((dir / "latest.pt").string(), latest_bytes);
  if (!best_bytes.empty()) io::write_text_atomic((dir / "best.pt").string(), best_bytes);
  return (dir / "latest.pt").string();
}

}  // namespace meta
}  // namespace l2o
