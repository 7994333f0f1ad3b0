/* test_smtp_proto: unit tests for smtp_proto (commands, paths, parameters, XFORWARD, replies, and
 * the streaming DATA decoder and encoder, including every chunk split of the input). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_proto.h"
#include "lib/util.h"

static void test_command_table(void **state)
{
    (void)state;
    static const struct {
        const char *line;
        smtp_verb verb;
        const char *arg;
    } cases[] = {
        {"MAIL FROM:<x@y>", SMTP_CMD_MAIL, "FROM:<x@y>"},
        {"mail from:<x@y>", SMTP_CMD_MAIL, "from:<x@y>"},
        {"RcPt TO:<a>", SMTP_CMD_RCPT, "TO:<a>"},
        {"HELO host", SMTP_CMD_HELO, "host"},
        {"EHLO host", SMTP_CMD_EHLO, "host"},
        {"DATA", SMTP_CMD_DATA, ""},
        {"BDAT 10 LAST", SMTP_CMD_BDAT, "10 LAST"},
        {"RSET", SMTP_CMD_RSET, ""},
        {"NOOP", SMTP_CMD_NOOP, ""},
        {"QUIT", SMTP_CMD_QUIT, ""},
        {"quit ", SMTP_CMD_QUIT, ""},
        {"VRFY x", SMTP_CMD_VRFY, "x"},
        {"HELP", SMTP_CMD_HELP, ""},
        {"XFORWARD NAME=x", SMTP_CMD_XFORWARD, "NAME=x"},
        {"STARTTLS", SMTP_CMD_STARTTLS, ""},
        {"DATAX", SMTP_CMD_UNKNOWN, ""},
        {"MAIL:FROM:<x>", SMTP_CMD_UNKNOWN, ""},
        {"MAIL\tFROM:<x>", SMTP_CMD_UNKNOWN, ""},
        {"", SMTP_CMD_UNKNOWN, ""},
        {"HEL", SMTP_CMD_UNKNOWN, ""},
        {"FOO bar", SMTP_CMD_UNKNOWN, "bar"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        smtp_command cmd;
        smtp_parse_command(cases[i].line, &cmd);
        assert_int_equal(cmd.verb, cases[i].verb);
        assert_string_equal(cmd.arg, cases[i].arg);
    }
}

static void check_path(const char *arg, const char *prefix, const char *addr, const char *params)
{
    char *a = NULL, *p = NULL;
    const char *err = NULL;
    int rc = smtp_parse_path(arg, prefix, &a, &p, &err);
    if (!addr) {
        assert_int_equal(rc, -1);
        assert_non_null(err);
        assert_null(a);
        assert_null(p);
        return;
    }
    assert_int_equal(rc, 0);
    assert_string_equal(a, addr);
    assert_string_equal(p, params);
    free(a);
    free(p);
}

static void test_path(void **state)
{
    (void)state;
    check_path("FROM:<>", "FROM:", "", "");
    check_path("FROM:<a@b.c>", "FROM:", "a@b.c", "");
    check_path("from: <a@b.c>", "FROM:", "a@b.c", "");
    check_path("FROM:<a@b.c> SIZE=10 BODY=8BITMIME ", "FROM:", "a@b.c", "SIZE=10 BODY=8BITMIME");
    check_path("FROM:a@b.c SIZE=10", "FROM:", "a@b.c", "SIZE=10");
    check_path("TO:<\"a b\"@x.y> NOTIFY=NEVER", "TO:", "\"a b\"@x.y", "NOTIFY=NEVER");
    check_path("TO:<\"a>b\"@x.y>", "TO:", "\"a>b\"@x.y", "");
    check_path("TO:<@r1,@r2:x@y>", "TO:", "x@y", "");
    check_path("TO:<postmaster>", "TO:", "postmaster", "");
    check_path("TO:<m\xc3\xbcller@x.de> ", "TO:", "m\xc3\xbcller@x.de", "");
    /* bad syntax */
    check_path("FROM:<a@b", "FROM:", NULL, NULL);
    check_path("TO:<a@b>", "FROM:", NULL, NULL);
    check_path("FROM:", "FROM:", NULL, NULL);
    check_path("FROM:<a@b>SIZE=1", "FROM:", NULL, NULL);
    check_path("FROM:<a b@c>", "FROM:", NULL, NULL);
    check_path("FROM:<\"a@b>", "FROM:", NULL, NULL);
    check_path("FROM:<a<b@c>", "FROM:", NULL, NULL);
    check_path("FROM:<a\rb@c>", "FROM:", NULL, NULL);
    check_path("TO:<@r1,@r2>", "TO:", NULL, NULL);

    char *a, *p;
    const char *err;
    assert_int_equal(smtp_parse_path("FROM:<x", "FROM:", &a, &p, &err), -1);
    assert_string_equal(err, "5.5.4 Syntax: MAIL FROM:<address>");
    assert_int_equal(smtp_parse_path("TO:<x", "TO:", &a, &p, &err), -1);
    assert_string_equal(err, "5.5.4 Syntax: RCPT TO:<address>");
    /* a TAB inside the parameters is refused at once (the downstream would refuse it at DATA) */
    assert_int_equal(smtp_parse_path("TO:<a@b> NOTIFY=NEVER\tORCPT=rfc822;a@b", "TO:", &a, &p, &err), -1);
    assert_string_equal(err, "5.5.4 Syntax: a TAB or control character in the parameters");
    assert_int_equal(smtp_parse_path("FROM:<a@b> SIZE=1\x01", "FROM:", &a, &p, &err), -1);
    /* blanks around the parameters are still fine */
    assert_int_equal(smtp_parse_path("FROM:<a@b>\tSIZE=1\t", "FROM:", &a, &p, &err), 0);
    assert_string_equal(p, "SIZE=1");
    free(a);
    free(p);
}

