/* dispatch.c - which kernels run, chosen at run time from the CPU.
 *
 * tensor/kernels/ is compiled once per instruction set (cmake/kernels.cmake): on
 * x86 for AVX-512 (F, VL, BW and DQ, with AVX2 and FMA), for AVX2 with FMA, and for
 * the baseline of the target (SSE2 on x86-64), where the kernels are the portable
 * C code; on other machines, and in a UR_NATIVE build, once only. The first call
 * of a kernel takes the best set this CPU runs (cpuid, through
 * __builtin_cpu_supports, which also checks that the OS saves the vector
 * registers), or the set named by the environment variable UR_KERNELS when the
 * CPU runs it. ur_kernel_select changes the choice later and reports a refusal.
 *
 * The choice is one atomic pointer: the kernels load it once per call, so a call
 * runs on one set from start to end; racing first calls agree on the answer.
 */
#define _DEFAULT_SOURCE /* syscall (arch_prctl) */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "gemm_bf16_internal.h"
#include "gemm_internal.h"
#include "ur_kernels.h"

#if !defined(UR_KERNELS_NATIVE) && defined(UR_KERNELS_X86) &&                                      \
    (defined(__x86_64__) || defined(__i386__))
#define UR_DISPATCH_X86 1
extern const ur_kernel_table ur__kernels_avx512, ur__kernels_avx2;
#else
#define UR_DISPATCH_X86 0
#endif
#ifdef UR_KERNELS_NATIVE
extern const ur_kernel_table ur__kernels_native;
#else
extern const ur_kernel_table ur__kernels_portable;
#endif

/* The sets of this build, best first, and what each needs of the CPU. */
static const struct kernel_set {
    const ur_kernel_table *table;
    const char *needs; /* NULL: runs wherever the build runs */
} SETS[] = {
#if UR_DISPATCH_X86
    {&ur__kernels_avx512, "AVX-512 (F, VL, BW and DQ)"},
    {&ur__kernels_avx2, "AVX2 and FMA"},
#endif
#ifdef UR_KERNELS_NATIVE
    {&ur__kernels_native, NULL},
#else
    {&ur__kernels_portable, NULL},
#endif
};
enum { N_SETS = sizeof SETS / sizeof SETS[0] };

/* Every name a build can have, for the message about an unknown one. */
static const char *const KNOWN = "avx512, avx2 or portable";

static int cpu_runs(const ur_kernel_table *t) {
#if UR_DISPATCH_X86
    __builtin_cpu_init(); /* needed when called before the constructors ran */
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (t == &ur__kernels_avx2) return avx2;
    if (t == &ur__kernels_avx512)
        return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
#endif
    (void)t;
    return 1;
}

static const ur_kernel_table *best(void) {
    for (int i = 0; i < N_SETS; i++)
        if (cpu_runs(SETS[i].table)) return SETS[i].table;
    return SETS[N_SETS - 1].table; /* not reached: the last set runs anywhere */
}

/* The set named `want` (NULL or "": the best). A name this build lacks, or whose
 * instruction set the CPU lacks, gives the best and UR_ERR_ARG, with the reason
 * recorded as the last error when `report` is set (`from` says where the name
 * came from). */
static ur_status choose(const char *want, const char *from, int report,
                        const ur_kernel_table **out) {
    const ur_kernel_table *fallback = best();
    *out = fallback;
    if (!want || !want[0]) return UR_OK;
    for (int i = 0; i < N_SETS; i++) {
        if (strcmp(SETS[i].table->name, want) != 0) continue;
        if (cpu_runs(SETS[i].table)) {
            *out = SETS[i].table;
            return UR_OK;
        }
        return report ? ur_set_error(UR_ERR_ARG,
                                     "ur_kernel_select: \"%s\"%s needs %s, which this CPU "
                                     "lacks; using %s",
                                     want, from, SETS[i].needs, fallback->name)
                      : UR_ERR_ARG;
    }
    if (!report) return UR_ERR_ARG;
    if (strcmp(want, "avx512") != 0 && strcmp(want, "avx2") != 0 && strcmp(want, "portable") != 0)
        return ur_set_error(UR_ERR_ARG,
                            "ur_kernel_select: \"%s\"%s is not a kernel path (expected %s); "
                            "using %s",
                            want, from, KNOWN, fallback->name);
    /* only in a build with a single set (UR_NATIVE, or not x86) */
    return ur_set_error(UR_ERR_ARG,
                        "ur_kernel_select: \"%s\"%s is not in this build (it has the %s kernels "
                        "only); using %s",
                        want, from, SETS[0].table->name, fallback->name);
}

