/* test_shdict: unit tests of the shared-memory dictionaries (src/pool/shdict.c): values and
 * results, TTLs, eviction when full, exact counts under concurrent incr from threads and from a
 * process that attached the same memfd, a worker killed while holding the lock, and sizes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pool/shdict.h"
#include "lib/util.h"

static fg_shdict *make(size_t size)
{
    char *err = NULL;
    fg_shdict *d = fg_shdict_create("unit", size, &err);
    assert_non_null(d);
    assert_null(err);
    return d;
}

static fg_shvalue str(const char *s) { return (fg_shvalue){.type = FG_SHV_STRING, .str = s, .len = strlen(s)}; }
static fg_shvalue num(double n) { return (fg_shvalue){.type = FG_SHV_NUMBER, .num = n}; }

static void test_values_and_results(void **state)
{
    (void)state;
    fg_shdict *d = make(1 << 20);
    fg_shvalue v = str("hello"), got;
    assert_int_equal(fg_shdict_set(d, "k", 1, &v, 0, NULL), FG_SHD_OK);
    assert_int_equal(fg_shdict_get(d, "k", 1, &got, NULL), FG_SHD_OK);
    assert_int_equal(got.type, FG_SHV_STRING);
    assert_int_equal(got.len, 5);
    assert_memory_equal(got.str, "hello", 5);
    free((char *)got.str);
    fg_shvalue n = num(1);
    assert_int_equal(fg_shdict_add(d, "k", 1, &n, 0, NULL), FG_SHD_EXISTS);
    assert_int_equal(fg_shdict_replace(d, "absent", 6, &n, 0, NULL), FG_SHD_NOT_FOUND);
    assert_int_equal(fg_shdict_replace(d, "k", 1, &n, 0, NULL), FG_SHD_OK);
    double r = 0;
    assert_int_equal(fg_shdict_incr(d, "k", 1, 2.5, false, 0, 0, &r), FG_SHD_OK);
    assert_true(r == 3.5);
    assert_int_equal(fg_shdict_incr(d, "new", 3, 1, false, 0, 0, &r), FG_SHD_NOT_FOUND);
    assert_int_equal(fg_shdict_incr(d, "new", 3, 1, true, 10, 0, &r), FG_SHD_OK);
    assert_true(r == 11);
    assert_int_equal(fg_shdict_set(d, "s", 1, &v, 0, NULL), FG_SHD_OK);
    assert_int_equal(fg_shdict_incr(d, "s", 1, 1, true, 0, 0, &r), FG_SHD_NOT_NUMBER);
    /* binary keys and values */
    fg_shvalue bin = {.type = FG_SHV_STRING, .str = "a\0b", .len = 3};
    assert_int_equal(fg_shdict_set(d, "\0x", 2, &bin, 0, NULL), FG_SHD_OK);
    assert_int_equal(fg_shdict_get(d, "\0x", 2, &got, NULL), FG_SHD_OK);
    assert_int_equal(got.len, 3);
    assert_memory_equal(got.str, "a\0b", 3);
    free((char *)got.str);
    assert_int_equal(fg_shdict_get(d, "\0y", 2, &got, NULL), FG_SHD_NOT_FOUND);
    assert_int_equal(fg_shdict_delete(d, "k", 1), FG_SHD_OK);
    assert_int_equal(fg_shdict_delete(d, "k", 1), FG_SHD_NOT_FOUND);
    size_t entries, free_bytes;
    fg_shdict_usage(d, &entries, &free_bytes);
    assert_int_equal(entries, 3);
    fg_shdict_flush(d);
    fg_shdict_usage(d, &entries, &free_bytes);
    assert_int_equal(entries, 0);
    fg_shdict_free(d);
}

static void test_ttl(void **state)
{
    (void)state;
    fg_shdict *d = make(1 << 20);
    fg_shvalue v = num(1), got;
    double left = -1;
    assert_int_equal(fg_shdict_set(d, "t", 1, &v, 0.05, NULL), FG_SHD_OK);
    assert_int_equal(fg_shdict_get(d, "t", 1, &got, &left), FG_SHD_OK);
    assert_true(left > 0 && left <= 0.05);
    assert_int_equal(fg_shdict_add(d, "t", 1, &v, 0, NULL), FG_SHD_EXISTS);
    usleep(80000);
    assert_int_equal(fg_shdict_get(d, "t", 1, &got, NULL), FG_SHD_NOT_FOUND);
    assert_int_equal(fg_shdict_add(d, "t", 1, &v, 0, NULL), FG_SHD_OK);   /* expired counts as absent */
    assert_int_equal(fg_shdict_expire(d, "t", 1, 0.05), FG_SHD_OK);
    usleep(80000);
    double r;
    assert_int_equal(fg_shdict_incr(d, "t", 1, 1, false, 0, 0, &r), FG_SHD_NOT_FOUND);
    fg_shdict_free(d);
}

