/* lua_socket: the Lua module `fuglu_socket`, TCP, unix stream and UDP sockets for plugins.
 *
 *   local socket = require "fuglu_socket"
 *   local s = socket.tcp()                       -- or socket.udp()
 *   s:settimeouts(connect_ms, send_ms, read_ms)  -- default 10000 each; s:settimeout(ms) sets all
 *   ok, err = s:connect(host, port)              -- "127.0.0.1", "::1", "[::1]", "localhost"
 *   ok, err = s:connect("unix:/run/clamav/clamd.ctl")
 *   n, err = s:send(data [, opts])               -- data: a string, an array of strings, or a message
 *                                                -- object (suspect.message), streamed from C
 *            opts = {chunk = N, frame = "u32be", terminate = true}: every chunk of at most N bytes
 *            preceded by its length as 4 bytes big-endian, then a zero-length frame (clamd INSTREAM)
 *   data, err, partial = s:receive(n | "*l" | "*a" [, max])  -- n bytes / a line without its CRLF /
 *                                                            -- all until the peer closes (max bytes)
 *   data, err, partial = s:receiveuntil(delimiter [, max])   -- what comes before delimiter
 *   data, err = s:receiveany(max)                -- what is there, at least one byte
 *   ok, err = s:shutdown("send")                 -- the peer reads end of file (clamd, spamd)
 *   ok, err = s:setkeepalive([idle_ms [, pool_size]])  -- back to this worker's pool, s is closed
 *   n = s:getreusedtimes()                       -- 0 for a fresh connection
 *   ok, err = s:sslhandshake{servername =, verify = true, cafile =}   -- TLS from here on (OpenSSL):
 *                                                -- the certificate and the name (servername, else
 *                                                -- the address) checked; not kept by setkeepalive
 *   s:close()
 *   UDP: s:setpeername(host, port), s:send(string), s:receive([max])
 *
 * The calls block the worker thread, as Fuglu's plugins do (concurrency comes from the number of
 * workers; doc/architecture.md says why), on a non-blocking descriptor with poll: each one ends at
 * its own timeout or at the message's deadline (scan_timeout, fg_job_deadline_current), whichever
 * is first. A network failure never raises: the call returns nil and an error naming the peer and
 * what failed ("read from 127.0.0.1:3310: timed out"); a receive that fails after some bytes came
 * returns them as the third value. Misuse (a wrong argument, a closed socket) raises.
 *
 * Names are not looked up: an address or "localhost" only (a DNS lookup through the system resolver
 * would block a worker on servers the admin did not choose).
 *
 * The keepalive pool belongs to the Lua state (one per worker): a registry userdata whose __gc closes
 * what it holds, so a retired worker leaves no descriptor behind. connect() takes a pooled connection
 * to the same peer when one is idle, still open and not past its idle time.
 */
#include "lua/lua_core.h"
#include "monitor/stats.h"
#include "lua/lua_message.h"
#include "pool/job.h"
#include "lib/util.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <errno.h>
#include <lauxlib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#define SOCKET_CLASS "fuglu.socket"
#define SOCKET_POOL_KEY "fuglu.socket.pool"
#define SOCKET_DEFAULT_MS 10000
#define SOCKET_MAX_READ (64u << 20)     /* receive("*a"), receiveuntil and lines without a max */
#define SOCKET_READ_CHUNK 16384

typedef struct sock {
    int fd;                     /* -1: not connected or closed */
    int type;                   /* SOCK_STREAM, SOCK_DGRAM */
    int connect_ms, send_ms, read_ms;
    int reused;
    char peer[160];             /* "127.0.0.1:3310", "[::1]:783", "unix:/path": errors and pool key */
    SSL *ssl;                   /* after sslhandshake: every byte goes through it */
    char *rbuf;                 /* received and not yet returned: rbuf[rpos..rlen) */
    size_t rpos, rlen, rcap;
} sock;

typedef struct pooled {
    int fd;
    int reused;
    double idle_until;          /* monotonic */
    char peer[160];
    struct pooled *next;
} pooled;

typedef struct sock_pool {
    pooled *head;
} sock_pool;

/* ---- deadlines and errors ---- */

/* ms left before the earlier of now+timeout_ms and the message's deadline; sets *by_deadline when
 * the deadline is the nearer one. */
