/* smtp_proto: the pure (no I/O) parts of SMTP. See smtp_proto.h for the interface.
 *
 * Nothing here touches a socket or a file: the server connectors and the re-inject client feed bytes
 * and lines in and get parsed values or encoded bytes out. Every result that outlives a call is
 * malloc'ed through util.h and owned by the caller.
 *
 * DATA transparency: the decoder keeps every byte the client sent between the 354 reply and the
 * end-of-data line, except the one leading "." of a dot-stuffed line. The CRLF that precedes the
 * final "." belongs to the message, so "Subject: x\r\n\r\nbody\r\n.\r\n" decodes to
 * "Subject: x\r\n\r\nbody\r\n". A line starts only after CRLF: a bare LF or a bare CR is ordinary line
 * content, and ".\n" or ".x" at a line start lose their dot like any other stuffed line. Only
 * ".\r\n" at a line start ends the data (RFC 5321 4.1.1.4).
 */
#include "smtp/smtp_proto.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---------------------------------------------------------------- commands */

static const struct {
    const char *name;
    smtp_verb verb;
} smtp_verb_table[] = {
    {"HELO", SMTP_CMD_HELO}, {"EHLO", SMTP_CMD_EHLO}, {"MAIL", SMTP_CMD_MAIL},
    {"RCPT", SMTP_CMD_RCPT}, {"DATA", SMTP_CMD_DATA}, {"BDAT", SMTP_CMD_BDAT},
    {"RSET", SMTP_CMD_RSET}, {"NOOP", SMTP_CMD_NOOP}, {"QUIT", SMTP_CMD_QUIT},
    {"VRFY", SMTP_CMD_VRFY}, {"HELP", SMTP_CMD_HELP}, {"XFORWARD", SMTP_CMD_XFORWARD},
    {"STARTTLS", SMTP_CMD_STARTTLS},
};

void smtp_parse_command(const char *line, smtp_command *out)
{
    size_t n = strcspn(line, " ");
    out->verb = SMTP_CMD_UNKNOWN;
    out->arg = line[n] == ' ' ? line + n + 1 : line + n;
    for (size_t i = 0; i < sizeof smtp_verb_table / sizeof smtp_verb_table[0]; i++) {
        if (strlen(smtp_verb_table[i].name) == n && strncasecmp(line, smtp_verb_table[i].name, n) == 0) {
            out->verb = smtp_verb_table[i].verb;
            return;
        }
    }
}

/* ---------------------------------------------------------------- paths */

static bool smtp_is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Bytes never allowed in an address: controls (they could smuggle a line break into a header or a
 * command downstream). 8-bit bytes are allowed for SMTPUTF8. */
