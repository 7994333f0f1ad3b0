/* fuglu_debug: sends one message to the daemon's debug port and shows its debug trace.
 *
 *   fuglu_debug [-c CONFIG] [-p PORT] [-t SECONDS] MESSAGE.eml [sender [recipient]]
 *
 * The port is [debug] debugport of CONFIG (default /etc/fuglu/fuglu.conf, debugport 10888), -p
 * overrides it. The message goes to 127.0.0.1:PORT with HELO fuglu.debug.local, from
 * sender@fuglu.local to recipient@fuglu.local unless given. The SMTP dialogue is printed as it
 * happens ("send:"/"reply:" lines), then where the trace is (<[debug] debugfile>.<id>, the id taken
 * from the reply) and the trace itself.
 *
 * Exit status: 0 the debug port took the message (2xx after DATA); 1 usage, config or message file
 * errors; 2 connection or SMTP dialogue failures; 3 the message was refused after DATA (4xx/5xx:
 * the scan verdict; the trace is still printed).
 */
#include "lib/config.h"
#include "lib/io.h"
#include "lib/util.h"

#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DEBUG_DEFAULT_PORT 10888
#define DEBUG_DEFAULT_FILE "/tmp/fuglu_debug.log"
#define DEBUG_HELO "fuglu.debug.local"
#define EXIT_USAGE 1
#define EXIT_SMTP 2
#define EXIT_REFUSED 3
#define TRACE_MAX (16 * 1024 * 1024)

typedef struct dbg_conn {
    int fd;
    double timeout;
    char buf[4096];
    size_t len;
} dbg_conn;

static void dbg_usage(FILE *out)
{
    fprintf(out,
            "Usage: fuglu_debug [-c CONFIG] [-p PORT] [-t SECONDS] MESSAGE.eml [sender [recipient]]\n"
            "  -c CONFIG   fuglu.conf to read [debug] debugport/debugfile from (default %s/fuglu.conf)\n"
            "  -p PORT     the debug port (overrides the config)\n"
            "  -t SECONDS  how long to wait for each reply (default 120)\n"
            "Sends MESSAGE.eml to 127.0.0.1:PORT (default sender@fuglu.local -> recipient@fuglu.local),\n"
            "prints the SMTP dialogue, where the debug trace is, and the trace.\n",
            FUGLU_SYSCONFDIR);
}

static int dbg_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static int dbg_send_all(dbg_conn *c, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* One line without CRLF into line (cut at size-1). 0, or -1 on EOF/error/timeout (errno). */
static int dbg_read_line(dbg_conn *c, char *line, size_t size)
{
    double deadline = fg_monotonic() + c->timeout;
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->len);
        if (nl) {
            size_t n = (size_t)(nl - c->buf);
            size_t keep = n;
            if (keep > 0 && c->buf[keep - 1] == '\r')
                keep--;
            if (keep >= size)
                keep = size - 1;
            memcpy(line, c->buf, keep);
            line[keep] = '\0';
            memmove(c->buf, nl + 1, c->len - n - 1);
            c->len -= n + 1;
            return 0;
        }
        if (c->len == sizeof c->buf) {
            c->len = 0;   /* an absurdly long line: drop what we have */
            continue;
        }
        double left = deadline - fg_monotonic();
        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int r = poll(&p, 1, (int)(left * 1000) + 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r == 0)
                errno = ETIMEDOUT;
            return -1;
        }
        ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
        if (n == 0) {
            errno = ECONNRESET;
            return -1;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        c->len += (size_t)n;
    }
}

/* Reads one (multi-line) reply, printing each line; returns the code or -1. last gets the text of
 * the last line. */
static int dbg_reply(dbg_conn *c, char *last, size_t size)
{
    char line[1024];
    for (;;) {
        if (dbg_read_line(c, line, sizeof line) != 0) {
            fprintf(stderr, "fuglu_debug: no reply from the debug port: %s\n", strerror(errno));
            return -1;
        }
        printf("reply: %s\n", line);
        if (strlen(line) < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' || line[2] < '0' ||
            line[2] > '9') {
            fprintf(stderr, "fuglu_debug: malformed reply line: %s\n", line);
            return -1;
        }
        if (line[3] != '-') {
            snprintf(last, size, "%s", line[3] ? line + 4 : "");
            return atoi(line);
        }
    }
}

