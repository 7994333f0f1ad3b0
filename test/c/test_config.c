/* test_config: unit tests of the fuglu.conf reader (src/lib/config.c): RawConfigParser syntax, errors
 * with FILE:LINE, conf.d order, typed getters, core defaults and the unknown-option lint.
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
#include <unistd.h>

#include "lib/config.h"
#include "daemon/lint.h"
#include "lib/util.h"

/* Parses text that must be valid and returns the config. */
static fg_config *parse_ok(const char *text)
{
    fg_config *cfg = fg_config_new();
    char *err = NULL;
    int rc = fg_config_read_string(cfg, text, "t.conf", &err);
    if (rc != 0)
        fail_msg("unexpected parse error: %s", err);
    assert_null(err);
    return cfg;
}

/* Parses text that must fail and checks the error message equals `want`. */
static void parse_fails(const char *text, const char *want)
{
    fg_config *cfg = fg_config_new();
    char *err = NULL;
    assert_int_equal(fg_config_read_string(cfg, text, "bad.conf", &err), -1);
    assert_non_null(err);
    assert_string_equal(err, want);
    free(err);
    fg_config_free(cfg);
}

static void test_separators(void **state)
{
    (void)state;
    fg_config *cfg = parse_ok("[main]\n"
                              "a=1\n"
                              "b: two words \n"
                              "c  =  x:y=z  \n"
                              "d:e=f\n"
                              "e=\n");
    assert_string_equal(fg_config_get(cfg, "main", "a"), "1");
    assert_string_equal(fg_config_get(cfg, "main", "b"), "two words");
    assert_string_equal(fg_config_get(cfg, "main", "c"), "x:y=z");
    /* the first of '=' and ':' splits */
    assert_string_equal(fg_config_get(cfg, "main", "d"), "e=f");
    assert_string_equal(fg_config_get(cfg, "main", "e"), "");
    assert_null(fg_config_get(cfg, "main", "missing"));
    assert_null(fg_config_get(cfg, "nosuch", "a"));
    fg_config_free(cfg);
}

static void test_case_rules(void **state)
{
    (void)state;
    fg_config *cfg = parse_ok("[Main]\nPlugIns = X\n[main]\nplugins = y\n");
    assert_string_equal(fg_config_get(cfg, "Main", "plugins"), "X");
    assert_string_equal(fg_config_get(cfg, "Main", "PLUGINS"), "X");
    assert_string_equal(fg_config_get(cfg, "main", "Plugins"), "y");
    assert_true(fg_config_has_section(cfg, "Main"));
    assert_false(fg_config_has_section(cfg, "MAIN"));
    assert_int_equal(fg_config_section_count(cfg), 2);
    /* option names are stored lower-cased */
    assert_string_equal(fg_config_option_name(cfg, 0, 0), "plugins");
    fg_config_free(cfg);
}

static void test_comments_and_blanks(void **state)
{
    (void)state;
    fg_config *cfg = parse_ok("# comment\n"
                              "; another\n"
                              "\n"
                              "[s]\n"
                              "   # indented comment\n"
                              "a = 1 # not a comment\n"
                              "\t; indented semicolon comment\n"
                              "\n"
                              "b = 2\r\n");
    assert_string_equal(fg_config_get(cfg, "s", "a"), "1 # not a comment");
    assert_string_equal(fg_config_get(cfg, "s", "b"), "2");
    assert_int_equal(fg_config_option_count(cfg, 0), 2);
    fg_config_free(cfg);
}

static void test_continuation(void **state)
{
    (void)state;
    fg_config *cfg = parse_ok("[s]\n"
                              "list = a,\n"
                              "   b,\n"
                              "# a comment inside does not end the value\n"
                              "\tc\n"
                              "\n"
                              "  d\n"
                              "\n"
                              "next=x\n"
                              "empty=\n"
                              "  first\n"
                              "  second\n");
    assert_string_equal(fg_config_get(cfg, "s", "list"), "a,\nb,\nc\n\nd");
    assert_string_equal(fg_config_get(cfg, "s", "next"), "x");
    assert_string_equal(fg_config_get(cfg, "s", "empty"), "first\nsecond");
    fg_config_free(cfg);
}

