/* test_log_handlers: unit tests of the logging.conf handlers (src/log/log_handler.c) and the record
 * queue (src/log/log.c): rotation by size and by time with Python's backup names, watched files, group
 * file modes, syslog datagrams on a unix socket and UDP, and a flood that drops and counts records
 * while fg_log stays fast.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log/log.h"
#include "log/log_conf.h"
#include "lib/util.h"

static char tmpdir[64];

static int setup_tmpdir(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/fuglu-test-logh-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    setenv("TZ", "UTC", 1);
    tzset();
    return 0;
}

static int teardown_tmpdir(void **state)
{
    (void)state;
    char *cmd = xasprintf("rm -rf '%s'", tmpdir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    return 0;
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fg_buf b;
    fg_buf_init(&b);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        fg_buf_append(&b, chunk, n);
    fclose(f);
    return fg_buf_steal(&b, NULL);
}

static void assert_file(const char *path, const char *want)
{
    char *got = read_all(path);
    if (!got)
        fail_msg("%s does not exist", path);
    assert_string_equal(got, want);
    free(got);
}

/* A configuration with the single handler `klass(args)` and format "%(message)s", opened. */
static fg_log_conf *open_handler(const char *klass, const char *args)
{
    char *text = xasprintf("[loggers]\nkeys=root\n[handlers]\nkeys=h\n[formatters]\nkeys=\n"
                           "[logger_root]\nhandlers=h\n[handler_h]\nclass=%s\nargs=%s\n", klass, args);
    char *err = NULL;
    fg_log_conf *c = fg_log_conf_read_string(text, "t.conf", &err);
    free(text);
    if (!c)
        fail_msg("%s", err);
    if (fg_log_conf_open(c, &err) != 0)
        fail_msg("%s", err);
    return c;
}

/* One record, collected but not written (as the writer thread does within a batch). */
static void emit_batched(fg_log_handler *h, int level, const char *msg)
{
    fg_log_record r = {.name = "t", .level = level, .message = msg, .created = fg_now(), .process = getpid(),
                       .thread_name = "MainThread", .pathname = "(unknown file)", .func = "(unknown function)"};
    fg_buf scratch;
    fg_buf_init(&scratch);
    fg_log_handler_emit(h, &r, &scratch);
    fg_buf_free(&scratch);
}

/* One record, written at once (the synchronous path). */
static void emit(fg_log_handler *h, int level, const char *msg)
{
    emit_batched(h, level, msg);
    fg_log_handler_flush(h);
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Sorted names in tmpdir starting with prefix. */
static int list_files(const char *prefix, char names[][256], int max)
{
    DIR *d = opendir(tmpdir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0 && n < max)
            snprintf(names[n++], 256, "%s", e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], compare_names);
    return n;
}

/* Collected lines are written by the flush, with one write. */
static void test_batch_written_by_flush(void **state)
{
    (void)state;
    char *path = xasprintf("%s/batch.log", tmpdir);
    char *args = xasprintf("('%s', 'a')", path);
    fg_log_conf *c = open_handler("FileHandler", args);
    emit_batched(c->handlers[0], FG_INFO, "one");
    emit_batched(c->handlers[0], FG_INFO, "two");
    assert_file(path, "");
    fg_log_handler_flush(c->handlers[0]);
    assert_file(path, "one\ntwo\n");
    emit_batched(c->handlers[0], FG_INFO, "three");
    fg_log_conf_free(c);   /* closing a handler writes what it collected */
    assert_file(path, "one\ntwo\nthree\n");
    free(args);
    free(path);
}

/* The same files whether each record is written at once or a batch is written together. */
static void rotating_by_size(bool batched)
{
    char *base = xasprintf("%s/size%d.log", tmpdir, (int)batched);
    char *args = xasprintf("('%s', 'a', 100, 2)", base);
    fg_log_conf *c = open_handler("handlers.RotatingFileHandler", args);
    for (int i = 0; i < 14; i++) {
        char msg[32];
        snprintf(msg, sizeof msg, "record-%02d..........", i);   /* 20 bytes + newline */
        (batched ? emit_batched : emit)(c->handlers[0], FG_INFO, msg);
    }
    fg_log_conf_free(c);
    /* 21-byte lines, rollover when size + line >= 100: four lines per file */
    char *p1 = xasprintf("%s.1", base), *p2 = xasprintf("%s.2", base), *p3 = xasprintf("%s.3", base);
    assert_file(base, "record-12..........\nrecord-13..........\n");
    assert_file(p1, "record-08..........\nrecord-09..........\nrecord-10..........\nrecord-11..........\n");
    assert_file(p2, "record-04..........\nrecord-05..........\nrecord-06..........\nrecord-07..........\n");
    assert_int_equal(access(p3, F_OK), -1);
    free(p1);
    free(p2);
    free(p3);
    free(args);
    free(base);
}

