// Distributed meta-training as a user runs it (SPEC §6.2): real `l2o train` processes on loopback,
// launched by torchrun (Debian's python3-torch, `/usr/bin/python3 -m torch.distributed.run
// --no_python`) or by plain environment variables. Tiny quadratics with short unrolls and short
// timeouts keep each test to seconds; every process runs under `timeout`, so nothing can hang.
#include <l2o/io/checkpoint.h>
#include <l2o/meta/distributed.h>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {
std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

const std::string& work() {
  static const std::string dir = [] {
    auto d = fs::temp_directory_path() / ("l2o_dist_test_" + std::to_string(::getpid()));
    fs::remove_all(d);
    fs::create_directories(d);
    return d.string();
  }();
  return dir;
}

std::string bin() {
  const char* b = std::getenv("L2O_BIN");
  return b ? b : "l2o";
}

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

struct Result {
  int code;
  std::string out, err;
  double seconds;
};

/// Runs a shell command (bounded by `timeout`), capturing stdout and stderr.
Result sh(const std::string& cmd, const std::string& tag, int limit_seconds = 180) {
  const std::string out = work() + "/" + tag + ".out", err = work() + "/" + tag + ".err";
  const auto t0 = Clock::now();
  const int status = std::system(("timeout -k 5 " + std::to_string(limit_seconds) + " bash -c '" + cmd + "' >" + out +
                                  " 2>" + err)
                                     .c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err),
          std::chrono::duration<double>(Clock::now() - t0).count()};
}

/// A tiny run: LSTM on 5-d quadratics, 4 unrolls of 5 steps, validation (and so latest.pt) every iteration.
std::string train_args(const std::string& dir, int iterations) {
  return "train --quiet --plot false --threads 1 --optimizer lstm:output_scale=0.1,hidden_size=8 "
         "--problem dm_quadratic:batch=16,dim=5 --num_steps 20 --unroll_length 5 --meta_lr 0.01 --seed 5 "
         "--evaluation_period 1 --evaluation_epochs 1 --meta_iterations " +
         std::to_string(iterations) + " -o " + dir;
}

std::string torchrun(const std::string& flags) {
  return "/usr/bin/python3 -m torch.distributed.run --redirects 1 --tee 1 --no_python --nnodes 1 --nproc_per_node 2 "
         "--master_addr 127.0.0.1 --master_port " +
         std::to_string(free_port()) + " " + flags + " ";
}

std::string env(int rank, int world, int port) {
  return "env WORLD_SIZE=" + std::to_string(world) + " RANK=" + std::to_string(rank) +
         " MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " ";
}

/// The phi_checksum column of a train_log.csv.
std::vector<std::string> checksums(const std::string& csv) {
  std::vector<std::string> out;
  std::istringstream in(csv);
  std::string line;
  std::getline(in, line);
  EXPECT_NE(line.find(",phi_checksum"), std::string::npos) << line;
  while (std::getline(in, line)) out.push_back(line.substr(line.rfind(',') + 1));
  return out;
}

int logged_iterations(const std::string& dir) {
  const std::string log = slurp(dir + "/train_log.csv");
  return log.empty() ? 0 : lines(log) - 1;
}

/// The pid of the `l2o train` process whose environment says RANK=rank and whose command line
/// mentions `dir` (0 if none).
pid_t find_rank(int rank, const std::string& dir) {
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmdline = slurp(entry.path() / "cmdline");
    for (char& c : cmdline) c = c == '\0' ? ' ' : c;
    if (cmdline.rfind(bin(), 0) != 0 || cmdline.find(" " + dir + " ") == std::string::npos) continue;
    const std::string environ = '\0' + slurp(entry.path() / "environ");
    if (environ.find(std::string("\0RANK=", 6) + std::to_string(rank) + '\0') == std::string::npos) continue;
    return static_cast<pid_t>(std::stol(name));
  }
  return 0;
}

