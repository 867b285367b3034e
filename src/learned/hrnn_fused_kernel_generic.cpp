// The fused HierarchicalRNN kernels compiled for one instruction set (flags set in CMakeLists.txt).
#define L2O_ISA generic
#define L2O_ISA_NAME "sse2"
#define L2O_VEC_BYTES 16
#include "hrnn_fused_kernel_impl.h"