static void test_rotating_by_size(void **state)
{
    (void)state;
    rotating_by_size(false);
    rotating_by_size(true);
}

static void test_timed_rotation_seconds(void **state)
{
    (void)state;
    char *base = xasprintf("%s/timed.log", tmpdir);
    char *args = xasprintf("('%s', 'S', 1, 2)", base);
    fg_log_conf *c = open_handler("handlers.TimedRotatingFileHandler", args);
    fg_log_handler *h = c->handlers[0];
    emit(h, FG_INFO, "r0");
    for (int i = 1; i <= 3; i++) {
        double deadline = fg_monotonic() + 3;
        while (time(NULL) < h->rollover_at && fg_monotonic() < deadline) {
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        char msg[16];
        snprintf(msg, sizeof msg, "r%d", i);
        emit(h, FG_INFO, msg);
    }
    fg_log_conf_free(c);
    assert_file(base, "r3\n");
    char names[8][256];
    int n = list_files("timed.log.", names, 8);
    assert_int_equal(n, 2);   /* backupCount 2: r0's backup deleted */
    for (int i = 0; i < n; i++) {
        /* timed.log.YYYY-MM-DD_HH-MM-SS */
        int y, mo, d, hh, mi, ss;
        char extra;
        assert_int_equal(sscanf(names[i], "timed.log.%4d-%2d-%2d_%2d-%2d-%2d%c", &y, &mo, &d, &hh, &mi, &ss, &extra), 6);
        assert_int_equal(strlen(names[i]), strlen("timed.log.2024-01-01_00-00-00"));
        char *path = xasprintf("%s/%s", tmpdir, names[i]);
        assert_file(path, i == 0 ? "r1\n" : "r2\n");
        free(path);
    }
    free(args);
    free(base);
}

static void test_timed_names_and_times(void **state)
{
    (void)state;
    char *base = xasprintf("%s/midnight.log", tmpdir);
    char *args = xasprintf("('%s', 'midnight', 1, 14)", base);
    fg_log_conf *c = open_handler("handlers.TimedRotatingFileHandler", args);
    fg_log_handler *h = c->handlers[0];
    /* 2009-04-08 17:11:07 UTC, a Wednesday */
    time_t t = 1239210667;
    assert_int_equal(fg_log_handler_next_rollover(h, t), 1239235200);   /* 2009-04-09 00:00 */
    emit(h, FG_INFO, "day one");
    h->rollover_at = 1239235200;        /* pretend the file was started on 2009-04-08 */
    emit(h, FG_INFO, "day two");
    char *backup = xasprintf("%s.2009-04-08", base);
    assert_file(backup, "day one\n");
    assert_file(base, "day two\n");
    assert_true(h->rollover_at > time(NULL));
    assert_true(h->rollover_at - time(NULL) <= 86400);
    assert_int_equal(h->rollover_at % 86400, 0);   /* a UTC midnight */
    strcpy(h->when, "W0");
    h->weekday = 0;
    assert_int_equal(fg_log_handler_next_rollover(h, t), 1239235200 + 5 * 86400);   /* Tuesday 00:00 */
    h->weekday = 3;   /* Thursday: rolls at the end of it, as Python */
    assert_int_equal(fg_log_handler_next_rollover(h, t), 1239235200 + 86400);
    strcpy(h->when, "H");
    h->interval = 3600;
    assert_int_equal(fg_log_handler_next_rollover(h, t), t + 3600);
    fg_log_conf_free(c);
    free(backup);
    free(args);
    free(base);
}

static void test_watched_file(void **state)
{
    (void)state;
    char *base = xasprintf("%s/watched.log", tmpdir), *moved = xasprintf("%s/watched.log.old", tmpdir);
    char *args = xasprintf("('%s',)", base);
    fg_log_conf *c = open_handler("handlers.WatchedFileHandler", args);
    emit(c->handlers[0], FG_INFO, "before");
    assert_int_equal(rename(base, moved), 0);   /* logrotate */
    emit(c->handlers[0], FG_INFO, "after");
    fg_log_conf_free(c);
    assert_file(moved, "before\n");
    assert_file(base, "after\n");
    free(args);
    free(base);
    free(moved);
}

static void test_group_modes(void **state)
{
    (void)state;
    static const struct {
        const char *klass, *args;
        int mode;
    } cases[] = {
        {"custom_handlers.GroupReadableRotatingFileHandler", "'a', 10, 1", 0640},
        {"custom_handlers.GroupWritableRotatingFileHandler", "'a', 10, 1", 0660},
        {"custom_handlers.GroupReadableTimedRotatingFileHandler", "'S', 1, 1", 0640},
        {"custom_handlers.GroupWritableTimedRotatingFileHandler", "'S', 1, 1", 0660},
        {"FileHandler", "'a'", 0600},
    };
    mode_t old = umask(077);   /* the group modes must not depend on the process umask */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *path = xasprintf("%s/group%zu.log", tmpdir, i);
        char *args = xasprintf("('%s', %s)", path, cases[i].args);
        fg_log_conf *c = open_handler(cases[i].klass, args);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, cases[i].mode);
        /* a rotation creates the new file with the same mode */
        emit(c->handlers[0], FG_INFO, "a line longer than ten bytes");
        emit(c->handlers[0], FG_INFO, "and another");
        c->handlers[0]->rollover_at = 0;
        emit(c->handlers[0], FG_INFO, "third");
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, cases[i].mode);
        fg_log_conf_free(c);
        free(args);
        free(path);
    }
    /* under the usual umask a plain log file is not world-readable: it holds mail addresses */
    umask(022);
    char *path = xasprintf("%s/plain.log", tmpdir);
    char *args = xasprintf("('%s', 'a')", path);
    fg_log_conf *c = open_handler("FileHandler", args);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    fg_log_conf_free(c);
    free(args);
    free(path);
    umask(old);
}

