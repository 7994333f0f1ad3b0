"""Integration: the four scanners in one chain on the same message, as an admin's fuglu.conf
has them (plugins = attachment,clamav,spamassassin,rspamd), against the real services: each
plugin sees the message and leaves its tags and headers; the first blocking verdict wins."""

import base64
import os
import re
import shutil
import tempfile
import time

from harness import FugluCase, ROOT, make_message
from dnsserver import Unbound
from scanservers import Clamd, Spamd, Rspamd, EICAR, GTUBE

SERVICES = {}


def setUpModule():
    SERVICES["dnsdir"] = tempfile.mkdtemp(prefix="fuglu-chain-dns-")
    try:
        SERVICES["clamd"] = Clamd().start()
        SERVICES["spamd"] = Spamd().start()
        SERVICES["dns"] = Unbound(SERVICES["dnsdir"], [], zones=("test.",), log_queries=False).start()
        SERVICES["rspamd"] = Rspamd(SERVICES["dns"].port).start()
    except BaseException:
        tearDownModule()
        raise


def tearDownModule():
    for name in ("rspamd", "dns", "spamd", "clamd"):
        s = SERVICES.pop(name, None)
        if s:
            s.stop()
    shutil.rmtree(SERVICES.pop("dnsdir", ""), ignore_errors=True)


def with_attachment(text, name, payload, subject):
    body = ("--b1\r\nContent-Type: text/plain\r\n\r\n%s\r\n"
            "--b1\r\nContent-Type: application/octet-stream; name=\"%s\"\r\n"
            "Content-Disposition: attachment; filename=\"%s\"\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n%s\r\n--b1--\r\n"
            % (text, name, name, base64.b64encode(payload).decode()))
    return make_message([("MIME-Version", "1.0"), ("Content-Type", 'multipart/mixed; boundary="b1"')],
                        subject=subject, body=body)


class FourScanners(FugluCase):

    @classmethod
    def prepare(cls, values):
        clamd, spamd, rspamd = SERVICES["clamd"], SERVICES["spamd"], SERVICES["rspamd"]
        values["main.plugins"] = "attachment,clamav,spamassassin,rspamd"
        values["FiletypePlugin.rulesdir"] = os.path.join(ROOT, "rules")
        values["FiletypePlugin.template_blockedfile"] = os.path.join(ROOT, "conf", "templates", "blockedfile.tmpl.dist")
        values["FiletypePlugin.blockaction"] = "REJECT"
        values["ClamavPlugin.host"] = "127.0.0.1"
        values["ClamavPlugin.port"] = str(clamd.port)
        values["ClamavPlugin.virusaction"] = "REJECT"
        values["SAPlugin.host"] = "127.0.0.1"
        values["SAPlugin.port"] = str(spamd.port)
        values["RspamdPlugin.url"] = "http://127.0.0.1:%d/checkv2" % rspamd.port

    def test_spam_passes_every_scanner_and_carries_all_their_marks(self):
        before = self.sink_count()
        data = with_attachment("Spam: %s" % GTUBE.decode(), "notes.txt", b"just some notes\n", "all four")
        reply = self.send_one(data)
        self.assertTrue(reply.startswith("250 "), "%r\n%s" % (reply, self.daemon.log_tail(20)))
        msgs = self.wait_sink(before + 1, timeout=30)
        head = msgs[-1][1].split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
        self.assertRegex(head, r"(?m)^X-Spam-Status: Yes, score=")            # spamassassin (PROCESS)
        self.assertRegex(head, r"(?m)^X-Rspamd-Status: Yes, .*action=reject")  # rspamd
        self.assertRegex(head, r"(?m)^X-Fuglu-Spamstatus: YES")
        self.assertTrue(self.daemon.wait_log("spam=yes virus=no"), self.daemon.log_tail(10))

    def test_virus_stops_at_clamav(self):
        reply = self.send_one(with_attachment("hello", "eicar.txt", EICAR, "virus in chain"))
        self.assertTrue(reply.startswith("550 "), reply)
        self.assertIn("threat detected: Eicar-Test-Signature-Custom.UNOFFICIAL", reply)

    def test_blocked_attachment_stops_first_and_bounces(self):
        before = self.sink_count()
        reply = self.send_one(with_attachment("hello", "invoice.exe", b"MZ\x90\x00" + b"\x00" * 200, "exe in chain"))
        self.assertTrue(reply.startswith("5"), reply)
        msgs = self.wait_sink(before + 1, timeout=10)
        env, bounce = msgs[-1]
        self.assertEqual(env["mail_from"], "")
        self.assertEqual(env["rcpt_tos"], ["a@example.org"])
        self.assertIn(b"invoice.exe", bounce)
        self.assertRegex(bounce.decode("utf-8", "replace"), r"(?m)^Subject: Blocked attachment")
