"""Integration: command line and signals. --version, --lint exit status (= number of errors),
SIGTERM while idle exits 0 and removes the pidfile."""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import unittest

from harness import FUGLU_BIN, SCALE, Daemon, base_config, free_port, port_open, wait_for, _config_text


class CliTests(unittest.TestCase):

    def setUp(self):
        if not os.access(FUGLU_BIN, os.X_OK):
            self.skipTest("%s not built" % FUGLU_BIN)
        self.tmpdir = tempfile.mkdtemp(prefix="fuglu-cli-")
        self.daemon = None

    def tearDown(self):
        if self.daemon is not None:
            self.daemon.stop()
        if os.environ.get("FUGLU_KEEP_TMP") != "1":
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    def daemon_log_tail(self):
        return self.daemon.log_tail() if self.daemon else ""

    def run_cli(self, *args):
        return subprocess.run([FUGLU_BIN] + list(args), stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=30 * SCALE, cwd=self.tmpdir)

    def write_config(self, **overrides):
        values = base_config(self.tmpdir, free_port(), free_port())
        values.update({k.replace("__", "."): v for k, v in overrides.items()})
        path = os.path.join(self.tmpdir, "lint.conf")
        with open(path, "w") as f:
            f.write(_config_text(values))
        return path

    def test_version(self):
        r = self.run_cli("--version")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = (r.stdout + r.stderr).decode()
        self.assertRegex(out, r"\d+\.\d+", "--version printed %r" % out)

    def test_lint_ok(self):
        r = self.run_cli("--lint", "-c", self.write_config())
        self.assertEqual(r.returncode, 0, "lint of a good config failed:\n%s%s" % (r.stdout.decode(), r.stderr.decode()))

    def test_lint_warns_when_timeouts_outlive_postfix(self):
        # scan_timeout + reinject_timeout >= 600 s: a message delivered at the last moment is
        # answered after Postfix gave up (smtp_data_done_timeout 600 s) and retried: a duplicate.
        r = self.run_cli("--lint", "-c", self.write_config(main__scan_timeout="560", main__reinject_timeout="60"))
        out = r.stdout.decode()
        self.assertEqual(r.returncode, 0, out + r.stderr.decode())   # a warning, not an error
        self.assertRegex(out, r"WARNING: scan_timeout \(560\) \+ reinject_timeout \(60\).*smtp_data_done_timeout")
        r = self.run_cli("--lint", "-c", self.write_config(main__scan_timeout="300", main__reinject_timeout="60"))
        self.assertNotIn("smtp_data_done_timeout", r.stdout.decode())

    def test_core_option_types_and_bounds_come_from_one_table(self):
        # config.c's table gives each core option its type and bounds: --lint names the file and
        # line of a bad value, and the daemon refuses to start on it instead of guessing a default.
        path = self.write_config(main__scan_timeout="-5", performance__maxthreads="many",
                                 main__spamstatusheader="perhaps")
        r = self.run_cli("--lint", "-c", path)
        out = r.stdout.decode()
        self.assertEqual(r.returncode, 3, out + r.stderr.decode())
        self.assertRegex(out, r"ERROR: %s:\d+: \[main\] scan_timeout: -5 is out of range \(0 to 86400\)"
                         % re.escape(path))
        self.assertRegex(out, r"ERROR: %s:\d+: \[performance\] maxthreads: 'many' is not an integer" % re.escape(path))
        self.assertRegex(out, r"ERROR: %s:\d+: \[main\] spamstatusheader: 'perhaps' is not a boolean" % re.escape(path))
        r = self.run_cli("-f", "-c", path)
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 1, err)
        self.assertIn("the configuration has errors", err)
        self.assertRegex(err, r"%s:\d+: \[main\] scan_timeout: -5 is out of range" % re.escape(path))

    def test_lint_one_missing_plugin(self):
        r = self.run_cli("--lint", "-c", self.write_config(main__plugins="testaction,no_such_plugin_x"))
        self.assertEqual(r.returncode, 1, "%s%s" % (r.stdout.decode(), r.stderr.decode()))
        self.assertIn("no_such_plugin_x", (r.stdout + r.stderr).decode())

    def test_lint_two_missing_plugins(self):
        r = self.run_cli("--lint", "-c", self.write_config(main__plugins="no_such_plugin_x,no_such_plugin_y"))
        self.assertEqual(r.returncode, 2, "%s%s" % (r.stdout.decode(), r.stderr.decode()))

    def test_lint_config_syntax_error(self):
        path = os.path.join(self.tmpdir, "broken.conf")
        with open(path, "w") as f:
            f.write("[main]\nthis line is not an option\n")
        r = self.run_cli("--lint", "-c", path)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("broken.conf:2", (r.stdout + r.stderr).decode(), "the error does not say where")

    def test_missing_config(self):
        r = self.run_cli("-f", "-c", os.path.join(self.tmpdir, "nope.conf"))
        self.assertNotEqual(r.returncode, 0)

    def test_sigterm_idle_exits_0_and_removes_pidfile(self):
        values = base_config(self.tmpdir, free_port(), free_port())
        self.daemon = Daemon(self.tmpdir, values).start()
        proc = self.daemon.proc
        self.assertTrue(wait_for(lambda: os.path.exists(self.daemon.pidfile), 5), "no pidfile written")
        with open(self.daemon.pidfile) as f:
            self.assertEqual(f.read().strip(), str(proc.pid))
        proc.send_signal(signal.SIGTERM)
        try:
            status = proc.wait(10 * SCALE)
        except subprocess.TimeoutExpired:
            self.fail("did not exit within 10 s of SIGTERM")
        self.assertEqual(status, 0, self.daemon.log_tail())
        self.assertFalse(os.path.exists(self.daemon.pidfile), "pidfile left behind")
        self.assertFalse(port_open(self.daemon.port), "port still open after exit")
        self.daemon.proc = None


if __name__ == "__main__":
    unittest.main()