/// Waits (at most `limit` s) until the run in `dir` has logged `n` meta-iterations.
bool wait_for_iterations(const std::string& dir, int n, double limit = 60) {
  const auto t0 = Clock::now();
  while (std::chrono::duration<double>(Clock::now() - t0).count() < limit) {
    if (logged_iterations(dir) >= n) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

std::vector<torch::Tensor> phi(const std::string& checkpoint) {
  return l2o::io::load_rule(checkpoint)->module()->parameters();
}
}  // namespace

// 2 ranks × 1 task = 1 process × 2 tasks on the same draws, every iteration; resuming the 2-rank
// run in one process is a continuation (and says so).
TEST(DistributedCli, TwoRanksOfOneTaskEqualOneProcessOfTwoTasks) {
  const std::string one = work() + "/one", two = work() + "/two";
  const Result a = sh(bin() + " " + train_args(one, 5) + " --tasks_per_worker 2", "one");
  ASSERT_EQ(a.code, 0) << a.err;
  const Result b = sh(torchrun("") + bin() + " " + train_args(two, 5), "two");
  ASSERT_EQ(b.code, 0) << b.out << b.err;
  // Rank 0 alone writes and prints: one checkpoint line, the rank-agreement check passed every iteration.
  EXPECT_EQ(lines(b.out), 1) << b.out;
  EXPECT_NE(b.out.find("[default0]:checkpoints:"), std::string::npos) << b.out;
  EXPECT_NE(b.err.find("distributed: 2 ranks x 1 task(s)"), std::string::npos) << b.err;
  const auto ca = checksums(slurp(one + "/train_log.csv")), cb = checksums(slurp(two + "/train_log.csv"));
  ASSERT_EQ(ca.size(), 5u);
  EXPECT_EQ(ca, cb);
  const auto pa = phi(one + "/latest.pt"), pb = phi(two + "/latest.pt");
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) {
    EXPECT_TRUE(torch::allclose(pa[i], pb[i], /*rtol=*/1e-6, /*atol=*/0)) << "phi tensor " << i;
  }
  const Result c = sh(bin() + " train --quiet --plot false --resume " + two + "/latest.pt --meta_iterations 6", "continue");
  ASSERT_EQ(c.code, 0) << c.err;
  EXPECT_NE(c.err.find("resuming a run of 2 process(es) on 1: a continuation"), std::string::npos) << c.err;
}

// kill -9 on one rank: the other exits within dist_timeout + 10 s with one line naming the failed
// collective and exit code 3; a stopped (hung) peer is caught by the timeout the same way.
TEST(DistributedCli, AKilledOrHungPeerEndsTheOtherRankWithOneLineAndCode3) {
  for (const int sig : {SIGKILL, SIGSTOP}) {
    const std::string dir = work() + (sig == SIGKILL ? "/killed" : "/stopped");
    const int port = free_port();
    const std::string args = train_args(dir, 100000) + " --dist_timeout 4";
    pid_t rank1 = ::fork();
    if (rank1 == 0) {
      ::execl("/bin/sh", "sh", "-c", ("exec " + env(1, 2, port) + bin() + " " + args + " 2>/dev/null").c_str(), nullptr);
      ::_exit(127);
    }
    Result r0;
    std::thread survivor([&] { r0 = sh(env(0, 2, port) + bin() + " " + args, "survivor", 120); });
    const bool running = wait_for_iterations(dir, 3);
    const auto t0 = Clock::now();
    ::kill(rank1, sig);
    survivor.join();
    const double after = std::chrono::duration<double>(Clock::now() - t0).count();
    if (sig == SIGSTOP) ::kill(rank1, SIGKILL);
    ::waitpid(rank1, nullptr, 0);
    ASSERT_TRUE(running) << "the run never started: " << r0.err;
    std::printf("%s: the other rank exited %.2f s later with code %d: %s", sig == SIGKILL ? "kill -9" : "SIGSTOP", after,
                r0.code, r0.err.c_str());
    EXPECT_EQ(r0.code, 3) << r0.err;
    EXPECT_EQ(lines(r0.err), 1) << r0.err;
    // The collective it was in: an unroll's all-reduce, or (rarely) rank 0's end-of-iteration broadcast.
    const bool named = r0.err.rfind("l2o: all-reduce of the meta-gradient (iteration ", 0) == 0 ||
                       r0.err.rfind("l2o: broadcast of the end of meta-iteration ", 0) == 0;
    EXPECT_TRUE(named) << r0.err;
    EXPECT_NE(r0.err.find(" failed on rank 0 of 2 (peer: rank 1): "), std::string::npos) << r0.err;
    EXPECT_LT(after, 4 + 10) << r0.err;
    if (sig == SIGSTOP) {
      EXPECT_NE(r0.err.find("Timed out"), std::string::npos) << r0.err;
    }
  }
}

