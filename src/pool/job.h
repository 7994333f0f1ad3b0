/* job: one received message on its way from a protocol session to a worker and back.
 *
 * The session (main thread) fills the envelope and the message, the pool hands the job to a worker
 * thread, the worker fills the reply, and the pool returns the job to the main thread. Only one
 * thread touches a job at a time; the message is reference counted because Lua may keep it longer.
 */
#ifndef FUGLU_JOB_H
#define FUGLU_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "pool/msg.h"
#include "smtp/portspec.h"
#include "smtp/smtp_proto.h"
#include "lib/util.h"

/* Fuglu's action codes (lua/fuglu/actions.lua has the same numbers). */
enum { FG_ACTION_DUNNO = 0, FG_ACTION_ACCEPT = 1, FG_ACTION_DELETE = 2, FG_ACTION_REJECT = 3, FG_ACTION_DEFER = 4 };

/* A job's fate: whether its message may still be delivered. Two parties race on one atomic word:
 * the session (main thread), which cancels when it answers the client without the verdict
 * (scan_timeout, the client went away), and whoever runs the job (a worker thread, or a worker
 * process through a word in shared memory), which commits just before it sends the final dot of the
 * re-injection. Exactly one of them wins: a cancelled job is never delivered, and a committed job's
 * client is answered with the downstream's reply, however long that takes (bounded by
 * reinject_timeout). So a client answered 4xx never finds its retry delivered twice. */
enum { FG_FATE_OPEN = 0, FG_FATE_COMMITTED = 1, FG_FATE_CANCELLED = 2 };
typedef _Atomic int fg_fate;

/* OPEN -> CANCELLED. True when the job is cancelled now (or was already): its message will not be
 * delivered. False when it was committed: the session must wait for its result. */
bool fg_fate_cancel(fg_fate *f);
/* OPEN -> COMMITTED. True when the caller may send the final dot; false when cancelled. */
bool fg_fate_commit(fg_fate *f);
bool fg_fate_is_cancelled(fg_fate *f);
/* The fate of the job the calling thread is running (NULL outside a job): fuglu_job.reinject commits
 * through it. Set by fg_lua_worker_handle around the chain. */
void fg_fate_set_current(fg_fate *f);
fg_fate *fg_fate_current(void);
/* The deadline of the job the calling thread is running (0: none, or outside a job): every network
 * call of a plugin ends by then (lua_socket.c). Set by fg_lua_worker_handle around the chain. */
void fg_job_deadline_set_current(double deadline);
double fg_job_deadline_current(void);

typedef struct fg_job {
    char id[33];
    fg_proto proto;             /* the session type that received it */
    const char *protocol;       /* its name: fg_proto_name(proto) */
    int local_port;
    char *peer_addr;            /* IP of the connecting MTA */
    char *helo;                 /* HELO/EHLO argument, or NULL */
    char *mail_from;            /* envelope sender, "" for <> */
    char *mail_params;          /* raw MAIL parameters, "" if none */
    size_t nrcpt;
    char **rcpts;
    char **rcpt_params;
    smtp_xforward xforward;     /* attributes received with XFORWARD (NULL = absent) */
    int has_xforward;
    fg_msg *msg;
    double t_received;          /* monotonic time when the data was complete */
    double deadline;            /* monotonic time by which plugins' network calls end: shortly before
                                 * scan_timeout answers the client (smtp_session.c); 0 = none */

    /* filled by the worker */
    int reply_code;
    char *reply_text;
    int action;                 /* the final action code, -1 if the chain did not run */

    /* Where the fate lives: &fate_word, or a worker process's word in shared memory while that
     * process holds the job (procpool.c). Only the main thread changes the pointer. */
    fg_fate fate_word;
    fg_fate *fate;

    /* owned by the main thread */
    void *owner;                /* the session waiting for this job, or NULL if it went away */
    struct fg_job *next;
} fg_job;

fg_job *fg_job_new(fg_proto proto);
void fg_job_add_rcpt(fg_job *job, const char *addr, const char *params);
void fg_job_set_reply(fg_job *job, int code, const char *text);
void fg_job_free(fg_job *job);
/* The job's fate, for the session: see fg_fate_cancel. */
bool fg_job_cancel(fg_job *job);
bool fg_job_is_cancelled(fg_job *job);

/* The envelope as one process-backend frame body (frame.h), without the message bytes, which
 * travel as a descriptor. fg_job_decode returns NULL with *err on a malformed frame; the message
 * is attached by the caller. */
void fg_job_encode(const fg_job *job, fg_buf *b);
struct fg_frame_reader;
fg_job *fg_job_decode(struct fg_frame_reader *r, uint64_t *msg_len, char **err);

/* A FIFO of jobs linked by next, bounded by max (0 = unbounded). Not locked: each pool guards its
 * own (threadpool.c under its mutex, procpool.c on the main thread). */
typedef struct fg_job_queue {
    fg_job *head, *tail;
    size_t count;
    size_t max;
} fg_job_queue;

/* 0, or -1 when the queue is full. */
int fg_job_queue_push(fg_job_queue *q, fg_job *job);
fg_job *fg_job_queue_pop(fg_job_queue *q);
/* Empties the queue: its jobs in order, linked by next. */
fg_job *fg_job_queue_take_all(fg_job_queue *q);

#endif
