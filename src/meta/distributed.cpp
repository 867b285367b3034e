#include <l2o/meta/distributed.h>

#include <c10/util/Exception.h>
#include <c10/util/Logging.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/torch.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace l2o {
namespace meta {

namespace {
std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

/// c10::Error's what() carries a backtrace; the one-line message is what a user needs.
std::string message_of(const std::exception& e) {
  if (const auto* c = dynamic_cast<const c10::Error*>(&e)) return first_line(c->what_without_backtrace());
  return first_line(e.what());
}

std::optional<std::string> env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

int env_int(const char* name, const std::string& text) {
  char* end = nullptr;
  errno = 0;
  const long value = std::strtol(text.c_str(), &end, 10);
  L2O_CHECK(!text.empty() && *end == '\0' && errno == 0 && value >= INT32_MIN && value <= INT32_MAX, name, "='", text,
            "' is not an integer");
  return static_cast<int>(value);
}

double seconds(std::chrono::milliseconds ms) { return static_cast<double>(ms.count()) / 1000.0; }

bool is_loopback(const std::string& addr) {
  return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1";
}
}  // namespace

void DistOptions::validate() const {
  L2O_CHECK(world_size >= 1, "WORLD_SIZE=", world_size, " must be >= 1");
  L2O_CHECK(rank >= 0 && rank < world_size, "RANK=", rank, " must lie in [0, WORLD_SIZE=", world_size,
            "): each of the WORLD_SIZE processes takes one rank");
  L2O_CHECK(local_rank >= 0, "LOCAL_RANK=", local_rank, " must be >= 0");
  L2O_CHECK(master_port > 0 && master_port < 65536, "MASTER_PORT=", master_port, " must lie in [1, 65535]");
  L2O_CHECK(!master_addr.empty(), "MASTER_ADDR is empty");
  L2O_CHECK(restart_count >= 0, "TORCHELASTIC_RESTART_COUNT=", restart_count, " must be >= 0");
  L2O_CHECK(timeout.count() > 0, "dist_timeout must be > 0 s, got ", seconds(timeout));
}

std::string DistOptions::describe() const {
  return detail::cat("rank ", rank, " of ", world_size, " (store ", master_addr, ":", master_port, ", hosted by ",
                     agent_store ? "the torchrun agent" : "rank 0", ")");
}

std::optional<DistOptions> DistOptions::from_env(std::chrono::milliseconds timeout) {
  const auto world = env("WORLD_SIZE");
  if (!world) return std::nullopt;
  DistOptions o;
  o.timeout = timeout;
  o.world_size = env_int("WORLD_SIZE", *world);
  const auto rank = env("RANK");
  L2O_CHECK(rank.has_value(), "WORLD_SIZE=", *world,
            " is set but RANK is not: launch with torchrun, or set RANK, MASTER_ADDR and MASTER_PORT too");
  o.rank = env_int("RANK", *rank);
  o.local_rank = env("LOCAL_RANK") ? env_int("LOCAL_RANK", *env("LOCAL_RANK")) : o.rank;
  if (o.world_size > 1) {
    const auto addr = env("MASTER_ADDR");
    const auto port = env("MASTER_PORT");
    L2O_CHECK(addr && port, "WORLD_SIZE=", o.world_size,
              " needs MASTER_ADDR and MASTER_PORT (the store's address): launch with torchrun or set them");
    o.master_addr = *addr;
    o.master_port = env_int("MASTER_PORT", *port);
  }
  o.agent_store = env("TORCHELASTIC_USE_AGENT_STORE").value_or("") == "True";
  if (const auto restarts = env("TORCHELASTIC_RESTART_COUNT")) o.restart_count = env_int("TORCHELASTIC_RESTART_COUNT", *restarts);
  o.validate();
  return o;
}

struct Communicator::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;
};

