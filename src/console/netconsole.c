/* netconsole: the token-protected network Lua console of the main controller. See netconsole.h.
 */
#include "console/netconsole.h"
#include "lib/config.h"
#include "console/console.h"
#include "lib/io.h"
#include "log/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <lauxlib.h>
#include <lua.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NC_LOGGER "fuglu.netconsole"
#define NC_MAX_FAILURES 3
#define NC_LOG_LINE_MAX 300

typedef struct nc_state {
    fg_console *console;
    struct evconnlistener *listener;
    struct event *expire;
    char token[33];
    char where[112];         /* "ADDR port PORT" */
    int failures;
    struct bufferevent *client;
    char peer[80];
    int authed;
    int closing;
    int session;
    unsigned long commands;
} nc_state;

static nc_state nc = {.session = LUA_NOREF};

int fg_netconsole_is_loopback(const char *addr)
{
    if (strcmp(addr, "localhost") == 0)
        return 1;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, addr, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, addr, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return 0;
}

static void nc_close_listener(void)
{
    if (nc.listener) {
        evconnlistener_free(nc.listener);
        nc.listener = NULL;
        fg_log(NC_LOGGER, FG_INFO, "netconsole on %s closed", nc.where);
    }
    if (nc.expire) {
        event_free(nc.expire);
        nc.expire = NULL;
    }
    memset(nc.token, 0, sizeof nc.token);
}

static void nc_close_client(const char *reason)
{
    if (!nc.client)
        return;
    if (nc.authed)
        fg_log(NC_LOGGER, FG_INFO, "netconsole session of %s closed (%s) after %lu inputs", nc.peer, reason,
               nc.commands);
    else
        fg_log(NC_LOGGER, FG_WARNING, "netconsole connection from %s closed before login (%s)", nc.peer, reason);
    bufferevent_free(nc.client);
    nc.client = NULL;
    if (nc.session != LUA_NOREF)
        fg_console_session_free(nc.console, nc.session);
    nc.session = LUA_NOREF;
    int was_authed = nc.authed;
    nc.authed = 0;
    nc.closing = 0;
    /* The token was for one session: once it has been used, the console is gone. */
    if (was_authed || nc.failures >= NC_MAX_FAILURES)
        nc_close_listener();
}

void fg_netconsole_stop(void)
{
    nc_close_client("shutdown");
    nc_close_listener();
}

static void nc_on_drained(struct bufferevent *bev, void *arg)
{
    (void)bev;
    nc_close_client(arg ? (const char *)arg : "closed");
}

static void nc_on_closing_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    nc_close_client(arg ? (const char *)arg : "closed");
}

/* Sends text, then closes once it is written. */
static void nc_say_and_close(const char *text, const char *reason)
{
    nc.closing = 1;
    bufferevent_disable(nc.client, EV_READ);
    bufferevent_setcb(nc.client, NULL, nc_on_drained, nc_on_closing_event, (void *)reason);
    bufferevent_write(nc.client, text, strlen(text));
}

static int nc_token_matches(const char *line)
{
    size_t n = strlen(line);
    unsigned char diff = n != 32 || !nc.token[0];
    for (size_t i = 0; i < 32; i++)
        diff |= (unsigned char)(nc.token[i] ^ (i < n ? line[i] : 0));
    return diff == 0;
}

static void nc_prompt(const char *status)
{
    const char *p = strcmp(status, "more") == 0 ? ">> " : "> ";
    bufferevent_write(nc.client, p, strlen(p));
}

static void nc_login(char *line)
{
    if (!nc_token_matches(fg_strtrim(line))) {
        nc.failures++;
        fg_log(NC_LOGGER, FG_WARNING, "netconsole: wrong token from %s (%d of %d)", nc.peer, nc.failures,
               NC_MAX_FAILURES);
        nc_say_and_close("ERR bad token\r\n", "bad token");
        return;
    }
    nc.authed = 1;
    memset(nc.token, 0, sizeof nc.token);
    if (nc.expire)
        event_del(nc.expire);
    nc.session = fg_console_session_new(nc.console);
    if (nc.session == LUA_NOREF) {
        nc_say_and_close("ERR cannot create a console session\r\n", "no session");
        return;
    }
    struct timeval idle = {NETCONSOLE_IDLE_SECONDS, 0};
    bufferevent_set_timeouts(nc.client, &idle, NULL);
    fg_log(NC_LOGGER, FG_WARNING, "netconsole session opened for %s", nc.peer);
    const char *greet = NETCONSOLE_GREETING "\r\n";
    bufferevent_write(nc.client, greet, strlen(greet));
    nc_prompt("ok");
}

