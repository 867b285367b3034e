#pragma once
/// How the trainer combines the tasks of one meta-step (SPEC §6.2): the tasks of this process add
/// their sanitised meta-gradients and metrics to one flat float64 buffer, which is summed over the
/// ranks by one all-reduce after each unroll; every rank then divides by the number of tasks that
/// produced a meta-gradient and takes the same meta-step. Without a communicator (one process) the
/// same code averages the process's own tasks, so W ranks × T tasks = 1 process × W·T tasks on the
/// same draws, up to the order of the float64 sums (exact for two).
#include <l2o/meta/distributed.h>

#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace l2o {
namespace meta {

/// Metrics of one unroll, summed over the tasks (and, after reduce(), over the ranks).
struct UnrollMetrics {
  /// Σ of the finite meta-losses and how many tasks produced one (and so a meta-gradient).
  double loss_sum = 0;
  double contributions = 0;
  /// Tasks with unrolls left after this one: 0 everywhere ends the meta-iteration.
  double active_next = 0;
  double nonfinite_entries = 0;
  double regularizer = 0;
  double hvps = 0;
  /// Tasks whose trajectory ended in this unroll, Σ of their final f, inner steps and
  /// divergences, and how many of them were imitation tasks.
  double finished = 0;
  double final_loss_sum = 0;
  double steps = 0;
  double diverged = 0;
  double imitation = 0;
};

/// What every rank learns from rank 0 at the end of a meta-iteration.
struct IterationEnd {
  /// Rank 0's validation (rank 0 alone validates), if one was due.
  std::optional<double> validation;
  /// Rank 0's wall-clock for the iteration: the time budget is spent alike on every rank.
  double seconds = 0;
};

class MetaGradientReduction {
 public:
  /// `params` are φ (whose .grad() is read and written); `comm` null means one process.
  MetaGradientReduction(std::vector<torch::Tensor> params, std::shared_ptr<Communicator> comm);

  bool distributed() const { return comm_ != nullptr && comm_->world_size() > 1; }
  int rank() const { return comm_ ? comm_->rank() : 0; }
  int world_size() const { return comm_ ? comm_->world_size() : 1; }
  const std::shared_ptr<Communicator>& communicator() const { return comm_; }

  /// Starts an unroll's meta-step: clears the gradient sum and the metrics.
  void begin();
  /// Adds the parameters' current .grad() (one task's sanitised meta-gradient) to the sum.
  void add_gradient();
  /// This process's metrics of the current unroll (the trainer fills them task by task).
  UnrollMetrics& local() { return local_; }
  /// Sums gradients and metrics over the ranks (one all-reduce; `where` names it in errors) and
  /// leaves in every φ's .grad() the mean over contributing tasks (undefined where no task had a
  /// gradient). Returns the global metrics; take a meta-step iff contributions > 0.
  UnrollMetrics reduce(const std::string& where);

  /// Rank 0's φ replaces every rank's (the start of a new run).
  void broadcast_parameters();
  /// Agrees on the end of meta-iteration `iteration` (one broadcast from rank 0): every rank takes
  /// rank 0's validation and seconds and checks that its φ checksum equals rank 0's (throws
  /// CollectiveError otherwise). One process: returns its arguments.
  IterationEnd end_iteration(std::optional<double> validation, double seconds, uint64_t phi_checksum,
                             int64_t iteration);

  /// Bytes all-reduced per unroll (the buffer: φ, one flag per φ tensor, the metrics; float64).
  int64_t buffer_bytes() const;

 private:
  std::vector<torch::Tensor> params_;
  std::shared_ptr<Communicator> comm_;
  torch::Tensor buffer_;
  std::vector<int64_t> offsets_;
  int64_t flags_ = 0;
  UnrollMetrics local_;
};

/// Rank 0 sends the checkpoint at `path` (and the best.pt beside it, which a curriculum's resume
/// reads) to every rank; `path` on other ranks is ignored. Every rank returns a local path to
/// resume from: rank 0 its own, the others a copy in a fresh temporary folder (remove it after
/// the resume). An empty path on rank 0 means a new run and returns "" everywhere.
std::string share_checkpoint(Communicator& comm, const std::string& path);

}  // namespace meta
}  // namespace l2o
