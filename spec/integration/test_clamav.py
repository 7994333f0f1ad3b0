"""Integration: ClamavPlugin against a real clamd (a private signature database: the EICAR test
file by hash, a text marker by pattern), over TCP, a unix socket and zIDSESSION pipelining; clamd
down, clamd hanging, the size limit, the clamscan fallback and --lint."""

import base64
import os
import re
import subprocess
import time

from harness import FugluCase, SCALE, free_port, make_message, run_lint
from scanservers import Clamd, Silent, EICAR, EICAR_NAME, MARKER, MARKER_NAME

CLAMD = None


def setUpModule():
    global CLAMD
    CLAMD = Clamd().start()


def tearDownModule():
    if CLAMD:
        CLAMD.stop()


def eicar_message(subject="eicar attached"):
    b64 = base64.b64encode(EICAR).decode()
    body = ("--b1\r\nContent-Type: text/plain\r\n\r\nsee the attachment\r\n"
            "--b1\r\nContent-Type: application/octet-stream; name=\"eicar.com\"\r\n"
            "Content-Disposition: attachment; filename=\"eicar.com\"\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n%s\r\n--b1--\r\n" % b64)
    return make_message([("MIME-Version", "1.0"), ("Content-Type", 'multipart/mixed; boundary="b1"')],
                        subject=subject, body=body)


def marker_message(subject="marker"):
    return make_message([], subject=subject, body="text with %s inside\r\n" % MARKER.decode())


class ClamavCase(FugluCase):
    clamav = {}

    @classmethod
    def prepare(cls, values):
        values["main.plugins"] = "clamav"
        values["ClamavPlugin.host"] = "127.0.0.1"
        values["ClamavPlugin.port"] = str(CLAMD.port)
        values["ClamavPlugin.timeout"] = "5"
        values["ClamavPlugin.virusaction"] = "REJECT"
        for k, v in cls.clamav.items():
            values["ClamavPlugin." + k] = v

    def assert_rejected_virus(self, data, name):
        before = self.sink_count()
        reply = self.send_one(data)
        self.assertTrue(reply.startswith("550 "), "%r\n%s" % (reply, self.daemon.log_tail(20)))
        self.assertIn("threat detected: %s" % name, reply)
        time.sleep(0.2)
        self.assertEqual(self.sink_count(), before)

    def assert_delivered(self, data):
        before = self.sink_count()
        reply = self.send_one(data)
        self.assertTrue(reply.startswith("250 "), "%r\n%s" % (reply, self.daemon.log_tail(20)))
        msgs = self.wait_sink(before + 1)
        self.assertEqual(len(msgs), before + 1)
        return msgs[-1][1]


class ClamavTcp(ClamavCase):

    def test_eicar_attachment_rejected_with_the_virus_name(self):
        self.assert_rejected_virus(eicar_message(), EICAR_NAME)
        self.assertTrue(self.daemon.wait_log("virus=yes"), self.daemon.log_tail(20))

    def test_marker_in_the_body(self):
        self.assert_rejected_virus(marker_message(), MARKER_NAME)

    def test_clean_message_delivered(self):
        data = self.assert_delivered(make_message([], subject="clean", body="nothing to see\r\n"))
        self.assertIn(b"Subject: clean", data)

    def test_big_message_streams_in_many_frames(self):
        # 3 MB of text before the marker: many 64 KiB INSTREAM frames, the marker in the last ones
        body = ("x" * 998 + "\r\n") * 3000 + MARKER.decode() + "\r\n"
        self.assert_rejected_virus(make_message([], subject="big", body=body), MARKER_NAME)


class ClamavDefaultAction(ClamavCase):
    """virusaction DEFAULTVIRUSACTION = [virus] defaultvirusaction = DELETE: 250, nothing delivered."""
    clamav = {"virusaction": "DEFAULTVIRUSACTION"}

    def test_virus_deleted(self):
        before = self.sink_count()
        reply = self.send_one(eicar_message())
        self.assertTrue(reply.startswith("250 "), reply)
        time.sleep(0.3)
        self.assertEqual(self.sink_count(), before, "a virus was delivered")


