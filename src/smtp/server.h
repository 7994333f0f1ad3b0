/* server: the listeners (one per incomingport spec) and the sessions behind them, as main.c sees
 * them. listener.c implements this; each protocol's sessions are a session type (session.h), so far
 * smtp_session.c, the after-queue content filter.
 *
 * Runs entirely on the main thread's libevent loop. A session reads commands (pipelined commands
 * answered in order), receives DATA into an fg_msg, submits a job to the pool and stops reading
 * until the verdict comes back; then it answers and continues with the next command. A slow or idle
 * client costs a socket and a few hundred bytes, never a worker.
 */
#ifndef FUGLU_SERVER_H
#define FUGLU_SERVER_H

#include <event2/event.h>
#include <stddef.h>
#include "pool/job.h"
#include "smtp/portspec.h"

typedef struct fg_server fg_server;

typedef struct fg_server_opts {
    struct event_base *base;
    size_t max_message_size;    /* bytes; larger DATA is answered 552 */
    size_t spill_threshold;     /* bytes kept in memory before spilling to tempdir */
    const char *tempdir;
    int smtp_timeout;           /* seconds without a command */
    int data_timeout;           /* seconds without DATA bytes */
    int scan_timeout;           /* seconds a client waits for its verdict before a 451 */
    size_t max_recipients;
    size_t max_connections;     /* sessions at once; more are refused (0 = 2000) */
    size_t max_per_client;      /* sessions of one client address (0 = no own limit) */
} fg_server_opts;

fg_server *fg_server_new(const fg_server_opts *opts);
/* Where finished messages go (the current generation); submit returns -1 when it cannot take one. */
void fg_server_set_submit(fg_server *s, int (*submit)(fg_job *job, void *arg), void *arg);
/* Opens a listener for spec; -1 with *err if the protocol has no session type yet or the bind fails. */
int fg_server_listen(fg_server *s, const fg_portspec *spec, char **err);
/* Makes the listeners match specs exactly (by protocol, address and port): opens the new ones,
 * closes the ones not listed (their open sessions continue). Errors are logged and appended to
 * report (may be NULL); returns their number. */
int fg_server_apply_ports(fg_server *s, const fg_portspec *specs, size_t n, fg_buf *report);
/* Serves an already connected socket (a test's socketpair, a descriptor passed by a supervisor) as
 * a session of proto, as if accepted from peer on local_port. fd is the session's from then on.
 * -1 when the protocol has no session type (fd closed). */
int fg_server_adopt(fg_server *s, int fd, fg_proto proto, const char *peer, int local_port);
/* The pool's done callback (main thread): answers the session that waits for this job. */
void fg_server_job_done(fg_job *job, void *arg);
/* Shutdown: closes the listeners, answers idle sessions 421 and closes them; sessions waiting for a
 * verdict are closed after their answer. */
void fg_server_shutdown(fg_server *s);
size_t fg_server_session_count(fg_server *s);
void fg_server_free(fg_server *s);

#endif
