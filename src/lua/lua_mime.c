/* lua_mime: the MIME view of a message object (msg:mime(), part_payload, part_text) with GMime 3.
 *
 * The message bytes are parsed in place: a GByteArray wraps them without copying (never freed by
 * GLib: the array is released with free_segment FALSE) and the parser keeps the parts as substreams
 * of it, so a 20 MB message is not duplicated by parsing. The fg_msg outlives the parse because the
 * message object frees the parse before it drops its reference.
 *
 * Parts are listed depth-first, root first (depth 0). The message inside a message/rfc822 part
 * follows it at depth + 1, with that inner message's own headers. At most MIME_MAX_PARTS parts and
 * MIME_MAX_DEPTH levels are listed; when parts were left out the array gets `truncated = true`.
 * A message GMime cannot make sense of still has one part: the root as text/plain whose payload is
 * everything after the header block (the whole message when it has no header field at all).
 * Text after a multipart's closing boundary (its epilogue) that starts with "content" is parsed
 * as one more part, listed after the multipart's children with `epilogue = true`: mail clients
 * ignore it, but some MTAs and scanners do not, so the attachment checks must see it.
 *
 * Part fields beyond the GMime values: is_attachment is true for a leaf part with
 * "Content-Disposition: attachment" or a file name. The root's headers are the message's headers
 * exactly as msg:headers() gives them; other parts' headers are GMime's raw values trimmed the same
 * way (blanks after the colon and the final line break removed).
 */
#include <errno.h>
#include <iconv.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include <gmime/gmime.h>
#include <lauxlib.h>

#include "lua/lua_codec.h"
#include "lua/lua_core.h"
#include "lua/lua_message.h"
#include "lib/util.h"

#define MIME_MAX_PARTS 1000
#define MIME_MAX_DEPTH 50

typedef struct mime_part {
    GMimeObject *object;        /* NULL: the text/plain root of a message GMime could not parse */
    GMimeMessage *message;      /* the (inner) message this part is the top of, else NULL */
    int depth;
    bool epilogue;              /* parsed from a multipart's epilogue (text after its last boundary) */
} mime_part;

struct fg_lua_mime {
    const char *data;           /* the message bytes (not owned) */
    size_t len;
    GByteArray *bytes;          /* wraps data without owning it */
    GMimeStream *stream;
    GMimeMessage *message;      /* NULL if the parse failed */
    mime_part *parts;
    size_t nparts;
    size_t cap;
    bool truncated;
    bool headerless;            /* no header field at all: the whole message is the root's body */
    GPtrArray *hidden;          /* the objects parsed from epilogues (owned), or NULL */
};

static pthread_once_t mime_once = PTHREAD_ONCE_INIT;
static GMimeParserOptions *mime_options;

static void mime_init_once(void)
{
    static const char *fallback[] = {"UTF-8", "ISO-8859-1", NULL};
    g_mime_init();
    mime_options = g_mime_parser_options_new();
    g_mime_parser_options_set_fallback_charsets(mime_options, fallback);
}

void fg_lua_mime_init(void)
{
    pthread_once(&mime_once, mime_init_once);
}

/* ---- UTF-8 ---- */

/* Length of the valid UTF-8 character at s (1..4), or 0 if the bytes there are none. */
static size_t utf8_char_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    if (c < 0xC2 || c > 0xF4)
        return 0;
    size_t need = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    if (n < need)
        return 0;
    for (size_t i = 1; i < need; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] >= 0xA0) ||
        (c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] >= 0x90))
        return 0;
    return need;
}

/* Length of the leading pure-ASCII run, 8 bytes at a time (most mail text is ASCII). */
static size_t ascii_prefix(const unsigned char *u, size_t len)
{
    size_t i = 0;
    while (i + 8 <= len) {
        uint64_t word;
        memcpy(&word, u + i, 8);
        if (word & 0x8080808080808080ull)
            break;
        i += 8;
    }
    while (i < len && u[i] < 0x80)
        i++;
    return i;
}

bool fg_lua_mime_utf8_valid(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        if (u[i] < 0x80) {
            i += ascii_prefix(u + i, len - i);
            continue;
        }
        size_t n = utf8_char_len(u + i, len - i);
        if (!n)
            return false;
        i += n;
    }
    return true;
}

