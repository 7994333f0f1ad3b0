"""Integration: faults a filter must survive (issue 21). Descriptors: a program a plugin runs
inherits nothing but stdin, stdout and stderr, and a daemon killed with -9 while that program still
runs can be restarted on the same ports at once."""

import os
import signal
import threading
import time

from harness import SCALE, Daemon, FugluCase, make_message, wait_for


def children_of(pid):
    kids = []
    for task in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/children" % (pid, task)) as f:
                kids += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return kids


def descendants(pid, depth=4):
    out, level = [], [pid]
    for _ in range(depth):
        nxt = []
        for p in level:
            try:
                nxt += children_of(p)
            except OSError:
                pass
        out += nxt
        level = nxt
    return out


def comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return ""


class InheritedDescriptorsTests(FugluCase):
    config = {"performance.minthreads": "1", "performance.maxthreads": "2"}

    def test_a_plugins_program_inherits_only_stdio_and_a_restart_binds_at_once(self):
        replies = []
        sender = threading.Thread(target=lambda: replies.append(
            self.send_one(make_message([("X-Test-Exec", "6")], subject="exec"))))
        sender.start()
        sleepers = []
        try:
            found = wait_for(lambda: [p for p in descendants(self.daemon.proc.pid) if comm(p) == "sleep"], 10)
            self.assertTrue(found, "the plugin's program never ran")
            sleepers = found
            programs = [p for p in descendants(self.daemon.proc.pid) if comm(p) in ("sh", "sleep")]
            for pid in programs:
                fds = sorted(int(fd) for fd in os.listdir("/proc/%d/fd" % pid))
                self.assertEqual(fds, [0, 1, 2], "%s (pid %d) inherited %s" % (comm(pid), pid, [
                    os.readlink("/proc/%d/fd/%d" % (pid, fd)) for fd in fds if fd > 2]))
            # kill -9 of the daemon while its program runs: a new one binds every port at once
            self.daemon.proc.send_signal(signal.SIGKILL)
            self.daemon.proc.wait(10)
            self.assertTrue(all(os.path.exists("/proc/%d" % p) for p in sleepers))
            again = Daemon(self.tmpdir, self.daemon.values)
            type(self).daemon = again.start()
            self.assertRegex(self.send_one(make_message([], subject="after restart")) or "", r"^250 ")
        finally:
            for pid in sleepers:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            sender.join(30 * SCALE)


class InheritedDescriptorsProcessTests(InheritedDescriptorsTests):
    config = dict(InheritedDescriptorsTests.config, **{"performance.backend": "process",
                                                       "performance.initialprocs": "1"})


class StaleSpillFileTests(FugluCase):
    """Issue 21 point 5: a message spilled to tempdir when the engine is killed leaves its file;
    the next start removes it (and says so); files of a running engine are locked and kept."""
    config = {"performance.minthreads": "1", "performance.maxthreads": "1", "main.spill_threshold": "65536"}

    def spill_files(self):
        tempdir = self.daemon.values["main.tempdir"]
        return [n for n in os.listdir(tempdir) if n.startswith("fuglu-spill.")]

    def test_a_killed_engines_spill_file_is_removed_at_the_next_start(self):
        big = make_message([("X-Test-Sleep", "20")], body="x" * 998 + "\r\n" + ("y" * 998 + "\r\n") * 5000,
                           subject="five megabytes")
        sender = threading.Thread(target=lambda: self.send_quietly(big), daemon=True)
        sender.start()
        found = wait_for(self.spill_files, 20 * SCALE)
        self.assertTrue(found, "no spill file while a 5 MB message is scanned")
        self.daemon.proc.send_signal(signal.SIGKILL)
        self.daemon.proc.wait(10)
        self.assertEqual(self.spill_files(), found, "the killed engine's spill file should still be there")
        again = Daemon(self.tmpdir, self.daemon.values)
        type(self).daemon = again.start()
        self.assertEqual(self.spill_files(), [])
        self.assertTrue(again.wait_log("removed 1 stale spill file (fuglu-spill.*) from", 5), again.log_tail(20))
        sender.join(30 * SCALE)

    def send_quietly(self, data):
        try:
            self.send_one(data)
        except (OSError, AssertionError):
            pass   # the engine was killed under it