static int sock_wait_ms(double until, bool *by_deadline)
{
    double deadline = fg_job_deadline_current();
    *by_deadline = false;
    if (deadline > 0 && deadline < until) {
        until = deadline;
        *by_deadline = true;
    }
    double left = (until - fg_monotonic()) * 1000.0;
    return left <= 0 ? 0 : left > 2e9 ? 2000000000 : (int)left + 1;
}

static int sock_fail(lua_State *L, const sock *s, const char *what, const char *why)
{
    lua_pushnil(L);
    lua_pushfstring(L, "%s %s: %s", what, s->peer[0] ? s->peer : "(not connected)", why);
    return 2;
}

/* Waits for events on s->fd until `until`; 1 ready, 0 timed out (why set), -1 error (errno). */
static int sock_poll(sock *s, short events, double until, const char **why)
{
    for (;;) {
        bool by_deadline;
        int ms = sock_wait_ms(until, &by_deadline);
        if (ms == 0) {
            *why = by_deadline ? "timed out (the message's scan_timeout)" : "timed out";
            return 0;
        }
        struct pollfd p = {.fd = s->fd, .events = events};
        int n = poll(&p, 1, ms);
        if (n > 0)
            return 1;
        if (n < 0 && errno != EINTR) {
            *why = strerror(errno);
            return -1;
        }
    }
}

/* ---- the object ---- */

static sock *sock_check(lua_State *L)
{
    return luaL_checkudata(L, 1, SOCKET_CLASS);
}

static sock *sock_check_open(lua_State *L)
{
    sock *s = sock_check(L);
    if (s->fd < 0)
        luaL_error(L, "socket: not connected (connect first, or it was closed)");
    return s;
}

static void sock_close_fd(sock *s)
{
    if (s->ssl) {
        SSL_free(s->ssl);
        s->ssl = NULL;
    }
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    s->rpos = s->rlen = 0;
}

static int sock_new(lua_State *L, int type)
{
    sock *s = lua_newuserdata(L, sizeof *s);
    memset(s, 0, sizeof *s);
    s->fd = -1;
    s->type = type;
    s->connect_ms = s->send_ms = s->read_ms = SOCKET_DEFAULT_MS;
    luaL_getmetatable(L, SOCKET_CLASS);
    lua_setmetatable(L, -2);
    return 1;
}

static int l_socket_tcp(lua_State *L) { return sock_new(L, SOCK_STREAM); }
static int l_socket_udp(lua_State *L) { return sock_new(L, SOCK_DGRAM); }

static int l_sock_gc(lua_State *L)
{
    sock *s = sock_check(L);
    sock_close_fd(s);
    free(s->rbuf);
    s->rbuf = NULL;
    return 0;
}

static int l_sock_tostring(lua_State *L)
{
    sock *s = sock_check(L);
    lua_pushfstring(L, "socket(%s%s)", s->peer[0] ? s->peer : "not connected", s->fd < 0 ? ", closed" : "");
    return 1;
}

static int sock_check_ms(lua_State *L, int idx)
{
    lua_Integer ms = luaL_checkinteger(L, idx);
    luaL_argcheck(L, ms > 0 && ms <= 86400000, idx, "a timeout in milliseconds, 1 to 86400000");
    return (int)ms;
}

static int l_sock_settimeouts(lua_State *L)
{
    sock *s = sock_check(L);
    s->connect_ms = sock_check_ms(L, 2);
    s->send_ms = sock_check_ms(L, 3);
    s->read_ms = sock_check_ms(L, 4);
    return 0;
}

static int l_sock_settimeout(lua_State *L)
{
    sock *s = sock_check(L);
    s->connect_ms = s->send_ms = s->read_ms = sock_check_ms(L, 2);
    return 0;
}

static int l_sock_getreusedtimes(lua_State *L)
{
    lua_pushinteger(L, sock_check(L)->reused);
    return 1;
}

/* ---- the keepalive pool ---- */

static int l_pool_gc(lua_State *L)
{
    sock_pool *p = lua_touserdata(L, 1);
    while (p->head) {
        pooled *e = p->head;
        p->head = e->next;
        close(e->fd);
        free(e);
    }
    return 0;
}

static sock_pool *sock_pool_get(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, SOCKET_POOL_KEY);
    sock_pool *p = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (p)
        return p;
    p = lua_newuserdata(L, sizeof *p);
    p->head = NULL;
    lua_newtable(L);
    lua_pushcfunction(L, l_pool_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, SOCKET_POOL_KEY);
    return p;
}

/* An idle pooled connection to peer that is still usable (no data and no end of file waiting),
 * removed from the pool; -1 when there is none. Expired and dead ones are closed on the way. */