static void check_param(const char *params, const char *key, const char *want)
{
    char *v = smtp_param_get(params, key);
    if (!want) {
        assert_null(v);
        return;
    }
    assert_non_null(v);
    assert_string_equal(v, want);
    free(v);
}

static void test_params(void **state)
{
    (void)state;
    const char *params = "SIZE=10 body=8BITMIME  SMTPUTF8 ENVID=a=b";
    check_param(params, "SIZE", "10");
    check_param(params, "size", "10");
    check_param(params, "BODY", "8BITMIME");
    check_param(params, "SMTPUTF8", "");
    check_param(params, "ENVID", "a=b");
    check_param(params, "RET", NULL);
    check_param(params, "SIZ", NULL);
    check_param("", "SIZE", NULL);
    check_param(NULL, "SIZE", NULL);

    static const char *const allowed[] = {"BODY", "SMTPUTF8", "ret", NULL};
    char *f = smtp_params_filter("SIZE=10 body=8BITMIME AUTH=<> RET=HDRS SMTPUTF8", allowed);
    assert_string_equal(f, "body=8BITMIME RET=HDRS SMTPUTF8");
    free(f);
    f = smtp_params_filter("SIZE=10", allowed);
    assert_string_equal(f, "");
    free(f);
    static const char *const none[] = {NULL};
    f = smtp_params_filter("SIZE=10 BODY=7BIT", none);
    assert_string_equal(f, "");
    free(f);
}

