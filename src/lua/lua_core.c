/* lua_core: the module list, preloading, the error handler, error collection and the guard shared
 * by the Lua layer's C files (see lua_core.h). It holds no Lua-visible function of its own except
 * the library entry luaopen_fuglu_core, which only busted and the bench scripts use.
 */
#include "lua/lua_core.h"
#include "lua/lua_filetype.h"
#include "monitor/stats.h"
#include "lib/util.h"

#include <lauxlib.h>

#define CORE_GUARD_METATABLE "fuglu.guard"

static const luaL_Reg core_modules[] = {
    {"fuglu_sys", luaopen_fuglu_sys},
    {"fuglu_config", luaopen_fuglu_config},
    {"fuglu_log", luaopen_fuglu_log},
    {"fuglu_codec", luaopen_fuglu_codec},
    {"fuglu_message", luaopen_fuglu_message},
    {"fuglu_job", luaopen_fuglu_job},
    {"fuglu_fs", luaopen_fuglu_fs},
    {"fuglu_net", luaopen_fuglu_net},
    {"fuglu_socket", luaopen_fuglu_socket},
    {"fuglu_hash", luaopen_fuglu_hash},
    {"fuglu_proc", luaopen_fuglu_proc},
    {"fuglu_shared", luaopen_fuglu_shared},
    {"fuglu_dns", luaopen_fuglu_dns},
    {"fuglu_redis", luaopen_fuglu_redis},
    {"fuglu_http", luaopen_fuglu_http},
    {"fuglu_regex", luaopen_fuglu_regex},
    {"fuglu_htmlstrip", luaopen_fuglu_htmlstrip},
    {"fuglu_stats", luaopen_fuglu_stats},
    {"fuglu_filetype", luaopen_fuglu_filetype},
    {NULL, NULL},
};

void fg_lua_preload(lua_State *L)
{
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "preload");
    for (const luaL_Reg *m = core_modules; m->name; m++) {
        lua_pushcfunction(L, m->func);
        lua_setfield(L, -2, m->name);
    }
    lua_pop(L, 2);
}

int luaopen_fuglu_core(lua_State *L)
{
    fg_lua_preload(L);
    lua_newtable(L);
    int n = 0;
    for (const luaL_Reg *m = core_modules; m->name; m++) {
        lua_pushstring(L, m->name);
        lua_rawseti(L, -2, ++n);
    }
    return 1;
}

int fg_lua_new_module(lua_State *L, const luaL_Reg *functions)
{
    lua_newtable(L);
    luaL_register(L, NULL, functions);
    return 1;
}

int fg_lua_class_metatable(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc,
                           lua_CFunction tostring)
{
    if (!luaL_newmetatable(L, name))
        return 0;
    fg_lua_new_module(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, tostring);
    lua_setfield(L, -2, "__tostring");
    return 1;
}

int fg_lua_traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
    return 1;
}

char *fg_lua_collect_errors(lua_State *L, int idx, const char *fallback)
{
    fg_buf b;
    fg_buf_init(&b);
    if (lua_type(L, idx) == LUA_TTABLE) {
        size_t n = lua_objlen(L, idx);
        for (size_t i = 1; i <= n; i++) {
            lua_rawgeti(L, idx, (int)i);
            const char *s = lua_tostring(L, -1);
            fg_buf_printf(&b, "%s%s", b.len ? "\n" : "", s ? s : "(non-string error)");
            lua_pop(L, 1);
        }
    } else if (lua_isstring(L, idx)) {
        fg_buf_puts(&b, lua_tostring(L, idx));
    }
    if (b.len == 0)
        fg_buf_puts(&b, fallback);
    return fg_buf_steal(&b, NULL);
}

static int l_core_guard_gc(lua_State *L)
{
    fg_lua_guard_release(lua_touserdata(L, 1));
    return 0;
}

fg_lua_guard *fg_lua_guard_push(lua_State *L)
{
    fg_lua_guard *guard = lua_newuserdata(L, sizeof *guard);
    guard->ptr = NULL;
    guard->release = NULL;
    if (luaL_newmetatable(L, CORE_GUARD_METATABLE)) {
        lua_pushcfunction(L, l_core_guard_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return guard;
}

void fg_lua_guard_release(fg_lua_guard *guard)
{
    if (guard && guard->ptr && guard->release)
        guard->release(guard->ptr);
    if (guard)
        guard->ptr = NULL;
}

int fg_lua_net_counted(lua_State *L, lua_CFunction f, int kind)
{
    double t0 = fg_monotonic();
    int n = f(L);
    fg_stats_net_call(kind, fg_monotonic() - t0, n >= 1 && lua_isnil(L, -n));
    return n;
}
