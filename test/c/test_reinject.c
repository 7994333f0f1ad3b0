/* test_reinject: tests for the re-inject SMTP client against a scripted SMTP server.
 *
 * The server runs in a pthread on 127.0.0.1 (ephemeral port). It answers from a script, records
 * every command line it receives ("C: ..." lines in srv.log), the raw DATA bytes as they arrived on
 * the wire and the decoded messages. Every loop is bounded by a deadline; the test stops the thread
 * with a flag and joins it, and reads the recordings only after the join.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "smtp/reinject.h"
#include "smtp/smtp_proto.h"
#include "lib/util.h"

#define SRV_MAX_SECONDS 10.0

typedef struct srv_script {
    const char *banner;       /* NULL = "220 test ESMTP"; "" = never answer anything */
    const char *ehlo;         /* complete reply with CRLFs; NULL = "250 test" */
    const char *mail;         /* NULL = 250 */
    const char *rcpt[4];      /* reply to the n-th RCPT of a transaction; NULL = 250 */
    const char *data;         /* NULL = 354 */
    const char *final;        /* NULL = "250 2.0.0 Ok: queued as ABC" */
    const char *xforward;     /* NULL = 250 */
    const char *close_on;     /* close without a reply on the command starting with this */
    bool close_after_final;   /* close the first connection after its first final reply */
} srv_script;

typedef struct srv {
    srv_script script;
    int listen_fd;
    int port;
    pthread_t thread;
    atomic_int stop;
    fg_buf log;               /* "[connect]\n", "C: <command>\n" */
    fg_buf wire;              /* DATA bytes as received, dot-stuffed, terminators included */
    fg_buf message;           /* the decoded messages, concatenated */
    fg_buf groups;            /* the commands of each read, "XFORWARD+MAIL+RCPT+DATA\n" */
    int connections;
    int messages;
    bool pipelined;           /* a command arrived before the previous one was answered */
} srv;

static void srv_say(int fd, const char *text)
{
    ssize_t n = send(fd, text, strlen(text), MSG_NOSIGNAL);
    (void)n;
}

/* Handles one command line; returns false to close the connection. */
static bool srv_command(srv *s, int fd, const char *line, int *rcpt_index, int *rcpt_ok, bool *in_data)
{
    const srv_script *sc = &s->script;
    fg_buf_printf(&s->log, "C: %s\n", line);
    if (sc->close_on && fg_strcaseprefix(line, sc->close_on))
        return false;
    if (fg_strcaseprefix(line, "EHLO")) {
        srv_say(fd, sc->ehlo ? sc->ehlo : "250 test\r\n");
    } else if (fg_strcaseprefix(line, "MAIL")) {
        *rcpt_index = 0;
        *rcpt_ok = 0;
        srv_say(fd, sc->mail ? sc->mail : "250 2.1.0 Ok\r\n");
    } else if (fg_strcaseprefix(line, "RCPT")) {
        const char *r = *rcpt_index < 4 ? sc->rcpt[*rcpt_index] : NULL;
        (*rcpt_index)++;
        r = r ? r : "250 2.1.5 Ok\r\n";
        *rcpt_ok += r[0] == '2';
        srv_say(fd, r);
    } else if (fg_strcaseprefix(line, "DATA")) {
        /* As a real server: no accepted recipient, no data. */
        const char *r = sc->data ? sc->data : *rcpt_ok ? "354 go ahead\r\n" : "554 5.5.1 Error: no valid recipients\r\n";
        srv_say(fd, r);
        *in_data = strncmp(r, "354", 3) == 0;
    } else if (fg_strcaseprefix(line, "XFORWARD")) {
        *rcpt_index = 0;
        *rcpt_ok = 0;
        srv_say(fd, sc->xforward ? sc->xforward : "250 2.0.0 Ok\r\n");
    } else if (fg_strcaseprefix(line, "QUIT")) {
        srv_say(fd, "221 2.0.0 Bye\r\n");
        return false;
    } else {
        /* HELO, RSET, NOOP, XFORWARD */
        *rcpt_index = 0;
        *rcpt_ok = 0;
        srv_say(fd, "250 2.0.0 Ok\r\n");
    }
    return true;
}

