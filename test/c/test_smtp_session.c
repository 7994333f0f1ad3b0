/* test_smtp_session: the SMTP session state machine driven from transcripts, as Postfix's smtpd
 * tests are.
 *
 * Each test/c/smtp/NAME.in is a client script; the session runs on one end of a socketpair in a
 * real fg_server (fg_server_adopt), with a pool stand-in that records each job's envelope and
 * answers it with the script's verdict. The transcript ("C: " client lines, "S: " server lines,
 * "J: " the job as the pool saw it) is compared with NAME.ref. Set FUGLU_UPDATE_REF=1 to rewrite
 * the .ref files after a deliberate change (and review the diff).
 *
 * Script lines: a client line as sent (CRLF added); "# ..." a comment; "!verdict CODE TEXT" the
 * reply for the next message; "!pipeline A|B|C" several commands in one write; "!body N" N body lines
 * of 98 characters (CRLF added; one transcript line says so). Every wait is
 * bounded (the loop runs for at most 2 s per line).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/io.h"
#include "pool/job.h"
#include "smtp/server.h"
#include "lib/util.h"

#ifndef SMTP_DIR
#define SMTP_DIR "test/c/smtp"
#endif

typedef struct harness {
    struct event_base *base;
    fg_server *srv;
    int client;
    fg_buf transcript;
    int verdict_code;
    char verdict_text[256];
    int jobs_answered;
} harness;

static harness *current;

static void answer_job(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    fg_job *job = arg;
    fg_server_job_done(job, current->srv);
    current->jobs_answered++;
}

/* The pool stand-in: records the envelope, answers on the next loop turn. */
static int fake_submit(fg_job *job, void *arg)
{
    harness *h = arg;
    fg_buf_printf(&h->transcript, "J: from=<%s> params=\"%s\" peer=%s helo=%s", job->mail_from,
                  job->mail_params ? job->mail_params : "", job->peer_addr ? job->peer_addr : "-",
                  job->helo ? job->helo : "-");
    for (size_t i = 0; i < job->nrcpt; i++)
        fg_buf_printf(&h->transcript, " rcpt=<%s>%s%s", job->rcpts[i], *job->rcpt_params[i] ? ":" : "",
                      job->rcpt_params[i]);
    if (job->has_xforward)
        fg_buf_printf(&h->transcript, " xforward.name=%s xforward.addr=%s xforward.proto=%s xforward.helo=%s",
                      job->xforward.name ? job->xforward.name : "-", job->xforward.addr ? job->xforward.addr : "-",
                      job->xforward.proto ? job->xforward.proto : "-", job->xforward.helo ? job->xforward.helo : "-");
    fg_buf_printf(&h->transcript, " size=%zu\n", fg_msg_len(job->msg));
    fg_job_set_reply(job, h->verdict_code, h->verdict_text);
    job->action = h->verdict_code / 100 == 2 ? FG_ACTION_DUNNO : h->verdict_code / 100 == 5 ? FG_ACTION_REJECT
                                                                                          : FG_ACTION_DEFER;
    h->verdict_code = 250;
    snprintf(h->verdict_text, sizeof h->verdict_text, "2.0.0 Ok: scanned");
    event_base_once(h->base, -1, EV_TIMEOUT, answer_job, job, &(struct timeval){0, 0});
    return 0;
}

/* Runs the loop until the server has said `want` complete lines more (or, with want 0, for a short
 * while), appending them to the transcript with the host name replaced by HOST. */