static void utf8_append_valid(GString *out, const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t run = i;
        size_t n;
        while (run < len) {
            if (u[run] < 0x80) {
                run += ascii_prefix(u + run, len - run);
                continue;
            }
            if ((n = utf8_char_len(u + run, len - run)) == 0)
                break;
            run += n;
        }
        g_string_append_len(out, s + i, (gssize)(run - i));
        if (run < len) {
            g_string_append_len(out, "\xEF\xBF\xBD", 3);
            run++;
        }
        i = run;
    }
}

static void utf8_append_latin1(GString *out, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            g_string_append_c(out, (char)c);
        } else {
            g_string_append_c(out, (char)(0xC0 | (c >> 6)));
            g_string_append_c(out, (char)(0x80 | (c & 0x3F)));
        }
    }
}

/* iconv from `from` to UTF-8, each unconvertible input byte replaced with U+FFFD. */
static bool utf8_append_iconv(GString *out, const char *from, const char *s, size_t len)
{
    iconv_t cd = iconv_open("UTF-8", from);
    if (cd == (iconv_t)-1)
        return false;
    char *in = (char *)s;
    size_t in_left = len;
    char chunk[4096];
    while (in_left > 0) {
        char *o = chunk;
        size_t o_left = sizeof chunk;
        size_t r = iconv(cd, &in, &in_left, &o, &o_left);
        int saved = errno;
        g_string_append_len(out, chunk, (gssize)(o - chunk));
        if (r == (size_t)-1 && saved != E2BIG) {
            g_string_append_len(out, "\xEF\xBF\xBD", 3);
            in++;
            in_left--;
            iconv(cd, NULL, NULL, NULL, NULL);
        }
    }
    char *o = chunk;
    size_t o_left = sizeof chunk;
    iconv(cd, NULL, NULL, &o, &o_left);
    g_string_append_len(out, chunk, (gssize)(o - chunk));
    iconv_close(cd);
    return true;
}

static bool charset_is(const char *a, const char *const *names)
{
    for (; *names; names++)
        if (g_ascii_strcasecmp(a, *names) == 0)
            return true;
    return false;
}

char *fg_lua_mime_utf8_convert(const char *charset, const char *in, size_t len, size_t *out_len)
{
    static const char *const utf8_names[] = {"utf-8", "utf8", NULL};
    static const char *const unknown_names[] = {"us-ascii", "ascii", "ansi_x3.4-1968", "unknown-8bit",
                                               "x-unknown", "unknown", NULL};
    GString *out = g_string_sized_new(len + len / 8 + 16);
    const char *iconv_name = NULL;
    if (charset && *charset && !charset_is(charset, unknown_names)) {
        fg_lua_mime_init();
        iconv_name = g_mime_charset_iconv_name(charset);
    }
    if (iconv_name && (charset_is(charset, utf8_names) || charset_is(iconv_name, utf8_names))) {
        utf8_append_valid(out, in, len);
    } else if (!iconv_name || !utf8_append_iconv(out, iconv_name, in, len)) {
        if (fg_lua_mime_utf8_valid(in, len))
            g_string_append_len(out, in, (gssize)len);
        else
            utf8_append_latin1(out, in, len);
    }
    *out_len = out->len;
    return g_string_free(out, FALSE);
}

/* ---- parsing ---- */