static void test_indented_option_after_header(void **state)
{
    (void)state;
    /* After a header there is no option to continue, so an indented line is an option. */
    fg_config *cfg = parse_ok("[s]\n  a = 1\n  b = 2\n");
    assert_string_equal(fg_config_get(cfg, "s", "a"), "1");
    assert_string_equal(fg_config_get(cfg, "s", "b"), "2");
    fg_config_free(cfg);
}

static void test_errors(void **state)
{
    (void)state;
    parse_fails("a = 1\n", "bad.conf:1: option outside any [section]: 'a = 1' (add a header such as [main] above it)");
    parse_fails("[main]\nx=1\njunk line\n",
                "bad.conf:3: expected '[section]', 'option = value' or a comment, got 'junk line'");
    parse_fails("# c\n[main\n", "bad.conf:2: unterminated section header '[main': expected ']' at the end");
    parse_fails("[main] junk\n", "bad.conf:1: unexpected text after section header '[main] junk'");
    parse_fails("[]\n", "bad.conf:1: empty section name '[]'");
    parse_fails("[s]\n = v\n", "bad.conf:2: missing option name before 'v'");
    parse_fails("[s]\na=1\nA=2\n",
                "bad.conf:3: option 'a' appears twice in section [s] of this file (first at line 2)");
    parse_fails("[s]\na=1\n[t]\n[s]\n", "bad.conf:4: section [s] appears twice in this file (first at line 1)");
}

static void test_error_keeps_config_unchanged(void **state)
{
    (void)state;
    fg_config *cfg = parse_ok("[main]\na = old\n");
    char *err = NULL;
    assert_int_equal(fg_config_read_string(cfg, "[main]\na = new\nb = 1\nbroken\n", "x.conf", &err), -1);
    assert_non_null(err);
    assert_true(strncmp(err, "x.conf:4: ", 10) == 0);
    free(err);
    assert_string_equal(fg_config_get(cfg, "main", "a"), "old");
    assert_null(fg_config_get(cfg, "main", "b"));
    fg_config_free(cfg);
}

static void test_header_with_trailing_comment(void **state)
{
    (void)state;
    fg_config *cfg = parse_ok("[a]   # comment\nx=1\n[b];c\ny=2\n");
    assert_string_equal(fg_config_get(cfg, "a", "x"), "1");
    assert_string_equal(fg_config_get(cfg, "b", "y"), "2");
    fg_config_free(cfg);
}

static void test_override_and_origin(void **state)
{
    (void)state;
    fg_config *cfg = fg_config_new();
    char *err = NULL;
    assert_int_equal(fg_config_read_string(cfg, "[main]\na=1\nb=2\n", "one.conf", &err), 0);
    assert_int_equal(fg_config_read_string(cfg, "[other]\nz=9\n[main]\n\nb=3\nc=4\n", "two.conf", &err), 0);
    assert_string_equal(fg_config_get(cfg, "main", "a"), "1");
    assert_string_equal(fg_config_get(cfg, "main", "b"), "3");
    assert_string_equal(fg_config_origin(cfg, "main", "a"), "one.conf:2");
    assert_string_equal(fg_config_origin(cfg, "main", "B"), "two.conf:5");
    assert_string_equal(fg_config_origin(cfg, "other", "z"), "two.conf:2");
    assert_null(fg_config_origin(cfg, "main", "nosuch"));
    /* first-seen order is kept */
    assert_string_equal(fg_config_section_name(cfg, 0), "main");
    assert_string_equal(fg_config_section_name(cfg, 1), "other");
    assert_null(fg_config_section_name(cfg, 2));
    assert_string_equal(fg_config_option_name(cfg, 0, 1), "b");
    assert_string_equal(fg_config_option_value(cfg, 0, 1), "3");
    assert_string_equal(fg_config_option_name(cfg, 0, 2), "c");
    assert_null(fg_config_option_name(cfg, 0, 3));
    assert_int_equal(fg_config_option_count(cfg, 7), 0);
    /* values set by code have no origin */
    fg_config_set(cfg, "main", "a", "5");
    assert_string_equal(fg_config_get(cfg, "main", "a"), "5");
    assert_null(fg_config_origin(cfg, "main", "a"));
    fg_config_free(cfg);
}

