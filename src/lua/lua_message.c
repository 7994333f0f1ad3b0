/* lua_message: the module `fuglu_message`, its "fuglu.message" userdata and the raw header parser.
 *
 * A message object holds one fg_msg reference; the bytes are never copied into Lua unless a method
 * returns them. mime() parses once with GMime (lua_mime.c) and caches both the C parse (in the
 * userdata) and the Lua parts array (in the userdata's environment table); __gc frees both.
 *
 * Header parsing follows Python's compat32 parser that Fuglu uses: a field is "Name: value" where
 * Name has no blanks or control characters; continuation lines start with a space or tab; the value
 * keeps its folding, loses the blanks after the colon and the final line break. Unlike Python, a line
 * in the header block that is no field is skipped instead of ending the headers.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <lauxlib.h>

#include "lua/lua_core.h"
#include "lua/lua_message.h"
#include "lib/util.h"

static size_t message_line_end(const char *block, size_t len, size_t pos)
{
    const char *nl = memchr(block + pos, '\n', len - pos);
    return nl ? (size_t)(nl - block) + 1 : len;
}

static bool message_is_blank(char c)
{
    return c == ' ' || c == '\t';
}

bool fg_lua_message_header_next(const char *block, size_t len, size_t *pos, fg_lua_message_header *field)
{
    while (*pos < len) {
        size_t start = *pos;
        size_t end = message_line_end(block, len, start);
        *pos = end;
        if (message_is_blank(block[start]))
            continue;                       /* a continuation without a field */
        const char *colon = memchr(block + start, ':', end - start);
        if (!colon)
            continue;
        size_t name_len = (size_t)(colon - (block + start));
        while (name_len > 0 && message_is_blank(block[start + name_len - 1]))
            name_len--;
        bool name_ok = name_len > 0;
        for (size_t i = 0; name_ok && i < name_len; i++) {
            unsigned char c = (unsigned char)block[start + i];
            name_ok = c > 0x20 && c != 0x7f;
        }
        if (!name_ok)
            continue;
        while (*pos < len && message_is_blank(block[*pos]))
            *pos = message_line_end(block, len, *pos);
        size_t value_start = (size_t)(colon - block) + 1;
        while (value_start < *pos && message_is_blank(block[value_start]))
            value_start++;
        size_t value_end = *pos;
        while (value_end > value_start && (block[value_end - 1] == '\n' || block[value_end - 1] == '\r'))
            value_end--;
        field->name = block + start;
        field->name_len = name_len;
        field->value = block + value_start;
        field->value_len = value_end - value_start;
        return true;
    }
    return false;
}

void fg_lua_message_push_headers(lua_State *L, const char *block, size_t len)
{
    lua_newtable(L);
    size_t pos = 0;
    int n = 0;
    fg_lua_message_header f;
    while (fg_lua_message_header_next(block, len, &pos, &f)) {
        lua_createtable(L, 0, 2);
        lua_pushlstring(L, f.name, f.name_len);
        lua_setfield(L, -2, "name");
        lua_pushlstring(L, f.value, f.value_len);
        lua_setfield(L, -2, "value");
        lua_rawseti(L, -2, ++n);
    }
}

/* ---- the userdata ---- */

static fg_lua_message *message_check(lua_State *L, int idx)
{
    fg_lua_message *m = luaL_checkudata(L, idx, FG_LUA_MESSAGE_METATABLE);
    if (!m->msg)
        luaL_argerror(L, idx, "message object already released");
    return m;
}

fg_msg *fg_lua_message_check(lua_State *L, int idx)
{
    return message_check(L, idx)->msg;
}

static int l_message_gc(lua_State *L)
{
    fg_lua_message *m = luaL_checkudata(L, 1, FG_LUA_MESSAGE_METATABLE);
    if (m->mime) {
        fg_lua_mime_free(m->mime);
        m->mime = NULL;
    }
    if (m->msg) {
        fg_msg_unref(m->msg);
        m->msg = NULL;
    }
    return 0;
}

void fg_lua_message_release(lua_State *L, int idx)
{
    if (luaL_testudata(L, idx, FG_LUA_MESSAGE_METATABLE)) {
        lua_pushcfunction(L, l_message_gc);
        lua_pushvalue(L, idx > 0 || idx <= LUA_REGISTRYINDEX ? idx : idx - 1);
        lua_call(L, 1, 0);
    }
}

static int l_message_size(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)fg_msg_len(message_check(L, 1)->msg));
    return 1;
}

static int l_message_bytes(lua_State *L)
{
    fg_msg *msg = message_check(L, 1)->msg;
    size_t len = fg_msg_len(msg);
    if (!lua_isnoneornil(L, 2)) {
        lua_Number max = luaL_checknumber(L, 2);
        if (max < 0)
            return luaL_argerror(L, 2, "maxbytes must not be negative");
        if (max < (lua_Number)len)
            len = (size_t)max;
    }
    lua_pushlstring(L, fg_msg_data(msg), len);
    return 1;
}

static int l_message_header_block(lua_State *L)
{
    fg_msg *msg = message_check(L, 1)->msg;
    const char *data = fg_msg_data(msg);
    lua_pushlstring(L, data, fg_msg_header_len(data, fg_msg_len(msg)));
    return 1;
}

static int l_message_headers(lua_State *L)
{
    fg_msg *msg = message_check(L, 1)->msg;
    const char *data = fg_msg_data(msg);
    fg_lua_message_push_headers(L, data, fg_msg_header_len(data, fg_msg_len(msg)));
    return 1;
}

