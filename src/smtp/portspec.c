/* portspec: parses [main] incomingport lists into (protocol, address, port) listeners.
 *
 * Entry forms (Fuglu's, plus brackets so that IPv6 addresses can be written):
 *   PORT                    smtp on the default bind address
 *   PROTO:PORT              PROTO on the default bind address
 *   PROTO:ADDR:PORT         ADDR is an IPv4 literal or a host name
 *   PROTO:[V6ADDR]:PORT     the brackets are required for IPv6 because of the colons
 * Fuglu logs and skips an unknown protocol; here every bad entry is an error that names the entry,
 * so a typo cannot silently leave a port closed. The same address and port listed twice is an
 * error too, since the second bind would fail at startup.
 */
#include "smtp/portspec.h"
#include "lib/util.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const portspec_names[] = { "smtp", "esmtp", "milter", "netcat" };

const char *fg_proto_name(fg_proto p)
{
    if ((int)p < 0 || (size_t)p >= sizeof(portspec_names) / sizeof(portspec_names[0]))
        return "unknown";
    return portspec_names[p];
}

static int portspec_fail(char **err, const char *entry, char *what)
{
    if (err)
        *err = xasprintf("incomingport entry '%s': %s", entry, what);
    free(what);
    return -1;
}

static int portspec_parse_proto(const char *text, fg_proto *out)
{
    for (size_t i = 0; i < sizeof(portspec_names) / sizeof(portspec_names[0]); i++) {
        const char *a = text, *b = portspec_names[i];
        while (*a && *b && (*a | 0x20) == *b) {
            a++;
            b++;
        }
        if (!*a && !*b) {
            *out = (fg_proto)i;
            return 0;
        }
    }
    return -1;
}

/* A port is 1 to 65535, written in decimal digits only. */
static int portspec_parse_port(const char *entry, const char *text, int *out, char **err)
{
    if (!*text)
        return portspec_fail(err, entry, xstrdup("missing port number"));
    long v = 0;
    for (const char *c = text; *c; c++) {
        if (*c < '0' || *c > '9')
            return portspec_fail(err, entry, xasprintf("port '%s' is not a number", text));
        if (v <= 65535)
            v = v * 10 + (*c - '0');
    }
    if (v < 1 || v > 65535)
        return portspec_fail(err, entry, xasprintf("port %s is out of range (use 1-65535)", text));
    *out = (int)v;
    return 0;
}

/* An unbracketed address: an IPv4 literal or a host name (letters, digits, '-', '.', '_'). */
static bool portspec_host_ok(const char *text)
{
    if (!*text)
        return false;
    for (const char *c = text; *c; c++) {
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                  *c == '-' || *c == '.' || *c == '_';
        if (!ok)
            return false;
    }
    return true;
}

static int portspec_set_addr(fg_portspec *p, const char *entry, const char *addr, char **err)
{
    if (strlen(addr) >= sizeof(p->addr))
        return portspec_fail(err, entry, xasprintf("address '%s' is too long", addr));
    strcpy(p->addr, addr);
    return 0;
}