static void test_set_default(void **state)
{
    (void)state;
    fg_config *cfg = parse_ok("[main]\nplugins=mine\n");
    fg_config_set_default(cfg, "main", "Plugins", "theirs");
    fg_config_set_default(cfg, "main", "tempdir", "/var/tmp");
    fg_config_set_default(cfg, "new", "x", "y");
    assert_string_equal(fg_config_get(cfg, "main", "plugins"), "mine");
    assert_string_equal(fg_config_get(cfg, "main", "tempdir"), "/var/tmp");
    assert_string_equal(fg_config_get(cfg, "new", "x"), "y");
    assert_true(fg_config_has_section(cfg, "new"));
    fg_config_free(cfg);
}

static void test_default_section_fallback(void **state)
{
    (void)state;
    fg_config *cfg = parse_ok("[DEFAULT]\nshared=1\n[s]\nown=2\n");
    assert_string_equal(fg_config_get(cfg, "s", "shared"), "1");
    assert_string_equal(fg_config_get(cfg, "s", "own"), "2");
    assert_null(fg_config_get(cfg, "nosuch", "shared"));
    fg_config_free(cfg);
}

static void test_parse_bool(void **state)
{
    (void)state;
    const char *truthy[] = { "1", "yes", "true", "on", "YES", " True ", "oN" };
    const char *falsy[] = { "0", "no", "false", "off", "NO", "\tFalse", "OFF" };
    const char *garbage[] = { "", "2", "y", "n", "enabled", "truee", "-1", "o n" };
    for (size_t i = 0; i < sizeof(truthy) / sizeof(truthy[0]); i++) {
        bool b = false;
        assert_int_equal(fg_parse_bool(truthy[i], &b), 0);
        assert_true(b);
    }
    for (size_t i = 0; i < sizeof(falsy) / sizeof(falsy[0]); i++) {
        bool b = true;
        assert_int_equal(fg_parse_bool(falsy[i], &b), 0);
        assert_false(b);
    }
    for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
        bool b = true;
        assert_int_equal(fg_parse_bool(garbage[i], &b), -1);
    }
    assert_int_equal(fg_parse_bool(NULL, &(bool){ false }), -1);
}

static void test_typed_getters(void **state)
{
    (void)state;
    fg_config *cfg = parse_ok("[s]\n"
                              "i = 42\n"
                              "neg = -7\n"
                              "badint = 12abc\n"
                              "emptyint =\n"
                              "huge = 99999999999999999999999\n"
                              "b = Yes\n"
                              "badbool = maybe\n"
                              "d = 2.5\n"
                              "dexp = 1e3\n"
                              "baddouble = 1.5.6\n"
                              "hexdouble = 0x10\n");
    char *err = NULL;
    long l = 0;
    assert_int_equal(fg_config_get_int(cfg, "s", "i", 1, &l, &err), 0);
    assert_int_equal(l, 42);
    assert_int_equal(fg_config_get_int(cfg, "s", "NEG", 1, &l, &err), 0);
    assert_int_equal(l, -7);
    assert_int_equal(fg_config_get_int(cfg, "s", "missing", 17, &l, &err), 0);
    assert_int_equal(l, 17);
    assert_null(err);
    assert_int_equal(fg_config_get_int(cfg, "s", "badint", 3, &l, &err), -1);
    assert_int_equal(l, 3);
    assert_string_equal(err, "t.conf:4: [s] badint: '12abc' is not an integer");
    free(err);
    err = NULL;
    assert_int_equal(fg_config_get_int(cfg, "s", "emptyint", 3, &l, &err), -1);
    assert_string_equal(err, "t.conf:5: [s] emptyint: '' is not an integer");
    free(err);
    err = NULL;
    assert_int_equal(fg_config_get_int(cfg, "s", "huge", 3, &l, &err), -1);
    free(err);
    err = NULL;

    bool b = false;
    assert_int_equal(fg_config_get_bool(cfg, "s", "b", false, &b, &err), 0);
    assert_true(b);
    assert_int_equal(fg_config_get_bool(cfg, "s", "missing", true, &b, &err), 0);
    assert_true(b);
    assert_int_equal(fg_config_get_bool(cfg, "s", "badbool", false, &b, &err), -1);
    assert_false(b);
    assert_string_equal(err,
                        "t.conf:8: [s] badbool: 'maybe' is not a boolean (use 1/yes/true/on or 0/no/false/off)");
    free(err);
    err = NULL;

    double d = 0;
    assert_int_equal(fg_config_get_double(cfg, "s", "d", 0, &d, &err), 0);
    assert_true(d == 2.5);
    assert_int_equal(fg_config_get_double(cfg, "s", "dexp", 0, &d, &err), 0);
    assert_true(d == 1000.0);
    assert_int_equal(fg_config_get_double(cfg, "s", "i", 0, &d, &err), 0);
    assert_true(d == 42.0);
    assert_int_equal(fg_config_get_double(cfg, "s", "missing", 0.25, &d, &err), 0);
    assert_true(d == 0.25);
    assert_int_equal(fg_config_get_double(cfg, "s", "baddouble", 0, &d, &err), -1);
    assert_string_equal(err, "t.conf:11: [s] baddouble: '1.5.6' is not a number");
    free(err);
    err = NULL;
    assert_int_equal(fg_config_get_double(cfg, "s", "hexdouble", 0, &d, &err), -1);
    free(err);
    err = NULL;

    /* without an origin the message has no FILE:LINE */
    fg_config_set(cfg, "s", "coded", "nope");
    assert_int_equal(fg_config_get_int(cfg, "s", "coded", 0, &l, &err), -1);
    assert_string_equal(err, "[s] coded: 'nope' is not an integer");
    free(err);
    /* err may be NULL */
    assert_int_equal(fg_config_get_int(cfg, "s", "coded", 0, &l, NULL), -1);
    fg_config_free(cfg);
}