static void srv_connection(srv *s, int fd)
{
    static char buf[1 << 16];
    size_t len = 0;
    bool in_data = false, open = true;
    int rcpt_index = 0, rcpt_ok = 0;
    smtp_data_decoder dec;
    smtp_data_decoder_init(&dec);
    double deadline = fg_monotonic() + SRV_MAX_SECONDS;
    s->connections++;
    fg_buf_puts(&s->log, "[connect]\n");
    bool silent = s->script.banner && !*s->script.banner;
    if (!silent)
        srv_say(fd, s->script.banner ? s->script.banner : "220 test ESMTP\r\n");
    while (open && !atomic_load(&s->stop) && fg_monotonic() < deadline) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 20) <= 0)
            continue;
        ssize_t n = recv(fd, buf + len, sizeof buf - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        size_t off = 0;
        size_t group_start = s->groups.len;
        while (open && !silent) {
            if (in_data) {
                size_t consumed = 0;
                int done = smtp_data_decode(&dec, buf + off, len - off, &s->message, &consumed);
                fg_buf_append(&s->wire, buf + off, consumed);
                off += consumed;
                if (!done)
                    break;
                in_data = false;
                s->messages++;
                srv_say(fd, s->script.final ? s->script.final : "250 2.0.0 Ok: queued as ABC\r\n");
                if (s->script.close_after_final && s->connections == 1)
                    open = false;
                continue;
            }
            char *nl = memmem(buf + off, len - off, "\r\n", 2);
            if (!nl)
                break;
            *nl = '\0';
            const char *line = buf + off;
            off = (size_t)(nl + 2 - buf);
            if (s->groups.len > group_start)
                fg_buf_append(&s->groups, "+", 1);
            fg_buf_append(&s->groups, line, strcspn(line, " "));
            open = srv_command(s, fd, line, &rcpt_index, &rcpt_ok, &in_data);
            if (in_data)
                smtp_data_decoder_init(&dec);
            else if (off < len)
                s->pipelined = true;
        }
        if (s->groups.len > group_start)
            fg_buf_append(&s->groups, "\n", 1);
        if (silent)
            off = len;
        memmove(buf, buf + off, len - off);
        len -= off;
        if (len == sizeof buf)
            break;
    }
    close(fd);
}

static void *srv_main(void *arg)
{
    srv *s = arg;
    double deadline = fg_monotonic() + SRV_MAX_SECONDS;
    while (!atomic_load(&s->stop) && fg_monotonic() < deadline) {
        struct pollfd pfd = {.fd = s->listen_fd, .events = POLLIN};
        if (poll(&pfd, 1, 20) <= 0)
            continue;
        int fd = accept(s->listen_fd, NULL, NULL);
        if (fd >= 0)
            srv_connection(s, fd);
    }
    return NULL;
}

static srv *srv_start(const srv_script *script)
{
    srv *s = xcalloc(1, sizeof *s);
    s->script = *script;
    fg_buf_init(&s->log);
    fg_buf_init(&s->wire);
    fg_buf_init(&s->message);
    fg_buf_init(&s->groups);
    fg_buf_puts(&s->log, "");
    fg_buf_puts(&s->wire, "");
    fg_buf_puts(&s->message, "");
    s->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->listen_fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s->listen_fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(s->listen_fd, 8), 0);
    socklen_t sl = sizeof sa;
    assert_int_equal(getsockname(s->listen_fd, (struct sockaddr *)&sa, &sl), 0);
    s->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&s->thread, NULL, srv_main, s), 0);
    return s;
}

static void srv_stop(srv *s)
{
    atomic_store(&s->stop, 1);
    pthread_join(s->thread, NULL);
    close(s->listen_fd);
}

