/* fuglu_suspectfilter: lists which rules of a rule file match a message (Fuglu's tool of the same
 * name). A small launcher: it makes a Lua state as a worker gets one (fuglu_core and fuglu_regex
 * preloaded) and runs lua/fuglu/tools/suspectfilter.lua with the command line.
 *
 *   fuglu_suspectfilter RULEFILE MESSAGE.eml [-D]
 *
 * The Lua directory is $FUGLU_LUADIR, else ../lua next to the binary (a build tree), else
 * ../share/fuglu/lua next to it, else FUGLU_DATADIR/lua.
 */
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "lua_regex.h"
#include "lua_worker.h"
#include "util.h"

static char *sf_find_luadir(void)
{
    const char *env = getenv("FUGLU_LUADIR");
    if (env && *env)
        return xstrdup(env);
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *dir = dirname(exe);
        static const char *const relative[] = {"%s/../lua", "%s/../share/fuglu/lua"};
        for (size_t i = 0; i < sizeof relative / sizeof relative[0]; i++) {
            char *probe = xasprintf(relative[i], dir);
            char *file = xasprintf("%s/fuglu/tools/suspectfilter.lua", probe);
            int ok = access(file, R_OK) == 0;
            free(file);
            char real[PATH_MAX];
            if (ok && realpath(probe, real)) {
                free(probe);
                return xstrdup(real);
            }
            free(probe);
        }
    }
    return xstrdup(FUGLU_DATADIR "/lua");
}

static int sf_traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
    return 1;
}

int main(int argc, char **argv)
{
    char *luadir = sf_find_luadir();
    fg_lua_env env = {.luadir = luadir};
    lua_State *L = fg_lua_new_state(&env);
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_fuglu_regex);
    lua_setfield(L, -2, "fuglu_regex");
    lua_pop(L, 2);

    lua_pushcfunction(L, sf_traceback);
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
