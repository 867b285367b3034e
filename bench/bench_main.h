#pragma once
// What every benchmark program of the project does around Google Benchmark: tune the runtime like
// the other programs, run the selected benchmarks, and keep each one's real time per iteration (in
// seconds, keyed by the name before any '/') so that main() can print ratios measured in one run.
#include <l2o/core/runtime.h>

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace l2o {
namespace bench {

class SecondsRecorder : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const auto& r : runs)
      if (r.run_type == Run::RT_Iteration)
        seconds[r.benchmark_name().substr(0, r.benchmark_name().find('/'))] =
            r.real_accumulated_time / static_cast<double>(r.iterations);
  }
  std::map<std::string, double> seconds;
};

/// The processor as /proc/cpuinfo names it, with its family and model numbers: machines of one name
/// differ (an "AMD EPYC" of family 25 runs 512-bit vectors on 256-bit units, one of family 26 on
/// 512-bit units), so a benchmark's output says which one it was measured on.
inline std::string cpu_description() {
  std::ifstream in("/proc/cpuinfo");
  std::string line, name = "unknown", family = "?", model = "?";
  auto value = [&] { return line.substr(line.find(':') + 2); };
  while (std::getline(in, line) && !line.empty()) {
    if (line.rfind("model name", 0) == 0) name = value();
    else if (line.rfind("cpu family", 0) == 0) family = value();
    else if (line.rfind("model\t", 0) == 0) model = value();
  }
  return name + " (family " + family + ", model " + model + ")";
}

/// Runs the benchmarks selected on the command line; returns seconds per iteration by name.
/// One thread for LibTorch and OpenBLAS alike (L2O_BENCH_THREADS=N for another count), so that a
/// benchmark measures one core whatever else the machine has free.
inline std::map<std::string, double> run_benchmarks(int* argc, char** argv) {
  tune_runtime();
  const char* env = std::getenv("L2O_BENCH_THREADS");
  const int threads = env != nullptr ? std::atoi(env) : 0;
  const int blas_threads = set_threads(threads > 0 ? threads : 1);
  benchmark::Initialize(argc, argv);
  SecondsRecorder recorder;
  benchmark::RunSpecifiedBenchmarks(&recorder);
  std::printf("\nthreads: LibTorch %d, OpenBLAS %d; cpu: %s\n", torch::get_num_threads(), blas_threads,
              cpu_description().c_str());
  return recorder.seconds;
}

}  // namespace bench
}  // namespace l2o
