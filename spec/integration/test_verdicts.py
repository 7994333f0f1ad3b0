"""Integration: every verdict of the testaction plugin, answered and re-injected as Fuglu does.

DUNNO/ACCEPT re-inject and answer "250 FUGLU REQUEUE(<id>): <downstream reply>"; DELETE answers
"250 OK: (<id>)" or the plugin's message and delivers nothing; REJECT 550, DEFER 451. A re-injected
message carries X-Fuglu-Spamstatus and X-Fuglu-Suspect (= the id in the reply) in front of the
original bytes.
"""

import re
import time
import unittest

from harness import FugluCase, ID_RE, dot_stuff, make_message


class VerdictTests(FugluCase):

    def deliver(self, action_header, subject):
        before = self.sink_count()
        headers = [("X-Test-Action", action_header)] if action_header else []
        reply = self.send_one(make_message(headers, subject=subject))
        return before, reply

    def assert_requeued(self, before, reply, subject):
        m = re.fullmatch(r"250 FUGLU REQUEUE\((%s)\): 2\.0\.0 Ok: queued as sink(\d+)" % ID_RE, reply or "")
        self.assertTrue(m, "reply %r is not '250 FUGLU REQUEUE(<32 hex id>): 2.0.0 Ok: queued as sinkN'" % reply)
        msgs = self.wait_sink(before + 1)
        self.assertEqual(len(msgs), before + 1, "downstream got %d new messages" % (len(msgs) - before))
        env, data = msgs[-1]
        self.assertEqual("sink%d" % len(msgs), "sink" + m.group(2), "reply names another downstream message")
        self.assertEqual(env["mail_from"], "a@example.org")
        self.assertEqual(env["rcpt_tos"], ["b@example.net"])
        head = data.split(b"\r\n\r\n", 1)[0].decode()
        self.assertIn("Subject: %s\r\n" % subject, head + "\r\n")
        self.assertTrue(data.startswith(b"X-Fuglu-"), "added headers must come first: %r" % data[:80])
        self.assertRegex(head, r"(?m)^X-Fuglu-Spamstatus: (NO|YES)\r?$")
        sid = re.search(r"(?m)^X-Fuglu-Suspect: (\S+)\r?$", head)
        self.assertTrue(sid, "no X-Fuglu-Suspect header in %r" % head)
        self.assertEqual(sid.group(1), m.group(1), "X-Fuglu-Suspect differs from the id in the reply")
        return m.group(1)

    def assert_not_delivered(self, before):
        time.sleep(0.3)
        self.assertEqual(self.sink_count(), before, "downstream received a message it should not have")

    def test_no_header_is_dunno(self):
        before, reply = self.deliver(None, "plain dunno")
        self.assert_requeued(before, reply, "plain dunno")

    def test_dunno(self):
        before, reply = self.deliver("DUNNO", "dunno")
        self.assert_requeued(before, reply, "dunno")

    def test_accept(self):
        before, reply = self.deliver("ACCEPT", "accept")
        self.assert_requeued(before, reply, "accept")

    def test_ids_differ(self):
        b1, r1 = self.deliver("DUNNO", "one")
        id1 = self.assert_requeued(b1, r1, "one")
        b2, r2 = self.deliver("DUNNO", "two")
        id2 = self.assert_requeued(b2, r2, "two")
        self.assertNotEqual(id1, id2)

    def test_delete_default_message(self):
        before, reply = self.deliver("DELETE", "delete")
        self.assertRegex(reply or "", r"^250 OK: \(%s\)$" % ID_RE)
        self.assert_not_delivered(before)

    def test_delete_with_message(self):
        before, reply = self.deliver("DELETE silently dropped", "delete msg")
        self.assertEqual(reply, "250 silently dropped")
        self.assert_not_delivered(before)

    def test_reject_default_message(self):
        before, reply = self.deliver("REJECT", "reject")
        self.assertEqual(reply, "550 Rejected by content scanner")
        self.assert_not_delivered(before)

    def test_reject_with_message(self):
        before, reply = self.deliver("REJECT go away spammer", "reject msg")
        self.assertEqual(reply, "550 go away spammer")
        self.assert_not_delivered(before)

    def test_defer_with_message(self):
        before, reply = self.deliver("DEFER try again later", "defer msg")
        self.assertEqual(reply, "451 try again later")
        self.assert_not_delivered(before)

    def test_defer_default_message(self):
        before, reply = self.deliver("DEFER", "defer")
        self.assertRegex(reply or "", r"^451 \S")
        self.assert_not_delivered(before)

    def test_plugin_error_counts_as_dunno(self):
        before = self.sink_count()
        reply = self.send_one(make_message([("X-Test-Error", "yes")], subject="plugin error"))
        self.assert_requeued(before, reply, "plugin error")

    def test_noreinject_tag(self):
        before = self.sink_count()
        reply = self.send_one(make_message([("X-Test-Tag", "noreinject=1")], subject="noreinject"))
        self.assertRegex(reply or "", r"^250 FUGLU REQUEUE\(%s\): message not re-injected by plugin request$" % ID_RE)
        self.assert_not_delivered(before)

    def test_several_recipients(self):
        before = self.sink_count()
        reply = self.send_one(make_message(subject="three rcpts"), rcpts=("b@example.net", "c@example.net", "d@example.com"))
        self.assertRegex(reply or "", r"^250 FUGLU REQUEUE\(%s\): " % ID_RE)
        env, _ = self.wait_sink(before + 1)[-1]
        self.assertEqual(env["rcpt_tos"], ["b@example.net", "c@example.net", "d@example.com"])

    def test_null_sender(self):
        before = self.sink_count()
        reply = self.send_one(make_message(subject="bounce"), mail_from="")
        self.assertRegex(reply or "", r"^250 FUGLU REQUEUE\(%s\): " % ID_RE)
        env, _ = self.wait_sink(before + 1)[-1]
        self.assertEqual(env["mail_from"], "")

    def test_several_messages_one_connection(self):
        before = self.sink_count()
        with self.client() as c:
            c.banner_and_ehlo()
            replies = [c.send_message("a@example.org", ["b@example.net"], make_message([("X-Test-Action", a)], subject="seq %d" % i))
                       for i, a in enumerate(["DUNNO", "REJECT no", "DUNNO"])]
            self.assertEqual(c.cmd("QUIT")[:3], "221")
        self.assertRegex(replies[0], r"^250 FUGLU REQUEUE")
        self.assertEqual(replies[1], "550 no")
        self.assertRegex(replies[2], r"^250 FUGLU REQUEUE")
        msgs = self.wait_sink(before + 2)
        self.assertEqual(len(msgs), before + 2)
        self.assertIn(b"Subject: seq 0\r\n", msgs[-2][1])
        self.assertIn(b"Subject: seq 2\r\n", msgs[-1][1])

    def test_pipelined_three_messages(self):
        """MAIL/RCPT/DATA of each message in one write; the end of data and the next MAIL/RCPT/DATA
        in one write; the replies must come in order."""
        before = self.sink_count()
        actions = ["DUNNO", "REJECT pipelined no", "ACCEPT"]
        msgs = [make_message([("X-Test-Action", a)], subject="pipe %d" % i) for i, a in enumerate(actions)]
        with self.client() as c:
            _, ehlo = c.banner_and_ehlo()
            self.assertIn("PIPELINING", [t.split()[0].upper() for t in ehlo[1:] if t])
            envelope = b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nRCPT TO:<c@example.net>\r\nDATA\r\n"
            c.send(envelope)
            got = []
            for i, m in enumerate(msgs):
                got += [c.reply_line(), c.reply_line(), c.reply_line(), c.reply_line()]
                self.assertEqual([g[:3] for g in got[-4:]], ["250", "250", "250", "354"], got)
                tail = envelope if i < len(msgs) - 1 else b"QUIT\r\n"
                c.send(dot_stuff(m) + tail)
                got.append(c.reply_line(timeout=30))
            got.append(c.reply_line())
        self.assertRegex(got[4], r"^250 FUGLU REQUEUE\(%s\): " % ID_RE)
        self.assertEqual(got[9], "550 pipelined no")
        self.assertRegex(got[14], r"^250 FUGLU REQUEUE\(%s\): " % ID_RE)
        self.assertEqual(got[15][:3], "221")
        out = self.wait_sink(before + 2)
        self.assertEqual(len(out), before + 2)
        self.assertIn(b"Subject: pipe 0\r\n", out[-2][1])
        self.assertIn(b"Subject: pipe 2\r\n", out[-1][1])
        self.assertEqual(out[-1][0]["rcpt_tos"], ["b@example.net", "c@example.net"])

    def test_parallel_sessions(self):
        """Two sessions whose scans sleep 2 s each finish in well under 4 s: workers run in parallel."""
        clients = [self.client(), self.client()]
        try:
            for i, c in enumerate(clients):
                c.banner_and_ehlo()
                c.expect("MAIL FROM:<a@example.org>", 250)
                c.expect("RCPT TO:<b@example.net>", 250)
                c.expect("DATA", 354)
            start = time.monotonic()
            for i, c in enumerate(clients):
                c.send(dot_stuff(make_message([("X-Test-Sleep", "2")], subject="sleepy %d" % i)))
            replies = [c.reply_line(timeout=20) for c in clients]
            elapsed = time.monotonic() - start
        finally:
            for c in clients:
                c.close()
        for r in replies:
            self.assertRegex(r or "", r"^250 FUGLU REQUEUE")
        self.assertGreaterEqual(elapsed, 1.9, "X-Test-Sleep did not sleep")
        self.assertLess(elapsed, 3.5, "two 2 s scans took %.2f s: not run in parallel" % elapsed)


