/* lua_redis: the Lua module `fuglu_redis`: a Redis client for plugins (hiredis, blocking, with
 * deadlines), one connection per worker and server.
 *
 *   local redis = require "fuglu_redis"
 *   local r, err = redis.connect{ server = "127.0.0.1:6379",   -- or "[::1]:6379", "unix:/run/redis.sock"
 *                                 password = "...", username = "...", db = 0,
 *                                 timeout = 2000,                 -- ms, connect and each command
 *                                 sentinels = "127.0.0.1:26379,127.0.0.1:26380", master = "mymaster" }
 *   reply, err, kind = r:call("SET", key, value, "EX", 60)  -- binary-safe arguments
 *   replies, err = r:pipeline{ {"INCR", k}, {"EXPIRE", k, 60} } -- one round trip
 *   reply, err, kind = r:eval(script, {keys...}, {args...})   -- EVALSHA, the script loaded on NOSCRIPT
 *
 * Replies: a string (bulk and status replies), a number (integer), an array (a table, nested), or
 * redis.null for a nil reply. A server's error reply gives nil, its text ("WRONGTYPE ..."),
 * "server"; a connection failure or timeout gives nil, "redis 127.0.0.1:6379: timed out",
 * "network", and the connection is dropped: the next call connects again. In a pipeline a server
 * error is a table {err = text} in its place.
 *
 * connect() returns the connection this Lua state already has for the same options (so a plugin
 * may call it per message); it connects lazily, on the first call. With sentinels, the primary is
 * asked from each sentinel in turn (SENTINEL get-master-addr-by-name) and checked with ROLE; a
 * dropped connection asks again. Server addresses are IP addresses or unix sockets: names are not
 * looked up. Each command ends at the timeout or at the message's deadline, whichever is first.
 */
#include "lua/lua_core.h"
#include "monitor/stats.h"
#include "pool/job.h"
#include "lib/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <lauxlib.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#define REDIS_CLASS "fuglu.redis"
#define REDIS_POOL_KEY "fuglu.redis.pool"
#define REDIS_NULL_KEY "fuglu.redis.null"
#define REDIS_MAX_ARGS 1024
#define REDIS_MAX_DEPTH 8

typedef struct rclient {
    redisContext *c;
    char *server;               /* as given */
    char *sentinels, *master;   /* NULL without sentinels */
    char *password, *username;
    int db;
    int timeout_ms;
    char peer[160];             /* where it is connected (or tried), for errors */
} rclient;

/* ---- helpers ---- */

static struct timeval redis_tv(int ms)
{
    return (struct timeval){ms / 1000, (ms % 1000) * 1000};
}

/* The command timeout: the client's, cut by the message's deadline; 0 when the deadline passed. */
static int redis_budget(const rclient *r, bool *by_deadline)
{
    int ms = r->timeout_ms;
    *by_deadline = false;
    double deadline = fg_job_deadline_current();
    if (deadline > 0) {
        double left = (deadline - fg_monotonic()) * 1000.0;
        if (left < ms) {
            *by_deadline = true;
            ms = left <= 0 ? 0 : (int)left + 1;
        }
    }
    return ms;
}

