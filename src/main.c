/* main: the fuglu daemon. Command line, config, lint, daemon setup, the event loop and shutdown.
 *
 *   fuglu [-c FILE] [-f|--foreground] [--pidfile FILE] [--lint] [--version] [--reload] [--console]
 *
 * The running daemon is a chain of generations (generation.h): SIGHUP or `fuglu_control reload`
 * builds a new one from the files on disk and swaps it in only when it is sound.
 *
 * Exit codes as Fuglu: 0 ok, 1 usage/config errors, 66 when plugins fail to load at start, and for
 * --lint the number of errors found.
 */
#include "config.h"
#include "console.h" /* debugging: --console, netconsole */
#include "control.h"
#include "generation.h"
#include "procworker.h"
#include "log.h"
#include "lua/lua_worker.h"
#include "metrics.h"
#include "mrtg.h"
#include "pool.h"
#include "portspec.h"
#include "server.h"
#include "stats.h"
#include "util.h"
#include "version.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXIT_FATAL 66
#define SHUTDOWN_GRACE_SECONDS 30

typedef struct retired_generation {
    fg_generation *gen;
    struct retired_generation *next;
} retired_generation;

typedef struct daemon_state {
    struct event_base *base;
    fg_config *cfg;              /* the start-up config (listeners, daemon options) */
    fg_server *server;
    fg_generation *gen;          /* serves new messages */
    retired_generation *retired; /* finishing what they started */
    struct event *reap_timer;
    fg_generation_env genv;
    int next_generation;
    struct fg_console *console;
    const char *config_path;
    struct event *shutdown_timer;
    double shutdown_deadline;
    const char *pidfile;
    int pidfile_written;
    /* monitoring (stats.h, control.h, mrtg.h, metrics.h) */
    fg_stats *stats;
    fg_control *control;
    fg_mrtg *mrtg;
    fg_metrics *metrics;
} daemon_state;

static daemon_state *the_daemon; /* for the control socket's reload command */

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: fuglu [options]\n"
            "  -c, --config FILE   configuration file (default %s/fuglu.conf); its directory's\n"
            "                      conf.d/*.conf and logging.conf are used too\n"
            "  -f, --foreground    do not daemonize even if [main] daemonize=1\n"
            "      --pidfile FILE  write the process id to FILE (removed on exit)\n"
            "      --console       foreground, with an interactive Lua console (mc) on the terminal\n"
            "      --lint          check the configuration and every plugin, then exit with the\n"
            "                      number of errors\n"
            "      --reload        send SIGHUP to the daemon whose pid is in --pidfile\n"
            "                      (default /var/run/fuglu.pid) and exit\n"
            "      --version       print the version and exit\n",
            FUGLU_SYSCONFDIR);
}

static long cfg_int(const fg_config *cfg, const char *sec, const char *opt, long def)
{
    long v = def;
    char *err = NULL;
    if (fg_config_get_int(cfg, sec, opt, def, &v, &err) != 0) {
        fg_log("fuglu.MainController", FG_ERROR, "%s (using %ld)", err, def);
        free(err);
        v = def;
    }
    return v;
}

static bool cfg_bool(const fg_config *cfg, const char *sec, const char *opt, bool def)
{
    bool v = def;
    char *err = NULL;
    if (fg_config_get_bool(cfg, sec, opt, def, &v, &err) != 0) {
        fg_log("fuglu.MainController", FG_ERROR, "%s (using %s)", err, def ? "yes" : "no");
        free(err);
        v = def;
    }
    return v;
}

static const char *cfg_str(const fg_config *cfg, const char *sec, const char *opt)
{
    const char *v = fg_config_get(cfg, sec, opt);
    return v ? v : "";
}

/* ---- lint ---- */

static char *logging_conf;   /* logging.conf next to fuglu.conf */

static void lint_warn(void *arg, const char *msg)
{
    (void)arg;
    printf("WARNING: %s\n", msg);
}

