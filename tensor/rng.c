/* rng.c - xoshiro256** with splitmix64 seeding; the same numbers on every machine. */
#include "ur_tensor.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void ur_rng_seed(ur_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
    r->has_spare = 0;
    r->spare = 0.0;
}

uint64_t ur_rng_next(ur_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double ur_rng_uniform(ur_rng *r) { return (double)(ur_rng_next(r) >> 11) * 0x1.0p-53; }

double ur_rng_normal(ur_rng *r) {
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u1 = ur_rng_uniform(r), u2 = ur_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    double rad = sqrt(-2.0 * log(u1)), th = 6.283185307179586 * u2;
    r->spare = rad * sin(th);
    r->has_spare = 1;
    return rad * cos(th);
}

uint32_t ur_rng_below(ur_rng *r, uint32_t n) {
    if (n == 0) return 0;
    /* rejection keeps it exactly uniform */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = ur_rng_next(r);
    while (x >= limit);
    return (uint32_t)(x % n);
}

double ur_hash_uniform(uint64_t seed, uint64_t index) {
    uint64_t x = seed ^ (index * 0xD1B54A32D192ED03ULL);
    uint64_t z = splitmix64(&x);
    return (double)(z >> 11) * 0x1.0p-53;
}

ur_status ur_tensor_uniform(ur_tensor *t, ur_rng *r, ur_real lo, ur_real hi) {
    if (!t || !r) return ur_set_error(UR_ERR_ARG, "ur_tensor_uniform: tensor or rng is NULL");
    for (size_t i = 0; i < t->size; i++) t->data[i] = (ur_real)(lo + (hi - lo) * ur_rng_uniform(r));
    return UR_OK;
}

ur_status ur_tensor_normal(ur_tensor *t, ur_rng *r, ur_real mean, ur_real std) {
    if (!t || !r) return ur_set_error(UR_ERR_ARG, "ur_tensor_normal: tensor or rng is NULL");
    for (size_t i = 0; i < t->size; i++) t->data[i] = (ur_real)(mean + std * ur_rng_normal(r));
    return UR_OK;
}
