/* job: one received message on its way from a protocol session to a worker and back.
 *
 * The session (main thread) fills the envelope and the message, the pool hands the job to a worker
 * thread, the worker fills the reply, and the pool returns the job to the main thread. Only one
 * thread touches a job at a time; the message is reference counted because Lua may keep it longer.
 */
#ifndef FUGLU_JOB_H
#define FUGLU_JOB_H

#include <stddef.h>
#include "msg.h"
#include "smtp_proto.h"

typedef struct fg_job {
    char id[33];
    const char *protocol;       /* "smtp", ... (static string) */
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

    /* filled by the worker */
    int reply_code;
    char *reply_text;
    int action;                 /* the final action code, -1 if the chain did not run */

    /* owned by the main thread */
    void *owner;                /* the session waiting for this job, or NULL if it went away */
    struct fg_job *next;
} fg_job;

fg_job *fg_job_new(void);
void fg_job_add_rcpt(fg_job *job, const char *addr, const char *params);
void fg_job_set_reply(fg_job *job, int code, const char *text);
void fg_job_free(fg_job *job);

#endif
