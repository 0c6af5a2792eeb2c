#include "support.h"
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
