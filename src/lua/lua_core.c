/* lua_core: the fuglu_core module table: version, clocks, ids, logging, base64, RFC 2047 and
 * re-injection (message objects are in lua_message.c, the MIME view in lua_mime.c).
 *
 * Memory rule for every function here: C allocations never cross a Lua call that may raise.
 * Temporary buffers are Lua userdata (collected if an error unwinds) or sit in a fuglu_guard.
 *
 * header_encode is written here instead of using GMime's formatter so its output is stable:
 * pure ASCII values are only folded at blanks; other values become =?UTF-8?B?...?= words split on
 * character boundaries, each word at most 75 characters and each line ("Name: " counted on the
 * first) at most 78, joined with "\r\n ".
 */
#include <pthread.h>
#include <string.h>

#include <glib.h>
#include <lauxlib.h>

#include "log.h"
#include "lua_core.h"
#include "config.h"
#include "lua_message.h"
#include "reinject.h"
#include "util.h"

#define CORE_GUARD_METATABLE "fuglu.guard"
#define CORE_LINE_MAX 78
#define CORE_WORD_MAX 75
#define CORE_WORD_BYTES 45              /* 60 base64 characters + "=?UTF-8?B?" "?=" = 72 */

/* ---- guard ---- */

static int core_guard_gc(lua_State *L)
{
    fuglu_guard_release(lua_touserdata(L, 1));
    return 0;
}

fuglu_guard *fuglu_guard_push(lua_State *L)
{
    fuglu_guard *guard = lua_newuserdata(L, sizeof *guard);
    guard->ptr = NULL;
    guard->release = NULL;
    if (luaL_newmetatable(L, CORE_GUARD_METATABLE)) {
        lua_pushcfunction(L, core_guard_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return guard;
}

void fuglu_guard_release(fuglu_guard *guard)
{
    if (guard && guard->ptr && guard->release)
        guard->release(guard->ptr);
    if (guard)
        guard->ptr = NULL;
}

/* ---- basics ---- */

static int core_now(lua_State *L)
{
    lua_pushnumber(L, fg_now());
    return 1;
}

static int core_monotonic(lua_State *L)
{
    lua_pushnumber(L, fg_monotonic());
    return 1;
}

static int core_random_id(lua_State *L)
{
    char id[33];
    fg_random_id(id);
    lua_pushstring(L, id);
    return 1;
}

static int core_hostname(lua_State *L)
{
    lua_pushstring(L, fg_hostname());
    return 1;
}

static int core_log(lua_State *L)
{
    const char *logger = luaL_checkstring(L, 1);
    int level = (int)luaL_checkinteger(L, 2);
    const char *text = luaL_checkstring(L, 3);
    fg_log(logger, level, "%s", text);
    return 0;
}

static int core_log_enabled(lua_State *L)
{
    const char *logger = luaL_checkstring(L, 1);
    int level = (int)luaL_checkinteger(L, 2);
    lua_pushboolean(L, fg_log_enabled(logger, level));
    return 1;
}

/* ---- base64 ---- */

static int core_b64encode(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    if (len > ((size_t)-1) / 2)
        return luaL_argerror(L, 1, "string too long");
    char *out = lua_newuserdata(L, (len + 2) / 3 * 4 + 1);
    size_t n = fuglu_b64_encode(s, len, out);
    lua_pushlstring(L, out, n);
    return 1;
}

static int core_b64decode(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    unsigned char *out = lua_newuserdata(L, len + 1);
    long n = fuglu_b64_decode(s, len, out);
    if (n < 0)
        lua_pushnil(L);
    else
        lua_pushlstring(L, (const char *)out, (size_t)n);
    return 1;
}

/* ---- RFC 2047 ---- */

/* Copies s[0..len) to out (room for len + 1) with folding undone: a line break followed by a blank
 * is removed (RFC 5322 unfolding); with space_for_breaks any other CR or LF run becomes one space
 * (a raw line break must never reach a generated header). Returns the new length. */
static size_t core_unfold(const char *s, size_t len, char *out, bool space_for_breaks)
{
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        if (s[i] != '\r' && s[i] != '\n') {
            out[o++] = s[i++];
            continue;
        }
        size_t j = i;
        while (j < len && (s[j] == '\r' || s[j] == '\n'))
            j++;
        bool blank_follows = j < len && (s[j] == ' ' || s[j] == '\t');
        if (!blank_follows && !space_for_breaks) {
            memcpy(out + o, s + i, j - i);
            o += j - i;
        } else if (!blank_follows && o > 0 && j < len) {
            out[o++] = ' ';
        }
        i = j;
    }
    out[o] = '\0';
    return o;
}

static int core_rfc2047_decode(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    char *unfolded = lua_newuserdata(L, len + 1);
    len = core_unfold(s, len, unfolded, false);
    fuglu_guard *guard = fuglu_guard_push(L);
    size_t decoded_len;
    guard->ptr = fuglu_rfc2047_decode(unfolded, len, &decoded_len);
    guard->release = g_free;
    lua_pushlstring(L, guard->ptr, decoded_len);
    fuglu_guard_release(guard);
    return 1;
}

static bool core_is_ascii(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] >= 0x80)
            return false;
    return true;
}

