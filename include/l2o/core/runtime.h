#pragma once
/// Process-wide CPU settings the programs of this project start with (l2o, benchmarks, examples).
///
/// 1. Denormal floats are flushed to zero, as TensorFlow does on CPU by default. A learned
///    optimizer's state (mean squares of tiny gradients, exp of very negative log learning rates)
///    drifts into the denormal range as meta-training goes on; x86 then computes 10-100x slower.
///    L2O_KEEP_DENORMALS=1 keeps IEEE denormals.
/// 2. Freed memory is kept inside the process instead of being returned to the kernel.
/// 3. set_threads() sets LibTorch's own thread pool and keeps OpenBLAS to one thread.
///
/// Keep freed memory inside the process instead of returning it to the kernel.
///
/// glibc serves blocks above its mmap threshold (≤ 32 MB) with fresh mmaps and unmaps them on free,
/// so every large temporary tensor is page-faulted in again on every step. On the 2-core VM this
/// project is developed on, that is 40 % of a HierarchicalRNN step on a 1M-parameter model and
/// most of an Adam step (docs/benchmarks.md). Programs call this once at start, the Python module's
/// optimizers when they are built; the cost is that the peak heap is not given back until exit.
/// L2O_OS_MALLOC=1 in the environment keeps glibc's defaults.
#include <dlfcn.h>
#include <malloc.h>

#include <ATen/Context.h>
#include <ATen/Parallel.h>

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

/// Threads of LibTorch's intra-op pool (threads > 0; 0 keeps LibTorch's default), with OpenBLAS kept
/// to one thread whatever the pool's size.
///
/// torch::set_num_threads does not reach OpenBLAS (Debian's LibTorch calls it through the BLAS
/// interface), which keeps one worker per core; after a matrix product its workers spin for a while
/// before they sleep, and so do the workers of LibTorch's OpenMP pool after a parallel region. With
/// `--threads 1` on the 2-core machine, two processes at once then ran four busy threads and each went
/// at about half speed; with `--threads 2` one process ran three, and the OpenMP and OpenBLAS workers
/// took the cores from each other: 4 MNIST meta-iterations took 30.3 s against 11.9 s with one
/// thread. With OpenBLAS at one thread the same took 11.6 s, and 300 steps of the MNIST convnet 144 s
/// against 163 s with OpenBLAS at two and 249 s with one thread in all (LibTorch's own kernels,
/// convolutions included, parallelise over the pool; docs/benchmarks.md). OpenBLAS is found at run time (dlsym), so a program linked against another BLAS
/// is left as it is. Returns the OpenBLAS threads set, or 0 when no OpenBLAS is loaded.
inline int set_threads(int threads) {
  if (threads > 0) at::set_num_threads(threads);
  using SetThreads = void (*)(int);
  using GetThreads = int (*)();
  auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  auto get = reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  if (set == nullptr || get == nullptr) return 0;
  set(1);
  return get();
}

/// The first two settings above; call once at the start of main().
inline void tune_runtime() {
  if (!env_flag("L2O_KEEP_DENORMALS")) at::globalContext().setFlushDenormal(true);
  keep_freed_memory();
}

}  // namespace l2o