static bool mime_is_blank_or_eol(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void mime_add(fg_lua_mime *mime, GMimeObject *object, GMimeMessage *message, int depth, bool epilogue)
{
    if (mime->nparts == mime->cap) {
        mime->cap = mime->cap ? mime->cap * 2 : 8;
        mime->parts = xrealloc(mime->parts, mime->cap * sizeof *mime->parts);
    }
    mime->parts[mime->nparts++] = (mime_part){object, message, depth, epilogue};
}

static void mime_walk(fg_lua_mime *mime, GMimeObject *object, GMimeMessage *message, int depth, bool epilogue);

/* A part hidden in a multipart's epilogue: text after the closing boundary that starts (after
 * blanks) with "content" is parsed as one more MIME entity, as Fuglu's attachment manager does,
 * and listed after the multipart's children at their depth. */
static void mime_walk_epilogue(fg_lua_mime *mime, GMimeMultipart *multipart, int depth)
{
    const char *epilogue = g_mime_multipart_get_epilogue(multipart);
    if (!epilogue)
        return;
    while (mime_is_blank_or_eol(*epilogue))
        epilogue++;
    if (g_ascii_strncasecmp(epilogue, "content", 7) != 0)
        return;
    GMimeStream *stream = g_mime_stream_mem_new_with_buffer(epilogue, strlen(epilogue));
    GMimeParser *parser = g_mime_parser_new_with_stream(stream);
    g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
    GMimeObject *hidden = g_mime_parser_construct_part(parser, mime_options);
    g_object_unref(parser);
    g_object_unref(stream);
    if (!hidden)
        return;
    if (!mime->hidden)
        mime->hidden = g_ptr_array_new_with_free_func(g_object_unref);
    g_ptr_array_add(mime->hidden, hidden);
    mime_walk(mime, hidden, NULL, depth, true);
}

static void mime_walk(fg_lua_mime *mime, GMimeObject *object, GMimeMessage *message, int depth, bool epilogue)
{
    if (mime->nparts >= MIME_MAX_PARTS || depth > MIME_MAX_DEPTH) {
        mime->truncated = true;
        return;
    }
    mime_add(mime, object, message, depth, epilogue);
    if (GMIME_IS_MULTIPART(object)) {
        GMimeMultipart *multipart = GMIME_MULTIPART(object);
        int count = g_mime_multipart_get_count(multipart);
        for (int i = 0; i < count; i++) {
            GMimeObject *child = g_mime_multipart_get_part(multipart, i);
            if (child)
                mime_walk(mime, child, NULL, depth + 1, epilogue);
        }
        mime_walk_epilogue(mime, multipart, depth + 1);
    } else if (GMIME_IS_MESSAGE_PART(object)) {
        GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(object));
        GMimeObject *top = inner ? g_mime_message_get_mime_part(inner) : NULL;
        if (top)
            mime_walk(mime, top, inner, depth + 1, epilogue);
    }
}

fg_lua_mime *fg_lua_mime_parse(const char *data, size_t len)
{
    fg_lua_mime_init();
    fg_lua_mime *mime = xcalloc(1, sizeof *mime);
    mime->data = data;
    mime->len = len;
    size_t header_len = fg_msg_header_len(data, len);
    size_t pos = 0;
    fg_lua_message_header field;
    mime->headerless = !fg_lua_message_header_next(data, header_len, &pos, &field);
    if (!mime->headerless && len <= G_MAXUINT) {
        /* GMime only reads the array; it is freed with free_segment FALSE, so data is never freed. */
        mime->bytes = g_byte_array_new_take((guint8 *)(uintptr_t)data, len);
        mime->stream = g_mime_stream_mem_new_with_byte_array(mime->bytes);
        g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(mime->stream), FALSE);
        GMimeParser *parser = g_mime_parser_new_with_stream(mime->stream);
        g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
        g_mime_parser_set_persist_stream(parser, TRUE);
        mime->message = g_mime_parser_construct_message(parser, mime_options);
        g_object_unref(parser);
    }
    GMimeObject *top = mime->message ? g_mime_message_get_mime_part(mime->message) : NULL;
    if (top)
        mime_walk(mime, top, mime->message, 0, false);
    else
        mime_add(mime, NULL, NULL, 0, false);
    return mime;
}

void fg_lua_mime_free(fg_lua_mime *mime)
{
    if (!mime)
        return;
    if (mime->message)
        g_object_unref(mime->message);
    if (mime->stream)
        g_object_unref(mime->stream);
    if (mime->bytes)
        g_byte_array_free(mime->bytes, FALSE);
    if (mime->hidden)
        g_ptr_array_free(mime->hidden, TRUE);
    free(mime->parts);
    free(mime);
}

/* ---- Lua tables ---- */

