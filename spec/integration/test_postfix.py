"""Integration with a real Postfix (tools/postfix-instance), as an after-queue content filter:

    smtplib -> Postfix 127.0.0.1:PF_PORT -> content_filter -> the daemon -> Postfix re-inject smtpd
    -> pipe delivery into files

The delivered message carries X-Fuglu-Spamstatus and X-Fuglu-Suspect and its original body. With the
daemon stopped, Postfix keeps the message queued and delivers it once the daemon is back.
Needs root (Postfix's master runs as root); skipped otherwise.
"""

import os
import shutil
import smtplib
import subprocess
import tempfile
import time
import unittest

from harness import ROOT, SCALE, Daemon, base_config, free_port, wait_for

POSTFIX_INSTANCE = os.path.join(ROOT, "tools", "postfix-instance")


@unittest.skipUnless(os.geteuid() == 0, "the Postfix test needs root (Postfix's master runs as root)")
@unittest.skipUnless(shutil.which("postfix") or os.path.exists("/usr/sbin/postfix"), "postfix is not installed")
class PostfixTests(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        from harness import FUGLU_BIN
        if not os.access(FUGLU_BIN, os.X_OK):
            raise unittest.SkipTest("%s not built" % FUGLU_BIN)
        cls.tmpdir = tempfile.mkdtemp(prefix="fuglu-pfit-")
        cls.pfdir = os.path.join(cls.tmpdir, "postfix")
        cls.pf_port, cls.engine_port, cls.reinject_port = free_port(), free_port(), free_port()
        cls.env = dict(os.environ, PF_PORT=str(cls.pf_port), PF_FILTER="127.0.0.1:%d" % cls.engine_port,
                       PF_REINJECT_PORT=str(cls.reinject_port))
        os.chmod(cls.tmpdir, 0o755)           # pipe(8) delivers as nobody into pfdir/out
        cls.daemon = None
        cls.pf_started = False
        try:
            values = base_config(cls.tmpdir, cls.engine_port, cls.reinject_port)
            values["main.user"] = "root"
            values["main.group"] = "root"
            cls.daemon = Daemon(cls.tmpdir, values).start()
            r = subprocess.run([POSTFIX_INSTANCE, "start", cls.pfdir], env=cls.env, capture_output=True,
                               timeout=60)
            if r.returncode != 0:
                raise AssertionError("postfix-instance start failed:\n%s%s" % (r.stdout.decode(), r.stderr.decode()))
            cls.pf_started = True
        except BaseException:
            cls._cleanup()
            raise

    @classmethod
    def _cleanup(cls):
        if cls.pf_started:
            subprocess.run([POSTFIX_INSTANCE, "stop", cls.pfdir], env=cls.env, capture_output=True, timeout=60)
        if cls.daemon is not None:
            cls.daemon.stop()
        if os.environ.get("FUGLU_KEEP_TMP") != "1":
            shutil.rmtree(cls.tmpdir, ignore_errors=True)

    @classmethod
    def tearDownClass(cls):
        cls._cleanup()

    def daemon_log_tail(self):
        try:
            with open(os.path.join(self.pfdir, "maillog"), "rb") as f:
                pflog = b"\n".join(f.read().splitlines()[-15:]).decode("utf-8", "replace")
        except OSError:
            pflog = "(no maillog)"
        return self.daemon.log_tail() + "\n--- postfix maillog ---\n" + pflog

    def delivered(self):
        out = os.path.join(self.pfdir, "out")
        return sorted(os.path.join(out, n) for n in os.listdir(out) if n.endswith(".eml"))

    def find_delivered(self, marker, timeout):
        def look():
            for path in self.delivered():
                with open(path, "rb") as f:
                    data = f.read()
                if marker in data:
                    return data
            return None
        return wait_for(look, timeout, interval=0.2)

    def submit(self, marker):
        body = "Marker: %s\r\n.a line with a leading dot\r\nUmlaut: \u00e4\u00f6\u00fc\r\n" % marker
        msg = ("From: a@example.org\r\nTo: b@example.net\r\nSubject: %s\r\nMIME-Version: 1.0\r\n"
               "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n%s" % (marker, body))
        with smtplib.SMTP("127.0.0.1", self.pf_port, timeout=10 * SCALE) as s:
            s.sendmail("a@example.org", ["b@example.net"], msg.encode("utf-8"))
        return body

    def check_message(self, data, marker):
        self.assertIsNotNone(data, "message %s not delivered" % marker)
        text = data.decode("utf-8", "replace").replace("\r\n", "\n")
        head, _, body = text.partition("\n\n")
        self.assertRegex(head, r"(?m)^X-Fuglu-Spamstatus: (NO|YES)$")
        self.assertRegex(head, r"(?m)^X-Fuglu-Suspect: [0-9a-f]{32}$")
        self.assertEqual(body, "Marker: %s\n.a line with a leading dot\nUmlaut: \u00e4\u00f6\u00fc\n" % marker)

    def test_1_delivery_through_the_filter(self):
        marker = "pf-%d" % time.time_ns()
        self.submit(marker)
        self.check_message(self.find_delivered(marker.encode(), 20), marker)

    def test_2_filter_down_keeps_mail_queued(self):
        marker = "pf-down-%d" % time.time_ns()
        self.assertEqual(self.daemon.stop(), 0, "daemon did not exit 0 on SIGTERM")
        self.submit(marker)
        time.sleep(3)
        self.assertIsNone(self.find_delivered(marker.encode(), 0), "delivered while the filter was down")
        q = subprocess.run(["postqueue", "-c", self.pfdir, "-p"], capture_output=True, timeout=30)
        self.assertIn(b"b@example.net", q.stdout, "message not in Postfix's queue: %r" % q.stdout)
        self.daemon.start()
        subprocess.run(["postqueue", "-c", self.pfdir, "-f"], capture_output=True, timeout=30)
        self.check_message(self.find_delivered(marker.encode(), 40), marker)


if __name__ == "__main__":
    unittest.main()
