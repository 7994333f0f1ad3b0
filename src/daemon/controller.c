/* controller: the running daemon. See controller.h. */
#include "daemon/controller.h"
#include "console/console.h" /* debugging: --console, netconsole */
#include "monitor/control.h"
#include "daemon/generation.h"
#include "log/log.h"
#include "monitor/metrics.h"
#include "monitor/mrtg.h"
#include "smtp/portspec.h"
#include "smtp/server.h"
#include "monitor/stats.h"
#include "pool/shdict.h"
#include "pool/msg.h"
#include "lib/version.h"

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOGGER "fuglu.MainController"
#define SHUTDOWN_GRACE_SECONDS 30

typedef struct retired_generation {
    fg_generation *gen;
    struct retired_generation *next;
} retired_generation;

struct fg_controller {
    fg_controller_opts o;
    struct event_base *base;
    fg_server *server;
    fg_generation *gen;          /* serves new messages */
    retired_generation *retired; /* finishing what they started */
    struct event *reap_timer;
    fg_generation_env genv;
    int next_generation;
    fg_console *console;
    struct event *shutdown_timer;
    double shutdown_deadline;
    struct event *signals[3];
    /* monitoring (stats.h, control.h, mrtg.h, metrics.h) */
    fg_stats *stats;
    fg_shdict_list dicts;        /* [shared]: created at start and for new names at reload, kept until exit */
    fg_control *control;
    fg_mrtg *mrtg;
    fg_metrics *metrics;
};

/* ---- shared dictionaries ---- */

/* Creates the [shared] dictionaries not made yet. A size that changed takes effect at the next
 * restart (the contents survive a reload; a resize would have to drop them): a warning. Errors and
 * warnings go to findings (and the caller's log). */
static void controller_shared_dicts(fg_controller *c, const fg_config *cfg, fg_findings *findings)
{
    /* the DNS cache of fuglu_dns ([main] dnscachesize, 0 = none) */
    const char *dnscache = fg_core_str(cfg, "main", "dnscachesize");
    size_t dnssize = fg_shdict_parse_size(dnscache);
    if (dnssize && !fg_shdict_list_find(&c->dicts, "fuglu.dnscache")) {
        char *err = NULL;
        fg_shdict *d = fg_shdict_create("fuglu.dnscache", dnssize, &err);
        if (!d || fg_shdict_list_add(&c->dicts, d) != 0) {
            char *msg = xasprintf("[main] dnscachesize = %s: %s", dnscache, err ? err : "too many shared dictionaries");
            fg_log(LOGGER, FG_ERROR, "%s", msg);
            fg_findings_add(findings, FG_FINDING_ERROR, fg_config_origin(cfg, "main", "dnscachesize"), msg);
            free(msg);
            fg_shdict_free(d);
        }
        free(err);
    }
    long shared = fg_config_section_index(cfg, "shared");
    for (size_t j = 0; shared >= 0 && j < fg_config_option_count(cfg, (size_t)shared); j++) {
        const char *name = fg_config_option_name(cfg, (size_t)shared, j);
        const char *value = fg_config_option_value(cfg, (size_t)shared, j);
        const char *where = fg_config_origin(cfg, "shared", name);
        char *msg = NULL, *err = NULL;
        size_t size = fg_shdict_check_spec(name, value, &msg);
        fg_shdict *d = size ? fg_shdict_list_find(&c->dicts, name) : NULL;
        bool warning = false;
        if (!size) {
            /* msg says why */
        } else if (d) {
            warning = (size + 4095) / 4096 * 4096 != fg_shdict_size(d);
            if (warning)
                msg = xasprintf("[shared] %s: the new size %s takes effect at the next restart (the dictionary "
                                "keeps its %zu bytes and its contents)", name, value, fg_shdict_size(d));
        } else if (!(d = fg_shdict_create(name, size, &err))) {
            msg = xasprintf("[shared] %s", err);
            free(err);
        } else if (fg_shdict_list_add(&c->dicts, d) != 0) {
            fg_shdict_free(d);
            msg = xasprintf("[shared] %s: more than %d shared dictionaries", name, FG_SHDICT_LIST_MAX);
        } else {
            fg_log(LOGGER, FG_INFO, "shared dict '%s': %zu bytes", name, fg_shdict_size(d));
        }
        if (msg) {
            fg_log(LOGGER, warning ? FG_WARNING : FG_ERROR, "%s%s%s", where ? where : "", where ? ": " : "", msg);
            fg_findings_add(findings, warning ? FG_FINDING_WARNING : FG_FINDING_ERROR, where, msg);
            free(msg);
        }
    }
}