static int l_message_header(lua_State *L)
{
    fg_msg *msg = message_check(L, 1)->msg;
    size_t want_len;
    const char *want = luaL_checklstring(L, 2, &want_len);
    const char *data = fg_msg_data(msg);
    size_t len = fg_msg_header_len(data, fg_msg_len(msg));
    lua_newtable(L);
    size_t pos = 0;
    int n = 0;
    fg_lua_message_header f;
    while (fg_lua_message_header_next(data, len, &pos, &f)) {
        if (f.name_len != want_len || strncasecmp(f.name, want, want_len) != 0)
            continue;
        lua_pushlstring(L, f.value, f.value_len);
        lua_rawseti(L, -2, ++n);
    }
    return 1;
}

static fg_lua_mime *message_mime_parse(fg_lua_message *m)
{
    if (!m->mime)
        m->mime = fg_lua_mime_parse(fg_msg_data(m->msg), fg_msg_len(m->msg));
    return m->mime;
}

/* The environment of a message object is its cache table once mime() ran; before that it is
 * whatever the creating function had, so it is only read when mime_cached says it is ours. */
static int l_message_mime(lua_State *L)
{
    fg_lua_message *m = message_check(L, 1);
    if (m->mime_cached) {
        lua_getfenv(L, 1);
        lua_getfield(L, -1, "mime");
        return 1;
    }
    fg_lua_mime_push_parts(L, message_mime_parse(m));
    lua_createtable(L, 0, 1);
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "mime");
    lua_setfenv(L, 1);
    m->mime_cached = true;
    return 1;
}

static int l_message_part_payload(lua_State *L)
{
    fg_lua_message *m = message_check(L, 1);
    lua_Integer index = luaL_checkinteger(L, 2);
    fg_lua_mime_push_payload(L, message_mime_parse(m), index, false);
    return 1;
}

static int l_message_part_text(lua_State *L)
{
    fg_lua_message *m = message_check(L, 1);
    lua_Integer index = luaL_checkinteger(L, 2);
    fg_lua_mime_push_payload(L, message_mime_parse(m), index, true);
    return 1;
}

static int l_message_tostring(lua_State *L)
{
    fg_lua_message *m = luaL_checkudata(L, 1, FG_LUA_MESSAGE_METATABLE);
    if (m->msg)
        lua_pushfstring(L, "fuglu.message (%d bytes)", (int)fg_msg_len(m->msg));
    else
        lua_pushliteral(L, "fuglu.message (released)");
    return 1;
}

static const luaL_Reg message_methods[] = {
    {"size", l_message_size},
    {"bytes", l_message_bytes},
    {"header_block", l_message_header_block},
    {"headers", l_message_headers},
    {"header", l_message_header},
    {"mime", l_message_mime},
    {"part_payload", l_message_part_payload},
    {"part_text", l_message_part_text},
    {NULL, NULL},
};

/* Pushes the metatable, creating it on first use in this state. */
static void message_metatable(lua_State *L)
{
    if (!fg_lua_class_metatable(L, FG_LUA_MESSAGE_METATABLE, message_methods, l_message_gc, l_message_tostring))
        return;
    lua_pushliteral(L, "fuglu.message");
    lua_setfield(L, -2, "__metatable");
}

/* Pushes a message object without a message yet: it exists (and can be collected) before any
 * reference is stored in it, so an allocation error cannot leak the reference. */
static fg_lua_message *message_push_empty(lua_State *L)
{
    fg_lua_message *m = lua_newuserdata(L, sizeof *m);
    m->msg = NULL;
    m->mime = NULL;
    m->mime_cached = false;
    message_metatable(L);
    lua_setmetatable(L, -2);
    return m;
}

void fg_lua_message_push(lua_State *L, fg_msg *msg)
{
    message_push_empty(L)->msg = fg_msg_ref(msg);
}

static int l_message_from_string(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    message_push_empty(L)->msg = fg_msg_from_bytes(s, len);
    return 1;
}

static int l_message_from_file(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    fg_lua_guard *guard = fg_lua_guard_push(L);
    fg_lua_message *m = message_push_empty(L);
    char *err = NULL;
    m->msg = fg_msg_from_file(path, &err);
    if (m->msg)
        return 1;
    guard->ptr = err;
    guard->release = free;
    lua_pushnil(L);
    lua_pushstring(L, err ? err : "cannot read the message file");
    fg_lua_guard_release(guard);
    return 2;
}

bool fg_lua_message_is(lua_State *L, int idx)
{
    return luaL_testudata(L, idx, FG_LUA_MESSAGE_METATABLE) != NULL;
}

static const luaL_Reg message_functions[] = {
    {"from_string", l_message_from_string},
    {"from_file", l_message_from_file},
    {NULL, NULL},
};

int luaopen_fuglu_message(lua_State *L)
{
    fg_lua_mime_init();
    message_metatable(L);
    lua_pop(L, 1);
    return fg_lua_new_module(L, message_functions);
}

const char *fg_lua_bytes(lua_State *L, int idx, size_t *len, const char *what)
{
    *len = 0;
    if (lua_isnoneornil(L, idx))
        return NULL;
    if (fg_lua_message_is(L, idx)) {
        fg_msg *m = fg_lua_message_check(L, idx);
        *len = fg_msg_len(m);
        return fg_msg_data(m);
    }
    if (lua_type(L, idx) != LUA_TSTRING && lua_type(L, idx) != LUA_TNUMBER)
        luaL_error(L, "%s must be a string or a message object", what);
    return lua_tolstring(L, idx, len);
}