static void test_eviction_and_limits(void **state)
{
    (void)state;
    fg_shdict *d = make(FG_SHDICT_MIN_SIZE);
    char value[200];
    memset(value, 'x', sizeof value);
    fg_shvalue v = {.type = FG_SHV_STRING, .str = value, .len = sizeof value};
    bool evicted_any = false;
    for (int i = 0; i < 5000; i++) {
        char key[32];
        int kl = snprintf(key, sizeof key, "key%d", i);
        bool evicted = false;
        assert_int_equal(fg_shdict_set(d, key, (size_t)kl, &v, 0, &evicted), FG_SHD_OK);
        evicted_any |= evicted;
    }
    assert_true(evicted_any);
    fg_shvalue got;
    assert_int_equal(fg_shdict_get(d, "key0", 4, &got, NULL), FG_SHD_NOT_FOUND);     /* least recent: gone */
    assert_int_equal(fg_shdict_get(d, "key4999", 7, &got, NULL), FG_SHD_OK);       /* newest: there */
    free((char *)got.str);
    /* a value larger than the dictionary can ever hold */
    char *big = xmalloc(FG_SHDICT_MAX_ITEM);
    fg_shvalue b = {.type = FG_SHV_STRING, .str = big, .len = FG_SHDICT_MAX_ITEM};
    assert_int_equal(fg_shdict_set(d, "big", 3, &b, 0, NULL), FG_SHD_NO_MEMORY);
    free(big);
    fg_shdict_free(d);
    char *err = NULL;
    assert_null(fg_shdict_create("small", 1024, &err));
    assert_non_null(strstr(err, "out of range"));
    free(err);
    assert_int_equal(fg_shdict_parse_size("10m"), 10u << 20);
    assert_int_equal(fg_shdict_parse_size("512k"), 512u << 10);
    assert_int_equal(fg_shdict_parse_size("2g"), (size_t)2 << 30);
    assert_int_equal(fg_shdict_parse_size("65536"), 65536);
    assert_int_equal(fg_shdict_parse_size("10q"), 0);
    assert_int_equal(fg_shdict_parse_size(""), 0);
}

#define THREADS 8
#define INCRS 20000

static void *incr_thread(void *arg)
{
    fg_shdict *d = arg;
    for (int i = 0; i < INCRS; i++) {
        double r;
        fg_shdict_incr(d, "counter", 7, 1, true, 0, 0, &r);
    }
    return NULL;
}

static void test_concurrent_incr_threads_and_process(void **state)
{
    (void)state;
    fg_shdict *d = make(1 << 20);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* another process mapping the same memfd, as a process worker does */
        char *err = NULL;
        fg_shdict *other = fg_shdict_attach(dup(fg_shdict_fd(d)), &err);
        if (!other)
            _exit(2);
        incr_thread(other);
        fg_shdict_free(other);
        fg_shdict_free(d);    /* the parent's, inherited: unmapped here only */
        _exit(0);
    }
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, incr_thread, d);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    fg_shvalue got;
    assert_int_equal(fg_shdict_get(d, "counter", 7, &got, NULL), FG_SHD_OK);
    assert_true(got.num == (double)(THREADS + 1) * INCRS);
    fg_shdict_free(d);
}

static void hold(const char *key, size_t klen, void *arg)
{
    (void)key, (void)klen;
    int fd = *(int *)arg;
    if (write(fd, "x", 1) != 1)
        _exit(3);
    for (;;)
        pause();
}

/* A process killed while it held the lock (kill -9 from the watchdog): the next caller gets the
 * lock back (robust mutex) and finds the dictionary emptied instead of half-updated. */
static void test_holder_killed(void **state)
{
    (void)state;
    fg_shdict *d = make(1 << 20);
    fg_shvalue v = num(5);
    assert_int_equal(fg_shdict_set(d, "before", 6, &v, 0, NULL), FG_SHD_OK);
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        /* hold the lock forever: fg_shdict_keys calls back under it */
        fg_shdict_keys(d, 0, hold, &p[1]);
        _exit(0);
    }
    close(p[1]);
    char c;
    assert_int_equal(read(p[0], &c, 1), 1);   /* the child is inside the lock */
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(p[0]);
    fg_shvalue got;
    assert_int_equal(fg_shdict_get(d, "before", 6, &got, NULL), FG_SHD_NOT_FOUND);
    assert_int_equal(fg_shdict_set(d, "after", 5, &v, 0, NULL), FG_SHD_OK);
    assert_int_equal(fg_shdict_get(d, "after", 5, &got, NULL), FG_SHD_OK);
    fg_shdict_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_and_results),
        cmocka_unit_test(test_ttl),
        cmocka_unit_test(test_eviction_and_limits),
        cmocka_unit_test(test_concurrent_incr_threads_and_process),
        cmocka_unit_test(test_holder_killed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