/* ---- generations ---- */

static int submit_job(fg_job *job, void *arg)
{
    fg_controller *c = arg;
    if (fg_generation_submit(c->gen, job) != 0)
        return -1;
    fg_stats_message_in(c->stats, job->protocol); /* monitoring: the "in" counter */
    return 0;
}

static size_t pending_total(fg_controller *c)
{
    size_t n = c->gen ? fg_generation_pending(c->gen) : 0;
    for (retired_generation *r = c->retired; r; r = r->next)
        n += fg_generation_pending(r->gen);
    return n;
}

/* Frees retired generations once they have finished every message they started. */
static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    fg_controller *c = arg;
    for (retired_generation **at = &c->retired; *at;) {
        retired_generation *r = *at;
        if (!fg_generation_finished(r->gen)) {
            at = &r->next;
            continue;
        }
        *at = r->next;
        fg_log(LOGGER, FG_INFO, "generation %d finished its last message and was freed", fg_generation_number(r->gen));
        fg_generation_free(r->gen);
        free(r);
    }
    if (!c->retired)
        event_del(c->reap_timer);
}

static void retire(fg_controller *c, fg_generation *old)
{
    retired_generation *r = xcalloc(1, sizeof *r);
    r->gen = old;
    r->next = c->retired;
    c->retired = r;
    struct timeval tv = {0, 100000};
    event_add(c->reap_timer, &tv);
}

static void point_tools_at_current(fg_controller *c)
{
    fg_console_set_generation_in_service(c->console, c->gen); /* debugging */
    fg_console_set_generation(c->console, fg_generation_number(c->gen)); /* debugging: mc.generation */
    fg_metrics_set_generation(c->metrics, c->gen);
}

/* ---- reload ---- */

/* The findings' warnings and errors, logged and appended to the report. */
static void report_findings(const fg_findings *f, fg_buf *report)
{
    for (size_t i = 0; i < f->count; i++) {
        const fg_finding *x = &f->items[i];
        if (x->severity == FG_FINDING_INFO)
            continue;
        fg_log(LOGGER, x->severity == FG_FINDING_ERROR ? FG_ERROR : FG_WARNING, "reload: %s%s%s",
               x->where ? x->where : "", x->where ? ": " : "", x->message);
    }
    fg_findings_report(f, report);
}

static void reload_logging(fg_controller *c, fg_buf *report)
{
    const char *path = c->o.logging_conf;
    if (!path || access(path, F_OK) != 0 || !fg_log_config_changed(path))
        return;
    char *err = NULL;
    if (fg_log_load_config(path, &err) != 0) {
        fg_log(LOGGER, FG_ERROR, "logging configuration not reloaded, keeping the running one: %s", err);
        fg_buf_printf(report, "ERROR: %s (logging configuration not reloaded)\n", err);
        free(err);
    } else {
        fg_log(LOGGER, FG_INFO, "logging configuration reloaded from %s", path);
        fg_buf_printf(report, "logging configuration reloaded\n");
    }
}

/* Moves the jobs the old generation had not started to the new one (451 if it refuses them). */
static int move_queued(fg_controller *c, fg_generation *from, fg_generation *to)
{
    fg_job *queued = fg_generation_retire(from);
    int moved = 0;
    while (queued) {
        fg_job *job = queued;
        queued = job->next;
        job->next = NULL;
        if (fg_generation_submit(to, job) != 0) {
            fg_job_set_reply(job, 451, "4.3.2 Service busy, try again later");
            fg_server_job_done(job, c->server);
        }
        moved++;
    }
    return moved;
}

