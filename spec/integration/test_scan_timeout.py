"""Integration: a plugin that never returns costs one worker, not the message and not the service.

After [main] scan_timeout the client is answered 451 (the MTA keeps the message and retries), the
session goes on, and other messages pass. In the process backend the stuck worker is killed and
replaced as well.
"""

import os
import subprocess
import time

from harness import FugluCase, make_message, wait_for


def worker_pids(pid):
    """The daemon's process workers (children started as `fuglu --process-worker`)."""
    out = subprocess.run(["pgrep", "-P", str(pid), "-f", "process-worker"], capture_output=True, text=True)
    return sorted(int(p) for p in out.stdout.split())


class ScanTimeoutThreads(FugluCase):
    config = {"main.scan_timeout": "2", "performance.minthreads": "2", "performance.maxthreads": "4"}

    def test_looping_plugin_gets_451_and_others_pass(self):
        before = self.sink_count()
        started = time.monotonic()
        reply = self.send_one(make_message([("X-Test-Loop", "yes")], subject="loops"))
        waited = time.monotonic() - started
        self.assertEqual(reply, "451 4.3.0 Error: scan timed out, message deferred")
        self.assertLess(waited, 10, "the 451 must come at scan_timeout, not after the loop")
        reply = self.send_one(make_message(subject="next"))
        self.assertTrue(reply.startswith("250 FUGLU REQUEUE("), reply)
        self.assertEqual(len(self.wait_sink(before + 1)), before + 1, "exactly the second message is delivered")
        self.assertTrue(self.daemon.wait_log("no verdict after 2 s"), self.daemon.log_tail(80))

    def test_session_goes_on_after_the_timeout(self):
        with self.client() as c:
            c.banner_and_ehlo()
            first = c.send_message("a@example.org", ["b@example.net"], make_message([("X-Test-Loop", "yes")]))
            second = c.send_message("a@example.org", ["b@example.net"], make_message(subject="same session"))
            c.cmd("QUIT")
        self.assertTrue(first.startswith("451 "), first)
        self.assertTrue(second.startswith("250 FUGLU REQUEUE("), second)


class ScanTimeoutProcesses(FugluCase):
    config = {"main.scan_timeout": "2", "performance.backend": "process", "performance.initialprocs": "2"}

    def test_stuck_worker_is_killed_and_replaced(self):
        pid = self.daemon.proc.pid
        self.assertTrue(wait_for(lambda: len(worker_pids(pid)) == 2, 10), "two process workers expected")
        old = set(worker_pids(pid))
        reply = self.send_one(make_message([("X-Test-Loop", "yes")], subject="loops"))
        self.assertTrue(reply.startswith("451 "), reply)
        replaced = wait_for(lambda: len(worker_pids(pid)) == 2 and set(worker_pids(pid)) != old, 10)
        self.assertTrue(replaced, "the stuck worker was not replaced: %s -> %s" % (old, worker_pids(pid)))
        self.assertEqual(len(old - set(worker_pids(pid))), 1, "exactly one worker (the stuck one) is gone")
        for i in range(3):
            reply = self.send_one(make_message(subject="after %d" % i))
            self.assertTrue(reply.startswith("250 FUGLU REQUEUE("), reply)
        self.assertTrue(self.daemon.wait_log("scan timed out: worker killed"), self.daemon.log_tail(80))
