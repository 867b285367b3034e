#pragma once
/// Distributed meta-training (SPEC §6.2): a thin layer over PyTorch's own engine, c10d
/// `ProcessGroupGloo` over a `TCPStore`, initialised from torchrun's environment. It offers the few
/// collectives the trainer needs (broadcast, sum of a flat buffer, barrier) with a timeout, and turns
/// every failure into a `CollectiveError` naming the operation.
#include <l2o/core/error.h>

#include <torch/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace l2o {
namespace meta {

/// A collective (or the rendezvous before it) failed or timed out. `main` exits with code 3.
class CollectiveError : public Error {
 public:
  explicit CollectiveError(const std::string& msg) : Error(msg) {}
};

/// Where this process stands in the job: torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK,
/// MASTER_ADDR, MASTER_PORT, TORCHELASTIC_USE_AGENT_STORE, TORCHELASTIC_RESTART_COUNT).
struct DistOptions {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  /// torchrun's agent hosts the store (every rank is a client); otherwise rank 0 hosts it.
  bool agent_store = false;
  /// How many times torchrun has restarted the job (0 on the first attempt).
  int restart_count = 0;
  /// Bound of every wait for a peer: rendezvous, each collective (`dist_timeout`, SPEC default 60 s).
  std::chrono::milliseconds timeout{60000};

  /// Throws l2o::Error naming the bad value (RANK outside [0, WORLD_SIZE), a bad port, ...).
  void validate() const;
  /// "rank 1 of 2 (store 127.0.0.1:29500, hosted by rank 0)".
  std::string describe() const;
  /// Reads the environment. Returns nothing when WORLD_SIZE is unset (a plain single process);
  /// throws l2o::Error on a malformed or incomplete one.
  static std::optional<DistOptions> from_env(std::chrono::milliseconds timeout);
};

/// The process group of one job. Every call is collective: each rank makes the same calls in the
/// same order. Failures and timeouts throw CollectiveError("<operation> failed: <cause>").
class Communicator {
 public:
  /// Rendezvous at the store of `options` (SPEC §6.2's construction sequence), checks that every
  /// rank joined within the timeout, then builds the Gloo group.
  explicit Communicator(const DistOptions& options);
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const { return options_.rank; }
  int world_size() const { return options_.world_size; }
  const DistOptions& options() const { return options_; }

  /// Sums `buffer` (a contiguous CPU tensor) over the ranks in place. `what` names the operation
  /// in errors, e.g. "all-reduce of the meta-gradient (iteration 3, unroll 2)".
  void all_reduce_sum(torch::Tensor& buffer, const std::string& what);
  /// Sum over the ranks, then ÷ world size (Gloo has no average).
  void all_reduce_mean(torch::Tensor& buffer, const std::string& what);
  /// Replaces `tensor` on every rank by root's.
  void broadcast(torch::Tensor& tensor, int root, const std::string& what);
  /// Broadcasts a byte string of any length from root (its length first); returns root's bytes.
  std::string broadcast_bytes(const std::string& bytes, int root, const std::string& what);
  /// Waits for every rank; names the ranks that did not arrive.
  void barrier(const std::string& what);

  /// Traffic so far: collectives issued, bytes of all-reduced buffers, wall-clock spent in collectives
  /// (waiting for slower peers included).
  int64_t collectives() const { return collectives_; }
  int64_t bytes_all_reduced() const { return bytes_all_reduced_; }
  double collective_seconds() const { return collective_seconds_; }

 private:
  void wait(const std::string& what, const std::function<void()>& run);

  DistOptions options_;
  /// The store and the Gloo group (c10d headers stay out of this one).
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int64_t collectives_ = 0;
  int64_t bytes_all_reduced_ = 0;
  double collective_seconds_ = 0;
};

/// FNV-1a over the bytes of `tensors` in order (each made contiguous): equal on every rank iff φ is.
uint64_t checksum(const std::vector<torch::Tensor>& tensors);
/// The checksum as 16 hex digits.
std::string checksum_hex(uint64_t value);

}  // namespace meta
}  // namespace l2o
