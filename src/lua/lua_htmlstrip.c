/* lua_htmlstrip: the Lua module `fuglu_htmlstrip`: the C implementation of lua/fuglu/htmlstrip.lua's
 * strip() with the default element list (script, style), as `require("fuglu_htmlstrip").strip(text)`.
 *
 * It gives byte for byte the result of the Lua version, which is a chain of whole-text passes:
 *   1. "\r\n", "\n" and "\r" become one space each;
 *   2. when the text has a "<": comments "<!--...-->" go (non-greedy), then everything from an
 *      unterminated "<!--" on; <script>/<style> elements go with their content (an unterminated one
 *      drops the rest); "<![CDATA[x]]>" becomes x; "<!...>" and "<?...>" go; tags "</?[A-Za-z][^>]*>"
 *      go;
 *   3. entities: "&#xHEX;" (";" optional), then "&#DEC;" (";" optional), then "&name;" (a short
 *      table, exact name first, then lower-cased; unknown names stay);
 *   4. U+00A0 (C2 A0) becomes a space.
 * Each pass reads the output of the one before, exactly as the chained gsub calls do (a removal can
 * join text into a new match for a later pass, and the C version must see that too), so the passes
 * are kept separate. A pass that finds nothing to change says so (HTMLSTRIP_SAME) and costs one
 * memchr walk; none of them makes the text longer, so two buffers of the input's size are enough.
 * glibc's memmem is slow for these needles; htmlstrip_find walks memchr hits of the first byte.
 * Character classes are LuaJIT's: ASCII only, %s = 9-13 and 32.
 */
#include "lua/lua_codec.h"
#include "lua/lua_core.h"
#include "lib/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

/* What a pass returns when the text has nothing it changes (its output is then not used). */
#define HTMLSTRIP_SAME ((size_t)-1)

/* The first occurrence of needle (len >= 1) in s[0..n), or NULL. */
static const char *htmlstrip_find(const char *s, size_t n, const char *needle, size_t len)
{
    const char *end = s + n;
    for (const char *p = s; (size_t)(end - p) >= len; p++) {
        p = memchr(p, needle[0], (size_t)(end - p) - len + 1);
        if (!p)
            return NULL;
        if (memcmp(p + 1, needle + 1, len - 1) == 0)
            return p;
    }
    return NULL;
}

static int htmlstrip_is_space(unsigned char c)
{
    return c == ' ' || (c >= 9 && c <= 13);
}

static int htmlstrip_is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int htmlstrip_is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static unsigned char htmlstrip_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* Whether s[0..n) equals the lower-case ASCII word w, ignoring ASCII case. */
static int htmlstrip_caseeq(const char *s, const char *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (htmlstrip_lower((unsigned char)s[i]) != (unsigned char)w[i])
            return 0;
    return 1;
}

/* "\r?\n" -> " ". */
static size_t htmlstrip_newlines(const char *in, size_t n, char *out)
{
    const char *nl = memchr(in, '\n', n);
    if (!nl)
        return HTMLSTRIP_SAME;
    size_t o = 0, i = 0;
    while (nl) {
        size_t p = (size_t)(nl - in);
        size_t span = (p > i && in[p - 1] == '\r') ? p - 1 - i : p - i;
        memcpy(out + o, in + i, span);
        o += span;
        out[o++] = ' ';
        i = p + 1;
        nl = memchr(in + i, '\n', n - i);
    }
    memcpy(out + o, in + i, n - i);
    return o + (n - i);
}

/* "\r" -> " " (after the pass above, as the second gsub). */
static size_t htmlstrip_returns(const char *in, size_t n, char *out)
{
    if (!memchr(in, '\r', n))
        return HTMLSTRIP_SAME;
    for (size_t i = 0; i < n; i++)
        out[i] = in[i] == '\r' ? ' ' : in[i];
    return n;
}

/* Comments: "<!--" ... first "-->" starting after it, removed; then from the first "<!--" left
 * (unterminated, or made by joining) to the end. */
