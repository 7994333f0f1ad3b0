/* test_pool: the joints every backend shares: the job queue, the job frame of the process
 * backend, and the thread backend driven through the pool interface with a C scanner (no Lua: the
 * pools only run what the scanner gives them).
 *
 * Every wait runs the libevent loop with a deadline; every thread the pool starts is joined by
 * fg_pool_free.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/event.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "pool/frame.h"
#include "pool/job.h"
#include "pool/pool.h"
#include "pool/threadpool.h"
#include "lib/util.h"

/* ---- the job queue ---- */

static void test_queue_is_fifo_and_bounded(void **state)
{
    (void)state;
    fg_job_queue q = {.max = 2};
    fg_job *a = fg_job_new(FG_PROTO_SMTP), *b = fg_job_new(FG_PROTO_SMTP), *c = fg_job_new(FG_PROTO_SMTP);
    assert_int_equal(fg_job_queue_push(&q, a), 0);
    assert_int_equal(fg_job_queue_push(&q, b), 0);
    assert_int_equal(fg_job_queue_push(&q, c), -1);   /* full: the caller answers 4xx */
    assert_int_equal(q.count, 2);
    assert_ptr_equal(fg_job_queue_pop(&q), a);
    assert_null(a->next);
    assert_int_equal(fg_job_queue_push(&q, c), 0);
    fg_job *list = fg_job_queue_take_all(&q);
    assert_ptr_equal(list, b);
    assert_ptr_equal(list->next, c);
    assert_null(c->next);
    assert_int_equal(q.count, 0);
    assert_null(fg_job_queue_pop(&q));
    assert_int_equal(fg_job_queue_push(&q, a), 0);   /* usable again after take_all */
    assert_ptr_equal(q.head, a);
    assert_ptr_equal(q.tail, a);
    fg_job_free(a);
    fg_job_free(b);
    fg_job_free(c);
}

/* ---- the process backend's job frame ---- */

static fg_job *sample_job(void)
{
    fg_job *job = fg_job_new(FG_PROTO_SMTP);
    job->local_port = 10025;
    job->peer_addr = xstrdup("192.0.2.7");
    job->helo = xstrdup("mx.example.org");
    job->mail_from = xstrdup("");
    job->mail_params = xstrdup("SIZE=42 BODY=8BITMIME");
    fg_job_add_rcpt(job, "a@example.net", "NOTIFY=NEVER");
    fg_job_add_rcpt(job, "b@example.net", NULL);
    job->has_xforward = 1;
    job->xforward.addr = xstrdup("198.51.100.1");
    job->xforward.helo = xstrdup("client.example");
    job->msg = fg_msg_from_bytes("Subject: x\r\n\r\nbody\r\n", 21);
    return job;
}

static void test_job_frame_round_trip(void **state)
{
    (void)state;
    fg_job *job = sample_job();
    fg_buf b;
    fg_buf_init(&b);
    fg_job_encode(job, &b);
    fg_frame_reader r = {.p = (const unsigned char *)b.data, .left = b.len};
    uint64_t len = 0;
    char *err = NULL;
    fg_job *back = fg_job_decode(&r, &len, &err);
    assert_non_null(back);
    assert_int_equal(r.left, 0);
    assert_string_equal(back->id, job->id);
    assert_int_equal(back->proto, FG_PROTO_SMTP);
    assert_string_equal(back->protocol, "smtp");
    assert_int_equal(back->local_port, 10025);
    assert_string_equal(back->peer_addr, "192.0.2.7");
    assert_string_equal(back->helo, "mx.example.org");
    assert_string_equal(back->mail_from, "");
    assert_string_equal(back->mail_params, "SIZE=42 BODY=8BITMIME");
    assert_int_equal(back->nrcpt, 2);
    assert_string_equal(back->rcpts[1], "b@example.net");
    assert_string_equal(back->rcpt_params[0], "NOTIFY=NEVER");
    assert_string_equal(back->rcpt_params[1], "");
    assert_int_equal(back->has_xforward, 1);
    assert_string_equal(back->xforward.addr, "198.51.100.1");
    assert_null(back->xforward.name);   /* absent stays absent, not "" */
    assert_int_equal(len, 21);
    fg_job_free(back);

    /* Every truncation of the frame is refused, none crashes or leaks. */
    for (size_t cut = 0; cut < b.len; cut++) {
        fg_frame_reader t = {.p = (const unsigned char *)b.data, .left = cut};
        char *terr = NULL;
        fg_job *bad = fg_job_decode(&t, &len, &terr);
        assert_null(bad);
        assert_string_equal(terr, "malformed job frame");
        free(terr);
    }
    fg_buf_free(&b);
    fg_job_free(job);
}

