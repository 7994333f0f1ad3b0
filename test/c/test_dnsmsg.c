/* test_dnsmsg: unit tests of the DNS answer parser (src/lib/dnsmsg.c): each record type with its
 * TTL, CNAME chains, negative answers with the SOA's TTL, and the malformed messages a hostile
 * server could send (compression loops, lengths past the end, overlong names).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "lib/dnsmsg.h"

/* A message builder: header, one question for name/type, then raw records. */
typedef struct msgb {
    unsigned char b[2048];
    size_t n;
} msgb;

static void put(msgb *m, const void *p, size_t n) { memcpy(m->b + m->n, p, n); m->n += n; }
static void put16(msgb *m, unsigned v) { unsigned char x[2] = {(unsigned char)(v >> 8), (unsigned char)v}; put(m, x, 2); }
static void put32(msgb *m, uint32_t v) { put16(m, v >> 16); put16(m, v & 0xFFFF); }

static void put_name(msgb *m, const char *name)
{
    while (*name) {
        const char *dot = strchr(name, '.');
        size_t l = dot ? (size_t)(dot - name) : strlen(name);
        unsigned char c = (unsigned char)l;
        put(m, &c, 1);
        put(m, name, l);
        name += l + (dot ? 1 : 0);
    }
    put(m, "", 1);
}

static void start(msgb *m, unsigned flags, const char *qname, unsigned qtype, unsigned an, unsigned ns)
{
    m->n = 0;
    put16(m, 0x1234);
    put16(m, flags);
    put16(m, 1);
    put16(m, an);
    put16(m, ns);
    put16(m, 0);
    put_name(m, qname);
    put16(m, qtype);
    put16(m, 1);
}

/* a record owned by the question's name (pointer to offset 12) */
static void rr(msgb *m, unsigned type, uint32_t ttl, const void *data, size_t len)
{
    put16(m, 0xC00C);
    put16(m, type);
    put16(m, 1);
    put32(m, ttl);
    put16(m, (unsigned)len);
    put(m, data, len);
}

static void test_a_mx_txt(void **state)
{
    (void)state;
    msgb m;
    fg_dns_answer a;
    const char *err = NULL;
    start(&m, 0x8180, "mx1.test", FG_DNS_A, 2, 0);
    rr(&m, FG_DNS_A, 300, "\xc0\x00\x02\x01", 4);
    rr(&m, FG_DNS_A, 200, "\xc0\x00\x02\x02", 4);
    assert_int_equal(fg_dns_parse(m.b, m.n, FG_DNS_A, &a, &err), 0);
    assert_int_equal(a.count, 2);
    assert_string_equal(a.rr[0].text, "192.0.2.1");
    assert_string_equal(a.rr[1].text, "192.0.2.2");
    assert_int_equal(a.ttl, 200);
    assert_string_equal(a.qname, "mx1.test");
    assert_int_equal(a.qtype, FG_DNS_A);
    fg_dns_answer_free(&a);

    start(&m, 0x8180, "test", FG_DNS_MX, 1, 0);
    rr(&m, FG_DNS_MX, 60, "\x00\x0a\x03mx1\xc0\x0c", 8);    /* mx1.<pointer to test> */
    assert_int_equal(fg_dns_parse(m.b, m.n, FG_DNS_MX, &a, &err), 0);
    assert_int_equal(a.count, 1);
    assert_int_equal(a.rr[0].pref, 10);
    assert_string_equal(a.rr[0].text, "mx1.test");
    fg_dns_answer_free(&a);

    start(&m, 0x8180, "test", FG_DNS_TXT, 1, 0);
    rr(&m, FG_DNS_TXT, 60, "\x03" "a\0b" "\x02" "cd", 7);   /* two strings, one with a NUL */
    assert_int_equal(fg_dns_parse(m.b, m.n, FG_DNS_TXT, &a, &err), 0);
    assert_int_equal(a.rr[0].len, 5);
    assert_memory_equal(a.rr[0].text, "a\0bcd", 5);
    fg_dns_answer_free(&a);
}

