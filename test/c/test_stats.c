/* test_stats: unit tests of the monitoring modules: src/monitor/stats.c (exact counters under concurrency,
 * Fuglu's counting rules, worker slots and their Lua memory, the exception ring, the renderings),
 * the control command dispatch of src/monitor/control.c, src/monitor/mrtg.c's file format and src/monitor/metrics.c's
 * Prometheus text.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "monitor/control.h"
#include "monitor/metrics.h"
#include "monitor/mrtg.h"
#include "monitor/stats.h"
#include "lib/util.h"

#define THREADS 8
#define PER_THREAD 20000

static char *render(void (*fn)(fg_stats *, fg_buf *, bool), fg_stats *s, bool json)
{
    fg_buf b;
    fg_buf_init(&b);
    fn(s, &b, json);
    return fg_buf_steal(&b, NULL);
}

/* ---- exact counts from several threads ---- */

typedef struct worker_arg {
    fg_stats *stats;
    int number;
} worker_arg;

/* Message i of a thread: spam when i%3==1, virus when i%5==2, blocked when i%7==3, deferred when
 * i%11==4; a plugin run per message and an error every 100th. */
static void *hammer(void *p)
{
    worker_arg *a = p;
    char name[32];
    snprintf(name, sizeof name, "Pool worker [%d]", a->number);
    fg_stats_worker *w = fg_stats_worker_enter(a->stats, a->number, name);
    for (int i = 0; i < PER_THREAD; i++) {
        fg_stats_message_in(a->stats, i % 2 ? "smtp" : "milter");
        fg_stats_worker_set_plugin(w, "Suspect x", "P");
        fg_stats_plugin_run(a->stats, i % 2 ? "A" : "B", 0.002, i % 4);
        if (i % 100 == 0) {
            fg_stats_plugin_error(a->stats, "A");
            fg_stats_exception(a->stats, NULL, "info", "Traceback");
        }
        fg_stats_result r = {.action = i % 4, .deferred = i % 11 == 4, .spam = i % 3 == 1, .virus = i % 5 == 2,
                             .blocked = i % 7 == 3, .reinjected = i % 2 == 0, .scantime = 0.01};
        fg_stats_message_done(a->stats, &r);
        fg_stats_worker_set_state(w, "waiting for task", false);
    }
    fg_stats_worker_leave(w);
    return NULL;
}

