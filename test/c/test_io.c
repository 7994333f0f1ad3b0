/* test_io: unit tests of the shared I/O helpers (src/lib/io.c): fg_write_all through a pipe, and
 * fg_read_file's content, size cap and error messages.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/io.h"
#include "lib/util.h"

static char *write_temp(const char *content, size_t len)
{
    char *path = xstrdup("/tmp/fuglu-test-io.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(fg_write_all(fd, content, len), 0);
    close(fd);
    return path;
}

static void test_write_all_pipe(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(fg_write_all(p[1], "hello, world", 12), 0);
    assert_int_equal(fg_write_all(p[1], "", 0), 0);
    close(p[1]);
    char got[32] = {0};
    assert_int_equal(read(p[0], got, sizeof got), 12);
    assert_string_equal(got, "hello, world");
    close(p[0]);
    errno = 0;
    assert_int_equal(fg_write_all(p[1], "x", 1), -1);
    assert_int_equal(errno, EBADF);
}

static void test_read_file(void **state)
{
    (void)state;
    char *path = write_temp("a\0b\nline\n", 9);
    size_t len = 0;
    char *err = NULL;
    char *text = fg_read_file(path, (size_t)-1, &len, &err);
    assert_non_null(text);
    assert_null(err);
    assert_int_equal(len, 9);
    assert_memory_equal(text, "a\0b\nline\n", 9);
    assert_int_equal(text[9], '\0');
    free(text);
    /* exactly at the cap is fine, one byte over is not */
    text = fg_read_file(path, 9, &len, NULL);
    assert_non_null(text);
    free(text);
    errno = 0;
    assert_null(fg_read_file(path, 8, &len, &err));
    assert_int_equal(errno, EFBIG);
    char *want = xasprintf("%s: larger than 8 bytes", path);
    assert_string_equal(err, want);
    free(want);
    free(err);
    unlink(path);
    free(path);
}

static void test_read_file_empty_and_errors(void **state)
{
    (void)state;
    char *path = write_temp("", 0);
    size_t len = 42;
    char *text = fg_read_file(path, 0, &len, NULL);
    assert_non_null(text);
    assert_int_equal(len, 0);
    assert_string_equal(text, "");
    free(text);
    unlink(path);
    char *err = NULL;
    errno = 0;
    assert_null(fg_read_file(path, (size_t)-1, &len, &err));
    assert_int_equal(errno, ENOENT);
    char *want = xasprintf("%s: cannot open: No such file or directory", path);
    assert_string_equal(err, want);
    free(want);
    free(err);
    err = NULL;
    errno = 0;
    assert_null(fg_read_file("/tmp", (size_t)-1, &len, &err));
    assert_int_equal(errno, EISDIR);
    assert_string_equal(err, "/tmp: cannot read: Is a directory");
    free(err);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_all_pipe),
        cmocka_unit_test(test_read_file),
        cmocka_unit_test(test_read_file_empty_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
