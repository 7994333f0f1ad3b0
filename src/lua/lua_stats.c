/* lua_stats: the Lua module `fuglu_stats`, how the worker's Lua code reports to the stats module.
 *
 *   local stats = require "fuglu_stats"
 *   stats.set_state(text[, busy])            -- this worker's workerlist line
 *   stats.running(suspect_line, plugin_name) -- "<suspect_line> : Running Plugin <name>"
 *   stats.plugin_run(name, seconds, code)    -- one run of a plugin and its decision code
 *   stats.plugin_error(name, info, traceback)-- counts the error and keeps it for exceptionlist
 *   stats.exception(info, traceback)         -- a core error for exceptionlist
 *   stats.message_done{action=, deferred=, spam=, highspam=, virus=, blocked=, reinjected=, scantime=}
 *                                            -- one message's final result (the message counters)
 *   stats.reinject_failed()                  -- the outgoing host did not take a message
 *   stats.udp_send(host, port, payload)      -- one datagram (statsd); true or nil, error
 *   stats.enabled()                          -- false when the process keeps no stats (busted, lint)
 *
 * Every function is a no-op without a global fg_stats (fg_stats_set_global) or outside a worker
 * thread, so plugins can call them anywhere. udp_send takes a numeric address or "localhost" only:
 * no name is ever looked up in the DNS.
 */
#include "lua_stats.h"
#include "stats.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <lauxlib.h>
#include <lua.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int lua_stats_enabled(lua_State *L)
{
    lua_pushboolean(L, fg_stats_recording());
    return 1;
}

static int lua_stats_set_state(lua_State *L)
{
    const char *text = luaL_checkstring(L, 1);
    int busy = lua_isnoneornil(L, 2) ? 1 : lua_toboolean(L, 2);
    fg_stats_worker_set_state(fg_stats_worker_current(), text, busy);
    return 0;
}

static int lua_stats_running(lua_State *L)
{
    const char *suspect = luaL_checkstring(L, 1);
    const char *plugin = luaL_checkstring(L, 2);
    fg_stats_worker_set_plugin(fg_stats_worker_current(), suspect, plugin);
    return 0;
}

static int lua_stats_plugin_run(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    double seconds = luaL_checknumber(L, 2);
    int code = lua_isnumber(L, 3) ? (int)lua_tointeger(L, 3) : -1;
    fg_stats_plugin_run(fg_stats_global(), name, seconds, code);
    return 0;
}

static int lua_stats_plugin_error(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    const char *info = luaL_optstring(L, 2, "");
    const char *traceback = luaL_optstring(L, 3, "");
    fg_stats *s = fg_stats_global();
    fg_stats_plugin_error(s, name);
    fg_stats_exception(s, NULL, info, traceback);
    return 0;
}

static int lua_stats_exception(lua_State *L)
{
    const char *info = luaL_optstring(L, 1, "");
    const char *traceback = luaL_optstring(L, 2, "");
    fg_stats_exception(fg_stats_global(), NULL, info, traceback);
    return 0;
}

static bool lua_stats_flag(lua_State *L, const char *key)
{
    lua_getfield(L, 1, key);
    bool v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

static int lua_stats_message_done(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    fg_stats_result r = {.action = -1, .scantime = -1};
    lua_getfield(L, 1, "action");
    if (lua_isnumber(L, -1))
        r.action = (int)lua_tointeger(L, -1);
    lua_getfield(L, 1, "scantime");
    if (lua_isnumber(L, -1))
        r.scantime = lua_tonumber(L, -1);
    lua_pop(L, 2);
    r.deferred = lua_stats_flag(L, "deferred");
    r.spam = lua_stats_flag(L, "spam");
    r.highspam = lua_stats_flag(L, "highspam");
    r.virus = lua_stats_flag(L, "virus");
    r.blocked = lua_stats_flag(L, "blocked");
    r.reinjected = lua_stats_flag(L, "reinjected");
    fg_stats_message_done(fg_stats_global(), &r);
    return 0;
}

static int lua_stats_reinject_failed(lua_State *L)
{
    (void)L;
    fg_stats_reinject_failed(fg_stats_global());
    return 0;
}

static int lua_stats_udp_send(lua_State *L)
{
    const char *host = luaL_checkstring(L, 1);
    lua_Integer port = luaL_checkinteger(L, 2);
    size_t len;
    const char *payload = luaL_checklstring(L, 3, &len);
    if (port < 1 || port > 65535) {
        lua_pushnil(L);
        lua_pushfstring(L, "invalid port %d", (int)port);
        return 2;
    }
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sslen;
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        sslen = sizeof *sin;
    } else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        sslen = sizeof *sin6;
    } else {
        lua_pushnil(L);
        lua_pushfstring(L, "host %s is not a numeric address (names are not looked up)", host);
        return 2;
    }
    int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        lua_pushnil(L);
        lua_pushstring(L, strerror(errno));
        return 2;
    }
    ssize_t n = sendto(fd, payload, len, 0, (struct sockaddr *)&ss, sslen);
    int saved = errno;
    close(fd);
    if (n != (ssize_t)len) {
        lua_pushnil(L);
        lua_pushstring(L, n < 0 ? strerror(saved) : "short send");
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

int luaopen_fuglu_stats(lua_State *L)
{
    static const luaL_Reg functions[] = {
        {"enabled", lua_stats_enabled},
        {"set_state", lua_stats_set_state},
        {"running", lua_stats_running},
        {"plugin_run", lua_stats_plugin_run},
        {"plugin_error", lua_stats_plugin_error},
        {"exception", lua_stats_exception},
        {"message_done", lua_stats_message_done},
        {"reinject_failed", lua_stats_reinject_failed},
        {"udp_send", lua_stats_udp_send},
        {NULL, NULL},
    };
    lua_newtable(L);
    luaL_register(L, NULL, functions);
    return 1;
}