static const char *find_default(const char *section, const char *option)
{
    for (const fg_config_default *d = fg_core_defaults; d->section; d++)
        if (strcmp(d->section, section) == 0 && strcmp(d->option, option) == 0)
            return d->value;
    return NULL;
}

static void test_defaults_table(void **state)
{
    (void)state;
    size_t count = 0;
    for (const fg_config_default *d = fg_core_defaults; d->section; d++, count++) {
        assert_non_null(d->option);
        assert_non_null(d->value);
        assert_non_null(d->description);
        assert_true(strlen(d->description) > 10);
        /* option names are lower-case like the parser stores them */
        for (const char *c = d->option; *c; c++)
            assert_false(*c >= 'A' && *c <= 'Z');
    }
    assert_true(count > 60);
    assert_null(find_default("main", "versioncheck"));
    assert_string_equal(find_default("main", "prependers"), "debug,skip");
    assert_string_equal(find_default("main", "plugins"), "archive,attachment,clamav,spamassassin");
    assert_string_equal(find_default("main", "incomingport"), "10025,10099,10888");
    assert_string_equal(find_default("main", "maxmessagesize"), "52428800");
    assert_string_equal(find_default("main", "spill_threshold"), "1048576");
    assert_string_equal(find_default("main", "logfile"), "");
    assert_string_equal(find_default("performance", "att_mgr_cachesize"), "50000000");
    assert_string_equal(find_default("virus", "defaultvirusaction"), "DELETE");
    assert_string_equal(find_default("smtpconnector", "requeuetemplate"), "FUGLU REQUEUE(${id}): ${injectanswer}");
    assert_string_equal(find_default("PluginAlias", "spamassassin"), "spamassassin");
    assert_string_equal(find_default("PluginAlias", "killer"), "killer");
    assert_non_null(find_default("databaseconfig", "sql"));
    assert_non_null(find_default("environment", "trustedhostsregex"));
}

static void test_apply_core_defaults(void **state)
{
    (void)state;
    fg_config *cfg = parse_ok("[main]\nplugins = attachment\n[PluginAlias]\nclamav = myclam\n");
    fg_config_apply_core_defaults(cfg);
    assert_string_equal(fg_config_get(cfg, "main", "plugins"), "attachment");
    assert_string_equal(fg_config_origin(cfg, "main", "plugins"), "t.conf:2");
    assert_string_equal(fg_config_get(cfg, "main", "prependers"), "debug,skip");
    assert_null(fg_config_origin(cfg, "main", "prependers"));
    assert_string_equal(fg_config_get(cfg, "PluginAlias", "clamav"), "myclam");
    assert_string_equal(fg_config_get(cfg, "PluginAlias", "debug"), "debug");
    assert_string_equal(fg_config_get(cfg, "performance", "backend"), "thread");
    assert_true(fg_config_has_section(cfg, "esmtpconnector"));
    assert_null(fg_config_get(cfg, "main", "versioncheck"));
    fg_config_free(cfg);
}

typedef struct lint_log {
    int calls;
    char msgs[8][200];
} lint_log;

