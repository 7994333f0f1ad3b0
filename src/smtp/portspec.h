/* portspec: [main] incomingport lists: "PORT", "PROTO:PORT", "PROTO:ADDR:PORT", "PROTO:[V6ADDR]:PORT".
 * PROTO is smtp, esmtp, milter or netcat; the address defaults to [main] bindaddress.
 */
#ifndef FUGLU_PORTSPEC_H
#define FUGLU_PORTSPEC_H

#include <stddef.h>

typedef enum { FG_PROTO_SMTP = 0, FG_PROTO_ESMTP, FG_PROTO_MILTER, FG_PROTO_NETCAT } fg_proto;

typedef struct fg_portspec {
    fg_proto proto;
    char addr[64];   /* IPv4 or IPv6 literal without brackets, or a host name as given */
    int port;        /* 1..65535 */
} fg_portspec;

const char *fg_proto_name(fg_proto p);
/* Parses a comma-separated list (blanks around entries ignored, empty entries skipped).
 * Returns 0 with a malloc'ed array in *out (count in *n), or -1 with *err naming the bad entry:
 * "incomingport entry 'x': unknown protocol 'foo' (use smtp, esmtp, milter or netcat)". */
int fg_portspec_parse_list(const char *list, const char *default_bindaddr, fg_portspec **out, size_t *n, char **err);
/* "smtp:127.0.0.1:10025" / "smtp:[::1]:10025" into buf. */
void fg_portspec_format(const fg_portspec *p, char *buf, size_t size);

#endif
