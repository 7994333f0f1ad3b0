/* job: construction and destruction of scan jobs. See job.h. */
#include "job.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

fg_job *fg_job_new(void)
{
    fg_job *job = xcalloc(1, sizeof *job);
    fg_random_id(job->id);
    job->protocol = "smtp";
    job->action = -1;
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
