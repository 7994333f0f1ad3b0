/* lua_regex: the Lua module `fuglu_regex`: PCRE2 regular expressions (JIT compiled, with match
 * limits) for the rule files, and its literal_set class (lua_litset.c).
 *
 * Lua side (lua/fuglu/regex.lua wraps it):
 *   local re, err, offset = lib.compile(pattern, flags)   -- flags: any of "imsxu" (u = Unicode \w)
 *   re:search(subject [, init])  -> start, end (1-based, inclusive) | false | nil, error
 *   re:exec(subject [, init])    -> {[0]=whole, [1]=..., name=...} | false | nil, error
 *   re:pattern(), re:jit()
 *   local set = lib.literal_set(literals, ids, nids)   -- multi-literal prefilter (lua_litset.c)
 *   set:scan(subject, out)        -> k: out[1..k] = the distinct ids whose literal occurs in subject
 * A match that runs into the match, depth, heap or JIT-stack limit returns nil and an error text,
 * never blocks: limits are set per regex object (lib.compile's optional third argument
 * {match_limit=, depth_limit=, heap_limit_kib=}) with defaults fg_lua_regex_defaults.
 */
#ifndef FUGLU_LUA_REGEX_H
#define FUGLU_LUA_REGEX_H

#include <lua.h>

#define FG_LUA_REGEX_MATCH_LIMIT 1000000u
#define FG_LUA_REGEX_DEPTH_LIMIT 10000u
#define FG_LUA_REGEX_HEAP_LIMIT_KIB 20000u

/* lua_litset.c: creates the literal_set metatable and sets literal_set (the constructor) in the
 * module table on top of the stack. The opener is luaopen_fuglu_regex (lua_core.h). */
void fg_lua_litset_register(lua_State *L);

#endif
