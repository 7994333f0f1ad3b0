/* job: construction and destruction of scan jobs. See job.h. */
#include "pool/job.h"
#include "pool/frame.h"
#include "lib/util.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

fg_job *fg_job_new(fg_proto proto)
{
    fg_job *job = xcalloc(1, sizeof *job);
    fg_random_id(job->id);
    job->proto = proto;
    job->protocol = fg_proto_name(proto);
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

static _Thread_local double current_deadline;

void fg_job_deadline_set_current(double deadline)
{
    current_deadline = deadline;
}

double fg_job_deadline_current(void)
{
    return current_deadline;
}

bool fg_job_cancel(fg_job *job)
{
    return fg_fate_cancel(job->fate);
}

bool fg_job_is_cancelled(fg_job *job)
{
    return fg_fate_is_cancelled(job->fate);
}

/* ---- the process backend's job frame ---- */

void fg_job_encode(const fg_job *job, fg_buf *b)
{
    fg_frame_put_str(b, job->id);
    fg_frame_put_u32(b, (uint32_t)job->proto);
    fg_frame_put_u32(b, (uint32_t)job->local_port);
    fg_frame_put_str(b, job->peer_addr);
    fg_frame_put_str(b, job->helo);
    fg_frame_put_str(b, job->mail_from);
    fg_frame_put_str(b, job->mail_params);
    fg_frame_put_u32(b, (uint32_t)job->nrcpt);
    for (size_t i = 0; i < job->nrcpt; i++) {
        fg_frame_put_str(b, job->rcpts[i]);
        fg_frame_put_str(b, job->rcpt_params[i]);
    }
    fg_frame_put_u32(b, (uint32_t)job->has_xforward);
    const smtp_xforward *xf = &job->xforward;
    const char *attrs[] = {xf->name, xf->addr, xf->port, xf->helo, xf->proto, xf->source, xf->ident};
    for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++)
        fg_frame_put_str(b, attrs[i]);
    uint64_t len = job->msg ? fg_msg_len(job->msg) : 0;
    fg_frame_put_u32(b, (uint32_t)(len & 0xffffffffu));
    fg_frame_put_u32(b, (uint32_t)(len >> 32));
    /* What is left of the deadline in ms (0 = none, 1 = passed): the worker counts from receipt. */
    uint32_t left = 0;
    if (job->deadline > 0) {
        double ms = (job->deadline - fg_monotonic()) * 1000.0;
        left = ms < 1 ? 1 : ms > 4e9 ? 4000000000u : (uint32_t)ms;
    }
    fg_frame_put_u32(b, left);
}

fg_job *fg_job_decode(fg_frame_reader *r, uint64_t *msg_len, char **err)
{
    char *id = fg_frame_get_str(r);
    uint32_t proto = fg_frame_get_u32(r);
    if (proto > FG_PROTO_NETCAT)
        r->bad = 1;
    fg_job *job = fg_job_new((fg_proto)proto);
    if (id && strlen(id) == 32)
        memcpy(job->id, id, 33);
    else
        r->bad = 1;
    free(id);
    job->local_port = (int)fg_frame_get_u32(r);
    job->peer_addr = fg_frame_get_str(r);
    job->helo = fg_frame_get_str(r);
    job->mail_from = fg_frame_get_str(r);
    job->mail_params = fg_frame_get_str(r);
    uint32_t n = fg_frame_get_u32(r);
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        char *rcpt = fg_frame_get_str(r);
        char *params = fg_frame_get_str(r);
        if (rcpt)
            fg_job_add_rcpt(job, rcpt, params);
        else
            r->bad = 1;
        free(rcpt);
        free(params);
    }
    job->has_xforward = (int)fg_frame_get_u32(r);
    char **attrs[] = {&job->xforward.name, &job->xforward.addr, &job->xforward.port, &job->xforward.helo,
                      &job->xforward.proto, &job->xforward.source, &job->xforward.ident};
    for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++)
        *attrs[i] = fg_frame_get_str(r);
    uint64_t lo = fg_frame_get_u32(r), hi = fg_frame_get_u32(r);
    uint32_t left = fg_frame_get_u32(r);
    job->deadline = left ? fg_monotonic() + left / 1000.0 : 0;
    if (r->bad || !job->peer_addr || !job->mail_from) {
        *err = xstrdup("malformed job frame");
        fg_job_free(job);
        return NULL;
    }
    *msg_len = lo | hi << 32;
    return job;
}

/* ---- queue ---- */

int fg_job_queue_push(fg_job_queue *q, fg_job *job)
{
    if (q->max && q->count >= q->max)
        return -1;
    job->next = NULL;
    if (q->tail)
        q->tail->next = job;
    else
        q->head = job;
    q->tail = job;
    q->count++;
    return 0;
}

fg_job *fg_job_queue_pop(fg_job_queue *q)
{
    fg_job *job = q->head;
    if (job) {
        q->head = job->next;
        if (!q->head)
            q->tail = NULL;
        q->count--;
        job->next = NULL;
    }
    return job;
}

fg_job *fg_job_queue_take_all(fg_job_queue *q)
{
    fg_job *list = q->head;
    q->head = q->tail = NULL;
    q->count = 0;
    return list;
}
