// Kernels that need instructions the Swift compiler is not asked to emit (the package builds for the baseline
// x86-64 so that one binary runs everywhere): each has a plain C fallback and is chosen at run time.
#include "ckernels.h"

#include <immintrin.h>

static void round_bf16_scalar(uint16_t *dst, const float *src, size_t count) {
    const uint32_t *u = (const uint32_t *)src;
    for (size_t i = 0; i < count; i++) {
        uint32_t x = u[i];
        if ((x & 0x7FFFFFFFu) > 0x7F800000u) {
            dst[i] = (uint16_t)(x >> 16) | 0x40;  // quiet NaN
        } else {
            dst[i] = (uint16_t)((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
        }
    }
}

__attribute__((target("avx512f")))
static void round_bf16_avx512(uint16_t *dst, const float *src, size_t count) {
    const __m512i magnitude = _mm512_set1_epi32(0x7FFFFFFF), infinity = _mm512_set1_epi32(0x7F800000);
    const __m512i half = _mm512_set1_epi32(0x7FFF), one = _mm512_set1_epi32(1), quiet = _mm512_set1_epi32(0x40);
    size_t i = 0;
    for (; i + 16 <= count; i += 16) {
        __m512i x = _mm512_loadu_si512((const void *)(src + i));
        __m512i top = _mm512_srli_epi32(x, 16);
        __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(x, half), _mm512_and_si512(top, one)), 16);
        __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(x, magnitude), infinity);
        rounded = _mm512_mask_mov_epi32(rounded, nan, _mm512_or_si512(top, quiet));
        _mm256_storeu_si256((__m256i *)(dst + i), _mm512_cvtepi32_epi16(rounded));
    }
    round_bf16_scalar(dst + i, src + i, count - i);
}

static int has_avx512f;

__attribute__((constructor))
static void detect_cpu(void) {
    __builtin_cpu_init();
    has_avx512f = __builtin_cpu_supports("avx512f") ? 1 : 0;
}

int alignscope_round_bf16_vectorized(void) { return has_avx512f; }

void alignscope_round_bf16(uint16_t *dst, const float *src, size_t count) {
    if (alignscope_round_bf16_vectorized()) {
        round_bf16_avx512(dst, src, count);
    } else {
        round_bf16_scalar(dst, src, count);
    }
}
