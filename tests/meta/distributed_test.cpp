// meta/distributed and meta/reduction in one process: two ranks on two threads over loopback (the
// same c10d TCPStore and Gloo group as two processes), so each collective and check is tested alone.
// tests/apps/distributed_cli_test.cpp launches real processes under torchrun.
#include <l2o/meta/distributed.h>
#include <l2o/meta/reduction.h>
#include <l2o/meta/trainer.h>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <exception>
#include <functional>
#include <future>
#include <string>
#include <vector>

using namespace l2o;
using namespace std::chrono_literals;

namespace {
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

meta::DistOptions rank_options(int rank, int world, int port, std::chrono::milliseconds timeout = 10s) {
  meta::DistOptions o;
  o.rank = rank;
  o.world_size = world;
  o.local_rank = rank;
  o.master_addr = "127.0.0.1";
  o.master_port = port;
  o.timeout = timeout;
  return o;
}

/// Runs body(rank, communicator) on `world` threads, one rank each; rethrows the first failure.
void on_ranks(int world, const std::function<void(int, meta::Communicator&)>& body) {
  const int port = free_port();
  std::vector<std::future<void>> ranks;
  for (int r = 0; r < world; ++r) {
    ranks.push_back(std::async(std::launch::async, [=] {
      meta::Communicator comm(rank_options(r, world, port));
      body(r, comm);
    }));
  }
  for (auto& f : ranks) {
    ASSERT_EQ(f.wait_for(60s), std::future_status::ready) << "a rank hung";
  }
  for (auto& f : ranks) f.get();
}

struct Env {
  using Vars = std::vector<std::pair<std::string, std::string>>;
  explicit Env(Vars vars) : vars_(std::move(vars)) {
    for (const char* name : {"WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT",
                             "TORCHELASTIC_USE_AGENT_STORE", "TORCHELASTIC_RESTART_COUNT"}) {
      ::unsetenv(name);
    }
    for (const auto& [k, v] : vars_) ::setenv(k.c_str(), v.c_str(), 1);
  }
  ~Env() {
    for (const auto& kv : vars_) ::unsetenv(kv.first.c_str());
  }
  Vars vars_;
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(Distributed, EnvironmentIsReadAndCheckedLikeTorchrunsConvention) {
  {
    Env env(Env::Vars{});
    EXPECT_FALSE(meta::DistOptions::from_env(1s).has_value()) << "no WORLD_SIZE: a plain single process";
  }
  {
    Env env({{"WORLD_SIZE", "2"}, {"RANK", "1"}, {"MASTER_ADDR", "10.0.0.1"}, {"MASTER_PORT", "1234"},
             {"TORCHELASTIC_USE_AGENT_STORE", "True"}, {"TORCHELASTIC_RESTART_COUNT", "3"}});
    const auto o = meta::DistOptions::from_env(5s);
    ASSERT_TRUE(o.has_value());
    EXPECT_EQ(o->rank, 1);
    EXPECT_EQ(o->world_size, 2);
    EXPECT_EQ(o->local_rank, 1);
    EXPECT_EQ(o->master_addr, "10.0.0.1");
    EXPECT_EQ(o->master_port, 1234);
    EXPECT_TRUE(o->agent_store);
    EXPECT_EQ(o->restart_count, 3);
    EXPECT_EQ(o->timeout, 5s);
  }
  {
    Env env({{"WORLD_SIZE", "2"}, {"RANK", "2"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "1234"}});
    EXPECT_NE(error_of([] { meta::DistOptions::from_env(1s); }).find("RANK=2 must lie in [0, WORLD_SIZE=2)"),
              std::string::npos);
  }
  {
    Env env(Env::Vars{{"WORLD_SIZE", "2"}});
    EXPECT_NE(error_of([] { meta::DistOptions::from_env(1s); }).find("RANK is not"), std::string::npos);
  }
  {
    Env env({{"WORLD_SIZE", "2"}, {"RANK", "0"}});
    EXPECT_NE(error_of([] { meta::DistOptions::from_env(1s); }).find("MASTER_ADDR and MASTER_PORT"), std::string::npos);
  }
  {
    Env env({{"WORLD_SIZE", "two"}, {"RANK", "0"}});
    EXPECT_NE(error_of([] { meta::DistOptions::from_env(1s); }).find("WORLD_SIZE='two' is not an integer"),
              std::string::npos);
  }
}

TEST(Distributed, CollectivesSumBroadcastAndCount) {
  on_ranks(2, [](int rank, meta::Communicator& comm) {
    torch::Tensor x = torch::tensor({1.0 + rank, 10.0 * (rank + 1)}, torch::kDouble);
    comm.all_reduce_sum(x, "test sum");
    EXPECT_TRUE(torch::equal(x, torch::tensor({3.0, 30.0}, torch::kDouble)));
    torch::Tensor m = torch::tensor({2.0 * rank}, torch::kDouble);
    comm.all_reduce_mean(m, "test mean");
    EXPECT_EQ(m.item<double>(), 1.0);
    torch::Tensor b = torch::full({3}, static_cast<float>(rank + 5));
    comm.broadcast(b, 0, "test broadcast");
    EXPECT_TRUE(torch::equal(b, torch::full({3}, 5.0f)));
    EXPECT_EQ(comm.broadcast_bytes(rank == 0 ? std::string("a\0b", 3) : "ignored", 0, "bytes"), std::string("a\0b", 3));
    EXPECT_EQ(comm.broadcast_bytes("", 0, "no bytes"), "");
    comm.barrier("test barrier");
    EXPECT_EQ(comm.bytes_all_reduced(), 3 * 8);
    EXPECT_GE(comm.collectives(), 6);
  });
}

TEST(Distributed, AMissingPeerIsAOneLineErrorNamingItWithinTheTimeout) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::string err = error_of([] { meta::Communicator comm(rank_options(0, 2, free_port(), 1500ms)); });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(err.find("rank(s) 1 of WORLD_SIZE=2 did not join within 1.5 s"), std::string::npos) << err;
  EXPECT_EQ(err.find('\n'), std::string::npos) << err;
  EXPECT_LT(seconds, 1.5 + 5);
  // Nobody hosts the store: a client gives up after the timeout.
  const std::string unreachable = error_of([] { meta::Communicator comm(rank_options(1, 2, free_port(), 1s)); });
  EXPECT_NE(unreachable.find("rendezvous: rank 1 cannot reach the store at 127.0.0.1:"), std::string::npos) << unreachable;
}

TEST(Distributed, ReductionAveragesTheTasksThatGaveAGradient) {
  torch::Tensor a = torch::zeros({2}, torch::requires_grad()), unused = torch::zeros({1}, torch::requires_grad());
  meta::MetaGradientReduction reduction({a, unused}, nullptr);
  reduction.begin();
  a.mutable_grad() = torch::tensor({1.0f, 2.0f});
  reduction.add_gradient();
  reduction.local().contributions += 1;
  a.mutable_grad() = torch::tensor({4.0f, 8.0f});
  reduction.add_gradient();
  reduction.local().contributions += 1;
  // A stale gradient on a tensor no task touched must not reach the step.
  unused.mutable_grad() = torch::ones({1});
  unused.mutable_grad() = torch::Tensor();
  const meta::UnrollMetrics m = reduction.reduce("test");
  EXPECT_EQ(m.contributions, 2);
  EXPECT_TRUE(torch::equal(a.grad(), torch::tensor({2.5f, 5.0f})));
  EXPECT_FALSE(unused.grad().defined());
  // One task: its own gradient, bit for bit (the float64 round trip is exact).
  const float odd = 0.1f / 3.0f;
  reduction.begin();
  a.mutable_grad() = torch::tensor({odd, -odd});
  reduction.add_gradient();
  reduction.local().contributions += 1;
  reduction.reduce("test");
  EXPECT_TRUE(torch::equal(a.grad(), torch::tensor({odd, -odd})));
}

TEST(Distributed, RanksWhosePhiDiffersFailTheEndOfIterationCheck) {
  std::vector<std::string> errors(2);
  on_ranks(2, [&](int rank, meta::Communicator& comm) {
    auto shared = std::shared_ptr<meta::Communicator>(&comm, [](meta::Communicator*) {});
    torch::Tensor phi = torch::zeros({1}, torch::requires_grad());
    meta::MetaGradientReduction reduction({phi}, shared);
    // The same φ: rank 0's validation and clock reach every rank.
    const auto end = reduction.end_iteration(rank == 0 ? std::optional<double>(1.25) : std::nullopt,
                                             rank == 0 ? 2.0 : 9.0, 42, 7);
    EXPECT_EQ(end.validation.value_or(-1), 1.25);
    EXPECT_EQ(end.seconds, 2.0);
    errors[rank] = error_of([&] { reduction.end_iteration(std::nullopt, 1, rank == 0 ? 42 : 43, 8); });
  });
  EXPECT_EQ(errors[0], "");
  EXPECT_NE(errors[1].find("phi differs between ranks after meta-iteration 8: rank 1 has checksum 000000000000002b, "
                           "rank 0 has 000000000000002a"),
            std::string::npos)
      << errors[1];
}

// SPEC §6.2's equivalence, in one process: two ranks of one task each train the same φ as one
// process of two tasks, bit for bit (a float64 sum of two terms is exact), and keep it identical.
TEST(Distributed, TwoRanksOfOneTaskEqualOneProcessOfTwoTasks) {
  const auto options = meta::TrainOptions()
                           .optimizer("lstm:output_scale=0.1,hidden_size=6")
                           .problem("dm_quadratic:batch=8,dim=4")
                           .num_steps(12)
                           .unroll_length(4)
                           .meta_lr(0.01)
                           .evaluation_period(2)
                           .evaluation_epochs(1)
                           .meta_iterations(5)
                           .seed(11);
  meta::Trainer single(meta::TrainOptions(options).tasks_per_worker(2));
  std::vector<uint64_t> expected;
  while (!single.finished()) expected.push_back(single.step().phi_checksum);
  std::vector<std::vector<uint64_t>> seen(2);
  on_ranks(2, [&](int rank, meta::Communicator& comm) {
    meta::Trainer trainer(options, std::shared_ptr<meta::Communicator>(&comm, [](meta::Communicator*) {}));
    EXPECT_EQ(trainer.root(), rank == 0);
    while (!trainer.finished()) seen[rank].push_back(trainer.step().phi_checksum);
  });
  EXPECT_EQ(seen[0], expected);
  EXPECT_EQ(seen[1], expected);
  // And distinct tasks really were drawn: one task alone trains another φ.
  meta::Trainer one(options);
  one.run(true);
  EXPECT_NE(meta::checksum(one.rule()->module()->parameters()), expected.back());
}

// Every option of meta-training works distributed: sampled horizons (tasks of one meta-step then
// end after different numbers of unrolls), imitation, the flatness regulariser, the curriculum
// (rank 0's validation drives every rank's promotion) and a time budget.
TEST(Distributed, EveryTrainingOptionWorksDistributedWithTheSameResult) {
  const auto options = meta::TrainOptions()
                           .optimizer("lstm:output_scale=0.1,hidden_size=6")
                           .problem("dm_quadratic:batch=8,dim=4")
                           .unroll_length(3)
                           .num_steps(12)
                           .fix_unroll(false)
                           .num_unroll_scale(2)
                           .num_partial_unroll_itr_scale(2)
                           .min_num_itr_partial_unroll(2)
                           .if_mt(true)
                           .mt_ratio(0.5)
                           .reg_optimizer(true)
                           .reg_option("hessian")
                           .hessian_itrs(2)
                           .regularize_time("posterior")
                           .meta_lr(0.01)
                           .evaluation_period(1)
                           .evaluation_epochs(1)
                           .meta_iterations(6)
                           .max_seconds(3600)
                           .seed(2);
  for (const bool curriculum : {false, true}) {
    const auto o = meta::TrainOptions(options).if_cl(curriculum).cl_horizons("6,9,12").min_num_eval(1);
    meta::Trainer single(meta::TrainOptions(o).tasks_per_worker(2));
    std::vector<uint64_t> expected;
    int64_t imitation = 0;
    while (!single.finished()) {
      const meta::IterationRecord r = single.step();
      expected.push_back(r.phi_checksum);
      imitation += r.imitation;
    }
    std::vector<std::vector<uint64_t>> seen(2);
    std::vector<meta::TrainerCounters> counters(2);
    on_ranks(2, [&](int rank, meta::Communicator& comm) {
      meta::Trainer trainer(o, std::shared_ptr<meta::Communicator>(&comm, [](meta::Communicator*) {}));
      while (!trainer.finished()) seen[rank].push_back(trainer.step().phi_checksum);
      counters[rank] = trainer.counters();
    });
    EXPECT_EQ(seen[0], expected) << "curriculum " << curriculum;
    EXPECT_EQ(seen[1], expected) << "curriculum " << curriculum;
    EXPECT_EQ(counters[0].stage, single.counters().stage);
    EXPECT_EQ(counters[1].stage, single.counters().stage);
    EXPECT_EQ(counters[1].best_validation, single.counters().best_validation);
    EXPECT_EQ(counters[1].elapsed_seconds, counters[0].elapsed_seconds);
    if (curriculum) {
      EXPECT_GT(single.counters().stage, 0) << "the curriculum never advanced: the test shows nothing";
    }
    EXPECT_GT(imitation, 0) << "no imitation task was drawn: the test shows nothing";
  }
}

// The estimators add their estimates through the same reduction: ES and PES with 2 ranks × 1 task
// train the φ of 1 process × 2 tasks, bit for bit.
TEST(Distributed, EsAndPesTwoRanksOfOneTaskEqualOneProcessOfTwoTasks) {
  for (const std::string estimator : {"es", "pes"}) {
    const auto options = meta::TrainOptions()
                             .optimizer("lstm:output_scale=0.1,hidden_size=4")
                             .problem("dm_quadratic:batch=4,dim=3")
                             .num_steps(8)
                             .unroll_length(4)
                             .meta_lr(0.01)
                             .evaluation_period(0)
                             .meta_iterations(3)
                             .estimator(estimator)
                             .es_pairs(2)
                             .seed(4);
    meta::Trainer single(meta::TrainOptions(options).tasks_per_worker(2));
    std::vector<uint64_t> expected;
    while (!single.finished()) expected.push_back(single.step().phi_checksum);
    std::vector<std::vector<uint64_t>> seen(2);
    on_ranks(2, [&](int rank, meta::Communicator& comm) {
      meta::Trainer trainer(options, std::shared_ptr<meta::Communicator>(&comm, [](meta::Communicator*) {}));
      while (!trainer.finished()) seen[rank].push_back(trainer.step().phi_checksum);
    });
    EXPECT_EQ(seen[0], expected) << estimator;
    EXPECT_EQ(seen[1], expected) << estimator;
  }
}