static int sock_pool_take(lua_State *L, const char *peer, int *reused)
{
    sock_pool *p = sock_pool_get(L);
    double now = fg_monotonic();
    for (pooled **at = &p->head; *at;) {
        pooled *e = *at;
        bool expired = e->idle_until <= now;
        if (!expired && strcmp(e->peer, peer) != 0) {
            at = &e->next;
            continue;
        }
        *at = e->next;
        int fd = e->fd;
        int n = e->reused;
        free(e);
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (expired || poll(&pf, 1, 0) != 0) {   /* readable: the peer closed or sent unasked */
            close(fd);
            continue;
        }
        *reused = n + 1;
        return fd;
    }
    return -1;
}

static int l_sock_setkeepalive(lua_State *L)
{
    sock *s = sock_check_open(L);
    lua_Integer idle_ms = luaL_optinteger(L, 2, 60000);
    lua_Integer size = luaL_optinteger(L, 3, 8);
    luaL_argcheck(L, idle_ms > 0, 2, "idle time in milliseconds");
    luaL_argcheck(L, size > 0, 3, "pool size per peer");
    if (s->ssl) {   /* a TLS session is not pooled: closed, as a keepalive that did not happen */
        sock_close_fd(s);
        lua_pushboolean(L, 1);
        return 1;
    }
    if (s->type != SOCK_STREAM || s->rpos < s->rlen) {
        /* unread bytes would answer the next user's request: not reusable */
        sock_close_fd(s);
        return sock_fail(L, s, "keepalive for", "unread data left, connection closed");
    }
    sock_pool *p = sock_pool_get(L);
    lua_Integer same = 0;
    for (pooled *e = p->head; e; e = e->next)
        same += strcmp(e->peer, s->peer) == 0;
    if (same >= size) {
        sock_close_fd(s);
        lua_pushboolean(L, 1);
        return 1;
    }
    pooled *e = xcalloc(1, sizeof *e);
    e->fd = s->fd;
    e->reused = s->reused;
    e->idle_until = fg_monotonic() + (double)idle_ms / 1000.0;
    memcpy(e->peer, s->peer, sizeof e->peer);
    e->next = p->head;
    p->head = e;
    s->fd = -1;
    s->rpos = s->rlen = 0;
    lua_pushboolean(L, 1);
    return 1;
}

/* ---- connecting ---- */

/* The address of host:port, or unix:path; NULL with an error text. Names are not resolved. */
static const char *sock_address(const char *host, lua_Integer port, struct sockaddr_storage *ss, socklen_t *len,
                                char peer[160])
{
    memset(ss, 0, sizeof *ss);
    if (strncmp(host, "unix:", 5) == 0) {
        struct sockaddr_un *sun = (struct sockaddr_un *)ss;
        const char *path = host + 5;
        if (strlen(path) >= sizeof sun->sun_path || !*path)
            return "unix socket path empty or too long";
        sun->sun_family = AF_UNIX;
        strcpy(sun->sun_path, path);
        *len = sizeof *sun;
        snprintf(peer, 160, "unix:%s", path);
        return NULL;
    }
    if (port < 1 || port > 65535)
        return "port must be 1 to 65535";
    char h[64];
    size_t hl = strlen(host);
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']' && hl - 2 < sizeof h) {
        memcpy(h, host + 1, hl - 2);
        h[hl - 2] = 0;
    } else if (hl < sizeof h) {
        memcpy(h, host, hl + 1);
    } else {
        return "not an IP address";
    }
    if (strcmp(h, "localhost") == 0)
        strcpy(h, "127.0.0.1");
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, h, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        *len = sizeof *sin;
        snprintf(peer, 160, "%s:%d", h, (int)port);
    } else if (inet_pton(AF_INET6, h, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        *len = sizeof *sin6;
        snprintf(peer, 160, "[%s]:%d", h, (int)port);
    } else {
        return "not an IP address (names are not looked up: give the service's address)";
    }
    return NULL;
}