static void nc_input(char *line)
{
    nc.commands++;
    fg_log(NC_LOGGER, FG_INFO, "netconsole %s input %lu: %.*s%s", nc.peer, nc.commands, NC_LOG_LINE_MAX, line,
           strlen(line) > NC_LOG_LINE_MAX ? "..." : "");
    char *word = fg_strtrim(line);
    if (strcmp(word, "exit") == 0 || strcmp(word, "quit") == 0) {
        nc_say_and_close("bye\r\n", "exit");
        return;
    }
    fg_buf out;
    fg_buf_init(&out);
    double started = fg_monotonic();
    const char *status = fg_console_eval(nc.console, nc.session, line, &out);
    double took = fg_monotonic() - started;
    if (strcmp(status, "error") == 0)
        fg_log(NC_LOGGER, FG_INFO, "netconsole %s input %lu failed after %.3f s: %.*s", nc.peer, nc.commands,
               took, NC_LOG_LINE_MAX, out.len ? out.data : "");
    /* CRLF line ends for telnet-like clients */
    fg_buf crlf;
    fg_buf_init(&crlf);
    for (size_t i = 0; i < out.len; i++) {
        if (out.data[i] == '\n' && (i == 0 || out.data[i - 1] != '\r'))
            fg_buf_append(&crlf, "\r", 1);
        fg_buf_append(&crlf, &out.data[i], 1);
    }
    if (crlf.len)
        bufferevent_write(nc.client, crlf.data, crlf.len);
    fg_buf_free(&crlf);
    fg_buf_free(&out);
    nc_prompt(status);
}

static void nc_on_read(struct bufferevent *bev, void *arg)
{
    (void)arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    while (nc.client && !nc.closing) {
        size_t n = 0;
        char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
        if (!line) {
            if (evbuffer_get_length(in) > NETCONSOLE_MAX_LINE)
                nc_say_and_close("ERR line too long\r\n", "line too long");
            return;
        }
        if (n > NETCONSOLE_MAX_LINE || memchr(line, '\0', n)) {
            free(line);
            nc_say_and_close("ERR line too long or binary\r\n", "bad input");
            return;
        }
        if (nc.authed)
            nc_input(line);
        else
            nc_login(line);
        free(line);
    }
}

static void nc_on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)arg;
    if (what & BEV_EVENT_TIMEOUT) {
        if (!nc.authed)
            nc.failures++;
        nc_say_and_close(nc.authed ? "idle timeout, bye\r\n" : "ERR no token\r\n",
                         nc.authed ? "idle timeout" : "no token in time");
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        nc_close_client((what & BEV_EVENT_EOF) ? "client closed" : "connection error");
}

static void nc_on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
    (void)l;
    (void)len;
    (void)arg;
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, host, sizeof host);
        port = ntohs(s4->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof host);
        port = ntohs(s6->sin6_port);
    }
    if (nc.client) {
        fg_log(NC_LOGGER, FG_WARNING, "netconsole: refused %s:%d, a client is connected", host, port);
        evutil_closesocket(fd);
        return;
    }
    struct event_base *base = fg_console_base(nc.console);
    nc.client = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    snprintf(nc.peer, sizeof nc.peer, "%s:%d", host, port);
    nc.authed = 0;
    nc.closing = 0;
    nc.commands = 0;
    struct timeval auth = {NETCONSOLE_AUTH_SECONDS, 0};
    bufferevent_set_timeouts(nc.client, &auth, NULL);
    bufferevent_setcb(nc.client, nc_on_read, NULL, nc_on_event, NULL);
    bufferevent_enable(nc.client, EV_READ | EV_WRITE);
    fg_log(NC_LOGGER, FG_INFO, "netconsole connection from %s", nc.peer);
}

static void nc_on_expire(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (nc.authed)
        return;
    fg_log(NC_LOGGER, FG_INFO, "netconsole token expired unused");
    nc_close_client("token expired");
    nc_close_listener();
}

static bool nc_cfg_bool(const fg_config *cfg, const char *opt)
{
    return fg_core_bool(cfg, "main", opt);   /* checked at start-up: a bad value never gets here */
}

/* Fills a sockaddr for a numeric address (or localhost); 0 or -1. */
static int nc_sockaddr(const char *addr, int port, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof *ss);
    if (strcmp(addr, "localhost") == 0)
        addr = "127.0.0.1";
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        *len = sizeof *s4;
        return 0;
    }
    if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        *len = sizeof *s6;
        return 0;
    }
    return -1;
}

