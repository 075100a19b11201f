#ifndef ALIGNSCOPE_CKERNELS_H
#define ALIGNSCOPE_CKERNELS_H

#include <stddef.h>
#include <stdint.h>

/// bf16 values of src[0..<count]: float32's top 16 bits, rounded to nearest, ties to even; NaN stays NaN
/// (quieted). The same rule, bit for bit, as the Swift `roundToBF16` in Kernels; here with AVX-512 integer
/// instructions when the CPU has them (chosen at run time), else one value at a time.
void alignscope_round_bf16(uint16_t *dst, const float *src, size_t count);

/// 1 when `alignscope_round_bf16` runs its AVX-512 loop on this CPU.
int alignscope_round_bf16_vectorized(void);

#endif