static int l_sock_connect(lua_State *L)
{
    sock *s = sock_check(L);
    const char *host = luaL_checkstring(L, 2);
    lua_Integer port = strncmp(host, "unix:", 5) == 0 ? 0 : luaL_checkinteger(L, 3);
    struct sockaddr_storage ss;
    socklen_t len = 0;
    char peer[160];
    const char *bad = sock_address(host, port, &ss, &len, peer);
    sock_close_fd(s);
    s->reused = 0;
    if (bad) {
        if (port)
            snprintf(s->peer, sizeof s->peer, "%.100s:%d", host, (int)port);
        else
            snprintf(s->peer, sizeof s->peer, "%.150s", host);
        return sock_fail(L, s, "connect to", bad);
    }
    memcpy(s->peer, peer, sizeof s->peer);
    if (s->type == SOCK_STREAM) {
        int fd = sock_pool_take(L, s->peer, &s->reused);
        if (fd >= 0) {
            s->fd = fd;
            lua_pushboolean(L, 1);
            return 1;
        }
    }
    s->fd = socket(ss.ss_family, s->type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0)
        return sock_fail(L, s, "connect to", strerror(errno));
    if (ss.ss_family != AF_UNIX && s->type == SOCK_STREAM) {
        int one = 1;
        setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    if (connect(s->fd, (struct sockaddr *)&ss, len) != 0) {
        if (errno != EINPROGRESS && errno != EAGAIN) {
            const char *why = strerror(errno);
            sock_close_fd(s);
            return sock_fail(L, s, "connect to", why);
        }
        const char *why = NULL;
        int r = sock_poll(s, POLLOUT, fg_monotonic() + s->connect_ms / 1000.0, &why);
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (r == 1 && getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr != 0)
            why = strerror(soerr), r = -1;
        if (r != 1) {
            sock_close_fd(s);
            return sock_fail(L, s, "connect to", why);
        }
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int l_sock_setpeername(lua_State *L)
{
    sock *s = sock_check(L);
    luaL_argcheck(L, s->type == SOCK_DGRAM, 1, "setpeername is for UDP sockets (TCP: connect)");
    return l_sock_connect(L);
}

/* ---- sending ---- */

/* Writes all of iov[0..n) (modified) before the send timeout; 0, or -1 with *why. */
/* ---- TLS ---- */

/* After a TLS call returned r <= 0: waits for what it wants (1 to retry), or 0/-1 with *why. */
static int sock_tls_wait(sock *s, int r, double until, const char **why)
{
    int e = SSL_get_error(s->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        int p = sock_poll(s, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, until, why);
        return p == 1 ? 1 : -1;
    }
    if (e == SSL_ERROR_SYSCALL && errno) {
        *why = strerror(errno);
        return -1;
    }
    unsigned long code = ERR_get_error();
    static _Thread_local char text[200];
    if (code)
        ERR_error_string_n(code, text, sizeof text);
    else
        snprintf(text, sizeof text, "TLS error %d", e);
    ERR_clear_error();
    *why = text;
    return -1;
}

static int sock_tls_write(sock *s, const char *data, size_t len, double until, const char **why)
{
    while (len > 0) {
        int chunk = len > (1 << 30) ? 1 << 30 : (int)len;
        int w = SSL_write(s->ssl, data, chunk);
        if (w > 0) {
            data += w;
            len -= (size_t)w;
        } else if (sock_tls_wait(s, w, until, why) != 1) {
            return -1;
        }
    }
    return 0;
}

/* s:sslhandshake{servername =, verify = true, cafile =} -> true | nil, err */
static int l_sock_sslhandshake(lua_State *L)
{
    sock *s = luaL_checkudata(L, 1, "fuglu.socket");
    if (s->fd < 0)
        return luaL_error(L, "socket: not connected (connect first, or it was closed)");
    luaL_argcheck(L, s->type == SOCK_STREAM && !s->ssl, 1, "a connected stream socket without TLS yet");
    const char *servername = NULL, *cafile = NULL;
    bool verify = true;
    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "servername");
        servername = luaL_optstring(L, -1, NULL);
        lua_getfield(L, 2, "cafile");
        cafile = luaL_optstring(L, -1, NULL);
        lua_getfield(L, 2, "verify");
        verify = lua_isnil(L, -1) || lua_toboolean(L, -1);
        lua_pop(L, 3);   /* the options table keeps the strings */
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return sock_fail(L, s, "TLS with", "cannot create a TLS context");
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    const char *why = NULL;
    if (verify) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        if (cafile ? SSL_CTX_load_verify_locations(ctx, cafile, NULL) != 1 : SSL_CTX_set_default_verify_paths(ctx) != 1)
            why = cafile ? "cannot load cafile" : "cannot load the system's CA certificates";
    }
    s->ssl = why ? NULL : SSL_new(ctx);
    SSL_CTX_free(ctx);   /* the SSL keeps its own reference */
    if (!s->ssl) {
        ERR_clear_error();
        return sock_fail(L, s, "TLS with", why ? why : "cannot create a TLS session");
    }
    SSL_set_fd(s->ssl, s->fd);
    /* the name checked against the certificate: servername, else the address connected to */
    char host[64] = "";
    if (!servername) {
        const char *p = s->peer;
        size_t l = strcspn(p[0] == '[' ? p + 1 : p, p[0] == '[' ? "]" : ":");
        if (l < sizeof host)
            memcpy(host, p[0] == '[' ? p + 1 : p, l), host[l] = 0;
    }
    if (servername) {
        SSL_set_tlsext_host_name(s->ssl, servername);
        SSL_set1_host(s->ssl, servername);
    } else if (verify) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s->ssl), host);
    }
    double until = fg_monotonic() + s->connect_ms / 1000.0;
    for (;;) {
        int r = SSL_connect(s->ssl);
        if (r == 1)
            break;
        if (sock_tls_wait(s, r, until, &why) != 1) {
            long v = SSL_get_verify_result(s->ssl);
            char text[300];
            snprintf(text, sizeof text, "%s%s%s", why ? why : "handshake failed", v != X509_V_OK ? ": " : "",
                     v != X509_V_OK ? X509_verify_cert_error_string(v) : "");
            SSL_free(s->ssl);
            s->ssl = NULL;
            ERR_clear_error();
            return sock_fail(L, s, "TLS with", text);
        }
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int sock_writev(sock *s, struct iovec *iov, int n, double until, const char **why)
{
    if (s->ssl) {
        for (int i = 0; i < n; i++)
            if (sock_tls_write(s, iov[i].iov_base, iov[i].iov_len, until, why) != 0)
                return -1;
        return 0;
    }
    while (n > 0) {
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(s->fd, &mh, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                *why = strerror(errno);
                return -1;
            }
            if (sock_poll(s, POLLOUT, until, why) != 1)
                return -1;
            continue;
        }
        size_t done = (size_t)w;
        while (n > 0 && done >= iov->iov_len) {
            done -= iov->iov_len;
            iov++, n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + done;
            iov->iov_len -= done;
        }
    }
    return 0;
}