// torchrun --max_restarts 1: after a rank is killed the job restarts every rank from the last
// checkpoint and finishes, bit for bit the run that was never interrupted (same world size).
TEST(DistributedCli, TorchrunRestartsFromTheLastCheckpointAndFinishesTheRunExactly) {
  const std::string dir = work() + "/restarted", reference = work() + "/reference";
  const int iterations = 40;
  Result job;
  std::thread launcher([&] {
    job = sh(torchrun("--max_restarts 1 --monitor_interval 1") + bin() + " " + train_args(dir, iterations) +
                 " --dist_timeout 10",
             "restarted", 240);
  });
  const bool running = wait_for_iterations(dir, 3);
  pid_t rank1 = 0;
  for (int i = 0; i < 100 && rank1 == 0; ++i, std::this_thread::sleep_for(std::chrono::milliseconds(20))) {
    rank1 = find_rank(1, dir);
  }
  if (rank1 > 0) ::kill(rank1, SIGKILL);
  launcher.join();
  ASSERT_TRUE(running) << job.err;
  ASSERT_GT(rank1, 0) << "no rank 1 process found";
  ASSERT_EQ(job.code, 0) << job.out << job.err;
  EXPECT_NE(job.err.find("restart 1: resuming from " + dir + "/latest.pt at meta-iteration"), std::string::npos)
      << job.err;
  EXPECT_EQ(logged_iterations(dir), iterations);
  // The uninterrupted equivalent: one process of two tasks.
  const Result ref = sh(bin() + " " + train_args(reference, iterations) + " --tasks_per_worker 2", "reference");
  ASSERT_EQ(ref.code, 0) << ref.err;
  EXPECT_EQ(checksums(slurp(dir + "/train_log.csv")), checksums(slurp(reference + "/train_log.csv")));
}

// A bad environment is one line and a non-zero exit, never a hang.
TEST(DistributedCli, ABadEnvironmentIsOneLineAndANonZeroExit) {
  const std::string args = " " + train_args(work() + "/bad", 2) + " --dist_timeout 2";
  struct Case {
    std::string env, needle;
    int code;
  };
  const int port = free_port();
  const std::vector<Case> cases = {
      {env(0, 2, port), "rank(s) 1 of WORLD_SIZE=2 did not join within 2 s", 3},
      {env(2, 2, port), "RANK=2 must lie in [0, WORLD_SIZE=2)", 1},
      {env(1, 2, port), "rank 1 cannot reach the store at 127.0.0.1:" + std::to_string(port), 3},
      {"env WORLD_SIZE=2 RANK=1 MASTER_ADDR=no-such-host.invalid MASTER_PORT=29500 ",
       "rank 1 cannot reach the store at no-such-host.invalid:29500", 3},
      {"env WORLD_SIZE=2 ", "WORLD_SIZE=2 is set but RANK is not", 1},
  };
  for (const Case& c : cases) {
    const Result r = sh(c.env + bin() + args, "bad", 60);
    EXPECT_EQ(r.code, c.code) << c.env << r.err;
    EXPECT_EQ(lines(r.err), 1) << c.env << r.err;
    EXPECT_NE(r.err.find(c.needle), std::string::npos) << c.env << r.err;
    EXPECT_LT(r.seconds, 2 + 10) << c.env;
    EXPECT_FALSE(fs::exists(work() + "/bad/latest.pt")) << c.env;
  }
}

// `--resume` on two ranks (same world size) continues the run bit for bit; only rank 0 needs the file.
TEST(DistributedCli, ResumeOnTheSameWorldSizeIsBitForBit) {
  const std::string whole = work() + "/whole", split = work() + "/split";
  ASSERT_EQ(sh(bin() + " " + train_args(whole, 5) + " --tasks_per_worker 2", "whole").code, 0);
  auto two_ranks = [&](const std::string& rank0, const std::string& rank1, const std::string& tag) {
    const int port = free_port();
    return sh(env(0, 2, port) + bin() + " " + rank0 + " & " + env(1, 2, port) + bin() + " " + rank1 +
                  " 2>/dev/null; r1=$?; wait $!; r0=$?; exit $((r0 + r1))",
              tag, 120);
  };
  Result first = two_ranks(train_args(split, 3), train_args(split, 3), "first");
  ASSERT_EQ(first.code, 0) << first.err;
  Result second = two_ranks("train --quiet --plot false --resume " + split + "/latest.pt --meta_iterations 5",
                            "train --quiet --plot false --resume /nonexistent/latest.pt --meta_iterations 5", "second");
  ASSERT_EQ(second.code, 0) << second.err;
  EXPECT_EQ(checksums(slurp(split + "/train_log.csv")), checksums(slurp(whole + "/train_log.csv")));
  EXPECT_EQ(second.err.find("continuation"), std::string::npos) << second.err;
}