void fg_netconsole_command(const fg_control_env *env, fg_buf *out, const char *args)
{
    fg_console *c = env->console;
    if (!c) {
        fg_buf_puts(out, "ERR netconsole: not available in this process");
        return;
    }
    if (env->tcp && !env->allow_tcp_netconsole) {
        fg_buf_puts(out, "ERR netconsole: not on a TCP control port, which any local user can reach (use a unix "
                         "socket controlport, or set [main] controlport_allow_netconsole=1)");
        return;
    }
    const fg_config *cfg = fg_console_config(c);
    if (!nc_cfg_bool(cfg, "netconsole")) {
        fg_buf_puts(out, "ERR netconsole: disabled (set [main] netconsole=1 to allow it)");
        return;
    }
    char portbuf[16] = "", bind[80] = "";
    int port = NETCONSOLE_DEFAULT_PORT;
    if (args && sscanf(args, "%15s %79s", portbuf, bind) >= 1) {
        char *end;
        long p = strtol(portbuf, &end, 10);
        if (*end || p <= 0 || p > 65535) {
            fg_buf_printf(out, "ERR netconsole: '%s' is not a port number", portbuf);
            return;
        }
        port = (int)p;
    }
    if (!bind[0])
        snprintf(bind, sizeof bind, "127.0.0.1");
    if (!fg_netconsole_is_loopback(bind) && !nc_cfg_bool(cfg, "netconsole_allow_remote")) {
        fg_log(NC_LOGGER, FG_WARNING, "netconsole on %s refused: not a loopback address", bind);
        fg_buf_printf(out, "ERR netconsole: %s is not a loopback address (set [main] netconsole_allow_remote=1 "
                           "to allow it)", bind);
        return;
    }
    struct sockaddr_storage ss;
    socklen_t sslen;
    if (nc_sockaddr(bind, port, &ss, &sslen) != 0) {
        fg_buf_printf(out, "ERR netconsole: '%s' is not a numeric address", bind);
        return;
    }
    if (nc.client) {
        fg_buf_printf(out, "ERR netconsole: a client (%s) is connected", nc.peer);
        return;
    }
    char *err = NULL;
    if (fg_console_controller(c, &err) != 0) {
        fg_buf_printf(out, "ERR netconsole: %s", err);
        free(err);
        return;
    }
    nc_close_listener();
    nc.console = c;
    nc.failures = 0;
    struct event_base *base = fg_console_base(c);
    nc.listener = evconnlistener_new_bind(base, nc_on_accept, NULL,
                                          LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_CLOSE_ON_FREE, 1,
                                          (struct sockaddr *)&ss, (int)sslen);
    if (!nc.listener) {
        fg_buf_printf(out, "ERR netconsole: cannot listen on %s port %d", bind, port);
        return;
    }
    fg_random_id(nc.token);
    snprintf(nc.where, sizeof nc.where, "%s port %d", bind, port);
    nc.expire = evtimer_new(base, nc_on_expire, NULL);
    struct timeval tv = {NETCONSOLE_TOKEN_SECONDS, 0};
    evtimer_add(nc.expire, &tv);
    fg_log(NC_LOGGER, FG_WARNING, "netconsole listening on %s (one session, token valid %d s)", nc.where,
           NETCONSOLE_TOKEN_SECONDS);
    fg_buf_printf(out, "Lua interactive console starting on %s\ntoken %s\n", nc.where, nc.token);
}

/* ---- the client side (fuglu_control netconsole --connect) ---- */

static int nc_client_connect(const char *addr, int port)
{
    if (strcmp(addr, "0.0.0.0") == 0)
        addr = "127.0.0.1";
    else if (strcmp(addr, "::") == 0)
        addr = "::1";
    struct sockaddr_storage ss;
    socklen_t len;
    if (nc_sockaddr(addr, port, &ss, &len) != 0)
        return -1;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&ss, len) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int fg_netconsole_client(const char *answer)
{
    char addr[80], token[40];
    int port;
    const char *start = answer ? strstr(answer, "starting on ") : NULL;
    const char *tok = answer ? strstr(answer, "\ntoken ") : NULL;
    if (!start || !tok || sscanf(start, "starting on %79s port %d", addr, &port) != 2 ||
        sscanf(tok, "\ntoken %39s", token) != 1) {
        fprintf(stderr, "fuglu_control: the daemon did not start a netconsole\n");
        return 1;
    }
    int fd = nc_client_connect(addr, port);
    if (fd < 0) {
        fprintf(stderr, "fuglu_control: cannot connect to the netconsole on %s port %d: %s\n", addr, port,
                strerror(errno));
        return 1;
    }
    char *line = xasprintf("%s\n", token);
    int rc = fg_write_all(fd, line, strlen(line));
    free(line);
    int stdin_open = 1;
    char buf[65536];
    while (rc == 0) {
        struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = STDIN_FILENO, .events = POLLIN}};
        if (poll(p, stdin_open ? 2 : 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            rc = -1;
            break;
        }
        if (p[0].revents) {
            ssize_t n = read(fd, buf, sizeof buf);
            if (n <= 0)
                break;
            if (fg_write_all(STDOUT_FILENO, buf, (size_t)n) != 0)
                break;
        }
        if (stdin_open && p[1].revents) {
            ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
            if (n <= 0) {
                stdin_open = 0;
                shutdown(fd, SHUT_WR);
            } else if (fg_write_all(fd, buf, (size_t)n) != 0) {
                rc = -1;
            }
        }
    }
    close(fd);
    return rc == 0 ? 0 : 1;
}
