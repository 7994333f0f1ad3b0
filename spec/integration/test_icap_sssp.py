"""Integration: ICAPPlugin against a real c-icap (its virus_scan service scanning through our
clamd), with and without preview; SSSPPlugin against a stub that speaks Sophos SAVDI's SSSP as
documented (SAVDI itself does not run here), including a stub that fails the scan and one that
talks garbage; and lint of the discontinued scanners."""

import os
import socket
import subprocess
import threading
import time

from harness import FugluCase, free_port, make_message, run_lint
from scanservers import Clamd, CIcap, EICAR, EICAR_NAME, MARKER, MARKER_NAME
from test_clamav import eicar_message, marker_message

CLAMD = None
ICAP = None


def setUpModule():
    global CLAMD, ICAP
    CLAMD = Clamd().start()
    try:
        ICAP = CIcap(CLAMD).start()
    except BaseException:
        CLAMD.stop()
        raise


def tearDownModule():
    if ICAP:
        ICAP.stop()
    if CLAMD:
        CLAMD.stop()


class AVCase(FugluCase):
    plugin = None
    section = None
    options = {}

    @classmethod
    def prepare(cls, values):
        values["main.plugins"] = cls.plugin
        values[cls.section + ".host"] = "127.0.0.1"
        values[cls.section + ".virusaction"] = "REJECT"
        values[cls.section + ".timeout"] = "5"
        for k, v in cls.options.items():
            values[cls.section + "." + k] = v

    def assert_rejected(self, data, name):
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
        self.assertEqual(len(self.wait_sink(before + 1)), before + 1)


class Icap(AVCase):
    plugin, section = "icap", "ICAPPlugin"

    @classmethod
    def prepare(cls, values):
        super().prepare(values)
        values["ICAPPlugin.port"] = str(ICAP.port)
        values["ICAPPlugin.service"] = "avscan"
        values["ICAPPlugin.enginename"] = "c-icap"

    def test_eicar(self):
        self.assert_rejected(eicar_message(), EICAR_NAME)
        self.assertTrue(self.daemon.wait_log("virus=yes"))

    def test_marker(self):
        self.assert_rejected(marker_message(), MARKER_NAME)

    def test_clean(self):
        self.assert_delivered(make_message([], subject="clean icap", body="nothing here\r\n"))


class IcapPreview(Icap):
    """preview=1024: the first KiB goes as preview; the server asks for the rest (100 Continue)
    for a bigger message and answers at once for one that fits (ieof)."""

    @classmethod
    def prepare(cls, values):
        super().prepare(values)
        values["ICAPPlugin.preview"] = "1024"

    def test_big_message_after_the_preview(self):
        body = ("filler " * 140 + "\r\n") * 200 + MARKER.decode() + "\r\n"
        self.assert_rejected(make_message([], subject="big", body=body), MARKER_NAME)


class IcapDown(AVCase):
    plugin, section = "icap", "ICAPPlugin"
    options = {"retries": "2"}

    @classmethod
    def prepare(cls, values):
        super().prepare(values)
        values["ICAPPlugin.port"] = str(free_port())

    def test_down_defers(self):
        reply = self.send_one(eicar_message())
        self.assertTrue(reply.startswith("451 "), reply)


