/* gemm_simd.h - the few vector operations the GEMM micro-kernel needs, for each ISA.
 *
 * The micro-kernel (gemm_kernel.c) is written once against these macros; this file
 * maps them to AVX-512, AVX2 or plain scalars, for float or double (ur_real). The
 * ISA is chosen at compile time from the compiler's target macros: each copy of
 * tensor/kernels/ is compiled with the -m flags of its instruction set
 * (cmake/kernels.cmake) and gets the macros of that set.
 *
 *   UR_V            vector of UR_VL ur_real
 *   UR_V_ZERO()     all lanes 0
 *   UR_V_LOAD(p)    load UR_VL values (any alignment)
 *   UR_V_LOADN(p,n) load the first n values (n may exceed UR_VL or be <= 0), rest 0
 *   UR_V_SET1(x)    x in every lane
 *   UR_V_FMA(a,b,c) a * b + c (fused where the ISA has it)
 *   UR_V_MUL(a,b)   a * b
 *   UR_V_STORE(p,v) / UR_V_STOREN(p,v,n)   store all / the first n lanes
 *   UR_V_SUM(v)     sum of the lanes (a fixed tree: same result every time)
 *
 * Micro-tile: MR rows of C x NR = UR_NV vectors of columns. The accumulators
 * (MR * UR_NV registers) plus UR_NV loaded B vectors plus one broadcast must fit in
 * the register file: 32 registers on AVX-512, 16 on AVX2. Row panels of fewer than
 * UR_WIDE_ROWS rows use wide tiles instead: UR_WIDE_NP1 panels of B for one row,
 * UR_WIDE_NP for more (B is then read from memory by the FMAs themselves).
 */
#ifndef UR_GEMM_SIMD_H
#define UR_GEMM_SIMD_H

#include "ur_tensor.h"

#if defined(__AVX512F__) && !defined(UR_FORCE_PORTABLE)
#include <immintrin.h>
#define UR_ISA_NAME "avx512"
#define UR_GEMM_MR 12
#define UR_NV 2
#define UR_WIDE_ROWS 6 /* see gemm_internal.h */
#define UR_WIDE_NP1 8
#define UR_WIDE_NP 2
#ifdef UR_DOUBLE
#define UR_VL 8
#define UR_V __m512d
#define UR_V_ZERO() _mm512_setzero_pd()
#define UR_V_LOAD(p) _mm512_loadu_pd(p)
#define UR_V_LOADN(p, n) _mm512_maskz_loadu_pd(ur_mask8(n), (p))
#define UR_V_SET1(x) _mm512_set1_pd(x)
#define UR_V_FMA(a, b, c) _mm512_fmadd_pd(a, b, c)
#define UR_V_MUL(a, b) _mm512_mul_pd(a, b)
#define UR_V_STORE(p, v) _mm512_storeu_pd(p, v)
#define UR_V_STOREN(p, v, n) _mm512_mask_storeu_pd((p), ur_mask8(n), v)
#define UR_V_SUM(v) _mm512_reduce_add_pd(v)
static inline __mmask8 ur_mask8(int n) {
    return n >= 8 ? (__mmask8)0xFF : n <= 0 ? (__mmask8)0 : (__mmask8)((1u << n) - 1);
}
#else
#define UR_VL 16
#define UR_V __m512
#define UR_V_ZERO() _mm512_setzero_ps()
#define UR_V_LOAD(p) _mm512_loadu_ps(p)
#define UR_V_LOADN(p, n) _mm512_maskz_loadu_ps(ur_mask16(n), (p))
#define UR_V_SET1(x) _mm512_set1_ps(x)
#define UR_V_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define UR_V_MUL(a, b) _mm512_mul_ps(a, b)
#define UR_V_STORE(p, v) _mm512_storeu_ps(p, v)
#define UR_V_STOREN(p, v, n) _mm512_mask_storeu_ps((p), ur_mask16(n), v)
#define UR_V_SUM(v) _mm512_reduce_add_ps(v)
static inline __mmask16 ur_mask16(int n) {
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}
#endif

#elif defined(__AVX2__) && defined(__FMA__) && !defined(UR_FORCE_PORTABLE)
#include <immintrin.h>
#define UR_ISA_NAME "avx2"
#define UR_GEMM_MR 6
#define UR_NV 2
#define UR_WIDE_ROWS 3
#define UR_WIDE_NP1 4
#define UR_WIDE_NP 2
#ifdef UR_DOUBLE
#define UR_VL 4
#define UR_V __m256d
#define UR_V_ZERO() _mm256_setzero_pd()
#define UR_V_LOAD(p) _mm256_loadu_pd(p)
#define UR_V_LOADN(p, n) _mm256_maskload_pd((p), ur_mask_pd(n))
#define UR_V_SET1(x) _mm256_set1_pd(x)
#define UR_V_FMA(a, b, c) _mm256_fmadd_pd(a, b, c)
#define UR_V_MUL(a, b) _mm256_mul_pd(a, b)
#define UR_V_STORE(p, v) _mm256_storeu_pd(p, v)
#define UR_V_STOREN(p, v, n) _mm256_maskstore_pd((p), ur_mask_pd(n), v)
#define UR_V_SUM(v) ur_sum_pd(v)
static inline double ur_sum_pd(__m256d v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}
static inline __m256i ur_mask_pd(int n) {
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
}
#else
#define UR_VL 8
#define UR_V __m256
#define UR_V_ZERO() _mm256_setzero_ps()
#define UR_V_LOAD(p) _mm256_loadu_ps(p)
#define UR_V_LOADN(p, n) _mm256_maskload_ps((p), ur_mask_ps(n))
#define UR_V_SET1(x) _mm256_set1_ps(x)
#define UR_V_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define UR_V_MUL(a, b) _mm256_mul_ps(a, b)
#define UR_V_STORE(p, v) _mm256_storeu_ps(p, v)
#define UR_V_STOREN(p, v, n) _mm256_maskstore_ps((p), ur_mask_ps(n), v)
#define UR_V_SUM(v) ur_sum_ps(v)
static inline float ur_sum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}
static inline __m256i ur_mask_ps(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
#endif

#else
/* Portable: "vectors" of one element. With -std=c11 the compiler does not fuse
 * a * b + c, so this path rounds like the reference loops. */
#define UR_ISA_NAME "portable"
#define UR_GEMM_MR 4
#define UR_NV 4
#define UR_WIDE_ROWS 2
#define UR_WIDE_NP1 2
#define UR_WIDE_NP 1
#define UR_VL 1
#define UR_V ur_real
#define UR_V_ZERO() ((ur_real)0)
#define UR_V_LOAD(p) (*(p))
#define UR_V_LOADN(p, n) ((n) > 0 ? *(p) : (ur_real)0)
#define UR_V_SET1(x) (x)
#define UR_V_FMA(a, b, c) ((a) * (b) + (c))
#define UR_V_MUL(a, b) ((a) * (b))
#define UR_V_STORE(p, v) (*(p) = (v))
#define UR_V_STOREN(p, v, n) ((n) > 0 ? (void)(*(p) = (v)) : (void)0)
#define UR_V_SUM(v) (v)
#endif

#define UR_GEMM_NR (UR_NV * UR_VL)

/* Full unrolling of the short loops over tile rows and vectors, so that the
 * accumulators stay in registers. */
#if defined(__clang__)
#define UR_UNROLL _Pragma("clang loop unroll(full)")
#else
#define UR_UNROLL _Pragma("GCC unroll 16")
#endif

#endif
