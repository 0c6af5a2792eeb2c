#include "support.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

const char *ur_test_data_path(const char *relative, char *buf, size_t n) {
    const char *dir = getenv("UR_DATA_DIR");
    if (!dir || !*dir) dir = UR_SOURCE_DIR "/../shared/data";
    snprintf(buf, n, "%s/%s", dir, relative);
    FILE *f = fopen(buf, "rb");
    if (!f) return NULL;
    fclose(f);
    return buf;
}

const char *ur_test_tmp_path(const char *name, char *buf, size_t n) {
    snprintf(buf, n, "%s/ur-test-%ld-%s", UR_BINARY_DIR, (long)getpid(), name);
    return buf;
}

char *ur_test_read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (size >= 0 && fseek(f, 0, SEEK_SET) == 0) buf = malloc((size_t)size + 1);
    if (buf && fread(buf, 1, (size_t)size, f) != (size_t)size) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (!buf) return NULL;
    buf[size] = '\0';
    if (n) *n = (size_t)size;
    return buf;
}

void ur_test_write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot write %s", path);
    cr_assert_eq(fwrite(data, 1, n, f), n, "cannot write %s", path);
    cr_assert_eq(fclose(f), 0, "cannot write %s", path);
}
