/* gemm_bf16_amx.c - the AMX tiles of ur_gemm_bf16 (tensor/gemm_bf16.c).
 *
 * Compiled once, with -mamx-tile -mamx-bf16 and the AVX-512 flags
 * (cmake/kernels.cmake), into the float library only; reached through
 * ur__gemm_bf16_kernel (tensor/dispatch.c) when the CPU has AMX-TILE and AMX-BF16
 * and Linux has granted this process the tile state.
 *
 * A tile register holds up to 16 rows of 64 bytes. tdpbf16ps C, A, B takes A as 16
 * rows of 16 pairs of k and B as 16 rows (pairs of k) of 16 pairs (columns), and
 * adds to each float of C (16 x 16) the 32 products of its row of A and column of
 * B, two per pair. The packed B of the AVX512-BF16 path already has this form
 * (pairs of k as rows, 32 columns per panel: two tiles side by side); A is packed
 * row by row instead (gemm_bf16_internal.h), and both are zero-padded to a whole
 * number of 16 pairs, so padding adds zeros. The rows of A's last panel past m are
 * not written: that panel's tiles are configured with its rows only.
 *
 * A 32 x 32 block of C is four C tiles (tmm0-3), fed per 16 pairs by two A tiles
 * (rows 0-15 and 16-31, tmm4-5) and two B tiles (columns 0-15 and 16-31, tmm6-7):
 * four tdpbf16ps per four loads. The tiles hold the sums over all of k, so C is
 * written once per block, with alpha and beta; how the sums are grouped depends on
 * k alone. A block of at most 16 rows uses only tmm0-1 (and tmm4 for A), a block
 * of fewer rows than its tiles' 16 loads and multiplies only those rows.
 *
 * Like the other bf16 instructions, tdpbf16ps ignores MXCSR: it rounds to nearest
 * even, treats denormal inputs as zero and flushes denormal results to zero.
 *
 * UR_AMX_EMULATE (a test object, cmake/kernels.cmake) carries out the tile
 * instructions in C as the Intel SDM describes them, so that the tests can check
 * this kernel's packing, addressing and edges on a CPU without AMX; it then defines
 * ur__gemm_bf16_amx_emulated instead.
 */
#include "gemm_bf16_avx512.h"

enum { MR = 32, NR = UR_BF16_NR, TILE = 16 };
_Static_assert(NR == 2 * TILE, "a B panel is two tiles wide");

