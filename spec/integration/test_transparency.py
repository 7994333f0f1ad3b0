"""Integration: byte transparency. What the downstream receives is exactly the added headers
(X-Fuglu-Spamstatus, X-Fuglu-Suspect) followed by the original message bytes: CRLF, 8-bit bytes, a
5000-character line, lines starting with dots, a lone "." line inside the body, a message without a
final line break (SMTP adds CRLF before the end-of-data dot), and a message large enough to be
spilled to tempdir.
"""

import os
import re
import unittest

from harness import FugluCase, ID_RE, ROOT

FIXTURES = os.path.join(ROOT, "spec", "fixtures", "integration")


def tricky_message():
    head = (b"From: =?utf-8?q?J=C3=B6rg?= <j@example.org>\r\n"
            b"To: b@example.net\r\n"
            b"Subject: transparency\r\n"
            b"X-Raw-8bit: \xc3\xa4\xc3\xb6\xc3\xbc \xff\xfe raw latin1 \xe9\r\n"
            b"X-Folded: first part\r\n\tsecond part\r\n"
            b"MIME-Version: 1.0\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n"
            b"\r\n")
    body = (b"Line one\r\n"
            b".leading dot\r\n"
            b"..two leading dots\r\n"
            b".\r\n"
            b"after the lone dot\r\n"
            b" .space then dot\r\n"
            b"\r\n\r\n"
            b"trailing spaces   \r\n"
            b"tab\there\r\n"
            + b"L" * 5000 + b"\r\n"
            + b"8bit: \x80\x81\xa0\xfe\xff \xe2\x82\xac\r\n"
            b"last line without line break")
    return head + body


class TransparencyTests(FugluCase):

    def roundtrip(self, original):
        before = self.sink_count()
        reply = self.send_one(original)
        m = re.fullmatch(r"250 FUGLU REQUEUE\((%s)\): .*" % ID_RE, reply or "")
        self.assertTrue(m, "reply %r" % reply)
        msgs = self.wait_sink(before + 1)
        self.assertEqual(len(msgs), before + 1)
        got = msgs[-1][1]
        sent = original if original.endswith(b"\r\n") else original + b"\r\n"
        expected = (b"X-Fuglu-Spamstatus: NO\r\nX-Fuglu-Suspect: " + m.group(1).encode() + b"\r\n" + sent)
        if got != expected:
            # say where it differs, not just that it does
            i = next((k for k in range(min(len(got), len(expected))) if got[k] != expected[k]),
                     min(len(got), len(expected)))
            self.fail("downstream bytes differ at offset %d (got %d bytes, expected %d):\n got %r\n exp %r"
                      % (i, len(got), len(expected), got[max(0, i - 40):i + 40], expected[max(0, i - 40):i + 40]))

    def test_tricky_bytes(self):
        self.roundtrip(tricky_message())

    def test_ends_with_crlf(self):
        self.roundtrip(tricky_message() + b"\r\n")

    def test_only_headers(self):
        self.roundtrip(b"Subject: no body\r\nFrom: a@example.org\r\n")

    def test_body_starting_with_dot_line(self):
        self.roundtrip(b"Subject: dots\r\n\r\n.\r\n..\r\n...\r\n")

    def test_fixture_files(self):
        names = sorted(n for n in os.listdir(FIXTURES) if n.endswith(".eml"))
        self.assertTrue(names, "no fixtures in %s" % FIXTURES)
        for name in names:
            with self.subTest(fixture=name):
                with open(os.path.join(FIXTURES, name), "rb") as f:
                    data = f.read()
                # SMTP carries CRLF lines: normalise the fixture's line ends the way an MTA would
                data = re.sub(rb"\r?\n", b"\r\n", data)
                self.roundtrip(data)


class SpilledTransparencyTests(TransparencyTests):
    """The same with a tiny spill threshold: every message goes through a file in tempdir."""
    config = {"main.spill_threshold": "1024"}

    def test_large_message(self):
        lines = b"".join(b"%06d " % i + bytes(range(0x80, 0x80 + 60)) + b"\r\n" for i in range(30000))
        self.roundtrip(b"Subject: large\r\n\r\n" + lines)      # about 2 MB


if __name__ == "__main__":
    unittest.main()
