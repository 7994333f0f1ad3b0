/* fuglu_suspectfilter: lists which rules of a rule file match a message (Fuglu's tool of the same
 * name). A small launcher: it makes a Lua state as a worker gets one (every C module
 * preloaded) and runs lua/fuglu/tools/suspectfilter.lua with the command line.
 *
 *   fuglu_suspectfilter RULEFILE MESSAGE.eml [-D]
 *
 * The Lua directory is found as the daemon finds it (fg_lua_find_luadir).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "lua/lua_core.h"
#include "lua/lua_worker.h"
#include "lib/util.h"

int main(int argc, char **argv)
{
    char *luadir = fg_lua_find_luadir();
    fg_lua_env env = {.luadir = luadir};
    lua_State *L = fg_lua_new_state(&env); /* every C module preloaded */

    lua_pushcfunction(L, fg_lua_traceback);
    int tb = lua_gettop(L);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "fuglu.tools.suspectfilter");
    int status = 1;
    if (lua_pcall(L, 1, 1, tb) != 0) {
        fprintf(stderr, "fuglu_suspectfilter: cannot load the Lua tool from %s: %s\n", luadir, lua_tostring(L, -1));
    } else {
        lua_getfield(L, -1, "run");
        lua_newtable(L);
        for (int i = 1; i < argc; i++) {
            lua_pushstring(L, argv[i]);
            lua_rawseti(L, -2, i);
        }
        if (lua_pcall(L, 1, 1, tb) != 0)
            fprintf(stderr, "fuglu_suspectfilter: %s\n", lua_tostring(L, -1));
        else
            status = (int)lua_tointeger(L, -1);
    }
    fflush(stdout);
    lua_close(L);
    free(luadir);
    return status;
}