/* Folds an ASCII value before blanks so lines stay within CORE_LINE_MAX where the words allow. */
static void core_fold_ascii(luaL_Buffer *b, size_t name_len, const char *s, size_t len)
{
    size_t column = name_len + 2;
    bool line_has_text = false;
    for (size_t i = 0; i < len;) {
        size_t j = i;
        while (j < len && (s[j] == ' ' || s[j] == '\t'))
            j++;
        while (j < len && s[j] != ' ' && s[j] != '\t')
            j++;
        bool starts_blank = s[i] == ' ' || s[i] == '\t';
        if (line_has_text && starts_blank && column + (j - i) > CORE_LINE_MAX) {
            luaL_addstring(b, "\r\n");
            column = 0;
        }
        luaL_addlstring(b, s + i, j - i);
        column += j - i;
        line_has_text = true;
        i = j;
    }
}

static size_t core_utf8_step(const char *s, size_t len)
{
    const unsigned char c = (unsigned char)s[0];
    size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    return n > len ? len : n;
}

/* Encodes valid UTF-8 s[0..len) as B-encoded words joined with "\r\n ". */
static void core_encode_words(luaL_Buffer *b, size_t name_len, const char *s, size_t len)
{
    static const size_t overhead = sizeof "=?UTF-8?B?" "?=" - 1;
    size_t first_room = name_len + 2 + overhead < CORE_LINE_MAX ?
                        CORE_LINE_MAX - name_len - 2 - overhead : 0;
    size_t cap = first_room / 4 * 3;
    if (cap > CORE_WORD_BYTES)
        cap = CORE_WORD_BYTES;
    for (size_t pos = 0; pos < len; cap = CORE_WORD_BYTES) {
        size_t take = 0;
        while (pos + take < len) {
            size_t n = core_utf8_step(s + pos + take, len - pos - take);
            if (take + n > cap && take > 0)
                break;
            take += n;
            if (take >= cap)
                break;
        }
        if (pos > 0)
            luaL_addstring(b, "\r\n ");
        char word[CORE_WORD_MAX + 1];
        size_t n = fuglu_b64_encode(s + pos, take, word);
        luaL_addstring(b, "=?UTF-8?B?");
        luaL_addlstring(b, word, n);
        luaL_addstring(b, "?=");
        pos += take;
    }
}

static int core_header_encode(lua_State *L)
{
    size_t name_len, len;
    luaL_checklstring(L, 1, &name_len);
    const char *value = luaL_checklstring(L, 2, &len);
    char *flat = lua_newuserdata(L, len + 1);
    len = core_unfold(value, len, flat, true);
    luaL_Buffer b;
    if (core_is_ascii(flat, len)) {
        luaL_buffinit(L, &b);
        core_fold_ascii(&b, name_len, flat, len);
        luaL_pushresult(&b);
        return 1;
    }
    if (!fuglu_utf8_valid(flat, len)) {
        char *utf8 = lua_newuserdata(L, 2 * len + 1);
        size_t o = 0;
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)flat[i];
            if (c < 0x80) {
                utf8[o++] = (char)c;
            } else {
                utf8[o++] = (char)(0xC0 | (c >> 6));
                utf8[o++] = (char)(0x80 | (c & 0x3F));
            }
        }
        flat = utf8;
        len = o;
    }
    luaL_buffinit(L, &b);
    core_encode_words(&b, name_len, flat, len);
    luaL_pushresult(&b);
    return 1;
}