class SsspStub:
    """Speaks SSSP/1.0 as Sophos documents it. mode: "ok" (finds EICAR and the marker),
    "fail" (the scan ends with DONE FAIL), "garbage" (nonsense after the greeting)."""

    def __init__(self, mode="ok"):
        self.mode = mode
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopped = False
        self.sessions = []
        self.thread = threading.Thread(target=self.run, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def run(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self.session, args=(c,), daemon=True).start()

    def session(self, c):
        c.settimeout(10)
        f = c.makefile("rb")
        log = []
        self.sessions.append(log)
        try:
            c.sendall(b"OK SSSP/1.0\r\n")
            if self.mode == "garbage":
                f.readline()
                c.sendall(b"HELLO THERE\r\n\r\n")
                return
            log.append(f.readline().strip())
            c.sendall(b"ACC 1/1\r\n")
            opts = []
            while True:
                l = f.readline()
                if not l or l.strip() == b"":
                    break
                opts.append(l.strip())
            log.extend(opts)
            c.sendall(b"ACC 1/2\r\nDONE OK 0000 The function call succeeded\r\n\r\n")
            cmd = f.readline().strip()
            log.append(cmd)
            n = int(cmd.split()[1])
            data = f.read(n)
            c.sendall(b"ACC 1/3\r\n")
            out = b"EVENT FILE stream\r\n"
            if self.mode == "fail":
                out += b"DONE FAIL 0211 Scan aborted\r\n\r\n"
            else:
                import base64
                if EICAR in data or base64.b64encode(EICAR)[:40] in data:
                    out += b"VIRUS EICAR-AV-Test stream/eicar.com\r\n"
                if MARKER in data:
                    out += b"VIRUS Marker-Test stream\r\n"
                out += b"OK 0000 stream\r\nDONE OK 0000 The function call succeeded\r\n\r\n"
            c.sendall(out)
            log.append(f.readline().strip())
        except (OSError, ValueError, IndexError):
            pass
        finally:
            c.close()

    def stop(self):
        self.stopped = True
        self.thread.join(5)
        self.sock.close()


class SsspCase(AVCase):
    plugin, section = "sssp", "SSSPPlugin"
    mode = "ok"

    @classmethod
    def prepare(cls, values):
        cls.stub = SsspStub(cls.mode).start()
        super().prepare(values)
        values["SSSPPlugin.port"] = str(cls.stub.port)
        values["SSSPPlugin.retries"] = "1"

    @classmethod
    def _cleanup(cls):
        super()._cleanup()
        cls.stub.stop()


class Sssp(SsspCase):

    def test_eicar_found(self):
        self.assert_rejected(eicar_message(), "EICAR-AV-Test")

    def test_clean_and_the_session_as_documented(self):
        before = len(self.stub.sessions)
        self.assert_delivered(make_message([], subject="clean sssp"))
        log = self.stub.sessions[before]
        self.assertEqual(log[0], b"SSSP/1.0")
        self.assertIn(b"report:all", log)
        self.assertIn(b"savists: Mime 1", log)
        self.assertIn(b"savigrp: GrpArchiveUnpack 1", log)
        self.assertRegex(log[-2].decode(), r"^SCANDATA \d+$")
        self.assertEqual(log[-1], b"BYE")


class SsspFail(SsspCase):
    mode = "fail"

    def test_failed_scan_defers(self):
        reply = self.send_one(make_message([], subject="fail"))
        self.assertTrue(reply.startswith("451 "), reply)
        self.assertTrue(self.daemon.wait_log("DONE FAIL 0211"), self.daemon.log_tail(10))


class SsspGarbage(SsspCase):
    mode = "garbage"

    def test_garbage_defers(self):
        reply = self.send_one(make_message([], subject="garbage"))
        self.assertTrue(reply.startswith("451 "), reply)
        self.assertTrue(self.daemon.wait_log("expected 'ACC'"), self.daemon.log_tail(10))


class LintScanners(FugluCase):

    def lint(self, plugins, extra=None):
        return run_lint(self.tmpdir, dict(extra or {}, **{"main.plugins": plugins}))

    def test_icap_lint_scans_eicar(self):
        rc, out = self.lint("icap", {"ICAPPlugin.host": "127.0.0.1", "ICAPPlugin.port": str(ICAP.port),
                                     "ICAPPlugin.service": "avscan"})
        self.assertEqual(rc, 0, out)
        self.assertIn("found virus", out)

    def test_dead_products_named(self):
        rc, out = self.lint("fprot")
        self.assertNotEqual(rc, 0, out)
        self.assertIn("F-Prot Antivirus was discontinued", out)
