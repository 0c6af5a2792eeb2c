/* gemm_pack.c - copying blocks of op(A) and op(B) into the panel layout of
 * gemm_internal.h. The transposes of ur_gemm happen here and nowhere else.
 *
 * Two of the four cases are plain copies of short rows (op(A) transposed, op(B)
 * not). The other two turn rows of the source into columns of the panel; on
 * AVX-512 they go through in-register transposes of VL x VL blocks, which is
 * several times faster than element by element and matters when m is small
 * (packing B is then a large share of the work). */
#include "gemm_internal.h"

enum { MR = UR_GEMM_MR, NR = UR_GEMM_NR, VL = UR_VL };

#if defined(__AVX512F__) && !defined(UR_FORCE_PORTABLE)
/* Transposes the VL x VL block held in r[0..VL-1] (row i in r[i]) in place. */
#ifdef UR_DOUBLE
static inline void transpose_block(__m512d r[8]) {
    __m512d u[8], v[8];
    /* u[2a+c], 128-bit lane L: column 2L+c of rows 2a, 2a+1 */
    for (int a = 0; a < 4; a++) {
        u[2 * a] = _mm512_unpacklo_pd(r[2 * a], r[2 * a + 1]);
        u[2 * a + 1] = _mm512_unpackhi_pd(r[2 * a], r[2 * a + 1]);
    }
    /* then a 4 x 4 transpose of 128-bit lanes for each c */
    for (int c = 0; c < 2; c++) {
        v[0] = _mm512_shuffle_f64x2(u[c], u[2 + c], 0x88);
        v[1] = _mm512_shuffle_f64x2(u[c], u[2 + c], 0xdd);
        v[2] = _mm512_shuffle_f64x2(u[4 + c], u[6 + c], 0x88);
        v[3] = _mm512_shuffle_f64x2(u[4 + c], u[6 + c], 0xdd);
        r[c] = _mm512_shuffle_f64x2(v[0], v[2], 0x88);     /* column c      (L = 0) */
        r[2 + c] = _mm512_shuffle_f64x2(v[1], v[3], 0x88); /* column 2 + c  (L = 1) */
        r[4 + c] = _mm512_shuffle_f64x2(v[0], v[2], 0xdd); /* column 4 + c  (L = 2) */
        r[6 + c] = _mm512_shuffle_f64x2(v[1], v[3], 0xdd); /* column 6 + c  (L = 3) */
    }
}
#else
static inline void transpose_block(__m512 r[16]) {
    __m512 t[16], u[16], v[4];
    /* t[2a], lane L: (2a,4L) (2a+1,4L) (2a,4L+1) (2a+1,4L+1); t[2a+1] the same for 4L+2, 4L+3 */
    for (int a = 0; a < 8; a++) {
        t[2 * a] = _mm512_unpacklo_ps(r[2 * a], r[2 * a + 1]);
        t[2 * a + 1] = _mm512_unpackhi_ps(r[2 * a], r[2 * a + 1]);
    }
    /* u[4b+c], lane L: column 4L+c of rows 4b..4b+3 */
    for (int b = 0; b < 4; b++) {
        __m512d t0 = _mm512_castps_pd(t[4 * b]), t1 = _mm512_castps_pd(t[4 * b + 1]);
        __m512d t2 = _mm512_castps_pd(t[4 * b + 2]), t3 = _mm512_castps_pd(t[4 * b + 3]);
        u[4 * b] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
        u[4 * b + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
        u[4 * b + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
        u[4 * b + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
    }
    /* then a 4 x 4 transpose of 128-bit lanes for each c */
    for (int c = 0; c < 4; c++) {
        v[0] = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88);
        v[1] = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xdd);
        v[2] = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);
        v[3] = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xdd);
        r[c] = _mm512_shuffle_f32x4(v[0], v[2], 0x88);
        r[4 + c] = _mm512_shuffle_f32x4(v[1], v[3], 0x88);
        r[8 + c] = _mm512_shuffle_f32x4(v[0], v[2], 0xdd);
        r[12 + c] = _mm512_shuffle_f32x4(v[1], v[3], 0xdd);
    }
}
#endif