/* Sends a command and reads its reply; returns the code or -1. */
static int dbg_command(dbg_conn *c, const char *cmd, char *last, size_t size)
{
    printf("send: %s\n", cmd);
    char *wire = xasprintf("%s\r\n", cmd);
    int rc = dbg_send_all(c, wire, strlen(wire));
    free(wire);
    if (rc != 0) {
        fprintf(stderr, "fuglu_debug: cannot send to the debug port: %s\n", strerror(errno));
        return -1;
    }
    return dbg_reply(c, last, size);
}

/* The message as DATA: line ends made CRLF, leading dots doubled, ".\r\n" at the end. */
static void dbg_encode(const char *msg, size_t len, fg_buf *out)
{
    int bol = 1;
    for (size_t i = 0; i < len; i++) {
        char ch = msg[i];
        if (bol && ch == '.')
            fg_buf_append(out, ".", 1);
        bol = 0;
        if (ch == '\r' && i + 1 < len && msg[i + 1] == '\n')
            continue;
        if (ch == '\n' || ch == '\r') {
            fg_buf_append(out, "\r\n", 2);
            bol = 1;
            continue;
        }
        fg_buf_append(out, &ch, 1);
    }
    if (!bol)
        fg_buf_append(out, "\r\n", 2);
    fg_buf_append(out, ".\r\n", 3);
}

