/* reinject: the blocking SMTP client a worker uses to hand a scanned message to the downstream MTA.
 *
 * EHLO (HELO fallback), MAIL with the original parameters the downstream advertises (SIZE, BODY,
 * SMTPUTF8, RET/ENVID for DSN), RCPT per recipient (NOTIFY/ORCPT when DSN is advertised), XFORWARD of
 * the original client when advertised, DATA with dot-stuffing. Each call either reports success (the
 * downstream accepted the message with a 2xx after DATA) or failure with the downstream's reply or a
 * local reason: a message is never reported delivered unless it was.
 *
 * A cache (one per worker thread, never shared) keeps the connection open between messages; it is
 * reused after RSET, and a stale cached connection is replaced transparently once.
 */
#ifndef FUGLU_REINJECT_H
#define FUGLU_REINJECT_H

#include <stdbool.h>
#include <stddef.h>
#include "pool/job.h"

typedef struct fg_reinject_cache fg_reinject_cache;

fg_reinject_cache *fg_reinject_cache_new(void);
/* Sends QUIT on an open connection and frees. */
void fg_reinject_cache_free(fg_reinject_cache *c);

typedef struct fg_reinject_req {
    const char *host;            /* IPv4/IPv6 literal or name (resolved with getaddrinfo, numeric first) */
    int port;
    const char *helo;            /* EHLO/HELO name */
    double timeout;              /* seconds for connect and for each reply; 0 = 60 */
    const char *mail_from;       /* "" for the null sender */
    const char *mail_params;     /* original MAIL parameters or NULL */
    size_t nrcpt;
    const char *const *rcpts;
    const char *const *rcpt_params; /* per recipient, may be NULL or contain NULLs */
    /* XFORWARD attributes of the original client; NULL = not sent */
    const char *xf_name, *xf_addr, *xf_port, *xf_helo, *xf_proto, *xf_source, *xf_ident;
    const char *prefix;          /* added header lines (CRLF-terminated) to send before the body */
    size_t prefix_len;
    const char *body;            /* the message */
    size_t body_len;
    /* The job's fate (job.h), or NULL: nothing is sent once it is cancelled, and the final dot
     * goes out only after fg_fate_commit succeeded. Cancelled before that, the connection is
     * dropped mid-DATA, so the downstream discards the partial message. */
    fg_fate *fate;
} fg_reinject_req;

typedef struct fg_reinject_res {
    bool ok;                     /* the downstream accepted the message (2xx after DATA) */
    int code;                    /* the last reply code seen (0 if no reply: connect/IO error) */
    char text[512];              /* that reply's text without the code ("2.0.0 Ok: queued as X"),
                                    or a local reason ("connect to 127.0.0.1:10026 failed: ...") */
    bool temporary;              /* when !ok: retrying later may succeed (4xx, network) vs 5xx */
    bool cancelled;              /* when !ok: the job was cancelled (its client was answered already) */
} fg_reinject_res;

/* Always fills *res. Recipient handling: if any RCPT is refused the transaction is aborted (RSET)
 * and nothing is delivered: all refused with 5xx → !ok, !temporary with the first refusal; any 4xx
 * or a mix of accepted and refused → !ok, temporary. Returns 0 if ok, -1 otherwise. */
int fg_reinject_send(fg_reinject_cache *c, const fg_reinject_req *req, fg_reinject_res *res);

#endif