/* data[0..len) in frames of at most chunk bytes, each after its 4-byte big-endian length. */
static int sock_send_framed(sock *s, const char *data, size_t len, size_t chunk, bool terminate, double until,
                            const char **why)
{
    size_t off = 0;
    while (off < len) {
        size_t n = len - off < chunk ? len - off : chunk;
        unsigned char head[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16), (unsigned char)(n >> 8),
                                 (unsigned char)n};
        struct iovec iov[2] = {{head, 4}, {(char *)data + off, n}};
        if (sock_writev(s, iov, 2, until, why) != 0)
            return -1;
        off += n;
    }
    if (terminate) {
        unsigned char zero[4] = {0, 0, 0, 0};
        struct iovec iov = {zero, 4};
        return sock_writev(s, &iov, 1, until, why);
    }
    return 0;
}

static int l_sock_send(lua_State *L)
{
    sock *s = sock_check_open(L);
    const char *data = NULL;
    size_t len = 0;
    bool is_table = false;
    if (lua_isstring(L, 2))
        data = lua_tolstring(L, 2, &len);
    else if (fg_lua_message_is(L, 2)) {
        fg_msg *m = fg_lua_message_check(L, 2);
        data = fg_msg_data(m);
        len = fg_msg_len(m);
    } else if (lua_istable(L, 2))
        is_table = true;
    else
        return luaL_argerror(L, 2, "a string, an array of strings or a message object");
    size_t chunk = 0;
    bool framed = false, terminate = false;
    if (lua_istable(L, 3)) {
        lua_getfield(L, 3, "chunk");
        lua_Integer c = luaL_optinteger(L, -1, 0);
        lua_getfield(L, 3, "frame");
        const char *frame = luaL_optstring(L, -1, NULL);
        lua_getfield(L, 3, "terminate");
        terminate = lua_toboolean(L, -1);
        lua_getfield(L, 3, "offset");
        lua_Integer off = luaL_optinteger(L, -1, 0);
        lua_getfield(L, 3, "length");
        lua_Integer cnt = luaL_optinteger(L, -1, -1);
        lua_pop(L, 5);
        /* a slice of a string or message: still sent from where its bytes lie */
        luaL_argcheck(L, !is_table || (off == 0 && cnt < 0), 3, "offset and length take one string or message");
        luaL_argcheck(L, off >= 0, 3, "offset must be 0 or more");
        if ((size_t)off > len)
            off = (lua_Integer)len;
        data += off;
        len -= (size_t)off;
        if (cnt >= 0 && (size_t)cnt < len)
            len = (size_t)cnt;
        if (frame && strcmp(frame, "u32be") != 0)
            return luaL_argerror(L, 3, "frame must be \"u32be\"");
        framed = frame != NULL;
        luaL_argcheck(L, c >= 0 && c <= (1 << 30), 3, "chunk must be 1 to 2^30 bytes");
        chunk = c > 0 ? (size_t)c : framed ? 65536 : 0;
        luaL_argcheck(L, !is_table || !framed, 3, "framing takes one string or message, not an array");
        luaL_argcheck(L, s->type == SOCK_STREAM || !framed, 3, "framing is for stream sockets");
    }
    double until = fg_monotonic() + s->send_ms / 1000.0;
    const char *why = NULL;
    int rc;
    if (s->type == SOCK_DGRAM) {
        luaL_argcheck(L, !is_table, 2, "a datagram is one string");
        ssize_t w = send(s->fd, data, len, MSG_NOSIGNAL);
        if (w < 0)
            return sock_fail(L, s, "send to", strerror(errno));
        lua_pushinteger(L, (lua_Integer)w);
        return 1;
    }
    if (is_table) {
        size_t n = lua_objlen(L, 2), total = 0;
        struct iovec *iov = lua_newuserdata(L, (n ? n : 1) * sizeof *iov);
        for (size_t i = 0; i < n; i++) {
            lua_rawgeti(L, 2, (int)i + 1);
            size_t l;
            const char *p = lua_tolstring(L, -1, &l);
            if (!p)
                return luaL_argerror(L, 2, "every element must be a string");
            lua_pop(L, 1);   /* the table keeps the string alive */
            iov[i] = (struct iovec){(void *)p, l};
            total += l;
        }
        rc = 0;
        for (size_t i = 0; rc == 0 && i < n; i += 512)   /* IOV_MAX is 1024 */
            rc = sock_writev(s, iov + i, (int)(n - i < 512 ? n - i : 512), until, &why);
        len = total;
    } else if (framed) {
        rc = sock_send_framed(s, data, len, chunk, terminate, until, &why);
    } else {
        struct iovec iov = {(void *)data, len};
        rc = sock_writev(s, &iov, 1, until, &why);
    }
    if (rc != 0)
        return sock_fail(L, s, "send to", why);
    lua_pushinteger(L, (lua_Integer)len);
    return 1;
}