/* "host:port", "[v6]:port" or "unix:/path" -> connected context or NULL with *why. */
static redisContext *redis_open(const char *spec, int ms, char peer[160], char **why)
{
    struct timeval tv = redis_tv(ms);
    redisContext *c;
    if (strncmp(spec, "unix:", 5) == 0) {
        snprintf(peer, 160, "%s", spec);
        c = redisConnectUnixWithTimeout(spec + 5, tv);
    } else {
        char host[64];
        const char *colon = strrchr(spec, ':');
        long port = colon ? strtol(colon + 1, NULL, 10) : 6379;
        size_t hl = colon ? (size_t)(colon - spec) : strlen(spec);
        if (hl >= 2 && spec[0] == '[' && spec[hl - 1] == ']')
            spec++, hl -= 2;
        if (hl >= sizeof host || port < 1 || port > 65535) {
            snprintf(peer, 160, "%.150s", spec);
            *why = xasprintf("redis %s: not IP:PORT, [IPv6]:PORT or unix:PATH", peer);
            return NULL;
        }
        memcpy(host, spec, hl);
        host[hl] = 0;
        if (strcmp(host, "localhost") == 0)
            strcpy(host, "127.0.0.1");
        unsigned char buf[16];
        bool v6 = inet_pton(AF_INET6, host, buf) == 1;
        snprintf(peer, 160, v6 ? "[%s]:%ld" : "%s:%ld", host, port);
        if (!v6 && inet_pton(AF_INET, host, buf) != 1) {
            *why = xasprintf("redis %s: not an IP address (names are not looked up)", peer);
            return NULL;
        }
        c = redisConnectWithTimeout(host, (int)port, tv);
    }
    if (!c || c->err) {
        *why = xasprintf("redis %s: %s", peer, c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return NULL;
    }
    fcntl(c->fd, F_SETFD, fcntl(c->fd, F_GETFD) | FD_CLOEXEC);   /* not for programs fuglu_proc runs */
    return c;
}

/* What went wrong on c, "timed out" for a read or write that ran out of time. */
static const char *redis_io_error(const redisContext *c)
{
    if (c->err == REDIS_ERR_IO && (strstr(c->errstr, "temporarily unavailable") || strstr(c->errstr, "timed out")))
        return "timed out";
    return c->errstr[0] ? c->errstr : "connection lost";
}

/* One command on c; the reply or NULL with *why (network) — a server error is a reply. */
static redisReply *redis_do(redisContext *c, const char *peer, int ms, char **why, int argc, const char **argv,
                            const size_t *lens)
{
    redisSetTimeout(c, redis_tv(ms > 0 ? ms : 1));
    redisReply *rep = redisCommandArgv(c, argc, argv, lens);
    if (!rep)
        *why = xasprintf("redis %s: %s", peer, redis_io_error(c));
    return rep;
}

/* Asks the sentinels for the primary; its "ip:port" (caller frees) or NULL with *why. */
static char *redis_ask_sentinels(rclient *r, int ms, char **why)
{
    char *list = xstrdup(r->sentinels), *save = NULL;
    fg_buf errors;
    fg_buf_init(&errors);
    char *found = NULL;
    for (char *s = strtok_r(list, ", ", &save); s && !found; s = strtok_r(NULL, ", ", &save)) {
        char peer[160], *e = NULL;
        redisContext *c = redis_open(s, ms, peer, &e);
        if (c) {
            const char *argv[] = {"SENTINEL", "get-master-addr-by-name", r->master};
            redisReply *rep = redis_do(c, peer, ms, &e, 3, argv, NULL);
            if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 && rep->element[0]->str &&
                rep->element[1]->str) {
                const char *ip = rep->element[0]->str;
                found = strchr(ip, ':') ? xasprintf("[%s]:%s", ip, rep->element[1]->str)
                                        : xasprintf("%s:%s", ip, rep->element[1]->str);
            } else if (rep) {
                e = xasprintf("sentinel %s does not know master '%s'", peer, r->master);
            }
            if (rep)
                freeReplyObject(rep);
            redisFree(c);
        }
        if (e) {
            fg_buf_printf(&errors, "%s%s", errors.len ? "; " : "", e);
            free(e);
        }
    }
    free(list);
    if (!found)
        *why = xasprintf("redis master '%s': no sentinel answered (%s)", r->master, errors.data ? errors.data : "none");
    fg_buf_free(&errors);
    return found;
}

/* Connects r (sentinel discovery, AUTH, SELECT) unless it is connected; 0 or -1 with *why. */
static int redis_ensure(rclient *r, int ms, char **why)
{
    if (r->c)
        return 0;
    char *target = r->sentinels ? redis_ask_sentinels(r, ms, why) : xstrdup(r->server);
    if (!target)
        return -1;
    r->c = redis_open(target, ms, r->peer, why);
    free(target);
    if (!r->c)
        return -1;
    redisReply *rep = NULL;
    if (r->password) {
        const char *argv[] = {"AUTH", r->username ? r->username : r->password, r->password};
        rep = redis_do(r->c, r->peer, ms, why, r->username ? 3 : 2, argv, NULL);
        if (rep && rep->type == REDIS_REPLY_ERROR)
            *why = xasprintf("redis %s: AUTH: %s", r->peer, rep->str);
        if (!rep || rep->type == REDIS_REPLY_ERROR)
            goto fail;
        freeReplyObject(rep);
    }
    if (r->db) {
        char db[16];
        snprintf(db, sizeof db, "%d", r->db);
        const char *argv[] = {"SELECT", db};
        rep = redis_do(r->c, r->peer, ms, why, 2, argv, NULL);
        if (rep && rep->type == REDIS_REPLY_ERROR)
            *why = xasprintf("redis %s: SELECT %d: %s", r->peer, r->db, rep->str);
        if (!rep || rep->type == REDIS_REPLY_ERROR)
            goto fail;
        freeReplyObject(rep);
    }
    if (r->sentinels) {
        /* the sentinels may lag behind a failover: only a primary will do */
        const char *argv[] = {"ROLE"};
        rep = redis_do(r->c, r->peer, ms, why, 1, argv, NULL);
        if (rep && !(rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 && rep->element[0]->str &&
                     strcmp(rep->element[0]->str, "master") == 0))
            *why = xasprintf("redis %s: the sentinels named it as master '%s' but it is not a primary", r->peer,
                             r->master);
        if (!rep || *why)
            goto fail;
        freeReplyObject(rep);
    }
    return 0;
fail:
    if (rep)
        freeReplyObject(rep);
    redisFree(r->c);
    r->c = NULL;
    return -1;
}

