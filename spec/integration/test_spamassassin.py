"""Integration: SAPlugin against a real spamd (-L, loopback): GTUBE is spam with its score and
the high spam action, the X-Spam-* headers arrive downstream (PROCESS), REPORT mode keeps the
message, the size skip and the strip of big messages, the operations page's DEBUG lines under
fuglu.plugin.SAPlugin, spamd down or hanging, and --lint."""

import base64
import os
import re
import subprocess
import time

from harness import FugluCase, SCALE, free_port, make_message, run_lint
from scanservers import Spamd, Silent, GTUBE

SPAMD = None


def setUpModule():
    global SPAMD
    SPAMD = Spamd().start()


def tearDownModule():
    if SPAMD:
        SPAMD.stop()


def gtube_message(subject="gtube"):
    return make_message([], subject=subject, body="This is spam.\r\n%s\r\n" % GTUBE.decode())


def ham_message(subject="ham"):
    return make_message([("Message-ID", "<ham-%d@example.org>" % time.time_ns())], subject=subject,
                        body="Hi Bob,\r\n\r\nthe meeting is moved to Thursday at ten.\r\n\r\nAlice\r\n")


LOGGING_CONF = """[loggers]
keys=root,saplugin

[handlers]
keys=logfile

[formatters]
keys=plain

[logger_root]
level=INFO
handlers=logfile

[logger_saplugin]
level=DEBUG
handlers=logfile
propagate=0
qualname=fuglu.plugin.SAPlugin

[handler_logfile]
class=FileHandler
level=NOTSET
args=('%s',)
formatter=plain

[formatter_plain]
format=%%(asctime)s %%(name)s: %%(levelname)s %%(message)s
"""


class SACase(FugluCase):
    sa = {}

    @classmethod
    def prepare(cls, values):
        values["main.plugins"] = "spamassassin"
        values["SAPlugin.host"] = "127.0.0.1"
        values["SAPlugin.port"] = str(SPAMD.port)
        values["SAPlugin.timeout"] = "20"
        for k, v in cls.sa.items():
            values["SAPlugin." + k] = v

    def deliver(self, data):
        before = self.sink_count()
        reply = self.send_one(data)
        self.assertTrue(reply.startswith("250 "), "%r\n%s" % (reply, self.daemon.log_tail(20)))
        msgs = self.wait_sink(before + 1, timeout=20)
        self.assertEqual(len(msgs), before + 1)
        return msgs[-1][1]


def head_of(data):
    return data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")


class SAProcess(SACase):
    """Default PROCESS mode; high spam is rejected, the rest delivered as spamd rewrote it."""
    sa = {"highspamaction": "REJECT", "highspamlevel": "500", "rejectmessage": "spam score ${spamscore}"}

    @classmethod
    def prepare(cls, values):
        super().prepare(values)
        cls.applog = os.path.join(cls.tmpdir, "app.log")
        with open(os.path.join(cls.tmpdir, "logging.conf"), "w") as f:
            f.write(LOGGING_CONF % cls.applog)

    def applog_text(self):
        with open(self.applog, errors="replace") as f:
            return f.read()

    def test_gtube_over_highspamlevel_rejected_with_the_score(self):
        before = self.sink_count()
        reply = self.send_one(gtube_message())
        self.assertTrue(reply.startswith("550 "), reply)
        self.assertRegex(reply, r"spam score 1\d\d\d")
        time.sleep(0.2)
        self.assertEqual(self.sink_count(), before)

    def test_ham_delivered_with_the_spamassassin_headers(self):
        data = self.deliver(ham_message())
        head = head_of(data)
        self.assertRegex(head, r"(?m)^X-Spam-Status: No, score=-?[\d.]+")
        self.assertRegex(head, r"(?m)^X-Spam-Checker-Version: SpamAssassin 4")
        self.assertRegex(head, r"(?m)^X-Fuglu-Spamstatus: NO")
        self.assertIn(b"the meeting is moved to Thursday", data)
        self.assertNotIn(b"\n", data.replace(b"\r\n", b""), "bare LF in what went downstream")

    def test_debug_lines_of_the_operations_page(self):
        self.deliver(ham_message("debug lines"))
        deadline = time.monotonic() + 5
        text = ""
        while time.monotonic() < deadline:
            text = self.applog_text()
            if "Message is not spam" in text:
                break
            time.sleep(0.1)
        for pattern in [r"fuglu\.plugin\.SAPlugin: DEBUG Contacting spamd 127\.0\.0\.1 \(Try 1 of 3\)",
                        r"fuglu\.plugin\.SAPlugin: DEBUG Sent \d+ bytes to spamd",
                        r"fuglu\.plugin\.SAPlugin: DEBUG SPAMD/1\.1 0 EX_OK",
                        r"fuglu\.plugin\.SAPlugin: DEBUG Got \d+ message bytes back from spamd",
                        r"fuglu\.plugin\.SAPlugin: DEBUG Spamscore: -?[\d.]+",
                        r"fuglu\.plugin\.SAPlugin: DEBUG Message is not spam"]:
            self.assertRegex(text, pattern)


