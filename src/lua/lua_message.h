/* lua_message: the Lua module `fuglu_message` and its class, the message object ("fuglu.message"
 * userdata holding a reference to an fg_msg: the bytes stay in C and Lua copies them only when it
 * asks for them), with the raw header parser (lua_message.c) and the MIME view (lua_mime.c).
 *
 *   local message = require "fuglu_message"
 *   message.from_string(s), message.from_file(path)   -- msg | nil, err
 *   msg:size(), msg:bytes([max]), msg:header_block(), msg:headers(), msg:header(name), msg:mime(),
 *   msg:part_payload(i), msg:part_text(i)             (doc/lua-core-api.md)
 */
#ifndef FUGLU_LUA_MESSAGE_H
#define FUGLU_LUA_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <lua.h>

#include "pool/msg.h"

#define FG_LUA_MESSAGE_METATABLE "fuglu.message"

typedef struct fg_lua_mime fg_lua_mime;

typedef struct fg_lua_message {
    fg_msg *msg;            /* one reference, released by __gc */
    fg_lua_mime *mime;      /* the parse of the first mime() call, freed by __gc */
    bool mime_cached;       /* the userdata's environment table holds the Lua parts array */
} fg_lua_message;

/* Pushes a message object for m; the object takes its own reference (fg_msg_ref), the caller keeps
 * its reference. Works before or without require "fuglu_message". */
void fg_lua_message_push(lua_State *L, fg_msg *m);
/* The fg_msg of the message object at idx (a Lua argument error if it is none). The reference stays
 * owned by the object: take one with fg_msg_ref to keep the message beyond the object's life. */
fg_msg *fg_lua_message_check(lua_State *L, int idx);
/* Whether the value at idx is a message object (released or not). */
bool fg_lua_message_is(lua_State *L, int idx);
/* Drops the message object's reference to its bytes (and its parsed MIME tree) now rather than
 * when the collector gets to it: a worker calls it when it is done with a job, so a 20 MB spool
 * file is unmapped at once. Later use of the object raises an error. */
void fg_lua_message_release(lua_State *L, int idx);
/* The bytes of a string or a message object at idx, where they lie (not copied; valid while the
 * value stays on the stack); NULL for nil or none; raises for anything else, naming `what`. */
const char *fg_lua_bytes(lua_State *L, int idx, size_t *len, const char *what);

/* ---- header parsing (the raw header block of a message or part) ---- */

typedef struct fg_lua_message_header {
    const char *name;
    size_t name_len;
    const char *value;      /* raw: folding kept, leading blanks and the trailing line break removed */
    size_t value_len;
} fg_lua_message_header;

/* Advances *pos over block[0..len) to the next well-formed field; false at the end. Lines that are
 * no "Name: value" field (and orphan continuation lines) are skipped. */
bool fg_lua_message_header_next(const char *block, size_t len, size_t *pos, fg_lua_message_header *field);
/* Pushes an array of {name=, value=} for the fields of block[0..len). */
void fg_lua_message_push_headers(lua_State *L, const char *block, size_t len);

/* ---- MIME view (lua_mime.c) ---- */

/* g_mime_init once per process (any thread). */
void fg_lua_mime_init(void);
/* Parses data[0..len) (which must outlive the result; it is not copied). Never NULL. */
fg_lua_mime *fg_lua_mime_parse(const char *data, size_t len);
void fg_lua_mime_free(fg_lua_mime *mime);
/* Pushes the parts array documented for msg:mime(). */
void fg_lua_mime_push_parts(lua_State *L, fg_lua_mime *mime);
/* Pushes the transfer-decoded payload of part index (1-based), or for as_text the text of a text/any
 * leaf part in UTF-8; nil where there is none. */
void fg_lua_mime_push_payload(lua_State *L, fg_lua_mime *mime, lua_Integer index, bool as_text);
/* The number of parts listed. */
size_t fg_lua_mime_count(const fg_lua_mime *mime);
/* The transfer-decoded bytes of leaf part index (1-based), for C consumers that must not copy them
 * into Lua (lua_filetype.c): g_malloc'd (free with g_free), NUL-terminated, *len without the NUL;
 * NULL for multiparts, message/rfc822 parts and indexes out of range. */
char *fg_lua_mime_part_bytes(fg_lua_mime *mime, long index, size_t *len);

/* ---- helpers ---- */

/* Converts in[0..len) from charset (NULL: unknown) to UTF-8. Unknown charsets and US-ASCII: kept if
 * valid UTF-8, else read as ISO-8859-1. Invalid input bytes become U+FFFD. Result g_malloc'd,
 * NUL-terminated, *out_len without the NUL. */
char *fg_lua_mime_utf8_convert(const char *charset, const char *in, size_t len, size_t *out_len);
/* Whether s[0..len) is valid UTF-8 (NUL bytes allowed). */
bool fg_lua_mime_utf8_valid(const char *s, size_t len);

#endif