static void redis_drop(rclient *r)
{
    if (r->c)
        redisFree(r->c);
    r->c = NULL;
}

static void redis_push_null(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, REDIS_NULL_KEY);
}

static void redis_push_reply(lua_State *L, const redisReply *rep, int depth)
{
    switch (rep->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
        lua_pushlstring(L, rep->str, rep->len);
        break;
    case REDIS_REPLY_INTEGER:
        lua_pushnumber(L, (lua_Number)rep->integer);
        break;
    case REDIS_REPLY_ARRAY:
        lua_createtable(L, (int)rep->elements, 0);
        for (size_t i = 0; i < rep->elements; i++) {
            if (depth >= REDIS_MAX_DEPTH)
                redis_push_null(L);
            else
                redis_push_reply(L, rep->element[i], depth + 1);
            lua_rawseti(L, -2, (int)i + 1);
        }
        break;
    case REDIS_REPLY_ERROR:
        lua_createtable(L, 0, 1);
        lua_pushlstring(L, rep->str, rep->len);
        lua_setfield(L, -2, "err");
        break;
    default:
        redis_push_null(L);
    }
}

/* nil, why, "network" (why freed) */
static int redis_network_error(lua_State *L, rclient *r, char *why, bool by_deadline)
{
    redis_drop(r);
    lua_pushnil(L);
    if (by_deadline && why && strstr(why, "timed out"))
        lua_pushfstring(L, "%s (the message's scan_timeout)", why);
    else
        lua_pushstring(L, why ? why : "redis: unknown error");
    lua_pushliteral(L, "network");
    free(why);
    return 3;
}

/* The arguments at [first, top] as strings (numbers converted); at most REDIS_MAX_ARGS. */
static int redis_collect(lua_State *L, int first, int last, const char **argv, size_t *lens)
{
    int n = 0;
    for (int i = first; i <= last; i++) {
        if (n >= REDIS_MAX_ARGS)
            luaL_error(L, "redis: more than %d arguments", REDIS_MAX_ARGS);
        if (!lua_isstring(L, i))
            luaL_argerror(L, i, "a string or number");
        argv[n] = lua_tolstring(L, i, &lens[n]);   /* converts a number in place: stays alive */
        n++;
    }
    return n;
}

static rclient *redis_check(lua_State *L)
{
    return luaL_checkudata(L, 1, REDIS_CLASS);
}

/* ---- methods ---- */

static int redis_call_argv(lua_State *L, rclient *r, int argc, const char **argv, const size_t *lens)
{
    bool by_deadline;
    int ms = redis_budget(r, &by_deadline);
    char *why = NULL;
    if (ms == 0)
        return redis_network_error(L, r, xasprintf("redis %s: timed out", r->peer[0] ? r->peer : r->server), true);
    if (redis_ensure(r, ms, &why) != 0)
        return redis_network_error(L, r, why, by_deadline);
    redisReply *rep = redis_do(r->c, r->peer, ms, &why, argc, argv, lens);
    if (!rep)
        return redis_network_error(L, r, why, by_deadline);
    if (rep->type == REDIS_REPLY_ERROR) {
        lua_pushnil(L);
        lua_pushlstring(L, rep->str, rep->len);
        lua_pushliteral(L, "server");
        freeReplyObject(rep);
        return 3;
    }
    redis_push_reply(L, rep, 0);
    freeReplyObject(rep);
    return 1;
}

static int l_redis_call(lua_State *L)
{
    rclient *r = redis_check(L);
    int top = lua_gettop(L);
    luaL_argcheck(L, top >= 2, 2, "a command");
    const char **argv = lua_newuserdata(L, REDIS_MAX_ARGS * sizeof *argv);
    size_t *lens = lua_newuserdata(L, REDIS_MAX_ARGS * sizeof *lens);
    int argc = redis_collect(L, 2, top, argv, lens);
    return redis_call_argv(L, r, argc, argv, lens);
}