static size_t htmlstrip_comments(const char *in, size_t n, char *out)
{
    size_t o = 0, i = 0;
    int changed = 0;
    while (i < n) {
        const char *open = htmlstrip_find(in + i, n - i, "<!--", 4);
        if (!open)
            break;
        size_t p = (size_t)(open - in);
        const char *close = htmlstrip_find(in + p + 4, n - p - 4, "-->", 3);
        if (!close)
            break;      /* no later "<!--" has a "-->" either: the rest is copied */
        memcpy(out + o, in + i, p - i);
        o += p - i;
        i = (size_t)(close - in) + 3;
        changed = 1;
    }
    if (!changed) {
        const char *open = htmlstrip_find(in, n, "<!--", 4);
        if (!open)
            return HTMLSTRIP_SAME;
        memcpy(out, in, (size_t)(open - in));
        return (size_t)(open - in);
    }
    memcpy(out + o, in + i, n - i);
    o += n - i;
    const char *open = htmlstrip_find(out, o, "<!--", 4);
    if (open)
        o = (size_t)(open - out);
    return o;
}

static const char *const htmlstrip_elements[] = {"script", "style"};

/* The element (index into htmlstrip_elements) whose start tag "<name[%s/>]" begins at in[p] (a '<'),
 * or -1. */
static int htmlstrip_element_at(const char *in, size_t n, size_t p)
{
    for (int e = 0; e < 2; e++) {
        size_t len = strlen(htmlstrip_elements[e]);
        if (p + 1 + len < n && htmlstrip_caseeq(in + p + 1, htmlstrip_elements[e], len)) {
            unsigned char c = (unsigned char)in[p + 1 + len];
            if (htmlstrip_is_space(c) || c == '/' || c == '>')
                return e;
        }
    }
    return -1;
}

/* The end (one past '>') of the first "</name%s*>" at or after from, or 0 if there is none. */
static size_t htmlstrip_close_tag(const char *in, size_t n, size_t from, const char *name)
{
    size_t len = strlen(name);
    size_t i = from;
    while (i < n) {
        const char *lt = memchr(in + i, '<', n - i);
        if (!lt)
            return 0;
        size_t p = (size_t)(lt - in);
        if (p + 2 + len <= n && in[p + 1] == '/' && htmlstrip_caseeq(in + p + 2, name, len)) {
            size_t q = p + 2 + len;
            while (q < n && htmlstrip_is_space((unsigned char)in[q]))
                q++;
            if (q < n && in[q] == '>')
                return q + 1;
        }
        i = p + 1;
    }
    return 0;
}

/* <script> and <style> elements with their content; an unterminated one drops the rest. */
static size_t htmlstrip_elements_pass(const char *in, size_t n, char *out)
{
    size_t o = 0, pos = 0, i = 0;
    int changed = 0;
    while (i < n) {
        const char *lt = memchr(in + i, '<', n - i);
        if (!lt)
            break;
        size_t p = (size_t)(lt - in);
        int e = htmlstrip_element_at(in, n, p);
        if (e < 0) {
            i = p + 1;
            continue;
        }
        changed = 1;
        memcpy(out + o, in + pos, p - pos);
        o += p - pos;
        size_t end = htmlstrip_close_tag(in, n, p, htmlstrip_elements[e]);
        if (end == 0)
            return o;
        pos = i = end;
    }
    if (!changed)
        return HTMLSTRIP_SAME;
    memcpy(out + o, in + pos, n - pos);
    return o + (n - pos);
}

