/* msg: message bytes in memory or spilled to tempdir, with a contiguous view. See msg.h. */
#include "pool/msg.h"
#include "lib/io.h"
#include "lib/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <dirent.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct fg_msg {
    atomic_int refs;
    fg_buf mem;
    char *tempdir;
    size_t threshold;
    int fd;
    char *path;
    size_t len;
    void *map;
    bool finished;
};

fg_msg *fg_msg_new(const char *tempdir, size_t spill_threshold)
{
    fg_msg *m = xcalloc(1, sizeof *m);
    atomic_init(&m->refs, 1);
    fg_buf_init(&m->mem);
    m->tempdir = xstrdup(tempdir && *tempdir ? tempdir : "/tmp");
    m->threshold = spill_threshold;
    m->fd = -1;
    return m;
}

fg_msg *fg_msg_from_bytes(const void *data, size_t len)
{
    fg_msg *m = fg_msg_new(NULL, 0);
    fg_buf_append(&m->mem, data, len);
    m->len = len;
    m->finished = true;
    return m;
}

fg_msg *fg_msg_from_file(const char *path, char **err)
{
    size_t len = 0;
    char *data = fg_read_file(path, (size_t)-1, &len, err);
    if (!data)
        return NULL;
    fg_msg *m = fg_msg_new(NULL, 0);
    m->mem.data = data;
    m->mem.len = len;
    m->mem.cap = len + 1;
    m->len = len;
    m->finished = true;
    return m;
}

static int spill(fg_msg *m, char **err)
{
    char *tmpl = xasprintf("%s/" FG_MSG_SPILL_PREFIX "XXXXXX", m->tempdir);
    int fd = mkostemp(tmpl, O_CLOEXEC);
    /* locked while in use: fg_msg_remove_stale tells a live spill file from a crashed one's */
    if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        unlink(tmpl);
        fd = -1;
    }
    if (fd < 0) {
        *err = xasprintf("could not create file in %s: %s", m->tempdir, strerror(errno));
        free(tmpl);
        return -1;
    }
    m->fd = fd;
    m->path = tmpl;
    if (fg_write_all(fd, m->mem.data, m->mem.len) != 0) {
        *err = xasprintf("could not write to temp file %s: %s", tmpl, strerror(errno));
        return -1;
    }
    fg_buf_free(&m->mem);
    return 0;
}

int fg_msg_append(fg_msg *m, const void *data, size_t len, char **err)
{
    if (m->finished)
        fg_panic("fg_msg_append on a finished message");
    if (m->fd < 0) {
        fg_buf_append(&m->mem, data, len);
        m->len += len;
        if (m->threshold && m->mem.len > m->threshold)
            return spill(m, err);
        return 0;
    }
    if (fg_write_all(m->fd, data, len) != 0) {
        *err = xasprintf("could not write to temp file %s: %s", m->path, strerror(errno));
        return -1;
    }
    m->len += len;
    return 0;
}

fg_msg *fg_msg_from_fd(int fd, size_t len, char **err)
{
    fg_msg *m = fg_msg_new(NULL, 0);
    m->fd = fd;
    m->path = NULL;
    m->len = len;
    m->finished = true;
    if (len > 0) {
        m->map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
        if (m->map == MAP_FAILED) {
            m->map = NULL;
            *err = xasprintf("could not map the message: %s", strerror(errno));
            fg_msg_unref(m);
            return NULL;
        }
    }
    return m;
}

int fg_msg_export_fd(const fg_msg *m, char **err)
{
    if (m->fd >= 0 && m->path) {
        int fd = open(m->path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            *err = xasprintf("cannot reopen %s: %s", m->path, strerror(errno));
        return fd;
    }
    int fd = memfd_create("fuglu-message", MFD_CLOEXEC);
    if (fd < 0) {
        *err = xasprintf("memfd_create failed: %s", strerror(errno));
        return -1;
    }
    if (fg_write_all(fd, fg_msg_data(m), m->len) != 0) {
        *err = xasprintf("cannot write the message to a memfd: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int fg_msg_finish(fg_msg *m, char **err)
{
    if (m->finished)
        return 0;
    m->finished = true;
    if (m->fd < 0) {
        if (!m->mem.data)
            fg_buf_reserve(&m->mem, 0), m->mem.data[0] = '\0';
        return 0;
    }
    if (m->len == 0)
        return 0;
    m->map = mmap(NULL, m->len, PROT_READ, MAP_SHARED, m->fd, 0);
    if (m->map == MAP_FAILED) {
        m->map = NULL;
        *err = xasprintf("could not map temp file %s: %s", m->path, strerror(errno));
        return -1;
    }
    return 0;
}

const char *fg_msg_data(const fg_msg *m)
{
    if (m->fd >= 0)
        return m->map ? (const char *)m->map : "";
    return m->mem.data ? m->mem.data : "";
}

size_t fg_msg_len(const fg_msg *m)
{
    return m->len;
}

int fg_msg_remove_stale(const char *tempdir, char **err)
{
    DIR *d = opendir(tempdir);
    if (!d) {
        *err = xasprintf("cannot read %s: %s", tempdir, strerror(errno));
        return -1;
    }
    int removed = 0;
    size_t plen = strlen(FG_MSG_SPILL_PREFIX);
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, FG_MSG_SPILL_PREFIX, plen) != 0 || strlen(e->d_name) != plen + 6)
            continue;
        int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0)
            continue;
        struct stat st;
        /* a file another running engine holds is locked: left alone */
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && flock(fd, LOCK_EX | LOCK_NB) == 0 &&
            unlinkat(dirfd(d), e->d_name, 0) == 0)
            removed++;
        close(fd);
    }
    closedir(d);
    return removed;
}

bool fg_msg_spilled(const fg_msg *m)
{
    return m->fd >= 0;
}

const char *fg_msg_path(const fg_msg *m)
{
    return m->path;
}

fg_msg *fg_msg_ref(fg_msg *m)
{
    atomic_fetch_add(&m->refs, 1);
    return m;
}

void fg_msg_unref(fg_msg *m)
{
    if (!m || atomic_fetch_sub(&m->refs, 1) != 1)
        return;
    if (m->map)
        munmap(m->map, m->len);
    if (m->fd >= 0) {
        close(m->fd);
        if (m->path)
            unlink(m->path);
    }
    free(m->path);
    free(m->tempdir);
    fg_buf_free(&m->mem);
    free(m);
}

size_t fg_msg_header_len(const char *data, size_t len)
{
    if (len > 0 && data[0] == '\n')
        return 0;
    if (len > 1 && data[0] == '\r' && data[1] == '\n')
        return 0;
    for (size_t i = 0; i + 1 < len; i++) {
        if (data[i] != '\n')
            continue;
        if (data[i + 1] == '\n')
            return i + 1;
        if (data[i + 1] == '\r' && i + 2 < len && data[i + 2] == '\n')
            return i + 1;
    }
    return len;
}