static void srv_free(srv *s)
{
    fg_buf_free(&s->log);
    fg_buf_free(&s->wire);
    fg_buf_free(&s->message);
    fg_buf_free(&s->groups);
    free(s);
}

static int count_substr(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static const char *const two_rcpts[] = {"x@y.example", "z@y.example"};

/* A request with sensible defaults for the server s. */
static fg_reinject_req base_req(const srv *s)
{
    fg_reinject_req r;
    memset(&r, 0, sizeof r);
    r.host = "127.0.0.1";
    r.port = s ? s->port : 0;
    r.helo = "fuglu.test";
    r.timeout = 5;
    r.mail_from = "a@b.example";
    r.nrcpt = 1;
    r.rcpts = two_rcpts;
    r.body = "Subject: t\r\n\r\nhello\r\n";
    r.body_len = strlen(r.body);
    return r;
}

/* Runs one delivery against a fresh server with the script; the server is stopped on return. */
static srv *run_once(const srv_script *script, fg_reinject_req *req, fg_reinject_res *res, int *rc)
{
    srv *s = srv_start(script);
    req->port = s->port;
    fg_reinject_cache *c = fg_reinject_cache_new();
    *rc = fg_reinject_send(c, req, res);
    fg_reinject_cache_free(c);
    srv_stop(s);
    return s;
}

static void test_delivery_with_capabilities(void **state)
{
    (void)state;
    srv_script sc = {.ehlo = "250-test\r\n250-SIZE 1000000\r\n250-8BITMIME\r\n250-DSN\r\n250 ENHANCEDSTATUSCODES\r\n"};
    static const char *const params[] = {"NOTIFY=NEVER ORCPT=rfc822;x@y.example FOO=1"};
    fg_reinject_req req = base_req(NULL);
    req.mail_params = "SIZE=5 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=abc AUTH=<>";
    req.rcpt_params = params;
    req.xf_name = "client.example";
    req.xf_addr = "192.0.2.1";
    req.prefix = "X-Fuglu: 1\n";
    req.prefix_len = strlen(req.prefix);
    req.body = "Subject: t\r\n\r\n.dot\r\n..two\r\nend";
    req.body_len = strlen(req.body);
    fg_reinject_res res;
    int rc;
    srv *s = run_once(&sc, &req, &res, &rc);
    assert_int_equal(rc, 0);
    assert_true(res.ok);
    assert_int_equal(res.code, 250);
    assert_string_equal(res.text, "2.0.0 Ok: queued as ABC");
    char *want = xasprintf("C: MAIL FROM:<a@b.example> SIZE=%zu BODY=8BITMIME RET=HDRS ENVID=abc\n",
                           req.prefix_len + req.body_len);
    assert_non_null(strstr(s->log.data, want));
    free(want);
    assert_non_null(strstr(s->log.data, "C: EHLO fuglu.test\n"));
    assert_non_null(strstr(s->log.data, "C: RCPT TO:<x@y.example> NOTIFY=NEVER ORCPT=rfc822;x@y.example\n"));
    assert_null(strstr(s->log.data, "XFORWARD"));
    assert_non_null(strstr(s->log.data, "C: QUIT\n"));
    assert_string_equal(s->wire.data, "X-Fuglu: 1\r\nSubject: t\r\n\r\n..dot\r\n...two\r\nend\r\n.\r\n");
    assert_string_equal(s->message.data, "X-Fuglu: 1\r\nSubject: t\r\n\r\n.dot\r\n..two\r\nend\r\n");
    srv_free(s);
}

static void test_delivery_without_capabilities(void **state)
{
    (void)state;
    srv_script sc = {0};
    static const char *const params[] = {"NOTIFY=NEVER", NULL};
    fg_reinject_req req = base_req(NULL);
    req.mail_params = "SIZE=5 BODY=8BITMIME SMTPUTF8 RET=HDRS";
    req.nrcpt = 2;
    req.rcpt_params = params;
    req.xf_name = "client.example";
    fg_reinject_res res;
    int rc;
    srv *s = run_once(&sc, &req, &res, &rc);
    assert_int_equal(rc, 0);
    assert_true(res.ok);
    assert_non_null(strstr(s->log.data, "C: MAIL FROM:<a@b.example>\n"));
    assert_non_null(strstr(s->log.data, "C: RCPT TO:<x@y.example>\nC: RCPT TO:<z@y.example>\nC: DATA\n"));
    assert_false(s->pipelined);
    assert_null(strstr(s->log.data, "XFORWARD"));
    assert_string_equal(s->message.data, req.body);
    srv_free(s);
}

static void test_null_sender_and_binary_body(void **state)
{
    (void)state;
    srv_script sc = {0};
    static const char body[] = "A: \xff\x80\r\n\r\n\0nul\r\nbare\rcr\r\n.\r\n";
    fg_reinject_req req = base_req(NULL);
    req.mail_from = "";
    req.body = body;
    req.body_len = sizeof body - 1;
    fg_reinject_res res;
    int rc;
    srv *s = run_once(&sc, &req, &res, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(s->log.data, "C: MAIL FROM:<>\n"));
    assert_int_equal(s->message.len, sizeof body - 1);
    assert_memory_equal(s->message.data, body, sizeof body - 1);
    srv_free(s);
}

static void test_xforward_advertised(void **state)
{
    (void)state;
    srv_script sc = {.ehlo = "250-test\r\n250-PIPELINING\r\n250 XFORWARD NAME ADDR PROTO HELO\r\n"};
    fg_reinject_req req = base_req(NULL);
    req.xf_name = "client.example";
    req.xf_addr = "192.0.2.1";
    req.xf_port = "4711";
    req.xf_helo = "h x+y";
    fg_reinject_res res;
    int rc;
    srv *s = run_once(&sc, &req, &res, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(s->log.data, "C: XFORWARD NAME=client.example ADDR=192.0.2.1 HELO=h+20x+2By\nC: MAIL"));
    assert_null(strstr(s->log.data, "PORT="));
    assert_null(strstr(s->log.data, "PROTO="));
    srv_free(s);
}

/* With PIPELINING, XFORWARD travels in the same write as MAIL, RCPT and DATA: one round trip. */
static void test_xforward_pipelined(void **state)
{
    (void)state;
    srv_script sc = {.ehlo = "250-test\r\n250-PIPELINING\r\n250 XFORWARD NAME ADDR PROTO HELO\r\n"};
    fg_reinject_req req = base_req(NULL);
    req.xf_name = "client.example";
    req.xf_addr = "192.0.2.1";
    fg_reinject_res res;
    int rc;
    srv *s = run_once(&sc, &req, &res, &rc);
    assert_int_equal(rc, 0);
    assert_true(res.ok);
    assert_int_equal(s->messages, 1);
    assert_non_null(strstr(s->groups.data, "XFORWARD+MAIL+RCPT+DATA\n"));
    srv_free(s);
}

/* A refused pipelined XFORWARD: the refusal is the result, and although the server accepted the
 * recipient and DATA, nothing is delivered (the connection is dropped without the final dot). */
static void test_xforward_pipelined_refused(void **state)
{
    (void)state;
    srv_script sc = {.ehlo = "250-test\r\n250-PIPELINING\r\n250 XFORWARD NAME ADDR\r\n",
                     .xforward = "550 5.7.1 XFORWARD not allowed\r\n"};
    fg_reinject_req req = base_req(NULL);
    req.xf_addr = "192.0.2.1";
    fg_reinject_res res;
    int rc;
    srv *s = run_once(&sc, &req, &res, &rc);
    (void)rc;
    assert_false(res.ok);
    assert_int_equal(res.code, 550);
    assert_false(res.temporary);
    assert_non_null(strstr(res.text, "XFORWARD not allowed"));
    assert_int_equal(s->messages, 0);
    assert_non_null(strstr(s->log.data, "C: DATA\n"));
    srv_free(s);
}

static void test_xforward_split(void **state)
{
    (void)state;
    srv_script sc = {.ehlo = "250-test\r\n250 XFORWARD NAME ADDR PORT PROTO HELO SOURCE IDENT\r\n"};
    char name[301], helo[301];
    memset(name, 'n', 300);
    memset(helo, 'h', 300);
    name[300] = helo[300] = '\0';
    fg_reinject_req req = base_req(NULL);
    req.xf_name = name;
    req.xf_helo = helo;
    req.xf_addr = "192.0.2.1";
    req.xf_proto = "ESMTP";
    req.xf_source = "REMOTE";
    fg_reinject_res res;
    int rc;
    srv *s = run_once(&sc, &req, &res, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(count_substr(s->log.data, "C: XFORWARD "), 2);
    for (const char *p = s->log.data; (p = strstr(p, "C: XFORWARD ")); p++)
        assert_true(strcspn(p + 3, "\n") + 2 < 512);
    assert_int_equal(count_substr(s->log.data, "NAME="), 1);
    assert_int_equal(count_substr(s->log.data, "HELO="), 1);
    assert_non_null(strstr(s->log.data, " SOURCE=REMOTE"));
    assert_non_null(strstr(s->log.data, " PROTO=ESMTP"));
    srv_free(s);
}

static void test_helo_fallback(void **state)
{
    (void)state;
    srv_script sc = {.ehlo = "502 5.5.2 Error: command not recognized\r\n"};
    fg_reinject_req req = base_req(NULL);
    req.mail_params = "BODY=8BITMIME";
    fg_reinject_res res;
    int rc;
    srv *s = run_once(&sc, &req, &res, &rc);
    assert_int_equal(rc, 0);
    assert_true(res.ok);
    assert_non_null(strstr(s->log.data, "C: EHLO fuglu.test\nC: HELO fuglu.test\nC: MAIL FROM:<a@b.example>\n"));
    srv_free(s);
}

/* A refusal: checks the result, whether RSET was sent, and how many messages went through DATA
 * (refused after the end of data, or not at all). */
static void check_refused_after(const srv_script *sc, size_t nrcpt, int code, const char *text, bool temporary,
                                bool rset, int messages)
{
    fg_reinject_req req = base_req(NULL);
    req.nrcpt = nrcpt;
    fg_reinject_res res;
    int rc;
    srv *s = run_once(sc, &req, &res, &rc);
    assert_int_equal(rc, -1);
    assert_false(res.ok);
    assert_int_equal(res.code, code);
    assert_string_equal(res.text, text);
    assert_int_equal(res.temporary, temporary);
    assert_int_equal(s->messages, messages);
    if (rset)
        assert_non_null(strstr(s->log.data, "C: RSET\n"));
    else
        assert_null(strstr(s->log.data, "C: RSET\n"));
    srv_free(s);
}

static void check_refused(const srv_script *sc, size_t nrcpt, int code, const char *text, bool temporary, bool rset)
{
    check_refused_after(sc, nrcpt, code, text, temporary, rset, 0);
}

static void test_mail_refused(void **state)
{
    (void)state;
    srv_script temp = {.mail = "451 4.3.0 try later\r\n"};
    check_refused(&temp, 1, 451, "4.3.0 try later", true, false);
    srv_script perm = {.mail = "553-5.7.1 first\r\n553 5.7.1 sender refused\r\n"};
    check_refused(&perm, 1, 553, "5.7.1 sender refused", false, false);
    srv_script piped = {.ehlo = "250-x\r\n250 PIPELINING\r\n", .mail = "550 5.7.1 no\r\n"};
    check_refused(&piped, 2, 550, "5.7.1 no", false, false);
}

static void test_rcpt_rules(void **state)
{
    (void)state;
    srv_script all5 = {.rcpt = {"550 5.1.1 unknown x\r\n", "551 5.1.1 unknown z\r\n"}};
    check_refused(&all5, 2, 550, "5.1.1 unknown x", false, true);
    srv_script mixed = {.rcpt = {"250 ok\r\n", "550 5.1.1 unknown z\r\n"}};
    check_refused(&mixed, 2, 550, "5.1.1 unknown z", true, true);
    srv_script with4 = {.rcpt = {"450 4.2.0 greylisted\r\n", "550 5.1.1 unknown z\r\n"}};
    check_refused(&with4, 2, 450, "4.2.0 greylisted", true, true);
    srv_script piped = {.ehlo = "250-x\r\n250 PIPELINING\r\n", .rcpt = {"250 ok\r\n", "452 4.5.3 too many\r\n"}};
    check_refused(&piped, 2, 452, "4.5.3 too many", true, true);
}

/* One recipient and PIPELINING: MAIL, RCPT and DATA go in one write; a refused recipient means a
 * refused DATA and nothing delivered. */
static void test_data_pipelined_single_recipient(void **state)
{
    (void)state;
    srv_script ok = {.ehlo = "250-x\r\n250 PIPELINING\r\n"};
    srv *s = srv_start(&ok);
    fg_reinject_req req = base_req(s);
    req.nrcpt = 1;
    fg_reinject_res res;
    fg_reinject_cache *c = fg_reinject_cache_new();
    assert_int_equal(fg_reinject_send(c, &req, &res), 0);
    fg_reinject_cache_free(c);
    srv_stop(s);
    assert_true(s->pipelined);
    assert_non_null(strstr(s->log.data, "C: MAIL FROM:<a@b.example>\nC: RCPT TO:<x@y.example>\nC: DATA\n"));
    assert_int_equal(s->messages, 1);
    srv_free(s);

    srv_script refused = {.ehlo = "250-x\r\n250 PIPELINING\r\n", .rcpt = {"550 5.1.1 unknown x\r\n"}};
    s = srv_start(&refused);
    req = base_req(s);
    req.nrcpt = 1;
    c = fg_reinject_cache_new();
    assert_int_equal(fg_reinject_send(c, &req, &res), -1);
    assert_int_equal(res.code, 550);
    assert_string_equal(res.text, "5.1.1 unknown x");
    assert_false(res.temporary);
    /* the connection stays usable: a second message goes over it after RSET */
    s->script.rcpt[0] = NULL;
    assert_int_equal(fg_reinject_send(c, &req, &res), 0);
    fg_reinject_cache_free(c);
    srv_stop(s);
    assert_int_equal(s->messages, 1);
    assert_int_equal(s->connections, 1);
    srv_free(s);
}

static void test_data_refused(void **state)
{
    (void)state;
    srv_script at_data = {.data = "554 5.5.1 no valid recipients\r\n"};
    check_refused(&at_data, 1, 554, "5.5.1 no valid recipients", false, true);
    srv_script final4 = {.final = "451 4.3.0 queue file write error\r\n"};
    check_refused_after(&final4, 1, 451, "4.3.0 queue file write error", true, false, 1);
    srv_script final5 = {.final = "550 5.7.1 spam\r\n"};
    check_refused_after(&final5, 1, 550, "5.7.1 spam", false, false, 1);
}

static void test_connection_refused(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t sl = sizeof sa;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    close(fd);
    fg_reinject_req req = base_req(NULL);
    req.port = ntohs(sa.sin_port);
    fg_reinject_res res;
    fg_reinject_cache *c = fg_reinject_cache_new();
    assert_int_equal(fg_reinject_send(c, &req, &res), -1);
    assert_false(res.ok);
    assert_int_equal(res.code, 0);
    assert_true(res.temporary);
    assert_non_null(strstr(res.text, "connect to 127.0.0.1:"));
    fg_reinject_cache_free(c);
}

static void test_localhost_name(void **state)
{
    (void)state;
    srv_script sc = {0};
    fg_reinject_req req = base_req(NULL);
    req.host = "localhost";
    fg_reinject_res res;
    int rc;
    srv *s = srv_start(&sc);
    req.port = s->port;
    fg_reinject_cache *c = fg_reinject_cache_new();
    rc = fg_reinject_send(c, &req, &res);
    fg_reinject_cache_free(c);
    srv_stop(s);
    /* "localhost" may resolve to ::1 first; the server listens on IPv4 only, the client must try on. */
    assert_int_equal(rc, 0);
    assert_int_equal(s->messages, 1);
    srv_free(s);
}

static void test_server_closes_mid_transaction(void **state)
{
    (void)state;
    srv_script sc = {.close_on = "RCPT"};
    fg_reinject_req req = base_req(NULL);
    fg_reinject_res res;
    int rc;
    srv *s = run_once(&sc, &req, &res, &rc);
    assert_int_equal(rc, -1);
    assert_false(res.ok);
    assert_int_equal(res.code, 0);
    assert_true(res.temporary);
    assert_non_null(strstr(res.text, "lost connection"));
    assert_int_equal(s->connections, 1);
    assert_int_equal(s->messages, 0);
    srv_free(s);
}

static void test_timeout(void **state)
{
    (void)state;
    srv_script sc = {.banner = ""};
    fg_reinject_req req = base_req(NULL);
    req.timeout = 0.3;
    fg_reinject_res res;
    int rc;
    double start = fg_monotonic();
    srv *s = run_once(&sc, &req, &res, &rc);
    double elapsed = fg_monotonic() - start;
    assert_int_equal(rc, -1);
    assert_int_equal(res.code, 0);
    assert_true(res.temporary);
    assert_non_null(strstr(res.text, "timeout"));
    assert_true(elapsed >= 0.25);
    assert_true(elapsed < 3.0);
    srv_free(s);
}

static void test_timeout_after_data(void **state)
{
    (void)state;
    srv_script sc = {.final = ""};
    fg_reinject_req req = base_req(NULL);
    req.timeout = 0.3;
    fg_reinject_res res;
    int rc;
    srv *s = run_once(&sc, &req, &res, &rc);
    assert_int_equal(rc, -1);
    assert_false(res.ok);
    assert_int_equal(res.code, 0);
    assert_true(res.temporary);
    srv_free(s);
}

static void test_connection_reuse(void **state)
{
    (void)state;
    srv_script sc = {.ehlo = "250-test\r\n250 PIPELINING\r\n"};
    srv *s = srv_start(&sc);
    fg_reinject_req req = base_req(s);
    fg_reinject_res res;
    fg_reinject_cache *c = fg_reinject_cache_new();
    assert_int_equal(fg_reinject_send(c, &req, &res), 0);
    req.body = "Subject: second\r\n\r\nx\r\n";
    req.body_len = strlen(req.body);
    assert_int_equal(fg_reinject_send(c, &req, &res), 0);
    assert_true(res.ok);
    fg_reinject_cache_free(c);
    srv_stop(s);
    assert_int_equal(s->connections, 1);
    assert_int_equal(s->messages, 2);
    assert_int_equal(count_substr(s->log.data, "C: EHLO"), 1);
    assert_true(s->pipelined);
    /* After a delivered message the session is back at its start: no RSET round trip. */
    assert_int_equal(count_substr(s->log.data, "C: RSET"), 0);
    assert_int_equal(count_substr(s->log.data, "C: MAIL"), 2);
    assert_int_equal(count_substr(s->log.data, "C: QUIT"), 1);
    assert_string_equal(s->message.data, "Subject: t\r\n\r\nhello\r\nSubject: second\r\n\r\nx\r\n");
    srv_free(s);
}

static void test_reuse_after_refusal(void **state)
{
    (void)state;
    srv_script sc = {.final = "550 5.7.1 no\r\n"};
    srv *s = srv_start(&sc);
    fg_reinject_req req = base_req(s);
    fg_reinject_res res;
    fg_reinject_cache *c = fg_reinject_cache_new();
    assert_int_equal(fg_reinject_send(c, &req, &res), -1);
    assert_int_equal(fg_reinject_send(c, &req, &res), -1);
    assert_int_equal(res.code, 550);
    fg_reinject_cache_free(c);
    srv_stop(s);
    assert_int_equal(s->connections, 1);
    srv_free(s);
}

static void test_transparent_reconnect(void **state)
{
    (void)state;
    srv_script sc = {.close_after_final = true};
    srv *s = srv_start(&sc);
    fg_reinject_req req = base_req(s);
    fg_reinject_res res;
    fg_reinject_cache *c = fg_reinject_cache_new();
    assert_int_equal(fg_reinject_send(c, &req, &res), 0);
    /* Let the server's close arrive so the cached connection is surely dead. */
    usleep(100 * 1000);
    assert_int_equal(fg_reinject_send(c, &req, &res), 0);
    assert_true(res.ok);
    assert_string_equal(res.text, "2.0.0 Ok: queued as ABC");
    fg_reinject_cache_free(c);
    srv_stop(s);
    assert_int_equal(s->connections, 2);
    assert_int_equal(s->messages, 2);
    srv_free(s);
}

static void test_unsafe_envelope(void **state)
{
    (void)state;
    fg_reinject_req req = base_req(NULL);
    req.port = 9; /* never contacted */
    req.mail_from = "a@b>\r\nRCPT TO:<evil@x>";
    fg_reinject_res res;
    fg_reinject_cache *c = fg_reinject_cache_new();
    assert_int_equal(fg_reinject_send(c, &req, &res), -1);
    assert_false(res.ok);
    assert_false(res.temporary);
    assert_int_equal(res.code, 0);
    req.mail_from = "a@b";
    req.nrcpt = 0;
    assert_int_equal(fg_reinject_send(c, &req, &res), -1);
    assert_false(res.ok);
    fg_reinject_cache_free(c);
}

static void test_large_body(void **state)
{
    (void)state;
    srv_script sc = {0};
    size_t n = 300 * 1024;
    char *body = xmalloc(n);
    for (size_t i = 0; i < n; i++)
        body[i] = i % 77 == 76 ? '\n' : (i % 77 == 0 ? '.' : (char)('a' + i % 26));
    fg_reinject_req req = base_req(NULL);
    req.body = body;
    req.body_len = n;
    fg_reinject_res res;
    int rc;
    srv *s = run_once(&sc, &req, &res, &rc);
    assert_int_equal(rc, 0);
    /* bare LFs become CRLF: one extra byte per line, plus the final line break */
    fg_buf want;
    fg_buf_init(&want);
    for (size_t i = 0; i < n; i++) {
        if (body[i] == '\n')
            fg_buf_append(&want, "\r", 1);
        fg_buf_append(&want, body + i, 1);
    }
    if (body[n - 1] != '\n')
        fg_buf_append(&want, "\r\n", 2);
    assert_int_equal(s->message.len, want.len);
    assert_memory_equal(s->message.data, want.data, want.len);
    fg_buf_free(&want);
    free(body);
    srv_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delivery_with_capabilities),
        cmocka_unit_test(test_delivery_without_capabilities),
        cmocka_unit_test(test_null_sender_and_binary_body),
        cmocka_unit_test(test_xforward_advertised),
        cmocka_unit_test(test_xforward_split),
        cmocka_unit_test(test_xforward_pipelined),
        cmocka_unit_test(test_xforward_pipelined_refused),
        cmocka_unit_test(test_helo_fallback),
        cmocka_unit_test(test_mail_refused),
        cmocka_unit_test(test_rcpt_rules),
        cmocka_unit_test(test_data_refused),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_localhost_name),
        cmocka_unit_test(test_server_closes_mid_transaction),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_timeout_after_data),
        cmocka_unit_test(test_connection_reuse),
        cmocka_unit_test(test_data_pipelined_single_recipient),
        cmocka_unit_test(test_reuse_after_refusal),
        cmocka_unit_test(test_transparent_reconnect),
        cmocka_unit_test(test_unsafe_envelope),
        cmocka_unit_test(test_large_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
