/* lua_log: the Lua module `fuglu_log`: log records from Lua into the engine's logging (log.h).
 * lua/fuglu/log.lua builds named loggers on it; plugins use those.
 *
 *   local clog = require "fuglu_log"
 *   clog.enabled(logger, level)      -- whether level is enabled for that logger name
 *   clog.write(logger, level, text)  -- one record (10 DEBUG, 20 INFO, 30 WARNING, 40 ERROR, 50 CRITICAL)
 *
 * Both stay plain C functions rather than FFI calls (doc/performance.md has the measurement).
 */
#include "lua/lua_core.h"
#include "log/log.h"

#include <lauxlib.h>

static int l_log_write(lua_State *L)
{
    const char *logger = luaL_checkstring(L, 1);
    int level = (int)luaL_checkinteger(L, 2);
    const char *text = luaL_checkstring(L, 3);
    fg_log(logger, level, "%s", text);
    return 0;
}

static int l_log_enabled(lua_State *L)
{
    const char *logger = luaL_checkstring(L, 1);
    int level = (int)luaL_checkinteger(L, 2);
    lua_pushboolean(L, fg_log_enabled(logger, level));
    return 1;
}

static const luaL_Reg log_functions[] = {
    {"write", l_log_write},
    {"enabled", l_log_enabled},
    {NULL, NULL},
};

int luaopen_fuglu_log(lua_State *L)
{
    return fg_lua_new_module(L, log_functions);
}
