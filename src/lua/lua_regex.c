/* lua_regex: PCRE2 binding for the rule files (module `fuglu_regex`, see lua_regex.h).
 *
 * Every pattern is compiled with PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, so arbitrary bytes (raw
 * bodies in unknown charsets) can be searched: invalid UTF-8 sequences simply never match. The JIT
 * is used when it is available; a match that exhausts the JIT stack is retried by the interpreter,
 * which is bounded by the depth and heap limits. The match limit bounds both, so a catastrophic
 * pattern such as (a+)+$ returns an error quickly instead of running away.
 *
 * The module also carries the literal_set class (lua_litset.c), the C half of the rule files'
 * literal prefilter.
 *
 * A regex object owns its code, match data and match context; it must only be used by the thread
 * that owns its Lua state (the engine gives every worker its own state).
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include "lua/lua_core.h"
#include "lua/lua_regex.h"

#include <pcre2.h>
#include <string.h>

#include <lauxlib.h>

#define REGEX_METATABLE "fuglu.regex"

typedef struct fg_regex {
    pcre2_code *code;
    pcre2_match_data *match;
    pcre2_match_context *context;
    int jit;
    uint32_t captures;
} fg_regex;

/* ---- compile ---- */

static uint32_t regex_parse_flags(lua_State *L, const char *flags)
{
    uint32_t options = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;
    for (const char *f = flags; *f; f++) {
        switch (*f) {
        case 'i': case 'I': options |= PCRE2_CASELESS; break;
        case 'm': case 'M': options |= PCRE2_MULTILINE; break;
        case 's': case 'S': options |= PCRE2_DOTALL; break;
        case 'x': case 'X': options |= PCRE2_EXTENDED; break;
        case 'u': case 'U': options |= PCRE2_UCP; break;
        default:
            luaL_error(L, "unknown regex flag '%c' (allowed: i m s x u)", *f);
        }
    }
    return options;
}

static uint32_t regex_opt_limit(lua_State *L, int idx, const char *key, uint32_t def)
{
    if (lua_type(L, idx) != LUA_TTABLE)
        return def;
    lua_getfield(L, idx, key);
    uint32_t value = def;
    if (lua_isnumber(L, -1)) {
        lua_Number n = lua_tonumber(L, -1);
        if (n >= 1 && n <= 4e9)
            value = (uint32_t)n;
    }
    lua_pop(L, 1);
    return value;
}

/* compile(pattern [, flags [, limits]]) -> regex | nil, error, offset (1-based) */
static int l_regex_compile(lua_State *L)
{
    size_t len;
    const char *pattern = luaL_checklstring(L, 1, &len);
    uint32_t options = regex_parse_flags(L, luaL_optstring(L, 2, ""));
    uint32_t match_limit = regex_opt_limit(L, 3, "match_limit", FG_LUA_REGEX_MATCH_LIMIT);
    uint32_t depth_limit = regex_opt_limit(L, 3, "depth_limit", FG_LUA_REGEX_DEPTH_LIMIT);
    uint32_t heap_limit = regex_opt_limit(L, 3, "heap_limit_kib", FG_LUA_REGEX_HEAP_LIMIT_KIB);

    fg_regex *re = lua_newuserdata(L, sizeof *re);
    memset(re, 0, sizeof *re);
    luaL_getmetatable(L, REGEX_METATABLE);
    lua_setmetatable(L, -2);

    int errcode;
    PCRE2_SIZE erroffset;
    re->code = pcre2_compile((PCRE2_SPTR)pattern, len, options, &errcode, &erroffset, NULL);
    if (!re->code) {
        PCRE2_UCHAR message[256];
        pcre2_get_error_message(errcode, message, sizeof message);
        lua_pushnil(L);
        lua_pushstring(L, (const char *)message);
        lua_pushinteger(L, (lua_Integer)erroffset + 1);
        return 3;
    }
    re->jit = pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE) == 0;
    pcre2_pattern_info(re->code, PCRE2_INFO_CAPTURECOUNT, &re->captures);
    re->match = pcre2_match_data_create_from_pattern(re->code, NULL);
    re->context = pcre2_match_context_create(NULL);
    if (!re->match || !re->context)
        return luaL_error(L, "out of memory compiling a regex");
    pcre2_set_match_limit(re->context, match_limit);
    pcre2_set_depth_limit(re->context, depth_limit);
    pcre2_set_heap_limit(re->context, heap_limit);
    lua_createtable(L, 1, 0);    /* the environment table keeps the pattern source */
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, 1);
    lua_setfenv(L, -2);
    return 1;
}

static fg_regex *regex_check(lua_State *L)
{
    fg_regex *re = luaL_checkudata(L, 1, REGEX_METATABLE);
    if (!re->code)
        luaL_error(L, "regex object is not compiled");
    return re;
}

/* ---- match ---- */

/* Runs the match; returns the pcre2_match result (> 0 match, PCRE2_ERROR_NOMATCH, other < 0). */
static int regex_run(fg_regex *re, const char *subject, size_t len, size_t start)
{
    int rc = pcre2_match(re->code, (PCRE2_SPTR)subject, len, start, 0, re->match, re->context);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
        rc = pcre2_match(re->code, (PCRE2_SPTR)subject, len, start, PCRE2_NO_JIT, re->match, re->context);
    return rc;
}

static int regex_push_error(lua_State *L, int rc)
{
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(rc, message, sizeof message);
    lua_pushnil(L);
    lua_pushstring(L, (const char *)message);
    return 2;
}