static void test_xforward(void **state)
{
    (void)state;
    smtp_xforward xf = {0};
    const char *err = NULL;
    assert_int_equal(smtp_parse_xforward("NAME=mail.example.com ADDR=192.0.2.1 PORT=25 HELO=h+20x", &xf, &err), 0);
    assert_string_equal(xf.name, "mail.example.com");
    assert_string_equal(xf.addr, "192.0.2.1");
    assert_string_equal(xf.port, "25");
    assert_string_equal(xf.helo, "h x");
    assert_null(xf.proto);
    assert_int_equal(smtp_parse_xforward("proto=ESMTP SOURCE=REMOTE IDENT=abc+2B1 addr=IPv6:2001:db8::1", &xf, &err), 0);
    assert_string_equal(xf.proto, "ESMTP");
    assert_string_equal(xf.source, "REMOTE");
    assert_string_equal(xf.ident, "abc+1");
    assert_string_equal(xf.addr, "2001:db8::1");
    assert_string_equal(xf.name, "mail.example.com");
    assert_int_equal(smtp_parse_xforward("NAME=[UNAVAILABLE] HELO=[TEMPUNAVAIL]", &xf, &err), 0);
    assert_null(xf.name);
    assert_null(xf.helo);
    assert_string_equal(xf.addr, "2001:db8::1");

    assert_int_equal(smtp_parse_xforward("FOO=bar", &xf, &err), -1);
    assert_non_null(err);
    assert_int_equal(smtp_parse_xforward("NAME", &xf, &err), -1);
    assert_int_equal(smtp_parse_xforward("NAME=a+4", &xf, &err), -1);
    assert_int_equal(smtp_parse_xforward("NAME=a+ZZ", &xf, &err), -1);
    assert_int_equal(smtp_parse_xforward("NAME=a+0Db", &xf, &err), -1);
    assert_int_equal(smtp_parse_xforward("", &xf, &err), -1);
    smtp_xforward_clear(&xf);
    assert_null(xf.addr);
    assert_null(xf.proto);
}

static void test_reply_line(void **state)
{
    (void)state;
    bool last;
    const char *text;
    assert_int_equal(smtp_parse_reply_line("250-SIZE 100", &last, &text), 250);
    assert_false(last);
    assert_string_equal(text, "SIZE 100");
    assert_int_equal(smtp_parse_reply_line("250 2.0.0 Ok: queued as X", &last, &text), 250);
    assert_true(last);
    assert_string_equal(text, "2.0.0 Ok: queued as X");
    assert_int_equal(smtp_parse_reply_line("354", &last, &text), 354);
    assert_true(last);
    assert_string_equal(text, "");
    assert_int_equal(smtp_parse_reply_line("25", &last, &text), -1);
    assert_int_equal(smtp_parse_reply_line("650 x", &last, &text), -1);
    assert_int_equal(smtp_parse_reply_line("250x", &last, &text), -1);
    assert_int_equal(smtp_parse_reply_line("abc def", &last, &text), -1);
}

/* Decodes in one call; returns 1/0 as the decoder and fills *consumed. */
static int decode_all(const char *in, size_t len, fg_buf *out, size_t *consumed)
{
    smtp_data_decoder d;
    smtp_data_decoder_init(&d);
    return smtp_data_decode(&d, in, len, out, consumed);
}

static void check_decode(const char *in, size_t len, const char *want, size_t want_len, size_t want_consumed)
{
    fg_buf out;
    size_t consumed = 0;
    fg_buf_init(&out);
    assert_int_equal(decode_all(in, len, &out, &consumed), 1);
    assert_int_equal(consumed, want_consumed);
    assert_int_equal(out.len, want_len);
    assert_memory_equal(out.data ? out.data : "", want, want_len);
    fg_buf_free(&out);
}

#define S(x) x, sizeof(x) - 1

static void test_decoder_cases(void **state)
{
    (void)state;
    check_decode(S("Subject: x\r\n\r\nbody\r\n.\r\n"), S("Subject: x\r\n\r\nbody\r\n"), 23);
    check_decode(S(".\r\n"), S(""), 3);
    check_decode(S("..x\r\n...\r\n.\r\n"), S(".x\r\n..\r\n"), 13);
    check_decode(S(".x\r\n.\n\r\n.\r\n"), S("x\r\n\n\r\n"), 11);
    check_decode(S("a\nb\rc\r\r\n.\r\n"), S("a\nb\rc\r\r\n"), 11);
    check_decode(S("\xff\xfe\x80\r\n.\r\n"), S("\xff\xfe\x80\r\n"), 8);
    check_decode(S("a\0b\r\n\0\r\n.\r\n"), S("a\0b\r\n\0\r\n"), 11);
    check_decode(S("x\r\n.\r\nMAIL FROM:<>\r\n"), S("x\r\n"), 6);
    check_decode(S("x\r\n.\r\r\n.\r\n"), S("x\r\n\r\r\n"), 10);
    check_decode(S("x\n.\r\n.\r\n"), S("x\n.\r\n"), 8); /* a dot after a bare LF is line content */

    /* not finished yet */
    fg_buf out;
    size_t consumed = 0;
    fg_buf_init(&out);
    assert_int_equal(decode_all(S("x\r\n.\n"), &out, &consumed), 0);
    assert_int_equal(consumed, 5);
    fg_buf_clear(&out);
    assert_int_equal(decode_all(S("x\r\n.\r"), &out, &consumed), 0);
    assert_string_equal(out.data, "x\r\n");
    fg_buf_free(&out);
}

