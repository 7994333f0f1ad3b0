/* test_msg: unit tests of src/pool/msg.c, the message spool: bytes stay in memory up to the spill
 * threshold and move to a file in tempdir past it, identical to what was appended, before and after
 * the spill; the spill file is gone once the last reference is dropped; an exported descriptor reads
 * back the same bytes (memfd or spill file) and the message reads back from it; a tempdir that
 * cannot take a file is an error that names it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pool/msg.h"
#include "lib/util.h"

typedef struct tempdir {
    char path[64];
} tempdir;

static int setup_tempdir(void **state)
{
    tempdir *t = xcalloc(1, sizeof *t);
    snprintf(t->path, sizeof t->path, "/tmp/fuglu-test-msg.XXXXXX");
    if (!mkdtemp(t->path))
        return -1;
    *state = t;
    return 0;
}

static int teardown_tempdir(void **state)
{
    tempdir *t = *state;
    int rc = rmdir(t->path);   /* fails when a spill file was left behind */
    free(t);
    return rc;
}

/* Deterministic bytes with CRLFs and dots, so any shift or loss shows. */
static char *pattern(size_t len)
{
    char *p = xmalloc(len + 1);
    for (size_t i = 0; i < len; i++)
        p[i] = i % 77 == 75 ? '\r' : i % 77 == 76 ? '\n' : (char)('.' + i % 61);
    p[len] = '\0';
    return p;
}

/* Appends data in pieces of `step` bytes. */
static void append_in_steps(fg_msg *m, const char *data, size_t len, size_t step)
{
    char *err = NULL;
    for (size_t off = 0; off < len; off += step) {
        size_t n = len - off < step ? len - off : step;
        assert_int_equal(fg_msg_append(m, data + off, n, &err), 0);
    }
    assert_null(err);
}

/* The whole content of fd from its start. */
static char *read_fd(int fd, size_t *len)
{
    fg_buf b;
    fg_buf_init(&b);
    char chunk[4096];
    ssize_t n;
    off_t at = 0;
    while ((n = pread(fd, chunk, sizeof chunk, at)) > 0) {
        fg_buf_append(&b, chunk, (size_t)n);
        at += n;
    }
    return fg_buf_steal(&b, len);
}

static void test_memory_up_to_the_threshold(void **state)
{
    tempdir *t = *state;
    char *data = pattern(1000);
    fg_msg *m = fg_msg_new(t->path, 1000);
    append_in_steps(m, data, 1000, 333);
    assert_false(fg_msg_spilled(m));   /* exactly the threshold stays in memory */
    assert_null(fg_msg_path(m));
    char *err = NULL;
    assert_int_equal(fg_msg_finish(m, &err), 0);
    assert_int_equal(fg_msg_len(m), 1000);
    assert_memory_equal(fg_msg_data(m), data, 1000);
    assert_int_equal(fg_msg_data(m)[1000], '\0');
    fg_msg_unref(m);
    free(data);
}

static void test_spills_past_the_threshold_bytes_identical(void **state)
{
    tempdir *t = *state;
    size_t len = 300 * 1000 + 7;
    char *data = pattern(len);
    fg_msg *m = fg_msg_new(t->path, 1000);
    append_in_steps(m, data, 1000, 1000);
    assert_false(fg_msg_spilled(m));
    append_in_steps(m, data + 1000, 1, 1);   /* one byte more: spilled */
    assert_true(fg_msg_spilled(m));
    const char *path = fg_msg_path(m);
    assert_non_null(path);
    assert_int_equal(strncmp(path, t->path, strlen(t->path)), 0);
    append_in_steps(m, data + 1001, len - 1001, 4093);
    char *err = NULL;
    assert_int_equal(fg_msg_finish(m, &err), 0);
    assert_int_equal(fg_msg_len(m), len);
    assert_memory_equal(fg_msg_data(m), data, len);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal((size_t)st.st_size, len);
    fg_msg_unref(m);
    free(data);
}

static void test_last_reference_removes_the_spill_file(void **state)
{
    tempdir *t = *state;
    char *data = pattern(5000);
    fg_msg *m = fg_msg_new(t->path, 100);
    append_in_steps(m, data, 5000, 512);
    char *err = NULL;
    assert_int_equal(fg_msg_finish(m, &err), 0);
    char *path = xstrdup(fg_msg_path(m));
    assert_ptr_equal(fg_msg_ref(m), m);
    assert_ptr_equal(fg_msg_ref(m), m);
    fg_msg_unref(m);
    fg_msg_unref(m);
    /* one reference left: the bytes and the file are still there */
    assert_int_equal(access(path, F_OK), 0);
    assert_memory_equal(fg_msg_data(m), data, 5000);
    fg_msg_unref(m);
    assert_int_not_equal(access(path, F_OK), 0);
    fg_msg_unref(NULL);   /* a no-op */
    free(path);
    free(data);
}

/* Exported in memory (a memfd) and spilled (the file): the same bytes, and a message over the
 * descriptor (what a process worker gets) reads them too. */
