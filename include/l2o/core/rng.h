#pragma once
/// Seeding. l2o uses counter-based seeding: every random draw of meta-iteration i of stream s under
/// seed k comes from a generator seeded with mix(k, s, i). A run is therefore reproducible from its
/// counters alone, and resuming from a checkpoint replays exactly the draws an uninterrupted run makes.
#include <ATen/core/Generator.h>

#include <cstdint>

namespace l2o {

/// Independent random streams of one run.
enum class Stream : uint64_t { kTrain = 1, kValidation = 2, kTest = 3, kInit = 4 };

/// SplitMix64-style mixing of a seed, a stream and a counter into a 64-bit seed.
uint64_t mix_seed(uint64_t seed, Stream stream, uint64_t counter);

/// A fresh CPU generator seeded with mix_seed(seed, stream, counter).
at::Generator make_generator(uint64_t seed, Stream stream = Stream::kInit, uint64_t counter = 0);

}  // namespace l2o