int fg_controller_reload(fg_controller *c, fg_buf *report)
{
    reload_logging(c, report);
    fg_findings findings = {0};
    char *err = NULL;
    fg_config *cfg = fg_generation_load_config(c->o.config_path, &err);
    if (!cfg) {
        fg_findings_add_located(&findings, FG_FINDING_ERROR, err);
        free(err);
        report_findings(&findings, report);
        fg_findings_free(&findings);
        return -1;
    }
    char *fingerprint = fg_generation_fingerprint(cfg, c->o.config_path, c->o.luadir);
    if (strcmp(fingerprint, fg_generation_fingerprint_of(c->gen)) == 0) {
        fg_log(LOGGER, FG_INFO, "reload: nothing changed");
        fg_buf_puts(report, "OK: nothing changed\n");
        free(fingerprint);
        fg_config_free(cfg);
        return 0;
    }
    fg_portspec *specs = NULL;
    size_t nspecs = 0;
    if (fg_portspec_parse_list(fg_core_str(cfg, "main", "incomingport"), fg_core_str(cfg, "main", "bindaddress"),
                               &specs, &nspecs, &err) != 0) {
        fg_findings_add_located(&findings, FG_FINDING_ERROR, err);
        free(err);
        free(fingerprint);
        fg_config_free(cfg);
        report_findings(&findings, report);
        fg_findings_free(&findings);
        return -1;
    }
    controller_shared_dicts(c, cfg, &findings);
    fg_generation *g = fg_generation_new(&c->genv, cfg, fingerprint, c->next_generation + 1, 1, &findings);
    report_findings(&findings, report);
    fg_findings_free(&findings);
    if (!g) {
        fg_log(LOGGER, FG_ERROR, "reload refused: generation %d keeps serving", fg_generation_number(c->gen));
        free(specs);
        return -1;
    }
    c->next_generation++;
    char *changed = fg_generation_fingerprint_diff(fg_generation_fingerprint_of(c->gen), fg_generation_fingerprint_of(g));
    fg_log(LOGGER, FG_INFO, "reload: changed: %s; rebuilt: config, plugins and worker pool", changed);

    fg_generation *old = c->gen;
    c->gen = g;
    int moved = move_queued(c, old, g);
    retire(c, old);
    if (fg_server_apply_ports(c->server, specs, nspecs, report) > 0)
        fg_buf_puts(report, "WARNING: some ports could not be opened, see above\n");
    free(specs);
    point_tools_at_current(c);
    fg_log(LOGGER, FG_INFO, "reload: generation %d (%s backend) replaces generation %d (%s); %d queued messages moved to it",
           fg_generation_number(g), fg_generation_backend(g), fg_generation_number(old), fg_generation_backend(old),
           moved);
    fg_buf_printf(report, "OK: reloaded (generation %d)\nchanged: %s\n", fg_generation_number(g), changed);
    free(changed);
    return 0;
}

/* The control socket's reload command. */
static int control_reload(void *arg, fg_buf *out)
{
    return fg_controller_reload(arg, out);
}

/* ---- signals and shutdown ---- */

static void shutdown_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    fg_controller *c = arg;
    size_t pending = pending_total(c);
    size_t sessions = fg_server_session_count(c->server);
    if ((pending == 0 && sessions == 0) || fg_monotonic() > c->shutdown_deadline) {
        if (pending || sessions)
            fg_log(LOGGER, FG_WARNING, "shutdown deadline reached with %zu messages in progress and %zu sessions",
                   pending, sessions);
        event_base_loopexit(c->base, NULL);
    }
}

static void on_terminate(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    fg_controller *c = arg;
    if (c->shutdown_timer)
        return;
    fg_log(LOGGER, FG_INFO, "received signal %d, shutting down", (int)sig);
    fg_server_shutdown(c->server);
    fg_generation_stop(c->gen, 421, "4.3.2 Service shutting down, try again later");
    c->shutdown_deadline = fg_monotonic() + SHUTDOWN_GRACE_SECONDS;
    c->shutdown_timer = event_new(c->base, -1, EV_PERSIST, shutdown_tick, c);
    struct timeval tv = {0, 50000};
    event_add(c->shutdown_timer, &tv);
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    fg_controller *c = arg;
    if (c->shutdown_timer)
        return;
    fg_log(LOGGER, FG_INFO, "SIGHUP received: checking for changes");
    fg_buf report;
    fg_buf_init(&report);
    fg_controller_reload(c, &report);
    fg_buf_free(&report);
}

