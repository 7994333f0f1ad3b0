/* test_log: unit tests of logging.conf parsing (src/log/log_conf.c, src/log/log_args.c), the formatter
 * (src/log/log_format.c) and the logger hierarchy with level inheritance and propagation (src/log/log.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log/log.h"
#include "log/log_args.h"
#include "log/log_conf.h"
#include "lib/util.h"

static char tmpdir[64];

static int setup_tmpdir(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/fuglu-test-log-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    return 0;
}

static int teardown_tmpdir(void **state)
{
    (void)state;
    char *cmd = xasprintf("rm -rf '%s'", tmpdir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    return 0;
}

static fg_log_conf *conf_ok(const char *text)
{
    char *err = NULL;
    fg_log_conf *c = fg_log_conf_read_string(text, "t.conf", &err);
    if (!c)
        fail_msg("unexpected error: %s", err);
    return c;
}

static void conf_fails(const char *text, const char *want)
{
    char *err = NULL;
    fg_log_conf *c = fg_log_conf_read_string(text, "bad.conf", &err);
    assert_null(c);
    assert_non_null(err);
    assert_string_equal(err, want);
    free(err);
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return xstrdup("");
    fg_buf b;
    fg_buf_init(&b);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        fg_buf_append(&b, chunk, n);
    fclose(f);
    return fg_buf_steal(&b, NULL);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int count_lines(const char *text)
{
    int n = 0;
    for (; *text; text++)
        n += *text == '\n';
    return n;
}

/* ---- the shipped logging.conf.dist ---- */

static void test_dist_file(void **state)
{
    (void)state;
    char *err = NULL;
    fg_log_conf *c = fg_log_conf_read_file("conf/logging.conf.dist", &err);
    if (!c)
        fail_msg("conf/logging.conf.dist: %s", err);
    assert_int_equal(c->n_loggers, 1);
    assert_string_equal(c->loggers[0].name, "");
    assert_int_equal(c->loggers[0].level, FG_INFO);
    assert_int_equal(c->n_handlers, 3);
    fg_log_handler *lf = c->handlers[0], *sl = c->handlers[1], *so = c->handlers[2];
    assert_int_equal(lf->kind, FG_LOGH_TIMED);
    assert_string_equal(lf->filename, "/var/log/fuglu/fuglu.log");
    assert_string_equal(lf->when, "MIDNIGHT");
    assert_int_equal(lf->backup_count, 14);
    assert_int_equal(lf->interval, 86400);
    assert_int_equal(sl->kind, FG_LOGH_SYSLOG);
    assert_string_equal(sl->sock_path, "/dev/log");
    assert_int_equal(sl->facility, 2);
    assert_int_equal(so->kind, FG_LOGH_STREAM);
    assert_int_equal(so->stream_fd, 1);
    assert_int_equal(c->loggers[0].n_handlers, 1);
    assert_int_equal(c->loggers[0].handlers[0], 0);
    fg_log_conf_free(c);
    assert_int_equal(fg_log_check_config("conf/logging.conf.dist", &err), 0);
}

/* Fuglu's dist structure with the example loggers activated, as the operations page describes. */
static const char *fuglu_structure =
    "[loggers]\nkeys=root,saplugin,attachment,bouncer\n\n"
    "[handlers]\nkeys=logfile,syslog,sysout\n\n"
    "[formatters]\nkeys=logfileformatter,syslogformatter\n\n"
    "[logger_root]\nlevel=INFO\nhandlers=logfile\n\n"
    "[logger_saplugin]\nlevel=DEBUG\nhandlers=logfile\npropagate=0\nqualname=fuglu.plugin.SAPlugin\n\n"
    "[logger_attachment]\nlevel=INFO\nhandlers=logfile,syslog\npropagate=0\nqualname=fuglu.plugin.FiletypePlugin\n\n"
    "[logger_bouncer]\nlevel=WARNING\nhandlers=\nqualname=fuglu.bouncer\n\n"
    "[handler_logfile]\nclass=handlers.TimedRotatingFileHandler\nlevel=NOTSET\n"
    "args=('/var/log/fuglu/fuglu.log','midnight',1,14)\nformatter=logfileformatter\n\n"
    "[handler_syslog]\nclass=handlers.SysLogHandler\nlevel=NOTSET\n"
    "args=('/dev/log',handlers.SysLogHandler.LOG_MAIL)\nformatter=syslogformatter\n\n"
    "[handler_sysout]\nclass=StreamHandler\nlevel=NOTSET\nformatter=logfileformatter\nargs=(sys.stdout,)\n\n"
    "[formatter_logfileformatter]\nformat=%(asctime)s %(name)-12s: %(levelname)s %(message)s\n\n"
    "[formatter_syslogformatter]\nformat=fuglu[%(process)d]: %(message)s\n";

