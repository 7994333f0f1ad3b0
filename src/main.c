/* main: the fuglu daemon. Command line, config, lint, daemon setup, the event loop and shutdown.
 *
 *   fuglu [-c FILE] [-f|--foreground] [--pidfile FILE] [--lint] [--version]
 *
 * Exit codes as Fuglu: 0 ok, 1 usage/config errors, 66 when plugins fail to load at start, and for
 * --lint the number of errors found.
 */
#include "config.h"
#include "control.h"
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

typedef struct daemon_state {
    struct event_base *base;
    fg_config *cfg;
    fg_server *server;
    fg_pool *pool;
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

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: fuglu [options]\n"
            "  -c, --config FILE   configuration file (default %s/fuglu.conf); its directory's\n"
            "                      conf.d/*.conf and logging.conf are used too\n"
            "  -f, --foreground    do not daemonize even if [main] daemonize=1\n"
            "      --pidfile FILE  write the process id to FILE (removed on exit)\n"
            "      --lint          check the configuration and every plugin, then exit with the\n"
            "                      number of errors\n"
            "      --version       print the version and exit\n",
            FUGLU_SYSCONFDIR);
}

/* lua/ next to the source tree when run from build/, else the installed data dir. FUGLU_LUADIR wins. */
static char *find_luadir(void)
{
    const char *env = getenv("FUGLU_LUADIR");
    if (env && *env)
        return xstrdup(env);
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *dir = dirname(exe);
        /* build/fuglu in a source tree, then PREFIX/bin/fuglu next to PREFIX/share/fuglu/lua */
        static const char *const relative[] = {"%s/../lua", "%s/../share/fuglu/lua"};
        for (size_t i = 0; i < sizeof relative / sizeof relative[0]; i++) {
            char *candidate = xasprintf(relative[i], dir);
            char *probe = xasprintf("%s/fuglu/worker.lua", candidate);
            int ok = access(probe, R_OK) == 0;
            free(probe);
            char real[PATH_MAX];
            if (ok && realpath(candidate, real)) {
                free(candidate);
                return xstrdup(real);
            }
            free(candidate);
        }
    }
    return xstrdup(FUGLU_DATADIR "/lua");
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
        {"main", "data_timeout"}, {"main", "reinject_timeout"},
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

/* ---- signals and shutdown ---- */

