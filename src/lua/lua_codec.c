/* lua_codec: the Lua module `fuglu_codec` and the codecs the MIME view shares with it: base64 and
 * RFC 2047 (decoding encoded words, encoding a header value).
 *
 *   local codec = require "fuglu_codec"
 *   codec.b64encode(s), codec.b64decode(s)   -- decode ignores whitespace; nil on garbage
 *   codec.rfc2047_decode(value)             -- encoded words decoded to UTF-8
 *   codec.qp_encode(s [, binary]), codec.qp_decode(s)  -- quoted-printable
 *   codec.header_encode(name, value)          -- RFC 2047 (UTF-8, B) when non-ASCII, folded
 *
 * The decoder is our own because GMime 3.2's merges adjacent B-encoded words before decoding and
 * drops everything after the first padded word ("=?UTF-8?B?w6Q=?= =?UTF-8?B?LmV4ZQ==?=" gives "ä",
 * not "ä.exe"), which would hide attachment names from the filters. Here each word is decoded on its
 * own; the bytes of adjacent words in the same charset are joined before the charset conversion (so
 * a character split across words survives), whitespace between encoded words is dropped, and text
 * outside encoded words is kept (UTF-8 if valid, else read as ISO-8859-1). Like Python's
 * decode_header, encoded words are recognised anywhere, not only between blanks. A word whose
 * payload cannot be decoded is kept as it is.
 *
 * header_encode is written here instead of using GMime's formatter so its output is stable:
 * pure ASCII values are only folded at blanks; other values become =?UTF-8?B?...?= words split on
 * character boundaries, each word at most 75 characters and each line ("Name: " counted on the
 * first) at most 78, joined with "\r\n ".
 *
 * Memory rule: C allocations never cross a Lua call that may raise; temporary buffers are Lua
 * userdata (collected if an error unwinds) or sit in an fg_lua_guard.
 */
#include <string.h>

#include <glib.h>
#include <lauxlib.h>
#include <stdbool.h>

#include "lua/lua_codec.h"
#include "lib/util.h"
#include "lua/lua_core.h"
#include "lua/lua_message.h"

#define CODEC_LINE_MAX 78
#define CODEC_WORD_MAX 75
#define CODEC_WORD_BYTES 45             /* 60 base64 characters + "=?UTF-8?B?" "?=" = 72 */

static const char codec_b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t fg_lua_codec_b64_encode(const void *data, size_t len, char *out)
{
    const unsigned char *in = data;
    size_t o = 0;
    size_t i = 0;
    for (; i + 2 < len; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[o++] = codec_b64_alphabet[v >> 18];
        out[o++] = codec_b64_alphabet[(v >> 12) & 63];
        out[o++] = codec_b64_alphabet[(v >> 6) & 63];
        out[o++] = codec_b64_alphabet[v & 63];
    }
    if (i < len) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < len ? (unsigned)in[i + 1] << 8 : 0);
        out[o++] = codec_b64_alphabet[v >> 18];
        out[o++] = codec_b64_alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < len ? codec_b64_alphabet[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    return o;
}

static int codec_b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

long fg_lua_codec_b64_decode(const char *s, size_t len, void *out_buf)
{
    unsigned char *out = out_buf;
    size_t o = 0;
    size_t count = 0;
    size_t pads = 0;
    unsigned acc = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v')
            continue;
        if (c == '=') {
            pads++;
            continue;
        }
        int v = codec_b64_value(c);
        if (v < 0 || pads > 0)
            return -1;
        acc = acc << 6 | (unsigned)v;
        if (++count % 4 == 0) {
            out[o++] = (unsigned char)(acc >> 16);
            out[o++] = (unsigned char)(acc >> 8);
            out[o++] = (unsigned char)acc;
            acc = 0;
        }
    }
    size_t rest = count % 4;
    if (rest == 1 || pads > 2 || (pads > 0 && (count + pads) % 4 != 0))
        return -1;
    if (rest == 2) {
        out[o++] = (unsigned char)(acc >> 4);
    } else if (rest == 3) {
        out[o++] = (unsigned char)(acc >> 10);
        out[o++] = (unsigned char)(acc >> 2);
    }
    return (long)o;
}

