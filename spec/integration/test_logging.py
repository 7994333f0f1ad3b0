"""Integration: logging.conf through the running daemon. Raising one plugin's logger to DEBUG with
a [logger_x] section + its key under [loggers], then SIGHUP, shows that plugin's debug lines while
everything else stays at INFO; a broken logging.conf on SIGHUP keeps the running configuration and
says why (FILE:LINE); --lint reports a broken logging.conf.

Needs the daemon to read logging.conf next to fuglu.conf (fg_log_load_config in main.c)."""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import unittest

from harness import (FUGLU_BIN, PLUGIN_DIR, SCALE, FugluCase, base_config, free_port, make_message, wait_for,
                     SmtpClient, _config_text)

PROBE_PLUGIN = '''-- LogProbePlugin: logs one line at DEBUG and one at INFO per message (logging tests).
local plugin = require "fuglu.plugin"
local actions = require "fuglu.actions"

local LogProbePlugin = plugin.scanner{
    name = "LogProbePlugin",
    description = "logs 'probe debug/info <subject>'",
}

function LogProbePlugin:examine(suspect)
    local subject = suspect:get_message_rep():header("Subject")[1] or ""
    self.logger:debug("probe debug %s", subject)
    self.logger:info("probe info %s", subject)
    return actions.DUNNO
end

return LogProbePlugin
'''


def logging_conf(logfile, probe_debug):
    """root INFO to logfile; the probe plugin's logger section active (DEBUG) or not (listed key
    missing, as in conf/logging.conf.dist)."""
    keys = "root,probe" if probe_debug else "root"
    return """[loggers]
keys=%s

[handlers]
keys=logfile

[formatters]
keys=plain

[logger_root]
level=INFO
handlers=logfile

[logger_probe]
level=DEBUG
handlers=logfile
propagate=0
qualname=fuglu.plugin.LogProbePlugin

[handler_logfile]
class=handlers.TimedRotatingFileHandler
level=NOTSET
args=('%s', 'midnight', 1, 14)
formatter=plain

[formatter_plain]
format=%%(name)s %%(levelname)s %%(message)s
""" % (keys, logfile)


class LoggingReload(FugluCase):

    @classmethod
    def prepare(cls, values):
        plugdir = os.path.join(cls.tmpdir, "plugins")
        os.makedirs(plugdir)
        with open(os.path.join(plugdir, "logprobe.lua"), "w") as f:
            f.write(PROBE_PLUGIN)
        cls.applog = os.path.join(cls.tmpdir, "app.log")
        cls.logconf = os.path.join(cls.tmpdir, "logging.conf")
        with open(cls.logconf, "w") as f:
            f.write(logging_conf(cls.applog, probe_debug=False))
        values["main.plugindir"] = "%s,%s" % (plugdir, PLUGIN_DIR)
        values["main.plugins"] = "logprobe"

    def applog_text(self):
        try:
            with open(self.applog, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def send(self, subject):
        with SmtpClient(self.port) as c:
            c.banner_and_ehlo()
            reply = c.send_message("a@example.org", ["b@example.net"], make_message(subject=subject))
            c.cmd("QUIT")
        self.assertTrue(reply and reply.startswith("250"), reply)

    def wait_line(self, needle, timeout=10):
        return wait_for(lambda: needle in self.applog_text(), timeout)

    def write_logconf(self, text):
        with open(self.logconf, "w") as f:
            f.write(text)

    def test_1_plugin_debug_after_sighup(self):
        self.assertTrue(wait_for(lambda: os.path.exists(self.applog), 10),
                        "logging.conf was not applied (no %s); daemon output:\n%s"
                        % (self.applog, self.daemon.log_tail()))
        self.send("one")
        self.assertTrue(self.wait_line("fuglu.plugin.LogProbePlugin INFO probe info one"), self.applog_text())
        self.assertNotIn("probe debug one", self.applog_text())

        self.write_logconf(logging_conf(self.applog, probe_debug=True))
        self.daemon.proc.send_signal(signal.SIGHUP)
        # the reload is asynchronous to the signal: send until the debug line shows up (bounded)
        seen = False
        for i in range(20):
            subject = "two%d" % i
            self.send(subject)
            self.assertTrue(self.wait_line("probe info %s" % subject), self.applog_text())
            if "fuglu.plugin.LogProbePlugin DEBUG probe debug %s" % subject in self.applog_text():
                seen = True
                break
            wait_for(lambda: False, 0.2)
        self.assertTrue(seen, "no DEBUG line of the plugin after SIGHUP:\n" + self.applog_text())
        # everything else stays at INFO
        others = [l for l in self.applog_text().splitlines()
                  if " DEBUG " in l and not l.startswith("fuglu.plugin.LogProbePlugin ")]
        self.assertEqual(others, [])

    def test_2_broken_file_keeps_configuration(self):
        self.write_logconf(logging_conf(self.applog, probe_debug=True))
        self.daemon.proc.send_signal(signal.SIGHUP)
        self.send("settle")
        self.assertTrue(self.wait_line("probe debug settle", 15), self.applog_text())
        self.write_logconf(logging_conf(self.applog, probe_debug=True).replace(
            "args=('%s'" % self.applog, "args=(open('/etc/passwd')"))
        self.daemon.proc.send_signal(signal.SIGHUP)
        # the error names the file and line of the args option
        lines = logging_conf(self.applog, True).splitlines()
        lineno = next(i for i, l in enumerate(lines, 1) if l.startswith("args="))
        where = "%s:%d" % (self.logconf, lineno)
        found = wait_for(lambda: where in self.applog_text() or where in self.daemon.log_tail(200), 10)
        self.assertTrue(found, "no error naming %s:\n%s\n%s" % (where, self.applog_text(), self.daemon.log_tail()))
        self.assertIsNone(self.daemon.proc.poll())
        self.send("three")
        self.assertTrue(self.wait_line("probe debug three"), self.applog_text())


class LoggingLint(unittest.TestCase):

    def setUp(self):
        if not os.access(FUGLU_BIN, os.X_OK):
            self.skipTest("%s not built" % FUGLU_BIN)
        self.tmpdir = tempfile.mkdtemp(prefix="fuglu-it-loglint-")

    def tearDown(self):
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def test_lint_reports_broken_logging_conf(self):
        values = base_config(self.tmpdir, free_port(), free_port())
        conf = os.path.join(self.tmpdir, "fuglu.conf")
        with open(conf, "w") as f:
            f.write(_config_text(values))
        logconf = os.path.join(self.tmpdir, "logging.conf")
        text = logging_conf(os.path.join(self.tmpdir, "x.log"), False).replace("level=INFO", "level=VERBOSE", 1)
        with open(logconf, "w") as f:
            f.write(text)
        lineno = next(i for i, l in enumerate(text.splitlines(), 1) if l == "level=VERBOSE")
        res = subprocess.run([FUGLU_BIN, "--lint", "-c", conf], stdin=subprocess.DEVNULL, capture_output=True,
                             timeout=30 * SCALE, cwd=self.tmpdir)
        out = (res.stdout + res.stderr).decode("utf-8", "replace")
        self.assertIn("Checking logging configuration", out)
        self.assertIn("%s:%d: [logger_root] level: unknown level 'VERBOSE'" % (logconf, lineno), out)
        self.assertNotEqual(res.returncode, 0, out)


if __name__ == "__main__":
    unittest.main()
