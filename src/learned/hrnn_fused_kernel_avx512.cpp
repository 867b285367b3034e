// The fused HierarchicalRNN kernels compiled for one instruction set (flags set in CMakeLists.txt).
#define L2O_ISA avx512
#define L2O_ISA_NAME "avx512"
#define L2O_VEC_BYTES 64
#include "hrnn_fused_kernel_impl.h"
