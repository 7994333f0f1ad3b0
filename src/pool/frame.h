/* frame: the process backend's wire format, one SOCK_SEQPACKET datagram per frame.
 *
 * A frame is a type byte followed by fields: integers are little-endian u32, strings a u32 length
 * and the bytes (UINT32_MAX for an absent string). A frame may carry one descriptor (SCM_RIGHTS).
 * The job's own fields are encoded by job.c (fg_job_encode/fg_job_decode) with these primitives;
 * the frame types are listed in procpool.c.
 */
#ifndef FUGLU_FRAME_H
#define FUGLU_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "lib/util.h"

#define FG_FRAME_MAX (4 * 1024 * 1024)

void fg_frame_put_u32(fg_buf *b, uint32_t v);
void fg_frame_put_str(fg_buf *b, const char *s);   /* NULL is encoded as absent */

/* Reads fields off a received frame; a short or malformed frame sets bad and yields 0 / NULL. */
typedef struct fg_frame_reader {
    const unsigned char *p;
    size_t left;
    int bad;
} fg_frame_reader;

uint32_t fg_frame_get_u32(fg_frame_reader *r);
/* malloc'ed string, NULL for an absent one (and on a malformed frame, with bad set). */
char *fg_frame_get_str(fg_frame_reader *r);

/* 0, or -1 with errno. pass_fd < 0: no descriptor. */
int fg_frame_send(int fd, const fg_buf *b, int pass_fd);
/* Receives one frame into buf (FG_FRAME_MAX bytes). Its length, 0 on EOF, -1 on error or EAGAIN
 * (EMSGSIZE for a truncated frame). *got_fd receives a passed descriptor (close-on-exec) or -1. */
ssize_t fg_frame_recv(int fd, unsigned char *buf, int *got_fd);

#endif
