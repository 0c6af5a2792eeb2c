/* fuzz_checkpoint.c - safetensors images: header parser, validation and reads.
 *
 * An accepted image must be fully readable: every tensor's shape and values, every
 * metadata entry, and reading into a paramset and an optimizer either succeeds or
 * fails with a message naming the image. ur_ckpt_parse_header must agree with
 * ur_ckpt_open_memory.
 */
#include "fuzz_common.h"

#include "checkpoint_hooks_internal.h"
#include "ur_optim.h"

static const char *const LABEL = "fuzz-image";

/* The tensor i of ck, read into a new tensor when its shape fits. */
static void read_tensor(ur_ckpt *ck, int i) {
    const char *name = ur_ckpt_name(ck, i);
    FUZZ_CHECK(name != NULL && ur_ckpt_has(ck, name));
    const char *dtype = ur_ckpt_dtype(ck, name);
    FUZZ_CHECK(dtype != NULL);
    ur_shape s;
    if (ur_ckpt_shape(ck, name, &s) != UR_OK) {
        fuzz_check_error_names(LABEL);
        return;
    }
    ur_tensor *t = ur_ckpt_get_new(ck, name);
    int readable = strcmp(dtype, "F32") == 0 || strcmp(dtype, "F64") == 0;
    FUZZ_CHECK((t != NULL) == readable);
    if (!t) fuzz_check_error_names(LABEL);
    else FUZZ_CHECK(ur_shape_equal(&t->shape, &s));
    ur_tensor_free(t);
}

static void read_metadata(ur_ckpt *ck) {
    for (int i = 0; i < ur_ckpt_meta_count(ck); i++) {
        const char *key = ur_ckpt_meta_key(ck, i);
        FUZZ_CHECK(key != NULL);
        const char *value = ur_ckpt_meta(ck, key);
        FUZZ_CHECK(value != NULL);
        ur_rng r;
        if (ur_ckpt_rng_decode(value, &r) == UR_OK) {
            char back[UR_CKPT_RNG_HEX];
            ur_ckpt_rng_encode(&r, back);
            FUZZ_CHECK(strlen(back) == UR_CKPT_RNG_HEX - 1);
        }
    }
    FUZZ_CHECK(ur_ckpt_meta_key(ck, ur_ckpt_meta_count(ck)) == NULL);
}

/* Loads the image into a small model and an Adam optimizer over it. */
static void read_model(ur_ckpt *ck) {
    ur_paramset *ps = ur_paramset_new();
    int wd[2] = {2, 2}, bd = 3;
    if (!ps || !ur_paramset_add(ps, "w", 2, wd) || !ur_paramset_add(ps, "b", 1, &bd)) {
        ur_paramset_free(ps);
        return;
    }
    static const unsigned flags[] = {0, UR_CKPT_ALLOW_MISSING,
                                     UR_CKPT_ALLOW_MISSING | UR_CKPT_REJECT_UNKNOWN};
    for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++)
        if (ur_ckpt_read_params(ck, ps, flags[k]) != UR_OK) fuzz_check_error_names(LABEL);
    ur_optim_config cfg = ur_optim_defaults(UR_OPTIM_ADAM, 0.01);
    ur_optim *opt = ur_optim_new(ps, &cfg);
    if (opt && ur_ckpt_read_optim(ck, opt) != UR_OK) fuzz_check_error_names(LABEL);
    ur_optim_free(opt);
    ur_paramset_free(ps);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ur_status parsed = ur_ckpt_parse_header(data, size, LABEL);
    ur_ckpt *ck = ur_ckpt_open_memory(data, size, LABEL);
    FUZZ_CHECK((parsed == UR_OK) == (ck != NULL));
    if (!ck) {
        FUZZ_CHECK(parsed == UR_ERR_FORMAT || parsed == UR_ERR_NOMEM);
        fuzz_check_error_names(LABEL);
        return 0;
    }
    for (int i = 0; i < ur_ckpt_count(ck); i++) read_tensor(ck, i);
    FUZZ_CHECK(ur_ckpt_name(ck, ur_ckpt_count(ck)) == NULL);
    read_metadata(ck);
    read_model(ck);
    ur_ckpt_close(ck);
    return 0;
}