static int run_lint(fg_config *cfg, const fg_lua_env *env)
{
    int errors = 0;
    printf("Fuglu %s\n---------- LINT MODE ----------\n", FUGLU_VERSION);
    printf("Linting main configuration\n");
    fg_config_lint_unknown(cfg, lint_warn, NULL);
    fg_portspec *specs = NULL;
    size_t nspecs = 0;
    char *err = NULL;
    if (fg_portspec_parse_list(cfg_str(cfg, "main", "incomingport"), cfg_str(cfg, "main", "bindaddress"), &specs,
                               &nspecs, &err) != 0) {
        printf("ERROR: %s\n", err);
        free(err);
        errors++;
    } else {
        for (size_t i = 0; i < nspecs; i++)
            if (specs[i].proto != FG_PROTO_SMTP)
                printf("WARNING: incomingport %s:%d: protocol %s is not supported yet\n", specs[i].addr,
                       specs[i].port, fg_proto_name(specs[i].proto));
        free(specs);
    }
    static const struct { const char *sec, *opt; } ints[] = {
        {"main", "outgoingport"}, {"performance", "minthreads"}, {"performance", "maxthreads"},
        {"main", "maxmessagesize"}, {"main", "spill_threshold"}, {"main", "smtp_timeout"},
        {"main", "data_timeout"}, {"main", "reinject_timeout"}, {"main", "scan_timeout"},
        {"main", "mrtg_interval"},   /* monitoring */
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        long v;
        if (fg_config_get_int(cfg, ints[i].sec, ints[i].opt, 0, &v, &err) != 0) {
            printf("ERROR: %s\n", err);
            free(err);
            errors++;
        }
    }
    static const struct { const char *sec, *opt; } bools[] = {
        {"main", "daemonize"}, {"main", "trashlog"}, {"main", "spamstatusheader"}, {"main", "suspectidheader"},
        {"main", "debuginfoheader"}, {"main", "disablebounces"}, {"main", "remove_tmpfiles_on_error"},
    };
    for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++) {
        bool v;
        if (fg_config_get_bool(cfg, bools[i].sec, bools[i].opt, false, &v, &err) != 0) {
            printf("ERROR: %s\n", err);
            free(err);
            errors++;
        }
    }
    /* A message whose end of data went downstream is never answered 451 (its delivery is under
     * way); the client then waits up to scan_timeout + reinject_timeout. Postfix gives up on the
     * answer to the end of data after smtp_data_done_timeout (600 s) and retries: a duplicate. */
    long scan_to = 0, reinject_to = 0;
    if (fg_config_get_int(cfg, "main", "scan_timeout", 300, &scan_to, NULL) == 0 &&
        fg_config_get_int(cfg, "main", "reinject_timeout", 60, &reinject_to, NULL) == 0 &&
        scan_to + reinject_to >= 600)
        printf("WARNING: scan_timeout (%ld) + reinject_timeout (%ld) is %ld s: at 600 s or more a message "
               "delivered at the last moment outlives Postfix's smtp_data_done_timeout (600 s) and the MTA's "
               "retry delivers it twice\n",
               scan_to, reinject_to, scan_to + reinject_to);
    const char *trashdir = cfg_str(cfg, "main", "trashdir");
    struct stat st;
    if (*trashdir && (stat(trashdir, &st) != 0 || !S_ISDIR(st.st_mode))) {
        printf("ERROR: Trashdir %s does not exist\n", trashdir);
        errors++;
    }
    const char *tempdir = cfg_str(cfg, "main", "tempdir");
    if (*tempdir && access(tempdir, W_OK | X_OK) != 0) {
        printf("ERROR: tempdir %s is not a writable directory\n", tempdir);
        errors++;
    }
    printf("%s\n", errors ? "ERROR" : "OK");
    errors += fg_lua_lint(cfg, env);
    printf("Checking logging configuration....\n");
    char *lerr = NULL;
    if (access(logging_conf, F_OK) != 0) {
        printf("WARNING: %s not found: the engine will log INFO to stderr\n", logging_conf);
    } else if (fg_log_check_config(logging_conf, &lerr) != 0) {
        printf("NOT OK\n%s\nPlease check your logging configuration (%s, Python logging fileConfig format)\n", lerr,
               logging_conf);
        free(lerr);
        errors++;
    } else {
        printf("OK\n");
    }
    printf("%d errors found.\n", errors);
    return errors;
}

/* ---- daemon setup ---- */

static int write_pidfile(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return -1;
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    int ok = write(fd, buf, (size_t)n) == n;
    close(fd);
    return ok ? 0 : -1;
}