static int bind_unix_dgram(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
    assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof sun), 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void expect_datagram(int fd, const char *want_text)
{
    char buf[512];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    assert_true(n > 0);
    /* Python's SysLogHandler sends "<PRI>message" followed by a NUL byte */
    assert_int_equal((size_t)n, strlen(want_text) + 1);
    assert_int_equal(buf[n - 1], '\0');
    assert_string_equal(buf, want_text);
}

static void test_syslog_unix(void **state)
{
    (void)state;
    char *sock = xasprintf("%s/dev-log", tmpdir), *conf = xasprintf("%s/syslog.conf", tmpdir);
    int fd = bind_unix_dgram(sock);
    char *text = xasprintf("[loggers]\nkeys=root\n[handlers]\nkeys=syslog\n[formatters]\nkeys=syslogformatter\n"
                           "[logger_root]\nlevel=DEBUG\nhandlers=syslog\n"
                           "[handler_syslog]\nclass=handlers.SysLogHandler\nlevel=NOTSET\n"
                           "args=('%s',handlers.SysLogHandler.LOG_MAIL)\nformatter=syslogformatter\n"
                           "[formatter_syslogformatter]\nformat=fuglu[%%(process)d]: %%(message)s\n", sock);
    FILE *f = fopen(conf, "w");
    fputs(text, f);
    fclose(f);
    char *err = NULL;
    if (fg_log_load_config(conf, &err) != 0)
        fail_msg("%s", err);
    fg_log("fuglu.SessionHandler", FG_INFO, "Suspect %s from=<a@b>", "abc");
    fg_log("fuglu.smtpsession", FG_ERROR, "broken");
    fg_log("fuglu.threadpool", FG_DEBUG, "dbg");
    fg_log("fuglu.MainController", FG_CRITICAL, "crit");
    fg_log("fuglu.MainController", FG_WARNING, "warn");
    char want[128];
    int pid = (int)getpid();
    snprintf(want, sizeof want, "<%d>fuglu[%d]: Suspect abc from=<a@b>", 2 * 8 + 6, pid);
    expect_datagram(fd, want);
    snprintf(want, sizeof want, "<%d>fuglu[%d]: broken", 2 * 8 + 3, pid);
    expect_datagram(fd, want);
    snprintf(want, sizeof want, "<%d>fuglu[%d]: dbg", 2 * 8 + 7, pid);
    expect_datagram(fd, want);
    snprintf(want, sizeof want, "<%d>fuglu[%d]: crit", 2 * 8 + 2, pid);
    expect_datagram(fd, want);
    snprintf(want, sizeof want, "<%d>fuglu[%d]: warn", 2 * 8 + 4, pid);
    expect_datagram(fd, want);
    fg_log_shutdown();
    close(fd);
    free(text);
    free(sock);
    free(conf);
}

static void test_syslog_udp(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    socklen_t len = sizeof sin;
    getsockname(fd, (struct sockaddr *)&sin, &len);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char *args = xasprintf("(('127.0.0.1', %d), 'local0')", ntohs(sin.sin_port));
    fg_log_conf *c = open_handler("handlers.SysLogHandler", args);
    emit(c->handlers[0], FG_INFO, "over udp");
    expect_datagram(fd, "<134>over udp");
    fg_log_conf_free(c);
    close(fd);
    free(args);
}