/* The tile configuration (palette 1): tmm0-7 all 16 rows of 64 bytes. */
typedef struct tile_config {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;
_Static_assert(sizeof(tile_config) == 64, "ldtilecfg reads 64 bytes");

#ifdef UR_AMX_EMULATE
#include <float.h>
#include <math.h>

/* The tile registers of this thread, and the instructions on them. */
static _Thread_local struct {
    int configured;
    uint8_t rows[8];
    uint16_t colsb[8];
    _Alignas(64) unsigned char row[8][16][64];
} emu;

static float emu_bf16(uint16_t h) { /* denormals as zero */
    return (h & 0x7f80u) ? ur__bf16_value(h) : ur__bf16_value((uint16_t)(h & 0x8000u));
}

static float emu_ftz(float x) { return fabsf(x) < FLT_MIN ? copysignf(0.0f, x) : x; }

static void emu_config(const tile_config *c) {
    emu.configured = c->palette == 1;
    for (int t = 0; t < 8; t++) emu.rows[t] = c->rows[t], emu.colsb[t] = c->colsb[t];
    memset(emu.row, 0, sizeof emu.row);
}

static void emu_load(int t, const void *base, ptrdiff_t stride) {
    for (int r = 0; r < emu.rows[t]; r++) memcpy(emu.row[t][r], (const char *)base + r * stride, emu.colsb[t]);
}

static void emu_store(int t, void *base, ptrdiff_t stride) {
    for (int r = 0; r < emu.rows[t]; r++) memcpy((char *)base + r * stride, emu.row[t][r], emu.colsb[t]);
}

static void emu_zero(int t) { memset(emu.row[t], 0, sizeof emu.row[t]); }

/* Pairs multiplied by this thread's emulated tiles: a test reads how many rows they ran. */
static _Thread_local size_t emu_pair_products;
size_t ur__amx_emulated_pair_products(void) { return emu_pair_products; }

/* TDPBF16PS: for each row m of C and pair k of A's row, for each column n:
 * C[m][n] += A[m].bf16[2k] * B[k].bf16[2n], then += A[m].bf16[2k+1] * B[k].bf16[2n+1]. */
static void emu_dpbf16ps(int c, int a, int b) {
    emu_pair_products += (size_t)emu.rows[c] * (emu.colsb[a] / 4) * (emu.colsb[c] / 4);
    for (int m = 0; m < emu.rows[c]; m++)
        for (int k = 0; k < emu.colsb[a] / 4; k++)
            for (int n = 0; n < emu.colsb[c] / 4; n++) {
                uint16_t ab[2], bb[2];
                float acc;
                memcpy(ab, emu.row[a][m] + 4 * k, 4);
                memcpy(bb, emu.row[b][k] + 4 * n, 4);
                memcpy(&acc, emu.row[c][m] + 4 * n, 4);
                acc = emu_ftz(acc + emu_bf16(ab[0]) * emu_bf16(bb[0]));
                acc = emu_ftz(acc + emu_bf16(ab[1]) * emu_bf16(bb[1]));
                memcpy(emu.row[c][m] + 4 * n, &acc, 4);
            }
}

#define TILE_CONFIG(cfg) emu_config(cfg)
#define TILE_RELEASE() (emu.configured = 0)
#define TILE_ZERO(t) emu_zero(t)
#define TILE_LOAD(t, base, stride) emu_load(t, base, stride)
#define TILE_STORE(t, base, stride) emu_store(t, base, stride)
#define TILE_DP(c, a, b) emu_dpbf16ps(c, a, b)
#define ur__gemm_bf16_amx ur__gemm_bf16_amx_emulated

#else

#define TILE_CONFIG(cfg) _tile_loadconfig(cfg)
#define TILE_RELEASE() _tile_release()
#define TILE_ZERO(t) _tile_zero(t)
#define TILE_LOAD(t, base, stride) _tile_loadd(t, base, stride)
#define TILE_STORE(t, base, stride) _tile_stored(t, base, stride)
#define TILE_DP(c, a, b) _tile_dpbf16ps(c, a, b)

#endif

/* Row panels ip0..ip1-1 x column panels jp0..jp1-1 of C, each of `rows` rows: the
 * C and A tiles are configured with that many rows (up to 16 in tmm0, 1 and 4, the
 * rest in tmm2, 3 and 5), so a short last panel -- one row at batch 1 -- is loaded,
 * multiplied and stored for its rows only. */
static void panels(const ur_bf16_job *g, int ip0, int ip1, int jp0, int jp1, int rows) {
    const int top = rows < TILE ? rows : TILE, bottom = rows - top;
    tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) cfg.colsb[t] = 64, cfg.rows[t] = TILE; /* tmm6-7: 16 pairs of B */
    cfg.rows[0] = cfg.rows[1] = cfg.rows[4] = (uint8_t)top;
    cfg.rows[2] = cfg.rows[3] = cfg.rows[5] = (uint8_t)(bottom ? bottom : TILE); /* unused when 0 */
    TILE_CONFIG(&cfg);
    _Alignas(64) float out[MR * NR];
    const int depth = g->depth;
    const ptrdiff_t sa = (ptrdiff_t)depth * 4, sb = NR * 4; /* bytes between tile rows */
    for (int jp = jp0; jp < jp1; jp++) {
        const uint32_t *b = g->pb + (size_t)jp * depth * NR;
        int nr = g->n - jp * NR < NR ? g->n - jp * NR : NR;
        for (int ip = ip0; ip < ip1; ip++) {
            const uint32_t *a = g->pa + (size_t)ip * MR * depth;
            TILE_ZERO(0);
            TILE_ZERO(1);
            if (bottom) {
                TILE_ZERO(2);
                TILE_ZERO(3);
            }
            for (int p = 0; p < depth; p += TILE) {
                TILE_LOAD(4, a + p, sa);
                TILE_LOAD(6, b + (size_t)p * NR, sb);
                TILE_LOAD(7, b + (size_t)p * NR + TILE, sb);
                TILE_DP(0, 4, 6);
                TILE_DP(1, 4, 7);
                if (bottom) {
                    TILE_LOAD(5, a + (size_t)TILE * depth + p, sa);
                    TILE_DP(2, 5, 6);
                    TILE_DP(3, 5, 7);
                }
            }
            TILE_STORE(0, out, sb);
            TILE_STORE(1, out + TILE, sb);
            if (bottom) {
                TILE_STORE(2, out + TILE * NR, sb);
                TILE_STORE(3, out + TILE * NR + TILE, sb);
            }
            tile_store(out, NR, rows, nr, g->alpha, g->beta, 1, g->C + (size_t)ip * MR * g->ldc + (size_t)jp * NR,
                       g->ldc);
        }
    }
}

