/* log_internal: the seam between log.c (the API, configuration snapshots, routes, emitting) and
 * log_writer.c (the record queue, the writer thread, fork and exit). No other file includes it.
 *
 * Locks: log_install_lock serializes installing a snapshot and starting or stopping the writer;
 * log_emit_lock is held while records are rendered and written, by the writer or by a caller that
 * writes synchronously. A thread that takes both takes log_install_lock first.
 */
#ifndef FUGLU_LOG_INTERNAL_H
#define FUGLU_LOG_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include "log/log_format.h"
#include "lib/util.h"

typedef struct log_snapshot log_snapshot;
typedef struct log_stripe log_stripe;

/* ---- log.c ---- */

extern _Atomic(log_snapshot *) log_current;
extern pthread_mutex_t log_install_lock;
extern pthread_mutex_t log_emit_lock;

/* A reader holds a stripe while it uses log_current; synchronize waits until every stripe was seen
 * idle once (false after timeout_ms): then no reader holds what it saw before. */
log_stripe *log_reader_enter(void);
void log_reader_exit(log_stripe *s);
bool log_reader_synchronize(int timeout_ms);

/* With log_emit_lock held: renders r for every handler its route meets (s NULL or without a
 * logging.conf: the built-in stderr format); flush writes what the records since the last flush
 * collected, one write() per handler. */
void log_emit(log_snapshot *s, const fg_log_record *r, fg_buf *scratch);
void log_flush(log_snapshot *s);
/* %(process)d, cached (reset in a forked child). */
pid_t log_pid(void);

/* ---- log_writer.c ---- */

/* Copies the record onto the queue and wakes the writer if it sleeps: true (a full queue drops and
 * counts it). false when no writer runs: the caller emits the record itself. Call inside a reader
 * stripe, so that stopping the writer can wait for the producers that saw it running. */
bool log_writer_submit(const fg_log_record *rec, size_t message_len);
bool log_writer_is_running(void);
/* With log_install_lock held. start: nothing if it runs already (on failure fg_log stays
 * synchronous). drain: waits (at most 2 s) until what was queued so far is written.
 * stop_and_join: writes what is queued, then stops the thread. */
void log_writer_start(void);
void log_writer_drain(void);
void log_writer_stop_and_join(void);
/* Emits "N log records dropped" (logger fuglu.log) if records were dropped since the last report;
 * with log_emit_lock held. */
void log_report_drops(log_snapshot *s, fg_buf *scratch);

#endif
