/* reinject: the blocking SMTP client that hands a scanned message to the downstream MTA.
 * See reinject.h for the interface.
 *
 * The socket is non-blocking and every wait goes through poll() with a deadline: connect has one
 * deadline, every reply has its own (the whole multi-line reply must arrive within the timeout), and
 * every write of a command or a data chunk has one. Writes use send(MSG_NOSIGNAL): a peer that went
 * away is an error return, never SIGPIPE.
 *
 * Failures come in two kinds. A reply from the downstream (4xx/5xx) is reported with its code and
 * text and leaves the connection usable. A local failure (connect, I/O, timeout, a reply that does not
 * fit the protocol state) is reported with code 0 and a reason, is always temporary, and drops the
 * connection: after a timeout or a desync nobody knows what the peer will say next.
 *
 * The cache keeps one connection (one per worker thread). Reuse starts with RSET. If a reused
 * connection fails before the downstream accepted MAIL (RSET refused, EOF, timeout, 421), it was
 * stale: the transaction is restarted once on a fresh connection, which is safe because nothing was
 * committed downstream yet.
 */
#include "smtp/reinject.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log/log.h"
#include "smtp/smtp_proto.h"
#include "lib/util.h"

#define REINJECT_LOGGER "fuglu.reinject"
#define REINJECT_IDLE_MAX 20.0          /* seconds a cached connection may sit unused */
#define REINJECT_CHUNK 65536            /* body bytes encoded and written per step */
#define REINJECT_REPLY_LINES_MAX 512    /* more lines in one reply is a broken peer */
#define REINJECT_XFORWARD_MAX 500       /* one XFORWARD command line including CRLF stays below 512 */
#define REINJECT_QUIT_WAIT 1.0          /* seconds to wait for the reply to QUIT when closing */

enum {
    RJ_CAP_SIZE = 1 << 0,
    RJ_CAP_8BITMIME = 1 << 1,
    RJ_CAP_SMTPUTF8 = 1 << 2,
    RJ_CAP_DSN = 1 << 3,
    RJ_CAP_PIPELINING = 1 << 4,
    RJ_CAP_ENHANCED = 1 << 5,
};

static const char *const reinject_xforward_names[] = {"NAME", "ADDR", "PORT", "HELO", "PROTO", "SOURCE", "IDENT"};
#define REINJECT_XF_COUNT 7

struct fg_reinject_cache {
    int fd;                 /* -1 when no connection is open */
    char *host;             /* the host:port the open connection goes to */
    int port;
    double last_used;       /* fg_monotonic() at the end of the last transaction */
    unsigned caps;          /* RJ_CAP_* from EHLO */
    unsigned xforward;      /* bit i set: reinject_xforward_names[i] advertised */
    bool clean;             /* the last transaction ended with 2xx after DATA: no RSET needed */
    char rbuf[4096];        /* received, not yet parsed bytes */
    size_t rlen;
};

/* One reply: its code and the text of its last line; all lines' texts when collecting (EHLO). */
typedef struct reinject_reply {
    int code;
    char text[512];
    fg_buf *all;
} reinject_reply;

/* State of one fg_reinject_send call. */
typedef struct reinject_session {
    fg_reinject_cache *c;
    const fg_reinject_req *req;
    fg_reinject_res *res;
    double timeout;
    const char *stage;      /* what we were doing, for local failure reasons */
} reinject_session;

enum { RJ_DONE = 0, RJ_STALE = 1 };
#define RJ_CANCELLED (-2)       /* reinject_send_data: the fate was cancelled before the final dot */

fg_reinject_cache *fg_reinject_cache_new(void)
{
    fg_reinject_cache *c = xcalloc(1, sizeof *c);
    c->fd = -1;
    return c;
}

static void reinject_close(fg_reinject_cache *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->rlen = 0;
    c->caps = 0;
    c->xforward = 0;
    free(c->host);
    c->host = NULL;
}

/* ---------------------------------------------------------------- low-level I/O */

