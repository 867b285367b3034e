#pragma once
/// Seeding. l2o uses counter-based seeding: every random draw of meta-iteration i of stream s under
/// seed k comes from a generator seeded with mix(k, s, i). A run is therefore reproducible from its
/// counters alone, and resuming from a checkpoint replays exactly the draws an uninterrupted run makes.
#include <ATen/core/Generator.h>

#include <cstdint>

namespace l2o {

/// Independent random streams of one run.
enum class Stream : uint64_t { kTrain = 1, kValidation = 2, kTest = 3, kInit = 4, kTask = 5 };

/// SplitMix64-style mixing of a seed, a stream and a counter into a 64-bit seed.
uint64_t mix_seed(uint64_t seed, Stream stream, uint64_t counter);

/// A fresh CPU generator seeded with mix_seed(seed, stream, counter).
at::Generator make_generator(uint64_t seed, Stream stream = Stream::kInit, uint64_t counter = 0);

/// The generator of task `task` of meta-iteration `iteration` (SPEC §6.2: W ranks × T tasks draw task
/// rank·T + t). Task 0 is the single-task stream make_generator(seed, kTrain, iteration), so runs of one
/// task keep their draws; task j > 0 draws from mix(mix(seed, kTrain, iteration), kTask, j).
at::Generator task_generator(uint64_t seed, uint64_t iteration, uint64_t task);

}  // namespace l2o