/* ---- re-injection ---- */

static pthread_once_t core_reinject_once = PTHREAD_ONCE_INIT;
static pthread_key_t core_reinject_key;

static void core_reinject_cache_destroy(void *cache)
{
    fg_reinject_cache_free(cache);
}

static void core_reinject_key_create(void)
{
    if (pthread_key_create(&core_reinject_key, core_reinject_cache_destroy) != 0)
        fg_panic("lua_core: pthread_key_create failed");
}

/* This thread's connection cache, created on first use and freed when the thread exits. */
static fg_reinject_cache *core_reinject_cache(void)
{
    pthread_once(&core_reinject_once, core_reinject_key_create);
    fg_reinject_cache *cache = pthread_getspecific(core_reinject_key);
    if (!cache) {
        cache = fg_reinject_cache_new();
        pthread_setspecific(core_reinject_key, cache);
    }
    return cache;
}

/* A string field of the table at t (numbers are accepted and converted); NULL if absent. Values
 * stay referenced by the table, or by the anchor table for converted numbers, until the call ends. */
static const char *core_field_string(lua_State *L, int t, const char *key, int anchor, size_t *len)
{
    lua_getfield(L, t, key);
    int type = lua_type(L, -1);
    const char *s = NULL;
    if (type == LUA_TSTRING) {
        s = lua_tolstring(L, -1, len);
        lua_pop(L, 1);
    } else if (type == LUA_TNUMBER) {
        s = lua_tolstring(L, -1, len);
        luaL_ref(L, anchor);
    } else if (type == LUA_TNIL) {
        lua_pop(L, 1);
    } else {
        luaL_error(L, "reinject: field '%s' must be a string", key);
    }
    return s;
}

/* An array of strings at t[key] as a C array living in a userdata on the stack. */
static const char **core_field_strings(lua_State *L, int t, const char *key, int anchor, size_t *n,
                                       size_t want)
{
    lua_getfield(L, t, key);
    int arr = lua_gettop(L);
    if (lua_isnil(L, arr)) {
        lua_pop(L, 1);
        *n = 0;
        return NULL;
    }
    if (!lua_istable(L, arr))
        luaL_error(L, "reinject: field '%s' must be an array", key);
    size_t count = want ? want : lua_objlen(L, arr);
    const char **items = lua_newuserdata(L, (count ? count : 1) * sizeof *items);
    luaL_ref(L, anchor);
    for (size_t i = 0; i < count; i++) {
        lua_rawgeti(L, arr, (int)i + 1);
        int type = lua_type(L, -1);
        items[i] = NULL;
        if (type == LUA_TSTRING) {
            items[i] = lua_tostring(L, -1);
            lua_pop(L, 1);
        } else if (type == LUA_TNUMBER) {
            items[i] = lua_tostring(L, -1);
            luaL_ref(L, anchor);
        } else if (type == LUA_TNIL || (type == LUA_TBOOLEAN && !lua_toboolean(L, -1))) {
            lua_pop(L, 1);
            if (!want)
                luaL_error(L, "reinject: %s[%d] must be a string", key, (int)i + 1);
        } else {
            luaL_error(L, "reinject: %s[%d] must be a string", key, (int)i + 1);
        }
    }
    lua_pop(L, 1);
    *n = count;
    return items;
}