class DownstreamDownTests(FugluCase):
    start_sink = False

    def test_downstream_down_is_451(self):
        reply = self.send_one(make_message(subject="nowhere to go"))
        self.assertRegex(reply or "", r"^451 ")


class DownstreamRefusesTests(FugluCase):
    sink_fail = {"DATA": "554 5.7.1 downstream says no"}

    def test_downstream_refusal_is_not_250(self):
        reply = self.send_one(make_message(subject="refused downstream"))
        self.assertRegex(reply or "", r"^[45]\d\d ", "a message the downstream refused was answered %r" % reply)

    def test_downstream_temporary_failure_is_4xx(self):
        self.sink.fail = {"RCPT": "451 4.3.0 busy"}
        try:
            reply = self.send_one(make_message(subject="busy downstream"))
        finally:
            self.sink.fail = dict(self.sink_fail)
        self.assertRegex(reply or "", r"^4\d\d ")


class AddressComplianceDeferTests(FugluCase):
    config = {"main.address_compliance_fail_action": "defer",
              "main.address_compliance_fail_message": "bad address here"}
    expected_code = 451

    def test_bad_sender(self):
        before = self.sink_count()
        with self.client() as c:
            c.banner_and_ehlo()
            mail = c.cmd("MAIL FROM:<a@b@c>")
            if mail.startswith("250"):
                c.expect("RCPT TO:<b@example.net>", 250)
                c.expect("DATA", 354)
                c.send(dot_stuff(make_message(subject="bad sender")))
                final = c.reply_line(timeout=30)
            else:
                final = mail
        self.assertEqual(final, "%d bad address here" % self.expected_code)
        time.sleep(0.3)
        self.assertEqual(self.sink_count(), before)


class AddressComplianceRejectTests(AddressComplianceDeferTests):
    config = {"main.address_compliance_fail_action": "reject",
              "main.address_compliance_fail_message": "bad address here"}
    expected_code = 550


if __name__ == "__main__":
    unittest.main()