/* A run of bytes waiting for conversion: raw text (charset "") or encoded words of one charset. */
typedef struct codec_run {
    GString *bytes;
    char charset[64];
    bool encoded;
} codec_run;

static void codec_flush(GString *out, codec_run *run)
{
    if (run->bytes->len > 0) {
        size_t len;
        char *utf8 = fg_lua_mime_utf8_convert(run->encoded ? run->charset : NULL, run->bytes->str,
                                        run->bytes->len, &len);
        g_string_append_len(out, utf8, (gssize)len);
        g_free(utf8);
        g_string_truncate(run->bytes, 0);
    }
}

int fg_lua_codec_hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Parses the encoded word at s[0..len) (which starts with "=?"). On success returns its length and
 * fills charset (without an RFC 2231 language) and the decoded bytes. */
static size_t codec_word(const char *s, size_t len, char charset[64], GString *bytes)
{
    size_t i = 2;
    size_t cs_start = i;
    while (i < len && s[i] != '?' && s[i] != ' ' && s[i] != '\t' && i - cs_start < 63)
        i++;
    if (i >= len || s[i] != '?' || i == cs_start || i + 3 > len || s[i + 2] != '?')
        return 0;
    size_t cs_len = i - cs_start;
    char encoding = (char)(s[i + 1] | 0x20);
    if (encoding != 'b' && encoding != 'q')
        return 0;
    size_t text = i + 3;
    const char *end = NULL;
    for (size_t j = text; j + 1 < len; j++) {
        if (s[j] == '?' && s[j + 1] == '=') {
            end = s + j;
            break;
        }
    }
    if (!end)
        return 0;
    size_t text_len = (size_t)(end - (s + text));
    memcpy(charset, s + cs_start, cs_len);
    charset[cs_len] = '\0';
    char *star = strchr(charset, '*');
    if (star)
        *star = '\0';
    if (encoding == 'b') {
        size_t old = bytes->len;
        g_string_set_size(bytes, old + text_len + 1);
        long n = fg_lua_codec_b64_decode(s + text, text_len, bytes->str + old);
        if (n < 0) {
            g_string_truncate(bytes, old);
            return 0;
        }
        g_string_truncate(bytes, old + (size_t)n);
    } else {
        for (size_t j = text; j < text + text_len; j++) {
            int hi, lo;
            if (s[j] == '_') {
                g_string_append_c(bytes, ' ');
            } else if (s[j] == '=' && j + 2 < text + text_len &&
                       (hi = fg_lua_codec_hex_digit(s[j + 1])) >= 0 && (lo = fg_lua_codec_hex_digit(s[j + 2])) >= 0) {
                g_string_append_c(bytes, (char)(hi << 4 | lo));
                j += 2;
            } else {
                g_string_append_c(bytes, s[j]);
            }
        }
    }
    return (size_t)(end - s) + 2;
}

char *fg_lua_codec_rfc2047_decode(const char *s, size_t len, size_t *out_len)
{
    GString *out = g_string_sized_new(len + 16);
    codec_run run = {g_string_new(NULL), "", false};
    GString *word = g_string_new(NULL);
    size_t blank_start = 0;         /* blanks after an encoded word, dropped if another follows */
    bool after_word = false;
    for (size_t i = 0; i < len;) {
        if (s[i] == '=' && i + 1 < len && s[i + 1] == '?') {
            char charset[64];
            g_string_truncate(word, 0);
            size_t n = codec_word(s + i, len - i, charset, word);
            if (n > 0) {
                bool joins = run.encoded && g_ascii_strcasecmp(run.charset, charset) == 0;
                if (!joins || !after_word) {
                    codec_flush(out, &run);
                    g_strlcpy(run.charset, charset, sizeof run.charset);
                    run.encoded = true;
                }
                g_string_append_len(run.bytes, word->str, (gssize)word->len);
                i += n;
                blank_start = i;
                after_word = true;
                continue;
            }
        }
        if (after_word) {
            if (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n') {
                i++;
                continue;
            }
            codec_flush(out, &run);
            run.encoded = false;
            g_string_append_len(run.bytes, s + blank_start, (gssize)(i - blank_start));
            after_word = false;
        }
        if (run.encoded) {
            codec_flush(out, &run);
            run.encoded = false;
        }
        g_string_append_c(run.bytes, s[i]);
        i++;
    }
    if (after_word) {
        codec_flush(out, &run);
        run.encoded = false;
        g_string_append_len(run.bytes, s + blank_start, (gssize)(len - blank_start));
    }
    codec_flush(out, &run);
    g_string_free(run.bytes, TRUE);
    g_string_free(word, TRUE);
    *out_len = out->len;
    return g_string_free(out, FALSE);
}

