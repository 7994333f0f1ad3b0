/* lua_codec: base64 and the RFC 2047 decoder in C, shared by the `fuglu_codec` module and the MIME
 * view (lua_mime.c). See lua_codec.c.
 */
#ifndef FUGLU_LUA_CODEC_H
#define FUGLU_LUA_CODEC_H

#include <stddef.h>

/* Base64 of data[0..len) with padding into out (room for (len + 2) / 3 * 4); returns its length. */
size_t fg_lua_codec_b64_encode(const void *data, size_t len, char *out);
/* Decodes s[0..len) into out (room for len bytes), ignoring whitespace; -1 on anything that is not
 * base64 (bad characters, data after padding, impossible lengths). Missing padding is accepted. */
long fg_lua_codec_b64_decode(const char *s, size_t len, void *out);
/* The value of the hex digit c (either case), -1 for any other character. */
int fg_lua_codec_hex_digit(int c);
/* Decodes the RFC 2047 encoded words in s[0..len) (not unfolded here) to UTF-8; g_malloc'd. */
char *fg_lua_codec_rfc2047_decode(const char *s, size_t len, size_t *out_len);

#endif
