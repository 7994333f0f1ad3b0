/* lua_regex: the Lua module `fuglu_regex`: PCRE2 regular expressions (JIT compiled, with match
 * limits) for the rule files, plus the few file-system calls the rule-driven plugins need (stat,
 * realpath, mkdir, chmod, chown, listdir).
 *
 * Lua side (lua/fuglu/regex.lua wraps it):
 *   local re, err, offset = lib.compile(pattern, flags)   -- flags: any of "imsxu" (u = Unicode \w)
 *   re:search(subject [, init])  -> start, end (1-based, inclusive) | false | nil, error
 *   re:exec(subject [, init])    -> {[0]=whole, [1]=..., name=...} | false | nil, error
 *   re:pattern(), re:jit()
 *   lib.html_strip(text)          -- htmlstrip.strip(text) in C (lua_htmlstrip.c), same result
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

/* Pushes and returns (1) the module table. Usable in package.preload or as a function field. */
int luaopen_fuglu_regex(lua_State *L);

/* lua_htmlstrip.c: html_strip(text) -> text (the module function). */
int fg_lua_regex_html_strip(lua_State *L);

/* lua_litset.c: literal_set(literals, ids, nids) -> set (the module function), and the set's
 * metatable, registered by luaopen_fuglu_regex. */
int fg_lua_regex_literal_set(lua_State *L);
void fg_lua_litset_register(lua_State *L);

#endif