/* "<![CDATA[x]]>" -> x (non-greedy; an unterminated one stays as it is). */
static size_t htmlstrip_cdata(const char *in, size_t n, char *out)
{
    size_t o = 0, i = 0;
    while (i < n) {
        const char *open = htmlstrip_find(in + i, n - i, "<![CDATA[", 9);
        if (!open)
            break;
        size_t p = (size_t)(open - in);
        const char *close = htmlstrip_find(in + p + 9, n - p - 9, "]]>", 3);
        if (!close)
            break;
        memcpy(out + o, in + i, p - i);
        o += p - i;
        size_t c = (size_t)(close - in);
        memcpy(out + o, in + p + 9, c - p - 9);
        o += c - p - 9;
        i = c + 3;
    }
    if (i == 0)
        return HTMLSTRIP_SAME;
    memcpy(out + o, in + i, n - i);
    return o + (n - i);
}

/* Removes "<" X [^>]* ">" where X is '!' or '?' (decls = 1) or "/?[A-Za-z]" (decls = 0). */
static size_t htmlstrip_tags(const char *in, size_t n, char *out, int decls)
{
    size_t o = 0, i = 0;
    int changed = 0;
    while (i < n) {
        const char *lt = memchr(in + i, '<', n - i);
        if (!lt)
            break;
        size_t p = (size_t)(lt - in);
        size_t body = 0;     /* index after the tag's fixed start, 0 if "<" starts no tag */
        if (decls) {
            if (p + 1 < n && (in[p + 1] == '!' || in[p + 1] == '?'))
                body = p + 2;
        } else if (p + 1 < n && htmlstrip_is_alpha((unsigned char)in[p + 1])) {
            body = p + 2;
        } else if (p + 2 < n && in[p + 1] == '/' && htmlstrip_is_alpha((unsigned char)in[p + 2])) {
            body = p + 3;
        }
        const char *gt = body ? memchr(in + body, '>', n - body) : NULL;
        if (body && !gt)
            break;          /* no '>' after this point: no later tag can end either */
        if (!gt) {
            memcpy(out + o, in + i, p + 1 - i);
            o += p + 1 - i;
            i = p + 1;
            continue;
        }
        memcpy(out + o, in + i, p - i);
        o += p - i;
        i = (size_t)(gt - in) + 1;
        changed = 1;
    }
    if (!changed)
        return HTMLSTRIP_SAME;
    memcpy(out + o, in + i, n - i);
    return o + (n - i);
}

