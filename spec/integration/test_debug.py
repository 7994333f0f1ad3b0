"""Integration: the debug port (MessageDebugger) and build/fuglu_debug.

The daemon listens on a normal port and a debug port; prependers = debug, plugins = testaction,
appenders = testappender. A message on the debug port is not re-injected (Fuglu's reply), its trace
file <debugfile>.<id> has each plugin and decision, the appender did not run; two concurrent debug
messages get two separate traces; fuglu_debug prints the dialogue and the trace, with its exit status.
"""

import os
import re
import subprocess
import threading
import unittest

from harness import (FUGLU_BIN, ID_RE, ROOT, SCALE, FugluCase, SmtpClient, make_message, wait_for)

FUGLU_DEBUG = os.path.join(os.path.dirname(FUGLU_BIN), "fuglu_debug")


class DebugPortCase(FugluCase):
    """FugluCase with a second (debug) port: the harness picks the ports in setUpClass, so the
    incomingport value is built there."""

    @classmethod
    def setUpClass(cls):
        import harness
        cls.debugport = harness.free_port()
        original = harness.base_config

        def with_debug(tmpdir, port, sink_port):
            values = original(tmpdir, port, sink_port)
            # the daemon waits for the last port of the list to be open
            values["main.incomingport"] = "smtp:127.0.0.1:%d,smtp:127.0.0.1:%d" % (cls.debugport, port)
            values["main.prependers"] = "debug"
            values["main.appenders"] = "testappender"
            values["debug.debugport"] = str(cls.debugport)
            values["debug.debugfile"] = os.path.join(tmpdir, "fuglu_debug.log")
            values["TestAppender.outfile"] = os.path.join(tmpdir, "appender.log")
            return values

        harness.base_config = with_debug
        try:
            super().setUpClass()
        finally:
            harness.base_config = original
        cls.debugfile = os.path.join(cls.tmpdir, "fuglu_debug.log")
        cls.appender_log = os.path.join(cls.tmpdir, "appender.log")

    def appender_lines(self):
        try:
            with open(self.appender_log) as f:
                return f.read().splitlines()
        except OSError:
            return []

    def send_debug(self, data):
        with SmtpClient(self.debugport) as c:
            c.banner_and_ehlo()
            reply = c.send_message("sender@example.org", ["rcpt@example.net"], data)
            c.cmd("QUIT")
            return reply

    def trace_of(self, reply):
        m = re.search(ID_RE, reply or "")
        self.assertIsNotNone(m, "no id in %r" % reply)
        path = "%s.%s" % (self.debugfile, m.group(0))
        self.assertTrue(wait_for(lambda: os.path.exists(path), 5), "no trace file %s" % path)
        with open(path) as f:
            return m.group(0), f.read()


