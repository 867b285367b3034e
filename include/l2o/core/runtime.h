#pragma once
/// Process-wide CPU settings the programs of this project start with (l2o, benchmarks, examples).
///
/// 1. Denormal floats are flushed to zero, as TensorFlow does on CPU by default. A learned
///    optimizer's state (mean squares of tiny gradients, exp of very negative log learning rates)
///    drifts into the denormal range as meta-training goes on; x86 then computes 10-100x slower.
///    L2O_KEEP_DENORMALS=1 keeps IEEE denormals.
/// 2. Freed memory is kept inside the process instead of being returned to the kernel.
///
/// Keep freed memory inside the process instead of returning it to the kernel.
///
/// glibc serves blocks above its mmap threshold (≤ 32 MB) with fresh mmaps and unmaps them on free,
/// so every large temporary tensor is page-faulted in again on every step. On the 2-core VM this
/// project is developed on, that is 40 % of a HierarchicalRNN step on a 1M-parameter model and
/// most of an Adam step (docs/benchmarks.md). Programs call this once at start; the cost is that the
/// peak heap is not given back until exit. L2O_OS_MALLOC=1 in the environment keeps glibc's defaults.
#include <malloc.h>

#include <ATen/Context.h>

#include <cstdlib>

namespace l2o {

inline bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' && *v != '0';
}

inline void keep_freed_memory() {
  if (env_flag("L2O_OS_MALLOC")) return;
#ifdef M_MMAP_MAX
  mallopt(M_MMAP_MAX, 0);                   // large blocks come from the heap, not mmap
  mallopt(M_TRIM_THRESHOLD, 1 << 30);        // and the heap top is not trimmed below 1 GB of slack
  mallopt(M_TOP_PAD, 64 << 20);
#endif
}

/// Both settings above; call once at the start of main().
inline void tune_runtime() {
  if (!env_flag("L2O_KEEP_DENORMALS")) at::globalContext().setFlushDenormal(true);
  keep_freed_memory();
}

}  // namespace l2o