/* utf8_char of htmlstrip.lua: U+00A0 -> " ", invalid -> U+FFFD; returns the bytes written. */
static size_t htmlstrip_utf8(uint32_t cp, char *out)
{
    if (cp == 0xA0) {
        out[0] = ' ';
        return 1;
    }
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        cp = 0xFFFD;
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Numeric references: "&#x" HEX+ ";"? (hex = 1) or "&#" DEC+ ";"? (hex = 0). Values above
 * U+10FFFF saturate (they give U+FFFD, as tonumber's huge results do in Lua). */
static size_t htmlstrip_numeric(const char *in, size_t n, char *out, int hex)
{
    size_t o = 0, i = 0;
    int changed = 0;
    while (i < n) {
        const char *amp = memchr(in + i, '&', n - i);
        if (!amp)
            break;
        size_t p = (size_t)(amp - in);
        size_t q = p + 1;
        if (q < n && in[q] == '#') {
            q++;
            if (hex) {
                if (q < n && (in[q] == 'x' || in[q] == 'X'))
                    q++;
                else
                    q = 0;
            }
        } else {
            q = 0;
        }
        uint32_t cp = 0;
        size_t digits = 0;
        while (q && q < n) {
            int d = hex ? fg_lua_codec_hex_digit((unsigned char)in[q])
                        : (htmlstrip_is_digit((unsigned char)in[q]) ? in[q] - '0' : -1);
            if (d < 0)
                break;
            cp = cp * (hex ? 16u : 10u) + (uint32_t)d;
            if (cp > 0x10FFFF)
                cp = 0x110000;
            digits++;
            q++;
        }
        if (!q || digits == 0) {
            memcpy(out + o, in + i, p + 1 - i);
            o += p + 1 - i;
            i = p + 1;
            continue;
        }
        if (q < n && in[q] == ';')
            q++;
        memcpy(out + o, in + i, p - i);
        o += p - i;
        o += htmlstrip_utf8(cp, out + o);
        i = q;
        changed = 1;
    }
    if (!changed)
        return HTMLSTRIP_SAME;
    memcpy(out + o, in + i, n - i);
    return o + (n - i);
}

static const struct {
    const char *name;
    const char *text;
} htmlstrip_named[] = {
    {"amp", "&"}, {"lt", "<"}, {"gt", ">"}, {"quot", "\""}, {"apos", "'"}, {"nbsp", " "},
    {"copy", "\xC2\xA9"}, {"reg", "\xC2\xAE"}, {"euro", "\xE2\x82\xAC"}, {"shy", ""},
    {"auml", "\xC3\xA4"}, {"ouml", "\xC3\xB6"}, {"uuml", "\xC3\xBC"}, {"szlig", "\xC3\x9F"},
    {"Auml", "\xC3\x84"}, {"Ouml", "\xC3\x96"}, {"Uuml", "\xC3\x9C"}, {"eacute", "\xC3\xA9"},
    {"egrave", "\xC3\xA8"}, {"agrave", "\xC3\xA0"}, {"ccedil", "\xC3\xA7"},
    {"hellip", "\xE2\x80\xA6"}, {"ndash", "\xE2\x80\x93"}, {"mdash", "\xE2\x80\x94"},
    {"lsquo", "\xE2\x80\x98"}, {"rsquo", "\xE2\x80\x99"}, {"ldquo", "\xE2\x80\x9C"},
    {"rdquo", "\xE2\x80\x9D"}, {"bull", "\xE2\x80\xA2"}, {"trade", "\xE2\x84\xA2"},
};

#define HTMLSTRIP_NAME_MAX 16

/* The replacement for entity name s[0..len): exact name first, then the lower-cased one. */
static const char *htmlstrip_lookup(const char *s, size_t len)
{
    size_t count = sizeof htmlstrip_named / sizeof htmlstrip_named[0];
    if (len > HTMLSTRIP_NAME_MAX)
        return NULL;
    for (size_t k = 0; k < count; k++)
        if (strlen(htmlstrip_named[k].name) == len && memcmp(htmlstrip_named[k].name, s, len) == 0)
            return htmlstrip_named[k].text;
    char lower[HTMLSTRIP_NAME_MAX];
    for (size_t j = 0; j < len; j++)
        lower[j] = (char)htmlstrip_lower((unsigned char)s[j]);
    for (size_t k = 0; k < count; k++)
        if (strlen(htmlstrip_named[k].name) == len && memcmp(htmlstrip_named[k].name, lower, len) == 0)
            return htmlstrip_named[k].text;
    return NULL;
}

/* Named references "&" [A-Za-z][A-Za-z0-9]* ";"; unknown ones are kept (and skipped as a whole). */
static size_t htmlstrip_named_pass(const char *in, size_t n, char *out)
{
    size_t o = 0, i = 0;
    int changed = 0;
    while (i < n) {
        const char *amp = memchr(in + i, '&', n - i);
        if (!amp)
            break;
        size_t p = (size_t)(amp - in);
        size_t q = p + 1;
        if (q < n && htmlstrip_is_alpha((unsigned char)in[q])) {
            q++;
            while (q < n && (htmlstrip_is_alpha((unsigned char)in[q]) || htmlstrip_is_digit((unsigned char)in[q])))
                q++;
        }
        if (q == p + 1 || q >= n || in[q] != ';') {
            memcpy(out + o, in + i, p + 1 - i);
            o += p + 1 - i;
            i = p + 1;
            continue;
        }
        const char *text = htmlstrip_lookup(in + p + 1, q - p - 1);
        memcpy(out + o, in + i, p - i);
        o += p - i;
        if (text) {
            size_t tl = strlen(text);
            memcpy(out + o, text, tl);
            o += tl;
            changed = 1;
        } else {
            memcpy(out + o, in + p, q + 1 - p);
            o += q + 1 - p;
        }
        i = q + 1;
    }
    if (!changed)
        return HTMLSTRIP_SAME;
    memcpy(out + o, in + i, n - i);
    return o + (n - i);
}

/* U+00A0 (C2 A0) -> " ". */
static size_t htmlstrip_nbsp(const char *in, size_t n, char *out)
{
    size_t o = 0, i = 0;
    int changed = 0;
    while (i < n) {
        const char *c2 = memchr(in + i, 0xC2, n - i);
        if (!c2)
            break;
        size_t p = (size_t)(c2 - in);
        if (p + 1 >= n || (unsigned char)in[p + 1] != 0xA0) {
            memcpy(out + o, in + i, p + 1 - i);
            o += p + 1 - i;
            i = p + 1;
            continue;
        }
        memcpy(out + o, in + i, p - i);
        o += p - i;
        out[o++] = ' ';
        i = p + 2;
        changed = 1;
    }
    if (!changed)
        return HTMLSTRIP_SAME;
    memcpy(out + o, in + i, n - i);
    return o + (n - i);
}

typedef size_t (*htmlstrip_pass_fn)(const char *in, size_t n, char *out);

/* The text between passes: data is the input or one of the two buffers. */
typedef struct htmlstrip_state {
    const char *data;
    size_t len;
    char *buf[2];
} htmlstrip_state;

/* Runs one pass into the buffer that does not hold the current text. */
static void htmlstrip_run(htmlstrip_state *st, htmlstrip_pass_fn fn)
{
    char *out = st->data == st->buf[0] ? st->buf[1] : st->buf[0];
    size_t len = fn(st->data, st->len, out);
    if (len == HTMLSTRIP_SAME)
        return;
    st->data = out;
    st->len = len;
}

static size_t htmlstrip_decls(const char *in, size_t n, char *out)
{
    return htmlstrip_tags(in, n, out, 1);
}

static size_t htmlstrip_plain_tags(const char *in, size_t n, char *out)
{
    return htmlstrip_tags(in, n, out, 0);
}

static size_t htmlstrip_hex(const char *in, size_t n, char *out)
{
    return htmlstrip_numeric(in, n, out, 1);
}

static size_t htmlstrip_dec(const char *in, size_t n, char *out)
{
    return htmlstrip_numeric(in, n, out, 0);
}

/* strip(text) -> the text without HTML (htmlstrip.strip(text) with the default elements) */
static int l_htmlstrip_strip(lua_State *L)
{
    size_t n;
    const char *text = luaL_checklstring(L, 1, &n);
    htmlstrip_state st = {text, n, {xmalloc(n + 1), xmalloc(n + 1)}};
    htmlstrip_run(&st, htmlstrip_newlines);
    htmlstrip_run(&st, htmlstrip_returns);
    if (memchr(st.data, '<', st.len)) {
        htmlstrip_run(&st, htmlstrip_comments);
        htmlstrip_run(&st, htmlstrip_elements_pass);
        htmlstrip_run(&st, htmlstrip_cdata);
        htmlstrip_run(&st, htmlstrip_decls);
        htmlstrip_run(&st, htmlstrip_plain_tags);
    }
    if (memchr(st.data, '&', st.len)) {
        htmlstrip_run(&st, htmlstrip_hex);
        htmlstrip_run(&st, htmlstrip_dec);
        htmlstrip_run(&st, htmlstrip_named_pass);
    }
    htmlstrip_run(&st, htmlstrip_nbsp);
    if (st.data == text)
        lua_pushvalue(L, 1);
    else
        lua_pushlstring(L, st.data, st.len);
    free(st.buf[0]);
    free(st.buf[1]);
    return 1;
}

static const luaL_Reg htmlstrip_functions[] = {
    {"strip", l_htmlstrip_strip},
    {NULL, NULL},
};

int luaopen_fuglu_htmlstrip(lua_State *L)
{
    return fg_lua_new_module(L, htmlstrip_functions);
}