static void mime_push_lower(lua_State *L, fg_lua_guard *guard, const char *s)
{
    char *lower = g_ascii_strdown(s, -1);
    guard->ptr = lower;
    guard->release = g_free;
    lua_pushstring(L, lower);
    fg_lua_guard_release(guard);
}

static void mime_push_header(lua_State *L, GMimeHeader *header, int n)
{
    const char *name = g_mime_header_get_name(header);
    const char *raw = g_mime_header_get_raw_value(header);
    if (!raw)
        raw = "";
    size_t end = strlen(raw);
    while (*raw == ' ' || *raw == '\t') {
        raw++;
        end--;
    }
    while (end > 0 && (raw[end - 1] == '\n' || raw[end - 1] == '\r'))
        end--;
    lua_createtable(L, 0, 2);
    lua_pushstring(L, name ? name : "");
    lua_setfield(L, -2, "name");
    lua_pushlstring(L, raw, end);
    lua_setfield(L, -2, "value");
    lua_rawseti(L, -2, n);
}

static int mime_header_count(GMimeHeaderList *list)
{
    return list ? g_mime_header_list_get_count(list) : 0;
}

/* Pushes the headers of a part. GMime keeps a message's Content-* headers on its top part, so for
 * the top of an inner message both lists are merged back into message order by their offsets. */
static void mime_push_gmime_headers(lua_State *L, GMimeObject *object, GMimeMessage *message)
{
    GMimeHeaderList *a = g_mime_object_get_header_list(object);
    GMimeHeaderList *b = message ? g_mime_object_get_header_list(GMIME_OBJECT(message)) : NULL;
    int na = mime_header_count(a);
    int nb = mime_header_count(b);
    lua_createtable(L, na + nb, 0);
    int ia = 0, ib = 0, n = 0;
    while (ia < na || ib < nb) {
        GMimeHeader *ha = ia < na ? g_mime_header_list_get_header_at(a, ia) : NULL;
        GMimeHeader *hb = ib < nb ? g_mime_header_list_get_header_at(b, ib) : NULL;
        GMimeHeader *next;
        if (ha && (!hb || g_mime_header_get_offset(ha) < g_mime_header_get_offset(hb))) {
            next = ha;
            ia++;
        } else {
            next = hb ? hb : ha;
            if (hb)
                ib++;
            else
                ia++;
        }
        if (next)
            mime_push_header(L, next, ++n);
    }
}

