/* smtp_proto: the pure (no I/O) parts of SMTP for the server and the re-inject client.
 *
 * Command parsing, envelope path and parameter parsing, XFORWARD attributes, the streaming DATA
 * decoder (dot-unstuffing, end-of-data detection) and the streaming encoder (dot-stuffing) used
 * when re-injecting. Everything here trusts nothing it reads and never allocates unboundedly.
 */
#ifndef FUGLU_SMTP_PROTO_H
#define FUGLU_SMTP_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include "lib/util.h"

typedef enum {
    SMTP_CMD_UNKNOWN = 0,
    SMTP_CMD_HELO, SMTP_CMD_EHLO, SMTP_CMD_MAIL, SMTP_CMD_RCPT, SMTP_CMD_DATA, SMTP_CMD_BDAT,
    SMTP_CMD_RSET, SMTP_CMD_NOOP, SMTP_CMD_QUIT, SMTP_CMD_VRFY, SMTP_CMD_HELP, SMTP_CMD_XFORWARD,
    SMTP_CMD_STARTTLS,
} smtp_verb;

typedef struct smtp_command {
    smtp_verb verb;
    const char *arg;   /* points into the parsed line: text after the verb and one space, or "" */
} smtp_command;

/* line is one command without its CRLF (NUL-terminated). The verb is case-insensitive. */
void smtp_parse_command(const char *line, smtp_command *out);

/* Parses the argument of MAIL ("FROM:<a@b> SIZE=10 BODY=8BITMIME") or RCPT ("TO:<x@y> NOTIFY=...").
 * expect_prefix is "FROM:" or "TO:" (case-insensitive, blanks allowed after the colon). The path may be
 * <> (empty address), <addr>, or a bare addr (tolerated). Source routes (<@a,@b:x@y>) are reduced to
 * x@y. On success *addr and *params (the text after the path, trimmed, "" if none) are malloc'ed.
 * Returns -1 with *err (a static string fit for a 501 reply, e.g. "5.5.4 Syntax: MAIL FROM:<address>")
 * on bad syntax. */
int smtp_parse_path(const char *arg, const char *expect_prefix, char **addr, char **params, const char **err);

/* ESMTP parameter lookup in a params string ("SIZE=10 BODY=8BITMIME SMTPUTF8"): returns a malloc'ed
 * value ("" for a keyword without value) or NULL if absent. Keywords are case-insensitive. */
char *smtp_param_get(const char *params, const char *keyword);
/* Keeps only the parameters whose keyword is in the NULL-terminated allowed list (e.g. the ones the
 * downstream advertises), in their original order; malloc'ed result. */
char *smtp_params_filter(const char *params, const char *const *allowed);

/* XFORWARD: "NAME=x ADDR=1.2.3.4 HELO=y PROTO=ESMTP SOURCE=REMOTE IDENT=..." (xtext-decoded).
 * Each found attribute replaces the previous value in the struct (malloc'ed). Returns -1 with *err
 * for a malformed attribute or an unknown attribute name. [UNAVAILABLE] and [TEMPUNAVAIL] values are
 * stored as NULL (the attribute is cleared). An "IPV6:" prefix on ADDR is removed. */
typedef struct smtp_xforward {
    char *name, *addr, *port, *helo, *proto, *source, *ident;
} smtp_xforward;
int smtp_parse_xforward(const char *arg, smtp_xforward *xf, const char **err);
void smtp_xforward_clear(smtp_xforward *xf);

/* Streaming DATA decoder. Feed the bytes that follow the 354 reply; it appends the unstuffed message
 * to out (CRLF and every other byte kept as sent, a leading "." of a line removed; the end-of-data
 * line ".\r\n" is not included, the CRLF that ends the last message line is kept). Returns 1 when the end-of-data line was seen, with *consumed = bytes of
 * `in` used (the rest belongs to the next command); 0 when more input is needed (*consumed = len).
 * A lone "." line at the very start (empty message) also ends the data. */
typedef struct smtp_data_decoder {
    int state;
} smtp_data_decoder;
void smtp_data_decoder_init(smtp_data_decoder *d);
int smtp_data_decode(smtp_data_decoder *d, const char *in, size_t len, fg_buf *out, size_t *consumed);

/* Streaming DATA encoder for sending: doubles a "." at the start of each line, turns a bare LF into
 * CRLF, and smtp_data_encode_end() appends the final line break (if the data did not end with one)
 * and ".\r\n". */
typedef struct smtp_data_encoder {
    int state;
} smtp_data_encoder;
void smtp_data_encoder_init(smtp_data_encoder *e);
void smtp_data_encode(smtp_data_encoder *e, const char *in, size_t len, fg_buf *out);
void smtp_data_encode_end(smtp_data_encoder *e, fg_buf *out);

/* Replies: parses one reply line "250-TEXT" / "250 TEXT". Returns the code (100..599) or -1;
 * *last = true for the final line (space or end after the code); *text points after the separator. */
int smtp_parse_reply_line(const char *line, bool *last, const char **text);

#endif