class SASpamDelivered(SACase):
    """GTUBE with the spam actions left at DUNNO: delivered, tagged spam."""

    def test_gtube_tagged_and_delivered(self):
        data = self.deliver(gtube_message("tagged"))
        head = head_of(data)
        self.assertRegex(head, r"(?m)^X-Spam-Status: Yes, score=1\d\d\d")
        self.assertRegex(head, r"(?m)^X-Fuglu-Spamstatus: YES")
        self.assertTrue(self.daemon.wait_log("spam=yes"), self.daemon.log_tail(10))


class SAReport(SACase):
    """forwardoriginal=1: REPORT; the message goes on unchanged, the verdict still counts."""
    sa = {"forwardoriginal": "1", "lowspamaction": "REJECT", "highspamlevel": "5000"}

    def test_gtube_rejected_by_lowspamaction(self):
        reply = self.send_one(gtube_message())
        self.assertTrue(reply.startswith("550 "), reply)
        self.assertIn("message identified as spam", reply)

    def test_ham_unchanged(self):
        data = self.deliver(ham_message("report ham"))
        self.assertNotIn("X-Spam-Status", head_of(data))
        self.assertRegex(head_of(data), r"(?m)^X-Fuglu-Spamstatus: NO")


class SASizeSkip(SACase):
    sa = {"maxsize": "500", "strip_oversize": "0", "lowspamaction": "REJECT"}

    def test_big_message_skipped_with_the_header(self):
        body = "filler line\r\n" * 100 + GTUBE.decode() + "\r\n"
        data = self.deliver(make_message([], subject="big", body=body))
        self.assertRegex(head_of(data), r"(?m)^X-Fuglu-SA-SKIP: Too big for spamchecks\. \d+ > 500")


class SAStripOversize(SACase):
    """strip_oversize=1: a big attachment is left out of the copy spamd sees; the spam in the text
    part is still found, only X-Spam-* headers are taken over, and the attachment is delivered."""
    sa = {"maxsize": "20000", "strip_oversize": "1", "lowspamaction": "DUNNO"}

    def test_text_part_scanned_attachment_kept(self):
        blob = base64.encodebytes(os.urandom(60000)).decode().replace("\n", "\r\n")
        body = ("--b1\r\nContent-Type: text/plain\r\n\r\nBuy now! %s\r\n"
                "--b1\r\nContent-Type: application/octet-stream; name=\"big.bin\"\r\n"
                "Content-Disposition: attachment; filename=\"big.bin\"\r\n"
                "Content-Transfer-Encoding: base64\r\n\r\n%s\r\n--b1--\r\n" % (GTUBE.decode(), blob))
        data = self.deliver(make_message([("MIME-Version", "1.0"),
                                          ("Content-Type", 'multipart/mixed; boundary="b1"')],
                                         subject="strip", body=body))
        head = head_of(data)
        self.assertRegex(head, r"(?m)^X-Spam-Status: Yes, score=1\d\d\d")
        self.assertRegex(head, r"(?m)^X-Fuglu-Spamstatus: YES")
        self.assertIn(blob[:200].encode(), data, "the attachment did not arrive")
        self.assertNotIn("fuglu-sa-strip", data.decode("utf-8", "replace"))


class SADown(SACase):
    sa = {"retries": "2"}

    @classmethod
    def prepare(cls, values):
        super().prepare(values)
        values["SAPlugin.port"] = str(free_port())

    def test_down_defers_with_the_header_logged(self):
        reply = self.send_one(ham_message("down"))
        self.assertTrue(reply.startswith("451 "), reply)
        self.assertTrue(self.daemon.wait_log("try 2 of 2"), self.daemon.log_tail(20))


class SAHanging(SACase):
    sa = {"timeout": "1", "retries": "2"}

    @classmethod
    def prepare(cls, values):
        cls.silent = Silent().start()
        super().prepare(values)
        values["SAPlugin.port"] = str(cls.silent.port)
        values["SAPlugin.timeout"] = "1"
        values["performance.minthreads"] = "1"
        values["performance.maxthreads"] = "1"

    @classmethod
    def _cleanup(cls):
        super()._cleanup()
        cls.silent.stop()

    def test_hang_defers_and_the_worker_is_free_again(self):
        for i in range(2):
            t0 = time.monotonic()
            reply = self.send_one(ham_message("hang %d" % i))
            took = time.monotonic() - t0
            self.assertTrue(reply.startswith("451 "), reply)
            self.assertLess(took, 2 + 3 * SCALE, "took %.1f s" % took)


class SALint(FugluCase):

    def lint(self, port):
        return run_lint(self.tmpdir, {"main.plugins": "spamassassin", "SAPlugin.host": "127.0.0.1",
                                      "SAPlugin.port": str(port)})

    def test_lint_ping_and_gtube(self):
        rc, out = self.lint(SPAMD.port)
        self.assertEqual(rc, 0, out)
        self.assertIn("PONG", out)
        self.assertIn("GTUBE has been detected correctly", out)

    def test_lint_down_is_an_error(self):
        rc, out = self.lint(free_port())
        self.assertNotEqual(rc, 0, out)
        self.assertIn("spamd at 127.0.0.1", out)