class DebugPortTests(DebugPortCase):

    def test_debug_message_not_reinjected_traced_no_appenders(self):
        before = self.sink_count()
        reply = self.send_debug(make_message(subject="debug one"))
        self.assertRegex(reply, r"^250 FUGLU REQUEUE\(%s\): message not re-injected by plugin request$" % ID_RE)
        sid, text = self.trace_of(reply)
        self.assertIn("Will run plugins: [TestActionPlugin]", text)
        self.assertIn("Running plugin TestActionPlugin", text)
        self.assertRegex(text, r"Plugin TestActionPlugin makes no final decision \(\d+\.\d+s\)")
        self.assertIn("X-Fuglu-Suspect: %s" % sid, text)
        self.assertIn("Suspect %s: from=sender@example.org to=rcpt@example.net" % sid, text)
        self.assertIn("Appenders will not run (tag noappenders)", text)
        # the index line in debugfile itself points to the trace
        with open(self.debugfile) as f:
            self.assertIn("%s %s.%s" % (sid, self.debugfile, sid), f.read())
        # a normal message afterwards runs the appender and is delivered: the debug one never was
        self.assertTrue(self.send_one(make_message(subject="normal")).startswith("250 "))
        self.wait_sink(before + 1)
        self.assertTrue(wait_for(lambda: len(self.appender_lines()) >= 1, 5))
        self.assertEqual(self.sink_count(), before + 1)
        self.assertNotIn(sid, "\n".join(self.appender_lines()))

    def test_decision_in_trace(self):
        reply = self.send_debug(make_message(headers=[("X-Test-Action", "REJECT not wanted")], subject="rej"))
        self.assertEqual(reply, "550 not wanted")
        # the reply of a REJECT has no id: find the trace through the index
        with open(self.debugfile) as f:
            last = f.read().splitlines()[-1]
        path = last.split(" ", 2)[2]
        with open(path) as f:
            text = f.read()
        self.assertIn("Plugin TestActionPlugin makes a decision: REJECT message=not wanted", text)
        self.assertIn("Reply: 550 not wanted", text)

    def test_two_concurrent_debug_messages_get_separate_traces(self):
        results = {}

        def send(name, sleep):
            data = make_message(headers=[("X-Test-Sleep", sleep)], subject=name)
            results[name] = self.send_debug(data)

        threads = [threading.Thread(target=send, args=("first", "0.5")),
                   threading.Thread(target=send, args=("second", "0.3"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30 * SCALE)
        self.assertEqual(len(results), 2, results)
        (id1, t1), (id2, t2) = self.trace_of(results["first"]), self.trace_of(results["second"])
        self.assertNotEqual(id1, id2)
        for own, other, text in ((id1, id2, t1), (id2, id1, t2)):
            self.assertIn("Suspect %s:" % own, text)
            self.assertNotIn(other, text)
            self.assertEqual(text.count("Running plugin TestActionPlugin"), 1)

    def run_debug_tool(self, *args):
        return subprocess.run([FUGLU_DEBUG] + list(args), stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=60 * SCALE, cwd=self.tmpdir)

    def eml(self, name, data):
        path = os.path.join(self.tmpdir, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def test_fuglu_debug_prints_dialogue_and_trace(self):
        if not os.access(FUGLU_DEBUG, os.X_OK):
            self.skipTest("fuglu_debug not built")
        # LF line ends and a leading dot: the tool must convert and dot-stuff
        path = self.eml("lf.eml", b"From: a@example.org\nSubject: tool\n\n.dot line\nbye\n")
        r = self.run_debug_tool("-c", self.daemon.conf, path)
        out = r.stdout.decode()
        self.assertEqual(r.returncode, 0, out + r.stderr.decode())
        self.assertIn("send: HELO fuglu.debug.local", out)
        self.assertIn("send: MAIL FROM:<sender@fuglu.local>", out)
        self.assertIn("send: RCPT TO:<recipient@fuglu.local>", out)
        self.assertRegex(out, r"reply: 250 FUGLU REQUEUE\(%s\): message not re-injected" % ID_RE)
        m = re.search(r"Debug trace: (\S+)", out)
        self.assertIsNotNone(m, out)
        self.assertTrue(m.group(1).startswith(self.debugfile + "."))
        self.assertIn("Running plugin TestActionPlugin", out)
        self.assertIn("from=sender@fuglu.local to=recipient@fuglu.local", out)

    def test_fuglu_debug_sender_recipient_and_refused(self):
        if not os.access(FUGLU_DEBUG, os.X_OK):
            self.skipTest("fuglu_debug not built")
        path = self.eml("rej.eml", make_message(headers=[("X-Test-Action", "REJECT nope")], subject="t"))
        r = self.run_debug_tool("-c", self.daemon.conf, path, "x@example.org", "y@example.net")
        out = r.stdout.decode()
        self.assertEqual(r.returncode, 3, out + r.stderr.decode())
        self.assertIn("send: MAIL FROM:<x@example.org>", out)
        self.assertIn("reply: 550 nope", out)
        self.assertIn("refused", r.stderr.decode())

    def test_fuglu_debug_errors(self):
        if not os.access(FUGLU_DEBUG, os.X_OK):
            self.skipTest("fuglu_debug not built")
        r = self.run_debug_tool()
        self.assertEqual(r.returncode, 1)
        self.assertIn("Usage", r.stderr.decode())
        r = self.run_debug_tool("-c", self.daemon.conf, os.path.join(self.tmpdir, "missing.eml"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("missing.eml", r.stderr.decode())
        import harness
        closed = harness.free_port()
        path = self.eml("x.eml", make_message())
        r = self.run_debug_tool("-c", self.daemon.conf, "-p", str(closed), path)
        self.assertEqual(r.returncode, 2)
        self.assertIn("cannot connect to the debug port 127.0.0.1:%d" % closed, r.stderr.decode())


class DebugLintTests(unittest.TestCase):

    def test_lint_fails_without_debugport_in_incomingport(self):
        import shutil
        import tempfile
        import harness
        if not os.access(FUGLU_BIN, os.X_OK):
            self.skipTest("not built")
        tmp = tempfile.mkdtemp(prefix="fuglu-dbglint-")
        try:
            values = harness.base_config(tmp, harness.free_port(), harness.free_port())
            values["main.prependers"] = "debug"
            values["debug.debugport"] = "10888"
            conf = os.path.join(tmp, "f.conf")
            with open(conf, "w") as f:
                f.write(harness._config_text(values))
            r = subprocess.run([FUGLU_BIN, "--lint", "-c", conf], capture_output=True, timeout=30 * SCALE,
                               stdin=subprocess.DEVNULL)
            out = r.stdout.decode() + r.stderr.decode()
            self.assertNotEqual(r.returncode, 0, out)
            self.assertIn("Debug port 10888 not specified in [main]::incomingport", out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
