"""Integration: monitoring against the running daemon (doc/monitoring.md).

The control socket (mode 0600, Fuglu's formats, several clients at once, JSON variants),
fuglu_control, exact message counters after a known mix of verdicts (also sent concurrently),
workerlist while a slow plugin runs, exceptionlist after a failing plugin, the MRTG files (and the
real `mrtg` reading them when it is installed), the Prometheus endpoint and status page, and the
statsd appenders' datagrams on a loopback UDP socket.

Verdicts come from two test plugins: spec/plugins/teststatus.lua (X-Test-Spam/-Virus/-Blocked:
yes) and spec/plugins/testaction.lua (X-Test-Action, X-Test-Sleep, X-Test-Error).
"""

import json
import os
import re
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request

from harness import FugluCase, FUGLU_BIN, ID_RE, SCALE, control, free_port, make_message, wait_for

TOOLS_DIR = os.path.dirname(FUGLU_BIN)
FUGLU_CONTROL = os.path.join(TOOLS_DIR, "fuglu_control")
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
NODE = socket.gethostname().split(".")[0]

STATS_RE = re.compile(
    r"\AFuglu statistics\n-{15}\nUptime:\t\t(?:\d+ days?, )?\d+:\d\d:\d\d(?:\.\d{6})?\n"
    r"Avg scan time:\t(?P<avg>0|\d+\.\d{4})\n"
    r"Total msgs:\t(?P<total>\d+) in:(?P<in>\d+) out:(?P<out>\d+)\n"
    r"Ham:\t\t(?P<ham>\d+)\nSpam:\t\t(?P<spam>\d+)\nVirus:\t\t(?P<virus>\d+)\nBlock:\t\t(?P<blocked>\d+)\n {8}\Z")


def parse_stats(text):
    m = STATS_RE.match(text)
    if not m:
        raise AssertionError("stats output not in Fuglu's format: %r" % text)
    return {k: (v if k == "avg" else int(v)) for k, v in m.groupdict().items()}


def message(subject, **headers):
    names = {"spam": "X-Test-Spam", "virus": "X-Test-Virus", "blocked": "X-Test-Blocked",
             "action": "X-Test-Action", "sleep": "X-Test-Sleep", "error": "X-Test-Error"}
    return make_message([(names[k], v) for k, v in headers.items()], subject=subject)


