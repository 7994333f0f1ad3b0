/* fuglu_control: asks the running daemon's control server (Fuglu's tool of the same name).
 *
 *   fuglu_control [-p SOCKET|PORT] COMMAND [ARGS...]
 *
 * -p is a unix socket path (default /tmp/fuglu_control.sock) or a port number on 127.0.0.1. The
 * words are sent joined by spaces; the whole answer is read until the daemon closes the connection
 * (Fuglu read only the first 32 KB) and printed with a newline. Without a command it lists the
 * commands and exits 1; when it cannot connect it says "Cannot connect to fuglu control daemon
 * (...) - is fuglu running?" and exits 1.
 */
#include "monitor/control.h"
#include "lib/io.h"
#include "console/netconsole.h" /* debugging: netconsole --connect */

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define FUGLU_CONTROL_DEFAULT "/tmp/fuglu_control.sock"
#define FUGLU_CONTROL_TIMEOUT_MS 30000

static int control_usage(void)
{
    printf("usage: fuglu_control [-p SOCKET|PORT] <command> [args]\n\n"
           "  -p SOCKET|PORT  the daemon's [main] controlport (default %s)\n\ncommands:\n",
           FUGLU_CONTROL_DEFAULT);
    for (const fg_control_command *c = fg_control_commands; c->name; c++)
        printf("  %-14s %s\n", c->name, c->help);
    return 1;
}

static int control_is_port(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return 0;
    return 1;
}

/* A connected socket, or -1 with errno. */
static int control_connect(const char *where)
{
    int fd;
    if (control_is_port(where)) {
        long port = strtol(where, NULL, 10);
        if (port < 1 || port > 65535) {
            errno = EINVAL;
            return -1;
        }
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0) {
            int saved = errno;
            close(fd);
            errno = saved;
            return -1;
        }
        return fd;
    }
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(where) >= sizeof sun.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(sun.sun_path, where);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int main(int argc, char **argv)
{
    const char *where = FUGLU_CONTROL_DEFAULT;
    int opt;
    while ((opt = getopt(argc, argv, "+p:h")) != -1) {
        switch (opt) {
        case 'p': where = optarg; break;
        default: return control_usage();
        }
    }
    if (optind >= argc)
        return control_usage();

    fg_buf request;
    fg_buf_init(&request);
    int connect_console = 0; /* debugging: netconsole --connect does the token step */
    for (int i = optind; i < argc; i++) {
        if (strcmp(argv[i], "--connect") == 0 && strcmp(argv[optind], "netconsole") == 0) {
            connect_console = 1;
            continue;
        }
        fg_buf_printf(&request, "%s%s", request.len ? " " : "", argv[i]);
    }
    fg_buf_puts(&request, "\n");

    int fd = control_connect(where);
    if (fd < 0) {
        printf("Cannot connect to fuglu control daemon (%s: %s) - is fuglu running?\n", where, strerror(errno));
        fg_buf_free(&request);
        return 1;
    }
    if (fg_write_all(fd, request.data, request.len) != 0) {
        printf("Cannot connect to fuglu control daemon (%s: %s) - is fuglu running?\n", where, strerror(errno));
        close(fd);
        fg_buf_free(&request);
        return 1;
    }
    fg_buf_free(&request);

    fg_buf answer;
    fg_buf_init(&answer);
    char chunk[65536];
    int status = 0;
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int rc = poll(&pfd, 1, FUGLU_CONTROL_TIMEOUT_MS);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0) {
            fprintf(stderr, "fuglu_control: no complete answer from %s within %d s\n", where,
                    FUGLU_CONTROL_TIMEOUT_MS / 1000);
            status = 1;
            break;
        }
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "fuglu_control: reading the answer: %s\n", strerror(errno));
            status = 1;
            break;
        }
        if (n == 0)
            break;
        fg_buf_append(&answer, chunk, (size_t)n);
    }
    close(fd);
    fwrite(answer.data, 1, answer.len, stdout);
    fputs("\n", stdout);
    fflush(stdout);
    if (connect_console && status == 0)
        status = fg_netconsole_client(answer.data);
    /* A refused request (a reload with errors) is a failure for scripts. */
    if (status == 0 && answer.data && (strncmp(answer.data, "ERROR", 5) == 0 || strstr(answer.data, "\nERROR")))
        status = 1;
    fg_buf_free(&answer);
    return status;
}