static bool smtp_is_control(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* Scans an address starting at s up to an unquoted terminator (">" when bracketed, a blank or the end
 * when bare). Returns the length or -1 for unbalanced quotes, controls or stray brackets. */
static long smtp_scan_address(const char *s, bool bracketed)
{
    bool quoted = false;
    size_t i = 0;
    for (; s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        if (smtp_is_control(c))
            return -1;
        if (quoted) {
            if (c == '\\') {
                if (!s[i + 1] || smtp_is_control((unsigned char)s[i + 1]))
                    return -1;
                i++;
            } else if (c == '"') {
                quoted = false;
            }
            continue;
        }
        if (c == '"') {
            quoted = true;
        } else if (c == '>') {
            return bracketed ? (long)i : -1;
        } else if (c == '<') {
            return -1;
        } else if (smtp_is_blank((char)c)) {
            if (bracketed)
                return -1;
            return (long)i;
        }
    }
    if (quoted || bracketed)
        return -1;
    return (long)i;
}

int smtp_parse_path(const char *arg, const char *expect_prefix, char **addr, char **params, const char **err)
{
    const char *syntax = fg_strcaseprefix(expect_prefix, "FROM") ? "5.5.4 Syntax: MAIL FROM:<address>"
                                                                  : "5.5.4 Syntax: RCPT TO:<address>";
    *addr = NULL;
    *params = NULL;
    if (!fg_strcaseprefix(arg, expect_prefix)) {
        *err = syntax;
        return -1;
    }
    const char *p = arg + strlen(expect_prefix);
    while (smtp_is_blank(*p))
        p++;
    bool bracketed = *p == '<';
    if (bracketed)
        p++;
    long n = smtp_scan_address(p, bracketed);
    if (n < 0 || (!bracketed && n == 0)) {
        *err = syntax;
        return -1;
    }
    const char *end = p + n + (bracketed ? 1 : 0);
    if (*end && !smtp_is_blank(*end)) {
        *err = syntax;
        return -1;
    }
    const char *mailbox = p;
    size_t mailbox_len = (size_t)n;
    if (mailbox_len && mailbox[0] == '@') {
        /* A source route "@a,@b:" before the mailbox: obsolete, dropped (RFC 5321 C). */
        const char *colon = memchr(mailbox, ':', mailbox_len);
        if (!colon) {
            *err = "5.1.3 Bad address syntax";
            return -1;
        }
        mailbox_len -= (size_t)(colon + 1 - mailbox);
        mailbox = colon + 1;
    }
    while (smtp_is_blank(*end))
        end++;
    size_t plen = strlen(end);
    while (plen && smtp_is_blank(end[plen - 1]))
        plen--;
    /* parameters are separated by spaces only: a TAB or another control character inside them
     * would pass here and be refused by the downstream at every DATA, a retry loop for the MTA */
    for (size_t i = 0; i < plen; i++) {
        if (smtp_is_control((unsigned char)end[i])) {
            *err = "5.5.4 Syntax: a TAB or control character in the parameters";
            return -1;
        }
    }
    *addr = xstrndup(mailbox, mailbox_len);
    *params = xstrndup(end, plen);
    return 0;
}

/* ---------------------------------------------------------------- parameters */

/* Iterates over the blank-separated words of s: sets *word and *len to the next one, returns false at
 * the end. */
static bool smtp_next_word(const char **s, const char **word, size_t *len)
{
    const char *p = *s;
    while (smtp_is_blank(*p))
        p++;
    if (!*p)
        return false;
    *word = p;
    while (*p && !smtp_is_blank(*p))
        p++;
    *len = (size_t)(p - *word);
    *s = p;
    return true;
}

/* Length of the keyword part of a "KEY=VALUE" or "KEY" word. */
static size_t smtp_keyword_len(const char *word, size_t len)
{
    const char *eq = memchr(word, '=', len);
    return eq ? (size_t)(eq - word) : len;
}

char *smtp_param_get(const char *params, const char *keyword)
{
    const char *word;
    size_t len;
    size_t klen = strlen(keyword);
    if (!params)
        return NULL;
    while (smtp_next_word(&params, &word, &len)) {
        size_t wk = smtp_keyword_len(word, len);
        if (wk == klen && strncasecmp(word, keyword, klen) == 0)
            return wk < len ? xstrndup(word + wk + 1, len - wk - 1) : xstrdup("");
    }
    return NULL;
}

char *smtp_params_filter(const char *params, const char *const *allowed)
{
    fg_buf out;
    const char *word;
    size_t len;
    fg_buf_init(&out);
    while (params && smtp_next_word(&params, &word, &len)) {
        size_t wk = smtp_keyword_len(word, len);
        for (size_t i = 0; allowed && allowed[i]; i++) {
            if (strlen(allowed[i]) == wk && strncasecmp(word, allowed[i], wk) == 0) {
                if (out.len)
                    fg_buf_append(&out, " ", 1);
                fg_buf_append(&out, word, len);
                break;
            }
        }
    }
    return fg_buf_steal(&out, NULL);
}

/* ---------------------------------------------------------------- XFORWARD */

/* Decodes xtext (RFC 3461: "+XX" hex escapes). NULL for a broken escape or a decoded control byte. */
static char *smtp_xtext_decode(const char *s, size_t len)
{
    char *out = xmalloc(len + 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)s[i];
        if (c == '+') {
            int hi = i + 2 < len ? fg_hexval(s[i + 1]) : -1;
            int lo = i + 2 < len ? fg_hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                free(out);
                return NULL;
            }
            c = hi * 16 + lo;
            i += 2;
        }
        if (smtp_is_control((unsigned char)c)) {
            free(out);
            return NULL;
        }
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return out;
}