static void test_fuglu_structure(void **state)
{
    (void)state;
    fg_log_conf *c = conf_ok(fuglu_structure);
    assert_int_equal(c->n_loggers, 4);
    const fg_log_logger *sa = fg_log_conf_logger(c, "fuglu.plugin.SAPlugin");
    assert_non_null(sa);
    assert_int_equal(sa->level, FG_DEBUG);
    assert_false(sa->propagate);
    assert_int_equal(sa->n_handlers, 1);
    const fg_log_logger *at = fg_log_conf_logger(c, "fuglu.plugin.FiletypePlugin");
    assert_int_equal(at->n_handlers, 2);
    assert_int_equal(at->handlers[1], 1);
    const fg_log_logger *b = fg_log_conf_logger(c, "fuglu.bouncer");
    assert_int_equal(b->level, FG_WARNING);
    assert_true(b->propagate);
    assert_int_equal(b->n_handlers, 0);
    fg_log_conf_free(c);
}

/* ---- every handler class ---- */

static fg_log_conf *one_handler(const char *klass, const char *args)
{
    char *text = xasprintf("[loggers]\nkeys=root\n[handlers]\nkeys=h\n[formatters]\nkeys=\n"
                           "[logger_root]\nhandlers=h\n[handler_h]\nclass=%s\nargs=%s\n", klass, args);
    fg_log_conf *c = conf_ok(text);
    free(text);
    assert_int_equal(c->n_handlers, 1);
    return c;
}