/* ---- life cycle ---- */

fg_controller *fg_controller_new(const fg_controller_opts *opts, char **err)
{
    fg_portspec *specs = NULL;
    size_t nspecs = 0;
    const fg_config *cfg = opts->cfg;
    if (fg_portspec_parse_list(fg_core_str(cfg, "main", "incomingport"), fg_core_str(cfg, "main", "bindaddress"),
                               &specs, &nspecs, err) != 0)
        return NULL;
    fg_controller *c = xcalloc(1, sizeof *c);
    c->o = *opts;
    c->base = event_base_new();
    if (!c->base)
        fg_panic("cannot create the event loop");
    /* monitoring: the counters exist before any worker state is created */
    c->stats = fg_stats_new();
    fg_server_opts so = {
        .base = c->base,
        .max_message_size = (size_t)fg_core_int(cfg, "main", "maxmessagesize"),
        .spill_threshold = (size_t)fg_core_int(cfg, "main", "spill_threshold"),
        .tempdir = fg_core_str(cfg, "main", "tempdir"),
        .smtp_timeout = (int)fg_core_int(cfg, "main", "smtp_timeout"),
        .data_timeout = (int)fg_core_int(cfg, "main", "data_timeout"),
        .scan_timeout = (int)fg_core_int(cfg, "main", "scan_timeout"),
        .max_connections = (size_t)fg_core_int(cfg, "main", "maxconnections"),
        .max_per_client = (size_t)fg_core_int(cfg, "main", "maxconnections_per_client"),
    };
    c->server = fg_server_new(&so);
    int failed = fg_server_apply_ports(c->server, specs, nspecs, NULL);
    free(specs);
    if (failed == (int)nspecs) {
        *err = xstrdup("no port could be opened, see the log");
        fg_controller_free(c);
        return NULL;
    }
    return c;
}