static void pump(harness *h, int want)
{
    static char pending[65536];
    static size_t npending;
    const char *host = fg_hostname();
    double deadline = fg_monotonic() + (want ? 2.0 : 0.05);
    int got = 0;
    while (fg_monotonic() < deadline && (want == 0 || got < want)) {
        event_base_loop(h->base, EVLOOP_NONBLOCK);
        ssize_t n = read(h->client, pending + npending, sizeof pending - npending - 1);
        if (n > 0)
            npending += (size_t)n;
        char *nl;
        while ((nl = memchr(pending, '\n', npending))) {
            size_t len = (size_t)(nl - pending) + 1;
            pending[len - (len > 1 && pending[len - 2] == '\r' ? 2 : 1)] = '\0';
            fg_buf_puts(&h->transcript, "S: ");
            for (const char *p = pending; *p;) {
                const char *at = *host ? strstr(p, host) : NULL;
                if (!at) {
                    fg_buf_puts(&h->transcript, p);
                    break;
                }
                fg_buf_append(&h->transcript, p, (size_t)(at - p));
                fg_buf_puts(&h->transcript, "HOST");
                p = at + strlen(host);
            }
            fg_buf_puts(&h->transcript, "\n");
            memmove(pending, pending + len, npending - len);
            npending -= len;
            got++;
        }
        if (n <= 0) {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
    }
}

/* How many reply lines a command gets: the EHLO reply has several; body lines none. */
static int replies_for(const char *line, int in_data)
{
    if (in_data)
        return strcmp(line, ".") == 0 ? 1 : 0;
    if (strncasecmp(line, "EHLO ", 5) == 0)
        return 9;
    return 1;
}

static void send_line(harness *h, const char *line)
{
    fg_buf_printf(&h->transcript, "C: %s\n", line);
    char *wire = xasprintf("%s\r\n", line);
    assert_int_equal(fg_write_all(h->client, wire, strlen(wire)), 0);
    free(wire);
}

static char *run_script(const char *path)
{
    harness h = {0};
    current = &h;
    h.base = event_base_new();
    fg_buf_init(&h.transcript);
    h.verdict_code = 250;
    snprintf(h.verdict_text, sizeof h.verdict_text, "2.0.0 Ok: scanned");
    char tmp[] = "/tmp/fuglu-smtp-test-XXXXXX";
    assert_non_null(mkdtemp(tmp));
    fg_server_opts o = {
        .base = h.base, .max_message_size = 10000, .spill_threshold = 64, .tempdir = tmp,
        .smtp_timeout = 30, .data_timeout = 30, .scan_timeout = 30, .max_recipients = 10,
    };
    h.srv = fg_server_new(&o);
    fg_server_set_submit(h.srv, fake_submit, &h);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    h.client = sv[0];
    fcntl(h.client, F_SETFL, O_NONBLOCK);
    assert_int_equal(fg_server_adopt(h.srv, sv[1], FG_PROTO_SMTP, "192.0.2.1", 10025), 0);
    pump(&h, 1);   /* the banner */

    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[4096];
    int in_data = 0;
    for (int count = 0; count < 1000 && fgets(line, sizeof line, f); count++) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '#')
            continue;
        if (strncmp(line, "!verdict ", 9) == 0) {
            h.verdict_code = atoi(line + 9);
            snprintf(h.verdict_text, sizeof h.verdict_text, "%.200s", line + 13);
            continue;
        }
        if (strncmp(line, "!body ", 6) == 0) {
            int n = atoi(line + 6);
            char body[101];
            memset(body, 'x', 98);
            memcpy(body + 98, "\r\n", 3);
            fg_buf_printf(&h.transcript, "C: <%d lines of 98 x>\n", n);
            for (int i = 0; i < n && i < 10000; i++)
                assert_int_equal(fg_write_all(h.client, body, 100), 0);
            pump(&h, 0);
            continue;
        }
        if (strncmp(line, "!pipeline ", 10) == 0) {
            fg_buf wire;
            fg_buf_init(&wire);
            int n = 0;
            char *save = NULL;
            for (char *c = strtok_r(line + 10, "|", &save); c; c = strtok_r(NULL, "|", &save), n++) {
                fg_buf_printf(&h.transcript, "C: %s\n", c);
                fg_buf_printf(&wire, "%s\r\n", c);
                if (strcasecmp(c, "DATA") == 0)
                    in_data = 1;
            }
            assert_int_equal(fg_write_all(h.client, wire.data, wire.len), 0);
            fg_buf_free(&wire);
            pump(&h, n);
            continue;
        }
        send_line(&h, line);
        int want = replies_for(line, in_data);
        if (!in_data && strcasecmp(line, "DATA") == 0)
            in_data = 1;
        else if (in_data && strcmp(line, ".") == 0)
            in_data = 0;
        pump(&h, want);
    }
    fclose(f);
    pump(&h, 0);
    close(h.client);
    pump(&h, 0);
    fg_server_free(h.srv);
    event_base_free(h.base);
    rmdir(tmp);
    current = NULL;
    return fg_buf_steal(&h.transcript, NULL);
}

static void test_transcripts(void **state)
{
    (void)state;
    DIR *d = opendir(SMTP_DIR);
    assert_non_null(d);
    int scripts = 0, failed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 4 || strcmp(e->d_name + n - 3, ".in") != 0)
            continue;
        scripts++;
        char *in = xasprintf("%s/%s", SMTP_DIR, e->d_name);
        char *ref = xasprintf("%s/%.*s.ref", SMTP_DIR, (int)n - 3, e->d_name);
        char *got = run_script(in);
        char *err = NULL;
        size_t len = 0;
        char *want = fg_read_file(ref, 1 << 20, &len, &err);
        if (getenv("FUGLU_UPDATE_REF") && *getenv("FUGLU_UPDATE_REF") == '1') {
            FILE *o = fopen(ref, "w");
            assert_non_null(o);
            fputs(got, o);
            fclose(o);
        } else if (!want || strcmp(want, got) != 0) {
            fprintf(stderr, "--- %s differs from the session's transcript:\n%s\n--- (%s)\n", ref, got,
                    want ? "the .ref has other lines" : err);
            failed++;
        }
        free(err);
        free(want);
        free(got);
        free(in);
        free(ref);
    }
    closedir(d);
    assert_true(scripts >= 5);
    assert_int_equal(failed, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transcripts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
