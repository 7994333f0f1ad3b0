"""Integration: a message answered 4xx is never delivered, so the MTA's retry never makes a duplicate.

scan_timeout covers the queue wait, the scan and the re-injection. When it fires, the job is
cancelled: a job still queued is not scanned, a running one is not re-injected, and a re-injection
under way is abandoned before its final dot (the downstream discards a message whose connection
drops mid-DATA). Once the final dot is out the job cannot be cancelled any more: the session then
waits for the downstream's answer (bounded by reinject_timeout) and passes it on, instead of
answering 451 for a message that is being delivered.

Each case runs on the thread and on the process backend.
"""

import threading
import time

from harness import FugluCase, dot_stuff, make_message, wait_for


def send_concurrently(case, messages, timeout=40):
    """Sends each message on its own connection at the same time; returns {subject: reply}."""
    replies = {}
    lock = threading.Lock()

    def one(subject, data):
        try:
            reply = case.send_one(data)
        except Exception as e:          # a failed send is a result too, compared below
            reply = "error: %s" % e
        with lock:
            replies[subject] = reply

    threads = [threading.Thread(target=one, args=item, daemon=True) for item in messages]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    return replies


def delivered_subjects(case):
    out = []
    for _env, data in case.sink.messages():
        for line in data.split(b"\r\n"):
            if line.startswith(b"Subject: "):
                out.append(line[9:].decode())
                break
    return out


class QueuedAndRunningJobsAreCancelled(FugluCase):
    """One worker, a plugin taking 3 s, four messages at once, scan_timeout 5: the first is
    delivered at 3 s; the second is running and the others are queued when the timeout answers
    them 451. Before the fix all four were delivered."""

    config = {"main.scan_timeout": "5", "performance.minthreads": "1", "performance.maxthreads": "1"}

    def test_only_messages_answered_250_are_delivered(self):
        messages = [("slow %d" % i, make_message([("X-Test-Sleep", "3")], subject="slow %d" % i)) for i in range(4)]
        replies = send_concurrently(self, messages)
        self.assertEqual(len(replies), 4, replies)
        accepted = sorted(s for s, r in replies.items() if r.startswith("250 "))
        deferred = sorted(s for s, r in replies.items() if r.startswith("451 "))
        self.assertEqual(len(accepted) + len(deferred), 4, replies)
        self.assertGreaterEqual(len(accepted), 1, replies)
        self.assertGreaterEqual(len(deferred), 1, replies)
        # The running one ends its plugin at about 6 s and must then not be re-injected; the
        # queued ones must not be scanned. Give a duplicate the time to show up.
        wait_for(lambda: len(delivered_subjects(self)) > len(accepted), 8)
        self.assertEqual(sorted(delivered_subjects(self)), accepted, "replies: %s" % replies)
        self.assertTrue(self.daemon.wait_log("cancelled before the scan ended"), self.daemon.log_tail(60))
        # the worker is free again: the next message passes
        reply = self.send_one(make_message(subject="after"))
        self.assertTrue(reply.startswith("250 FUGLU REQUEUE("), reply)
        self.assertIn("after", delivered_subjects(self))


class QueuedAndRunningJobsAreCancelledProcesses(QueuedAndRunningJobsAreCancelled):
    config = {"main.scan_timeout": "5", "performance.backend": "process", "performance.initialprocs": "1"}


class SlowDownstreamBeforeTheDot(FugluCase):
    """A downstream taking 2 s per reply: banner, EHLO, XFORWARD, MAIL, RCPT and DATA take 12 s,
    past scan_timeout (7 s). The client gets 451 at 7 s and the re-injection is abandoned before its
    final dot. Before the fix the message was delivered after the 451."""

    config = {"main.scan_timeout": "7", "main.reinject_timeout": "5"}

    def tearDown(self):
        self.sink.delay = 0

    def test_451_and_not_delivered(self):
        before = self.sink_count()
        self.sink.delay = 2
        started = time.monotonic()
        reply = self.send_one(make_message(subject="slow downstream"))
        waited = time.monotonic() - started
        self.assertTrue(reply.startswith("451 "), reply)
        self.assertLess(waited, 11, "the 451 must come at scan_timeout")
        # The re-injection would have reached its final dot at about 12 s.
        wait_for(lambda: self.sink_count() > before, 10)
        self.assertEqual(self.sink_count(), before, "a message answered 451 was delivered")
        self.assertTrue(wait_for(lambda: "cancelled during the re-injection" in self.daemon.log_tail(100)
                                 or "scan timed out: worker killed" in self.daemon.log_tail(100), 5),
                        self.daemon.log_tail(60))
        self.sink.delay = 0
        reply = self.send_one(make_message(subject="fast again"))
        self.assertTrue(reply.startswith("250 FUGLU REQUEUE("), reply)
        self.assertEqual(self.sink_count(), before + 1)


class SlowDownstreamBeforeTheDotProcesses(SlowDownstreamBeforeTheDot):
    config = {"main.scan_timeout": "7", "main.reinject_timeout": "5", "performance.backend": "process",
              "performance.initialprocs": "1"}


class SlowDownstreamAfterTheDot(FugluCase):
    """The downstream stores the message at once but answers the final dot only after 6 s, past
    scan_timeout (3 s): the session waits for that answer and passes it on. Before the fix the
    client got 451 at 3 s and the message was delivered all the same."""

    config = {"main.scan_timeout": "3", "main.reinject_timeout": "10"}

    def tearDown(self):
        self.sink.data_delay = 0

    def test_waits_for_the_downstream_and_answers_250(self):
        before = self.sink_count()
        self.sink.data_delay = 6
        started = time.monotonic()
        reply = self.send_one(make_message(subject="slow confirmation"))
        waited = time.monotonic() - started
        self.assertTrue(reply.startswith("250 FUGLU REQUEUE("), reply)
        self.assertIn("queued as sink", reply)
        self.assertGreaterEqual(waited, 5.5)
        self.assertEqual(self.sink_count(), before + 1)
        self.assertTrue(self.daemon.wait_log("waiting for the downstream's answer"), self.daemon.log_tail(60))


class SlowDownstreamAfterTheDotProcesses(SlowDownstreamAfterTheDot):
    config = {"main.scan_timeout": "3", "main.reinject_timeout": "10", "performance.backend": "process",
              "performance.initialprocs": "1"}


class ClientLeavesDuringTheScan(FugluCase):
    """A client that drops the connection while its message is scanned will send it again: the
    copy being scanned is not delivered."""

    config = {"performance.minthreads": "1", "performance.maxthreads": "1"}

    def test_not_delivered(self):
        before = self.sink_count()
        c = self.client()
        c.banner_and_ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        c.expect("RCPT TO:<b@example.net>", 250)
        c.expect("DATA", 354)
        c.send(dot_stuff(make_message([("X-Test-Sleep", "2")], subject="left")))
        time.sleep(0.5)
        c.close()
        wait_for(lambda: self.sink_count() > before, 5)
        self.assertEqual(self.sink_count(), before, "the copy of a client that left was delivered")
        self.assertTrue(self.daemon.wait_log("cancelled before the scan ended"), self.daemon.log_tail(60))