static void daemonize(void)
{
    pid_t pid = fork();
    if (pid < 0)
        fg_panic("fork failed: %s", strerror(errno));
    if (pid > 0)
        _exit(0);
    setsid();
    pid = fork();
    if (pid < 0)
        fg_panic("fork failed: %s", strerror(errno));
    if (pid > 0)
        _exit(0);
    if (chdir("/") != 0)
        fg_log("fuglu.MainController", FG_WARNING, "chdir / failed: %s", strerror(errno));
    int fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        if (fd > 2)
            close(fd);
    }
}

/* Returns 0, or -1 after printing why (fatal when running as root). */
static int drop_privileges(const char *user, const char *group, const char *pidfile)
{
    if (!*user)
        return 0;
    struct passwd *pw = getpwnam(user);
    if (geteuid() != 0) {
        if (!pw || pw->pw_uid != geteuid())
            fg_log("fuglu.MainController", FG_WARNING,
                   "not running as root: cannot switch to user %s, continuing as uid %ld", user, (long)geteuid());
        return 0;
    }
    if (!pw) {
        fprintf(stderr, "Could not drop privileges to %s/%s : no such user\n", user, group);
        return -1;
    }
    gid_t gid = pw->pw_gid;
    if (*group) {
        struct group *gr = getgrnam(group);
        if (!gr) {
            fprintf(stderr, "Could not drop privileges to %s/%s : no such group\n", user, group);
            return -1;
        }
        gid = gr->gr_gid;
    }
    if (pw->pw_uid == 0 && gid == 0)
        return 0;
    if (pidfile && chown(pidfile, pw->pw_uid, gid) != 0)
        fg_log("fuglu.MainController", FG_WARNING, "cannot chown pidfile %s: %s", pidfile, strerror(errno));
    if (initgroups(user, gid) != 0 || setgid(gid) != 0 || setuid(pw->pw_uid) != 0) {
        fprintf(stderr, "Could not drop privileges to %s/%s : %s\n", user, group, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- generations and reload ---- */

static int submit_job(fg_job *job, void *arg)
{
    daemon_state *d = arg;
    if (fg_generation_submit(d->gen, job) != 0)
        return -1;
    fg_stats_message_in(fg_stats_global(), job->protocol); /* monitoring: the "in" counter */
    return 0;
}

static size_t pending_total(daemon_state *d)
{
    size_t n = fg_generation_pending(d->gen);
    for (retired_generation *r = d->retired; r; r = r->next)
        n += fg_generation_pending(r->gen);
    return n;
}

/* Frees retired generations once they have finished every message they started. */
static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    daemon_state *d = arg;
    for (retired_generation **at = &d->retired; *at;) {
        retired_generation *r = *at;
        if (!fg_generation_finished(r->gen)) {
            at = &r->next;
            continue;
        }
        *at = r->next;
        fg_log("fuglu.MainController", FG_INFO, "generation %d finished its last message and was freed",
               fg_generation_number(r->gen));
        fg_generation_free(r->gen);
        free(r);
    }
    if (!d->retired)
        event_del(d->reap_timer);
}

static void point_tools_at_current(daemon_state *d)
{
    fg_console_set_generation_in_service(d->console, d->gen); /* debugging */
    if (d->metrics)
        fg_metrics_set_generation(d->metrics, d->gen);
}

/* Whether a line of the lint transcript reports a problem (the rest is progress: "Loading
 * plugins...", "Linting Plugin X", "OK", the totals). */
static bool is_problem_line(const char *line)
{
    if (strncmp(line, "ERROR: ", 7) == 0)
        return strstr(line, "At least one plugin failed to load") == NULL;
    static const char *const progress[] = {"Loading plugins", "Plugin loading complete", "Linting ", "OK", "ERROR",
                                           "!!!"};
    for (size_t i = 0; i < sizeof progress / sizeof progress[0]; i++)
        if (strncmp(line, progress[i], strlen(progress[i])) == 0)
            return false;
    static const char tail[] = "plugins reported errors.";
    size_t len = strlen(line);
    return !(len >= sizeof tail - 1 && strcmp(line + len - (sizeof tail - 1), tail) == 0);
}

/* Appends each problem line of text to report with a prefix ("ERROR: " once, not twice), and
 * logs it at level. */
static void report_lines(fg_buf *report, const char *prefix, const char *text, int level)
{
    char *copy = xstrdup(text);
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        line = fg_strtrim(line);
        if (!*line || !is_problem_line(line))
            continue;
        if (strncmp(line, "ERROR: ", 7) == 0)
            line += 7;
        fg_buf_printf(report, "%s%s\n", prefix, line);
        fg_log("fuglu.MainController", level, "reload: %s", line);
    }
    free(copy);
}

/* Brings the running setup in line with the files on disk. Returns 0 when it matches them (reloaded,
 * or nothing changed), -1 when the new setup was refused and the old one keeps serving. */
static int reload(daemon_state *d, fg_buf *report)
{
    if (logging_conf && access(logging_conf, F_OK) == 0 && fg_log_config_changed(logging_conf)) {
        char *err = NULL;
        if (fg_log_load_config(logging_conf, &err) != 0) {
            fg_log("fuglu.MainController", FG_ERROR, "logging configuration not reloaded, keeping the running one: %s",
                   err);
            fg_buf_printf(report, "ERROR: %s (logging configuration not reloaded)\n", err);
            free(err);
        } else {
            fg_log("fuglu.MainController", FG_INFO, "logging configuration reloaded from %s", logging_conf);
            fg_buf_printf(report, "logging configuration reloaded\n");
        }
    }
    char *err = NULL;
    fg_config *cfg = fg_generation_load_config(d->config_path, &err);
    if (!cfg) {
        report_lines(report, "ERROR: ", err, FG_ERROR);
        free(err);
        return -1;
    }
    char *fingerprint = fg_generation_fingerprint(cfg, d->config_path, d->genv.lua.luadir);
    if (strcmp(fingerprint, fg_generation_fingerprint_of(d->gen)) == 0) {
        fg_log("fuglu.MainController", FG_INFO, "reload: nothing changed");
        fg_buf_puts(report, "OK: nothing changed\n");
        free(fingerprint);
        fg_config_free(cfg);
        return 0;
    }
    fg_portspec *specs = NULL;
    size_t nspecs = 0;
    if (fg_portspec_parse_list(cfg_str(cfg, "main", "incomingport"), cfg_str(cfg, "main", "bindaddress"), &specs,
                               &nspecs, &err) != 0) {
        report_lines(report, "ERROR: ", err, FG_ERROR);
        free(err);
        free(fingerprint);
        fg_config_free(cfg);
        return -1;
    }
    fg_buf errors;
    fg_buf_init(&errors);
    fg_generation *g = fg_generation_new(&d->genv, cfg, fingerprint, d->next_generation + 1, 1, &errors);
    if (!g) {
        report_lines(report, "ERROR: ", errors.data ? errors.data : "the new configuration was refused", FG_ERROR);
        fg_log("fuglu.MainController", FG_ERROR, "reload refused: generation %d keeps serving",
               fg_generation_number(d->gen));
        fg_buf_free(&errors);
        free(specs);
        return -1;
    }
    fg_buf_free(&errors);
    d->next_generation++;
    char *changed = fg_generation_fingerprint_diff(fg_generation_fingerprint_of(d->gen), fg_generation_fingerprint_of(g));
    fg_log("fuglu.MainController", FG_INFO, "reload: changed: %s; rebuilt: config, plugins and worker pool", changed);

    fg_generation *old = d->gen;
    fg_job *queued = fg_generation_retire(old);
    d->gen = g;
    int moved = 0;
    while (queued) {
        fg_job *job = queued;
        queued = job->next;
        job->next = NULL;
        if (fg_generation_submit(g, job) != 0) {
            fg_job_set_reply(job, 451, "4.3.2 Service busy, try again later");
            fg_server_job_done(job, d->server);
        }
        moved++;
    }
    retired_generation *r = xcalloc(1, sizeof *r);
    r->gen = old;
    r->next = d->retired;
    d->retired = r;
    struct timeval tv = {0, 100000};
    event_add(d->reap_timer, &tv);

    if (fg_server_apply_ports(d->server, specs, nspecs, report) > 0)
        fg_buf_puts(report, "WARNING: some ports could not be opened, see above\n");
    free(specs);
    point_tools_at_current(d);
    fg_console_set_generation(d->console, fg_generation_number(g)); /* debugging: mc.generation */
    fg_log("fuglu.MainController", FG_INFO,
           "reload: generation %d (%s backend) replaces generation %d (%s); %d queued messages moved to it",
           fg_generation_number(g), fg_generation_backend(g), fg_generation_number(old), fg_generation_backend(old),
           moved);
    fg_buf_printf(report, "OK: reloaded (generation %d)\nchanged: %s\n", fg_generation_number(g), changed);
    free(changed);
    return 0;
}

/* The control socket's reload command. */
static int control_reload(fg_buf *out)
{
    if (!the_daemon) {
        fg_buf_puts(out, "ERROR: not running\n");
        return -1;
    }
    return reload(the_daemon, out);
}

/* ---- signals and shutdown ---- */

static void shutdown_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    daemon_state *d = arg;
    size_t pending = pending_total(d);
    size_t sessions = fg_server_session_count(d->server);
    if ((pending == 0 && sessions == 0) || fg_monotonic() > d->shutdown_deadline) {
        if (pending || sessions)
            fg_log("fuglu.MainController", FG_WARNING,
                   "shutdown deadline reached with %zu messages in progress and %zu sessions", pending, sessions);
        event_base_loopexit(d->base, NULL);
    }
}

