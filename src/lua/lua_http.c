/* lua_http: the Lua module `fuglu_http`: HTTP and HTTPS requests for plugins (libcurl), one
 * handle per worker so connections are reused. lua/fuglu/http.lua wraps it (names through
 * fuglu.dns).
 *
 *   local chttp = require "fuglu_http"
 *   local res, err = chttp.request{
 *       method = "POST",                          -- GET (default), POST, PUT, DELETE, HEAD, PATCH
 *       url = "https://scanner.example:8443/scan",
 *       resolve = "192.0.2.10",                   -- the address of the URL's host (required for a name)
 *       headers = { ["Content-Type"] = "message/rfc822" },
 *       body = suspect.message,                   -- a string or a message object (sent from C)
 *       timeout = 10000, connect_timeout = 3000,  -- ms
 *       verify = true,                            -- TLS: certificate and host name (default on)
 *       cafile = "/etc/ssl/local-ca.pem",         -- trust these CAs instead of the system's
 *       maxbody = 16777216,                       -- bytes of response body kept at most
 *   }
 *   res = { status = 200, headers = { ["content-type"] = "..." }, body = "..." }
 *
 * Header names in res.headers are lower case; a repeated header's values are joined with ", ".
 * Any HTTP status is a result (the caller judges 4xx and 5xx); nil, err is for what prevented an
 * answer: "http POST https://...: Timeout was reached", "...: SSL certificate problem: ...",
 * "...: response body over 16777216 bytes". Redirects are not followed. The URL's host must be an
 * IP address, localhost, or come with `resolve`: libcurl never asks the system's resolver. The
 * call blocks the worker and ends at its timeout or the message's deadline, whichever is first.
 */
#include "lua/lua_core.h"
#include "monitor/stats.h"
#include "lua/lua_message.h"
#include "pool/job.h"
#include "lib/util.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <lauxlib.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HTTP_HANDLE_KEY "fuglu.http.handle"
#define HTTP_DEFAULT_MAXBODY (16u << 20)

static pthread_once_t http_once = PTHREAD_ONCE_INIT;
static CURLcode http_init_status;
static void http_library_init(void) { http_init_status = curl_global_init(CURL_GLOBAL_DEFAULT); }

typedef struct http_handle {
    CURL *curl;
} http_handle;

typedef struct http_response {
    fg_buf body;
    fg_buf headers;
    size_t maxbody;
    bool too_big;
} http_response;

static int l_handle_gc(lua_State *L)
{
    http_handle *h = lua_touserdata(L, 1);
    if (h->curl)
        curl_easy_cleanup(h->curl);
    h->curl = NULL;
    return 0;
}

/* This state's handle, made on first use (its connection cache lives as long as the state). */
static CURL *http_handle_get(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, HTTP_HANDLE_KEY);
    http_handle *h = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (h && h->curl)
        return h->curl;
    pthread_once(&http_once, http_library_init);
    if (http_init_status != CURLE_OK)
        return NULL;
    h = lua_newuserdata(L, sizeof *h);
    h->curl = curl_easy_init();
    lua_newtable(L);
    lua_pushcfunction(L, l_handle_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, HTTP_HANDLE_KEY);
    return h->curl;
}

static size_t http_write(char *data, size_t size, size_t n, void *arg)
{
    http_response *r = arg;
    size_t len = size * n;
    if (r->body.len + len > r->maxbody) {
        r->too_big = true;
        return 0;   /* curl stops with CURLE_WRITE_ERROR */
    }
    fg_buf_append(&r->body, data, len);
    return len;
}

/* One header line, kept in C ("name\0value\0" pairs; no Lua call inside libcurl's callback, where
 * an error could not unwind); a status line starts a new set (after 100 Continue, say). */
static size_t http_header(char *data, size_t size, size_t n, void *arg)
{
    http_response *r = arg;
    size_t len = size * n;
    if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        fg_buf_clear(&r->headers);
        return len;
    }
    const char *colon = memchr(data, ':', len);
    if (!colon || colon == data || (size_t)(colon - data) > 127 || r->headers.len > (1u << 20))
        return len;
    const char *v = colon + 1, *end = data + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    for (const char *p = data; p < colon; p++) {
        char ch = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
        fg_buf_append(&r->headers, &ch, 1);
    }
    fg_buf_append(&r->headers, "", 1);
    fg_buf_append(&r->headers, v, (size_t)(end - v));
    fg_buf_append(&r->headers, "", 1);
    return len;
}