static void test_cname_and_negative(void **state)
{
    (void)state;
    msgb m;
    fg_dns_answer a;
    const char *err = NULL;
    /* alias.test CNAME mx1.test (ttl 30), no A: the target is reported for the caller to follow */
    start(&m, 0x8180, "alias.test", FG_DNS_A, 1, 0);
    rr(&m, FG_DNS_CNAME, 30, "\x03mx1\x04test\x00", 10);
    assert_int_equal(fg_dns_parse(m.b, m.n, FG_DNS_A, &a, &err), 0);
    assert_int_equal(a.count, 0);
    assert_string_equal(a.cname, "mx1.test");
    assert_int_equal(a.cname_ttl, 30);
    fg_dns_answer_free(&a);

    /* NXDOMAIN with an SOA: ttl = min(SOA ttl 300, minimum 60) */
    start(&m, 0x8183, "nx.test", FG_DNS_A, 0, 1);
    msgb soa = {.n = 0};
    put_name(&soa, "ns.test");
    put_name(&soa, "h.test");
    put32(&soa, 1), put32(&soa, 3600), put32(&soa, 600), put32(&soa, 86400), put32(&soa, 60);
    rr(&m, FG_DNS_SOA, 300, soa.b, soa.n);
    assert_int_equal(fg_dns_parse(m.b, m.n, FG_DNS_A, &a, &err), 0);
    assert_int_equal(a.rcode, 3);
    assert_int_equal(a.count, 0);
    assert_int_equal(a.ttl, 60);
    fg_dns_answer_free(&a);

    /* a TTL with the top bit set counts as 0 (RFC 2181) */
    start(&m, 0x8180, "x.test", FG_DNS_A, 1, 0);
    rr(&m, FG_DNS_A, 0x80000000u, "\x01\x02\x03\x04", 4);
    assert_int_equal(fg_dns_parse(m.b, m.n, FG_DNS_A, &a, &err), 0);
    assert_int_equal(a.ttl, 0);
    fg_dns_answer_free(&a);
}

static void test_malformed(void **state)
{
    (void)state;
    msgb m;
    fg_dns_answer a;
    const char *err = NULL;
    assert_int_equal(fg_dns_parse((const unsigned char *)"\x12\x34", 2, FG_DNS_A, &a, &err), -1);
    assert_string_equal(err, "short DNS message");

    /* a compression pointer to itself */
    start(&m, 0x8180, "x.test", FG_DNS_PTR, 1, 0);
    size_t at = m.n + 12;   /* where the PTR data will start */
    unsigned char loop[2] = {(unsigned char)(0xC0 | at >> 8), (unsigned char)at};
    rr(&m, FG_DNS_PTR, 10, loop, 2);
    err = NULL;
    assert_int_equal(fg_dns_parse(m.b, m.n, FG_DNS_PTR, &a, &err), -1);
    assert_string_equal(err, "malformed DNS message");
    assert_int_equal(a.count, 0);

    /* rdlength past the end */
    start(&m, 0x8180, "x.test", FG_DNS_A, 1, 0);
    rr(&m, FG_DNS_A, 10, "\x01\x02\x03\x04", 4);
    m.b[m.n - 5] = 50;
    assert_int_equal(fg_dns_parse(m.b, m.n, FG_DNS_A, &a, &err), -1);

    /* an A record of 5 bytes */
    start(&m, 0x8180, "x.test", FG_DNS_A, 1, 0);
    rr(&m, FG_DNS_A, 10, "\x01\x02\x03\x04\x05", 5);
    assert_int_equal(fg_dns_parse(m.b, m.n, FG_DNS_A, &a, &err), -1);

    /* more answers announced than present */
    start(&m, 0x8180, "x.test", FG_DNS_A, 3, 0);
    rr(&m, FG_DNS_A, 10, "\x01\x02\x03\x04", 4);
    assert_int_equal(fg_dns_parse(m.b, m.n, FG_DNS_A, &a, &err), -1);

    /* a name over 255 bytes */
    m.n = 0;
    put16(&m, 1), put16(&m, 0x8180), put16(&m, 1), put16(&m, 0), put16(&m, 0), put16(&m, 0);
    for (int i = 0; i < 5; i++) {
        unsigned char l = 63;
        put(&m, &l, 1);
        for (int k = 0; k < 63; k++)
            put(&m, "a", 1);
    }
    put(&m, "", 1);
    put16(&m, 1), put16(&m, 1);
    assert_int_equal(fg_dns_parse(m.b, m.n, FG_DNS_A, &a, &err), -1);

    /* odd bytes in a label are escaped, a dot inside a label too */
    start(&m, 0x8180, "x.test", FG_DNS_PTR, 1, 0);
    rr(&m, FG_DNS_PTR, 10, "\x03" "a.\x01" "\x00", 5);
    assert_int_equal(fg_dns_parse(m.b, m.n, FG_DNS_PTR, &a, &err), 0);
    assert_string_equal(a.rr[0].text, "a\\.\\001");
    fg_dns_answer_free(&a);
}

static void test_type_names(void **state)
{
    (void)state;
    assert_int_equal(fg_dns_type_of("mx"), FG_DNS_MX);
    assert_int_equal(fg_dns_type_of("AAAA"), FG_DNS_AAAA);
    assert_int_equal(fg_dns_type_of("SRV"), 0);
    assert_string_equal(fg_dns_type_name(FG_DNS_TXT), "TXT");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_mx_txt),
        cmocka_unit_test(test_cname_and_negative),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_type_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
