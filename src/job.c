/* job: construction and destruction of scan jobs. See job.h. */
#include "job.h"
#include "util.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

fg_job *fg_job_new(void)
{
    fg_job *job = xcalloc(1, sizeof *job);
    fg_random_id(job->id);
    job->protocol = "smtp";
    job->action = -1;
    atomic_init(&job->fate_word, FG_FATE_OPEN);
    job->fate = &job->fate_word;
    return job;
}

void fg_job_add_rcpt(fg_job *job, const char *addr, const char *params)
{
    job->rcpts = xrealloc(job->rcpts, (job->nrcpt + 1) * sizeof *job->rcpts);
    job->rcpt_params = xrealloc(job->rcpt_params, (job->nrcpt + 1) * sizeof *job->rcpt_params);
    job->rcpts[job->nrcpt] = xstrdup(addr);
    job->rcpt_params[job->nrcpt] = xstrdup(params ? params : "");
    job->nrcpt++;
}

void fg_job_set_reply(fg_job *job, int code, const char *text)
{
    free(job->reply_text);
    job->reply_code = code;
    job->reply_text = xstrdup(text);
}

void fg_job_free(fg_job *job)
{
    if (!job)
        return;
    free(job->peer_addr);
    free(job->helo);
    free(job->mail_from);
    free(job->mail_params);
    for (size_t i = 0; i < job->nrcpt; i++) {
        free(job->rcpts[i]);
        free(job->rcpt_params[i]);
    }
    free(job->rcpts);
    free(job->rcpt_params);
    smtp_xforward_clear(&job->xforward);
    fg_msg_unref(job->msg);
    free(job->reply_text);
    free(job);
}

/* ---- fate ---- */

bool fg_fate_cancel(fg_fate *f)
{
    int expected = FG_FATE_OPEN;
    if (atomic_compare_exchange_strong(f, &expected, FG_FATE_CANCELLED))
        return true;
    return expected == FG_FATE_CANCELLED;
}

bool fg_fate_commit(fg_fate *f)
{
    int expected = FG_FATE_OPEN;
    if (atomic_compare_exchange_strong(f, &expected, FG_FATE_COMMITTED))
        return true;
    return expected == FG_FATE_COMMITTED;
}

bool fg_fate_is_cancelled(fg_fate *f)
{
    return atomic_load(f) == FG_FATE_CANCELLED;
}

static _Thread_local fg_fate *current_fate;

void fg_fate_set_current(fg_fate *f)
{
    current_fate = f;
}

fg_fate *fg_fate_current(void)
{
    return current_fate;
}

bool fg_job_cancel(fg_job *job)
{
    return fg_fate_cancel(job->fate);
}

bool fg_job_is_cancelled(fg_job *job)
{
    return fg_fate_is_cancelled(job->fate);
}