static bool mime_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The undecoded value of parameter `param` in header `header` of object (g_malloc'd), or NULL. */
static char *mime_raw_param(GMimeObject *object, const char *header, const char *param)
{
    GMimeHeaderList *list = g_mime_object_get_header_list(object);
    GMimeHeader *h = list ? g_mime_header_list_get_header(list, header) : NULL;
    const char *p = h ? g_mime_header_get_raw_value(h) : NULL;
    size_t param_len = strlen(param);
    while (p && *p) {
        bool quoted = false;
        for (; *p && (quoted || *p != ';'); p++) {
            if (*p == '"')
                quoted = !quoted;
            else if (quoted && *p == '\\' && p[1])
                p++;
        }
        if (!*p)
            break;
        p++;
        while (mime_is_space(*p))
            p++;
        const char *name = p;
        while (*p && *p != '=' && *p != ';' && !mime_is_space(*p))
            p++;
        size_t name_len = (size_t)(p - name);
        while (mime_is_space(*p))
            p++;
        if (*p != '=')
            continue;
        p++;
        while (mime_is_space(*p))
            p++;
        if (name_len != param_len || g_ascii_strncasecmp(name, param, param_len) != 0)
            continue;
        GString *value = g_string_new(NULL);
        if (*p == '"') {
            for (p++; *p && *p != '"'; p++) {
                if (*p == '\\' && p[1])
                    p++;
                if (*p != '\r' && *p != '\n')
                    g_string_append_c(value, *p);
            }
        } else {
            for (; *p && *p != ';'; p++)
                if (*p != '\r' && *p != '\n')
                    g_string_append_c(value, *p);
            while (value->len > 0 && mime_is_space(value->str[value->len - 1]))
                g_string_truncate(value, value->len - 1);
        }
        return g_string_free(value, FALSE);
    }
    return NULL;
}

/* The part's file name in UTF-8 (g_malloc'd) or NULL. GMime decodes RFC 2231 and RFC 2047, but its
 * RFC 2047 decoder loses text after padded B words (see lua_codec.c): names written with encoded
 * words are decoded again from the raw parameter with our decoder. */
static char *mime_filename(GMimeObject *object)
{
    char *raw = mime_raw_param(object, "Content-Disposition", "filename");
    if (!raw)
        raw = mime_raw_param(object, "Content-Type", "name");
    if (raw && strstr(raw, "=?")) {
        size_t len;
        char *decoded = fg_lua_codec_rfc2047_decode(raw, strlen(raw), &len);
        g_free(raw);
        return decoded;
    }
    g_free(raw);
    const char *name;
    if (GMIME_IS_PART(object))
        name = g_mime_part_get_filename(GMIME_PART(object));
    else
        name = g_mime_object_get_content_disposition_parameter(object, "filename");
    if (!name)
        return NULL;
    size_t len;
    return fg_lua_mime_utf8_convert(NULL, name, strlen(name), &len);
}

static void mime_set_bool(lua_State *L, const char *key, bool value)
{
    lua_pushboolean(L, value);
    lua_setfield(L, -2, key);
}

static void mime_push_part(lua_State *L, fg_lua_mime *mime, size_t i, fg_lua_guard *guard)
{
    mime_part *part = &mime->parts[i];
    GMimeObject *object = part->object;
    lua_createtable(L, 0, 11);
    lua_pushinteger(L, (lua_Integer)i + 1);
    lua_setfield(L, -2, "index");
    lua_pushinteger(L, part->depth);
    lua_setfield(L, -2, "depth");
    if (i == 0) {
        size_t header_len = fg_msg_header_len(mime->data, mime->len);
        fg_lua_message_push_headers(L, mime->data, header_len);
    } else {
        mime_push_gmime_headers(L, object, part->message);
    }
    lua_setfield(L, -2, "headers");
    if (!object) {
        lua_pushliteral(L, "text/plain");
        lua_setfield(L, -2, "content_type");
        mime_set_bool(L, "is_attachment", false);
        mime_set_bool(L, "is_multipart", false);
        mime_set_bool(L, "is_message", false);
        return;
    }
    GMimeContentType *type = g_mime_object_get_content_type(object);
    char *mime_type = type ? g_mime_content_type_get_mime_type(type) : NULL;
    if (mime_type) {
        for (char *c = mime_type; *c; c++)
            *c = g_ascii_tolower(*c);
        guard->ptr = mime_type;
        guard->release = g_free;
        lua_pushstring(L, mime_type);
        fg_lua_guard_release(guard);
    } else {
        lua_pushliteral(L, "text/plain");
    }
    lua_setfield(L, -2, "content_type");

    const char *charset = g_mime_object_get_content_type_parameter(object, "charset");
    if (charset) {
        mime_push_lower(L, guard, charset);
        lua_setfield(L, -2, "charset");
    }
    bool is_multipart = GMIME_IS_MULTIPART(object);
    bool is_message = GMIME_IS_MESSAGE_PART(object);
    char *filename = mime_filename(object);
    bool has_filename = filename != NULL;
    if (filename) {
        guard->ptr = filename;
        guard->release = g_free;
        lua_pushstring(L, filename);
        fg_lua_guard_release(guard);
        lua_setfield(L, -2, "filename");
    }
    const char *disposition = g_mime_object_get_disposition(object);
    bool attachment_disposition = false;
    if (disposition) {
        attachment_disposition = g_ascii_strcasecmp(disposition, "attachment") == 0;
        mime_push_lower(L, guard, disposition);
        lua_setfield(L, -2, "disposition");
    }
    bool leaf = !is_multipart && !is_message;
    mime_set_bool(L, "is_attachment", leaf && (attachment_disposition || has_filename));
    mime_set_bool(L, "is_multipart", is_multipart);
    mime_set_bool(L, "is_message", is_message);
    if (part->epilogue)
        mime_set_bool(L, "epilogue", true);
}

void fg_lua_mime_push_parts(lua_State *L, fg_lua_mime *mime)
{
    fg_lua_guard *guard = fg_lua_guard_push(L);
    lua_createtable(L, (int)mime->nparts, 1);
    for (size_t i = 0; i < mime->nparts; i++) {
        mime_push_part(L, mime, i, guard);
        lua_rawseti(L, -2, (int)i + 1);
    }
    if (mime->truncated)
        mime_set_bool(L, "truncated", true);
    lua_remove(L, -2);
}

static void mime_byte_array_free(void *array)
{
    g_byte_array_free(array, TRUE);
}

/* The transfer-decoded content of a leaf GMimePart, in a new array. */
static GByteArray *mime_decode(GMimeObject *object)
{
    GByteArray *decoded = g_byte_array_new();
    GMimeDataWrapper *content = g_mime_part_get_content(GMIME_PART(object));
    if (content) {
        GMimeStream *out = g_mime_stream_mem_new_with_byte_array(decoded);
        g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(out), FALSE);
        g_mime_data_wrapper_write_to_stream(content, out);
        g_object_unref(out);
    }
    return decoded;
}