static int l_sock_shutdown(lua_State *L)
{
    sock *s = sock_check_open(L);
    const char *how = luaL_optstring(L, 2, "send");
    int h = strcmp(how, "send") == 0 ? SHUT_WR : strcmp(how, "receive") == 0 ? SHUT_RD
          : strcmp(how, "both") == 0 ? SHUT_RDWR : -1;
    luaL_argcheck(L, h >= 0, 2, "\"send\", \"receive\" or \"both\"");
    if (s->ssl && h != SHUT_RD) {
        SSL_shutdown(s->ssl);   /* close_notify: the peer reads the end of the TLS stream */
        ERR_clear_error();
    }
    if (shutdown(s->fd, h) != 0)
        return sock_fail(L, s, "shutdown of", strerror(errno));
    lua_pushboolean(L, 1);
    return 1;
}

static int l_sock_close(lua_State *L)
{
    sock_close_fd(sock_check(L));
    lua_pushboolean(L, 1);
    return 1;
}

/* ---- receiving ---- */

/* Reads once more into the buffer before the read timeout: 1 got bytes, 0 end of file, -1 error or
 * timeout (*why). */
static int sock_fill(sock *s, double until, const char **why)
{
    if (s->rpos > 0 && s->rpos == s->rlen)
        s->rpos = s->rlen = 0;
    if (s->rcap - s->rlen < SOCKET_READ_CHUNK) {
        if (s->rpos > 0) {
            memmove(s->rbuf, s->rbuf + s->rpos, s->rlen - s->rpos);
            s->rlen -= s->rpos;
            s->rpos = 0;
        }
        if (s->rcap - s->rlen < SOCKET_READ_CHUNK) {
            size_t cap = s->rcap ? s->rcap * 2 : SOCKET_READ_CHUNK * 2;
            s->rbuf = xrealloc(s->rbuf, cap);
            s->rcap = cap;
        }
    }
    while (s->ssl) {
        size_t room = s->rcap - s->rlen;
        int n = SSL_read(s->ssl, s->rbuf + s->rlen, room > (1 << 30) ? 1 << 30 : (int)room);
        if (n > 0) {
            s->rlen += (size_t)n;
            return 1;
        }
        int e = SSL_get_error(s->ssl, n);
        if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0)) {
            ERR_clear_error();
            return 0;   /* close_notify, or the peer closed without one */
        }
        if (sock_tls_wait(s, n, until, why) != 1)
            return -1;
    }
    for (;;) {
        ssize_t n = recv(s->fd, s->rbuf + s->rlen, s->rcap - s->rlen, 0);
        if (n > 0) {
            s->rlen += (size_t)n;
            return 1;
        }
        if (n == 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            *why = strerror(errno);
            return -1;
        }
        if (sock_poll(s, POLLIN, until, why) != 1)
            return -1;
    }
}