static void test_frames_carry_a_descriptor(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    fg_job *job = sample_job();
    int mfd = fg_msg_export_fd(job->msg, NULL);
    assert_true(mfd >= 0);
    fg_buf b;
    fg_buf_init(&b);
    fg_buf_append(&b, "J", 1);
    fg_job_encode(job, &b);
    assert_int_equal(fg_frame_send(sv[0], &b, mfd), 0);
    close(mfd);
    unsigned char *buf = xmalloc(FG_FRAME_MAX);
    int got = -1;
    ssize_t n = fg_frame_recv(sv[1], buf, &got);
    assert_int_equal(n, (ssize_t)b.len);
    assert_true(got >= 0);
    fg_frame_reader r = {.p = buf + 1, .left = (size_t)n - 1};
    uint64_t len = 0;
    char *err = NULL;
    fg_job *back = fg_job_decode(&r, &len, &err);
    assert_non_null(back);
    back->msg = fg_msg_from_fd(got, (size_t)len, &err);
    assert_non_null(back->msg);
    assert_int_equal(fg_msg_len(back->msg), 21);
    assert_memory_equal(fg_msg_data(back->msg), "Subject: x\r\n\r\nbody\r\n", 21);
    fg_job_free(back);
    /* EOF reads as 0 */
    close(sv[0]);
    assert_int_equal(fg_frame_recv(sv[1], buf, &got), 0);
    close(sv[1]);
    free(buf);
    fg_buf_free(&b);
    fg_job_free(job);
}

/* ---- the thread backend through the interface ---- */

typedef struct scan_env {
    atomic_int opened, closed, scanned, after;
    atomic_int hold;        /* scans wait while set */
    int fail_open;          /* open fails */
} scan_env;

static void *t_open(void *arg, const char *name, char **err)
{
    (void)name;
    scan_env *e = arg;
    if (e->fail_open) {
        *err = xstrdup("plugin x failed to load");
        return NULL;
    }
    atomic_fetch_add(&e->opened, 1);
    return e;
}

