/* session: the seam between the listeners (listener.c) and the sessions of one protocol.
 *
 * A protocol is a session type: a table of the four things the server asks of a session. The
 * listener picks the type by the incomingport's protocol (fg_session_type_of) and hands every
 * accepted connection to its start function; the pool's verdict reaches the session that owns the
 * job (job->owner) through job_done; shutdown and free come from the server. smtp_session.c is the
 * `smtp` type; esmtp, milter and netcat each add a file with their type and a line in listener.c's
 * table. A session type's struct starts with an fg_session, which the server links and counts.
 *
 * Everything here runs on the main thread's event loop.
 */
#ifndef FUGLU_SESSION_H
#define FUGLU_SESSION_H

#include <event2/event.h>
#include "pool/job.h"
#include "smtp/portspec.h"
#include "smtp/server.h"

typedef struct fg_session fg_session;
typedef struct fg_session_type fg_session_type;
typedef struct fg_listener fg_listener;

/* The part of every session the server knows; the first member of each session type's struct. */
struct fg_session {
    fg_server *srv;
    const fg_session_type *type;
    fg_session *prev, *next;
    char peer[46];              /* the client's numeric address (per-client connection limit) */
};

struct fg_session_type {
    const char *name;
    /* Takes an accepted connection (fd is the session's from now on, closed on failure); peer is the
     * numeric client address, local_port the listener's. The session adds itself with
     * fg_server_session_add once it runs. */
    void (*start)(fg_server *srv, evutil_socket_t fd, const char *peer, int local_port);
    /* The verdict of the job this session submitted (job->owner == s); the session frees the job. */
    void (*job_done)(fg_session *s, fg_job *job);
    /* The server stops: an idle session says goodbye and closes; one waiting for a verdict closes
     * after its answer (the session reads fg_server's shutting_down). */
    void (*shutdown)(fg_session *s);
    /* Frees the session now (the server is freed). */
    void (*free)(fg_session *s);
    /* Turns away a connection over a limit (why: "too many connections"): a best-effort goodbye in
     * the protocol's words, then fd is closed. */
    void (*refuse)(fg_server *srv, evutil_socket_t fd, const char *why);
};

/* The session type for an incomingport protocol; NULL while the protocol is not supported. */
const fg_session_type *fg_session_type_of(fg_proto proto);

/* What a session sees of its server. */
struct fg_server {
    fg_server_opts o;
    int (*submit)(fg_job *job, void *arg);
    void *submit_arg;
    fg_listener *listeners;
    fg_session *sessions;
    size_t nsessions;
    int shutting_down;
    char *hostname;
};

/* Links s (srv and type set) into the server's sessions; remove unlinks it. */
void fg_server_session_add(fg_server *srv, fg_session *s);
void fg_server_session_remove(fg_server *srv, fg_session *s);
/* Hands a finished job to the pool: -1 when it cannot take one (full, shutting down, none set). */
int fg_server_submit(fg_server *srv, fg_job *job);

/* The session types. */
extern const fg_session_type fg_smtp_session_type;

#endif
