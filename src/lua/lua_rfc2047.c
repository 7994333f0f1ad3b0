/* lua_rfc2047: base64 and the RFC 2047 encoded-word decoder shared by fuglu_core's functions and
 * the MIME view.
 *
 * The decoder is our own because GMime 3.2's merges adjacent B-encoded words before decoding and
 * drops everything after the first padded word ("=?UTF-8?B?w6Q=?= =?UTF-8?B?LmV4ZQ==?=" gives "ä",
 * not "ä.exe"), which would hide attachment names from the filters. Here each word is decoded on its
 * own; the bytes of adjacent words in the same charset are joined before the charset conversion (so
 * a character split across words survives), whitespace between encoded words is dropped, and text
 * outside encoded words is kept (UTF-8 if valid, else read as ISO-8859-1). Like Python's
 * decode_header, encoded words are recognised anywhere, not only between blanks. A word whose
 * payload cannot be decoded is kept as it is.
 */
#include <string.h>

#include <glib.h>

#include "lua_message.h"

static const char rfc2047_b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t fuglu_b64_encode(const void *data, size_t len, char *out)
{
    const unsigned char *in = data;
    size_t o = 0;
    size_t i = 0;
    for (; i + 2 < len; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[o++] = rfc2047_b64_alphabet[v >> 18];
        out[o++] = rfc2047_b64_alphabet[(v >> 12) & 63];
        out[o++] = rfc2047_b64_alphabet[(v >> 6) & 63];
        out[o++] = rfc2047_b64_alphabet[v & 63];
    }
    if (i < len) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < len ? (unsigned)in[i + 1] << 8 : 0);
        out[o++] = rfc2047_b64_alphabet[v >> 18];
        out[o++] = rfc2047_b64_alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < len ? rfc2047_b64_alphabet[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    return o;
}

static int rfc2047_b64_value(unsigned char c)
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

long fuglu_b64_decode(const char *s, size_t len, void *out_buf)
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
        int v = rfc2047_b64_value(c);
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
typedef struct rfc2047_run {
    GString *bytes;
    char charset[64];
    bool encoded;
} rfc2047_run;

static void rfc2047_flush(GString *out, rfc2047_run *run)
{
    if (run->bytes->len > 0) {
        size_t len;
        char *utf8 = fuglu_utf8_convert(run->encoded ? run->charset : NULL, run->bytes->str,
                                        run->bytes->len, &len);
        g_string_append_len(out, utf8, (gssize)len);
        g_free(utf8);
        g_string_truncate(run->bytes, 0);
    }
}

static int rfc2047_hex(char c)
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
static size_t rfc2047_word(const char *s, size_t len, char charset[64], GString *bytes)
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
        long n = fuglu_b64_decode(s + text, text_len, bytes->str + old);
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
                       (hi = rfc2047_hex(s[j + 1])) >= 0 && (lo = rfc2047_hex(s[j + 2])) >= 0) {
                g_string_append_c(bytes, (char)(hi << 4 | lo));
                j += 2;
            } else {
                g_string_append_c(bytes, s[j]);
            }
        }
    }
    return (size_t)(end - s) + 2;
}

char *fuglu_rfc2047_decode(const char *s, size_t len, size_t *out_len)
{
    GString *out = g_string_sized_new(len + 16);
    rfc2047_run run = {g_string_new(NULL), "", false};
    GString *word = g_string_new(NULL);
    size_t blank_start = 0;         /* blanks after an encoded word, dropped if another follows */
    bool after_word = false;
    for (size_t i = 0; i < len;) {
        if (s[i] == '=' && i + 1 < len && s[i + 1] == '?') {
            char charset[64];
            g_string_truncate(word, 0);
            size_t n = rfc2047_word(s + i, len - i, charset, word);
            if (n > 0) {
                bool joins = run.encoded && g_ascii_strcasecmp(run.charset, charset) == 0;
                if (!joins || !after_word) {
                    rfc2047_flush(out, &run);
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
            rfc2047_flush(out, &run);
            run.encoded = false;
            g_string_append_len(run.bytes, s + blank_start, (gssize)(i - blank_start));
            after_word = false;
        }
        if (run.encoded) {
            rfc2047_flush(out, &run);
            run.encoded = false;
        }
        g_string_append_c(run.bytes, s[i]);
        i++;
    }
    if (after_word) {
        rfc2047_flush(out, &run);
        run.encoded = false;
        g_string_append_len(run.bytes, s + blank_start, (gssize)(len - blank_start));
    }
    rfc2047_flush(out, &run);
    g_string_free(run.bytes, TRUE);
    g_string_free(word, TRUE);
    *out_len = out->len;
    return g_string_free(out, FALSE);
}
