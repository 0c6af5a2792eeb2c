/* ur_tensor.h - n-d tensors, errors, and the deterministic PRNG.
 *
 * tensor/ knows nothing of gradients. A tensor is contiguous, row-major, up to
 * UR_MAX_DIMS dimensions, of the one scalar type ur_real (float by default, double
 * when the library is built with UR_DOUBLE: the test suite checks gradients there).
 *
 * Errors: functions that can fail return ur_status (or NULL) and leave a message
 * naming the function and the problem in a thread-local buffer, read with
 * ur_last_error(). Nothing here aborts or prints.
 */
#ifndef UR_TENSOR_H
#define UR_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifdef UR_DOUBLE
typedef double ur_real;
#define UR_REAL_DTYPE "F64" /* safetensors dtype of ur_real */
#else
typedef float ur_real;
#define UR_REAL_DTYPE "F32"
#endif

/* A program and the library it links must agree on ur_real. Each build of the
 * library defines one of these two symbols, and every file that includes this
 * header refers to the one of its own setting, so a mismatch does not link:
 * "undefined reference to ur_library_built_with_UR_DOUBLE" (the program was
 * compiled with -DUR_DOUBLE: link libunroll_f64) or "..._without_UR_DOUBLE" (it
 * was compiled without: link libunroll, or add -DUR_DOUBLE). */
#ifdef UR_DOUBLE
extern const int ur_library_built_with_UR_DOUBLE;
#if defined(__GNUC__)
static const int *const ur__precision_guard __attribute__((used)) = &ur_library_built_with_UR_DOUBLE;
#endif
#else
extern const int ur_library_built_without_UR_DOUBLE;
#if defined(__GNUC__)
static const int *const ur__precision_guard __attribute__((used)) = &ur_library_built_without_UR_DOUBLE;
#endif
#endif

enum { UR_MAX_DIMS = 4 };

typedef enum ur_status {
    UR_OK = 0,
    UR_ERR_ARG,     /* bad argument: NULL handle, negative size, bad flag */
    UR_ERR_SHAPE,   /* shapes do not fit the operation */
    UR_ERR_NOMEM,   /* an allocation failed */
    UR_ERR_IO,      /* a file could not be opened, read or written */
    UR_ERR_FORMAT,  /* a file or string is malformed */
    UR_ERR_NUMERIC, /* NaN or Inf where finite values were required */
    UR_ERR_STATE    /* call out of order (e.g. backward twice, tape in error) */
} ur_status;

/* "UR_ERR_SHAPE" etc. */
const char *ur_status_name(ur_status s);

/* The message of the last failed call on this thread ("" if none). */
const char *ur_last_error(void);
/* Records a message (printf format) as the last error and returns s. Used by every
 * module of the library; users may call it from their own code too. */
ur_status ur_set_error(ur_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void ur_clear_error(void);

/* Allocation hook: every allocation of the library goes through these, so tests
 * can inject failures. NULL restores malloc/free. */
typedef void *(*ur_malloc_fn)(size_t size, void *user);
typedef void (*ur_free_fn)(void *ptr, void *user);
void ur_set_allocator(ur_malloc_fn m, ur_free_fn f, void *user);
void *ur_malloc(size_t size); /* NULL on failure (size 0 gives a valid pointer) */
void *ur_calloc(size_t n, size_t size);
void *ur_realloc(void *ptr, size_t old_size, size_t new_size);
void ur_free(void *ptr);
/* Number of successful ur_malloc/ur_calloc/ur_realloc calls since start. */
uint64_t ur_alloc_count(void);

/* ---- shapes ---- */
typedef struct ur_shape {
    int ndim;              /* 0 (scalar) .. UR_MAX_DIMS */
    int dims[UR_MAX_DIMS]; /* unused entries are 1 */
} ur_shape;

/* Builds a shape; UR_ERR_SHAPE for ndim outside 0..4, a dim < 1, or a product
 * that overflows. `what` names the caller in the message. */
ur_status ur_shape_make(ur_shape *out, int ndim, const int *dims, const char *what);
size_t ur_shape_size(const ur_shape *s);
int ur_shape_equal(const ur_shape *a, const ur_shape *b);
/* Writes "(2, 3)" into buf (at least 64 bytes); returns buf. */
char *ur_shape_str(const ur_shape *s, char *buf, size_t n);

/* ---- tensors ---- */
typedef struct ur_tensor {
    ur_shape shape;
    size_t size;   /* product of dims */
    ur_real *data; /* size elements, row-major */
    int owns_data; /* 1 if ur_tensor_free frees data */
} ur_tensor;

/* A new zero-filled tensor; NULL on bad shape or out of memory (ur_last_error). */
ur_tensor *ur_tensor_new(int ndim, const int *dims);
ur_tensor *ur_tensor_new_1d(int n);
ur_tensor *ur_tensor_new_2d(int rows, int cols);
/* A tensor of the same shape and values. */
ur_tensor *ur_tensor_clone(const ur_tensor *t);
/* Frees the tensor (and its data if it owns it). NULL is a no-op. */
void ur_tensor_free(ur_tensor *t);

ur_status ur_tensor_fill(ur_tensor *t, ur_real v);
/* dst and src must have the same number of elements. */
ur_status ur_tensor_copy(ur_tensor *dst, const ur_tensor *src);
/* Changes the shape in place; the element count must stay the same. */
ur_status ur_tensor_reshape(ur_tensor *t, int ndim, const int *dims);
/* Element access for 2-d tensors (no bounds check: for readable examples). */
#define UR_AT2(t, i, j) ((t)->data[(size_t)(i) * (size_t)(t)->shape.dims[1] + (size_t)(j)])

/* ---- deterministic random numbers ----
 * xoshiro256** seeded through splitmix64: the same seed gives the same stream on
 * every machine. Normal variates use the Box-Muller transform. */
typedef struct ur_rng {
    uint64_t s[4];
    double spare; /* second Box-Muller value */
    int has_spare;
} ur_rng;

void ur_rng_seed(ur_rng *r, uint64_t seed);
uint64_t ur_rng_next(ur_rng *r);
double ur_rng_uniform(ur_rng *r);              /* [0, 1) with 53 random bits */
double ur_rng_normal(ur_rng *r);               /* mean 0, std 1 */
uint32_t ur_rng_below(ur_rng *r, uint32_t n); /* uniform in [0, n), n > 0 */
/* Stateless hash of (seed, index) to [0,1): dropout masks that do not depend on
 * the order in which elements are visited. */
double ur_hash_uniform(uint64_t seed, uint64_t index);

ur_status ur_tensor_uniform(ur_tensor *t, ur_rng *r, ur_real lo, ur_real hi);
ur_status ur_tensor_normal(ur_tensor *t, ur_rng *r, ur_real mean, ur_real std);

#ifdef __cplusplus
}
#endif
#endif