static void test_decoder_long_line(void **state)
{
    (void)state;
    size_t n = 100 * 1024;
    char *in = xmalloc(n + 5);
    for (size_t i = 0; i < n; i++)
        in[i] = (char)('a' + i % 26);
    memcpy(in + n, "\r\n.\r\n", 5);
    fg_buf out;
    size_t consumed;
    fg_buf_init(&out);
    assert_int_equal(decode_all(in, n + 5, &out, &consumed), 1);
    assert_int_equal(consumed, n + 5);
    assert_int_equal(out.len, n + 2);
    assert_memory_equal(out.data, in, n + 2);
    fg_buf_free(&out);
    free(in);
}

/* Feeds in[0..len) in the pieces given by cuts (ascending offsets); returns the decoder result. */
static int decode_pieces(const char *in, size_t len, const size_t *cuts, size_t ncuts, fg_buf *out, size_t *total)
{
    smtp_data_decoder d;
    smtp_data_decoder_init(&d);
    size_t start = 0;
    *total = 0;
    for (size_t k = 0; k <= ncuts; k++) {
        size_t end = k < ncuts ? cuts[k] : len;
        size_t consumed = 0;
        int rc = smtp_data_decode(&d, in + start, end - start, out, &consumed);
        *total += consumed;
        if (rc == 1)
            return 1;
        assert_int_equal(consumed, end - start);
        start = end;
    }
    return 0;
}

static void check_all_splits(const char *in, size_t len)
{
    fg_buf whole, piece;
    size_t consumed, total;
    fg_buf_init(&whole);
    assert_int_equal(decode_all(in, len, &whole, &consumed), 1);
    for (size_t cut = 0; cut <= len; cut++) {
        fg_buf_init(&piece);
        assert_int_equal(decode_pieces(in, len, &cut, 1, &piece, &total), 1);
        assert_int_equal(total, consumed);
        assert_int_equal(piece.len, whole.len);
        if (whole.len)
            assert_memory_equal(piece.data, whole.data, whole.len);
        fg_buf_free(&piece);
    }
    size_t *cuts = xmalloc(len * sizeof *cuts);
    for (size_t i = 0; i < len; i++)
        cuts[i] = i + 1;
    fg_buf_init(&piece);
    assert_int_equal(decode_pieces(in, len, cuts, len, &piece, &total), 1);
    assert_int_equal(total, consumed);
    assert_int_equal(piece.len, whole.len);
    if (whole.len)
        assert_memory_equal(piece.data, whole.data, whole.len);
    fg_buf_free(&piece);
    free(cuts);
    fg_buf_free(&whole);
}

static void test_decoder_splits(void **state)
{
    (void)state;
    check_all_splits(S("Subject: x\r\n\r\n..dot\r\n.\n\r\n.\r\r\nbare\nlf\rcr\r\r\n\r\n.\r\nNEXT\r\n"));
    check_all_splits(S(".\r\nQUIT\r\n"));
    check_all_splits(S("..\r\n.\r\n"));
    check_all_splits(S("a\r\n.\r.\r\n.\r\n"));
    check_all_splits(S("\r\n\r\n.\r\n"));
    check_all_splits(S("x\0\r\n.\0\r\n\xff.\r\n.\r\nrest"));
}

/* Encodes with the given chunk size (0 = whole) and returns the wire bytes. */
static void encode_chunked(const char *in, size_t len, size_t chunk, fg_buf *out)
{
    smtp_data_encoder e;
    smtp_data_encoder_init(&e);
    if (!chunk)
        chunk = len ? len : 1;
    for (size_t off = 0; off < len; off += chunk)
        smtp_data_encode(&e, in + off, len - off < chunk ? len - off : chunk, out);
    smtp_data_encode_end(&e, out);
}