static int l_redis_pipeline(lua_State *L)
{
    rclient *r = redis_check(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    int n = (int)lua_objlen(L, 2);
    luaL_argcheck(L, n >= 1 && n <= 10000, 2, "1 to 10000 commands");
    bool by_deadline;
    int ms = redis_budget(r, &by_deadline);
    char *why = NULL;
    if (ms == 0)
        return redis_network_error(L, r, xasprintf("redis %s: timed out", r->peer[0] ? r->peer : r->server), true);
    /* every command is checked before anything is sent */
    const char **argv = lua_newuserdata(L, REDIS_MAX_ARGS * sizeof *argv);
    size_t *lens = lua_newuserdata(L, REDIS_MAX_ARGS * sizeof *lens);
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, 2, i);
        luaL_argcheck(L, lua_istable(L, -1) && lua_objlen(L, -1) >= 1, 2, "each command is {name, args...}");
        lua_pop(L, 1);
    }
    if (redis_ensure(r, ms, &why) != 0)
        return redis_network_error(L, r, why, by_deadline);
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, 2, i);
        int cmd = lua_gettop(L), argc = (int)lua_objlen(L, cmd);
        for (int k = 1; k <= argc; k++)
            lua_rawgeti(L, cmd, k);
        redis_collect(L, cmd + 1, cmd + argc, argv, lens);
        redisAppendCommandArgv(r->c, argc, argv, lens);
        lua_settop(L, cmd - 1);
    }
    redisSetTimeout(r->c, redis_tv(ms));
    lua_createtable(L, n, 0);
    for (int i = 1; i <= n; i++) {
        void *rep = NULL;
        if (redisGetReply(r->c, &rep) != REDIS_OK || !rep) {
            why = xasprintf("redis %s: %s", r->peer, redis_io_error(r->c));
            return redis_network_error(L, r, why, by_deadline);
        }
        redis_push_reply(L, rep, 0);
        lua_rawseti(L, -2, i);
        freeReplyObject(rep);
    }
    return 1;
}

/* r:eval(script, keys, args): EVALSHA; on NOSCRIPT the script is loaded (SCRIPT LOAD) and run. */
static int l_redis_eval(lua_State *L)
{
    rclient *r = redis_check(L);
    size_t slen;
    const char *script = luaL_checklstring(L, 2, &slen);
    int nkeys = 0, nargs = 0;
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        nkeys = (int)lua_objlen(L, 3);
    }
    if (!lua_isnoneornil(L, 4)) {
        luaL_checktype(L, 4, LUA_TTABLE);
        nargs = (int)lua_objlen(L, 4);
    }
    luaL_argcheck(L, nkeys + nargs + 3 <= REDIS_MAX_ARGS, 3, "too many keys and arguments");
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_Digest(script, slen, md, &mdlen, EVP_sha1(), NULL);
    char sha[41];
    for (unsigned int i = 0; i < mdlen && i < 20; i++)
        snprintf(sha + 2 * i, 3, "%02x", md[i]);
    char nk[16];
    snprintf(nk, sizeof nk, "%d", nkeys);
    int base = lua_gettop(L);
    lua_pushstring(L, "EVALSHA");
    lua_pushstring(L, sha);
    lua_pushstring(L, nk);
    for (int i = 1; i <= nkeys; i++)
        lua_rawgeti(L, 3, i);
    for (int i = 1; i <= nargs; i++)
        lua_rawgeti(L, 4, i);
    int top = lua_gettop(L);
    const char **argv = lua_newuserdata(L, REDIS_MAX_ARGS * sizeof *argv);
    size_t *lens = lua_newuserdata(L, REDIS_MAX_ARGS * sizeof *lens);
    int argc = redis_collect(L, base + 1, top, argv, lens);
    int nret = redis_call_argv(L, r, argc, argv, lens);
    if (nret == 3 && lua_isstring(L, -2) && strncmp(lua_tostring(L, -2), "NOSCRIPT", 8) == 0) {
        lua_pop(L, 3);
        const char *load[] = {"SCRIPT", "LOAD", script};
        size_t loadlen[] = {6, 4, slen};
        nret = redis_call_argv(L, r, 3, load, loadlen);
        if (nret == 3)
            return nret;
        lua_pop(L, 1);
        nret = redis_call_argv(L, r, argc, argv, lens);
    }
    return nret;
}

static int l_redis_close(lua_State *L)
{
    redis_drop(redis_check(L));
    return 0;
}

static int l_redis_gc(lua_State *L)
{
    rclient *r = redis_check(L);
    redis_drop(r);
    free(r->server);
    free(r->sentinels);
    free(r->master);
    free(r->password);
    free(r->username);
    memset(r, 0, sizeof *r);
    return 0;
}