int fg_controller_start(fg_controller *c, int console, char **err)
{
    const fg_config *cfg = c->o.cfg;
    /* the spill files of an engine that was killed (kill -9, a crash) hold no message any more */
    char *serr = NULL;
    const char *tempdir = fg_core_str(cfg, "main", "tempdir");
    int stale = fg_msg_remove_stale(*tempdir ? tempdir : "/tmp", &serr);
    if (stale > 0)
        fg_log(LOGGER, FG_INFO, "removed %d stale spill file%s (" FG_MSG_SPILL_PREFIX "*) from %s", stale,
               stale == 1 ? "" : "s", *tempdir ? tempdir : "/tmp");
    else if (stale < 0)
        fg_log(LOGGER, FG_WARNING, "tempdir: %s", serr);
    free(serr);
    fg_findings shared = {0};
    controller_shared_dicts(c, cfg, &shared);
    size_t shared_errors = shared.errors;
    fg_findings_free(&shared);
    if (shared_errors) {
        *err = xstrdup("the [shared] dictionaries could not be created, see the log");
        return -2;
    }
    /* debugging: the controller console (--console) and the netconsole control command */
    c->console = fg_console_new(&(fg_console_opts){.base = c->base, .cfg = cfg, .luadir = c->o.luadir,
                                                      .stats = c->stats, .dicts = &c->dicts});
    if (console && fg_console_controller(c->console, err) != 0) {
        char *why = xasprintf("the console cannot load the plugins:\n%s", *err);
        free(*err);
        *err = why;
        return -1;
    }
    c->genv = (fg_generation_env){
        .config_path = c->o.config_path,
        .lua = {.luadir = c->o.luadir, .dicts = &c->dicts},
        .stats = c->stats,
        .exe_path = c->o.exe_path,
        .logging_conf = c->o.logging_conf,
        .base = c->base,
        .done = fg_server_job_done,
        .done_arg = c->server,
    };
    /* The first generation works on its own copy of the config: the start-up one stays as it was. */
    fg_findings findings = {0};
    char *lerr = NULL;
    fg_config *gen_cfg = fg_generation_load_config(c->o.config_path, &lerr);
    if (gen_cfg)
        c->gen = fg_generation_new(&c->genv, gen_cfg, fg_generation_fingerprint(gen_cfg, c->o.config_path, c->o.luadir),
                                   1, 0, &findings);
    if (!c->gen) {
        fg_buf why;
        fg_buf_init(&why);
        if (lerr)
            fg_buf_printf(&why, "%s\n", lerr);
        fg_findings_report(&findings, &why);
        fg_findings_free(&findings);
        free(lerr);
        fg_log(LOGGER, FG_CRITICAL, "Some plugins failed to load: %s", why.data ? why.data : "");
        *err = fg_buf_steal(&why, NULL);
        return -1;
    }
    fg_findings_free(&findings);
    c->next_generation = 1;
    c->reap_timer = event_new(c->base, -1, EV_PERSIST, reap_cb, c);
    fg_server_set_submit(c->server, submit_job, c);

    /* monitoring: control socket (after the privilege drop, so the run user owns it), MRTG, metrics */
    const char *controlport = fg_core_str(cfg, "main", "controlport");
    fg_control_env cenv = {.stats = c->stats, .reload = control_reload, .reload_arg = c, .console = c->console,
                           .allow_tcp_netconsole = fg_core_bool(cfg, "main", "controlport_allow_netconsole")};
    char *e = NULL;
    if (*controlport && !(c->control = fg_control_new(c->base, &cenv, controlport, &e))) {
        /* a daemon without its control socket cannot be reloaded or asked: not a silent loss */
        *err = xasprintf("control server not started: %s", e);
        fg_log(LOGGER, FG_CRITICAL, "%s", *err);
        free(e);
        return -2;
    }
    c->mrtg = fg_mrtg_new(c->base, c->stats, fg_core_str(cfg, "main", "mrtgdir"),
                          (double)fg_core_int(cfg, "main", "mrtg_interval"));
    const char *metricsport = fg_core_str(cfg, "main", "metricsport");
    if (*metricsport && !(c->metrics = fg_metrics_new(c->base, c->stats, metricsport, &e))) {
        fg_log(LOGGER, FG_ERROR, "metrics endpoint not started: %s", e);
        free(e);
    }
    point_tools_at_current(c);

    c->signals[0] = evsignal_new(c->base, SIGTERM, on_terminate, c);
    c->signals[1] = evsignal_new(c->base, SIGINT, on_terminate, c);
    c->signals[2] = evsignal_new(c->base, SIGHUP, on_hup, c);
    for (int i = 0; i < 3; i++)
        event_add(c->signals[i], NULL);

    if (console && fg_console_start_terminal(c->console, &e) != 0) {
        fg_log(LOGGER, FG_ERROR, "console not started: %s", e);
        free(e);
    }
    fg_log(LOGGER, FG_INFO, "FuGLU Version %s starting up (identifier %s, %s backend)", FUGLU_VERSION,
           fg_core_str(cfg, "main", "identifier"), fg_generation_backend(c->gen));
    return 0;
}

void fg_controller_run(fg_controller *c)
{
    event_base_dispatch(c->base);
}

int fg_controller_free(fg_controller *c)
{
    if (!c)
        return 1;
    fg_console_free(c->console); /* debugging */
    c->console = NULL;
    int clean = pending_total(c) == 0;
    fg_control_free(c->control);
    fg_mrtg_free(c->mrtg);
    fg_metrics_free(c->metrics);
    fg_server_free(c->server);
    for (int i = 0; i < 3; i++)
        if (c->signals[i])
            event_free(c->signals[i]);
    if (c->reap_timer)
        event_free(c->reap_timer);
    if (c->shutdown_timer)
        event_free(c->shutdown_timer);
    if (!clean)
        return 0;   /* workers may still touch the generations, the loop and the counters */
    fg_generation_free(c->gen);
    while (c->retired) {
        retired_generation *r = c->retired;
        c->retired = r->next;
        fg_generation_free(r->gen);
        free(r);
    }
    fg_stats_free(c->stats);
    fg_shdict_list_free_all(&c->dicts);
    event_base_free(c->base);
    free(c);
    return 1;
}