static void check_encode(const char *in, size_t len, const char *wire, size_t wire_len)
{
    for (size_t chunk = 0; chunk <= 3; chunk++) {
        fg_buf out;
        fg_buf_init(&out);
        encode_chunked(in, len, chunk, &out);
        assert_int_equal(out.len, wire_len);
        assert_memory_equal(out.data, wire, wire_len);
        fg_buf_free(&out);
    }
}

static void test_encoder_cases(void **state)
{
    (void)state;
    check_encode(S(""), S(".\r\n"));
    check_encode(S("a\r\n"), S("a\r\n.\r\n"));
    check_encode(S("a"), S("a\r\n.\r\n"));
    check_encode(S("a\r"), S("a\r\n.\r\n"));
    check_encode(S(".a\r\n..\r\n.\r\n"), S("..a\r\n...\r\n..\r\n.\r\n"));
    check_encode(S("X-A: 1\nX-B: 2\nb\r\n"), S("X-A: 1\r\nX-B: 2\r\nb\r\n.\r\n"));
    check_encode(S("\n.\n"), S("\r\n..\r\n.\r\n"));
    check_encode(S("a\rb\r\n"), S("a\rb\r\n.\r\n"));
}

static void check_round_trip(const char *in, size_t len)
{
    bool ends_crlf = len >= 2 && in[len - 2] == '\r' && in[len - 1] == '\n';
    for (size_t chunk = 0; chunk <= 7; chunk += 1) {
        fg_buf wire, back;
        size_t consumed;
        fg_buf_init(&wire);
        fg_buf_init(&back);
        encode_chunked(in, len, chunk, &wire);
        assert_int_equal(decode_all(wire.data, wire.len, &back, &consumed), 1);
        assert_int_equal(consumed, wire.len);
        if (len == 0 || ends_crlf) {
            assert_int_equal(back.len, len);
        } else if (in[len - 1] == '\r') {
            assert_int_equal(back.len, len + 1);
            assert_memory_equal(back.data + len, "\n", 1);
        } else {
            assert_int_equal(back.len, len + 2);
            assert_memory_equal(back.data + len, "\r\n", 2);
        }
        if (len)
            assert_memory_equal(back.data, in, len);
        fg_buf_free(&wire);
        fg_buf_free(&back);
    }
}

static void test_round_trip(void **state)
{
    (void)state;
    check_round_trip(S(""));
    check_round_trip(S("a"));
    check_round_trip(S("."));
    check_round_trip(S(".\r\n"));
    check_round_trip(S("..\r\n.\r\n"));
    check_round_trip(S("From: a\r\n\r\n.hidden\r\n.\r\nmore\r\n"));
    check_round_trip(S("no final crlf\r\n.last"));
    check_round_trip(S("cr\r\r\n\r.x\r\n"));
    check_round_trip(S("\0\x80\xff\r\n.\0\r\n"));
    /* pseudo-random CRLF texts with dots at line starts */
    unsigned seed = 12345;
    for (int round = 0; round < 200; round++) {
        char buf[300];
        size_t len = 0, want = (size_t)(round % 150);
        while (len < want) {
            seed = seed * 1103515245u + 12345u;
            unsigned r = (seed >> 16) % 8;
            if (r == 0 && len + 2 <= want) {
                buf[len++] = '\r';
                buf[len++] = '\n';
            } else if (r == 1) {
                buf[len++] = '.';
            } else if (r == 2) {
                buf[len++] = '\r';
            } else {
                buf[len++] = (char)('a' + (seed >> 20) % 26);
            }
        }
        check_round_trip(buf, len);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_command_table),
        cmocka_unit_test(test_path),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_xforward),
        cmocka_unit_test(test_reply_line),
        cmocka_unit_test(test_decoder_cases),
        cmocka_unit_test(test_decoder_long_line),
        cmocka_unit_test(test_decoder_splits),
        cmocka_unit_test(test_encoder_cases),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
