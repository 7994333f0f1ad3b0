/* lua_message: internals shared by the files of the fuglu_core module (src/lua/lua_core.c,
 * lua_message.c, lua_mime.c); the engine's interface is lua_core.h.
 *
 * - the "fuglu.message" userdata (lua_message.c) and its header parser;
 * - the MIME view (lua_mime.c): one GMime parse per message object, parts in depth-first order;
 * - UTF-8 helpers and a guard that frees a C buffer if a Lua error unwinds past it.
 */
#ifndef FUGLU_LUA_MESSAGE_H
#define FUGLU_LUA_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <lua.h>

#include "msg.h"

#define FUGLU_MESSAGE_METATABLE "fuglu.message"

typedef struct fuglu_mime fuglu_mime;

typedef struct fuglu_message {
    fg_msg *msg;            /* one reference, released by __gc */
    fuglu_mime *mime;       /* the parse of the first mime() call, freed by __gc */
    bool mime_cached;       /* the userdata's environment table holds the Lua parts array */
} fuglu_message;

/* Adds message_from_string and message_from_file to the table on top of the stack and makes sure
 * the message metatable exists. */
void fuglu_message_open(lua_State *L);

/* ---- header parsing (the raw header block of a message or part) ---- */

typedef struct fuglu_header_field {
    const char *name;
    size_t name_len;
    const char *value;      /* raw: folding kept, leading blanks and the trailing line break removed */
    size_t value_len;
} fuglu_header_field;

/* Advances *pos over block[0..len) to the next well-formed field; false at the end. Lines that are
 * no "Name: value" field (and orphan continuation lines) are skipped. */
bool fuglu_header_next(const char *block, size_t len, size_t *pos, fuglu_header_field *field);
/* Pushes an array of {name=, value=} for the fields of block[0..len). */
void fuglu_header_push_fields(lua_State *L, const char *block, size_t len);

/* ---- MIME view (lua_mime.c) ---- */

/* g_mime_init once per process (any thread). */
void fuglu_mime_init(void);
/* Parses data[0..len) (which must outlive the result; it is not copied). Never NULL. */
fuglu_mime *fuglu_mime_parse(const char *data, size_t len);
void fuglu_mime_free(fuglu_mime *mime);
/* Pushes the parts array documented for msg:mime(). */
void fuglu_mime_push_parts(lua_State *L, fuglu_mime *mime);
/* Pushes the transfer-decoded payload of part index (1-based), or for as_text the text of a text/any
 * leaf part in UTF-8; nil where there is none. */
void fuglu_mime_push_payload(lua_State *L, fuglu_mime *mime, lua_Integer index, bool as_text);

/* ---- helpers ---- */

/* Converts in[0..len) from charset (NULL: unknown) to UTF-8. Unknown charsets and US-ASCII: kept if
 * valid UTF-8, else read as ISO-8859-1. Invalid input bytes become U+FFFD. Result g_malloc'd,
 * NUL-terminated, *out_len without the NUL. */
char *fuglu_utf8_convert(const char *charset, const char *in, size_t len, size_t *out_len);
/* Whether s[0..len) is valid UTF-8 (NUL bytes allowed). */
bool fuglu_utf8_valid(const char *s, size_t len);

/* Base64 of data[0..len) with padding into out (room for (len + 2) / 3 * 4); returns its length. */
size_t fuglu_b64_encode(const void *data, size_t len, char *out);
/* Decodes s[0..len) into out (room for len bytes), ignoring whitespace; -1 on anything that is not
 * base64 (bad characters, data after padding, impossible lengths). Missing padding is accepted. */
long fuglu_b64_decode(const char *s, size_t len, void *out);
/* Decodes the RFC 2047 encoded words in s[0..len) (not unfolded here) to UTF-8; g_malloc'd. */
char *fuglu_rfc2047_decode(const char *s, size_t len, size_t *out_len);

/* A userdata on the stack whose __gc calls release(ptr) while ptr is set: hold a C allocation in it
 * while calling Lua API functions that may raise, then call fuglu_guard_release. */
typedef struct fuglu_guard {
    void *ptr;
    void (*release)(void *ptr);
} fuglu_guard;

fuglu_guard *fuglu_guard_push(lua_State *L);
/* Releases ptr now (if set) and clears it; the guard can be reused. */
void fuglu_guard_release(fuglu_guard *guard);

#endif
