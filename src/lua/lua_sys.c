/* lua_sys: the Lua module `fuglu_sys`: what the process and its host give, read-only: the engine's
 * version, the wall and monotonic clocks, suspect ids and the host name.
 *
 *   local sys = require "fuglu_sys"
 *   sys.version, sys.now(), sys.monotonic(), sys.random_id(), sys.hostname()
 *
 * The clocks stay plain C functions rather than FFI calls: measured in doc/performance.md, the
 * difference per message is far below what a benchmark can see, and FFI calls are slower where the
 * JIT is off (the console's controller state).
 */
#include "lua/lua_core.h"
#include "lib/util.h"

#include <lauxlib.h>

static int l_sys_now(lua_State *L)
{
    lua_pushnumber(L, fg_now());
    return 1;
}

static int l_sys_monotonic(lua_State *L)
{
    lua_pushnumber(L, fg_monotonic());
    return 1;
}

static int l_sys_random_id(lua_State *L)
{
    char id[33];
    fg_random_id(id);
    lua_pushstring(L, id);
    return 1;
}

static int l_sys_hostname(lua_State *L)
{
    lua_pushstring(L, fg_hostname());
    return 1;
}

static const luaL_Reg sys_functions[] = {
    {"now", l_sys_now},
    {"monotonic", l_sys_monotonic},
    {"random_id", l_sys_random_id},
    {"hostname", l_sys_hostname},
    {NULL, NULL},
};

int luaopen_fuglu_sys(lua_State *L)
{
    fg_lua_new_module(L, sys_functions);
    lua_pushliteral(L, FUGLU_CORE_VERSION);
    lua_setfield(L, -2, "version");
    return 1;
}
