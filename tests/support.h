/* support.h - helpers shared by the tests. */
#ifndef UR_TEST_SUPPORT_H
#define UR_TEST_SUPPORT_H
#include <stddef.h>

/* Path of a file under the shared data folder (UR_DATA_DIR or ../shared/data beside
 * the source tree), or NULL when it is absent: callers skip the test then and say so. */
const char *ur_test_data_path(const char *relative, char *buf, size_t n);
/* A scratch file path unique to this process under the build folder. */
const char *ur_test_tmp_path(const char *name, char *buf, size_t n);
/* The whole file, malloc'ed with a NUL after its n bytes (n may be NULL); NULL when
 * it cannot be read. */
char *ur_test_read_file(const char *path, size_t *n);
/* Writes n bytes to path, replacing the file; the test fails when it cannot. */
void ur_test_write_file(const char *path, const void *data, size_t n);
#endif