static void lint_collect(void *arg, const char *msg)
{
    lint_log *log = arg;
    if (log->calls < 8)
        snprintf(log->msgs[log->calls], sizeof(log->msgs[0]), "%s", msg);
    log->calls++;
}

static void test_lint_unknown(void **state)
{
    (void)state;
    fg_config *cfg = parse_ok("[main]\n"
                              "plugins = a\n"
                              "plugnis = typo\n"
                              "versioncheck = 1\n"
                              "[performance]\n"
                              "maxthreads = 3\n"
                              "threads = 4\n"
                              "[PluginAlias]\n"
                              "myalias = x\n"
                              "[KillerPlugin]\n"
                              "whatever = 1\n"
                              "[Main]\n"
                              "other = 1\n");
    fg_config_apply_core_defaults(cfg);
    lint_log log = { 0 };
    assert_int_equal(fg_config_lint_unknown(cfg, lint_collect, &log), 3);
    assert_int_equal(log.calls, 3);
    assert_string_equal(log.msgs[0], "t.conf:3: unknown option 'plugnis' in section [main]");
    assert_non_null(strstr(log.msgs[1], "t.conf:4: unknown option 'versioncheck' in section [main]"));
    assert_non_null(strstr(log.msgs[1], "DNS"));
    assert_string_equal(log.msgs[2], "t.conf:7: unknown option 'threads' in section [performance]");

    fg_config *clean = fg_config_new();
    fg_config_apply_core_defaults(clean);
    lint_log none = { 0 };
    assert_int_equal(fg_config_lint_unknown(clean, lint_collect, &none), 0);
    assert_int_equal(none.calls, 0);
    fg_config_free(clean);
    fg_config_free(cfg);
}

/* ---- files ---- */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static void test_read_file_errors(void **state)
{
    (void)state;
    char dir[] = "/tmp/fg_test_config.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *path = xasprintf("%s/fuglu.conf", dir);
    fg_config *cfg = fg_config_new();
    char *err = NULL;
    assert_int_equal(fg_config_read_file(cfg, path, &err), -1);
    char *want = xasprintf("%s: cannot open: No such file or directory", path);
    assert_string_equal(err, want);
    free(want);
    free(err);
    err = NULL;

    write_file(path, "[main]\n\nnonsense\n");
    assert_int_equal(fg_config_read_file(cfg, path, &err), -1);
    want = xasprintf("%s:3: expected '[section]', 'option = value' or a comment, got 'nonsense'", path);
    assert_string_equal(err, want);
    free(want);
    free(err);
    err = NULL;

    write_file(path, "[main]\nx = 1\n");
    assert_int_equal(fg_config_read_file(cfg, path, &err), 0);
    want = xasprintf("%s:2", path);
    assert_string_equal(fg_config_origin(cfg, "main", "x"), want);
    free(want);

    fg_config_free(cfg);
    assert_int_equal(unlink(path), 0);
    free(path);
    assert_int_equal(rmdir(dir), 0);
}

