/* procworker: the child side of the process backend (procpool.h), `fuglu --process-worker FD`.
 *
 * Reads the config snapshot and its fate slot from the parent, loads the plugins, then answers
 * one job frame after another: the scan (with the re-injection), the reply frame, the appenders,
 * and 'I' for ready. Statistics go to the parent as frames (stats.h forwarder).
 */
#ifndef FUGLU_PROCWORKER_H
#define FUGLU_PROCWORKER_H

/* Returns the process exit status. */
int fg_procworker_main(int fd);

#endif
