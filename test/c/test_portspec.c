/* test_portspec: unit tests of the [main] incomingport parser (src/smtp/portspec.c): every entry form,
 * IPv6 in brackets, the error messages for bad entries, and formatting back to text.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "smtp/portspec.h"

static void test_proto_names(void **state)
{
    (void)state;
    assert_string_equal(fg_proto_name(FG_PROTO_SMTP), "smtp");
    assert_string_equal(fg_proto_name(FG_PROTO_ESMTP), "esmtp");
    assert_string_equal(fg_proto_name(FG_PROTO_MILTER), "milter");
    assert_string_equal(fg_proto_name(FG_PROTO_NETCAT), "netcat");
    assert_string_equal(fg_proto_name((fg_proto)42), "unknown");
}

static void test_all_forms(void **state)
{
    (void)state;
    fg_portspec *specs = NULL;
    size_t n = 0;
    char *err = NULL;
    assert_int_equal(fg_portspec_parse_list(" 10025 , esmtp:10099,, MILTER:0.0.0.0:10030 ,netcat:localhost:10888,"
                                            "smtp:[::1]:10040, Esmtp: [ 2001:db8::5 ] : 10050 ",
                                            "127.0.0.2", &specs, &n, &err),
                     0);
    assert_null(err);
    assert_int_equal(n, 6);
    assert_int_equal(specs[0].proto, FG_PROTO_SMTP);
    assert_string_equal(specs[0].addr, "127.0.0.2");
    assert_int_equal(specs[0].port, 10025);
    assert_int_equal(specs[1].proto, FG_PROTO_ESMTP);
    assert_string_equal(specs[1].addr, "127.0.0.2");
    assert_int_equal(specs[1].port, 10099);
    assert_int_equal(specs[2].proto, FG_PROTO_MILTER);
    assert_string_equal(specs[2].addr, "0.0.0.0");
    assert_int_equal(specs[2].port, 10030);
    assert_int_equal(specs[3].proto, FG_PROTO_NETCAT);
    assert_string_equal(specs[3].addr, "localhost");
    assert_int_equal(specs[3].port, 10888);
    assert_int_equal(specs[4].proto, FG_PROTO_SMTP);
    assert_string_equal(specs[4].addr, "::1");
    assert_int_equal(specs[4].port, 10040);
    assert_int_equal(specs[5].proto, FG_PROTO_ESMTP);
    assert_string_equal(specs[5].addr, "2001:db8::5");
    assert_int_equal(specs[5].port, 10050);
    free(specs);
}

static void test_fuglu_default_and_bindaddr(void **state)
{
    (void)state;
    fg_portspec *specs = NULL;
    size_t n = 0;
    char *err = NULL;
    assert_int_equal(fg_portspec_parse_list("10025,10099,10888", NULL, &specs, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_string_equal(specs[2].addr, "127.0.0.1");
    assert_int_equal(specs[2].port, 10888);
    free(specs);
    /* an IPv6 bindaddress, with or without brackets */
    assert_int_equal(fg_portspec_parse_list("1,milter:2", "[::1]", &specs, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(specs[0].addr, "::1");
    assert_string_equal(specs[1].addr, "::1");
    assert_int_equal(specs[1].port, 2);
    free(specs);
    assert_int_equal(fg_portspec_parse_list("65535", "::", &specs, &n, &err), 0);
    assert_string_equal(specs[0].addr, "::");
    assert_int_equal(specs[0].port, 65535);
    free(specs);
}

static void expect_error(const char *list, const char *want)
{
    fg_portspec *specs = (fg_portspec *)&specs; /* must be reset to NULL on failure */
    size_t n = 99;
    char *err = NULL;
    assert_int_equal(fg_portspec_parse_list(list, "127.0.0.1", &specs, &n, &err), -1);
    assert_null(specs);
    assert_int_equal(n, 0);
    assert_non_null(err);
    assert_string_equal(err, want);
    free(err);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("10025,foo:10026",
                 "incomingport entry 'foo:10026': unknown protocol 'foo' (use smtp, esmtp, milter or netcat)");
    expect_error("nc:10888",
                 "incomingport entry 'nc:10888': unknown protocol 'nc' (use smtp, esmtp, milter or netcat)");
    expect_error("0", "incomingport entry '0': port 0 is out of range (use 1-65535)");
    expect_error("smtp:65536", "incomingport entry 'smtp:65536': port 65536 is out of range (use 1-65535)");
    expect_error("smtp:99999999999999999999", "incomingport entry 'smtp:99999999999999999999': port "
                                              "99999999999999999999 is out of range (use 1-65535)");
    expect_error("abc", "incomingport entry 'abc': port 'abc' is not a number");
    expect_error("smtp:-5", "incomingport entry 'smtp:-5': port '-5' is not a number");
    expect_error("smtp:1.2.3.4:", "incomingport entry 'smtp:1.2.3.4:': missing port number");
    expect_error("smtp:::1:25", "incomingport entry 'smtp:::1:25': too many ':' (write IPv6 addresses in "
                                "brackets: PROTO:[ADDR]:PORT)");
    expect_error("smtp:a:b:25", "incomingport entry 'smtp:a:b:25': too many ':' (write IPv6 addresses in "
                                "brackets: PROTO:[ADDR]:PORT)");
    expect_error("smtp::25",
                 "incomingport entry 'smtp::25': empty address (use PROTO:PORT for the default address)");
    expect_error("smtp:[::1:25", "incomingport entry 'smtp:[::1:25': unterminated '[' in '[::1:25'");
    expect_error("smtp:[::1]25", "incomingport entry 'smtp:[::1]25': expected ':PORT' after the bracketed address");
    expect_error("smtp:[1.2.3.4]:25", "incomingport entry 'smtp:[1.2.3.4]:25': '1.2.3.4' is not an IPv6 address");
    expect_error("smtp:ho st:25", "incomingport entry 'smtp:ho st:25': 'ho st' is not an IPv4 address or host name");
    expect_error("10025, smtp:127.0.0.1:10025",
                 "incomingport entry 'smtp:127.0.0.1:10025': port 10025 on 127.0.0.1 is already listed");
    expect_error("", "incomingport is empty");
    expect_error(" , ,, ", "incomingport is empty");
    expect_error(NULL, "incomingport is empty");
}

static void test_format_round_trip(void **state)
{
    (void)state;
    const char *entries[] = {
        "smtp:127.0.0.1:10025", "esmtp:0.0.0.0:1", "milter:[::1]:10030",
        "netcat:localhost:65535", "smtp:[2001:db8::1]:25",
    };
    for (size_t i = 0; i < sizeof(entries) / sizeof(entries[0]); i++) {
        fg_portspec *specs = NULL;
        size_t n = 0;
        char *err = NULL;
        assert_int_equal(fg_portspec_parse_list(entries[i], "127.0.0.1", &specs, &n, &err), 0);
        assert_int_equal(n, 1);
        char buf[128];
        fg_portspec_format(&specs[0], buf, sizeof(buf));
        assert_string_equal(buf, entries[i]);
        free(specs);
    }
    /* short forms format to the full form */
    fg_portspec *specs = NULL;
    size_t n = 0;
    char *err = NULL;
    assert_int_equal(fg_portspec_parse_list("NETCAT:10888", "::1", &specs, &n, &err), 0);
    char buf[64];
    fg_portspec_format(&specs[0], buf, sizeof(buf));
    assert_string_equal(buf, "netcat:[::1]:10888");
    /* truncation keeps the buffer terminated */
    char tiny[6];
    fg_portspec_format(&specs[0], tiny, sizeof(tiny));
    assert_string_equal(tiny, "netca");
    free(specs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proto_names),
        cmocka_unit_test(test_all_forms),
        cmocka_unit_test(test_fuglu_default_and_bindaddr),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_format_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
