/* mrtg: Fuglu's MRTG status files, rewritten on the main event loop.
 *
 * When [main] mrtgdir names an existing directory, the files inout, hamspam, scantime, threads and
 * virus are rewritten every interval seconds (30, the first write after 30 s) in MRTG's external
 * command format: four lines, value 1, value 2 ("0" when zero), the uptime in words, "FuGLU".
 * Each file is written under a temporary name and renamed, so MRTG never reads half a file.
 */
#ifndef FUGLU_MRTG_H
#define FUGLU_MRTG_H

#include <event2/event.h>
#include "monitor/stats.h"

typedef struct fg_mrtg fg_mrtg;

/* NULL (and a log line saying why) when dir is empty or not a directory. */
fg_mrtg *fg_mrtg_new(struct event_base *base, fg_stats *s, const char *dir, double interval);
/* Writes the five files now. Returns 0, or -1 if one could not be written (logged). */
int fg_mrtg_write(fg_mrtg *m);
void fg_mrtg_free(fg_mrtg *m);

/* Writes one file atomically (exposed for the unit tests). */
int fg_mrtg_write_file(const char *dir, const char *name, const char *value1, const char *value2,
                       const char *uptime);

#endif
