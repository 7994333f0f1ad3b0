/* io: fg_write_all and fg_read_file. See io.h. */
#include "lib/io.h"
#include "lib/util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int fg_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0) {
            errno = EIO;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

char *fg_read_file(const char *path, size_t max, size_t *len, char **err)
{
    if (err)
        *err = NULL;
    FILE *f = fopen(path, "rbe");
    if (!f) {
        int e = errno;
        if (err)
            *err = xasprintf("%s: cannot open: %s", path, strerror(e));
        errno = e;
        return NULL;
    }
    fg_buf b;
    fg_buf_init(&b);
    char chunk[65536];
    size_t n;
    int e = 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (n > max || b.len > max - n) {
            e = EFBIG;
            break;
        }
        fg_buf_append(&b, chunk, n);
    }
    if (!e && ferror(f))
        e = errno ? errno : EIO;
    fclose(f);
    if (e) {
        fg_buf_free(&b);
        if (err && e == EFBIG)
            *err = xasprintf("%s: larger than %zu bytes", path, max);
        else if (err)
            *err = xasprintf("%s: cannot read: %s", path, strerror(e));
        errno = e;
        return NULL;
    }
    return fg_buf_steal(&b, len);
}