static size_t regex_start(lua_State *L, int idx, size_t len)
{
    lua_Integer init = luaL_optinteger(L, idx, 1);
    if (init < 1)
        init = 1;
    if ((size_t)init > len + 1)
        return len + 1;
    return (size_t)init - 1;
}

/* The common start of search and exec: runs the regex on argument 2 from argument 3. Returns NULL
 * after pushing the Lua results itself (no match: false; error: nil, message; *nret set), or the
 * ovector of a match. */
static PCRE2_SIZE *regex_match_args(lua_State *L, fg_regex **re_out, const char **subject, int *nret)
{
    fg_regex *re = regex_check(L);
    size_t len;
    *subject = luaL_checklstring(L, 2, &len);
    *re_out = re;
    size_t start = regex_start(L, 3, len);
    int rc = start > len ? PCRE2_ERROR_NOMATCH : regex_run(re, *subject, len, start);
    if (rc == PCRE2_ERROR_NOMATCH) {
        lua_pushboolean(L, 0);
        *nret = 1;
        return NULL;
    }
    if (rc < 0) {
        *nret = regex_push_error(L, rc);
        return NULL;
    }
    return pcre2_get_ovector_pointer(re->match);
}

/* re:search(subject [, init]) -> start, end | false | nil, error */
static int l_regex_search(lua_State *L)
{
    fg_regex *re;
    const char *subject;
    int nret;
    PCRE2_SIZE *ov = regex_match_args(L, &re, &subject, &nret);
    if (!ov)
        return nret;
    lua_pushinteger(L, (lua_Integer)ov[0] + 1);
    lua_pushinteger(L, (lua_Integer)ov[1]);
    return 2;
}

/* Sets t[name] for every named group that took part in the match. */
static void regex_push_names(lua_State *L, fg_regex *re, PCRE2_SIZE *ov, const char *subject)
{
    uint32_t count = 0, entry_size = 0;
    PCRE2_SPTR table = NULL;
    pcre2_pattern_info(re->code, PCRE2_INFO_NAMECOUNT, &count);
    if (count == 0)
        return;
    pcre2_pattern_info(re->code, PCRE2_INFO_NAMEENTRYSIZE, &entry_size);
    pcre2_pattern_info(re->code, PCRE2_INFO_NAMETABLE, &table);
    for (uint32_t i = 0; i < count; i++) {
        PCRE2_SPTR entry = table + (size_t)i * entry_size;
        uint32_t group = ((uint32_t)entry[0] << 8) | entry[1];
        if (ov[2 * group] == PCRE2_UNSET)
            continue;
        lua_pushlstring(L, subject + ov[2 * group], ov[2 * group + 1] - ov[2 * group]);
        lua_setfield(L, -2, (const char *)entry + 2);
    }
}

/* re:exec(subject [, init]) -> {[0]=match, [n]=group or false, name=group, start=, stop=} */
static int l_regex_exec(lua_State *L)
{
    fg_regex *re;
    const char *subject;
    int nret;
    PCRE2_SIZE *ov = regex_match_args(L, &re, &subject, &nret);
    if (!ov)
        return nret;
    lua_createtable(L, (int)re->captures, 3);
    for (uint32_t g = 0; g <= re->captures; g++) {
        if (ov[2 * g] == PCRE2_UNSET)
            lua_pushboolean(L, 0);
        else
            lua_pushlstring(L, subject + ov[2 * g], ov[2 * g + 1] - ov[2 * g]);
        lua_rawseti(L, -2, (int)g);
    }
    lua_pushinteger(L, (lua_Integer)ov[0] + 1);
    lua_setfield(L, -2, "start");
    lua_pushinteger(L, (lua_Integer)ov[1]);
    lua_setfield(L, -2, "stop");
    regex_push_names(L, re, ov, subject);
    return 1;
}

static int l_regex_pattern(lua_State *L)
{
    regex_check(L);
    lua_getfenv(L, 1);
    lua_rawgeti(L, -1, 1);
    return 1;
}

static int l_regex_is_jit(lua_State *L)
{
    lua_pushboolean(L, regex_check(L)->jit);
    return 1;
}

static int l_regex_gc(lua_State *L)
{
    fg_regex *re = luaL_checkudata(L, 1, REGEX_METATABLE);
    pcre2_match_context_free(re->context);
    pcre2_match_data_free(re->match);
    pcre2_code_free(re->code);
    re->context = NULL;
    re->match = NULL;
    re->code = NULL;
    return 0;
}

static int l_regex_tostring(lua_State *L)
{
    fg_regex *re = luaL_checkudata(L, 1, REGEX_METATABLE);
    if (!re->code) {
        lua_pushliteral(L, "regex (freed)");
        return 1;
    }
    lua_getfenv(L, 1);
    lua_rawgeti(L, -1, 1);
    lua_pushfstring(L, "regex /%s/", lua_tostring(L, -1));
    return 1;
}

static const luaL_Reg regex_methods[] = {
    {"search", l_regex_search},
    {"exec", l_regex_exec},
    {"pattern", l_regex_pattern},
    {"jit", l_regex_is_jit},
    {NULL, NULL},
};

static const luaL_Reg regex_functions[] = {
    {"compile", l_regex_compile},
    {NULL, NULL},
};

int luaopen_fuglu_regex(lua_State *L)
{
    fg_lua_class_metatable(L, REGEX_METATABLE, regex_methods, l_regex_gc, l_regex_tostring);
    lua_pop(L, 1);
    fg_lua_new_module(L, regex_functions);
    fg_lua_litset_register(L);
    lua_pushinteger(L, FG_LUA_REGEX_MATCH_LIMIT);
    lua_setfield(L, -2, "match_limit");
    return 1;
}