/* The body of a message without a usable MIME structure: everything after the empty line. */
static void mime_raw_body(fg_lua_mime *mime, const char **body, size_t *len)
{
    size_t off = mime->headerless ? 0 : fg_msg_header_len(mime->data, mime->len);
    if (off < mime->len && mime->data[off] == '\r')
        off++;
    if (off < mime->len && mime->data[off] == '\n')
        off++;
    *body = mime->data + off;
    *len = mime->len - off;
}

void fg_lua_mime_push_payload(lua_State *L, fg_lua_mime *mime, lua_Integer index, bool as_text)
{
    if (index < 1 || (size_t)index > mime->nparts) {
        lua_pushnil(L);
        return;
    }
    mime_part *part = &mime->parts[index - 1];
    GMimeObject *object = part->object;
    if (object && !GMIME_IS_PART(object)) {
        lua_pushnil(L);
        return;
    }
    const char *charset = NULL;
    if (object) {
        GMimeContentType *type = g_mime_object_get_content_type(object);
        if (as_text && !(type && g_mime_content_type_is_type(type, "text", "*"))) {
            lua_pushnil(L);
            return;
        }
        charset = g_mime_object_get_content_type_parameter(object, "charset");
    }
    fg_lua_guard *guard = fg_lua_guard_push(L);
    const char *bytes;
    size_t len;
    if (object) {
        GByteArray *decoded = mime_decode(object);
        guard->ptr = decoded;
        guard->release = mime_byte_array_free;
        bytes = (const char *)decoded->data;
        len = decoded->len;
    } else {
        mime_raw_body(mime, &bytes, &len);
    }
    if (as_text) {
        size_t text_len;
        char *text = fg_lua_mime_utf8_convert(charset, bytes ? bytes : "", len, &text_len);
        fg_lua_guard_release(guard);
        guard->ptr = text;
        guard->release = g_free;
        lua_pushlstring(L, text, text_len);
    } else {
        lua_pushlstring(L, bytes ? bytes : "", len);
    }
    fg_lua_guard_release(guard);
    lua_remove(L, -2);
}

size_t fg_lua_mime_count(const fg_lua_mime *mime)
{
    return mime->nparts;
}

char *fg_lua_mime_part_bytes(fg_lua_mime *mime, long index, size_t *len)
{
    *len = 0;
    if (index < 1 || (size_t)index > mime->nparts)
        return NULL;
    GMimeObject *object = mime->parts[index - 1].object;
    if (object && !GMIME_IS_PART(object))
        return NULL;
    if (!object) {
        const char *body;
        mime_raw_body(mime, &body, len);
        char *copy = g_malloc(*len + 1);
        memcpy(copy, body, *len);
        copy[*len] = '\0';
        return copy;
    }
    GByteArray *decoded = mime_decode(object);
    *len = decoded->len;
    g_byte_array_append(decoded, (const guint8 *)"", 1);   /* NUL-terminated, not counted */
    return (char *)g_byte_array_free(decoded, FALSE);
}