/* Row panels ip0..ip1-1 x column panels jp0..jp1-1 of C: the whole panels with one
 * tile configuration, then a last panel of fewer than MR rows with its own. */
static void tiles(const ur_bf16_job *g, int ip0, int ip1, int jp0, int jp1) {
    int whole = ip1;
    if (ip1 > ip0 && g->m - (ip1 - 1) * MR < MR) whole = ip1 - 1;
    if (whole > ip0) panels(g, ip0, whole, jp0, jp1, MR);
    if (whole < ip1) panels(g, whole, ip1, jp0, jp1, g->m - whole * MR);
    TILE_RELEASE();
}

/* Rows i0..i0+m-1 of op(A) into MR-row panels, row by row (gemm_bf16_internal.h).
 * op(A)'s rows are A's columns when ta: each pair of A's rows gives one column of
 * words of the panel. */
static void pack_a(int ta, const float *A, int lda, int i0, int m, int k, uint32_t *pa) {
    int k2 = (k + 1) / 2, depth = ur__bf16_depth(&ur__gemm_bf16_amx, k);
    for (int q = 0; q * MR < m; q++) {
        uint32_t *dst = pa + (size_t)q * MR * depth;
        int lines = m - q * MR < MR ? m - q * MR : MR;
        if (ta) {
            uint32_t col[MR];
            for (int p = 0; p < k2; p++) {
                const float *lo = A + (size_t)(2 * p) * lda + i0 + q * MR;
                pairs_across(lo, 2 * p + 1 < k ? lo + lda : NULL, lines, MR, col);
                for (int r = 0; r < lines; r++) dst[(size_t)r * depth + p] = col[r];
            }
            for (int r = 0; r < lines; r++)
                memset(dst + (size_t)r * depth + k2, 0, (size_t)(depth - k2) * sizeof *dst);
            continue;
        }
        for (int r = 0; r < lines; r++)
            pairs_along(A + (size_t)(i0 + q * MR + r) * lda, k, k2, depth, dst + (size_t)r * depth, 1);
    }
}

/* Columns j0..j0+n-1 of op(B) into NR-column panels (the AVX512-BF16 layout, depth
 * padded): op(B)'s columns are B's rows when tb. */
static void pack_b(int tb, const float *B, int ldb, int j0, int n, int k, uint32_t *pb) {
    pack_panels(!tb, B, ldb, j0, n, k, ur__bf16_depth(&ur__gemm_bf16_amx, k), NR, pb);
}

const ur_bf16_kernel ur__gemm_bf16_amx = {"amx", MR, NR, TILE, pack_a, pack_b, tiles};
