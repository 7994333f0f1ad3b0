/* loadgen: a paced SMTP client for the benchmark suite (tools/bench/run). It sends COUNT messages
 * over SESSIONS persistent connections at a fixed total RATE (messages per second; 0 = as fast as
 * the server answers) and times every transaction, MAIL FROM up to the 250 after the final ".".
 * smtp-source cannot pace below one message per second and session, so this is the half-load
 * latency probe of `make bench`; throughput rows still use smtp-source.
 *
 *   loadgen -p PORT [-H 127.0.0.1] [-s SESSIONS] [-n COUNT] [-r RATE] [-T SECONDS] -F FILE [-F FILE...]
 *
 * Messages (at most 16 files, used round robin) are read once, converted to CRLF line ends and
 * dot-stuffed. Prints one JSON object on stdout:
 *   {"sent":N,"failed":N,"wall_s":x,"rate":x,"p50_us":x,"p90_us":x,"p99_us":x,"max_us":x,"mean_us":x}
 * Bounded: every socket has 30 s send/receive timeouts and the whole run stops after -T seconds
 * (default 120). Exit status 0 if at least one message was accepted, 1 otherwise, 2 on usage.
 *
 * Built by tools/bench/run with `cc -std=c11 -D_GNU_SOURCE -O2 -Isrc tools/bench/loadgen.c src/lib/util.c`.
 */
#include "lib/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LOADGEN_MAX_FILES 16
#define LOADGEN_MAX_SESSIONS 256

typedef struct loadgen_message {
    char *data;         /* CRLF, dot-stuffed, ending in "\r\n.\r\n" */
    size_t len;
} loadgen_message;

typedef struct loadgen_run {
    const char *host;
    int port;
    long count;
    double rate;
    double deadline;    /* CLOCK_MONOTONIC seconds */
    double start;
    loadgen_message files[LOADGEN_MAX_FILES];
    int nfiles;
    atomic_long next;   /* index of the next message to send */
    atomic_long sent;
    atomic_long failed;
    double *latency_us; /* one slot per message index; < 0 means not sent */
} loadgen_run;

static double loadgen_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void loadgen_sleep_until(double when)
{
    struct timespec ts;
    ts.tv_sec = (time_t)when;
    ts.tv_nsec = (long)((when - (double)ts.tv_sec) * 1e9);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/* Reads a file and turns it into SMTP DATA content: CRLF line ends, leading dots doubled, the
 * terminating "." line appended. */
static int loadgen_load(const char *path, loadgen_message *out)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "loadgen: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    fg_buf raw;
    fg_buf_init(&raw);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        fg_buf_append(&raw, chunk, n);
    fclose(f);

    fg_buf out_buf;
    fg_buf_init(&out_buf);
    fg_buf_reserve(&out_buf, raw.len + raw.len / 32 + 8);
    size_t line_start = 0;
    while (line_start < raw.len) {
        const char *nl = memchr(raw.data + line_start, '\n', raw.len - line_start);
        size_t line_end = nl ? (size_t)(nl - raw.data) : raw.len;
        size_t content_end = line_end;
        if (content_end > line_start && raw.data[content_end - 1] == '\r')
            content_end--;
        if (raw.data[line_start] == '.')
            fg_buf_append(&out_buf, ".", 1);
        fg_buf_append(&out_buf, raw.data + line_start, content_end - line_start);
        fg_buf_append(&out_buf, "\r\n", 2);
        line_start = line_end + 1;
    }
    fg_buf_append(&out_buf, ".\r\n", 3);
    fg_buf_free(&raw);
    out->data = fg_buf_steal(&out_buf, &out->len);
    return 0;
}

static int loadgen_send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t w = send(fd, data, len, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        data += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Reads one complete (possibly multi-line) SMTP reply; returns its code or -1. */
static int loadgen_reply(int fd)
{
    char buf[4096];
    size_t have = 0;
    for (int reads = 0; reads < 64; reads++) {
        ssize_t r = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            return -1;
        }
        have += (size_t)r;
        buf[have] = '\0';
        /* the last complete line decides: "NNN " ends the reply */
        char *end = buf + have;
        if (have < 2 || end[-1] != '\n')
            goto more;
        char *line = end - 1;
        while (line > buf && line[-1] != '\n')
            line--;
        if (end - line >= 4 && line[3] == ' ')
            return atoi(line);
        if (end - line >= 4 && line[3] == '\r')
            return atoi(line);
    more:
        if (have >= sizeof(buf) - 1) {
            /* keep only the tail: a long multi-line reply */
            memmove(buf, buf + have - 512, 512);
            have = 512;
        }
    }
    return -1;
}

static int loadgen_command(int fd, const char *cmd, int expect)
{
    if (loadgen_send_all(fd, cmd, strlen(cmd)) < 0)
        return -1;
    int code = loadgen_reply(fd);
    return code / 100 == expect / 100 ? 0 : -1;
}

