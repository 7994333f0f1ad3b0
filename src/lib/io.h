/* io: the two small blocking I/O helpers every part needs, written once.
 *
 * fg_write_all writes a whole buffer to a descriptor (files, pipes, stderr, blocking sockets),
 * retrying on EINTR and short writes. fg_read_file reads a whole regular file into memory with a
 * size cap. Both follow the project's convention for the environment's failures: -1 / NULL with
 * errno set, and for fg_read_file an optional "PATH: what went wrong" message for the caller to
 * show (and free). Non-blocking sockets with deadlines (reinject.c) and the event loop's
 * bufferevents do their own writing.
 */
#ifndef FUGLU_IO_H
#define FUGLU_IO_H

#include <stddef.h>

/* Writes len bytes of buf to fd. 0 when all were written; -1 with errno on the first error (a
 * write that makes no progress counts as EIO). */
int fg_write_all(int fd, const void *buf, size_t len);

/* The whole content of path, NUL-terminated (not counted in *len), for the caller to free; max is
 * the largest size accepted ((size_t)-1: no limit). NULL with errno set (EFBIG when the file is
 * larger than max) and, when err is not NULL, *err = "PATH: cannot open: REASON",
 * "PATH: cannot read: REASON" or "PATH: larger than MAX bytes". */
char *fg_read_file(const char *path, size_t max, size_t *len, char **err);

#endif
