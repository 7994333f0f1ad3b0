"""Integration: RspamdPlugin against a real rspamd on loopback (its DNS pointed at a local Unbound
that refuses everything, so nothing leaves the machine): GTUBE rejected, each rspamd action mapped
(add header, rewrite subject, greylist, no action), the headers that go downstream, the envelope
rspamd was told (its own log), rspamd down or hanging, and --lint."""

import os
import re
import subprocess
import tempfile
import shutil
import time

from harness import FugluCase, ID_RE, SCALE, free_port, make_message, run_lint
from dnsserver import Unbound
from scanservers import Rspamd, Silent, GTUBE

RSPAMD = None
DNS = None
DNS_DIR = None


def setUpModule():
    global RSPAMD, DNS, DNS_DIR
    DNS_DIR = tempfile.mkdtemp(prefix="fuglu-rspamd-dns-")
    DNS = Unbound(DNS_DIR, [], zones=("test.",), log_queries=False).start()
    try:
        RSPAMD = Rspamd(DNS.port).start()
    except BaseException:
        DNS.stop()
        raise


def tearDownModule():
    if RSPAMD:
        RSPAMD.stop()
    if DNS:
        DNS.stop()
    shutil.rmtree(DNS_DIR, ignore_errors=True)


def scored(score, subject):
    return make_message([("X-Test-Rspamd-Score", str(score)), ("Date", "Thu, 03 Dec 2026 10:00:00 +0000")],
                        subject=subject, body="Hello Bob,\r\n\r\nsee you on Thursday.\r\n\r\nAlice\r\n")


def head_of(data):
    return data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")


class RspamdCase(FugluCase):
    rspamd = {}

    @classmethod
    def prepare(cls, values):
        values["main.plugins"] = "rspamd"
        values["RspamdPlugin.url"] = "http://127.0.0.1:%d/checkv2" % RSPAMD.port
        values["RspamdPlugin.timeout"] = "10"
        for k, v in cls.rspamd.items():
            values["RspamdPlugin." + k] = v

    def deliver(self, data, rcpts=("b@example.net",)):
        before = self.sink_count()
        reply = self.send_one(data, rcpts=rcpts)
        self.assertTrue(reply.startswith("250 "), "%r\n%s" % (reply, self.daemon.log_tail(20)))
        msgs = self.wait_sink(before + 1, timeout=20)
        self.assertEqual(len(msgs), before + 1)
        return reply, msgs[-1][1]


class RspamdActions(RspamdCase):
    rspamd = {"action_reject": "REJECT", "symbolsheader": "X-Rspamd-Symbols",
              "rejectmessage": "rspamd says ${rspamd_action} (${spamscore})"}

    def test_gtube_rejected(self):
        before = self.sink_count()
        reply = self.send_one(make_message([], subject="gtube", body="%s\r\n" % GTUBE.decode()))
        self.assertTrue(reply.startswith("550 "), reply)
        self.assertIn("rspamd says reject (", reply)
        time.sleep(0.2)
        self.assertEqual(self.sink_count(), before)

    def test_add_header_is_spam_delivered_with_headers(self):
        _, data = self.deliver(scored(45, "add header"))
        head = head_of(data)
        self.assertRegex(head, r"(?m)^X-Rspamd-Status: Yes, score=4\d\.\d\d required=80\.00 action=add header\r?$")
        unfolded = re.sub(r"\r\n[ \t]+", " ", head)
        self.assertRegex(unfolded, r"(?m)^X-Rspamd-Symbols: .*FUGLU_TEST_SCORE\(45\.00\)")
        self.assertRegex(head, r"(?m)^X-Fuglu-Spamstatus: YES")

    def test_rewrite_subject(self):
        _, data = self.deliver(scored(65, "rewrite me"))
        head = head_of(data)
        self.assertRegex(head, r"(?m)^Subject: \*\*\*SPAM\*\*\* rewrite me\r?$")
        self.assertEqual(len(re.findall(r"(?m)^Subject:", head)), 1, head)
        self.assertRegex(head, r"action=rewrite subject")

    def test_greylist_is_not_spam(self):
        _, data = self.deliver(scored(25, "greylist"))
        head = head_of(data)
        self.assertRegex(head, r"(?m)^X-Rspamd-Status: No, score=2\d\.\d\d required=80\.00 action=greylist")
        self.assertRegex(head, r"(?m)^X-Fuglu-Spamstatus: NO")

    def test_ham_and_the_envelope_rspamd_saw(self):
        reply, data = self.deliver(scored(0, "ham"), rcpts=("b@example.net", "c@example.com"))
        self.assertRegex(head_of(data), r"(?m)^X-Rspamd-Status: No, .*action=no action")
        sid = re.search(r"REQUEUE\((%s)\)" % ID_RE, reply).group(1)
        deadline = time.monotonic() + 5
        line = ""
        while time.monotonic() < deadline and not line:
            line = next((l for l in RSPAMD.log().splitlines() if "qid: <%s>" % sid in l), "")
            time.sleep(0.1)
        self.assertTrue(line, "rspamd did not log the queue id %s:\n%s" % (sid, RSPAMD.log()[-1500:]))
        self.assertIn("from: <a@example.org>", line)
        self.assertIn("rcpts: <b@example.net,c@example.com>", line)