static void test_handler_classes(void **state)
{
    (void)state;
    fg_log_conf *c = one_handler("StreamHandler", "()");
    assert_int_equal(c->handlers[0]->kind, FG_LOGH_STREAM);
    assert_int_equal(c->handlers[0]->stream_fd, 2);
    assert_int_equal(c->loggers[0].level, FG_WARNING);   /* Python's root default */
    fg_log_conf_free(c);

    c = one_handler("logging.StreamHandler", "(sys.stderr,)");
    assert_int_equal(c->handlers[0]->stream_fd, 2);
    fg_log_conf_free(c);

    c = one_handler("FileHandler", "('/var/log/x.log', 'w')");
    assert_int_equal(c->handlers[0]->kind, FG_LOGH_FILE);
    assert_true(c->handlers[0]->truncate);
    assert_int_equal(c->handlers[0]->create_mode, 0);
    fg_log_conf_free(c);

    c = one_handler("handlers.WatchedFileHandler", "('/var/log/x.log',)");
    assert_int_equal(c->handlers[0]->kind, FG_LOGH_WATCHED);
    assert_false(c->handlers[0]->truncate);
    fg_log_conf_free(c);

    c = one_handler("handlers.RotatingFileHandler", "('/var/log/x.log', 'a', 1048576, 5)");
    assert_int_equal(c->handlers[0]->kind, FG_LOGH_ROTATING);
    assert_int_equal(c->handlers[0]->max_bytes, 1048576);
    assert_int_equal(c->handlers[0]->backup_count, 5);
    fg_log_conf_free(c);

    c = one_handler("logging.handlers.TimedRotatingFileHandler", "('/var/log/x.log', 'W3', 2, 4)");
    assert_int_equal(c->handlers[0]->kind, FG_LOGH_TIMED);
    assert_string_equal(c->handlers[0]->when, "W3");
    assert_int_equal(c->handlers[0]->weekday, 3);
    assert_int_equal(c->handlers[0]->interval, 2 * 7 * 86400);
    fg_log_conf_free(c);

    c = one_handler("handlers.TimedRotatingFileHandler", "('/var/log/x.log', 's', 10)");
    assert_string_equal(c->handlers[0]->when, "S");
    assert_int_equal(c->handlers[0]->interval, 10);
    fg_log_conf_free(c);

    c = one_handler("handlers.SysLogHandler", "(('127.0.0.1', 5140), SysLogHandler.LOG_LOCAL3)");
    assert_int_equal(c->handlers[0]->kind, FG_LOGH_SYSLOG);
    assert_string_equal(c->handlers[0]->host, "127.0.0.1");
    assert_int_equal(c->handlers[0]->port, 5140);
    assert_int_equal(c->handlers[0]->facility, 19);
    fg_log_conf_free(c);

    c = one_handler("handlers.SysLogHandler", "('/dev/log', 'mail')");
    assert_int_equal(c->handlers[0]->facility, 2);
    fg_log_conf_free(c);

    c = one_handler("handlers.SysLogHandler", "('/dev/log', LOG_MAIL)");
    assert_int_equal(c->handlers[0]->facility, 2);
    fg_log_conf_free(c);

    c = one_handler("handlers.SysLogHandler", "()");
    assert_string_equal(c->handlers[0]->host, "localhost");
    assert_int_equal(c->handlers[0]->port, 514);
    assert_int_equal(c->handlers[0]->facility, 1);
    fg_log_conf_free(c);

    static const struct {
        const char *klass;
        fg_log_handler_kind kind;
        int mode;
    } groups[] = {
        {"custom_handlers.GroupReadableRotatingFileHandler", FG_LOGH_ROTATING, 0640},
        {"custom_handlers.GroupWritableRotatingFileHandler", FG_LOGH_ROTATING, 0660},
        {"custom_handlers.GroupReadableTimedRotatingFileHandler", FG_LOGH_TIMED, 0640},
        {"custom_handlers.GroupWritableTimedRotatingFileHandler", FG_LOGH_TIMED, 0660},
    };
    for (size_t i = 0; i < 4; i++) {
        c = one_handler(groups[i].klass, "('/var/log/x.log',)");
        assert_int_equal(c->handlers[0]->kind, groups[i].kind);
        assert_int_equal(c->handlers[0]->create_mode, groups[i].mode);
        fg_log_conf_free(c);
    }

    c = one_handler("handlers.RotatingFileHandler", "()\nkwargs={'filename': 'rel.log', 'maxBytes': 10, 'backupCount': 1}");
    char cwd[512];
    assert_non_null(getcwd(cwd, sizeof cwd));
    char *abs = xasprintf("%s/rel.log", cwd);
    assert_string_equal(c->handlers[0]->filename, abs);
    free(abs);
    assert_int_equal(c->handlers[0]->max_bytes, 10);
    fg_log_conf_free(c);
}

/* ---- args literals ---- */

