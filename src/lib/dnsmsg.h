/* dnsmsg: parsing of DNS response messages (RFC 1035), for the resolver (lua_dns.c).
 *
 * c-ares does the transport (servers, retries, timeouts, TCP fallback); this parser reads the
 * answer itself so that every record type comes with its TTL and a negative answer with the SOA's
 * negative-caching TTL (RFC 2308), which the cache needs. It faces the network: every length and
 * pointer is checked, compression pointers are followed at most 64 times, names are at most 255
 * bytes; a malformed message is an error, never a crash (test/fuzz/fuzz_dnsmsg.c).
 */
#ifndef FUGLU_DNSMSG_H
#define FUGLU_DNSMSG_H

#include <stddef.h>
#include <stdint.h>

enum {
    FG_DNS_A = 1, FG_DNS_NS = 2, FG_DNS_CNAME = 5, FG_DNS_SOA = 6, FG_DNS_PTR = 12, FG_DNS_MX = 15,
    FG_DNS_TXT = 16, FG_DNS_AAAA = 28,
};

typedef struct fg_dns_rr {
    uint32_t ttl;
    uint16_t pref;          /* MX */
    char *text;             /* A/AAAA: the address; NS/CNAME/PTR/MX: the name (no final dot);
                             * TXT: its strings joined (binary-safe: see len) */
    size_t len;
} fg_dns_rr;

typedef struct fg_dns_answer {
    int rcode;              /* 0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, 5 REFUSED, ... */
    char qname[256];        /* the first question's name (no final dot, truncated), "" if none */
    int qtype;
    char cname[256];        /* the target of the last CNAME in the answer, "" if none: when no
                             * record of the asked type came with it, the caller asks again there */
    uint32_t cname_ttl;     /* the smallest TTL of the CNAMEs */
    int truncated;
    size_t count;
    fg_dns_rr *rr;          /* the answer records of the asked type (a CNAME chain followed) */
    uint32_t ttl;           /* the smallest TTL of those records and the CNAMEs before them, or
                             * for a negative answer min(SOA TTL, SOA minimum); 0 when unknown */
} fg_dns_answer;

/* 0, or -1 with *err (a static text) on a malformed message. */
int fg_dns_parse(const unsigned char *msg, size_t len, int qtype, fg_dns_answer *out, const char **err);
void fg_dns_answer_free(fg_dns_answer *a);
/* "A", "MX", ... -> type number; 0 for a name this resolver does not ask for. */
int fg_dns_type_of(const char *name);
const char *fg_dns_type_name(int type);

#endif