/* ---- flood: the writer is stuck on a full pipe; fg_log must not wait for it ---- */

#define FLOOD_THREADS 4
#define FLOOD_RECORDS 25000

static atomic_bool flood_done;
static char *fifo_path;
static int fifo_fd;
static fg_buf fifo_data;

static void *flood_reader(void *arg)
{
    (void)arg;
    double deadline = fg_monotonic() + 30;
    while (!atomic_load(&flood_done) && fg_monotonic() < deadline) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    int fd = fifo_fd;
    char buf[65536];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n > 0) {
            fg_buf_append(&fifo_data, buf, (size_t)n);
        } else if (n == 0) {
            break;   /* the writer closed it at shutdown */
        } else {
            struct timespec ts = {0, 1000 * 1000};
            nanosleep(&ts, NULL);
            if (fg_monotonic() > deadline + 30)
                break;
        }
    }
    close(fd);
    return NULL;
}

static void *flood_producer(void *arg)
{
    double *elapsed = arg;
    double start = fg_monotonic();
    for (int i = 0; i < FLOOD_RECORDS; i++)
        fg_log("fuglu.flood", FG_INFO, "record %d of a flood", i);
    *elapsed = fg_monotonic() - start;
    return NULL;
}

static void test_flood_drops_and_counts(void **state)
{
    (void)state;
    fifo_path = xasprintf("%s/fifo", tmpdir);
    assert_int_equal(mkfifo(fifo_path, 0600), 0);
    /* the read end stays open but unread during the flood: the pipe fills and the writer blocks */
    fifo_fd = open(fifo_path, O_RDONLY | O_NONBLOCK);
    assert_true(fifo_fd >= 0);
    char *conf = xasprintf("%s/flood.conf", tmpdir);
    FILE *f = fopen(conf, "w");
    fprintf(f, "[loggers]\nkeys=root\n[handlers]\nkeys=h\n[formatters]\nkeys=f\n[logger_root]\nlevel=INFO\nhandlers=h\n"
               "[handler_h]\nclass=FileHandler\nargs=('%s',)\nformatter=f\n"
               "[formatter_f]\nformat=%%(name)s %%(message)s\n", fifo_path);
    fclose(f);
    unsigned long dropped_before = fg_log_dropped();
    fg_log_set_queue_capacity(64);
    char *err = NULL;
    if (fg_log_load_config(conf, &err) != 0)
        fail_msg("%s", err);
    fg_buf_init(&fifo_data);
    atomic_store(&flood_done, false);
    pthread_t reader, producers[FLOOD_THREADS];
    double elapsed[FLOOD_THREADS];
    pthread_create(&reader, NULL, flood_reader, NULL);
    for (int i = 0; i < FLOOD_THREADS; i++)
        pthread_create(&producers[i], NULL, flood_producer, &elapsed[i]);
    for (int i = 0; i < FLOOD_THREADS; i++)
        pthread_join(producers[i], NULL);
    atomic_store(&flood_done, true);
    fg_log_shutdown();
    pthread_join(reader, NULL);
    fg_log_set_queue_capacity(65536);
    unsigned long dropped = fg_log_dropped() - dropped_before;
    for (int i = 0; i < FLOOD_THREADS; i++)
        assert_true(elapsed[i] < 10.0);   /* 25000 calls; a blocking fg_log would hang here */
    assert_true(dropped > 0);
    /* every record is either written or counted, and the counts are logged */
    unsigned long written = 0, reported = 0;
    assert_non_null(fifo_data.data);
    char *save = NULL;
    for (char *line = strtok_r(fifo_data.data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        unsigned long n;
        if (strncmp(line, "fuglu.flood record ", 19) == 0)
            written++;
        else if (sscanf(line, "fuglu.log %lu log records dropped", &n) == 1)
            reported += n;
        else
            fail_msg("unexpected line %s", line);
    }
    assert_int_equal(written + dropped, FLOOD_THREADS * FLOOD_RECORDS);
    assert_int_equal(reported, dropped);
    fg_buf_free(&fifo_data);
    free(conf);
    free(fifo_path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_written_by_flush),
        cmocka_unit_test(test_rotating_by_size),
        cmocka_unit_test(test_timed_rotation_seconds),
        cmocka_unit_test(test_timed_names_and_times),
        cmocka_unit_test(test_watched_file),
        cmocka_unit_test(test_group_modes),
        cmocka_unit_test(test_syslog_unix),
        cmocka_unit_test(test_syslog_udp),
        cmocka_unit_test(test_flood_drops_and_counts),
    };
    return cmocka_run_group_tests(tests, setup_tmpdir, teardown_tmpdir);
}