static void test_load_confd(void **state)
{
    (void)state;
    char dir[] = "/tmp/fg_test_config.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *main_path = xasprintf("%s/fuglu.conf", dir);
    char *confd = xasprintf("%s/conf.d", dir);
    /* Files named so that directory order and sorted order are likely to differ. */
    const char *names[] = { "b.conf", "10-x.conf", "a.conf", "Z.conf", "ignored.txt", ".hidden.conf" };
    const char *texts[] = {
        "[main]\norder = b\nfromb = 1\n",
        "[main]\norder = 10-x\n",
        "[main]\norder = a\n",
        "[main]\norder = Z\n",
        "[main]\norder = txt\n",
        "[main]\nhidden = 1\n",
    };
    write_file(main_path, "[main]\norder = main\nonlymain = 1\n");

    /* no conf.d at all is fine */
    fg_config *cfg = fg_config_new();
    char *err = NULL;
    assert_int_equal(fg_config_load(cfg, main_path, true, &err), 0);
    assert_string_equal(fg_config_get(cfg, "main", "order"), "main");
    fg_config_free(cfg);

    assert_int_equal(mkdir(confd, 0700), 0);
    for (size_t i = 0; i < 6; i++) {
        char *p = xasprintf("%s/%s", confd, names[i]);
        write_file(p, texts[i]);
        free(p);
    }
    cfg = fg_config_new();
    assert_int_equal(fg_config_load(cfg, main_path, true, &err), 0);
    /* strcmp order: "10-x" < "Z" < "a" < "b", so b.conf is read last */
    assert_string_equal(fg_config_get(cfg, "main", "order"), "b");
    assert_string_equal(fg_config_get(cfg, "main", "onlymain"), "1");
    assert_null(fg_config_get(cfg, "main", "hidden"));
    char *want = xasprintf("%s/b.conf:2", confd);
    assert_string_equal(fg_config_origin(cfg, "main", "order"), want);
    free(want);
    fg_config_free(cfg);

    /* without conf.d only the main file counts */
    cfg = fg_config_new();
    assert_int_equal(fg_config_load(cfg, main_path, false, &err), 0);
    assert_string_equal(fg_config_get(cfg, "main", "order"), "main");
    assert_null(fg_config_get(cfg, "main", "fromb"));
    fg_config_free(cfg);

    /* an error in a conf.d file is reported with its name and line */
    char *broken = xasprintf("%s/c.conf", confd);
    write_file(broken, "[main]\n\n\noops\n");
    cfg = fg_config_new();
    assert_int_equal(fg_config_load(cfg, main_path, true, &err), -1);
    want = xasprintf("%s:4: expected '[section]', 'option = value' or a comment, got 'oops'", broken);
    assert_string_equal(err, want);
    free(want);
    free(err);
    fg_config_free(cfg);
    assert_int_equal(unlink(broken), 0);
    free(broken);

    for (size_t i = 0; i < 6; i++) {
        char *p = xasprintf("%s/%s", confd, names[i]);
        assert_int_equal(unlink(p), 0);
        free(p);
    }
    assert_int_equal(rmdir(confd), 0);
    assert_int_equal(unlink(main_path), 0);
    assert_int_equal(rmdir(dir), 0);
    free(confd);
    free(main_path);
}

/* conf/fuglu.conf.dist must parse, hold only known core options and show every core default. */
static void test_dist_file_matches_defaults(void **state)
{
    (void)state;
    const char *path = "conf/fuglu.conf.dist";
    if (access(path, R_OK) != 0)
        skip(); /* run from the repository root to check the file */
    fg_config *cfg = fg_config_new();
    char *err = NULL;
    if (fg_config_read_file(cfg, path, &err) != 0)
        fail_msg("%s", err);
    lint_log log = { 0 };
    int unknown = fg_config_lint_unknown(cfg, lint_collect, &log);
    if (unknown != 0)
        fail_msg("%s", log.msgs[0]);
    for (const fg_config_default *d = fg_core_defaults; d->section; d++) {
        const char *v = fg_config_get(cfg, d->section, d->option);
        if (!v)
            fail_msg("[%s] %s is missing from %s", d->section, d->option, path);
        if (strcmp(v, d->value) != 0)
            fail_msg("[%s] %s is '%s' in %s but '%s' in the code", d->section, d->option, v, path, d->value);
    }
    fg_config_free(cfg);
}

/* ---- the table of core options: types, bounds, the getters ---- */

typedef struct collected {
    int n;
    char msgs[8][256];
} collected;

static void collect(void *arg, const char *msg)
{
    collected *c = arg;
    if (c->n < 8)
        snprintf(c->msgs[c->n], sizeof c->msgs[0], "%s", msg);
    c->n++;
}