static void shutdown_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    daemon_state *d = arg;
    size_t pending = fg_pool_pending(d->pool);
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
    fg_pool_stop(d->pool, 421, "4.3.2 Service shutting down, try again later");
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
    (void)arg;
    if (logging_conf && access(logging_conf, F_OK) == 0 && fg_log_config_changed(logging_conf)) {
        char *err = NULL;
        if (fg_log_load_config(logging_conf, &err) != 0) {
            fg_log("fuglu.MainController", FG_ERROR, "logging configuration not reloaded, keeping the running one: %s",
                   err);
            free(err);
        } else {
            fg_log("fuglu.MainController", FG_INFO, "logging configuration reloaded from %s", logging_conf);
        }
    }
    fg_log("fuglu.MainController", FG_WARNING, "SIGHUP received: runtime reload is not available in this version");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"foreground", no_argument, NULL, 'f'},
        {"pidfile", required_argument, NULL, 'p'}, {"lint", no_argument, NULL, 'l'},
        {"version", no_argument, NULL, 'V'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
    };
    const char *config_path = FUGLU_SYSCONFDIR "/fuglu.conf";
    const char *pidfile = NULL;
    int foreground = 0, lint = 0, opt;
    while ((opt = getopt_long(argc, argv, "c:fh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': config_path = optarg; break;
        case 'f': foreground = 1; break;
        case 'p': pidfile = optarg; break;
        case 'l': lint = 1; break;
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

    if (access(config_path, F_OK) != 0) {
        fprintf(stderr,
                "Configfile (%s) not found. Please create it by renaming the .dist file and modifying it to your "
                "needs\n",
                config_path);
        return 1;
    }
    fg_config *cfg = fg_config_new();
    char *err = NULL;
    if (fg_config_load(cfg, config_path, true, &err) != 0) {
        fprintf(stderr, "fuglu: %s\n", err);
        free(err);
        fg_config_free(cfg);
        return 1;
    }
    fg_config_apply_core_defaults(cfg);
    char *luadir = find_luadir();
    fg_lua_env env = {.luadir = luadir};

    logging_conf = logging_conf_path(config_path);
    if (lint) {
        int errors = run_lint(cfg, &env);
        fg_config_free(cfg);
        free(luadir);
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
        fg_log("fuglu.MainController", FG_WARNING, "%s not found: logging INFO to stderr", logging_conf);
    }

    daemon_state d = {0};
    d.cfg = cfg;
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
    };
    d.server = fg_server_new(&so);
    int listening = 0;
    for (size_t i = 0; i < nspecs; i++) {
        if (fg_server_listen(d.server, &specs[i], &err) != 0) {
            fg_log("fuglu.MainController", FG_ERROR, "%s", err);
            free(err);
            continue;
        }
        listening++;
    }
    free(specs);
    if (!listening) {
        fprintf(stderr, "fuglu: no port could be opened, see the log\n");
        return 1;
    }

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

    fg_pool_opts po = {
        .cfg = cfg,
        .env = env,
        .minthreads = (int)cfg_int(cfg, "performance", "minthreads", 2),
        .maxthreads = (int)cfg_int(cfg, "performance", "maxthreads", 40),
        .base = d.base,
        .done = fg_server_job_done,
        .done_arg = d.server,
    };
    d.pool = fg_pool_new(&po, &err);
    if (!d.pool) {
        fg_log("fuglu.MainController", FG_CRITICAL, "Some plugins failed to load: %s", err);
        fprintf(stderr, "Some plugins failed to load, please check the logs. Aborting.\n%s\n", err);
        free(err);
        if (pidfile)
            unlink(pidfile);
        return EXIT_FATAL;
    }
    fg_server_set_pool(d.server, d.pool);

    /* monitoring: control socket (after the privilege drop, so the run user owns it), MRTG, metrics */
    const char *controlport = cfg_str(cfg, "main", "controlport");
    if (*controlport && !(d.control = fg_control_new(d.base, d.stats, controlport, &err))) {
        fg_log("fuglu.MainController", FG_ERROR, "control server not started: %s", err);
        free(err);
    }
    d.mrtg = fg_mrtg_new(d.base, d.stats, cfg_str(cfg, "main", "mrtgdir"),
                         (double)cfg_int(cfg, "main", "mrtg_interval", 30));
    const char *metricsport = cfg_str(cfg, "main", "metricsport");
    if (*metricsport && !(d.metrics = fg_metrics_new(d.base, d.stats, d.pool, metricsport, &err))) {
        fg_log("fuglu.MainController", FG_ERROR, "metrics endpoint not started: %s", err);
        free(err);
    }

    struct event *sigterm = evsignal_new(d.base, SIGTERM, on_terminate, &d);
    struct event *sigint = evsignal_new(d.base, SIGINT, on_terminate, &d);
    struct event *sighup = evsignal_new(d.base, SIGHUP, on_hup, &d);
    event_add(sigterm, NULL);
    event_add(sigint, NULL);
    event_add(sighup, NULL);

    fg_log("fuglu.MainController", FG_INFO, "FuGLU Version %s starting up (identifier %s)", FUGLU_VERSION,
           cfg_str(cfg, "main", "identifier"));
    event_base_dispatch(d.base);

    int clean = fg_pool_pending(d.pool) == 0;
    fg_control_free(d.control);
    fg_mrtg_free(d.mrtg);
    fg_metrics_free(d.metrics);
    fg_server_free(d.server);
    if (clean)
        fg_pool_free(d.pool);
    event_free(sigterm);
    event_free(sigint);
    event_free(sighup);
    if (d.shutdown_timer)
        event_free(d.shutdown_timer);
    if (d.pidfile_written && unlink(pidfile) != 0)
        fg_log("fuglu.MainController", FG_WARNING, "cannot remove pidfile %s: %s", pidfile, strerror(errno));
    fg_log("fuglu.MainController", FG_INFO, "shutdown complete");
    fg_log_shutdown();
    if (clean) {
        fg_stats_free(d.stats);
        event_base_free(d.base);
        fg_config_free(cfg);
        free(luadir);
    }
    return 0;
}