static void on_terminate(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    daemon_state *d = arg;
    if (d->shutdown_timer)
        return;
    fg_log("fuglu.MainController", FG_INFO, "received signal %d, shutting down", (int)sig);
    fg_server_shutdown(d->server);
    fg_generation_stop(d->gen, 421, "4.3.2 Service shutting down, try again later");
    d->shutdown_deadline = fg_monotonic() + SHUTDOWN_GRACE_SECONDS;
    d->shutdown_timer = event_new(d->base, -1, EV_PERSIST, shutdown_tick, d);
    struct timeval tv = {0, 50000};
    event_add(d->shutdown_timer, &tv);
}

static char *logging_conf_path(const char *config_path)
{
    const char *slash = strrchr(config_path, '/');
    if (!slash)
        return xstrdup("logging.conf");
    return xasprintf("%.*s/logging.conf", (int)(slash - config_path), config_path);
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    daemon_state *d = arg;
    if (d->shutdown_timer)
        return;
    fg_log("fuglu.MainController", FG_INFO, "SIGHUP received: checking for changes");
    fg_buf report;
    fg_buf_init(&report);
    reload(d, &report);
    fg_buf_free(&report);
}

/* fuglu --reload: signal the daemon named by the pidfile. */
static int send_reload(const char *pidfile)
{
    FILE *f = fopen(pidfile, "r");
    long pid = 0;
    if (!f || fscanf(f, "%ld", &pid) != 1 || pid <= 1) {
        fprintf(stderr, "fuglu: cannot read a process id from %s%s%s\n", pidfile, f ? "" : ": ",
                f ? "" : strerror(errno));
        if (f)
            fclose(f);
        return 1;
    }
    fclose(f);
    if (kill((pid_t)pid, SIGHUP) != 0) {
        fprintf(stderr, "fuglu: cannot signal process %ld: %s\n", pid, strerror(errno));
        return 1;
    }
    printf("sent SIGHUP to fuglu (pid %ld)\n", pid);
    return 0;
}

