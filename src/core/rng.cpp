#include <l2o/core/rng.h>

#include <ATen/CPUGeneratorImpl.h>

namespace l2o {

namespace {
uint64_t splitmix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}
}  // namespace

uint64_t mix_seed(uint64_t seed, Stream stream, uint64_t counter) {
  return splitmix(splitmix(splitmix(seed) ^ static_cast<uint64_t>(stream)) ^ counter);
}

at::Generator make_generator(uint64_t seed, Stream stream, uint64_t counter) {
  return at::detail::createCPUGenerator(mix_seed(seed, stream, counter));
}

at::Generator task_generator(uint64_t seed, uint64_t iteration, uint64_t task) {
  if (task == 0) return make_generator(seed, Stream::kTrain, iteration);
  return make_generator(mix_seed(seed, Stream::kTrain, iteration), Stream::kTask, task);
}

}  // namespace l2o