/* Pushes rbuf[rpos..rpos+n) and consumes n + skip bytes. */
static void sock_take(lua_State *L, sock *s, size_t n, size_t skip)
{
    lua_pushlstring(L, s->rbuf + s->rpos, n);
    s->rpos += n + skip;
}

/* nil, err, what was received (consumed) */
static int sock_fail_partial(lua_State *L, sock *s, const char *why)
{
    sock_fail(L, s, "read from", why);
    sock_take(L, s, s->rlen - s->rpos, 0);
    return 3;
}

static size_t sock_check_max(lua_State *L, int idx)
{
    lua_Integer max = luaL_optinteger(L, idx, SOCKET_MAX_READ);
    luaL_argcheck(L, max > 0, idx, "a positive byte count");
    return (size_t)max;
}

/* Reads until delim[0..dl) is buffered (or, with dl == 0, until end of file); returns what comes
 * before it. line: also drop a CR before the delimiter (LF). */
static int sock_read_until(lua_State *L, sock *s, const char *delim, size_t dl, size_t max, bool line)
{
    double until = fg_monotonic() + s->read_ms / 1000.0;
    size_t scanned = 0;   /* bytes after rpos known not to start a delimiter */
    for (;;) {
        size_t have = s->rlen - s->rpos;
        if (dl > 0 && have >= dl) {
            const char *base = s->rbuf + s->rpos;
            const char *hit = memmem(base + scanned, have - scanned, delim, dl);
            if (hit) {
                size_t n = (size_t)(hit - base);
                if (n > max)
                    return sock_fail_partial(L, s, "too much data before the delimiter");
                size_t keep = line && n > 0 && base[n - 1] == '\r' ? n - 1 : n;
                sock_take(L, s, keep, n - keep + dl);
                return 1;
            }
            scanned = have - dl + 1;
        }
        if (have > max + dl)
            return sock_fail_partial(L, s, dl ? "too much data before the delimiter" : "more data than the maximum");
        const char *why = NULL;
        int r = sock_fill(s, until, &why);
        if (r == 0) {
            if (dl == 0) {
                sock_take(L, s, s->rlen - s->rpos, 0);
                return 1;
            }
            return sock_fail_partial(L, s, "closed by the peer");
        }
        if (r < 0)
            return sock_fail_partial(L, s, why);
    }
}

static int l_sock_receive(lua_State *L)
{
    sock *s = sock_check_open(L);
    if (s->type == SOCK_DGRAM) {
        size_t max = (size_t)luaL_optinteger(L, 2, 65536);
        luaL_argcheck(L, max > 0 && max <= 65536, 2, "datagram size 1 to 65536");
        char *buf = xmalloc(max);
        const char *why = NULL;
        double until = fg_monotonic() + s->read_ms / 1000.0;
        for (;;) {
            ssize_t n = recv(s->fd, buf, max, 0);
            if (n >= 0) {
                lua_pushlstring(L, buf, (size_t)n);
                free(buf);
                return 1;
            }
            if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
                why = strerror(errno);
            else if (errno == EINTR || sock_poll(s, POLLIN, until, &why) == 1)
                continue;
            free(buf);
            return sock_fail(L, s, "read from", why);
        }
    }
    if (lua_type(L, 2) == LUA_TNUMBER) {
        lua_Integer want = lua_tointeger(L, 2);
        luaL_argcheck(L, want >= 0 && want <= (lua_Integer)SOCKET_MAX_READ * 16, 2, "byte count out of range");
        double until = fg_monotonic() + s->read_ms / 1000.0;
        while (s->rlen - s->rpos < (size_t)want) {
            const char *why = NULL;
            int r = sock_fill(s, until, &why);
            if (r <= 0)
                return sock_fail_partial(L, s, r == 0 ? "closed by the peer" : why);
        }
        sock_take(L, s, (size_t)want, 0);
        return 1;
    }
    const char *pattern = luaL_optstring(L, 2, "*l");
    size_t max = sock_check_max(L, 3);
    if (strcmp(pattern, "*l") == 0 || strcmp(pattern, "l") == 0)
        return sock_read_until(L, s, "\n", 1, max, true);
    if (strcmp(pattern, "*a") == 0 || strcmp(pattern, "a") == 0)
        return sock_read_until(L, s, NULL, 0, max, false);
    return luaL_argerror(L, 2, "a byte count, \"*l\" or \"*a\"");
}