/* ---- the Lua functions ---- */

static int l_codec_b64encode(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    if (len > ((size_t)-1) / 2)
        return luaL_argerror(L, 1, "string too long");
    char *out = lua_newuserdata(L, (len + 2) / 3 * 4 + 1);
    size_t n = fg_lua_codec_b64_encode(s, len, out);
    lua_pushlstring(L, out, n);
    return 1;
}

static int l_codec_b64decode(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    unsigned char *out = lua_newuserdata(L, len + 1);
    long n = fg_lua_codec_b64_decode(s, len, out);
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
static size_t codec_unfold(const char *s, size_t len, char *out, bool space_for_breaks)
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

static int l_codec_rfc2047_decode(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    char *unfolded = lua_newuserdata(L, len + 1);
    len = codec_unfold(s, len, unfolded, false);
    fg_lua_guard *guard = fg_lua_guard_push(L);
    size_t decoded_len;
    guard->ptr = fg_lua_codec_rfc2047_decode(unfolded, len, &decoded_len);
    guard->release = g_free;
    lua_pushlstring(L, guard->ptr, decoded_len);
    fg_lua_guard_release(guard);
    return 1;
}

static bool codec_is_ascii(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] >= 0x80)
            return false;
    return true;
}

/* Folds an ASCII value before blanks so lines stay within CODEC_LINE_MAX where the words allow. */
static void codec_fold_ascii(luaL_Buffer *b, size_t name_len, const char *s, size_t len)
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
        if (line_has_text && starts_blank && column + (j - i) > CODEC_LINE_MAX) {
            luaL_addstring(b, "\r\n");
            column = 0;
        }
        luaL_addlstring(b, s + i, j - i);
        column += j - i;
        line_has_text = true;
        i = j;
    }
}

static size_t codec_utf8_step(const char *s, size_t len)
{
    const unsigned char c = (unsigned char)s[0];
    size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    return n > len ? len : n;
}

/* Encodes valid UTF-8 s[0..len) as B-encoded words joined with "\r\n ". */
static void codec_encode_words(luaL_Buffer *b, size_t name_len, const char *s, size_t len)
{
    static const size_t overhead = sizeof "=?UTF-8?B?" "?=" - 1;
    size_t first_room = name_len + 2 + overhead < CODEC_LINE_MAX ?
                        CODEC_LINE_MAX - name_len - 2 - overhead : 0;
    size_t cap = first_room / 4 * 3;
    if (cap > CODEC_WORD_BYTES)
        cap = CODEC_WORD_BYTES;
    for (size_t pos = 0; pos < len; cap = CODEC_WORD_BYTES) {
        size_t take = 0;
        while (pos + take < len) {
            size_t n = codec_utf8_step(s + pos + take, len - pos - take);
            if (take + n > cap && take > 0)
                break;
            take += n;
            if (take >= cap)
                break;
        }
        if (pos > 0)
            luaL_addstring(b, "\r\n ");
        char word[CODEC_WORD_MAX + 1];
        size_t n = fg_lua_codec_b64_encode(s + pos, take, word);
        luaL_addstring(b, "=?UTF-8?B?");
        luaL_addlstring(b, word, n);
        luaL_addstring(b, "?=");
        pos += take;
    }
}

