/* controller: the running daemon (Fuglu's MainController) and everything that reaches it.
 *
 * It owns the event loop, the counters, the listeners and sessions (server.h), the chain of
 * generations (the one in service and the retired ones finishing their messages), the monitoring
 * servers and the console, and it is passed explicitly to whoever needs it: the control socket's
 * `reload` and `netconsole` commands, the signal handlers. Reload: load the files, compare
 * fingerprints, lint into findings (lint.h), build the new generation beside the old one, move the
 * queued messages, diff the ports, retire the old generation and reap it once it has finished.
 *
 * Start-up is two steps around the privilege drop: fg_controller_new binds the ports (as root, for
 * ports below 1024), fg_controller_start loads the plugins and opens the control socket (as the
 * run user, who then owns it).
 */
#ifndef FUGLU_CONTROLLER_H
#define FUGLU_CONTROLLER_H

#include "lib/config.h"
#include "daemon/lint.h"
#include "lib/util.h"

typedef struct fg_controller fg_controller;

typedef struct fg_controller_opts {
    const fg_config *cfg;       /* the start-up config (listeners, daemon options); must outlive it */
    const char *config_path;
    const char *luadir;
    const char *logging_conf;   /* may not exist */
    const char *exe_path;       /* for process workers */
} fg_controller_opts;

/* Creates the loop and the counters and binds the ports. NULL with *err when none can be opened. */
fg_controller *fg_controller_new(const fg_controller_opts *opts, char **err);
/* The console (--console) first when asked, then the first generation, the control socket, MRTG,
 * metrics and the signals. 0; -1 with *err (the reasons, one per line) when the plugins do not load;
 * -2 with *err for anything else the daemon cannot run without ([shared] dictionaries, the control
 * socket). */
int fg_controller_start(fg_controller *c, int console, char **err);
/* Runs until SIGTERM/SIGINT and the drain that follows. */
void fg_controller_run(fg_controller *c);
/* Brings the running setup in line with the files on disk (SIGHUP, `fuglu_control reload`).
 * Appends "OK: ..." or "ERROR: ..." lines to report. 0 when it matches them (reloaded, or nothing
 * changed), -1 when the new setup was refused and the old one keeps serving. */
int fg_controller_reload(fg_controller *c, fg_buf *report);
/* Frees everything when no message is left in flight; returns whether it did (after a drain deadline
 * workers may still hold messages: then the process exits without freeing). */
int fg_controller_free(fg_controller *c);

#endif