/* Parses one trimmed, non-empty entry (modified in place; `entry` is an unmodified copy). */
static int portspec_parse_entry(char *text, const char *entry, const char *default_bindaddr, fg_portspec *p,
                                char **err)
{
    memset(p, 0, sizeof(*p));
    char *first = strchr(text, ':');
    if (!first) {
        p->proto = FG_PROTO_SMTP;
        if (portspec_set_addr(p, entry, default_bindaddr, err) != 0)
            return -1;
        return portspec_parse_port(entry, fg_strtrim(text), &p->port, err);
    }
    *first = '\0';
    char *proto = fg_strtrim(text);
    char *rest = first + 1;
    if (portspec_parse_proto(proto, &p->proto) != 0)
        return portspec_fail(err, entry,
                             xasprintf("unknown protocol '%s' (use smtp, esmtp, milter or netcat)", proto));
    rest = fg_strtrim(rest);
    char *addr, *port;
    if (*rest == '[') {
        char *close = strchr(rest, ']');
        if (!close)
            return portspec_fail(err, entry, xasprintf("unterminated '[' in '%s'", rest));
        char *after = close + 1;
        while (*after == ' ' || *after == '\t')
            after++;
        if (*after != ':')
            return portspec_fail(err, entry, xstrdup("expected ':PORT' after the bracketed address"));
        *close = '\0';
        addr = fg_strtrim(rest + 1);
        port = fg_strtrim(after + 1);
        unsigned char bytes[16];
        if (inet_pton(AF_INET6, addr, bytes) != 1)
            return portspec_fail(err, entry, xasprintf("'%s' is not an IPv6 address", addr));
    } else {
        port = strrchr(rest, ':');
        if (!port) {
            if (portspec_set_addr(p, entry, default_bindaddr, err) != 0)
                return -1;
            return portspec_parse_port(entry, rest, &p->port, err);
        }
        *port++ = '\0';
        port = fg_strtrim(port);
        addr = fg_strtrim(rest);
        if (strchr(addr, ':'))
            return portspec_fail(err, entry, xstrdup("too many ':' (write IPv6 addresses in brackets: "
                                                     "PROTO:[ADDR]:PORT)"));
        if (!*addr)
            return portspec_fail(err, entry, xstrdup("empty address (use PROTO:PORT for the default address)"));
        if (!portspec_host_ok(addr))
            return portspec_fail(err, entry, xasprintf("'%s' is not an IPv4 address or host name", addr));
    }
    if (portspec_set_addr(p, entry, addr, err) != 0)
        return -1;
    return portspec_parse_port(entry, port, &p->port, err);
}

int fg_portspec_parse_list(const char *list, const char *default_bindaddr, fg_portspec **out, size_t *n,
                           char **err)
{
    *out = NULL;
    *n = 0;
    if (err)
        *err = NULL;
    char *bind_copy = xstrdup(default_bindaddr && *default_bindaddr ? default_bindaddr : "127.0.0.1");
    char *bind = fg_strtrim(bind_copy);
    size_t bind_len = strlen(bind);
    if (bind_len >= 2 && bind[0] == '[' && bind[bind_len - 1] == ']') {
        bind[bind_len - 1] = '\0';
        bind++;
    }
    char *copy = xstrdup(list ? list : "");
    fg_portspec *specs = NULL;
    size_t count = 0, cap = 0;
    int rc = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok && rc == 0; tok = strtok_r(NULL, ",", &save)) {
        char *entry = fg_strtrim(tok);
        if (!*entry)
            continue;
        char *entry_copy = xstrdup(entry);
        if (count == cap) {
            cap = cap ? cap * 2 : 4;
            specs = xrealloc(specs, cap * sizeof(fg_portspec));
        }
        rc = portspec_parse_entry(entry, entry_copy, bind, &specs[count], err);
        for (size_t i = 0; rc == 0 && i < count; i++) {
            if (specs[i].port == specs[count].port && strcmp(specs[i].addr, specs[count].addr) == 0)
                rc = portspec_fail(err, entry_copy, xasprintf("port %d on %s is already listed", specs[i].port,
                                                              specs[i].addr));
        }
        if (rc == 0)
            count++;
        free(entry_copy);
    }
    free(copy);
    free(bind_copy);
    if (rc == 0 && count == 0) {
        if (err)
            *err = xstrdup("incomingport is empty");
        rc = -1;
    }
    if (rc != 0) {
        free(specs);
        return -1;
    }
    *out = specs;
    *n = count;
    return 0;
}

void fg_portspec_format(const fg_portspec *p, char *buf, size_t size)
{
    if (!size)
        return;
    if (strchr(p->addr, ':'))
        snprintf(buf, size, "%s:[%s]:%d", fg_proto_name(p->proto), p->addr, p->port);
    else
        snprintf(buf, size, "%s:%s:%d", fg_proto_name(p->proto), p->addr, p->port);
}