Communicator::Communicator(const DistOptions& options) : options_(options), impl_(std::make_unique<Impl>()) {
  options_.validate();
  // A failure is reported as one line by the caller; c10d would log it again, line by line, on
  // stderr (connection retries, timeouts). TORCH_CPP_LOG_LEVEL, when set, keeps c10d's logs.
  if (!env("TORCH_CPP_LOG_LEVEL")) FLAGS_caffe2_log_level = 3;
  const std::string where = detail::cat(options_.master_addr, ":", options_.master_port);
  c10::intrusive_ptr<c10d::Store> tcp;
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(options_.master_port);
    so.isServer = !options_.agent_store && options_.rank == 0;
    so.numWorkers = static_cast<std::size_t>(options_.world_size);
    // Our own join check below names the missing ranks; TCPStore's would only time out silently.
    so.waitWorkers = false;
    so.timeout = options_.timeout;
    tcp = c10::make_intrusive<c10d::TCPStore>(options_.master_addr, so);
  } catch (const std::exception& e) {
    throw CollectiveError(detail::cat("rendezvous: rank ", options_.rank, " cannot ",
                                      !options_.agent_store && options_.rank == 0 ? "host" : "reach",
                                      " the store at ", where, ": ", message_of(e)));
  }
  // Each torchrun attempt gets its own key space, so a restarted job never reads the old one's keys
  // (the name torch.distributed uses, so Python and C++ ranks could share a job).
  impl_->store = c10::make_intrusive<c10d::PrefixStore>("/worker/attempt_" + std::to_string(options_.restart_count), tcp);
  auto& store = *impl_->store;
  try {
    store.set("l2o/rank_" + std::to_string(options_.rank), std::vector<uint8_t>{1});
    store.add("l2o/joined", 1);
    const auto deadline = std::chrono::steady_clock::now() + options_.timeout;
    while (store.add("l2o/joined", 0) < options_.world_size) {
      if (std::chrono::steady_clock::now() > deadline) {
        std::string missing;
        for (int r = 0; r < options_.world_size; ++r) {
          if (!store.check({"l2o/rank_" + std::to_string(r)})) missing += (missing.empty() ? "" : ",") + std::to_string(r);
        }
        throw CollectiveError(detail::cat("rendezvous at ", where, ": rank(s) ", missing, " of WORLD_SIZE=",
                                          options_.world_size, " did not join within ", seconds(options_.timeout),
                                          " s (are all ranks started with the same MASTER_ADDR, MASTER_PORT and WORLD_SIZE?)"));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  } catch (const CollectiveError&) {
    throw;
  } catch (const std::exception& e) {
    throw CollectiveError(detail::cat("rendezvous at ", where, " failed: ", message_of(e)));
  }
  try {
    auto go = c10d::ProcessGroupGloo::Options::create(options_.timeout);
    // Gloo needs an address its peers can reach: loopback for a one-machine job, otherwise the
    // interface named by GLOO_SOCKET_IFNAME or the one this host's name resolves to.
    if (const auto ifname = env("GLOO_SOCKET_IFNAME")) {
      go->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(*ifname));
    } else if (is_loopback(options_.master_addr)) {
      go->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    } else {
      go->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    // One worker thread: the trainer issues one collective at a time and waits for it.
    go->threads = 1;
    impl_->group = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, options_.rank, options_.world_size, go);
  } catch (const std::exception& e) {
    throw CollectiveError(detail::cat("connecting the Gloo group of ", options_.world_size, " ranks at ", where,
                                      " failed: ", message_of(e)));
  }
}

Communicator::~Communicator() = default;

void Communicator::wait(const std::string& what, const std::function<void()>& run) {
  const auto t0 = std::chrono::steady_clock::now();
  try {
    run();
  } catch (const std::exception& e) {
    // Gloo names the peer's address when a connection breaks, not its rank; of two ranks the peer is
    // the other one.
    const std::string peer =
        options_.world_size == 2 ? detail::cat(" (peer: rank ", 1 - options_.rank, ")") : std::string();
    throw CollectiveError(detail::cat(what, " failed on rank ", options_.rank, " of ", options_.world_size, peer,
                                      ": ", message_of(e)));
  }
  ++collectives_;
  collective_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void Communicator::all_reduce_sum(torch::Tensor& buffer, const std::string& what) {
  L2O_CHECK(buffer.is_contiguous() && buffer.device().is_cpu(), what, ": the buffer must be a contiguous CPU tensor");
  wait(what, [&] {
    std::vector<at::Tensor> tensors{buffer};
    c10d::AllreduceOptions o;
    o.reduceOp = c10d::ReduceOp::SUM;
    impl_->group->allreduce(tensors, o)->wait();
  });
  bytes_all_reduced_ += buffer.numel() * static_cast<int64_t>(buffer.element_size());
}

void Communicator::all_reduce_mean(torch::Tensor& buffer, const std::string& what) {
  all_reduce_sum(buffer, what);
  torch::NoGradGuard no_grad;
  buffer.div_(static_cast<double>(options_.world_size));
}

void Communicator::broadcast(torch::Tensor& tensor, int root, const std::string& what) {
  L2O_CHECK(tensor.is_contiguous() && tensor.device().is_cpu(), what, ": the tensor must be a contiguous CPU tensor");
  wait(what, [&] {
    std::vector<at::Tensor> tensors{tensor};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    impl_->group->broadcast(tensors, o)->wait();
  });
}

std::string Communicator::broadcast_bytes(const std::string& bytes, int root, const std::string& what) {
  torch::Tensor size = torch::tensor({static_cast<int64_t>(bytes.size())}, torch::kLong);
  broadcast(size, root, what + " (its size)");
  const int64_t n = size.item<int64_t>();
  torch::Tensor data = torch::empty({n}, torch::kUInt8);
  if (rank() == root && n > 0) std::memcpy(data.data_ptr(), bytes.data(), static_cast<size_t>(n));
  if (n > 0) broadcast(data, root, what);
  if (n == 0) return std::string();
  return std::string(reinterpret_cast<const char*>(data.data_ptr()), static_cast<size_t>(n));
}

void Communicator::barrier(const std::string& what) {
  wait(what, [&] {
    c10d::BarrierOptions o;
    o.timeout = options_.timeout;
    // Gloo's monitored barrier names the ranks that did not arrive.
    impl_->group->monitoredBarrier(o, /*waitAllRanks=*/true);
  });
}

uint64_t checksum(const std::vector<torch::Tensor>& tensors) {
  uint64_t h = 1469598103934665603ULL;
  for (const auto& t : tensors) {
    const torch::Tensor c = t.detach().contiguous().cpu();
    const auto* p = static_cast<const unsigned char*>(c.data_ptr());
    const size_t n = static_cast<size_t>(c.numel()) * c.element_size();
    for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ULL;
  }
  return h;
}

std::string checksum_hex(uint64_t value) {
  char text[17];
  std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(value));
  return text;
}

}  // namespace meta
}  // namespace l2o