int smtp_parse_xforward(const char *arg, smtp_xforward *xf, const char **err)
{
    static const char *const names[] = {"NAME", "ADDR", "PORT", "HELO", "PROTO", "SOURCE", "IDENT"};
    char **slots[] = {&xf->name, &xf->addr, &xf->port, &xf->helo, &xf->proto, &xf->source, &xf->ident};
    const char *word;
    size_t len;
    int count = 0;
    while (smtp_next_word(&arg, &word, &len)) {
        const char *eq = memchr(word, '=', len);
        if (!eq) {
            *err = "5.5.4 Syntax: XFORWARD attribute=value...";
            return -1;
        }
        size_t klen = (size_t)(eq - word);
        int slot = -1;
        for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++) {
            if (strlen(names[i]) == klen && strncasecmp(word, names[i], klen) == 0)
                slot = i;
        }
        if (slot < 0) {
            *err = "5.5.4 Bad XFORWARD attribute name";
            return -1;
        }
        const char *value = eq + 1;
        size_t vlen = len - klen - 1;
        char *decoded = NULL;
        bool unavailable = (vlen == 13 && strncasecmp(value, "[UNAVAILABLE]", 13) == 0)
                           || (vlen == 13 && strncasecmp(value, "[TEMPUNAVAIL]", 13) == 0);
        if (!unavailable) {
            decoded = smtp_xtext_decode(value, vlen);
            if (!decoded) {
                *err = "5.5.4 Bad XFORWARD attribute value";
                return -1;
            }
            if (slot == 1 && fg_strcaseprefix(decoded, "IPV6:"))
                memmove(decoded, decoded + 5, strlen(decoded + 5) + 1);
        }
        free(*slots[slot]);
        *slots[slot] = decoded;
        count++;
    }
    if (!count) {
        *err = "5.5.4 Syntax: XFORWARD attribute=value...";
        return -1;
    }
    return 0;
}

void smtp_xforward_clear(smtp_xforward *xf)
{
    free(xf->name);
    free(xf->addr);
    free(xf->port);
    free(xf->helo);
    free(xf->proto);
    free(xf->source);
    free(xf->ident);
    memset(xf, 0, sizeof *xf);
}

/* ---------------------------------------------------------------- DATA decoder */

enum {
    DEC_LINE_START = 0, /* at the start of a line (after CRLF, or the first byte of the data) */
    DEC_DOT,            /* a "." at a line start was read (it is never output) */
    DEC_DOT_CR,         /* ".\r" at a line start: the "\r" is held back until the next byte decides */
    DEC_MIDDLE,         /* inside a line, the last byte was not "\r" */
    DEC_CR,             /* inside a line, the last byte was "\r" */
    DEC_DONE,           /* the end-of-data line was seen */
};

void smtp_data_decoder_init(smtp_data_decoder *d)
{
    d->state = DEC_LINE_START;
}

/* The output differs from the input only by the dropped dots and the end marker, so the decoder
 * copies runs of input (in[run..i)) and cuts a run only where a dot is dropped. Lines are found with
 * memchr on "\n"; a "\n" ends a line only when the byte before it is "\r". */