/* The collected headers as a table: lower-case names, repeated ones joined with ", ". */
static void http_push_headers(lua_State *L, const fg_buf *h)
{
    lua_newtable(L);
    size_t p = 0;
    while (p < h->len) {
        const char *name = h->data + p;
        size_t nl = strlen(name);
        const char *value = name + nl + 1;
        size_t vl = strlen(value);
        p += nl + vl + 2;
        lua_pushlstring(L, name, nl);
        lua_pushvalue(L, -1);
        lua_rawget(L, -3);
        if (lua_isstring(L, -1)) {
            lua_pushliteral(L, ", ");
            lua_pushlstring(L, value, vl);
            lua_concat(L, 3);
        } else {
            lua_pop(L, 1);
            lua_pushlstring(L, value, vl);
        }
        lua_rawset(L, -3);
    }
}

static bool http_is_ip(const char *host)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1 ||
           strcmp(host, "localhost") == 0;
}

static int http_fail(lua_State *L, const char *method, const char *url, const char *why)
{
    lua_pushnil(L);
    lua_pushfstring(L, "http %s %s: %s", method, url, why);
    return 2;
}

static const char *http_field(lua_State *L, const char *key)
{
    lua_getfield(L, 1, key);
    const char *v = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
    lua_pop(L, 1);   /* the options table keeps it */
    return v;
}

static long http_ms(lua_State *L, const char *key, long def)
{
    lua_getfield(L, 1, key);
    lua_Integer v = luaL_optinteger(L, -1, def);
    lua_pop(L, 1);
    luaL_argcheck(L, v >= 1 && v <= 3600000, 1, "timeouts: 1 to 3600000 ms");
    return (long)v;
}