static void test_exact_under_concurrency(void **state)
{
    (void)state;
    fg_stats *s = fg_stats_new();
    pthread_t tids[THREADS];
    worker_arg args[THREADS];
    for (int t = 0; t < THREADS; t++) {
        args[t] = (worker_arg){s, t + 1};
        assert_int_equal(pthread_create(&tids[t], NULL, hammer, &args[t]), 0);
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(tids[t], NULL);

    uint64_t total = 0, spam = 0, virus = 0, blocked = 0, ham = 0, deferred = 0, out = 0;
    for (int i = 0; i < PER_THREAD; i++) {
        out += i % 2 == 0;
        if (i % 11 == 4) {
            deferred++;
            continue;
        }
        total++;
        spam += i % 3 == 1;
        virus += i % 5 == 2;
        blocked += i % 7 == 3;
        ham += !(i % 3 == 1) && !(i % 5 == 2);
    }
    fg_stats_snapshot snap;
    fg_stats_snapshot_take(s, &snap);
    assert_int_equal(snap.in, THREADS * PER_THREAD);
    assert_int_equal(snap.total, THREADS * total);
    assert_int_equal(snap.spam, THREADS * spam);
    assert_int_equal(snap.virus, THREADS * virus);
    assert_int_equal(snap.blocked, THREADS * blocked);
    assert_int_equal(snap.ham, THREADS * ham);
    assert_int_equal(snap.deferred, THREADS * deferred);
    assert_int_equal(snap.out, THREADS * out);
    assert_int_equal(snap.protocols[0] + snap.protocols[2], THREADS * PER_THREAD);
    assert_int_equal(snap.scan_count, THREADS * total);
    assert_int_equal(snap.workers, 0);
    assert_int_equal(snap.nplugins, 2);
    assert_string_equal(snap.plugins[0].name, "A");
    assert_int_equal(snap.plugins[0].runs + snap.plugins[1].runs, THREADS * PER_THREAD);
    assert_int_equal(snap.plugins[0].errors, THREADS * (PER_THREAD / 100));
    uint64_t decisions = 0;
    for (int a = 0; a < FG_STATS_ACTIONS; a++)
        decisions += snap.plugins[0].decisions[a] + snap.plugins[1].decisions[a];
    assert_int_equal(decisions, THREADS * PER_THREAD);
    /* 0.002 s falls in the 0.0025 bucket: the p99 is that bound */
    assert_true(fg_stats_quantile(snap.plugins[0].buckets, 0.99) == 0.0025);
    fg_stats_snapshot_free(&snap);
    fg_stats_free(s);
}

/* ---- Fuglu's counting rules and text formats ---- */

static void test_ham_includes_blocked_and_deferred_not_counted(void **state)
{
    (void)state;
    fg_stats *s = fg_stats_new();
    fg_stats_result blocked = {.action = 3, .blocked = true, .scantime = 0.5};
    fg_stats_result spamvirus = {.action = 2, .spam = true, .virus = true, .scantime = 1.5};
    fg_stats_result deferred = {.action = 4, .deferred = true, .spam = true, .scantime = 9};
    fg_stats_message_done(s, &blocked);
    fg_stats_message_done(s, &spamvirus);
    fg_stats_message_done(s, &deferred);
    char *text = render(fg_stats_render_stats, s, false);
    /* the uptime line varies; everything after it is exact */
    const char *after = strstr(text, "\nAvg scan time:");
    assert_non_null(after);
    assert_true(strncmp(text, "Fuglu statistics\n---------------\nUptime:\t\t0:00:00", 48) == 0);
    assert_string_equal(after, "\nAvg scan time:\t1.0000\nTotal msgs:\t2 in:0 out:0\nHam:\t\t1\nSpam:\t\t1\n"
                               "Virus:\t\t1\nBlock:\t\t1\n        ");
    free(text);
    fg_stats_free(s);
}

static void test_avg_scantime_last_101(void **state)
{
    (void)state;
    fg_stats *s = fg_stats_new();
    fg_stats_snapshot snap;
    fg_stats_snapshot_take(s, &snap);
    assert_string_equal(snap.avg_scantime, "0");
    fg_stats_snapshot_free(&snap);
    for (int i = 0; i < 200; i++) {
        fg_stats_result r = {.action = 0, .scantime = i < 99 ? 100.0 : 2.0};
        fg_stats_message_done(s, &r);
    }
    fg_stats_snapshot_take(s, &snap);
    assert_string_equal(snap.avg_scantime, "2.0000");
    fg_stats_snapshot_free(&snap);
    fg_stats_free(s);
}

static void test_timedelta_and_uptime_words(void **state)
{
    (void)state;
    static const struct { double seconds; const char *delta, *words; } cases[] = {
        {0, "0:00:00", "0 seconds"},
        {1, "0:00:01", "1 second"},
        {60, "0:01:00", "1 minute, 0 seconds"},
        {3725.25, "1:02:05.250000", "1 hour, 2 minutes, 5 seconds"},
        {86400 + 7200 + 180 + 4, "1 day, 2:03:04", "1 day, 2 hours, 3 minutes, 4 seconds"},
        {2 * 86400 + 5, "2 days, 0:00:05", "2 days, 0 hours, 0 minutes, 5 seconds"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fg_buf b;
        fg_buf_init(&b);
        fg_stats_format_timedelta(&b, cases[i].seconds);
        assert_string_equal(b.data, cases[i].delta);
        fg_buf_clear(&b);
        fg_stats_format_uptime_words(&b, cases[i].seconds);
        assert_string_equal(b.data, cases[i].words);
        fg_buf_free(&b);
    }
}

static void test_workerlist_format(void **state)
{
    (void)state;
    fg_stats *s = fg_stats_new();
    fg_stats_worker *w3 = fg_stats_worker_enter(s, 3, "Pool worker [3]");
    fg_stats_worker *w1 = fg_stats_worker_enter(s, 1, "Pool worker [1]");
    fg_stats_worker_set_plugin(w3, "Suspect abc: from=<a@b> to=<c@d> size=3", "SAPlugin");
    char *text = render(fg_stats_render_workerlist, s, false);
    assert_string_equal(text, "Total 2 worker threads\n\n[1]: waiting for task\n*******\n"
                              "[3]: Suspect abc: from=<a@b> to=<c@d> size=3 : Running Plugin SAPlugin");
    free(text);
    text = render(fg_stats_render_workerlist, s, true);
    assert_non_null(strstr(text, "\"total\": 2"));
    assert_non_null(strstr(text, "\"plugin\": \"SAPlugin\""));
    assert_non_null(strstr(text, "\"busy\": true"));
    free(text);
    fg_buf b;
    fg_buf_init(&b);
    fg_stats_render_threadlist(s, &b);
    assert_string_equal(b.data, "Total 3 Threads\n\nname=MainThread alive=True daemon=False\n*******\n"
                                "name=Pool worker [1] alive=True daemon=True\n*******\n"
                                "name=Pool worker [3] alive=True daemon=True");
    fg_buf_free(&b);
    fg_stats_worker_leave(w1);
    fg_stats_worker_leave(w3);
    text = render(fg_stats_render_workerlist, s, false);
    assert_string_equal(text, "Total 0 worker threads\n\n");
    free(text);
    fg_stats_free(s);
}

/* A thread worker's slot reads its live counter; a process worker's slot the last reported value;
 * a slot with neither shows null in JSON and no gauge. */
static void test_worker_lua_memory(void **state)
{
    (void)state;
    fg_stats *s = fg_stats_new();
    fg_stats_worker *thread = fg_stats_worker_register(s, 1, "Pool worker [1]");
    fg_stats_worker *process = fg_stats_worker_register(s, 2, "Worker-2");
    fg_stats_worker *unknown = fg_stats_worker_register(s, 3, "Pool worker [3]");
    _Atomic size_t live = 1000;
    fg_stats_worker_set_lua_counter(thread, &live);
    fg_stats_worker_set_lua_bytes(process, 5000000000ULL);
    live = 123456;
    char *text = render(fg_stats_render_workerlist, s, true);
    assert_non_null(strstr(text, "\"state\": \"waiting for task\", \"lua_memory_bytes\": 123456}"));
    assert_non_null(strstr(text, "\"lua_memory_bytes\": 5000000000}"));
    assert_non_null(strstr(text, "\"lua_memory_bytes\": null}"));
    free(text);
    fg_stats_snapshot snap;
    fg_stats_snapshot_take(s, &snap);
    fg_buf b;
    fg_buf_init(&b);
    fg_metrics_render_prometheus(&b, &snap, -1);
    assert_non_null(strstr(b.data, "# TYPE fuglu_lua_memory_bytes gauge\n"));
    assert_non_null(strstr(b.data, "\nfuglu_lua_memory_bytes{worker=\"1\"} 123456\n"));
    assert_non_null(strstr(b.data, "\nfuglu_lua_memory_bytes{worker=\"2\"} 5000000000\n"));
    assert_null(strstr(b.data, "fuglu_lua_memory_bytes{worker=\"3\"}"));
    fg_buf_free(&b);
    fg_stats_snapshot_free(&snap);
    fg_stats_worker_leave(thread);
    fg_stats_worker_leave(process);
    fg_stats_worker_leave(unknown);
    fg_stats_free(s);
}

static void test_exception_ring_keeps_last_ten(void **state)
{
    (void)state;
    fg_stats *s = fg_stats_new();
    for (int i = 1; i <= 13; i++) {
        char info[32], tb[64];
        snprintf(info, sizeof info, "error %d", i);
        snprintf(tb, sizeof tb, "Traceback %d\n  line \"quoted\"", i);
        fg_stats_exception(s, "Pool worker [2]", info, tb);
    }
    char *text = render(fg_stats_render_exceptionlist, s, false);
    assert_null(strstr(text, "(error 3)"));
    assert_non_null(strstr(text, "\n[1] "));
    assert_non_null(strstr(text, " : Pool worker [2] (error 4)\nTraceback 4\n  line \"quoted\"\n"));
    assert_non_null(strstr(text, "\n[10] "));
    assert_non_null(strstr(text, "(error 13)\nTraceback 13"));
    assert_null(strstr(text, "\n[11] "));
    free(text);
    text = render(fg_stats_render_exceptionlist, s, true);
    assert_non_null(strstr(text, "\"info\": \"error 13\", \"traceback\": \"Traceback 13\\n  line \\\"quoted\\\"\""));
    free(text);
    fg_stats_free(s);
}

static void test_control_dispatch(void **state)
{
    (void)state;
    fg_stats *s = fg_stats_new();
    fg_control_env env = {.stats = s};
    fg_buf b;
    fg_buf_init(&b);
    fg_control_answer(&env, "  FrobNicate 1337  ", &b);
    assert_string_equal(b.data, "ERR no such command: frobnicate");
    fg_buf_clear(&b);
    fg_control_answer(&env, "STATS", &b);
    assert_true(strncmp(b.data, "Fuglu statistics\n", 17) == 0);
    fg_buf_clear(&b);
    fg_control_answer(&env, "stats --json", &b);
    assert_true(b.data[0] == '{');
    assert_non_null(strstr(b.data, "\"total\": 0"));
    fg_buf_clear(&b);
    fg_control_answer(&env, "uptime", &b);
    assert_true(strncmp(b.data, "Fuglu was started on ", 21) == 0);
    assert_non_null(strstr(b.data, "\nUptime: 0:00:00"));
    fg_buf_free(&b);
    int n = 0;
    for (const fg_control_command *c = fg_control_commands; c->name; c++, n++)
        assert_true(strlen(c->help) > 0);
    assert_true(n >= 6);
    fg_stats_free(s);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *data = xcalloc(1, 4096);
    size_t n = fread(data, 1, 4095, f);
    data[n] = '\0';
    fclose(f);
    return data;
}

static void test_mrtg_file_format(void **state)
{
    (void)state;
    char dir[] = "/tmp/fuglu-test-mrtg-XXXXXX";
    assert_non_null(mkdtemp(dir));
    assert_int_equal(fg_mrtg_write_file(dir, "inout", "12.0", "0.0", "1 minute, 0 seconds"), 0);
    char *path = xasprintf("%s/inout", dir);
    char *text = slurp(path);
    assert_non_null(text);
    assert_string_equal(text, "12.0\n0\n1 minute, 0 seconds\nFuGLU\n");
    free(text);
    assert_int_equal(fg_mrtg_write_file(dir, "inout", "13.0", "7.0", "1 minute, 1 second"), 0);
    text = slurp(path);
    assert_string_equal(text, "13.0\n7.0\n1 minute, 1 second\nFuGLU\n");
    free(text);
    char *tmp = xasprintf("%s/.inout.tmp", dir);
    assert_int_not_equal(access(tmp, F_OK), 0);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0);
    free(tmp);
    free(path);
}

static void test_prometheus_text(void **state)
{
    (void)state;
    fg_stats *s = fg_stats_new();
    fg_stats_result r = {.action = 0, .spam = true, .reinjected = true, .scantime = 0.02};
    fg_stats_message_in(s, "smtp");
    fg_stats_message_done(s, &r);
    fg_stats_plugin_run(s, "We\"ird\\Name", 0.3, 3);
    fg_stats_plugin_error(s, "We\"ird\\Name");
    fg_stats_snapshot snap;
    fg_stats_snapshot_take(s, &snap);
    fg_buf b;
    fg_buf_init(&b);
    fg_metrics_render_prometheus(&b, &snap, 4);
    assert_non_null(strstr(b.data, "\nfuglu_messages_in_total 1\n"));
    assert_non_null(strstr(b.data, "\nfuglu_messages_out_total 1\n"));
    assert_non_null(strstr(b.data, "\nfuglu_messages_by_verdict_total{verdict=\"spam\"} 1\n"));
    assert_non_null(strstr(b.data, "\nfuglu_messages_by_protocol_total{protocol=\"smtp\"} 1\n"));
    assert_non_null(strstr(b.data, "\nfuglu_scan_duration_seconds_bucket{le=\"0.01\"} 0\n"));
    assert_non_null(strstr(b.data, "\nfuglu_scan_duration_seconds_bucket{le=\"0.025\"} 1\n"));
    assert_non_null(strstr(b.data, "\nfuglu_scan_duration_seconds_bucket{le=\"+Inf\"} 1\n"));
    assert_non_null(strstr(b.data, "\nfuglu_scan_duration_seconds_count 1\n"));
    assert_non_null(strstr(b.data, "\nfuglu_queue_length 4\n"));
    assert_non_null(strstr(b.data, "\nfuglu_plugin_errors_total{plugin=\"We\\\"ird\\\\Name\"} 1\n"));
    assert_non_null(strstr(b.data, "\nfuglu_plugin_decisions_total{plugin=\"We\\\"ird\\\\Name\",action=\"REJECT\"} 1\n"));
    assert_non_null(strstr(b.data, "\nfuglu_plugin_duration_seconds_count{plugin=\"We\\\"ird\\\\Name\"} 1\n"));
    fg_buf_free(&b);
    fg_stats_snapshot_free(&snap);
    fg_stats_free(s);
}

static int fake_reload_calls;

static int fake_reload(void *arg, fg_buf *out)
{
    fake_reload_calls += *(int *)arg;
    fg_buf_puts(out, "OK: nothing changed\n");
    return 0;
}

/* The reload command reaches the daemon through the env it is given, not a global. */
static void test_control_reload_goes_through_the_env(void **state)
{
    (void)state;
    fg_stats *s = fg_stats_new();
    fg_control_env none = {.stats = s};
    fg_buf b;
    fg_buf_init(&b);
    fg_control_answer(&none, "reload", &b);
    assert_string_equal(b.data, "ERROR: reload is not available\n");
    fg_buf_clear(&b);
    int weight = 1;
    fg_control_env env = {.stats = s, .reload = fake_reload, .reload_arg = &weight};
    fg_control_answer(&env, "RELOAD", &b);
    assert_string_equal(b.data, "OK: nothing changed\n");
    assert_int_equal(fake_reload_calls, 1);
    fg_buf_clear(&b);
    fg_control_answer(&env, "netconsole", &b);   /* no console in this env */
    assert_non_null(strstr(b.data, "ERR netconsole"));
    fg_buf_free(&b);
    fg_stats_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_control_reload_goes_through_the_env),
        cmocka_unit_test(test_exact_under_concurrency),
        cmocka_unit_test(test_ham_includes_blocked_and_deferred_not_counted),
        cmocka_unit_test(test_avg_scantime_last_101),
        cmocka_unit_test(test_timedelta_and_uptime_words),
        cmocka_unit_test(test_workerlist_format),
        cmocka_unit_test(test_worker_lua_memory),
        cmocka_unit_test(test_exception_ring_keeps_last_ten),
        cmocka_unit_test(test_control_dispatch),
        cmocka_unit_test(test_mrtg_file_format),
        cmocka_unit_test(test_prometheus_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
