/* netconsole: the network Lua console, started by the control command `netconsole [port [bind]]`.
 *
 * Unlike Fuglu's (an unauthenticated remote Python shell that took over the process's stdio):
 *   - it is off unless [main] netconsole=1; the bind address (default 127.0.0.1, port 1337) must be
 *     a loopback address unless [main] netconsole_allow_remote=1; names other than "localhost" are
 *     refused (no DNS lookup);
 *   - the control command answers with a one-time token: the client's first line must be it, or the
 *     connection is closed (three wrong tokens close the listener); the token is good for one
 *     session and for NETCONSOLE_TOKEN_SECONDS; one client at a time; a session idle for
 *     NETCONSOLE_IDLE_SECONDS is closed; every session and every input line is logged
 *     (fuglu.netconsole);
 *   - input is evaluated in the controller's Lua state on the main thread under the console budget
 *     (console.h), so a runaway expression ends with an error and mail keeps flowing.
 * After the token the client reads "Fuglu Lua Shell - MainController available as 'mc'" and a
 * prompt; `exit` or `quit` (or closing the connection) ends the session.
 */
#ifndef FUGLU_NETCONSOLE_H
#define FUGLU_NETCONSOLE_H

#include "monitor/control.h"
#include "monitor/stats.h"
#include "lib/util.h"

#define NETCONSOLE_DEFAULT_PORT 1337
#define NETCONSOLE_TOKEN_SECONDS 300
#define NETCONSOLE_AUTH_SECONDS 15
#define NETCONSOLE_IDLE_SECONDS 600
#define NETCONSOLE_MAX_LINE 65536
#define NETCONSOLE_GREETING "Fuglu Lua Shell - MainController available as 'mc'"

/* The control command (the fg_control_command run signature), on env->console. The answer
 * is "Lua interactive console starting on ADDR port PORT\ntoken TOKEN\n" or "ERR netconsole: ...". */
void fg_netconsole_command(const fg_control_env *env, fg_buf *out, const char *args);
/* Closes the listener and the session, if any. */
void fg_netconsole_stop(void);
/* fuglu_control netconsole --connect: given the command's answer, connects, sends the token and
 * relays stdin and stdout until either side closes. Returns an exit status (0, or 1 with a message). */
int fg_netconsole_client(const char *answer);
/* Whether addr (numeric, or "localhost") is a loopback address. */
int fg_netconsole_is_loopback(const char *addr);

#endif
