/* msg: the bytes of one message as received, in memory or spilled to a file in tempdir.
 *
 * A session appends the unstuffed DATA bytes while they arrive; above the spill threshold the bytes
 * move to an unlinked-on-free temp file. fg_msg_finish() makes the bytes one contiguous read-only view
 * (the memory buffer, or an mmap of the file) that workers, Lua and re-injection read without copying.
 * Reference counted (atomically): the session, the job and Lua userdata may each hold a reference.
 */
#ifndef FUGLU_MSG_H
#define FUGLU_MSG_H

#include <stddef.h>
#include <stdbool.h>

typedef struct fg_msg fg_msg;

/* tempdir NULL means /tmp; spill_threshold 0 means never spill. */
fg_msg *fg_msg_new(const char *tempdir, size_t spill_threshold);
/* Spill files are tempdir/fuglu-spill.XXXXXX, flock()ed while their message lives. */
#define FG_MSG_SPILL_PREFIX "fuglu-spill."
/* Removes the spill files in tempdir that nobody holds (left by an engine that was killed); the
 * number removed, or -1 with *err. Files another running engine holds are kept. */
int fg_msg_remove_stale(const char *tempdir, char **err);
/* A finished message holding a copy of data (for tools and tests). */
fg_msg *fg_msg_from_bytes(const void *data, size_t len);
/* A finished message read from a file; NULL with *err set (caller frees) on failure. */
fg_msg *fg_msg_from_file(const char *path, char **err);
/* A finished message over a file descriptor (mapped read-only; the fd is owned by the message). Used
 * by process workers that receive the message as a descriptor. NULL with *err on failure. */
fg_msg *fg_msg_from_fd(int fd, size_t len, char **err);
/* A read-only descriptor holding the finished message's bytes (a new memfd for in-memory messages,
 * a fresh descriptor of the spill file otherwise); -1 with *err on failure. The caller closes it. */
int fg_msg_export_fd(const fg_msg *m, char **err);
/* Returns 0, or -1 with *err (caller frees) on an I/O failure (disk full...). */
int fg_msg_append(fg_msg *m, const void *data, size_t len, char **err);
int fg_msg_finish(fg_msg *m, char **err);
const char *fg_msg_data(const fg_msg *m);   /* valid after finish; NUL-terminated in memory mode */
size_t fg_msg_len(const fg_msg *m);
bool fg_msg_spilled(const fg_msg *m);
const char *fg_msg_path(const fg_msg *m);   /* spill file path or NULL */
fg_msg *fg_msg_ref(fg_msg *m);
void fg_msg_unref(fg_msg *m);

/* Length of the header block: up to (not including) the empty line that ends it (the first
 * "\r\n\r\n" or "\n\n" → offset of its second line break); 0 if the message starts with an empty
 * line, len if there is none. */
size_t fg_msg_header_len(const char *data, size_t len);

#endif