/* Waits until fd is ready for events or the deadline passes. 0 = ready, -1 = errno set. */
static int reinject_wait(int fd, short events, double deadline)
{
    for (;;) {
        double left = deadline - fg_monotonic();
        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        struct pollfd pfd = {.fd = fd, .events = events};
        int n = poll(&pfd, 1, (int)(left * 1000.0) + 1);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

static int reinject_write_all(fg_reinject_cache *c, const char *data, size_t len, double timeout)
{
    double deadline = fg_monotonic() + timeout;
    while (len) {
        ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
        if (n > 0) {
            data += n;
            len -= (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (reinject_wait(c->fd, POLLOUT, deadline) < 0)
                return -1;
        } else {
            return -1;
        }
    }
    return 0;
}

/* Reads one line (CRLF or LF stripped) into line. -1 with errno on error, EOF (ECONNRESET), timeout
 * (ETIMEDOUT) or a line longer than the buffer (EMSGSIZE). */
static int reinject_read_line(fg_reinject_cache *c, double deadline, char *line, size_t cap)
{
    for (;;) {
        char *nl = memchr(c->rbuf, '\n', c->rlen);
        if (nl) {
            size_t n = (size_t)(nl - c->rbuf);
            size_t used = n + 1;
            if (n && c->rbuf[n - 1] == '\r')
                n--;
            if (n >= cap || memchr(c->rbuf, '\0', n)) {
                errno = EMSGSIZE;
                return -1;
            }
            memcpy(line, c->rbuf, n);
            line[n] = '\0';
            memmove(c->rbuf, c->rbuf + used, c->rlen - used);
            c->rlen -= used;
            return 0;
        }
        if (c->rlen == sizeof c->rbuf) {
            errno = EMSGSIZE;
            return -1;
        }
        ssize_t n = recv(c->fd, c->rbuf + c->rlen, sizeof c->rbuf - c->rlen, 0);
        if (n > 0) {
            c->rlen += (size_t)n;
        } else if (n == 0) {
            errno = ECONNRESET;
            return -1;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (reinject_wait(c->fd, POLLIN, deadline) < 0)
                return -1;
        } else if (errno != EINTR) {
            return -1;
        }
    }
}

/* ---------------------------------------------------------------- session helpers */

static void reinject_set_text(fg_reinject_res *res, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reinject_set_text(fg_reinject_res *res, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->text, sizeof res->text, fmt, ap);
    va_end(ap);
}

/* A local failure: code 0, temporary, the connection is dropped. */
static void reinject_fail_local(reinject_session *s, const char *what)
{
    s->res->ok = false;
    s->res->code = 0;
    s->res->temporary = true;
    reinject_set_text(s->res, "%s %s:%d %s: %s", what, s->req->host, s->req->port, s->stage, strerror(errno));
    fg_log(REINJECT_LOGGER, FG_DEBUG, "%s", s->res->text);
    reinject_close(s->c);
}

/* An I/O failure while talking: "lost connection" or "timeout". */
static void reinject_fail_io(reinject_session *s)
{
    if (errno == ETIMEDOUT)
        reinject_fail_local(s, "timeout talking to");
    else if (errno == EPROTO || errno == EMSGSIZE)
        reinject_fail_local(s, "malformed reply from");
    else
        reinject_fail_local(s, "lost connection with");
}

/* A refusal by the downstream: its code and text, temporary for 4xx. */
static void reinject_fail_reply(reinject_session *s, const reinject_reply *r)
{
    s->res->ok = false;
    s->res->code = r->code;
    s->res->temporary = r->code < 500;
    reinject_set_text(s->res, "%s", r->text);
    if (r->code == 421)
        reinject_close(s->c);
}

/* A reply that does not fit the protocol state: the conversation is out of step, drop it. */
static void reinject_fail_desync(reinject_session *s, const reinject_reply *r)
{
    s->res->ok = false;
    s->res->code = r->code;
    s->res->temporary = true;
    reinject_set_text(s->res, "unexpected reply from %s:%d %s: %d %s", s->req->host, s->req->port, s->stage,
                      r->code, r->text);
    reinject_close(s->c);
}

/* Reads a complete (multi-line) reply. -1 on I/O or syntax error (errno set, not yet reported). */
static int reinject_read_reply(reinject_session *s, reinject_reply *r)
{
    double deadline = fg_monotonic() + s->timeout;
    char line[1024];
    r->code = 0;
    r->text[0] = '\0';
    for (int i = 0; i < REINJECT_REPLY_LINES_MAX; i++) {
        bool last;
        const char *text;
        if (reinject_read_line(s->c, deadline, line, sizeof line) < 0)
            return -1;
        int code = smtp_parse_reply_line(line, &last, &text);
        if (code < 0 || (i > 0 && code != r->code)) {
            errno = EPROTO;
            return -1;
        }
        r->code = code;
        snprintf(r->text, sizeof r->text, "%s", text);
        if (r->all) {
            fg_buf_puts(r->all, text);
            fg_buf_append(r->all, "\n", 1);
        }
        if (last)
            return 0;
    }
    errno = EPROTO;
    return -1;
}

/* Sends one command line (CRLF added) and reads its reply. -1 on I/O failure (reported). */
static int reinject_command(reinject_session *s, const char *line, reinject_reply *r)
{
    char *full = xasprintf("%s\r\n", line);
    int rc = reinject_write_all(s->c, full, strlen(full), s->timeout);
    free(full);
    if (rc < 0 || reinject_read_reply(s, r) < 0) {
        reinject_fail_io(s);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- connection setup */

static int reinject_connect(reinject_session *s)
{
    const fg_reinject_req *req = s->req;
    struct addrinfo hints, *list = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", req->port);
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    int rc = getaddrinfo(req->host, port, &hints, &list);
    if (rc == EAI_NONAME) {
        hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
        rc = getaddrinfo(req->host, port, &hints, &list);
    }
    if (rc != 0) {
        s->res->code = 0;
        s->res->temporary = true;
        reinject_set_text(s->res, "connect to %s:%d failed: %s", req->host, req->port, gai_strerror(rc));
        return -1;
    }
    double deadline = fg_monotonic() + s->timeout;
    int fd = -1, err = 0;
    for (struct addrinfo *ai = list; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            err = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        if (errno == EINPROGRESS && reinject_wait(fd, POLLOUT, deadline) == 0) {
            socklen_t len = sizeof err;
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0)
                break;
        } else {
            err = errno;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(list);
    if (fd < 0) {
        s->res->code = 0;
        s->res->temporary = true;
        reinject_set_text(s->res, "connect to %s:%d failed: %s", req->host, req->port, strerror(err ? err : ETIMEDOUT));
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    s->c->fd = fd;
    s->c->rlen = 0;
    s->c->host = xstrdup(req->host);
    s->c->port = req->port;
    return 0;
}

/* Reads the EHLO keywords (one per line after the greeting line). */
static void reinject_parse_ehlo(fg_reinject_cache *c, const char *lines)
{
    c->caps = 0;
    c->xforward = 0;
    const char *p = strchr(lines, '\n');
    while (p && *++p) {
        const char *end = strchr(p, '\n');
        char *line = xstrndup(p, (size_t)(end - p));
        char *save = NULL;
        char *keyword = strtok_r(line, " \t", &save);
        if (!keyword)
            keyword = "";
        if (!strcasecmp(keyword, "SIZE"))
            c->caps |= RJ_CAP_SIZE;
        else if (!strcasecmp(keyword, "8BITMIME"))
            c->caps |= RJ_CAP_8BITMIME;
        else if (!strcasecmp(keyword, "SMTPUTF8"))
            c->caps |= RJ_CAP_SMTPUTF8;
        else if (!strcasecmp(keyword, "DSN"))
            c->caps |= RJ_CAP_DSN;
        else if (!strcasecmp(keyword, "PIPELINING"))
            c->caps |= RJ_CAP_PIPELINING;
        else if (!strcasecmp(keyword, "ENHANCEDSTATUSCODES"))
            c->caps |= RJ_CAP_ENHANCED;
        else if (!strcasecmp(keyword, "XFORWARD")) {
            for (char *attr; (attr = strtok_r(NULL, " \t", &save));) {
                for (int i = 0; i < REINJECT_XF_COUNT; i++)
                    if (!strcasecmp(attr, reinject_xforward_names[i]))
                        c->xforward |= 1u << i;
            }
        }
        free(line);
        p = end;
    }
}

/* Connect, banner, EHLO (HELO after a 5xx to EHLO). */
static int reinject_open(reinject_session *s)
{
    reinject_reply r = {0};
    if (reinject_connect(s) < 0)
        return -1;
    s->stage = "waiting for the greeting";
    if (reinject_read_reply(s, &r) < 0) {
        reinject_fail_io(s);
        return -1;
    }
    if (r.code / 100 != 2) {
        reinject_fail_reply(s, &r);
        reinject_close(s->c);
        return -1;
    }
    fg_buf lines;
    fg_buf_init(&lines);
    r.all = &lines;
    char *cmd = xasprintf("EHLO %s", s->req->helo && *s->req->helo ? s->req->helo : fg_hostname());
    s->stage = "after EHLO";
    int rc = reinject_command(s, cmd, &r);
    r.all = NULL;
    if (rc == 0 && r.code / 100 == 2) {
        reinject_parse_ehlo(s->c, lines.data ? lines.data : "");
    } else if (rc == 0 && r.code / 100 == 5) {
        memcpy(cmd, "HELO", 4);
        s->stage = "after HELO";
        rc = reinject_command(s, cmd, &r);
        if (rc == 0 && r.code / 100 != 2) {
            reinject_fail_reply(s, &r);
            reinject_close(s->c);
            rc = -1;
        }
    } else if (rc == 0) {
        reinject_fail_reply(s, &r);
        reinject_close(s->c);
        rc = -1;
    }
    free(cmd);
    fg_buf_free(&lines);
    return rc;
}

/* ---------------------------------------------------------------- the transaction */

/* xtext (RFC 3461): "+XX" for "+", "=", blanks, controls and 8-bit bytes. */
static void reinject_xtext(fg_buf *out, const char *value)
{
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if (*p < 0x21 || *p > 0x7e || *p == '+' || *p == '=')
            fg_buf_printf(out, "+%02X", *p);
        else
            fg_buf_append(out, p, 1);
    }
}

/* The advertised XFORWARD attributes as CRLF-terminated command lines, each under 512 bytes.
 * Returns the number of lines. */
static size_t reinject_xforward_lines(reinject_session *s, fg_buf *out)
{
    const fg_reinject_req *req = s->req;
    const char *values[REINJECT_XF_COUNT] = {req->xf_name, req->xf_addr, req->xf_port, req->xf_helo,
                                             req->xf_proto, req->xf_source, req->xf_ident};
    fg_buf attr;
    fg_buf_init(&attr);
    size_t lines = 0, line_start = out->len;
    bool open = false;
    for (int i = 0; i < REINJECT_XF_COUNT; i++) {
        if (!values[i] || !(s->c->xforward & (1u << i)))
            continue;
        fg_buf_clear(&attr);
        fg_buf_printf(&attr, " %s=", reinject_xforward_names[i]);
        reinject_xtext(&attr, values[i]);
        if (attr.len + 10 > REINJECT_XFORWARD_MAX) {
            fg_log(REINJECT_LOGGER, FG_WARNING, "XFORWARD %s value too long, not sent", reinject_xforward_names[i]);
            continue;
        }
        if (open && (out->len - line_start) + attr.len + 2 > REINJECT_XFORWARD_MAX) {
            fg_buf_append(out, "\r\n", 2);
            open = false;
        }
        if (!open) {
            line_start = out->len;
            fg_buf_puts(out, "XFORWARD");
            open = true;
            lines++;
        }
        fg_buf_append(out, attr.data, attr.len);
    }
    if (open)
        fg_buf_append(out, "\r\n", 2);
    fg_buf_free(&attr);
    return lines;
}

/* Without pipelining: sends the XFORWARD lines one by one, each waiting for its reply. Returns
 * RJ_DONE with *failed false on success, or the outcome of the failure already reported. */
static int reinject_xforward_lockstep(reinject_session *s, const fg_buf *lines, bool reused, bool *failed)
{
    *failed = false;
    s->stage = "after XFORWARD";
    const char *p = lines->data, *end = lines->data + lines->len;
    while (p < end) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        char *line = xstrndup(p, (size_t)(eol - p));
        reinject_reply r = {0};
        int rc = reinject_command(s, line, &r);
        free(line);
        if (rc < 0) {
            *failed = true;
            return reused ? RJ_STALE : RJ_DONE;
        }
        if (r.code / 100 != 2) {
            *failed = true;
            reinject_fail_reply(s, &r);
            return reused && r.code == 421 ? RJ_STALE : RJ_DONE;
        }
        p = eol + 2;
    }
    return RJ_DONE;
}

/* Aborts the transaction with RSET; a broken RSET drops the connection (the result stays). */
static void reinject_rset(reinject_session *s)
{
    reinject_reply r = {0};
    fg_reinject_res saved = *s->res;
    s->stage = "after RSET";
    if (reinject_command(s, "RSET", &r) == 0 && r.code / 100 != 2)
        reinject_close(s->c);
    *s->res = saved;
}

/* Pipelined XFORWARD: reads its n replies. When one is not 2xx (or the connection fails) the
 * failure is reported and the rest of the pipelined group is wound down: the replies to MAIL,
 * RCPT and a pipelined DATA are read; should DATA have been accepted (354) the connection is
 * closed without the final dot, so the server discards the transaction; otherwise RSET. Returns
 * true on failure, with *outcome RJ_STALE when a reused connection turned out to be dead. */
static bool reinject_xforward_replies(reinject_session *s, size_t n, size_t nrcpt, bool data_pipelined,
                                      bool reused, int *outcome)
{
    reinject_reply r = {0}, refusal = {0};
    for (size_t i = 0; i < n; i++) {
        if (reinject_read_reply(s, &r) < 0) {
            reinject_fail_io(s);
            *outcome = reused ? RJ_STALE : RJ_DONE;
            return true;
        }
        if (r.code / 100 != 2 && !refusal.code)
            refusal = r;
    }
    if (!refusal.code)
        return false;
    *outcome = RJ_DONE;
    if (refusal.code / 100 != 4 && refusal.code / 100 != 5) {
        reinject_fail_desync(s, &refusal);
        return true;
    }
    reinject_fail_reply(s, &refusal);   /* drops the connection on 421 */
    if (reused && refusal.code == 421)
        *outcome = RJ_STALE;
    if (s->c->fd < 0)
        return true;
    fg_reinject_res saved = *s->res;
    size_t rest = 1 + nrcpt + (data_pipelined ? 1 : 0);
    bool data_open = false;
    for (size_t i = 0; i < rest; i++) {
        if (reinject_read_reply(s, &r) < 0) {
            reinject_close(s->c);
            break;
        }
        data_open = data_pipelined && i == rest - 1 && r.code == 354;
    }
    if (data_open)
        reinject_close(s->c);
    else if (s->c->fd >= 0)
        reinject_rset(s);
    *s->res = saved;
    return true;
}

static void reinject_append_param(fg_buf *line, const char *params, const char *keyword)
{
    char *value = smtp_param_get(params, keyword);
    if (value) {
        fg_buf_printf(line, *value ? " %s=%s" : " %s", keyword, value);
        free(value);
    }
}

/* The envelope failed but DATA was pipelined behind it: reads DATA's reply (a refusal, as there is
 * no valid recipient) and, should a server answer 354 anyway, ends the empty data at once so the
 * dialogue stays in step; that transaction has no recipient, so nothing is delivered. The result
 * already describes the envelope failure and is kept. */
static void reinject_abandon_data(reinject_session *s)
{
    reinject_reply r = {0};
    fg_reinject_res saved = *s->res;
    s->stage = "after DATA";
    if (reinject_read_reply(s, &r) < 0) {
        reinject_close(s->c);
    } else if (r.code == 354) {
        if (reinject_write_all(s->c, ".\r\n", 3, s->timeout) < 0 || reinject_read_reply(s, &r) < 0)
            reinject_close(s->c);
    }
    *s->res = saved;
}

/* Streams prefix and body through the dot-stuffing encoder. */
static int reinject_send_data(reinject_session *s)
{
    const fg_reinject_req *req = s->req;
    smtp_data_encoder enc;
    fg_buf out;
    int rc = 0;
    smtp_data_encoder_init(&enc);
    fg_buf_init(&out);
    const char *parts[2] = {req->prefix, req->body};
    size_t lens[2] = {req->prefix ? req->prefix_len : 0, req->body ? req->body_len : 0};
    /* Encoded bytes are written once a chunk's worth has gathered, so a small message (headers,
     * body and the final dot) goes out in a single write. */
    for (int p = 0; p < 2 && rc == 0; p++) {
        for (size_t off = 0; off < lens[p] && rc == 0; off += REINJECT_CHUNK) {
            size_t n = lens[p] - off < REINJECT_CHUNK ? lens[p] - off : REINJECT_CHUNK;
            smtp_data_encode(&enc, parts[p] + off, n, &out);
            if (out.len >= REINJECT_CHUNK) {
                rc = reinject_write_all(s->c, out.data, out.len, s->timeout);
                fg_buf_clear(&out);
            }
        }
    }
    /* Everything but the end of data goes out first; the final dot only once the job is
     * committed, so a job cancelled until then delivers nothing. After the commit there is a
     * write of five bytes at most and one reply to wait for. */
    if (rc == 0 && out.len) {
        rc = reinject_write_all(s->c, out.data, out.len, s->timeout);
        fg_buf_clear(&out);
    }
    if (rc == 0) {
        if (req->fate && !fg_fate_commit(req->fate)) {
            fg_buf_free(&out);
            return RJ_CANCELLED;
        }
        smtp_data_encode_end(&enc, &out);
        rc = reinject_write_all(s->c, out.data, out.len, s->timeout);
    }
    fg_buf_free(&out);
    return rc;
}

/* The job was cancelled before its final dot: nothing is delivered. Mid-DATA (drop) the connection
 * is closed: the only way to make the downstream discard what it got. */
static void reinject_fail_cancelled(reinject_session *s, bool drop)
{
    s->res->ok = false;
    s->res->code = 0;
    s->res->temporary = true;
    s->res->cancelled = true;
    reinject_set_text(s->res, "not delivered: the client was answered before the re-injection finished");
    if (drop)
        reinject_close(s->c);
}

/* Reads the RCPT replies and applies the recipient rules (reported only if report). Without
 * pipelining, send holds the CRLF-terminated RCPT lines, each sent just before its reply is read;
 * with pipelining they were sent already and send is NULL. Returns 0 if all were accepted. */
static int reinject_rcpt_replies(reinject_session *s, size_t count, bool report, const char *send)
{
    reinject_reply r = {0}, first_refusal = {0};
    size_t accepted = 0;
    bool any_temporary = false;
    for (size_t i = 0; i < count; i++) {
        s->stage = "after RCPT";
        if (send) {
            const char *end = strstr(send, "\r\n") + 2;
            if (reinject_write_all(s->c, send, (size_t)(end - send), s->timeout) < 0) {
                reinject_fail_io(s);
                return -1;
            }
            send = end;
        }
        if (reinject_read_reply(s, &r) < 0) {
            reinject_fail_io(s);
            return -1;
        }
        if (r.code / 100 == 2) {
            accepted++;
            continue;
        }
        if (r.code / 100 != 4 && r.code / 100 != 5) {
            reinject_fail_desync(s, &r);
            return -1;
        }
        any_temporary |= r.code / 100 == 4;
        if (!first_refusal.code)
            first_refusal = r;
    }
    if (!report || accepted == count)
        return accepted == count ? 0 : -1;
    reinject_fail_reply(s, &first_refusal);
    s->res->temporary = any_temporary || accepted > 0;
    return -1;
}

/* One attempt. RJ_STALE when a reused connection failed before MAIL was accepted. */
static int reinject_transaction(reinject_session *s, bool reused)
{
    const fg_reinject_req *req = s->req;
    fg_reinject_cache *c = s->c;
    reinject_reply r = {0};
    /* After a delivered message the server is back in its initial state (RFC 5321 4.1.1.4): a
     * stale connection then shows at MAIL and is retried like a failed RSET. */
    bool was_clean = c->clean;
    c->clean = false;
    if (!reused) {
        if (reinject_open(s) < 0)
            return RJ_DONE;
    } else if (!was_clean) {
        s->stage = "after RSET";
        if (reinject_command(s, "RSET", &r) < 0)
            return RJ_STALE;
        if (r.code / 100 != 2) {
            reinject_fail_reply(s, &r);
            reinject_close(c);
            return RJ_STALE;
        }
    }
    bool pipelining = (c->caps & RJ_CAP_PIPELINING) != 0;
    fg_buf cmds;
    fg_buf_init(&cmds);
    /* XFORWARD goes first. With pipelining it joins the group (as Postfix's own client sends it):
     * one round trip less per message; its replies are read before MAIL's. */
    size_t xf_lines = reinject_xforward_lines(s, &cmds);
    if (xf_lines && !pipelining) {
        bool failed;
        int outcome = reinject_xforward_lockstep(s, &cmds, reused, &failed);
        if (failed) {
            fg_buf_free(&cmds);
            return outcome;
        }
        fg_buf_clear(&cmds);
        xf_lines = 0;
    }
    fg_buf_printf(&cmds, "MAIL FROM:<%s>", req->mail_from ? req->mail_from : "");
    if (c->caps & RJ_CAP_SIZE)
        fg_buf_printf(&cmds, " SIZE=%zu", (req->prefix ? req->prefix_len : 0) + (req->body ? req->body_len : 0));
    if (c->caps & RJ_CAP_8BITMIME)
        reinject_append_param(&cmds, req->mail_params, "BODY");
    if (c->caps & RJ_CAP_SMTPUTF8)
        reinject_append_param(&cmds, req->mail_params, "SMTPUTF8");
    if (c->caps & RJ_CAP_DSN) {
        reinject_append_param(&cmds, req->mail_params, "RET");
        reinject_append_param(&cmds, req->mail_params, "ENVID");
    }
    fg_buf_append(&cmds, "\r\n", 2);
    /* With one recipient DATA can join the pipelined group (RFC 2920): if that recipient is refused
     * DATA is refused too, so nothing can be half-delivered. With several it waits for the RCPT
     * replies, since a partly accepted envelope must be aborted before DATA. */
    bool data_pipelined = pipelining && req->nrcpt == 1;
    size_t mail_len = cmds.len;
    for (size_t i = 0; i < req->nrcpt; i++) {
        const char *params = req->rcpt_params ? req->rcpt_params[i] : NULL;
        fg_buf_printf(&cmds, "RCPT TO:<%s>", req->rcpts[i]);
        if (c->caps & RJ_CAP_DSN) {
            reinject_append_param(&cmds, params, "NOTIFY");
            reinject_append_param(&cmds, params, "ORCPT");
        }
        fg_buf_append(&cmds, "\r\n", 2);
    }
    if (data_pipelined)
        fg_buf_puts(&cmds, "DATA\r\n");
    s->stage = xf_lines ? "after XFORWARD" : "after MAIL";
    int rc = reinject_write_all(c, cmds.data, pipelining ? cmds.len : mail_len, s->timeout);
    if (rc == 0 && xf_lines) {
        int outcome;
        if (reinject_xforward_replies(s, xf_lines, req->nrcpt, data_pipelined, reused, &outcome)) {
            fg_buf_free(&cmds);
            return outcome;
        }
        s->stage = "after MAIL";
    }
    if (rc == 0)
        rc = reinject_read_reply(s, &r);
    if (rc < 0) {
        fg_buf_free(&cmds);
        reinject_fail_io(s);
        return reused ? RJ_STALE : RJ_DONE;
    }
    if (r.code / 100 != 2) {
        fg_buf_free(&cmds);
        if (r.code / 100 != 4 && r.code / 100 != 5) {
            reinject_fail_desync(s, &r);
            return RJ_DONE;
        }
        reinject_fail_reply(s, &r);
        if (r.code == 421)
            return reused ? RJ_STALE : RJ_DONE;
        if (pipelining) {
            fg_reinject_res saved = *s->res;
            int refused = reinject_rcpt_replies(s, req->nrcpt, false, NULL) < 0;
            if (data_pipelined && c->fd >= 0)
                reinject_abandon_data(s);
            if (refused && c->fd >= 0)
                reinject_rset(s);
            *s->res = saved;
        }
        return RJ_DONE;
    }
    rc = reinject_rcpt_replies(s, req->nrcpt, true, pipelining ? NULL : cmds.data + mail_len);
    fg_buf_free(&cmds);
    if (rc < 0) {
        if (data_pipelined && c->fd >= 0)
            reinject_abandon_data(s);
        if (c->fd >= 0)
            reinject_rset(s);
        return RJ_DONE;
    }

    s->stage = "after DATA";
    if (data_pipelined) {
        if (reinject_read_reply(s, &r) < 0) {
            reinject_fail_io(s);
            return RJ_DONE;
        }
    } else if (reinject_command(s, "DATA", &r) < 0) {
        return RJ_DONE;
    }
    if (r.code / 100 == 4 || r.code / 100 == 5) {
        reinject_fail_reply(s, &r);
        if (c->fd >= 0)
            reinject_rset(s);
        return RJ_DONE;
    }
    if (r.code != 354) {
        reinject_fail_desync(s, &r);
        return RJ_DONE;
    }
    s->stage = "while sending the message";
    rc = reinject_send_data(s);
    if (rc == RJ_CANCELLED) {
        reinject_fail_cancelled(s, true);
        return RJ_DONE;
    }
    if (rc < 0) {
        reinject_fail_io(s);
        return RJ_DONE;
    }
    s->stage = "after end of data";
    if (reinject_read_reply(s, &r) < 0) {
        reinject_fail_io(s);
        return RJ_DONE;
    }
    if (r.code / 100 == 2) {
        c->clean = true;
        s->res->ok = true;
        s->res->code = r.code;
        s->res->temporary = false;
        reinject_set_text(s->res, "%s", r.text);
    } else if (r.code / 100 == 4 || r.code / 100 == 5) {
        reinject_fail_reply(s, &r);
    } else {
        reinject_fail_desync(s, &r);
    }
    return RJ_DONE;
}

/* True when s contains a byte that must never reach a command line (CR, LF, NUL, controls). */
static bool reinject_unsafe(const char *s)
{
    for (; s && *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

static bool reinject_request_unsafe(const fg_reinject_req *req)
{
    if (reinject_unsafe(req->mail_from) || reinject_unsafe(req->mail_params) || reinject_unsafe(req->helo))
        return true;
    for (size_t i = 0; i < req->nrcpt; i++) {
        if (!req->rcpts[i] || reinject_unsafe(req->rcpts[i]))
            return true;
        if (req->rcpt_params && reinject_unsafe(req->rcpt_params[i]))
            return true;
    }
    return false;
}

int fg_reinject_send(fg_reinject_cache *c, const fg_reinject_req *req, fg_reinject_res *res)
{
    reinject_session s = {.c = c, .req = req, .res = res, .timeout = req->timeout > 0 ? req->timeout : 60.0};
    memset(res, 0, sizeof *res);
    if (req->fate && fg_fate_is_cancelled(req->fate)) {
        reinject_fail_cancelled(&s, false);
        return -1;
    }
    if (!req->nrcpt || reinject_request_unsafe(req)) {
        res->code = 0;
        res->temporary = false;
        reinject_set_text(res, "%s", req->nrcpt ? "invalid characters in the envelope" : "no recipients");
        return -1;
    }
    if (c->fd >= 0 && (!c->host || strcmp(c->host, req->host) != 0 || c->port != req->port
                       || fg_monotonic() - c->last_used > REINJECT_IDLE_MAX || c->rlen)) {
        /* Another destination, idle too long, or unsolicited bytes waiting (out of step). */
        (void)reinject_write_all(c, "QUIT\r\n", 6, REINJECT_QUIT_WAIT);
        reinject_close(c);
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        bool reused = c->fd >= 0;
        memset(res, 0, sizeof *res);
        int outcome = reinject_transaction(&s, reused);
        if (outcome == RJ_STALE && reused) {
            fg_log(REINJECT_LOGGER, FG_DEBUG, "cached connection to %s:%d was stale (%s), reconnecting",
                   req->host, req->port, res->text);
            reinject_close(c);
            continue;
        }
        break;
    }
    if (c->fd >= 0)
        c->last_used = fg_monotonic();
    return res->ok ? 0 : -1;
}

void fg_reinject_cache_free(fg_reinject_cache *c)
{
    if (!c)
        return;
    if (c->fd >= 0) {
        reinject_session s = {.c = c, .timeout = REINJECT_QUIT_WAIT};
        reinject_reply r = {0};
        if (reinject_write_all(c, "QUIT\r\n", 6, REINJECT_QUIT_WAIT) == 0)
            (void)reinject_read_reply(&s, &r);
    }
    reinject_close(c);
    free(c);
}
