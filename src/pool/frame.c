/* frame: encoding and transport of the process backend's frames. See frame.h. */
#include "pool/frame.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void fg_frame_put_u32(fg_buf *b, uint32_t v)
{
    unsigned char c[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    fg_buf_append(b, c, 4);
}

void fg_frame_put_str(fg_buf *b, const char *s)
{
    if (!s) {
        fg_frame_put_u32(b, UINT32_MAX);
        return;
    }
    size_t n = strlen(s);
    fg_frame_put_u32(b, (uint32_t)n);
    fg_buf_append(b, s, n);
}

uint32_t fg_frame_get_u32(fg_frame_reader *r)
{
    if (r->left < 4) {
        r->bad = 1;
        return 0;
    }
    uint32_t v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 | (uint32_t)r->p[3] << 24;
    r->p += 4;
    r->left -= 4;
    return v;
}

char *fg_frame_get_str(fg_frame_reader *r)
{
    uint32_t n = fg_frame_get_u32(r);
    if (r->bad || n == UINT32_MAX)
        return NULL;
    if (n > r->left) {
        r->bad = 1;
        return NULL;
    }
    char *s = xstrndup((const char *)r->p, n);
    r->p += n;
    r->left -= n;
    return s;
}

int fg_frame_send(int fd, const fg_buf *b, int pass_fd)
{
    struct iovec iov = {.iov_base = b->data, .iov_len = b->len};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    char control[CMSG_SPACE(sizeof(int))];
    if (pass_fd >= 0) {
        memset(control, 0, sizeof control);
        mh.msg_control = control;
        mh.msg_controllen = sizeof control;
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
    }
    for (;;) {
        ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
        if (n >= 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

ssize_t fg_frame_recv(int fd, unsigned char *buf, int *got_fd)
{
    struct iovec iov = {.iov_base = buf, .iov_len = FG_FRAME_MAX};
    char control[CMSG_SPACE(sizeof(int))];
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
    *got_fd = -1;
    ssize_t n;
    do
        n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
            if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
                memcpy(got_fd, CMSG_DATA(cm), sizeof(int));
        if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
            if (*got_fd >= 0)
                close(*got_fd);
            *got_fd = -1;
            errno = EMSGSIZE;
            return -1;
        }
    }
    return n;
}