/* dst[p*ldd + r] = src[r*lds + p] for r < rows, p < kc. */
static void pack_rows_to_columns(const ur_real *src, size_t lds, int rows, int kc, ur_real *dst,
                                 int ldd) {
    if (rows == 1) { /* one row (a product of one row, as in a tree node): a strided copy */
        for (int p = 0; p < kc; p++) dst[(size_t)p * ldd] = src[p];
        return;
    }
    for (int r0 = 0; r0 < rows; r0 += VL) {
        int nrow = rows - r0 < VL ? rows - r0 : VL;
        for (int p = 0; p < kc; p += VL) {
            int np = kc - p < VL ? kc - p : VL;
            UR_V blk[VL];
            for (int i = 0; i < VL; i++)
                blk[i] = i < nrow ? UR_V_LOADN(src + (r0 + i) * lds + p, np) : UR_V_ZERO();
            transpose_block(blk);
            for (int t = 0; t < np; t++)
                UR_V_STOREN(dst + (size_t)(p + t) * ldd + r0, blk[t], nrow);
        }
    }
}
#else
static void pack_rows_to_columns(const ur_real *src, size_t lds, int rows, int kc, ur_real *dst,
                                 int ldd) {
    for (int r = 0; r < rows; r++)
        for (int p = 0; p < kc; p++) dst[(size_t)p * ldd + r] = src[r * lds + p];
}
#endif

/* op(A)[i][p] is A[i*lda + p] (no transpose) or A[p*lda + i] (transpose; with
 * rows, rows[p][i]). */
void ur_gemm_pack_a(int trans_a, const ur_real *A, int lda, const ur_real *const *rows, int i0, int mc,
                    int p0, int kc, ur_real *dst) {
    if (!trans_a) {
        for (int q = 0; q < mc; q += MR, dst += (size_t)MR * kc)
            pack_rows_to_columns(A + (size_t)(i0 + q) * lda + p0, (size_t)lda, mc - q < MR ? mc - q : MR, kc,
                                 dst, MR);
        return;
    }
    /* Each depth p holds mr consecutive values of a row of A for each panel. A few
     * rows at a time go to every panel, so that they are read from L1 and each
     * panel is written in runs of consecutive depths. */
    enum { ROWS = 16 };
    for (int pb = 0; pb < kc; pb += ROWS) {
        int pe = kc - pb < ROWS ? kc : pb + ROWS;
        for (int q = 0; q < mc; q += MR) {
            int mr = mc - q < MR ? mc - q : MR;
            ur_real *d = dst + (size_t)q * kc; /* panel q / MR */
            for (int p = pb; p < pe; p++) {
                const ur_real *src = (rows ? rows[p0 + p] : A + (size_t)(p0 + p) * lda) + i0 + q;
                for (int r = 0; r < mr; r++) d[(size_t)p * MR + r] = src[r];
            }
        }
    }
}

/* op(B)[p][j] is B[p*ldb + j] (no transpose; with rows, rows[p][j]) or B[j*ldb + p]
 * (transpose). */
void ur_gemm_pack_b(int trans_b, const ur_real *B, int ldb, const ur_real *const *rows, int p0, int kc,
                    int j0, int nc, ur_real *dst) {
    for (int q = 0; q < nc; q += NR, dst += (size_t)NR * kc) {
        int nr = nc - q < NR ? nc - q : NR;
        if (!trans_b) {
            /* Rows of nr <= NR values, copied as whole vectors: a memcpy call per
             * row, or the string move some compilers put inline, costs more. */
#define UR_ROW_B(p) ((rows ? rows[p0 + (p)] : B + (size_t)(p0 + (p)) * ldb) + j0 + q)
            ur_real *d = dst;
            if (nr == NR) {
                for (int p = 0; p < kc; p++, d += NR) {
                    const ur_real *src = UR_ROW_B(p);
                    UR_UNROLL
                    for (int v = 0; v < UR_NV; v++) UR_V_STORE(d + v * VL, UR_V_LOAD(src + v * VL));
                }
            } else {
                for (int p = 0; p < kc; p++, d += NR) {
                    const ur_real *src = UR_ROW_B(p);
                    UR_UNROLL
                    for (int v = 0; v < UR_NV; v++)
                        UR_V_STOREN(d + v * VL, UR_V_LOADN(src + v * VL, nr - v * VL), nr - v * VL);
                }
            }
#undef UR_ROW_B
        } else {
            pack_rows_to_columns(B + (size_t)(j0 + q) * ldb + p0, (size_t)ldb, nr, kc, dst, NR);
        }
    }
}

void ur_gemm_transpose(int rows, int cols, const ur_real *src, int lds, ur_real *dst, int ldd) {
    pack_rows_to_columns(src, (size_t)lds, rows, cols, dst, ldd);
}
