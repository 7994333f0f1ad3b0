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
#include "lib/config.h"
#include "daemon/controller.h"
#include "daemon/generation.h"
#include "daemon/lint.h"
#include "log/log.h"
#include "lua/lua_worker.h"
#include "pool/procworker.h"
#include "lib/util.h"
#include "lib/version.h"

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

/* ---- lint ---- */

/* --lint: the core checks and every plugin's lint, printed as Fuglu prints them. Returns the
 * number of errors. */
static int run_lint(const fg_config *cfg, const fg_lua_env *env, const char *logging_conf)
{
    printf("Fuglu %s\n---------- LINT MODE ----------\n", FUGLU_VERSION);
    fg_findings core = {0}, plugins = {0}, logging = {0};
    fg_lint_core(cfg, &core);
    int plugin_errors = fg_lua_lint(cfg, env, &plugins, false);
    fg_lint_logging(logging_conf, &logging);
    fg_findings_print(&core, stdout);
    fg_findings_print(&plugins, stdout);
    fg_findings_print(&logging, stdout);
    int errors = (int)core.errors + plugin_errors + (int)logging.errors;
    printf("%d errors found.\n", errors);
    fg_findings_free(&core);
    fg_findings_free(&plugins);
    fg_findings_free(&logging);
    return errors;
}

/* ---- daemon setup ---- */

static int write_pidfile(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
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
    /* The pidfile stays root's: a pidfile the run user could rewrite would make root's
     * `fuglu --reload` (or systemd) signal any process that user names. */
    (void)pidfile;
    if (initgroups(user, gid) != 0 || setgid(gid) != 0 || setuid(pw->pw_uid) != 0) {
        fprintf(stderr, "Could not drop privileges to %s/%s : %s\n", user, group, strerror(errno));
        return -1;
    }
    return 0;
}

static char *logging_conf_path(const char *config_path)
{
    const char *slash = strrchr(config_path, '/');
    if (!slash)
        return xstrdup("logging.conf");
    return xasprintf("%.*s/logging.conf", (int)(slash - config_path), config_path);
}

/* fuglu --reload: signal the daemon named by the pidfile. */
static int send_reload(const char *pidfile)
{
    FILE *f = fopen(pidfile, "re");
    long pid = 0;
    if (!f || fscanf(f, "%ld", &pid) != 1 || pid <= 1) {
        fprintf(stderr, "fuglu: cannot read a process id from %s%s%s\n", pidfile, f ? "" : ": ",
                f ? "" : strerror(errno));
        if (f)
            fclose(f);
        return 1;
    }
    fclose(f);
    /* only a fuglu: a stale pidfile (left by a daemon that could not remove its root-owned file) may
     * name a process that took the number since */
    char path[64], comm[32] = "";
    snprintf(path, sizeof path, "/proc/%ld/comm", pid);
    FILE *c = fopen(path, "re");
    if (c) {
        if (!fgets(comm, sizeof comm, c))
            comm[0] = 0;
        fclose(c);
        comm[strcspn(comm, "\n")] = 0;
    }
    if (strncmp(comm, "fuglu", 5) != 0) {
        fprintf(stderr, "fuglu: process %ld named in %s is %s: not signalled (a stale pidfile?)\n", pid, pidfile,
                c ? comm : "not running");
        return 1;
    }
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
    char *logging_conf = logging_conf_path(config_path);
    if (lint) {
        int errors = run_lint(cfg, &env, logging_conf);
        fg_config_free(cfg);
        free(luadir);
        free(logging_conf);
        return errors > 255 ? 255 : errors;
    }
    /* From here every failure leaves through `fail`, which frees what was made (LeakSanitizer
     * checks the start-failure paths too). */
    int rc = 1;
    char *exe = NULL;
    fg_controller *ctl = NULL;
    int pidfile_written = 0;
    /* The daemon does not start on a configuration --lint would refuse for its types and bounds. */
    fg_findings checks = {0};
    fg_lint_core(cfg, &checks);
    if (checks.errors) {
        fprintf(stderr, "fuglu: the configuration has errors:\n");
        for (size_t i = 0; i < checks.count; i++)
            if (checks.items[i].severity == FG_FINDING_ERROR)
                fprintf(stderr, "%s%s%s\n", checks.items[i].where ? checks.items[i].where : "",
                        checks.items[i].where ? ": " : "", checks.items[i].message);
        fg_findings_free(&checks);
        goto fail;
    }
    fg_findings_free(&checks);

    const char *logfile = fg_core_str(cfg, "main", "logfile");
    if (*logfile && fg_log_configure(FG_INFO, logfile) != 0) {
        fprintf(stderr, "fuglu: cannot open logfile %s: %s\n", logfile, strerror(errno));
        goto fail;
    }

    signal(SIGPIPE, SIG_IGN);
    if (evthread_use_pthreads() != 0)
        fg_panic("libevent has no pthreads support");

    if (!foreground && fg_core_bool(cfg, "main", "daemonize"))
        daemonize();
    /* After the fork: the log writer is a thread, and threads do not survive fork. */
    if (access(logging_conf, F_OK) == 0) {
        if (fg_log_load_config(logging_conf, &err) != 0) {
            fprintf(stderr, "fuglu: %s\n", err);
            free(err);
            goto fail;
        }
    } else {
        fg_log_start_writer();
        fg_log("fuglu.MainController", FG_WARNING, "%s not found: logging INFO to stderr", logging_conf);
    }

    exe = self_exe();
    fg_controller_opts co = {
        .cfg = cfg, .config_path = config_path, .luadir = luadir, .logging_conf = logging_conf, .exe_path = exe,
    };
    ctl = fg_controller_new(&co, &err);
    if (!ctl) {
        fprintf(stderr, "fuglu: %s\n", err);
        free(err);
        goto fail;
    }
    if (pidfile) {
        if (write_pidfile(pidfile) != 0) {
            fprintf(stderr, "fuglu: cannot write pidfile %s: %s\n", pidfile, strerror(errno));
            goto fail;
        }
        pidfile_written = 1;
    }
    if (drop_privileges(fg_core_str(cfg, "main", "user"), fg_core_str(cfg, "main", "group"), pidfile) != 0)
        goto fail;
    int started = fg_controller_start(ctl, console, &err);
    if (started != 0) {
        if (console || started == -2)
            fprintf(stderr, "fuglu: %s\n", err);
        else
            fprintf(stderr, "Some plugins failed to load, please check the logs. Aborting.\n%s\n", err);
        free(err);
        rc = started == -2 ? 1 : EXIT_FATAL;
        goto fail;
    }
    fg_controller_run(ctl);
    int clean = fg_controller_free(ctl);
    if (pidfile_written && unlink(pidfile) != 0)   /* root's file in root's directory: expected after a drop */
        fg_log("fuglu.MainController", errno == EACCES ? FG_INFO : FG_WARNING,
               "cannot remove pidfile %s: %s (the next start replaces it)", pidfile, strerror(errno));
    fg_log("fuglu.MainController", FG_INFO, "shutdown complete");
    fg_log_shutdown();
    if (clean) {
        fg_config_free(cfg);
        free(luadir);
        free(exe);
        free(logging_conf);
    }
    return 0;

fail:
    if (pidfile && pidfile_written)
        unlink(pidfile);
    if (ctl)
        fg_controller_free(ctl);
    fg_log_shutdown();
    fg_config_free(cfg);
    free(luadir);
    free(exe);
    free(logging_conf);
    return rc;
}
