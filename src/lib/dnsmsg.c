/* dnsmsg: DNS response parsing (see dnsmsg.h). */
#include "lib/dnsmsg.h"
#include "lib/util.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DNS_MAX_JUMPS 64
#define DNS_NAME_TEXT 1024      /* 255 wire bytes, each at most 4 characters escaped */

static const struct { int type; const char *name; } dns_types[] = {
    {FG_DNS_A, "A"}, {FG_DNS_NS, "NS"}, {FG_DNS_CNAME, "CNAME"}, {FG_DNS_SOA, "SOA"},
    {FG_DNS_PTR, "PTR"}, {FG_DNS_MX, "MX"}, {FG_DNS_TXT, "TXT"}, {FG_DNS_AAAA, "AAAA"},
};

int fg_dns_type_of(const char *name)
{
    for (size_t i = 0; i < sizeof dns_types / sizeof dns_types[0]; i++)
        if (strcasecmp(name, dns_types[i].name) == 0)
            return dns_types[i].type;
    return 0;
}

const char *fg_dns_type_name(int type)
{
    for (size_t i = 0; i < sizeof dns_types / sizeof dns_types[0]; i++)
        if (dns_types[i].type == type)
            return dns_types[i].name;
    return "?";
}

static uint16_t get16(const unsigned char *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t get32(const unsigned char *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

/* Reads the name at *pos into text (dotted, no final dot, "" for the root; dots and odd bytes in a
 * label escaped as \. and \DDD); *pos moves past the name where it was written. */
static bool dns_name(const unsigned char *msg, size_t len, size_t *pos, char text[DNS_NAME_TEXT])
{
    size_t p = *pos, o = 0, wire = 0;
    int jumps = 0;
    bool jumped = false;
    for (;;) {
        if (p >= len)
            return false;
        unsigned char l = msg[p];
        if ((l & 0xC0) == 0xC0) {
            if (p + 1 >= len || ++jumps > DNS_MAX_JUMPS)
                return false;
            size_t target = (size_t)(l & 0x3F) << 8 | msg[p + 1];
            if (!jumped)
                *pos = p + 2;
            jumped = true;
            if (target >= len)
                return false;
            p = target;
            continue;
        }
        if (l & 0xC0)
            return false;   /* the 0x40 and 0x80 label types are obsolete */
        if (l == 0) {
            if (!jumped)
                *pos = p + 1;
            text[o] = 0;
            return true;
        }
        wire += (size_t)l + 1;
        if (wire > 255 || p + 1 + l > len)
            return false;
        if (o > 0)
            text[o++] = '.';
        for (size_t i = 0; i < l; i++) {
            unsigned char c = msg[p + 1 + i];
            if (c == '.' || c == '\\') {
                text[o++] = '\\';
                text[o++] = (char)c;
            } else if (c < 33 || c > 126) {
                o += (size_t)snprintf(text + o, 5, "\\%03u", c);
            } else {
                text[o++] = (char)c;
            }
        }
        p += 1 + (size_t)l;
    }
}

static bool dns_skip_name(const unsigned char *msg, size_t len, size_t *pos)
{
    char scratch[DNS_NAME_TEXT];
    return dns_name(msg, len, pos, scratch);
}

static void dns_add(fg_dns_answer *a, uint32_t ttl, uint16_t pref, const char *text, size_t tlen)
{
    a->rr = xrealloc(a->rr, (a->count + 1) * sizeof *a->rr);
    fg_dns_rr *r = &a->rr[a->count++];
    r->ttl = ttl;
    r->pref = pref;
    r->text = xmalloc(tlen + 1);
    memcpy(r->text, text, tlen);
    r->text[tlen] = 0;
    r->len = tlen;
}

static uint32_t min_ttl(uint32_t have, uint32_t ttl, bool *set)
{
    if (!*set || ttl < have) {
        *set = true;
        return ttl;
    }
    return have;
}

/* One record of the asked type; false when its data is malformed. */
static bool dns_record(fg_dns_answer *a, const unsigned char *msg, size_t len, size_t rd, size_t rdlen, int type,
                       uint32_t ttl)
{
    char text[DNS_NAME_TEXT];
    size_t p = rd;
    switch (type) {
    case FG_DNS_A:
    case FG_DNS_AAAA: {
        char addr[INET6_ADDRSTRLEN];
        if (rdlen != (type == FG_DNS_A ? 4u : 16u))
            return false;
        inet_ntop(type == FG_DNS_A ? AF_INET : AF_INET6, msg + rd, addr, sizeof addr);
        dns_add(a, ttl, 0, addr, strlen(addr));
        return true;
    }
    case FG_DNS_TXT: {
        fg_buf b;
        fg_buf_init(&b);
        while (p < rd + rdlen) {
            size_t l = msg[p];
            if (p + 1 + l > rd + rdlen) {
                fg_buf_free(&b);
                return false;
            }
            fg_buf_append(&b, msg + p + 1, l);
            p += 1 + l;
        }
        dns_add(a, ttl, 0, b.data ? b.data : "", b.len);
        fg_buf_free(&b);
        return true;
    }
    case FG_DNS_MX:
        if (rdlen < 3)
            return false;
        p += 2;
        if (!dns_name(msg, len, &p, text) || p > rd + rdlen)
            return false;
        dns_add(a, ttl, get16(msg + rd), text, strlen(text));
        return true;
    case FG_DNS_NS:
    case FG_DNS_CNAME:
    case FG_DNS_PTR:
        if (!dns_name(msg, len, &p, text) || p > rd + rdlen)
            return false;
        dns_add(a, ttl, 0, text, strlen(text));
        return true;
    default:
        return true;   /* a type we do not ask for: ignored */
    }
}

int fg_dns_parse(const unsigned char *msg, size_t len, int qtype, fg_dns_answer *out, const char **err)
{
    memset(out, 0, sizeof *out);
    if (len < 12) {
        *err = "short DNS message";
        return -1;
    }
    uint16_t flags = get16(msg + 2);
    out->rcode = flags & 0x0F;
    out->truncated = (flags & 0x0200) != 0;
    size_t qd = get16(msg + 4), an = get16(msg + 6), ns = get16(msg + 8);
    size_t p = 12;
    for (size_t i = 0; i < qd; i++) {
        char name[DNS_NAME_TEXT];
        if (!dns_name(msg, len, &p, name) || p + 4 > len)
            goto bad;
        if (i == 0) {
            size_t l = strlen(name) < sizeof out->qname - 1 ? strlen(name) : sizeof out->qname - 1;
            memcpy(out->qname, name, l);
            out->qname[l] = 0;
            out->qtype = get16(msg + p);
        }
        p += 4;
    }
    bool ttl_set = false, cname_set = false;
    uint32_t cname_ttl = 0;
    for (size_t i = 0; i < an + ns; i++) {
        if (!dns_skip_name(msg, len, &p) || p + 10 > len)
            goto bad;
        int type = get16(msg + p);
        uint32_t ttl = get32(msg + p + 4);
        if (ttl > 0x7FFFFFFFu)
            ttl = 0;   /* RFC 2181 8: a TTL with the top bit set is zero */
        size_t rdlen = get16(msg + p + 8);
        size_t rd = p + 10;
        if (rd + rdlen > len)
            goto bad;
        if (i < an && type == qtype) {
            if (!dns_record(out, msg, len, rd, rdlen, type, ttl))
                goto bad;
            out->ttl = min_ttl(out->ttl, ttl, &ttl_set);
        } else if (i < an && type == FG_DNS_CNAME) {
            cname_ttl = min_ttl(cname_ttl, ttl, &cname_set);
            char target[DNS_NAME_TEXT];
            size_t q = rd;
            if (!dns_name(msg, len, &q, target) || q > rd + rdlen)
                goto bad;
            size_t l = strlen(target) < sizeof out->cname - 1 ? strlen(target) : sizeof out->cname - 1;
            memcpy(out->cname, target, l);
            out->cname[l] = 0;
        } else if (i >= an && type == FG_DNS_SOA && out->count == 0) {
            size_t q = rd;
            if (!dns_skip_name(msg, len, &q) || !dns_skip_name(msg, len, &q) || q + 20 > rd + rdlen)
                goto bad;
            uint32_t minimum = get32(msg + q + 16);
            out->ttl = ttl < minimum ? ttl : minimum;
            ttl_set = true;
        }
        p = rd + rdlen;
    }
    out->cname_ttl = cname_ttl;
    if (out->count > 0 && cname_set && cname_ttl < out->ttl)
        out->ttl = cname_ttl;
    return 0;
bad:
    *err = "malformed DNS message";
    fg_dns_answer_free(out);
    return -1;
}

void fg_dns_answer_free(fg_dns_answer *a)
{
    for (size_t i = 0; i < a->count; i++)
        free(a->rr[i].text);
    free(a->rr);
    a->rr = NULL;
    a->count = 0;
}