static int l_redis_tostring(lua_State *L)
{
    rclient *r = redis_check(L);
    lua_pushfstring(L, "redis(%s%s)", r->sentinels ? "master " : "", r->sentinels ? r->master : r->server);
    return 1;
}

/* ---- connect ---- */

static const char *redis_opt(lua_State *L, const char *key)
{
    lua_getfield(L, 1, key);
    const char *v = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
    lua_pop(L, 1);   /* the options table keeps the string */
    return v;
}

static int l_redis_connect(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    const char *server = redis_opt(L, "server");
    const char *sentinels = redis_opt(L, "sentinels");
    const char *master = redis_opt(L, "master");
    const char *password = redis_opt(L, "password");
    const char *username = redis_opt(L, "username");
    lua_getfield(L, 1, "db");
    lua_Integer db = luaL_optinteger(L, -1, 0);
    lua_getfield(L, 1, "timeout");
    lua_Integer timeout = luaL_optinteger(L, -1, 2000);
    lua_pop(L, 2);
    luaL_argcheck(L, (server != NULL) != (sentinels != NULL), 1, "server = ADDRESS or sentinels = LIST (one of them)");
    luaL_argcheck(L, !sentinels || master, 1, "sentinels need master = NAME");
    luaL_argcheck(L, db >= 0 && db <= 100000, 1, "db: a database number");
    luaL_argcheck(L, timeout >= 1 && timeout <= 600000, 1, "timeout: 1 to 600000 ms");
    /* the pool: one client per distinct option set in this state */
    lua_pushfstring(L, "%s|%s|%s|%s|%s|%d|%d", server ? server : "", sentinels ? sentinels : "", master ? master : "",
                    username ? username : "", password ? password : "", (int)db, (int)timeout);
    int key = lua_gettop(L);
    lua_getfield(L, LUA_REGISTRYINDEX, REDIS_POOL_KEY);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, REDIS_POOL_KEY);
    }
    lua_pushvalue(L, key);
    lua_rawget(L, -2);
    if (!lua_isnil(L, -1))
        return 1;
    lua_pop(L, 1);
    rclient *r = lua_newuserdata(L, sizeof *r);
    memset(r, 0, sizeof *r);
    luaL_getmetatable(L, REDIS_CLASS);
    lua_setmetatable(L, -2);
    r->server = server ? xstrdup(server) : NULL;
    r->sentinels = sentinels ? xstrdup(sentinels) : NULL;
    r->master = master ? xstrdup(master) : NULL;
    r->password = password && *password ? xstrdup(password) : NULL;
    r->username = username && *username ? xstrdup(username) : NULL;
    r->db = (int)db;
    r->timeout_ms = (int)timeout;
    lua_pushvalue(L, key);
    lua_pushvalue(L, -2);
    lua_rawset(L, -4);
    return 1;
}

/* the network calls, counted for the running plugin (fuglu_control pluginstats, /metrics) */
static int l_redis_call_counted(lua_State *L) { return fg_lua_net_counted(L, l_redis_call, FG_STATS_NET_REDIS); }
static int l_redis_pipeline_counted(lua_State *L) { return fg_lua_net_counted(L, l_redis_pipeline, FG_STATS_NET_REDIS); }
static int l_redis_eval_counted(lua_State *L) { return fg_lua_net_counted(L, l_redis_eval, FG_STATS_NET_REDIS); }

static const luaL_Reg redis_methods[] = {
    {"call", l_redis_call_counted},
    {"pipeline", l_redis_pipeline_counted},
    {"eval", l_redis_eval_counted},
    {"close", l_redis_close},
    {NULL, NULL},
};

static const luaL_Reg redis_functions[] = {
    {"connect", l_redis_connect},
    {NULL, NULL},
};

static int l_redis_null_tostring(lua_State *L)
{
    lua_pushliteral(L, "redis.null");
    return 1;
}

int luaopen_fuglu_redis(lua_State *L)
{
    fg_lua_class_metatable(L, REDIS_CLASS, redis_methods, l_redis_gc, l_redis_tostring);
    lua_pop(L, 1);
    fg_lua_new_module(L, redis_functions);
    lua_getfield(L, LUA_REGISTRYINDEX, REDIS_NULL_KEY);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_newuserdata(L, 1);             /* a unique value, like ngx.null */
        lua_newtable(L);
        lua_pushcfunction(L, l_redis_null_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_setmetatable(L, -2);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, REDIS_NULL_KEY);
    }
    lua_setfield(L, -2, "null");
    return 1;
}