static _Atomic(const ur_kernel_table *) current;

/* The first call's choice, out of line: the common path of ur__kernels is then one
 * load, without the register saves of the choice (it runs per short kernel call). */
static __attribute__((noinline)) const ur_kernel_table *first_choice(void) {
    const ur_kernel_table *t, *none = NULL;
    choose(getenv(UR_KERNELS), "", 0, &t); /* a refusal shows in ur_kernel_isa() */
    if (!atomic_compare_exchange_strong_explicit(&current, &none, t, memory_order_acq_rel,
                                                 memory_order_acquire))
        t = none; /* someone chose first */
    return t;
}

const ur_kernel_table *ur__kernels(void) {
    const ur_kernel_table *t = atomic_load_explicit(&current, memory_order_acquire);
    return t ? t : first_choice();
}

ur_status ur_kernel_select(const char *path) {
    const char *from = "";
    if (!path || !path[0]) {
        path = getenv(UR_KERNELS);
        from = " (from UR_KERNELS)";
    }
    const ur_kernel_table *t;
    ur_status s = choose(path, from, 1, &t);
    atomic_store_explicit(&current, t, memory_order_release);
    return s;
}

const char *ur_kernel_isa(void) { return ur__kernels()->name; }

/* ---- the bf16 tiles ----
 * ur_gemm_bf16 follows the kernel path: with avx512 it uses the AMX tiles where the
 * build has them (float only), the CPU has AMX-TILE and AMX-BF16 and Linux grants
 * the tile state, else the AVX512-BF16 tiles where the CPU runs vdpbf16ps; every
 * other path (UR_KERNELS=portable or avx2 included) takes the portable route. */

#if UR_DISPATCH_X86 && defined(UR_KERNELS_AMX) && !defined(UR_DOUBLE) && defined(__linux__) && defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The CPU has AMX-TILE and AMX-BF16 (cpuid 7.0: edx bits 24 and 22), the OS has
 * enabled their state in XCR0 (bits 17 and 18), and Linux grants this process the
 * tile data (arch_prctl ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA; Linux 5.16 on),
 * which it must before the first tile instruction. */
static int amx_check(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 24)) || !(d & (1u << 22))) return 0;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return 0; /* OSXSAVE: xgetbv runs */
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & (3u << 17)) != (3u << 17)) return 0;
    return syscall(SYS_arch_prctl, 0x1023, 18) == 0;
}

static _Atomic int amx_state; /* 0 not asked yet, else as ur__amx_status */

int ur__amx_status(void) {
    int s = atomic_load_explicit(&amx_state, memory_order_acquire);
    if (s == 0) { /* asked once; racing first calls get the same answer */
        s = !amx_check() ? -1 : ur__bf16_kernel_check(&ur__gemm_bf16_amx) ? 1 : -2;
        atomic_store_explicit(&amx_state, s, memory_order_release);
    }
    return s;
}

#else
int ur__amx_status(void) { return -1; }
#endif

static _Atomic int bf16_forced;
static _Atomic(const ur_bf16_kernel *) bf16_forced_kernel;

void ur__gemm_bf16_use(const ur_bf16_kernel *kern, int on) {
    atomic_store_explicit(&bf16_forced_kernel, kern, memory_order_release);
    atomic_store_explicit(&bf16_forced, on, memory_order_release);
}

const ur_bf16_kernel *ur__gemm_bf16_kernel(void) {
    if (atomic_load_explicit(&bf16_forced, memory_order_acquire))
        return atomic_load_explicit(&bf16_forced_kernel, memory_order_acquire);
#if UR_DISPATCH_X86 && defined(UR_KERNELS_BF16) && !defined(UR_DOUBLE)
    if (ur__kernels() == &ur__kernels_avx512) {
#ifdef UR_KERNELS_AMX
        if (ur__amx_status() == 1) return &ur__gemm_bf16_amx;
#endif
        if (__builtin_cpu_supports("avx512bf16")) return &ur__gemm_bf16_avx512bf16;
    }
#endif
    return NULL;
}
