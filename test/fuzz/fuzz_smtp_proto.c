/* fuzz_smtp_proto: libFuzzer target for the SMTP parsing that faces clients and downstream
 * servers (src/smtp/smtp_proto.c): every line of the input as a command (paths, parameters,
 * XFORWARD) and as a reply line, and the whole input through the DATA decoder in chunks chosen by
 * the first byte. Property checked: what the decoder gives, encoded for re-injection and decoded
 * again, is the same bytes (dot-stuffing is transparent).
 * Built and run by `make fuzz`, seeds in test/fuzz/corpus/smtp_proto/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_proto.h"

static void one_line(const char *line)
{
    smtp_command c;
    smtp_parse_command(line, &c);
    const char *err = NULL;
    char *addr = NULL, *params = NULL;
    if (c.verb == SMTP_CMD_MAIL || c.verb == SMTP_CMD_RCPT) {
        if (smtp_parse_path(c.arg, c.verb == SMTP_CMD_MAIL ? "FROM:" : "TO:", &addr, &params, &err) == 0) {
            free(smtp_param_get(params, "SIZE"));
            static const char *const allowed[] = {"SIZE", "BODY", "NOTIFY", NULL};
            free(smtp_params_filter(params, allowed));
            free(addr);
            free(params);
        } else if (!err) {
            abort();
        }
    } else if (c.verb == SMTP_CMD_XFORWARD) {
        smtp_xforward xf = {0};
        smtp_parse_xforward(c.arg, &xf, &err);
        smtp_xforward_clear(&xf);
    }
    bool last;
    const char *text;
    int code = smtp_parse_reply_line(line, &last, &text);
    if (code != -1 && (code < 100 || code > 599))
        abort();
}

static size_t decode_all(const char *in, size_t len, size_t chunk, fg_buf *out, int *ended)
{
    smtp_data_decoder d;
    smtp_data_decoder_init(&d);
    size_t off = 0;
    *ended = 0;
    while (off < len) {
        size_t n = len - off < chunk ? len - off : chunk, used = 0;
        int r = smtp_data_decode(&d, in + off, n, out, &used);
        if (used > n)
            abort();
        off += used;
        if (r == 1) {
            *ended = 1;
            break;
        }
    }
    return off;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    char *copy = malloc(size + 1);
    memcpy(copy, data, size);
    copy[size] = 0;
    for (char *line = copy, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        size_t l = strlen(line);
        if (l && line[l - 1] == '\r')
            line[l - 1] = 0;
        one_line(line);
    }
    free(copy);

    size_t chunk = size ? (size_t)data[0] % 17 + 1 : 1;
    fg_buf msg;
    fg_buf_init(&msg);
    int ended;
    decode_all((const char *)data, size, chunk, &msg, &ended);
    if (ended) {
        /* re-inject form of it, then what a downstream's decoder makes of that: the same bytes, as
         * long as the message ends with a line break (the encoder adds one otherwise) */
        fg_buf wire, again;
        fg_buf_init(&wire);
        fg_buf_init(&again);
        smtp_data_encoder e;
        smtp_data_encoder_init(&e);
        smtp_data_encode(&e, msg.data ? msg.data : "", msg.len, &wire);
        smtp_data_encode_end(&e, &wire);
        int ended2;
        size_t used = decode_all(wire.data, wire.len, 4096, &again, &ended2);
        if (!ended2 || used != wire.len)
            abort();
        if (msg.len >= 2 && msg.data[msg.len - 2] == '\r' && msg.data[msg.len - 1] == '\n') {
            /* bare LF becomes CRLF on the way out: compare only messages without a bare LF */
            int bare = 0;
            for (size_t i = 0; i < msg.len; i++)
                if (msg.data[i] == '\n' && (i == 0 || msg.data[i - 1] != '\r'))
                    bare = 1;
            if (!bare && (again.len != msg.len || memcmp(again.data, msg.data, msg.len) != 0))
                abort();
        }
        fg_buf_free(&wire);
        fg_buf_free(&again);
    }
    fg_buf_free(&msg);
    return 0;
}