class MonitoringTests(FugluCase):

    config = {
        "main.plugins": "teststatus,testaction",
        "main.appenders": "statsd_plugintime,statsd_messagestatus,statsd_recipient",
        "main.mrtgdir": ".",            # the daemon runs in its temporary directory
        "main.mrtg_interval": "1",
        "performance.minthreads": "2",
        "performance.maxthreads": "6",
    }

    @classmethod
    def setUpClass(cls):
        cls.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        cls.udp.bind(("127.0.0.1", 0))
        port = str(cls.udp.getsockname()[1])
        cls.metricsport = free_port()
        cls.config = dict(cls.config)
        cls.config.update({
            "main.metricsport": str(cls.metricsport),
            "PluginTime.port": port, "MessageStatus.port": port,
            "MessageStatusPerRecipient.port": port, "MessageStatusPerRecipient.level": "domain",
        })
        try:
            super().setUpClass()
        except BaseException:
            cls.udp.close()
            raise
        cls.sock = os.path.join(cls.tmpdir, "control.sock")

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.udp.close()

    def setUp(self):
        self.drain_udp()

    def drain_udp(self):
        self.udp.setblocking(False)
        try:
            while True:
                self.udp.recv(65536)
        except BlockingIOError:
            pass
        finally:
            self.udp.setblocking(True)

    def stats(self):
        return parse_stats(control(self.sock, "stats"))

    # ---- control socket ----

    def test_socket_is_private(self):
        mode = os.stat(self.sock).st_mode
        self.assertTrue(stat.S_ISSOCK(mode))
        self.assertEqual(stat.S_IMODE(mode), 0o600)

    def test_unknown_command(self):
        self.assertEqual(control(self.sock, "frobnicate"), "ERR no such command: frobnicate")
        self.assertEqual(control(self.sock, "  FrobNicate 1337 "), "ERR no such command: frobnicate")

    def test_uptime_and_threadlist(self):
        up = control(self.sock, "uptime")
        self.assertRegex(up, r"\AFuglu was started on \d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?\n"
                             r"Uptime: (\d+ days?, )?\d+:\d\d:\d\d(\.\d{6})?\Z")
        threads = control(self.sock, "threadlist")
        m = re.match(r"\ATotal (\d+) Threads\n\n", threads)
        self.assertTrue(m, threads)
        entries = threads[m.end():].split("\n*******\n")
        self.assertEqual(len(entries), int(m.group(1)))
        self.assertEqual(entries[0], "name=MainThread alive=True daemon=False")
        for e in entries[1:]:
            self.assertRegex(e, r"^name=.+ alive=True daemon=True$")

    def test_several_clients_at_once(self):
        """Ten clients connect first and send afterwards: each gets its whole answer."""
        socks = []
        try:
            for _ in range(10):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(10 * SCALE)
                s.connect(self.sock)
                socks.append(s)
            for s in socks:
                s.sendall(b"stats\n")
            for s in socks:
                data = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                parse_stats(data.decode())
        finally:
            for s in socks:
                s.close()

    def test_request_without_newline(self):
        """Fuglu's own client sends the command without a newline and waits."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10 * SCALE)
        with s:
            s.connect(self.sock)
            s.sendall(b"uptime")
            data = s.recv(65536)
        self.assertTrue(data.startswith(b"Fuglu was started on "), data)

    # ---- counters ----

    def test_stats_count_a_known_mix_exactly(self):
        before = self.stats()
        plan = [
            ("ham one", {}, r"^250 FUGLU REQUEUE"),
            ("ham two", {"action": "DUNNO"}, r"^250 FUGLU REQUEUE"),
            ("ham accept", {"action": "ACCEPT"}, r"^250 FUGLU REQUEUE"),
            ("spam one", {"spam": "yes"}, r"^250 FUGLU REQUEUE"),
            ("spam deleted", {"spam": "yes", "action": "DELETE"}, r"^250 OK"),
            ("virus", {"virus": "yes", "action": "DELETE"}, r"^250 OK"),
            ("blocked", {"blocked": "yes", "action": "REJECT"}, r"^550 "),
            ("spam and virus", {"spam": "yes", "virus": "yes", "action": "ACCEPT"}, r"^250 FUGLU REQUEUE"),
            ("deferred", {"spam": "yes", "action": "DEFER"}, r"^451 "),
        ]
        for subject, headers, reply in plan:
            got = self.send_one(message(subject, **headers))
            self.assertRegex(got or "", reply, subject)
        after = self.stats()
        delta = {k: after[k] - before[k] for k in ("total", "in", "out", "ham", "spam", "virus", "blocked")}
        # Fuglu's rules: deferred not counted; ham = neither spam nor virus (so blocked is ham too)
        self.assertEqual(delta, {"total": 8, "in": 9, "out": 5, "ham": 4, "spam": 3, "virus": 2, "blocked": 1})

        js = json.loads(control(self.sock, "stats --json"))
        for key in ("total", "in", "out", "ham", "spam", "virus", "blocked"):
            self.assertEqual(js[key], after[key], key)
        self.assertGreaterEqual(js["deferred"], 1)
        plugin = js["plugins"]["TestActionPlugin"]
        self.assertGreaterEqual(plugin["runs"], 9)
        self.assertGreaterEqual(plugin["decisions"]["DEFER"], 1)
        self.assertGreaterEqual(plugin["decisions"]["REJECT"], 1)
        self.assertIsInstance(plugin["mean_seconds"], float)
        self.assertIn("TestStatusPlugin", js["plugins"])

    def test_concurrent_messages_are_all_counted(self):
        before = self.stats()
        count, results, lock = 24, [], threading.Lock()

        def send(i):
            headers = {"spam": "yes"} if i % 3 == 0 else {}
            try:
                reply = self.send_one(message("concurrent %d" % i, **headers))
            except Exception as e:      # reported below
                reply = repr(e)
            with lock:
                results.append(reply)

        threads = [threading.Thread(target=send, args=(i,)) for i in range(count)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60 * SCALE)
        self.assertEqual(len(results), count)
        for r in results:
            self.assertRegex(r or "", r"^250 FUGLU REQUEUE")
        after = self.stats()
        self.assertEqual(after["total"] - before["total"], count)
        self.assertEqual(after["in"] - before["in"], count)
        self.assertEqual(after["spam"] - before["spam"], count // 3)
        self.assertEqual(after["ham"] - before["ham"], count - count // 3)

    # ---- workerlist, exceptionlist ----

    def test_workerlist_shows_the_running_plugin_and_suspect(self):
        replies = []
        sender = threading.Thread(target=lambda: replies.append(
            self.send_one(message("slow one", sleep="2"))))
        sender.start()
        try:
            seen = wait_for(lambda: (lambda t: t if "Running Plugin TestActionPlugin" in t else None)(
                control(self.sock, "workerlist")), 5)
            self.assertTrue(seen, "no worker was running TestActionPlugin")
            js = json.loads(control(self.sock, "workerlist --json"))
        finally:
            sender.join(30 * SCALE)
        m = re.match(r"\ATotal (\d+) worker threads\n\n", seen)
        self.assertTrue(m, seen)
        entries = seen[m.end():].split("\n*******\n")
        self.assertEqual(len(entries), int(m.group(1)))
        busy = [e for e in entries if "Running Plugin" in e]
        self.assertEqual(len(busy), 1, seen)
        sid = re.search(r"\((%s)\)" % ID_RE, replies[0] or "")
        self.assertTrue(sid, replies)
        self.assertRegex(busy[0], r"^\[\d+\]: Suspect %s: .*from=a@example\.org.* : Running Plugin TestActionPlugin$"
                         % sid.group(1))
        for e in entries:
            if e not in busy:
                self.assertRegex(e, r"^\[\d+\]: waiting for task$")
        self.assertEqual(js["total"], len(js["workers"]))
        self.assertIn("TestActionPlugin", [w["plugin"] for w in js["workers"]])
        # afterwards every worker waits again
        idle = wait_for(lambda: "Running Plugin" not in control(self.sock, "workerlist"), 5)
        self.assertTrue(idle)

    def test_exceptionlist_after_a_failing_plugin(self):
        reply = self.send_one(message("failing", error="yes"))
        sid = re.search(r"\((%s)\)" % ID_RE, reply or "")
        self.assertTrue(sid, reply)
        text = control(self.sock, "exceptionlist")
        self.assertRegex(text, r"\n\[\d+\] \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4} : Pool worker \[\d+\] "
                               r"\(plugin TestActionPlugin, message %s\)\n" % sid.group(1))
        self.assertIn("error requested by X-Test-Error", text)
        self.assertIn("stack traceback", text)
        entries = json.loads(control(self.sock, "exceptionlist --json"))
        self.assertTrue(any(sid.group(1) in e["info"] and "X-Test-Error" in e["traceback"] for e in entries))
        plugins = json.loads(control(self.sock, "stats --json"))["plugins"]
        self.assertGreaterEqual(plugins["TestActionPlugin"]["errors"], 1)

    # ---- fuglu_control ----

    def test_fuglu_control_tool(self):
        if not os.access(FUGLU_CONTROL, os.X_OK):
            self.skipTest("fuglu_control not built")
        r = subprocess.run([FUGLU_CONTROL], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 1)
        for command in ("stats", "uptime", "workerlist", "threadlist", "exceptionlist"):
            self.assertRegex(r.stdout, r"(?m)^  %s +\S" % command)
        r = subprocess.run([FUGLU_CONTROL, "-p", self.sock, "stats"], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.endswith("\n"))
        parse_stats(r.stdout[:-1])
        r = subprocess.run([FUGLU_CONTROL, "-p", os.path.join(self.tmpdir, "nothing.sock"), "stats"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stdout, r"^Cannot connect to fuglu control daemon \(.+\) - is fuglu running\?\n$")

    # ---- MRTG ----

    def mrtg_file(self, name):
        path = os.path.join(self.tmpdir, name)
        ok = wait_for(lambda: os.path.exists(path), 5)
        self.assertTrue(ok, "%s was not written" % path)
        with open(path) as f:
            return f.read()

    def test_mrtg_files(self):
        self.send_one(message("for mrtg"))
        expected = self.stats()
        time.sleep(1.5)     # one more write after the message
        uptime = r"(\d+ days?, )?(\d+ hours?, )?(\d+ minutes?, )?\d+ seconds?"
        inout = self.mrtg_file("inout")
        m = re.fullmatch(r"(\d+)\.0\n(\d+\.0|0)\n%s\nFuGLU\n" % uptime, inout)
        self.assertTrue(m, repr(inout))
        self.assertGreaterEqual(int(m.group(1)), expected["in"])
        hamspam = self.mrtg_file("hamspam")
        m = re.fullmatch(r"(\d+)\n(\d+)\n%s\nFuGLU\n" % uptime, hamspam)
        self.assertTrue(m, repr(hamspam))
        self.assertGreaterEqual(int(m.group(1)), expected["ham"])
        for name, first in (("threads", r"\d+"), ("virus", r"\d+"), ("scantime", r"0|\d+\.\d{4}")):
            text = self.mrtg_file(name)
            self.assertRegex(text, r"\A(%s)\n0\n%s\nFuGLU\n\Z" % (first, uptime), name)
        leftovers = [n for n in os.listdir(self.tmpdir) if n.endswith(".tmp")]
        self.assertEqual(leftovers, [])

    def test_real_mrtg_reads_the_files(self):
        mrtg = shutil.which("mrtg")
        if not mrtg:
            self.skipTest("mrtg is not installed (Debian package mrtg)")
        self.mrtg_file("inout")
        work = tempfile.mkdtemp(prefix="fuglu-mrtg-")
        try:
            with open(os.path.join(ROOT, "conf", "fuglu_mrtg.cfg.dist")) as f:
                cfg = f.read()
            cfg = cfg.replace("/var/lib/fuglu/mrtg/output", work).replace("/var/lib/fuglu/mrtg", self.tmpdir)
            cfgpath = os.path.join(work, "fuglu_mrtg.cfg")
            with open(cfgpath, "w") as f:
                f.write(cfg)
            r = subprocess.run([os.path.join(ROOT, "tools", "fuglu_mrtg.sh"), cfgpath],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            for target in ("inout", "hamspam", "scantime", "threads", "virus"):
                self.assertTrue(os.path.exists(os.path.join(work, target + ".log")), target)
                self.assertTrue(os.path.exists(os.path.join(work, target + "-day.png")), target)
            with open(os.path.join(work, "inout.html")) as f:
                self.assertIn("'FuGLU'", f.read())
        finally:
            shutil.rmtree(work, ignore_errors=True)

    # ---- Prometheus and status page ----

    def fetch(self, path):
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.metricsport, path),
                                    timeout=10 * SCALE) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()

    def test_prometheus_endpoint_matches_stats(self):
        self.send_one(message("metrics spam", spam="yes"))
        status, ctype, body = self.fetch("/metrics")
        stats = self.stats()
        self.assertEqual(status, 200)
        self.assertTrue(ctype.startswith("text/plain; version=0.0.4"))
        samples, types = {}, {}
        for line in body.splitlines():
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(" ")
                types[name] = kind
                continue
            if line.startswith("#") or not line:
                continue
            m = re.fullmatch(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_]\w*="(?:[^"\\]|\\.)*",?)*\})? (\S+)', line)
            self.assertTrue(m, "not a Prometheus sample line: %r" % line)
            samples[m.group(1) + (m.group(2) or "")] = float(m.group(3))
            base = re.sub(r"_(bucket|sum|count)$", "", m.group(1))
            self.assertTrue(m.group(1) in types or base in types, "no TYPE for %s" % m.group(1))
        self.assertEqual(samples["fuglu_messages_total"], stats["total"])
        self.assertEqual(samples["fuglu_messages_in_total"], stats["in"])
        self.assertEqual(samples["fuglu_messages_out_total"], stats["out"])
        for verdict in ("ham", "spam", "virus", "blocked"):
            self.assertEqual(samples['fuglu_messages_by_verdict_total{verdict="%s"}' % verdict], stats[verdict])
        self.assertEqual(samples['fuglu_scan_duration_seconds_bucket{le="+Inf"}'], stats["total"])
        self.assertGreaterEqual(samples['fuglu_plugin_runs_total{plugin="TestActionPlugin"}'], 1)
        self.assertIn('fuglu_workers{state="idle"}', samples)
        self.assertIn("fuglu_queue_length", samples)
        self.assertEqual(types["fuglu_scan_duration_seconds"], "histogram")

        status, ctype, page = self.fetch("/")
        self.assertEqual(status, 200)
        self.assertTrue(ctype.startswith("text/html"))
        self.assertIn("<svg", page)
        self.assertIsNone(re.search(r'(src|href)="https?:', page), "the status page must not load external assets")
        self.assertIn("<td>%d</td>" % stats["total"], page)

    def test_metrics_unknown_path(self):
        with self.assertRaises(urllib.error.HTTPError) as cm:
            self.fetch("/nothing")
        self.assertEqual(cm.exception.code, 404)

    # ---- statsd ----

    def test_statsd_datagrams(self):
        reply = self.send_one(message("statsd", spam="yes", action="DELETE"),
                              rcpts=("b@example.net", "c.d@mail.example.org"))
        self.assertRegex(reply or "", r"^250 OK")
        self.udp.settimeout(5 * SCALE)
        got = [self.udp.recv(65536).decode() for _ in range(3)]
        timing = [g for g in got if ".fuglu.plugin." in g]
        status = [g for g in got if ".fuglu.decision." in g]
        per_rcpt = [g for g in got if ".fuglu.recipient." in g]
        self.assertEqual((len(timing), len(status), len(per_rcpt)), (1, 1, 1), got)
        self.assertRegex(timing[0], r"\A%s\.fuglu\.plugin\.TestStatusPlugin:\d+\|ms\n"
                                    r"%s\.fuglu\.plugin\.TestActionPlugin:\d+\|ms\n\Z" % (NODE, NODE))
        self.assertEqual(status[0], "%s.fuglu.decision.DELETE:1|c\n%s.fuglu.message.spam:1|c\n" % (NODE, NODE))
        self.assertEqual(per_rcpt[0], "%s.fuglu.recipient.example-net.spam:1|c\n"
                                      "%s.fuglu.recipient.mail-example-org.spam:1|c\n" % (NODE, NODE))


class QueueLengthTests(FugluCase):
    """With one worker busy on a slow message, the others wait in the queue: /metrics and the
    status page show how many, in either backend (the process backend once dropped the gauge and
    showed "queue -1")."""

    config = {
        "main.plugins": "testaction",
        "performance.minthreads": "1",
        "performance.maxthreads": "1",
        "performance.initialprocs": "1",
    }
    waiting = 3

    @classmethod
    def setUpClass(cls):
        cls.metricsport = free_port()
        cls.config = dict(cls.config, **{"main.metricsport": str(cls.metricsport)})
        super().setUpClass()

    def fetch(self, path):
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.metricsport, path),
                                    timeout=10 * SCALE) as r:
            return r.read().decode()

    def queue_length(self):
        m = re.search(r"^fuglu_queue_length (\d+)$", self.fetch("/metrics"), re.M)
        return int(m.group(1)) if m else None

    def test_queue_length_counts_the_waiting_messages(self):
        self.assertEqual(self.queue_length(), 0)
        results, lock = [], threading.Lock()

        def send(i):
            try:
                reply = self.send_one(message("queued %d" % i, sleep="1.5"))
            except Exception as e:      # reported below
                reply = repr(e)
            with lock:
                results.append(reply)

        threads = [threading.Thread(target=send, args=(i,)) for i in range(self.waiting + 1)]
        for t in threads:
            t.start()
        try:
            # one message in the worker (a process worker may still be starting: wait for it) and
            # the others in the queue
            page = lambda: self.fetch("/")
            self.assertTrue(wait_for(lambda: self.queue_length() == self.waiting and
                                     "workers busy 1 of 1 &middot; queue %d &middot;" % self.waiting in page(),
                                     10 * SCALE),
                            "fuglu_queue_length and the status page never showed 1 busy and %d queued: %s"
                            % (self.waiting, page()[:600]))
        finally:
            for t in threads:
                t.join(30 * SCALE)
        self.assertEqual(len(results), self.waiting + 1)
        for r in results:
            self.assertRegex(r or "", r"^250 ")
        self.assertEqual(self.queue_length(), 0)
        self.assertRegex(self.fetch("/"), r"queue 0 &middot;")


class QueueLengthProcessTests(QueueLengthTests):
    config = dict(QueueLengthTests.config, **{"performance.backend": "process"})


class BoundedMetricsServerTests(FugluCase):
    """The metrics/status port costs no client more than a socket and a few KB: a request head is
    cut at 8 KB (431), a request has 10 s in all, and at most 32 connections are served at once
    (more wait in the backlog, the listener is paused rather than spinning)."""

    config = {"main.plugins": "testaction"}

    @classmethod
    def setUpClass(cls):
        cls.metricsport = free_port()
        cls.config = dict(cls.config, **{"main.metricsport": str(cls.metricsport)})
        super().setUpClass()

    def cpu_seconds(self):
        with open("/proc/%d/stat" % self.daemon.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.metricsport), timeout=15 * SCALE)
        return s

    def read_all(self, s, limit=1 << 20):
        data = b""
        while len(data) < limit:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                break
            if not chunk:
                break
            data += chunk
        return data

    def test_endless_header_line_gets_431_and_costs_no_cpu(self):
        before = self.cpu_seconds()
        s = self.connect()
        sent, refused = 0, False
        try:
            for _ in range(4096):               # up to 256 MB, stopped by the server long before
                s.sendall(b"GET /metrics HTTP/1.1\r\nX-Long: " if sent == 0 else b"a" * 65536)
                sent += 65536
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            refused = True
        reply = self.read_all(s)
        s.close()
        self.assertTrue(refused or reply, "the server read %d bytes of one header line" % sent)
        if reply:
            self.assertTrue(reply.startswith(b"HTTP/1.1 431 "), reply[:80])
        self.assertLess(sent, 64 << 20, "the server kept reading an endless header line")
        # the main loop stayed idle, and mail still flows
        self.assertLess(self.cpu_seconds() - before, 1.0)
        self.assertRegex(self.send_one(make_message([], subject="after the flood")) or "", r"^250 ")

    def test_a_request_has_ten_seconds_in_all(self):
        s = self.connect()
        start = time.monotonic()
        s.sendall(b"GET /metr")                  # and then nothing
        reply = self.read_all(s)
        s.close()
        self.assertTrue(reply.startswith(b"HTTP/1.1 408 "), reply[:80])
        self.assertLess(time.monotonic() - start, 15 * SCALE)

    def test_connections_beyond_the_limit_wait(self):
        idle = [self.connect() for _ in range(32)]
        try:
            extra = self.connect()               # accepted by the kernel, not yet by the server
            extra.settimeout(2 * SCALE)
            extra.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            with self.assertRaises(socket.timeout):
                extra.recv(1)
            idle.pop().close()                   # one slot frees: the waiting one is served
            extra.settimeout(10 * SCALE)
            reply = self.read_all(extra)
            extra.close()
            self.assertTrue(reply.startswith(b"HTTP/1.1 200 "), reply[:80])
            self.assertIn(b"fuglu_messages_total", reply)
        finally:
            for s in idle:
                s.close()

    def test_get_and_head_only_and_no_body(self):
        for request, status in ((b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", b"405"),
                                (b"GET /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", b"413"),
                                (b"GET /metrics SPDY/3\r\n\r\n", b"400"),
                                (b"HEAD / HTTP/1.0\r\n\r\n", b"200")):
            s = self.connect()
            s.sendall(request)
            reply = self.read_all(s)
            s.close()
            self.assertTrue(reply.startswith(b"HTTP/1.1 " + status), (request, reply[:80]))
            if request.startswith(b"HEAD"):
                self.assertTrue(reply.endswith(b"\r\n\r\n"), "HEAD got a body")


class TcpControlPortTests(FugluCase):
    """controlport as a number: TCP on 127.0.0.1 only; the statsd appender with level=email."""

    @classmethod
    def setUpClass(cls):
        cls.cport = free_port()
        cls.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        cls.udp.bind(("127.0.0.1", 0))
        cls.config = {"main.controlport": str(cls.cport), "main.plugins": "teststatus,testaction",
                      "main.appenders": "statsd_recipient",
                      "MessageStatusPerRecipient.port": str(cls.udp.getsockname()[1]),
                      "MessageStatusPerRecipient.host": "localhost",
                      "MessageStatusPerRecipient.level": "email"}
        try:
            super().setUpClass()
        except BaseException:
            cls.udp.close()
            raise

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.udp.close()

    def test_tcp_control_and_fuglu_control(self):
        self.send_one(message("virus over tcp", virus="yes", action="DELETE"))
        stats = parse_stats(control(self.cport, "stats"))
        self.assertEqual((stats["total"], stats["virus"], stats["ham"]), (1, 1, 0))
        if os.access(FUGLU_CONTROL, os.X_OK):
            r = subprocess.run([FUGLU_CONTROL, "-p", str(self.cport), "uptime"], capture_output=True, text=True,
                               timeout=10)
            self.assertEqual(r.returncode, 0)
            self.assertTrue(r.stdout.startswith("Fuglu was started on "))
        # bound to loopback only: the listening socket's address is 127.0.0.1
        out = subprocess.run(["ss", "-ltnH", "sport = :%d" % self.cport], capture_output=True, text=True,
                             timeout=10).stdout
        if out.strip():
            self.assertIn("127.0.0.1:%d" % self.cport, out)
        self.udp.settimeout(5 * SCALE)
        self.assertEqual(self.udp.recv(65536).decode(),
                         "%s.fuglu.recipient.b--example-net.virus:1|c\n" % NODE)


class LongReplyClientTests(unittest.TestCase):
    """fuglu_control prints answers of any length (Fuglu's cut them at 32 KB)."""

    def test_reads_a_long_answer(self):
        if not os.access(FUGLU_CONTROL, os.X_OK):
            self.skipTest("fuglu_control not built")
        tmp = tempfile.mkdtemp(prefix="fuglu-ctl-")
        path = os.path.join(tmp, "fake.sock")
        answer = ("x" * 99 + "\n") * 3000          # 300 KB
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(path)
        server.listen(1)
        server.settimeout(10)
        received = []

        def serve():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(10)
                received.append(conn.recv(4096))
                conn.sendall(answer.encode())

        t = threading.Thread(target=serve)
        t.start()
        try:
            r = subprocess.run([FUGLU_CONTROL, "-p", path, "workerlist", "--json"], capture_output=True,
                               text=True, timeout=20)
        finally:
            t.join(15)
            server.close()
            shutil.rmtree(tmp, ignore_errors=True)
        self.assertEqual(received, [b"workerlist --json\n"])
        self.assertEqual(r.returncode, 0)
        self.assertEqual(r.stdout, answer + "\n")


if __name__ == "__main__":
    unittest.main()