static void test_export_fd_reads_the_same_bytes(void **state)
{
    tempdir *t = *state;
    size_t len = 20000;
    char *data = pattern(len);
    const size_t thresholds[] = {0, 1000};   /* never spilled, spilled */
    for (size_t i = 0; i < 2; i++) {
        fg_msg *m = fg_msg_new(t->path, thresholds[i]);
        append_in_steps(m, data, len, 1500);
        assert_int_equal(fg_msg_spilled(m), thresholds[i] != 0);
        char *err = NULL;
        assert_int_equal(fg_msg_finish(m, &err), 0);
        int fd = fg_msg_export_fd(m, &err);
        assert_true(fd >= 0);
        assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        size_t got_len;
        char *got = read_fd(fd, &got_len);
        assert_int_equal(got_len, len);
        assert_memory_equal(got, data, len);
        free(got);
        fg_msg *view = fg_msg_from_fd(fd, len, &err);   /* owns fd from here */
        assert_non_null(view);
        assert_true(fg_msg_spilled(view));
        assert_null(fg_msg_path(view));
        assert_int_equal(fg_msg_len(view), len);
        assert_memory_equal(fg_msg_data(view), data, len);
        fg_msg_unref(m);   /* the view keeps its own descriptor: the bytes stay readable */
        assert_memory_equal(fg_msg_data(view), data, len);
        fg_msg_unref(view);
    }
    free(data);
}

static void test_empty_message(void **state)
{
    tempdir *t = *state;
    fg_msg *m = fg_msg_new(t->path, 10);
    char *err = NULL;
    assert_int_equal(fg_msg_finish(m, &err), 0);
    assert_int_equal(fg_msg_len(m), 0);
    assert_string_equal(fg_msg_data(m), "");
    int fd = fg_msg_export_fd(m, &err);
    assert_true(fd >= 0);
    size_t n;
    char *got = read_fd(fd, &n);
    assert_int_equal(n, 0);
    free(got);
    close(fd);
    fg_msg_unref(m);
}

/* A tempdir that cannot take a file (it does not exist: root may write anywhere else) fails the
 * append that spills, naming the directory; the message is still freed cleanly. */
static void test_unwritable_tempdir_is_an_error(void **state)
{
    tempdir *t = *state;
    char *missing = xasprintf("%s/no-such-dir", t->path);
    fg_msg *m = fg_msg_new(missing, 10);
    char *err = NULL;
    assert_int_equal(fg_msg_append(m, "0123456789", 10, &err), 0);
    assert_int_equal(fg_msg_append(m, "x", 1, &err), -1);
    assert_non_null(err);
    assert_non_null(strstr(err, missing));
    assert_false(fg_msg_spilled(m));
    free(err);
    fg_msg_unref(m);
    free(missing);
}

static void test_from_bytes_and_header_len(void **state)
{
    (void)state;
    static const char text[] = "Subject: a\r\nX: b\r\n\r\nbody\r\n";
    fg_msg *m = fg_msg_from_bytes(text, sizeof text - 1);
    assert_int_equal(fg_msg_len(m), sizeof text - 1);
    assert_memory_equal(fg_msg_data(m), text, sizeof text - 1);
    assert_int_equal(fg_msg_header_len(fg_msg_data(m), fg_msg_len(m)), strlen("Subject: a\r\nX: b\r\n"));
    assert_int_equal(fg_msg_header_len("a: b\n\nbody", 10), 5);
    assert_int_equal(fg_msg_header_len("a: b\r\n", 6), 6);
    /* no header block at all: the data starts with the empty line */
    assert_int_equal(fg_msg_header_len("\r\nbody", 6), 0);
    assert_int_equal(fg_msg_header_len("\nbody", 5), 0);
    fg_msg_unref(m);
}

/* At start the engine removes the spill files nobody holds (an engine killed mid-message) and
 * keeps those a running engine's messages hold (locked), and anything not named like a spill file. */
static void test_stale_spill_files_removed_live_ones_kept(void **state)
{
    tempdir *t = *state;
    char *err = NULL;
    fg_msg *live = fg_msg_new(t->path, 10);
    char *data = pattern(100);
    append_in_steps(live, data, 100, 100);
    assert_true(fg_msg_spilled(live));
    char stale[128], other[128];
    snprintf(stale, sizeof stale, "%s/" FG_MSG_SPILL_PREFIX "abcdef", t->path);
    snprintf(other, sizeof other, "%s/fuglu-not-a-spill", t->path);
    FILE *f = fopen(stale, "w");
    fputs("left by a killed engine", f);
    fclose(f);
    f = fopen(other, "w");
    fclose(f);
    assert_int_equal(fg_msg_remove_stale(t->path, &err), 1);
    assert_int_equal(access(stale, F_OK), -1);
    assert_int_equal(access(fg_msg_path(live), F_OK), 0);
    assert_int_equal(access(other, F_OK), 0);
    unlink(other);
    fg_msg_unref(live);
    free(data);
    assert_int_equal(fg_msg_remove_stale("/nonexistent-dir-for-test", &err), -1);
    assert_non_null(strstr(err, "cannot read /nonexistent-dir-for-test"));
    free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_memory_up_to_the_threshold, setup_tempdir, teardown_tempdir),
        cmocka_unit_test_setup_teardown(test_spills_past_the_threshold_bytes_identical, setup_tempdir,
                                        teardown_tempdir),
        cmocka_unit_test_setup_teardown(test_last_reference_removes_the_spill_file, setup_tempdir,
                                        teardown_tempdir),
        cmocka_unit_test_setup_teardown(test_export_fd_reads_the_same_bytes, setup_tempdir, teardown_tempdir),
        cmocka_unit_test_setup_teardown(test_empty_message, setup_tempdir, teardown_tempdir),
        cmocka_unit_test_setup_teardown(test_unwritable_tempdir_is_an_error, setup_tempdir, teardown_tempdir),
        cmocka_unit_test(test_from_bytes_and_header_len),
        cmocka_unit_test_setup_teardown(test_stale_spill_files_removed_live_ones_kept, setup_tempdir,
                                        teardown_tempdir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