static char *self_exe(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return xstrdup("/proc/self/exe");
    exe[n] = '\0';
    return xstrdup(exe);
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "--process-worker") == 0)
        return fg_procworker_main(atoi(argv[2]));

    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"foreground", no_argument, NULL, 'f'},
        {"pidfile", required_argument, NULL, 'p'}, {"lint", no_argument, NULL, 'l'},
        {"version", no_argument, NULL, 'V'}, {"console", no_argument, NULL, 'C'},
        {"reload", no_argument, NULL, 'R'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
    };
    const char *config_path = FUGLU_SYSCONFDIR "/fuglu.conf";
    const char *pidfile = NULL;
    int foreground = 0, lint = 0, console = 0, send_hup = 0, opt;
    while ((opt = getopt_long(argc, argv, "c:fh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': config_path = optarg; break;
        case 'f': foreground = 1; break;
        case 'p': pidfile = optarg; break;
        case 'l': lint = 1; break;
        case 'C': console = foreground = 1; break; /* debugging: --console */
        case 'R': send_hup = 1; break;
        case 'V': printf("%s\n", FUGLU_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "Unknown option(s): ");
        for (int i = optind; i < argc; i++)
            fprintf(stderr, "%s%s", argv[i], i + 1 < argc ? " " : "\n");
        usage(stderr);
        return 1;
    }
    if (send_hup)
        return send_reload(pidfile ? pidfile : "/var/run/fuglu.pid");

    if (access(config_path, F_OK) != 0) {
        fprintf(stderr,
                "Configfile (%s) not found. Please create it by renaming the .dist file and modifying it to your "
                "needs\n",
                config_path);
        return 1;
    }
    char *err = NULL;
    fg_config *cfg = fg_generation_load_config(config_path, &err);
    if (!cfg) {
        fprintf(stderr, "fuglu: %s\n", err);
        free(err);
        return 1;
    }
    char *luadir = fg_lua_find_luadir();
    fg_lua_env env = {.luadir = luadir};

    logging_conf = logging_conf_path(config_path);
    if (lint) {
        int errors = run_lint(cfg, &env);
        fg_config_free(cfg);
        free(luadir);
        free(logging_conf);
        return errors > 255 ? 255 : errors;
    }

    const char *logfile = cfg_str(cfg, "main", "logfile");
    if (*logfile && fg_log_configure(FG_INFO, logfile) != 0) {
        fprintf(stderr, "fuglu: cannot open logfile %s: %s\n", logfile, strerror(errno));
        return 1;
    }

    fg_portspec *specs = NULL;
    size_t nspecs = 0;
    if (fg_portspec_parse_list(cfg_str(cfg, "main", "incomingport"), cfg_str(cfg, "main", "bindaddress"), &specs,
                               &nspecs, &err) != 0) {
        fprintf(stderr, "fuglu: %s\n", err);
        return 1;
    }

    signal(SIGPIPE, SIG_IGN);
    if (evthread_use_pthreads() != 0)
        fg_panic("libevent has no pthreads support");

    if (!foreground && cfg_bool(cfg, "main", "daemonize", true))
        daemonize();
    /* After the fork: the log writer is a thread, and threads do not survive fork. */
    if (access(logging_conf, F_OK) == 0) {
        if (fg_log_load_config(logging_conf, &err) != 0) {
            fprintf(stderr, "fuglu: %s\n", err);
            return 1;
        }
    } else {
        fg_log_start_writer();
        fg_log("fuglu.MainController", FG_WARNING, "%s not found: logging INFO to stderr", logging_conf);
    }

    daemon_state d = {0};
    the_daemon = &d;
    d.cfg = cfg;
    d.config_path = config_path;
    d.pidfile = pidfile;
    d.base = event_base_new();
    if (!d.base)
        fg_panic("cannot create the event loop");
    /* monitoring: the counters exist before any worker state is created */
    d.stats = fg_stats_new();
    fg_stats_set_global(d.stats);

    fg_server_opts so = {
        .base = d.base,
        .max_message_size = (size_t)cfg_int(cfg, "main", "maxmessagesize", 52428800),
        .spill_threshold = (size_t)cfg_int(cfg, "main", "spill_threshold", 1048576),
        .tempdir = cfg_str(cfg, "main", "tempdir"),
        .smtp_timeout = (int)cfg_int(cfg, "main", "smtp_timeout", 300),
        .data_timeout = (int)cfg_int(cfg, "main", "data_timeout", 600),
        .scan_timeout = (int)cfg_int(cfg, "main", "scan_timeout", 300),
    };
    d.server = fg_server_new(&so);
    if (fg_server_apply_ports(d.server, specs, nspecs, NULL) == (int)nspecs) {
        fprintf(stderr, "fuglu: no port could be opened, see the log\n");
        return 1;
    }
    free(specs);

    if (pidfile) {
        if (write_pidfile(pidfile) != 0) {
            fprintf(stderr, "fuglu: cannot write pidfile %s: %s\n", pidfile, strerror(errno));
            return 1;
        }
        d.pidfile_written = 1;
    }
    if (drop_privileges(cfg_str(cfg, "main", "user"), cfg_str(cfg, "main", "group"), pidfile) != 0) {
        if (pidfile)
            unlink(pidfile);
        return 1;
    }

    /* debugging: the controller console (--console) and the netconsole control command */
    d.console = fg_console_new(&(fg_console_opts){.base = d.base, .cfg = cfg, .luadir = luadir});
    if (console && fg_console_controller(d.console, &err) != 0) {
        fprintf(stderr, "fuglu: the console cannot load the plugins:\n%s\n", err);
        if (pidfile)
            unlink(pidfile);
        return EXIT_FATAL;
    }

    char *exe = self_exe();
    d.genv = (fg_generation_env){
        .config_path = config_path,
        .lua = env,
        .exe_path = exe,
        .logging_conf = logging_conf,
        .base = d.base,
        .done = fg_server_job_done,
        .done_arg = d.server,
    };
    fg_buf errors;
    fg_buf_init(&errors);
    /* The first generation works on its own copy of the config: d.cfg stays the start-up view. */
    fg_config *gen_cfg = fg_generation_load_config(config_path, &err);
    if (gen_cfg)
        d.gen = fg_generation_new(&d.genv, gen_cfg, fg_generation_fingerprint(gen_cfg, config_path, luadir), 1, 0,
                                  &errors);
    if (!d.gen) {
        const char *why = gen_cfg ? (errors.data ? errors.data : "") : err;
        fg_log("fuglu.MainController", FG_CRITICAL, "Some plugins failed to load: %s", why);
        fprintf(stderr, "Some plugins failed to load, please check the logs. Aborting.\n%s\n", why);
        if (pidfile)
            unlink(pidfile);
        return EXIT_FATAL;
    }
    fg_buf_free(&errors);
    d.next_generation = 1;
    d.reap_timer = event_new(d.base, -1, EV_PERSIST, reap_cb, &d);
    fg_server_set_submit(d.server, submit_job, &d);

    /* monitoring: control socket (after the privilege drop, so the run user owns it), MRTG, metrics */
    const char *controlport = cfg_str(cfg, "main", "controlport");
    fg_control_set_reload(control_reload);
    if (*controlport && !(d.control = fg_control_new(d.base, d.stats, controlport, &err))) {
        fg_log("fuglu.MainController", FG_ERROR, "control server not started: %s", err);
        free(err);
    }
    d.mrtg = fg_mrtg_new(d.base, d.stats, cfg_str(cfg, "main", "mrtgdir"),
                         (double)cfg_int(cfg, "main", "mrtg_interval", 30));
    const char *metricsport = cfg_str(cfg, "main", "metricsport");
    if (*metricsport && !(d.metrics = fg_metrics_new(d.base, d.stats, metricsport, &err))) {
        fg_log("fuglu.MainController", FG_ERROR, "metrics endpoint not started: %s", err);
        free(err);
    }
    point_tools_at_current(&d);

    struct event *sigterm = evsignal_new(d.base, SIGTERM, on_terminate, &d);
    struct event *sigint = evsignal_new(d.base, SIGINT, on_terminate, &d);
    struct event *sighup = evsignal_new(d.base, SIGHUP, on_hup, &d);
    event_add(sigterm, NULL);
    event_add(sigint, NULL);
    event_add(sighup, NULL);

    if (console && fg_console_start_terminal(d.console, &err) != 0) {
        fg_log("fuglu.MainController", FG_ERROR, "console not started: %s", err);
        free(err);
    }

    fg_log("fuglu.MainController", FG_INFO, "FuGLU Version %s starting up (identifier %s, %s backend)", FUGLU_VERSION,
           cfg_str(cfg, "main", "identifier"), fg_generation_backend(d.gen));
    event_base_dispatch(d.base);

    fg_console_free(d.console); /* debugging */
    int clean = pending_total(&d) == 0;
    fg_control_free(d.control);
    fg_mrtg_free(d.mrtg);
    fg_metrics_free(d.metrics);
    fg_server_free(d.server);
    if (clean) {
        fg_generation_free(d.gen);
        while (d.retired) {
            retired_generation *r = d.retired;
            d.retired = r->next;
            fg_generation_free(r->gen);
            free(r);
        }
    }
    event_free(sigterm);
    event_free(sigint);
    event_free(sighup);
    event_free(d.reap_timer);
    if (d.shutdown_timer)
        event_free(d.shutdown_timer);
    if (d.pidfile_written && unlink(pidfile) != 0)
        fg_log("fuglu.MainController", FG_WARNING, "cannot remove pidfile %s: %s", pidfile, strerror(errno));
    fg_log("fuglu.MainController", FG_INFO, "shutdown complete");
    fg_log_shutdown();
    the_daemon = NULL;
    if (clean) {
        fg_stats_free(d.stats);
        event_base_free(d.base);
        fg_config_free(cfg);
        free(luadir);
        free(exe);
        free(logging_conf);
    }
    return 0;
}