static void t_scan(void *state, fg_job *job)
{
    scan_env *e = state;
    for (int i = 0; i < 1000 && atomic_load(&e->hold); i++) {   /* at most 5 s */
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    atomic_fetch_add(&e->scanned, 1);
    fg_job_set_reply(job, 250, "scanned");
    job->action = FG_ACTION_DUNNO;
}

static void t_after(void *state) { atomic_fetch_add(&((scan_env *)state)->after, 1); }
static void t_close(void *state) { atomic_fetch_add(&((scan_env *)state)->closed, 1); }

typedef struct done_log {
    int count;
    int codes[16];
} done_log;

static void on_done(fg_job *job, void *arg)
{
    done_log *d = arg;
    if (d->count < 16)
        d->codes[d->count] = job->reply_code;
    d->count++;
    fg_job_free(job);
}

static void run_until(struct event_base *base, done_log *d, int count)
{
    for (int i = 0; i < 500 && d->count < count; i++) {   /* at most 5 s */
        struct timeval tv = {0, 10000};
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
}

static fg_pool *new_pool(struct event_base *base, scan_env *e, done_log *d, size_t queue_max, char **err)
{
    fg_threadpool_opts o = {
        .scanner = {t_open, t_scan, t_after, t_close, e},
        .minthreads = 1,
        .maxthreads = 1,
        .queue_max = queue_max,
        .base = base,
        .done = on_done,
        .done_arg = d,
    };
    return fg_threadpool_new(&o, err);
}

static void test_threadpool_through_the_interface(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    scan_env e = {0};
    done_log d = {0};
    char *err = NULL;
    fg_pool *p = new_pool(base, &e, &d, 2, &err);
    assert_non_null(p);
    assert_string_equal(fg_pool_backend(p), "thread");
    assert_int_equal(fg_pool_workers(p), 1);
    assert_int_equal(atomic_load(&e.opened), 1);

    atomic_store(&e.hold, 1);
    assert_int_equal(fg_pool_submit(p, fg_job_new(FG_PROTO_SMTP)), 0);
    for (int i = 0; i < 500 && fg_pool_queued(p) > 0; i++) {   /* the worker takes it */
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(fg_pool_queued(p), 0);
    assert_int_equal(fg_pool_submit(p, fg_job_new(FG_PROTO_SMTP)), 0);
    assert_int_equal(fg_pool_submit(p, fg_job_new(FG_PROTO_SMTP)), 0);
    fg_job *refused = fg_job_new(FG_PROTO_SMTP);
    assert_int_equal(fg_pool_submit(p, refused), -1);   /* the queue holds 2 */
    fg_job_free(refused);
    assert_int_equal(fg_pool_queued(p), 2);
    assert_int_equal(fg_pool_pending(p), 3);
    char *desc = fg_pool_describe(p);
    assert_non_null(strstr(desc, "1 worker threads"));
    assert_non_null(strstr(desc, "2 queued"));
    free(desc);

    /* A swap takes the two waiting jobs back in order; the running one finishes here. */
    fg_job *queued = fg_pool_take_queued(p);
    assert_non_null(queued);
    assert_non_null(queued->next);
    assert_null(queued->next->next);
    refused = fg_job_new(FG_PROTO_SMTP);
    assert_int_equal(fg_pool_submit(p, refused), -1);   /* stopping */
    fg_job_free(refused);
    atomic_store(&e.hold, 0);
    run_until(base, &d, 1);
    assert_int_equal(d.count, 1);
    assert_int_equal(d.codes[0], 250);
    for (int i = 0; i < 500 && fg_pool_workers(p) > 0; i++) {
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(fg_pool_pending(p), 0);
    fg_pool_free(p);
    assert_int_equal(atomic_load(&e.scanned), 1);
    assert_int_equal(atomic_load(&e.after), 1);
    assert_int_equal(atomic_load(&e.closed), 1);
    while (queued) {
        fg_job *next = queued->next;
        fg_job_free(queued);
        queued = next;
    }
    event_base_free(base);
}

static void test_threadpool_stop_answers_the_queued(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    scan_env e = {0};
    done_log d = {0};
    char *err = NULL;
    fg_pool *p = new_pool(base, &e, &d, 0, &err);
    assert_non_null(p);
    atomic_store(&e.hold, 1);
    for (int i = 0; i < 4; i++)
        assert_int_equal(fg_pool_submit(p, fg_job_new(FG_PROTO_SMTP)), 0);
    for (int i = 0; i < 500 && fg_pool_queued(p) > 3; i++) {
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    fg_pool_stop(p, 421, "4.3.2 Service shutting down");
    atomic_store(&e.hold, 0);
    run_until(base, &d, 4);
    assert_int_equal(d.count, 4);   /* every submitted job comes back exactly once */
    int shut = 0, scanned = 0;
    for (int i = 0; i < 4; i++)
        shut += d.codes[i] == 421, scanned += d.codes[i] == 250;
    assert_int_equal(shut, 3);
    assert_int_equal(scanned, 1);
    fg_pool_free(p);
    event_base_free(base);
}

static void test_threadpool_reports_a_scanner_that_does_not_open(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    scan_env e = {.fail_open = 1};
    done_log d = {0};
    char *err = NULL;
    assert_null(new_pool(base, &e, &d, 0, &err));
    assert_string_equal(err, "plugin x failed to load");
    free(err);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue_is_fifo_and_bounded),
        cmocka_unit_test(test_job_frame_round_trip),
        cmocka_unit_test(test_frames_carry_a_descriptor),
        cmocka_unit_test(test_threadpool_through_the_interface),
        cmocka_unit_test(test_threadpool_stop_answers_the_queued),
        cmocka_unit_test(test_threadpool_reports_a_scanner_that_does_not_open),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