static int l_codec_header_encode(lua_State *L)
{
    size_t name_len, len;
    luaL_checklstring(L, 1, &name_len);
    const char *value = luaL_checklstring(L, 2, &len);
    char *flat = lua_newuserdata(L, len + 1);
    len = codec_unfold(value, len, flat, true);
    luaL_Buffer b;
    if (codec_is_ascii(flat, len)) {
        luaL_buffinit(L, &b);
        codec_fold_ascii(&b, name_len, flat, len);
        luaL_pushresult(&b);
        return 1;
    }
    if (!fg_lua_mime_utf8_valid(flat, len)) {
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
    codec_encode_words(&b, name_len, flat, len);
    luaL_pushresult(&b);
    return 1;
}

/* ---- quoted-printable (RFC 2045 6.7) ---- */

/* codec.qp_decode(s): =XX (either case) decoded, soft line breaks (= at a line's end) removed,
 * blanks before a line break dropped (they were added in transport); a malformed = is kept. */
static int l_codec_qp_decode(lua_State *L)
{
    size_t n;
    const char *in = luaL_checklstring(L, 1, &n);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    size_t i = 0;
    while (i < n) {
        size_t eol = i;
        while (eol < n && in[eol] != '\n')
            eol++;
        size_t end = eol;                       /* the line without CR, then without its trailing blanks */
        if (end > i && in[end - 1] == '\r')
            end--;
        while (end > i && (in[end - 1] == ' ' || in[end - 1] == '\t'))
            end--;
        bool soft = end > i && in[end - 1] == '=';
        if (soft)
            end--;
        for (size_t k = i; k < end; k++) {
            int hi, lo;
            if (in[k] == '=' && k + 2 < end && (hi = fg_hexval(in[k + 1])) >= 0 &&
                (lo = fg_hexval(in[k + 2])) >= 0) {
                luaL_addchar(&b, (char)(hi << 4 | lo));
                k += 2;
            } else {
                luaL_addchar(&b, in[k]);
            }
        }
        if (eol < n && !soft)
            luaL_addlstring(&b, "\r\n", 2);
        i = eol < n ? eol + 1 : n;
    }
    luaL_pushresult(&b);
    return 1;
}

/* codec.qp_encode(s [, binary]): lines of at most 76 characters with soft breaks; text line breaks
 * (LF or CRLF) become CRLF hard breaks, unless binary, where CR and LF are encoded as well. */
static int l_codec_qp_encode(lua_State *L)
{
    size_t n;
    const unsigned char *in = (const unsigned char *)luaL_checklstring(L, 1, &n);
    bool binary = lua_toboolean(L, 2);
    static const char digits[] = "0123456789ABCDEF";
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    size_t col = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = in[i];
        if (!binary && (c == '\n' || (c == '\r' && i + 1 < n && in[i + 1] == '\n'))) {
            if (c == '\r')
                i++;
            luaL_addlstring(&b, "\r\n", 2);
            col = 0;
            continue;
        }
        bool at_line_end = i + 1 == n || (!binary && (in[i + 1] == '\n' || in[i + 1] == '\r'));
        bool plain = (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !at_line_end);
        size_t width = plain ? 1 : 3;
        if (col + width > 75) {                 /* 75 + the soft break's "=" */
            luaL_addlstring(&b, "=\r\n", 3);
            col = 0;
        }
        if (plain) {
            luaL_addchar(&b, (char)c);
        } else {
            char e[3] = {'=', digits[c >> 4], digits[c & 15]};
            luaL_addlstring(&b, e, 3);
        }
        col += width;
    }
    luaL_pushresult(&b);
    return 1;
}

static const luaL_Reg codec_functions[] = {
    {"qp_encode", l_codec_qp_encode},
    {"qp_decode", l_codec_qp_decode},
    {"b64encode", l_codec_b64encode},
    {"b64decode", l_codec_b64decode},
    {"rfc2047_decode", l_codec_rfc2047_decode},
    {"header_encode", l_codec_header_encode},
    {NULL, NULL},
};

int luaopen_fuglu_codec(lua_State *L)
{
    return fg_lua_new_module(L, codec_functions);
}