static int loadgen_connect(const loadgen_run *run)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = 30};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)run->port)};
    if (inet_pton(AF_INET, run->host, &sa.sin_addr) != 1 ||
        connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        loadgen_reply(fd) != 220 ||
        loadgen_command(fd, "EHLO loadgen.example.org\r\n", 250) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void *loadgen_session(void *arg)
{
    loadgen_run *run = arg;
    int fd = -1;
    for (;;) {
        long k = atomic_fetch_add(&run->next, 1);
        if (k >= run->count || loadgen_clock() > run->deadline)
            break;
        if (run->rate > 0)
            loadgen_sleep_until(run->start + (double)k / run->rate);
        if (fd < 0 && (fd = loadgen_connect(run)) < 0) {
            atomic_fetch_add(&run->failed, 1);
            continue;
        }
        const loadgen_message *m = &run->files[k % run->nfiles];
        double t0 = loadgen_clock();
        int ok = loadgen_command(fd, "MAIL FROM:<loadgen@example.org>\r\n", 250) == 0 &&
                 loadgen_command(fd, "RCPT TO:<user@example.net>\r\n", 250) == 0 &&
                 loadgen_command(fd, "DATA\r\n", 354) == 0 &&
                 loadgen_send_all(fd, m->data, m->len) == 0 &&
                 loadgen_reply(fd) == 250;
        double t1 = loadgen_clock();
        if (ok) {
            run->latency_us[k] = (t1 - t0) * 1e6;
            atomic_fetch_add(&run->sent, 1);
        } else {
            atomic_fetch_add(&run->failed, 1);
            close(fd);
            fd = -1;
        }
    }
    if (fd >= 0) {
        loadgen_command(fd, "QUIT\r\n", 221);
        close(fd);
    }
    return NULL;
}

static int loadgen_compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double loadgen_percentile(const double *sorted, long n, double p)
{
    if (n == 0)
        return 0;
    long i = (long)(p * (double)(n - 1) + 0.5);
    return sorted[i];
}

static void loadgen_usage(void)
{
    fprintf(stderr, "usage: loadgen -p PORT [-H 127.0.0.1] [-s SESSIONS] [-n COUNT] [-r RATE] "
                    "[-T SECONDS] -F FILE [-F FILE...]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    loadgen_run run = {.host = "127.0.0.1", .count = 1000};
    int sessions = 4;
    double limit_s = 120;
    int opt;
    while ((opt = getopt(argc, argv, "H:p:s:n:r:T:F:")) != -1) {
        switch (opt) {
        case 'H': run.host = optarg; break;
        case 'p': run.port = atoi(optarg); break;
        case 's': sessions = atoi(optarg); break;
        case 'n': run.count = atol(optarg); break;
        case 'r': run.rate = atof(optarg); break;
        case 'T': limit_s = atof(optarg); break;
        case 'F':
            if (run.nfiles >= LOADGEN_MAX_FILES || loadgen_load(optarg, &run.files[run.nfiles]) < 0)
                loadgen_usage();
            run.nfiles++;
            break;
        default: loadgen_usage();
        }
    }
    if (run.port <= 0 || run.nfiles == 0 || sessions < 1 || sessions > LOADGEN_MAX_SESSIONS ||
        run.count < 1 || limit_s <= 0)
        loadgen_usage();

    run.latency_us = xmalloc((size_t)run.count * sizeof(double));
    for (long i = 0; i < run.count; i++)
        run.latency_us[i] = -1;
    run.start = loadgen_clock();
    run.deadline = run.start + limit_s;
    pthread_t threads[LOADGEN_MAX_SESSIONS];
    for (int i = 0; i < sessions; i++)
        if (pthread_create(&threads[i], NULL, loadgen_session, &run) != 0)
            fg_panic("loadgen: cannot start a thread");
    for (int i = 0; i < sessions; i++)
        pthread_join(threads[i], NULL);
    double wall = loadgen_clock() - run.start;

    long n = 0;
    double sum = 0;
    for (long i = 0; i < run.count; i++)
        if (run.latency_us[i] >= 0) {
            run.latency_us[n++] = run.latency_us[i];
            sum += run.latency_us[i];
        }
    qsort(run.latency_us, (size_t)n, sizeof(double), loadgen_compare_double);
    printf("{\"sent\":%ld,\"failed\":%ld,\"wall_s\":%.4f,\"rate\":%.1f,\"p50_us\":%.1f,"
           "\"p90_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f,\"mean_us\":%.1f}\n",
           (long)atomic_load(&run.sent), (long)atomic_load(&run.failed), wall,
           wall > 0 ? (double)n / wall : 0.0, loadgen_percentile(run.latency_us, n, 0.50),
           loadgen_percentile(run.latency_us, n, 0.90), loadgen_percentile(run.latency_us, n, 0.99),
           n ? run.latency_us[n - 1] : 0.0, n ? sum / (double)n : 0.0);
    for (int i = 0; i < run.nfiles; i++)
        free(run.files[i].data);
    free(run.latency_us);
    return n > 0 ? 0 : 1;
}
