/* lua_config: the Lua module `fuglu_config`: what config.c knows about the core options, for
 * lua/fuglu/config.lua (defaults of options a config leaves out) and the lint.
 *
 *   local cconf = require "fuglu_config"
 *   cconf.core_options()   -> {section = {option = {default=, type=, min=, max=, description=}}}
 */
#include "lib/config.h"
#include "lua/lua_core.h"

#include <lauxlib.h>

/* core_options(): config.c's table of core options, {section = {option = {default =, type =
 * "string"|"int"|"bool"|"double", min =, max =, description =}}}: the one source of their defaults
 * (lua/fuglu/config.lua falls back to it). */
static int l_config_core_options(lua_State *L)
{
    static const char *const types[] = {"string", "int", "bool", "double"};
    lua_newtable(L);
    for (const fg_config_default *d = fg_core_defaults; d->section; d++) {
        lua_getfield(L, -1, d->section);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            lua_newtable(L);
            lua_pushvalue(L, -1);
            lua_setfield(L, -3, d->section);
        }
        lua_newtable(L);
        lua_pushstring(L, d->value);
        lua_setfield(L, -2, "default");
        lua_pushstring(L, types[d->type]);
        lua_setfield(L, -2, "type");
        lua_pushstring(L, d->description);
        lua_setfield(L, -2, "description");
        if (d->type == FG_OPT_INT || d->type == FG_OPT_DOUBLE) {
            lua_pushnumber(L, d->min);
            lua_setfield(L, -2, "min");
            lua_pushnumber(L, d->max);
            lua_setfield(L, -2, "max");
        }
        lua_setfield(L, -2, d->option);
        lua_pop(L, 1);
    }
    return 1;
}

static const luaL_Reg config_functions[] = {
    {"core_options", l_config_core_options},
    {NULL, NULL},
};

int luaopen_fuglu_config(lua_State *L)
{
    return fg_lua_new_module(L, config_functions);
}
