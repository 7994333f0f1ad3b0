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
 *   stats.enabled()                          -- false when the process keeps no stats (busted, lint)
 *
 * Each call records into the calling worker thread's fg_stats (fg_stats_current) or, in a process
 * worker, goes to the parent (the forwarder); anywhere else (the main thread, busted, lint) it does
 * nothing, so plugins can call them anywhere. enabled() answers for the moment it is called.
 */
#include "lua/lua_core.h"
#include "monitor/stats.h"

#include <stdbool.h>
#include <lauxlib.h>
#include <lua.h>

static int l_stats_enabled(lua_State *L)
{
    lua_pushboolean(L, fg_stats_recording());
    return 1;
}

static int l_stats_set_state(lua_State *L)
{
    const char *text = luaL_checkstring(L, 1);
    int busy = lua_isnoneornil(L, 2) ? 1 : lua_toboolean(L, 2);
    fg_stats_worker_set_state(fg_stats_worker_current(), text, busy);
    return 0;
}

static int l_stats_running(lua_State *L)
{
    const char *suspect = luaL_checkstring(L, 1);
    const char *plugin = luaL_checkstring(L, 2);
    fg_stats_worker_set_plugin(fg_stats_worker_current(), suspect, plugin);
    return 0;
}

static int l_stats_plugin_run(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    double seconds = luaL_checknumber(L, 2);
    int code = lua_isnumber(L, 3) ? (int)lua_tointeger(L, 3) : -1;
    fg_stats_plugin_run(fg_stats_current(), name, seconds, code);
    return 0;
}

static int l_stats_plugin_error(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    const char *info = luaL_optstring(L, 2, "");
    const char *traceback = luaL_optstring(L, 3, "");
    fg_stats *s = fg_stats_current();
    fg_stats_plugin_error(s, name);
    fg_stats_exception(s, NULL, info, traceback);
    return 0;
}

static int l_stats_exception(lua_State *L)
{
    const char *info = luaL_optstring(L, 1, "");
    const char *traceback = luaL_optstring(L, 2, "");
    fg_stats_exception(fg_stats_current(), NULL, info, traceback);
    return 0;
}

static bool stats_flag(lua_State *L, const char *key)
{
    lua_getfield(L, 1, key);
    bool v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

static int l_stats_message_done(lua_State *L)
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
    r.deferred = stats_flag(L, "deferred");
    r.spam = stats_flag(L, "spam");
    r.highspam = stats_flag(L, "highspam");
    r.virus = stats_flag(L, "virus");
    r.blocked = stats_flag(L, "blocked");
    r.reinjected = stats_flag(L, "reinjected");
    fg_stats_message_done(fg_stats_current(), &r);
    return 0;
}

static int l_stats_reinject_failed(lua_State *L)
{
    (void)L;
    fg_stats_reinject_failed(fg_stats_current());
    return 0;
}

static const luaL_Reg stats_functions[] = {
    {"enabled", l_stats_enabled},
    {"set_state", l_stats_set_state},
    {"running", l_stats_running},
    {"plugin_run", l_stats_plugin_run},
    {"plugin_error", l_stats_plugin_error},
    {"exception", l_stats_exception},
    {"message_done", l_stats_message_done},
    {"reinject_failed", l_stats_reinject_failed},
    {NULL, NULL},
};

int luaopen_fuglu_stats(lua_State *L)
{
    return fg_lua_new_module(L, stats_functions);
}