int smtp_data_decode(smtp_data_decoder *d, const char *in, size_t len, fg_buf *out, size_t *consumed)
{
    size_t i = 0, run = 0;
    if (d->state == DEC_DONE) {
        *consumed = 0;
        return 1;
    }
    if (d->state == DEC_DOT_CR && len) {
        /* The "\r" held back at the end of the previous chunk. */
        if (in[0] == '\n') {
            d->state = DEC_DONE;
            *consumed = 1;
            return 1;
        }
        fg_buf_append(out, "\r", 1);
        d->state = DEC_CR;
    }
    while (i < len) {
        switch (d->state) {
        case DEC_LINE_START:
            if (in[i] == '.') {
                fg_buf_append(out, in + run, i - run);
                i++;
                run = i;
                d->state = DEC_DOT;
            } else {
                d->state = DEC_MIDDLE;
            }
            break;
        case DEC_DOT:
            if (in[i] == '\r') {
                i++;
                d->state = DEC_DOT_CR;
            } else {
                d->state = DEC_MIDDLE;
            }
            break;
        case DEC_DOT_CR:
            /* Only reached when the "\r" is in this chunk, at i - 1 == run. */
            if (in[i] == '\n') {
                fg_buf_append(out, in + run, i - 1 - run);
                d->state = DEC_DONE;
                *consumed = i + 1;
                return 1;
            }
            d->state = DEC_CR;
            break;
        case DEC_CR:
            if (in[i] == '\n') {
                i++;
                d->state = DEC_LINE_START;
            } else {
                d->state = DEC_MIDDLE;
            }
            break;
        default: { /* DEC_MIDDLE */
            const char *nl = memchr(in + i, '\n', len - i);
            if (!nl) {
                d->state = in[len - 1] == '\r' ? DEC_CR : DEC_MIDDLE;
                i = len;
                break;
            }
            size_t pos = (size_t)(nl - in);
            d->state = pos > i && in[pos - 1] == '\r' ? DEC_LINE_START : DEC_MIDDLE;
            i = pos + 1;
            break;
        }
        }
    }
    if (d->state == DEC_DOT_CR)
        fg_buf_append(out, in + run, len - 1 - run);
    else
        fg_buf_append(out, in + run, len - run);
    *consumed = len;
    return 0;
}

/* ---------------------------------------------------------------- DATA encoder */

enum {
    ENC_LINE_START = 0, /* nothing sent yet, or the last byte sent was "\n" */
    ENC_MIDDLE,         /* inside a line, the last byte was not "\r" */
    ENC_CR,             /* inside a line, the last byte was "\r" */
};

void smtp_data_encoder_init(smtp_data_encoder *e)
{
    e->state = ENC_LINE_START;
}

void smtp_data_encode(smtp_data_encoder *e, const char *in, size_t len, fg_buf *out)
{
    size_t i = 0;
    fg_buf_reserve(out, len + len / 64 + 8);
    while (i < len) {
        if (e->state == ENC_LINE_START && in[i] == '.')
            fg_buf_append(out, ".", 1);
        const char *nl = memchr(in + i, '\n', len - i);
        if (!nl) {
            fg_buf_append(out, in + i, len - i);
            e->state = in[len - 1] == '\r' ? ENC_CR : ENC_MIDDLE;
            return;
        }
        size_t pos = (size_t)(nl - in);
        bool has_cr = pos > i ? in[pos - 1] == '\r' : e->state == ENC_CR;
        fg_buf_append(out, in + i, pos - i);
        fg_buf_append(out, has_cr ? "\n" : "\r\n", has_cr ? 1 : 2);
        e->state = ENC_LINE_START;
        i = pos + 1;
    }
}

void smtp_data_encode_end(smtp_data_encoder *e, fg_buf *out)
{
    if (e->state == ENC_CR)
        fg_buf_append(out, "\n", 1);
    else if (e->state == ENC_MIDDLE)
        fg_buf_append(out, "\r\n", 2);
    fg_buf_append(out, ".\r\n", 3);
    e->state = ENC_LINE_START;
}

/* ---------------------------------------------------------------- replies */

int smtp_parse_reply_line(const char *line, bool *last, const char **text)
{
    if (line[0] < '1' || line[0] > '5' || line[1] < '0' || line[1] > '9' || line[2] < '0' || line[2] > '9')
        return -1;
    int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (line[3] == '-') {
        *last = false;
        *text = line + 4;
    } else if (line[3] == ' ') {
        *last = true;
        *text = line + 4;
    } else if (line[3] == '\0') {
        *last = true;
        *text = line + 3;
    } else {
        return -1;
    }
    return code;
}