static int l_http_request(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    const char *url = http_field(L, "url");
    luaL_argcheck(L, url != NULL, 1, "url = \"http://...\"");
    const char *method = http_field(L, "method");
    if (!method)
        method = "GET";
    static const char *const methods[] = {"GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", NULL};
    bool known = false;
    for (int i = 0; methods[i]; i++)
        known |= strcmp(method, methods[i]) == 0;
    luaL_argcheck(L, known, 1, "method: GET, POST, PUT, DELETE, HEAD or PATCH");
    const char *resolve = http_field(L, "resolve");
    const char *cafile = http_field(L, "cafile");
    long timeout = http_ms(L, "timeout", 10000), connect_timeout = http_ms(L, "connect_timeout", 3000);
    lua_getfield(L, 1, "verify");
    bool verify = lua_isnil(L, -1) || lua_toboolean(L, -1);
    lua_getfield(L, 1, "maxbody");
    lua_Integer maxbody = luaL_optinteger(L, -1, HTTP_DEFAULT_MAXBODY);
    lua_pop(L, 2);
    luaL_argcheck(L, maxbody >= 0, 1, "maxbody: bytes");
    size_t body_len = 0;
    lua_getfield(L, 1, "body");
    const char *body = fg_lua_bytes(L, -1, &body_len, "body");
    lua_pop(L, 1);   /* the options table keeps the body alive */

    /* the host: an address, or the address given for a name; never the system resolver */
    CURLU *u = curl_url();
    char *host = NULL, *scheme = NULL, *port = NULL;
    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        curl_free(host), curl_free(scheme), curl_free(port), curl_url_cleanup(u);
        return http_fail(L, method, url, "not a valid http or https URL");
    }
    char hostbuf[256];
    snprintf(hostbuf, sizeof hostbuf, "%s", host);
    size_t hl = strlen(hostbuf);
    if (hl >= 2 && hostbuf[0] == '[' && hostbuf[hl - 1] == ']') {   /* [v6] */
        memmove(hostbuf, hostbuf + 1, hl - 2);
        hostbuf[hl - 2] = 0;
    }
    bool https = strcasecmp(scheme, "https") == 0, plain = strcasecmp(scheme, "http") == 0;
    char resolve_entry[400];
    snprintf(resolve_entry, sizeof resolve_entry, "%s:%s:%s", host, port, resolve ? resolve : "");
    curl_free(host), curl_free(scheme), curl_free(port), curl_url_cleanup(u);
    if (!https && !plain)
        return http_fail(L, method, url, "only http and https URLs");
    if (resolve && !http_is_ip(resolve))
        return http_fail(L, method, url, "resolve must be an IP address");
    if (!resolve && !http_is_ip(hostbuf))
        return http_fail(L, method, url, "the host is a name: give its address as resolve = IP "
                                         "(fuglu.http looks it up through fuglu.dns)");

    CURL *c = http_handle_get(L);
    if (!c)
        return http_fail(L, method, url, "libcurl could not be initialised");
    double deadline = fg_job_deadline_current();
    bool by_deadline = false;
    if (deadline > 0) {
        double left = (deadline - fg_monotonic()) * 1000.0;
        if (left < timeout) {
            by_deadline = true;
            timeout = left < 1 ? 1 : (long)left;
        }
        if (connect_timeout > timeout)
            connect_timeout = timeout;
    }
    http_response resp = {.maxbody = (size_t)maxbody};
    fg_buf_init(&resp.body);
    fg_buf_init(&resp.headers);
    struct curl_slist *hdrs = NULL, *res_list = NULL;
    lua_getfield(L, 1, "headers");
    if (lua_istable(L, -1)) {
        for (lua_pushnil(L); lua_next(L, -2); lua_pop(L, 1)) {
            if (lua_type(L, -2) != LUA_TSTRING)
                continue;
            const char *k = lua_tostring(L, -2);
            if (strpbrk(k, "\r\n:"))
                continue;   /* no header injection */
            /* a value or an array of values (the header repeated, e.g. rspamd's Rcpt) */
            int n = lua_istable(L, -1) ? (int)lua_objlen(L, -1) : 1;
            for (int i = 1; i <= n && i <= 1000; i++) {
                if (lua_istable(L, -1))
                    lua_rawgeti(L, -1, i);
                else
                    lua_pushvalue(L, -1);
                const char *v = lua_isstring(L, -1) ? lua_tostring(L, -1) : NULL;
                if (v && !strpbrk(v, "\r\n")) {
                    char *line = xasprintf("%s: %s", k, v);
                    hdrs = curl_slist_append(hdrs, line);
                    free(line);
                }
                lua_pop(L, 1);
            }
        }
    }
    lua_pop(L, 1);
    if (resolve)
        res_list = curl_slist_append(NULL, resolve_entry);

    curl_easy_reset(c);   /* options back to defaults; the connection cache stays */
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, verify ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
    if (cafile)
        curl_easy_setopt(c, CURLOPT_CAINFO, cafile);
    if (res_list)
        curl_easy_setopt(c, CURLOPT_RESOLVE, res_list);
    if (hdrs)
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, http_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &resp);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "fuglu-ng");
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET") != 0)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);   /* not copied: the bytes stay where they are */
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(c, CURLOPT_RESOLVE, NULL);
    curl_slist_free_all(hdrs);
    curl_slist_free_all(res_list);
    if (rc != CURLE_OK) {
        char why[300];
        if (resp.too_big)
            snprintf(why, sizeof why, "response body over %zu bytes", resp.maxbody);
        else
            snprintf(why, sizeof why, "%s%s", curl_easy_strerror(rc),
                     by_deadline && rc == CURLE_OPERATION_TIMEDOUT ? " (the message's scan_timeout)" : "");
        fg_buf_free(&resp.body);
        fg_buf_free(&resp.headers);
        return http_fail(L, method, url, why);
    }
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, status);
    lua_setfield(L, -2, "status");
    lua_pushlstring(L, resp.body.data ? resp.body.data : "", resp.body.len);
    fg_buf_free(&resp.body);
    lua_setfield(L, -2, "body");
    http_push_headers(L, &resp.headers);
    fg_buf_free(&resp.headers);
    lua_setfield(L, -2, "headers");
    return 1;
}

/* the network calls, counted for the running plugin (fuglu_control pluginstats, /metrics) */
static int l_http_request_counted(lua_State *L) { return fg_lua_net_counted(L, l_http_request, FG_STATS_NET_HTTP); }

static const luaL_Reg http_functions[] = {
    {"request", l_http_request_counted},
    {NULL, NULL},
};

int luaopen_fuglu_http(lua_State *L)
{
    return fg_lua_new_module(L, http_functions);
}