/* The first run of 32 lowercase hex digits in text (the suspect id) into id[33]. */
static int dbg_find_id(const char *text, char id[33])
{
    size_t run = 0;
    for (const char *p = text;; p++) {
        int hex = (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f');
        if (hex) {
            run++;
            continue;
        }
        if (run == 32) {
            memcpy(id, p - 32, 32);
            id[32] = '\0';
            return 0;
        }
        run = 0;
        if (!*p)
            return -1;
    }
}

/* Sends the message; returns the DATA reply code (or -1) and the reply text in last. */
static int dbg_transaction(dbg_conn *c, const char *from, const char *to, const fg_buf *data, char *last,
                           size_t size)
{
    if (dbg_reply(c, last, size) != 220) {
        fprintf(stderr, "fuglu_debug: the debug port did not greet with 220\n");
        return -1;
    }
    char *cmd = xasprintf("HELO %s", DEBUG_HELO);
    int code = dbg_command(c, cmd, last, size);
    free(cmd);
    if (code != 250)
        return -1;
    cmd = xasprintf("MAIL FROM:<%s>", from);
    code = dbg_command(c, cmd, last, size);
    free(cmd);
    if (code != 250)
        return -1;
    cmd = xasprintf("RCPT TO:<%s>", to);
    code = dbg_command(c, cmd, last, size);
    free(cmd);
    if (code != 250 && code != 251)
        return -1;
    if (dbg_command(c, "DATA", last, size) != 354)
        return -1;
    printf("send: <message, %zu bytes as DATA>\n", data->len);
    if (dbg_send_all(c, data->data, data->len) != 0) {
        fprintf(stderr, "fuglu_debug: cannot send the message: %s\n", strerror(errno));
        return -1;
    }
    code = dbg_reply(c, last, size);
    if (code > 0) {
        char quit_last[512];
        dbg_command(c, "QUIT", quit_last, sizeof quit_last);
    }
    return code;
}

static void dbg_show_trace(const char *debugfile, const char *reply)
{
    char id[33];
    if (dbg_find_id(reply, id) != 0) {
        printf("\nThe reply carries no suspect id: cannot tell which trace in %s.* is this message's.\n", debugfile);
        return;
    }
    char *path = xasprintf("%s.%s", debugfile, id);
    size_t len = 0;
    char *text = NULL;
    /* The trace is complete before the reply is sent, unless appenders still add to it: a short
     * bounded wait covers a trace written on a slow disk. */
    for (int i = 0; i < 20 && !(text = fg_read_file(path, TRACE_MAX, &len, NULL)) && errno != EFBIG; i++) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (!text) {
        printf("\nDebug trace: %s (not readable here: %s)\n", path, strerror(errno));
        free(path);
        return;
    }
    printf("\nDebug trace: %s\n----\n", path);
    fwrite(text, 1, len, stdout);
    if (len && text[len - 1] != '\n')
        putchar('\n');
    printf("----\n");
    free(text);
    free(path);
}

int main(int argc, char **argv)
{
    const char *config_path = FUGLU_SYSCONFDIR "/fuglu.conf";
    int port_override = 0, config_given = 0, opt;
    double timeout = 120;
    while ((opt = getopt(argc, argv, "c:p:t:h")) != -1) {
        switch (opt) {
        case 'c': config_path = optarg; config_given = 1; break;
        case 'p':
            port_override = atoi(optarg);
            if (port_override <= 0 || port_override > 65535) {
                fprintf(stderr, "fuglu_debug: -p %s: not a port number\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 't':
            timeout = atof(optarg);
            if (timeout <= 0) {
                fprintf(stderr, "fuglu_debug: -t %s: not a number of seconds\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'h': dbg_usage(stdout); return 0;
        default: dbg_usage(stderr); return EXIT_USAGE;
        }
    }
    if (optind >= argc || argc - optind > 3) {
        dbg_usage(stderr);
        return EXIT_USAGE;
    }
    const char *msgfile = argv[optind];
    const char *from = optind + 1 < argc ? argv[optind + 1] : "sender@fuglu.local";
    const char *to = optind + 2 < argc ? argv[optind + 2] : "recipient@fuglu.local";

    fg_config *cfg = fg_config_new();
    char *err = NULL;
    if (access(config_path, F_OK) == 0 || config_given || !port_override) {
        if (fg_config_load(cfg, config_path, true, &err) != 0) {
            fprintf(stderr, "fuglu_debug: %s\n", err);
            free(err);
            fg_config_free(cfg);
            return EXIT_USAGE;
        }
    }
    long port = DEBUG_DEFAULT_PORT;
    if (fg_config_get_int(cfg, "debug", "debugport", DEBUG_DEFAULT_PORT, &port, &err) != 0) {
        fprintf(stderr, "fuglu_debug: %s\n", err);
        free(err);
        fg_config_free(cfg);
        return EXIT_USAGE;
    }
    if (port_override)
        port = port_override;
    const char *debugfile = fg_config_get(cfg, "debug", "debugfile");
    char *trace_base = xstrdup(debugfile && *debugfile ? debugfile : DEBUG_DEFAULT_FILE);
    fg_config_free(cfg);

    size_t msglen = 0;
    char *msg = fg_read_file(msgfile, (size_t)-1, &msglen, NULL);
    if (!msg) {
        fprintf(stderr, "fuglu_debug: cannot read %s: %s\n", msgfile, strerror(errno));
        free(trace_base);
        return EXIT_USAGE;
    }
    fg_buf data;
    fg_buf_init(&data);
    dbg_encode(msg, msglen, &data);
    free(msg);

    printf("connect: 127.0.0.1 port %ld\n", port);
    dbg_conn c = {.timeout = timeout};
    c.fd = dbg_connect((int)port);
    if (c.fd < 0) {
        fprintf(stderr, "fuglu_debug: cannot connect to the debug port 127.0.0.1:%ld: %s - is fuglu running "
                        "and is the port in [main] incomingport?\n", port, strerror(errno));
        fg_buf_free(&data);
        free(trace_base);
        return EXIT_SMTP;
    }
    char last[1024] = "";
    int code = dbg_transaction(&c, from, to, &data, last, sizeof last);
    close(c.fd);
    fg_buf_free(&data);
    int status = 0;
    if (code < 0) {
        fprintf(stderr, "fuglu_debug: the SMTP dialogue with the debug port failed (last reply: %s)\n", last);
        status = EXIT_SMTP;
    } else {
        if (code >= 400) {
            fprintf(stderr, "fuglu_debug: the message was refused: %d %s\n", code, last);
            status = EXIT_REFUSED;
        }
        dbg_show_trace(trace_base, last);
    }
    free(trace_base);
    return status;
}