static void test_args_literals(void **state)
{
    (void)state;
    fg_log_value v;
    char *err = NULL;
    assert_int_equal(fg_log_args_parse("('a\\'b', \"c\\\\d\", -12, 0x1f, 2.5, None, True, (1, ('x',)), [], r'\\n' 'z')",
                                       &v, &err), 0);
    assert_int_equal(v.type, FG_LOGV_TUPLE);
    assert_int_equal(v.n, 10);
    assert_string_equal(v.items[0].s, "a'b");
    assert_string_equal(v.items[1].s, "c\\d");
    assert_int_equal(v.items[2].i, -12);
    assert_int_equal(v.items[3].i, 31);
    assert_true(v.items[4].type == FG_LOGV_FLOAT && v.items[4].f == 2.5);
    assert_int_equal(v.items[5].type, FG_LOGV_NONE);
    assert_true(v.items[6].type == FG_LOGV_BOOL && v.items[6].i == 1);
    assert_int_equal(v.items[7].type, FG_LOGV_TUPLE);
    assert_int_equal(v.items[7].items[1].type, FG_LOGV_TUPLE);
    assert_string_equal(v.items[7].items[1].items[0].s, "x");
    assert_int_equal(v.items[8].n, 0);
    assert_string_equal(v.items[9].s, "\\nz");
    fg_log_value_clear(&v);

    assert_int_equal(fg_log_args_parse("('/x')", &v, &err), 0);   /* (x) is not a tuple */
    assert_int_equal(v.type, FG_LOGV_STR);
    fg_log_value_clear(&v);
    assert_int_equal(fg_log_args_parse("(logging.handlers.SysLogHandler.LOG_LOCAL7, LOG_ERR)", &v, &err), 0);
    assert_int_equal(v.items[0].i, 23);
    assert_int_equal(v.items[1].i, 3);
    fg_log_value_clear(&v);

    static const struct {
        const char *text, *err;
    } bad[] = {
        {"(open('/etc/passwd'),)", "column 2: calls are not allowed: args is read as a literal, never evaluated"},
        {"(__import__,)", "column 2: '__import__' is not a literal (allowed: strings, numbers, tuples, None, True, "
                          "False, sys.stdout, sys.stderr, SysLogHandler.LOG_* constants)"},
        {"('a' + 'b',)", "column 6: expected ',' or ')'"},
        {"('abc", "column 6: string not closed"},
        {"(1, 2", "column 6: expected ',' or ')'"},
        {"(010,)", "column 2: not a valid number"},
        {"(1,) (2,)", "column 6: unexpected text after the value (an operator or a second value?)"},
        {"", "column 1: a value is missing"},
        {"{1: 2}", "column 2: dict keys must be strings"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err = NULL;
        assert_int_equal(fg_log_args_parse(bad[i].text, &v, &err), -1);
        assert_non_null(err);
        assert_string_equal(err, bad[i].err);
        free(err);
    }
}

/* ---- configuration errors carry FILE:LINE ---- */

static void test_conf_errors(void **state)
{
    (void)state;
    const char *head = "[loggers]\nkeys=root\n[handlers]\nkeys=h\n[formatters]\nkeys=\n[logger_root]\nhandlers=h\n";
    char *t;
#define HANDLER_FAILS(body, want)                                                                  \
    t = xasprintf("%s[handler_h]\n%s", head, body);                                               \
    conf_fails(t, want);                                                                           \
    free(t)
    HANDLER_FAILS("class=FileHandler\nargs=(os.system('x'),)\n",
                  "bad.conf:11: [handler_h] args: column 2: calls are not allowed: args is read as a "
                  "literal, never evaluated");
    HANDLER_FAILS("class=FileHandler\nargs=('/tmp/x.log')\n",
                  "bad.conf:11: [handler_h] args: must be a tuple, not a string (one value needs a trailing "
                  "comma: ('x',))");
    HANDLER_FAILS("class=handlers.SMTPHandler\nargs=()\n",
                  "bad.conf:10: [handler_h] class: handler class 'handlers.SMTPHandler' is not supported "
                  "(StreamHandler, FileHandler, NullHandler, handlers.WatchedFileHandler, "
                  "handlers.RotatingFileHandler, handlers.TimedRotatingFileHandler, handlers.SysLogHandler, "
                  "custom_handlers.Group{Readable,Writable}[Timed]RotatingFileHandler)");
    HANDLER_FAILS("class=handlers.TimedRotatingFileHandler\nargs=('/x.log', 'hourly')\n",
                  "bad.conf:11: [handler_h] args: invalid rollover interval 'hourly' (S, M, H, D, midnight or "
                  "W0-W6 with 0 = Monday)");
    HANDLER_FAILS("class=handlers.RotatingFileHandler\nargs=('/x.log', 'a', '10')\n",
                  "bad.conf:11: [handler_h] args: handlers.RotatingFileHandler: maxBytes must be an int, not a string");
    HANDLER_FAILS("class=FileHandler\nargs=('/x.log', 'a', None, False, None, 1)\n",
                  "bad.conf:11: [handler_h] args: FileHandler takes at most 5 arguments, 6 given");
    HANDLER_FAILS("class=FileHandler\nlevel=VERBOSE\nargs=('/x.log',)\n",
                  "bad.conf:11: [handler_h] level: unknown level 'VERBOSE' (DEBUG, INFO, WARNING, ERROR, CRITICAL or NOTSET)");
    HANDLER_FAILS("class=FileHandler\nformatter=nope\nargs=('/x.log',)\n",
                  "bad.conf:11: [handler_h] formatter: no formatter 'nope' in [formatters] keys");
    HANDLER_FAILS("class=handlers.SysLogHandler\nargs=('/dev/log', LOG_BOGUS)\n",
                  "bad.conf:11: [handler_h] args: column 14: 'LOG_BOGUS' is not a literal (allowed: strings, "
                  "numbers, tuples, None, True, False, sys.stdout, sys.stderr, SysLogHandler.LOG_* constants)");
    HANDLER_FAILS("level=INFO\n", "bad.conf:4: [handler_h] has no class option");
#undef HANDLER_FAILS
    conf_fails("[loggers]\nkeys=root,sa\n[handlers]\nkeys=\n[formatters]\nkeys=\n[logger_root]\nhandlers=\n",
               "bad.conf:2: [loggers] keys: [loggers] keys lists 'sa' but there is no section [logger_sa]");
    conf_fails("[loggers]\nkeys=root,sa\n[handlers]\nkeys=\n[formatters]\nkeys=\n[logger_root]\nhandlers=\n"
               "[logger_sa]\nlevel=DEBUG\nhandlers=\n",
               "bad.conf:2: [logger_sa] has no qualname option (the logger name, as qualname=fuglu.plugin.SAPlugin)");
    conf_fails("[loggers]\nkeys=sa\n[handlers]\nkeys=\n[formatters]\nkeys=\n",
               "bad.conf:2: [loggers] keys: must list root (keys=root,...)");
    conf_fails("[loggers]\nkeys=root\n[handlers]\nkeys=\n[formatters]\nkeys=\n[logger_root]\nhandlers=x\n",
               "bad.conf:8: [logger_root] handlers: no handler 'x' in [handlers] keys");
    conf_fails("[loggers]\nkeys=root\n[handlers]\nkeys=\n[formatters]\nkeys=f\n[logger_root]\nhandlers=\n"
               "[formatter_f]\nformat=%(asctime)s %(user)s\n",
               "bad.conf:10: [formatter_f] format: unknown field %(user) (known: asctime, name, levelname, "
               "levelno, message, process, processName, thread, threadName, module, filename, pathname, "
               "lineno, funcName, created, msecs, relativeCreated)");
    conf_fails("[loggers]\nkeys=root\n[handlers]\nkeys=\n[formatters]\nkeys=f\n[logger_root]\nhandlers=\n"
               "[formatter_f]\nformat=%(name)d\n",
               "bad.conf:10: [formatter_f] format: field %(name) is text: 'd' needs a number (use s)");
    conf_fails("[loggers]\nkeys=root,x\n[handlers]\nkeys=\n[formatters]\nkeys=\n[logger_root]\nhandlers=\n"
               "[logger_x]\nqualname=x\nhandlers=\npropagate=yes\n",
               "bad.conf:12: [logger_x] propagate: 'yes' is not an integer (0 or 1)");
}

/* ---- formatting ---- */

static void test_format_fields(void **state)
{
    (void)state;
    setenv("TZ", "UTC", 1);
    tzset();
    fg_log_record r = {.name = "fuglu.smtp", .level = FG_INFO, .message = "hello %s", .created = 1239210667.693,
                       .process = 4242, .thread = 140000, .thread_name = "worker-1",
                       .pathname = "src/lua/lua_worker.c", .func = "worker_run", .lineno = 77};
    static const struct {
        const char *fmt, *datefmt, *want;
    } cases[] = {
        {"%(asctime)s %(name)-12s: %(levelname)s %(message)s", NULL,
         "2009-04-08 17:11:07,693 fuglu.smtp  : INFO hello %s"},
        {"%(name)12s|%(name).5s|%(levelname)-8s|", NULL, "  fuglu.smtp|fuglu|INFO    |"},
        {"fuglu[%(process)d]: %(message)s", NULL, "fuglu[4242]: hello %s"},
        {"%(process)6d|%(process)-6d|%(process)06d|%(process)s", NULL, "  4242|4242  |004242|4242"},
        {"%(thread)d %(threadName)s", NULL, "140000 worker-1"},
        {"%(module)s %(filename)s %(pathname)s %(lineno)d %(funcName)s", NULL,
         "lua_worker lua_worker.c src/lua/lua_worker.c 77 worker_run"},
        {"%(levelno)s %(levelno)d %(msecs)d %(msecs)03d %(created)f %(created).1f", NULL,
         "20 20 693 693 1239210667.693000 1239210667.7"},
        {"%(asctime)s", "%d.%m.%Y %H:%M", "08.04.2009 17:11"},
        {"%(asctime)s", NULL, "2009-04-08 17:11:07,693"},   /* same second, the other format again */
        {"100%% %(processName)s", NULL, "100% MainProcess"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *err = NULL;
        fg_log_format *f = fg_log_format_compile(cases[i].fmt, cases[i].datefmt, &err);
        assert_non_null(f);
        fg_buf out;
        fg_buf_init(&out);
        fg_log_format_render(f, &r, &out);
        assert_string_equal(out.data, cases[i].want);
        fg_buf_free(&out);
        fg_log_format_free(f);
    }
    /* the text of a second is reused only within that second */
    fg_log_record later = r;
    later.created += 61.5;
    char *err = NULL;
    fg_log_format *a = fg_log_format_compile("%(asctime)s", NULL, &err);
    fg_buf when;
    fg_buf_init(&when);
    fg_log_format_render(a, &later, &when);
    assert_string_equal(when.data, "2009-04-08 17:12:09,193");
    fg_buf_free(&when);
    fg_log_format_free(a);
    r.level = 15;
    fg_log_format *f = fg_log_format_compile(NULL, NULL, &err);
    fg_log_format *g = fg_log_format_compile("%(levelname)s", NULL, &err);
    fg_buf out;
    fg_buf_init(&out);
    fg_log_format_render(f, &r, &out);
    assert_string_equal(out.data, "hello %s");
    fg_buf_clear(&out);
    fg_log_format_render(g, &r, &out);
    assert_string_equal(out.data, "Level 15");
    fg_buf_free(&out);
    fg_log_format_free(f);
    fg_log_format_free(g);
    assert_null(fg_log_format_compile("%s", NULL, &err));
    assert_string_equal(err, "'%s' at offset 0 has no field name (write %(message)s or %% for a literal %)");
    free(err);
}

/* ---- hierarchy and propagation through the running writer ---- */

static void test_hierarchy(void **state)
{
    (void)state;
    char *conf = xasprintf("%s/logging.conf", tmpdir);
    char *froot = xasprintf("%s/root.log", tmpdir), *fa = xasprintf("%s/a.log", tmpdir);
    char *fb = xasprintf("%s/b.log", tmpdir);
    char *text = xasprintf(
        "[loggers]\nkeys=root,a,ab,quiet,b\n[handlers]\nkeys=hroot,ha,hb\n[formatters]\nkeys=f\n"
        "[logger_root]\nlevel=INFO\nhandlers=hroot\n"
        "[logger_a]\nlevel=DEBUG\nhandlers=ha\npropagate=1\nqualname=a\n"
        "[logger_ab]\nhandlers=\nqualname=a.b\n"
        "[logger_quiet]\nlevel=ERROR\nhandlers=\nqualname=a.b.quiet\n"
        "[logger_b]\nlevel=DEBUG\nhandlers=hb\npropagate=0\nqualname=b\n"
        "[handler_hroot]\nclass=FileHandler\nargs=('%s',)\nformatter=f\n"
        "[handler_ha]\nclass=FileHandler\nargs=('%s',)\nformatter=f\n"
        "[handler_hb]\nclass=FileHandler\nlevel=INFO\nargs=('%s',)\nformatter=f\n"
        "[formatter_f]\nformat=%%(name)s %%(levelname)s %%(message)s\n",
        froot, fa, fb);
    write_file(conf, text);
    char *err = NULL;
    if (fg_log_load_config(conf, &err) != 0)
        fail_msg("%s", err);
    assert_false(fg_log_config_changed(conf));
    assert_true(fg_log_enabled("a.b.c", FG_DEBUG));     /* a.b has no level: a's DEBUG */
    assert_false(fg_log_enabled("a.b.quiet.x", FG_WARNING));
    assert_true(fg_log_enabled("a.b.quiet", FG_ERROR));
    assert_false(fg_log_enabled("ab", FG_DEBUG));       /* not a child of a */
    assert_false(fg_log_enabled("x", FG_DEBUG));
    assert_true(fg_log_enabled("x", FG_INFO));
    fg_log("a.b.c", FG_DEBUG, "one %d", 1);              /* -> ha and (propagating) hroot */
    fg_log("b.x", FG_DEBUG, "two");                      /* enabled, but hb takes INFO and up: nowhere */
    fg_log("b.x", FG_INFO, "three");                     /* -> hb only (propagate=0) */
    fg_log("x", FG_DEBUG, "four");                       /* disabled */
    fg_log("x", FG_WARNING, "five");                     /* -> hroot */
    fg_log("a.b.quiet", FG_WARNING, "six");              /* disabled by ERROR */
    fg_log_set_level("x.y", FG_DEBUG);
    assert_true(fg_log_enabled("x.y.z", FG_DEBUG));
    fg_log("x.y.z", FG_DEBUG, "seven");                  /* -> hroot */
    fg_log_shutdown();
    char *root = read_all(froot), *a = read_all(fa), *b = read_all(fb);
    assert_string_equal(root, "a.b.c DEBUG one 1\nx WARNING five\nx.y.z DEBUG seven\n");
    assert_string_equal(a, "a.b.c DEBUG one 1\n");
    assert_string_equal(b, "b.x INFO three\n");
    free(root);
    free(a);
    free(b);
    /* after shutdown: synchronous, built-in default, INFO */
    assert_false(fg_log_enabled("a", FG_DEBUG));
    free(text);
    free(conf);
    free(froot);
    free(fa);
    free(fb);
}

/* ---- reload: a broken file keeps the old configuration; change detection by content ---- */

static void test_reload(void **state)
{
    (void)state;
    char *conf = xasprintf("%s/reload.conf", tmpdir);
    char *log = xasprintf("%s/reload.log", tmpdir);
    char *good = xasprintf("[loggers]\nkeys=root\n[handlers]\nkeys=h\n[formatters]\nkeys=f\n"
                           "[logger_root]\nlevel=INFO\nhandlers=h\n"
                           "[handler_h]\nclass=FileHandler\nargs=('%s',)\nformatter=f\n"
                           "[formatter_f]\nformat=%%(levelname)s %%(message)s\n", log);
    write_file(conf, good);
    char *err = NULL;
    assert_true(fg_log_config_changed(conf));
    assert_int_equal(fg_log_load_config(conf, &err), 0);
    assert_false(fg_log_config_changed(conf));
    fg_log("fuglu.plugin.SAPlugin", FG_DEBUG, "hidden");
    write_file(conf, "[loggers]\nkeys=root\n[handlers]\nkeys=h\n[formatters]\nkeys=\n[logger_root]\nhandlers=h\n"
                     "[handler_h]\nclass=FileHandler\nargs=(open('x'),)\n");
    assert_true(fg_log_config_changed(conf));
    assert_int_equal(fg_log_load_config(conf, &err), -1);
    char *want = xasprintf("%s:11: [handler_h] args: column 2: calls are not allowed: args is read as a literal, "
                           "never evaluated", conf);
    assert_string_equal(err, want);
    free(want);
    free(err);
    assert_int_equal(fg_log_check_config(conf, &err), -1);
    free(err);
    fg_log("fuglu.x", FG_INFO, "still here");
    /* a handler whose file cannot be opened is an error too, and keeps the old configuration */
    write_file(conf, "[loggers]\nkeys=root\n[handlers]\nkeys=h\n[formatters]\nkeys=\n[logger_root]\nhandlers=h\n"
                     "[handler_h]\nclass=FileHandler\nargs=('/nonexistent-dir/x.log',)\n");
    assert_int_equal(fg_log_load_config(conf, &err), -1);
    want = xasprintf("%s:11: [handler_h] cannot open log file /nonexistent-dir/x.log: No such file or directory", conf);
    assert_string_equal(err, want);
    free(want);
    free(err);
    /* the admin raises one plugin to DEBUG */
    char *debug = xasprintf("[loggers]\nkeys=root,sa\n[handlers]\nkeys=h\n[formatters]\nkeys=f\n"
                            "[logger_root]\nlevel=INFO\nhandlers=h\n"
                            "[logger_sa]\nlevel=DEBUG\nhandlers=h\npropagate=0\nqualname=fuglu.plugin.SAPlugin\n"
                            "[handler_h]\nclass=FileHandler\nargs=('%s',)\nformatter=f\n"
                            "[formatter_f]\nformat=%%(levelname)s %%(name)s %%(message)s\n", log);
    write_file(conf, debug);
    assert_int_equal(fg_log_load_config(conf, &err), 0);
    fg_log("fuglu.plugin.SAPlugin", FG_DEBUG, "visible");
    fg_log("fuglu.plugin.ClamavPlugin", FG_DEBUG, "hidden");
    fg_log_shutdown();
    char *got = read_all(log);
    assert_string_equal(got, "INFO still here\nDEBUG fuglu.plugin.SAPlugin visible\n");
    free(got);
    free(good);
    free(debug);
    free(conf);
    free(log);
}

static void test_configure_fallback(void **state)
{
    (void)state;
    char *log = xasprintf("%s/simple.log", tmpdir);
    assert_int_equal(fg_log_configure(FG_WARNING, log), 0);
    assert_false(fg_log_enabled("fuglu.x", FG_INFO));
    fg_log("fuglu.x", FG_INFO, "no");
    fg_log("fuglu.x", FG_ERROR, "yes %s", "really");
    assert_int_equal(fg_log_configure(FG_INFO, "/nonexistent-dir/x.log"), -1);
    char *got = read_all(log);
    assert_int_equal(count_lines(got), 1);
    assert_non_null(strstr(got, " fuglu.x     : ERROR yes really\n"));
    free(got);
    fg_log_shutdown();
    free(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dist_file),
        cmocka_unit_test(test_fuglu_structure),
        cmocka_unit_test(test_handler_classes),
        cmocka_unit_test(test_args_literals),
        cmocka_unit_test(test_conf_errors),
        cmocka_unit_test(test_format_fields),
        cmocka_unit_test(test_hierarchy),
        cmocka_unit_test(test_reload),
        cmocka_unit_test(test_configure_fallback),
    };
    return cmocka_run_group_tests(tests, setup_tmpdir, teardown_tmpdir);
}