static int l_sock_receiveuntil(lua_State *L)
{
    sock *s = sock_check_open(L);
    size_t dl;
    const char *delim = luaL_checklstring(L, 2, &dl);
    luaL_argcheck(L, dl > 0, 2, "an empty delimiter");
    luaL_argcheck(L, s->type == SOCK_STREAM, 1, "a stream socket");
    return sock_read_until(L, s, delim, dl, sock_check_max(L, 3), false);
}

static int l_sock_receiveany(lua_State *L)
{
    sock *s = sock_check_open(L);
    lua_Integer max = luaL_checkinteger(L, 2);
    luaL_argcheck(L, max > 0, 2, "a positive byte count");
    luaL_argcheck(L, s->type == SOCK_STREAM, 1, "a stream socket (UDP: receive)");
    if (s->rlen == s->rpos) {
        const char *why = NULL;
        int r = sock_fill(s, fg_monotonic() + s->read_ms / 1000.0, &why);
        if (r <= 0)
            return sock_fail(L, s, "read from", r == 0 ? "closed by the peer" : why);
    }
    size_t have = s->rlen - s->rpos;
    sock_take(L, s, have < (size_t)max ? have : (size_t)max, 0);
    return 1;
}

/* the network calls, counted for the running plugin (fuglu_control pluginstats, /metrics) */
static int l_sock_sslhandshake_counted(lua_State *L) { return fg_lua_net_counted(L, l_sock_sslhandshake, FG_STATS_NET_SOCKET); }
static int l_sock_connect_counted(lua_State *L) { return fg_lua_net_counted(L, l_sock_connect, FG_STATS_NET_SOCKET); }
static int l_sock_send_counted(lua_State *L) { return fg_lua_net_counted(L, l_sock_send, FG_STATS_NET_SOCKET); }
static int l_sock_receive_counted(lua_State *L) { return fg_lua_net_counted(L, l_sock_receive, FG_STATS_NET_SOCKET); }
static int l_sock_receiveuntil_counted(lua_State *L) { return fg_lua_net_counted(L, l_sock_receiveuntil, FG_STATS_NET_SOCKET); }
static int l_sock_receiveany_counted(lua_State *L) { return fg_lua_net_counted(L, l_sock_receiveany, FG_STATS_NET_SOCKET); }

static const luaL_Reg sock_methods[] = {
    {"settimeouts", l_sock_settimeouts},
    {"settimeout", l_sock_settimeout},
    {"connect", l_sock_connect_counted},
    {"setpeername", l_sock_setpeername},
    {"send", l_sock_send_counted},
    {"receive", l_sock_receive_counted},
    {"receiveuntil", l_sock_receiveuntil_counted},
    {"receiveany", l_sock_receiveany_counted},
    {"shutdown", l_sock_shutdown},
    {"setkeepalive", l_sock_setkeepalive},
    {"sslhandshake", l_sock_sslhandshake_counted},
    {"getreusedtimes", l_sock_getreusedtimes},
    {"close", l_sock_close},
    {NULL, NULL},
};

static const luaL_Reg socket_functions[] = {
    {"tcp", l_socket_tcp},
    {"udp", l_socket_udp},
    {NULL, NULL},
};

int luaopen_fuglu_socket(lua_State *L)
{
    fg_lua_class_metatable(L, SOCKET_CLASS, sock_methods, l_sock_gc, l_sock_tostring);
    lua_pop(L, 1);
    return fg_lua_new_module(L, socket_functions);
}
