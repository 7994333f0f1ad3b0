/* lua_console: the host table of the console's controller state (see lua_console.c). */
#ifndef FUGLU_LUA_CONSOLE_H
#define FUGLU_LUA_CONSOLE_H

#include <lua.h>

#include "console/console.h"

/* Pushes {stats = function, workers = function} for controller.new; workers reads c's generation in service. */
void fg_lua_console_push_host(lua_State *L, fg_console *c);

#endif