static int core_reinject(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_newtable(L);
    const int anchor = 2;
    fg_reinject_req req;
    memset(&req, 0, sizeof req);
    size_t len;
    req.host = core_field_string(L, 1, "host", anchor, &len);
    lua_getfield(L, 1, "port");
    req.port = (int)lua_tointeger(L, -1);
    lua_getfield(L, 1, "timeout");
    req.timeout = lua_tonumber(L, -1);
    lua_pop(L, 2);
    if (!req.host || req.port <= 0 || req.port > 65535)
        return luaL_error(L, "reinject: host and port (1-65535) are required");
    req.helo = core_field_string(L, 1, "helo", anchor, &len);
    if (!req.helo)
        req.helo = fg_hostname();
    req.mail_from = core_field_string(L, 1, "from", anchor, &len);
    if (!req.mail_from)
        req.mail_from = "";
    req.mail_params = core_field_string(L, 1, "mail_params", anchor, &len);
    req.rcpts = core_field_strings(L, 1, "rcpts", anchor, &req.nrcpt, 0);
    if (req.nrcpt == 0)
        return luaL_error(L, "reinject: rcpts must list at least one recipient");
    size_t nparams;
    req.rcpt_params = core_field_strings(L, 1, "rcpt_params", anchor, &nparams, req.nrcpt);

    lua_getfield(L, 1, "xforward");
    if (lua_istable(L, -1)) {
        int xf = lua_gettop(L);
        req.xf_name = core_field_string(L, xf, "name", anchor, &len);
        req.xf_addr = core_field_string(L, xf, "addr", anchor, &len);
        req.xf_port = core_field_string(L, xf, "port", anchor, &len);
        req.xf_helo = core_field_string(L, xf, "helo", anchor, &len);
        req.xf_proto = core_field_string(L, xf, "proto", anchor, &len);
        req.xf_source = core_field_string(L, xf, "source", anchor, &len);
        req.xf_ident = core_field_string(L, xf, "ident", anchor, &len);
    }
    lua_pop(L, 1);

    req.prefix = core_field_string(L, 1, "prefix", anchor, &req.prefix_len);
    if (!req.prefix)
        req.prefix_len = 0;
    lua_getfield(L, 1, "message");
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TUSERDATA || !lua_getmetatable(L, -1))
            return luaL_error(L, "reinject: field 'message' must be a message object");
        luaL_getmetatable(L, FUGLU_MESSAGE_METATABLE);
        bool is_message = lua_rawequal(L, -1, -2);
        lua_pop(L, 2);
        if (!is_message)
            return luaL_error(L, "reinject: field 'message' must be a message object");
        fg_msg *msg = fuglu_core_check_message(L, lua_gettop(L));
        req.body = fg_msg_data(msg);
        req.body_len = fg_msg_len(msg);
        lua_pop(L, 1);
    } else {
        lua_pop(L, 1);
        req.body = core_field_string(L, 1, "source", anchor, &req.body_len);
        if (!req.body)
            return luaL_error(L, "reinject: either message or source is required");
    }

    fg_reinject_res res;
    memset(&res, 0, sizeof res);
    req.fate = fg_fate_current();
    fg_reinject_send(core_reinject_cache(), &req, &res);
    res.text[sizeof res.text - 1] = '\0';
    lua_pushboolean(L, res.ok);
    lua_pushinteger(L, res.code);
    lua_pushstring(L, res.text);
    lua_pushboolean(L, res.temporary);
    lua_pushboolean(L, res.cancelled);
    return 5;
}

/* core.job_cancelled(): true when the message being scanned by this worker was answered already
 * (scan_timeout, the client went away) and must not be delivered. */
static int core_job_cancelled(lua_State *L)
{
    fg_fate *f = fg_fate_current();
    lua_pushboolean(L, f && fg_fate_is_cancelled(f));
    return 1;
}

/* core.core_options(): config.c's table of core options, {section = {option = {default =, type =
 * "string"|"int"|"bool"|"double", min =, max =, description =}}}: the one source of their defaults
 * (lua/fuglu/config.lua falls back to it). */
static int core_core_options(lua_State *L)
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

static const luaL_Reg core_functions[] = {
    {"core_options", core_core_options},
    {"now", core_now},
    {"monotonic", core_monotonic},
    {"random_id", core_random_id},
    {"hostname", core_hostname},
    {"log", core_log},
    {"log_enabled", core_log_enabled},
    {"b64encode", core_b64encode},
    {"b64decode", core_b64decode},
    {"rfc2047_decode", core_rfc2047_decode},
    {"header_encode", core_header_encode},
    {"reinject", core_reinject},
    {"job_cancelled", core_job_cancelled},
    {NULL, NULL},
};

int luaopen_fuglu_core(lua_State *L)
{
    fuglu_mime_init();
    lua_newtable(L);
    luaL_register(L, NULL, core_functions);
    lua_pushliteral(L, FUGLU_CORE_VERSION);
    lua_setfield(L, -2, "version");
    fuglu_message_open(L);
    return 1;
}