static void test_core_table_types_and_getters(void **state)
{
    (void)state;
    /* every typed entry has sane bounds and a default that passes them */
    for (const fg_config_default *d = fg_core_defaults; d->section; d++) {
        if (d->type == FG_OPT_INT || d->type == FG_OPT_DOUBLE) {
            double v = strtod(d->value, NULL);
            assert_true(d->min <= v && v <= d->max);
        }
        if (d->type == FG_OPT_BOOL) {
            bool b;
            assert_int_equal(fg_parse_bool(d->value, &b), 0);
        }
    }
    assert_null(fg_core_option("main", "no_such_option"));
    assert_non_null(fg_core_option("main", "scan_timeout"));

    fg_config *cfg = parse_ok("[main]\nscan_timeout = 7\nspamstatusheader = no\nreinject_timeout = 2.5\n");
    fg_config_apply_core_defaults(cfg);
    assert_int_equal(fg_core_int(cfg, "main", "scan_timeout"), 7);
    assert_int_equal(fg_core_int(cfg, "main", "smtp_timeout"), 300);      /* the table's default */
    assert_false(fg_core_bool(cfg, "main", "spamstatusheader"));
    assert_true(fg_core_double(cfg, "main", "reinject_timeout") == 2.5);
    assert_string_equal(fg_core_str(cfg, "performance", "backend"), "thread");
    collected c = {0};
    assert_int_equal(fg_config_check_core(cfg, collect, &c), 0);
    fg_config_free(cfg);

    cfg = parse_ok("[main]\nscan_timeout = -1\nsmtp_timeout = soon\ndaemonize = maybe\n"
                   "outgoingport = 70000\n");
    fg_config_apply_core_defaults(cfg);
    assert_int_equal(fg_config_check_core(cfg, collect, &c), 4);
    assert_string_equal(c.msgs[0], "t.conf:4: [main] daemonize: 'maybe' is not a boolean (use 1/yes/true/on or "
                                   "0/no/false/off)");
    assert_string_equal(c.msgs[1], "t.conf:5: [main] outgoingport: 70000 is out of range (1 to 65535)");
    assert_string_equal(c.msgs[2], "t.conf:3: [main] smtp_timeout: 'soon' is not an integer");
    assert_string_equal(c.msgs[3], "t.conf:2: [main] scan_timeout: -1 is out of range (0 to 86400)");
    /* a refused value reads as the default (the check refuses the config before it is used) */
    assert_int_equal(fg_core_int(cfg, "main", "scan_timeout"), 300);
    assert_int_equal(fg_core_int(cfg, "main", "outgoingport"), 10026);
    fg_config_free(cfg);
}

static void test_lint_findings(void **state)
{
    (void)state;
    fg_findings f = {0};
    fg_findings_add_located(&f, FG_FINDING_ERROR, "/etc/fuglu/fuglu.conf:12: [main] x: 'y' is not an integer");
    fg_findings_add_line(&f, "WARNING: conf/logging.conf not found");
    fg_findings_add_line(&f, "Linting main configuration");
    fg_findings_add_located(&f, FG_FINDING_ERROR, "no location: here");
    fg_findings_add_transcript(&f, FG_FINDING_ERROR, "Error in file 'a', lineno 3", "Error in file 'a', lineno 3");
    assert_int_equal(f.count, 5);
    assert_int_equal(f.errors, 3);
    assert_string_equal(f.items[0].where, "/etc/fuglu/fuglu.conf:12");
    assert_string_equal(f.items[0].message, "[main] x: 'y' is not an integer");
    assert_int_equal(f.items[1].severity, FG_FINDING_WARNING);
    assert_null(f.items[1].where);
    assert_int_equal(f.items[2].severity, FG_FINDING_INFO);
    assert_null(f.items[3].where);
    fg_buf b;
    fg_buf_init(&b);
    fg_findings_report(&f, &b);   /* a reload's report: no progress lines */
    assert_string_equal(b.data, "ERROR: /etc/fuglu/fuglu.conf:12: [main] x: 'y' is not an integer\n"
                                "WARNING: conf/logging.conf not found\n"
                                "ERROR: no location: here\n"
                                "ERROR: Error in file 'a', lineno 3\n");
    fg_buf_free(&b);
    fg_findings_free(&f);
    assert_int_equal(f.count, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_separators),
        cmocka_unit_test(test_case_rules),
        cmocka_unit_test(test_comments_and_blanks),
        cmocka_unit_test(test_continuation),
        cmocka_unit_test(test_indented_option_after_header),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_error_keeps_config_unchanged),
        cmocka_unit_test(test_header_with_trailing_comment),
        cmocka_unit_test(test_override_and_origin),
        cmocka_unit_test(test_set_default),
        cmocka_unit_test(test_default_section_fallback),
        cmocka_unit_test(test_parse_bool),
        cmocka_unit_test(test_typed_getters),
        cmocka_unit_test(test_defaults_table),
        cmocka_unit_test(test_apply_core_defaults),
        cmocka_unit_test(test_lint_unknown),
        cmocka_unit_test(test_read_file_errors),
        cmocka_unit_test(test_load_confd),
        cmocka_unit_test(test_dist_file_matches_defaults),
        cmocka_unit_test(test_core_table_types_and_getters),
        cmocka_unit_test(test_lint_findings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