class RspamdHighLevel(RspamdCase):
    """highspamlevel: a score at or over it is high spam even when rspamd only adds a header."""
    rspamd = {"highspamlevel": "40"}
    config = {"spam.defaulthighspamaction": "DELETE"}

    def test_high_level_uses_the_high_spam_action(self):
        before = self.sink_count()
        reply = self.send_one(scored(45, "high"))
        self.assertTrue(reply.startswith("250 "), reply)
        time.sleep(0.3)
        self.assertEqual(self.sink_count(), before, "high spam was delivered")


class RspamdDown(RspamdCase):
    rspamd = {"retries": "2"}

    @classmethod
    def prepare(cls, values):
        super().prepare(values)
        values["RspamdPlugin.url"] = "http://127.0.0.1:%d/checkv2" % free_port()

    def test_down_defers(self):
        reply = self.send_one(scored(0, "down"))
        self.assertTrue(reply.startswith("451 "), reply)
        self.assertTrue(self.daemon.wait_log("try 2 of 2"), self.daemon.log_tail(20))


class RspamdDownDunno(RspamdCase):
    rspamd = {"retries": "1", "problemaction": "DUNNO"}

    @classmethod
    def prepare(cls, values):
        super().prepare(values)
        values["RspamdPlugin.url"] = "http://127.0.0.1:%d/checkv2" % free_port()

    def test_down_passes_with_the_skip_header(self):
        _, data = self.deliver(scored(0, "down dunno"))
        self.assertRegex(head_of(data), r"(?m)^X-Fuglu-Rspamd-SKIP: rspamd scan failed")


class RspamdHanging(RspamdCase):

    @classmethod
    def prepare(cls, values):
        cls.silent = Silent().start()
        super().prepare(values)
        values["RspamdPlugin.url"] = "http://127.0.0.1:%d/checkv2" % cls.silent.port
        values["RspamdPlugin.timeout"] = "1"
        values["RspamdPlugin.retries"] = "2"
        values["performance.minthreads"] = "1"
        values["performance.maxthreads"] = "1"

    @classmethod
    def _cleanup(cls):
        super()._cleanup()
        cls.silent.stop()

    def test_hang_defers_and_the_worker_is_free_again(self):
        for i in range(2):
            t0 = time.monotonic()
            reply = self.send_one(scored(0, "hang %d" % i))
            took = time.monotonic() - t0
            self.assertTrue(reply.startswith("451 "), reply)
            self.assertLess(took, 2 + 3 * SCALE, "took %.1f s" % took)


class RspamdLint(FugluCase):

    def lint(self, port):
        return run_lint(self.tmpdir, {"main.plugins": "rspamd",
                                      "RspamdPlugin.url": "http://127.0.0.1:%d/checkv2" % port})

    def test_lint_gtube(self):
        rc, out = self.lint(RSPAMD.port)
        self.assertEqual(rc, 0, out)
        self.assertIn("rspamd: GTUBE detected", out)

    def test_lint_down_is_an_error(self):
        rc, out = self.lint(free_port())
        self.assertNotEqual(rc, 0, out)
        self.assertIn("rspamd at http://127.0.0.1", out)