class ClamavUnixPipelining(ClamavCase):
    """Unix socket, zIDSESSION: many scans over one connection per worker; a clamd restart in
    between is survived (the dead session is replaced, the message still scanned)."""

    @classmethod
    def prepare(cls, values):
        super().prepare(values)
        values["ClamavPlugin.port"] = CLAMD.socket
        values["ClamavPlugin.pipelining"] = "1"
        values["performance.minthreads"] = "1"
        values["performance.maxthreads"] = "1"

    def test_session_scans_many_and_finds_viruses(self):
        for i in range(6):
            self.assert_delivered(make_message([], subject="clean %d" % i, body="clean %d\r\n" % i))
            self.assert_rejected_virus(eicar_message("v%d" % i), EICAR_NAME)
        self.assertNotIn("expected reply", self.daemon.log_tail(400))

    def test_session_survives_a_clamd_restart(self):
        self.assert_delivered(make_message([], subject="before restart"))
        CLAMD.proc.terminate()
        CLAMD.proc.wait(10)
        CLAMD.start()
        # the worker's session from before the restart is dead: the plugin notices on its next
        # scan (which proves the connection outlived a message), reconnects and still scans
        self.assert_rejected_virus(eicar_message("after restart"), EICAR_NAME)
        self.assertTrue(self.daemon.wait_log("clamd session lost after"), self.daemon.log_tail(20))


class ClamavDown(ClamavCase):
    """clamd not listening: each of the retries fails at once, then problemaction DEFER: 451."""
    clamav = {"retries": "2"}

    @classmethod
    def prepare(cls, values):
        super().prepare(values)
        values["ClamavPlugin.port"] = str(free_port())

    def test_down_defers(self):
        before = self.sink_count()
        reply = self.send_one(eicar_message())
        self.assertTrue(reply.startswith("451 "), reply)
        self.assertTrue(self.daemon.wait_log("try 2 of 2"), self.daemon.log_tail(20))
        self.assertEqual(self.sink_count(), before)


class ClamavDownFallback(ClamavCase):
    """clamd down, clamscanfallback=1: clamscan on the private database finds the virus."""

    @classmethod
    def prepare(cls, values):
        super().prepare(values)
        values["ClamavPlugin.port"] = str(free_port())
        values["ClamavPlugin.retries"] = "1"
        values["ClamavPlugin.clamscanfallback"] = "1"
        values["ClamavPlugin.clamscan"] = "/usr/bin/clamscan -d %s" % os.path.join(CLAMD.dir, "db")

    def test_fallback_finds_eicar(self):
        self.assert_rejected_virus(eicar_message(), EICAR_NAME)
        self.assertTrue(self.daemon.wait_log("clamscan fallback"), self.daemon.log_tail(20))

    def test_fallback_passes_clean(self):
        self.assert_delivered(make_message([], subject="clean via clamscan"))


class ClamavHanging(ClamavCase):
    """clamd accepts and never answers: every attempt ends at timeout, then 451, and the worker
    is free for the next message."""

    @classmethod
    def prepare(cls, values):
        cls.silent = Silent().start()
        super().prepare(values)
        values["ClamavPlugin.port"] = str(cls.silent.port)
        values["ClamavPlugin.timeout"] = "1"
        values["ClamavPlugin.retries"] = "2"
        values["performance.minthreads"] = "1"
        values["performance.maxthreads"] = "1"

    @classmethod
    def _cleanup(cls):
        super()._cleanup()
        cls.silent.stop()

    def test_hang_defers_within_the_timeout(self):
        for i in range(2):
            t0 = time.monotonic()
            reply = self.send_one(make_message([], subject="hang %d" % i))
            took = time.monotonic() - t0
            self.assertTrue(reply.startswith("451 "), reply)
            self.assertLess(took, 2 * 1 + 3 * SCALE, "the scan took %.1f s" % took)


class ClamavMaxsize(ClamavCase):
    clamav = {"maxsize": "2000"}

    def test_over_maxsize_not_scanned(self):
        data = eicar_message() + b"X" * 0
        data = data.replace(b"see the attachment", b"see the attachment " + b"y" * 3000)
        self.assert_delivered(data)
        self.assertTrue(self.daemon.wait_log("maxsize 2000"), self.daemon.log_tail(20))


class ClamavLint(FugluCase):
    """fuglu --lint with clamav: PING, VERSION and the EICAR scan; clamd down is an error."""

    def lint(self, port):
        return run_lint(self.tmpdir, {"main.plugins": "clamav", "ClamavPlugin.host": "127.0.0.1",
                                      "ClamavPlugin.port": str(port)})

    def test_lint_talks_to_clamd(self):
        rc, out = self.lint(CLAMD.port)
        self.assertEqual(rc, 0, out)
        self.assertIn("Got Pong: PONG", out)
        self.assertIn("ClamAV 1.", out)
        self.assertRegex(out, r"found virus \{'stream': '%s'\}" % re.escape(EICAR_NAME))

    def test_lint_clamd_down_is_an_error(self):
        rc, out = self.lint(free_port())
        self.assertNotEqual(rc, 0, out)
        self.assertIn("Connection refused", out)
