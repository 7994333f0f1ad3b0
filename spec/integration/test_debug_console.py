"""Integration: `fuglu --console` driven through a pseudo-terminal, and the netconsole started with
`fuglu_control netconsole` (token, loopback rule, one client, budget while mail keeps flowing).

Every read is bounded in time; every process is stopped by PID.
"""

import os
import pty
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from harness import (FUGLU_BIN, SCALE, FugluCase, _config_text, base_config, free_port, make_message,
                     port_open, wait_for)

FUGLU_CONTROL = os.path.join(os.path.dirname(FUGLU_BIN), "fuglu_control")
PROMPT = "fuglu> "
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ \S+: [A-Z]+ ")


class PtyProcess:
    """A process on a pseudo-terminal with bounded reads."""

    def __init__(self, argv, cwd, env=None):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            try:
                os.chdir(cwd)
                os.execve(argv[0], argv, env or os.environ)
            finally:
                os._exit(127)
        self.buf = ""

    def read_until(self, pattern, timeout):
        """Reads until the regex matches the text read since the last match; returns the text up
        to the end of the match. Raises AssertionError after timeout seconds."""
        deadline = time.monotonic() + timeout * SCALE
        rx = re.compile(pattern)
        while True:
            m = rx.search(self.buf)
            if m:
                text, self.buf = self.buf[:m.end()], self.buf[m.end():]
                return text
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %r within %s s; got %r" % (pattern, timeout, self.buf[-2000:]))
            r, _, _ = select.select([self.fd], [], [], min(left, 0.2))
            if r:
                try:
                    data = os.read(self.fd, 65536)
                except OSError:
                    data = b""
                if not data:
                    raise AssertionError("terminal closed while waiting for %r; got %r" % (pattern, self.buf))
                self.buf += data.decode("utf-8", "replace").replace("\r\n", "\n")

    def send(self, line):
        os.write(self.fd, (line + "\n").encode())

    def ask(self, line, timeout=10):
        """Sends a line, returns the output up to the next prompt (without the echoed input)."""
        self.send(line)
        text = re.sub(r"(fuglu|  \.\.\.)> $", "", self.read_until(r"(fuglu|  \.\.\.)> ", timeout))
        # the input comes back as the terminal's (and the line editor's) echo: drop it
        # and the daemon's log lines share the terminal: drop those too
        kept = [ln for ln in text.split("\n")
                if ln.strip() != line.strip() and not LOG_LINE.match(ln)]
        return "\n".join(kept).strip("\n")

    def wait(self, timeout):
        deadline = time.monotonic() + timeout * SCALE
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.pid = None
                return os.waitstatus_to_exitcode(status)
            try:
                r, _, _ = select.select([self.fd], [], [], 0.1)
                if r:
                    os.read(self.fd, 65536)
            except OSError:
                time.sleep(0.05)
        return None

    def stop(self):
        if self.pid:
            for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
                try:
                    os.kill(self.pid, sig)
                except ProcessLookupError:
                    break
                if self.wait(wait) is not None:
                    break
        try:
            os.close(self.fd)
        except OSError:
            pass


class ConsoleTests(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if not os.access(FUGLU_BIN, os.X_OK):
            raise unittest.SkipTest("%s not built" % FUGLU_BIN)
        cls.tmpdir = tempfile.mkdtemp(prefix="fuglu-console-")
        cls.port = free_port()
        values = base_config(cls.tmpdir, cls.port, free_port())
        values["main.prependers"] = "debug"
        values["main.incomingport"] = "smtp:127.0.0.1:%d" % cls.port
        values["debug.debugport"] = str(cls.port)
        values["debug.debugfile"] = os.path.join(cls.tmpdir, "debug.log")
        cls.conf = os.path.join(cls.tmpdir, "fuglu.conf")
        with open(cls.conf, "w") as f:
            f.write(_config_text(values))
        cls.eml = os.path.join(cls.tmpdir, "reject.eml")
        with open(cls.eml, "wb") as f:
            f.write(make_message(headers=[("X-Test-Action", "REJECT no way")], subject="console"))
        env = dict(os.environ, HOME=cls.tmpdir)   # the history file goes to $HOME
        cls.proc = PtyProcess([FUGLU_BIN, "--console", "-c", cls.conf], cls.tmpdir, env)
        try:
            cls.proc.read_until(r"MainController available as 'mc'", 20)
            cls.proc.read_until(PROMPT, 10)
        except BaseException:
            cls.proc.stop()
            shutil.rmtree(cls.tmpdir, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.proc.stop()
        if os.environ.get("FUGLU_KEEP_TMP") != "1":
            shutil.rmtree(cls.tmpdir, ignore_errors=True)

    def test_1_mc_fields(self):
        self.assertEqual(self.proc.ask("mc.generation").strip(), "1")
        plugins = self.proc.ask("mc.plugins")
        self.assertIn("TestActionPlugin = TestActionPlugin", plugins)
        self.assertIn("debug = Debugger", plugins)
        self.assertIn('"testaction"', self.proc.ask('mc.config:get("main", "plugins")'))
        workers = self.proc.ask("mc:workers()")
        self.assertRegex(workers, r"threads = \d+")

    def test_2_run_chain_and_plugin_on_a_file(self):
        out = self.proc.ask("r = mc:run(%r)" % self.eml)
        self.assertNotIn("error", out)
        self.assertIn('"REJECT"', self.proc.ask("r.decision"))
        self.assertIn('"no way"', self.proc.ask("r.message"))
        self.assertIn("TestActionPlugin", self.proc.ask("r.tags.decisions"))
        one = self.proc.ask("mc:run_plugin('TestActionPlugin', %r)" % self.eml)
        self.assertIn('decision = "REJECT"', one)
        self.assertIn('decided_by = "TestActionPlugin"', one)

    def test_3_multiline_and_errors_do_not_kill_the_engine(self):
        more = self.proc.ask("function twice(x)")
        self.assertEqual(more.strip(), "")
        self.proc.ask("  return 2 * x")
        self.proc.ask("end")
        self.assertIn("42", self.proc.ask("twice(21)"))
        self.assertIn("error: ", self.proc.ask("error('boom here')"))
        self.assertIn("error: ", self.proc.ask("this is not lua"))
        self.assertIn("evaluation stopped", self.proc.ask("while true do end", timeout=20))
        # the engine still takes mail
        from harness import SmtpClient
        with SmtpClient(self.port) as c:
            c.banner_and_ehlo()
            reply = c.send_message("a@example.org", ["b@example.net"], make_message(subject="alive"))
        self.assertRegex(reply, r"^250 FUGLU REQUEUE")
        # ...and the console sees what the worker threads counted (the controller's stats, which
        # reach the workers' Lua through their workerlist slot, not through a process global)
        stats = self.proc.ask("s = mc:stats(); print(s['in'], s.total, s.plugins.TestActionPlugin.runs)")
        counts = [int(x) for x in re.findall(r"\d+", stats.strip().splitlines()[0])]
        self.assertGreaterEqual(counts[0], 1, stats)
        self.assertGreaterEqual(counts[1], 1, stats)
        self.assertGreaterEqual(counts[2], 1, stats)
        self.assertIn("3", self.proc.ask("1 + 2"))

    def test_9_ctrl_d_stops_fuglu(self):
        # A ^D typed before the line editor has switched the terminal to its own mode is taken by
        # the kernel's line discipline instead: give the editor a moment, retry once after ^U.
        time.sleep(0.5)
        os.write(self.proc.fd, b"\x04")
        status = self.proc.wait(5)
        if status is None:
            os.write(self.proc.fd, b"\x15\x04")
            status = self.proc.wait(30)
        self.assertEqual(status, 0)
        with open(os.path.join(self.tmpdir, ".fuglu_console_history")) as f:
            self.assertIn("mc.generation", f.read())


class NetconsoleCase(FugluCase):
    config = {"main.netconsole": "1"}

    def control(self, *args, stdin=None, timeout=30):
        sock = os.path.join(self.tmpdir, "control.sock")
        # the control socket opens a moment after the SMTP port the harness waits for
        wait_for(lambda: os.path.exists(sock), 10)
        return subprocess.run([FUGLU_CONTROL, "-p", sock] + list(args), input=stdin, capture_output=True,
                              timeout=timeout * SCALE)

    def start_console(self, port=None):
        port = port or free_port()
        r = self.control("netconsole", str(port))
        out = r.stdout.decode()
        m = re.search(r"token ([0-9a-f]{32})", out)
        self.assertIsNotNone(m, out + r.stderr.decode())
        self.assertIn("starting on 127.0.0.1 port %d" % port, out)
        return port, m.group(1)


class NetconsoleLine:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10 * SCALE)
        self.buf = b""

    def read_until(self, token, timeout=10):
        deadline = time.monotonic() + timeout * SCALE
        while token not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %r in %r" % (token, self.buf))
            self.sock.settimeout(left)
            data = self.sock.recv(65536)
            if not data:
                raise EOFError(self.buf)
            self.buf += data
        text, _, self.buf = self.buf.partition(token)
        return text.decode("utf-8", "replace")

    def ask(self, line, timeout=10):
        self.sock.sendall(line.encode() + b"\n")
        return self.read_until(b"> ", timeout)

    def closed(self, timeout=5):
        self.sock.settimeout(timeout * SCALE)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
                self.buf += data
        except (socket.timeout, ConnectionResetError):
            return False

    def close(self):
        self.sock.close()


class NetconsoleTests(NetconsoleCase):

    def setUp(self):
        if not os.access(FUGLU_CONTROL, os.X_OK):
            self.skipTest("fuglu_control not built")

    def test_wrong_token_is_disconnected(self):
        port, token = self.start_console()
        c = NetconsoleLine(port)
        c.sock.sendall(b"mc.generation\n")
        self.assertTrue(c.closed())
        self.assertIn(b"ERR bad token", c.buf)
        self.assertNotIn(b"Fuglu Lua Shell", c.buf)
        c.close()

    def test_non_loopback_bind_refused(self):
        r = self.control("netconsole", str(free_port()), "0.0.0.0")
        self.assertIn("is not a loopback address", r.stdout.decode())
        self.assertIn("netconsole_allow_remote", r.stdout.decode())

    def test_session_one_client_one_time_token(self):
        port, token = self.start_console()
        c = NetconsoleLine(port)
        c.sock.sendall(token.encode() + b"\n")
        self.assertIn("Fuglu Lua Shell - MainController available as 'mc'", c.read_until(b"> "))
        self.assertIn("1", c.ask("mc.generation"))
        # a second client while the first is connected is turned away
        try:
            second = socket.create_connection(("127.0.0.1", port), timeout=5 * SCALE)
            second.settimeout(5 * SCALE)
            try:
                self.assertEqual(second.recv(100), b"")
            except ConnectionResetError:
                pass
            second.close()
        except ConnectionRefusedError:
            pass
        c.sock.sendall(b"exit\n")
        self.assertTrue(c.closed())
        c.close()
        # the token was for one session: the console is gone
        self.assertTrue(wait_for(lambda: not port_open(port), 5))
        self.daemon.wait_log("input 1: mc.generation")
        log = self.daemon.log_tail(200)
        self.assertIn("netconsole session opened for 127.0.0.1", log)
        self.assertIn("input 1: mc.generation", log)

    def test_runaway_input_stopped_while_mail_flows(self):
        port, token = self.start_console()
        c = NetconsoleLine(port)
        c.sock.sendall(token.encode() + b"\n")
        c.read_until(b"> ")
        replies = []
        sender = threading.Thread(target=lambda: replies.append(self.send_one(make_message(subject="during"))))
        before = self.sink_count()
        c.sock.sendall(b"while true do end\n")
        sender.start()
        out = c.read_until(b"> ", timeout=30)
        sender.join(30 * SCALE)
        self.assertIn("evaluation stopped", out)
        self.assertEqual(len(replies), 1)
        self.assertRegex(replies[0], r"^250 ")
        self.wait_sink(before + 1)
        # the session is still usable, and so is the engine
        self.assertIn("4", c.ask("2 + 2"))
        self.assertRegex(self.send_one(make_message(subject="after")), r"^250 ")
        c.close()

    def test_connect_option_does_the_token_step(self):
        port = free_port()
        r = self.control("netconsole", str(port), "--connect", stdin=b"mc.generation\nexit\n")
        out = r.stdout.decode()
        self.assertEqual(r.returncode, 0, out + r.stderr.decode())
        self.assertIn("Fuglu Lua Shell - MainController available as 'mc'", out)
        self.assertRegex(out, r"> 1\r?\n")
        self.assertIn("bye", out)


class NetconsoleOffTests(FugluCase):

    def test_disabled_by_default(self):
        if not os.access(FUGLU_CONTROL, os.X_OK):
            self.skipTest("fuglu_control not built")
        port = free_port()
        wait_for(lambda: os.path.exists(os.path.join(self.tmpdir, "control.sock")), 10)
        r = subprocess.run([FUGLU_CONTROL, "-p", os.path.join(self.tmpdir, "control.sock"), "netconsole",
                            str(port)], capture_output=True, timeout=30 * SCALE)
        self.assertIn("ERR netconsole: disabled", r.stdout.decode())
        self.assertFalse(port_open(port))


class NetconsoleTcpControlTests(FugluCase):
    """A TCP control port can be reached by any local user: the netconsole (Lua as the daemon's
    user) is refused there unless controlport_allow_netconsole=1, and --lint says so."""

    @classmethod
    def prepare(cls, values):
        cls.cport = free_port()
        values["main.controlport"] = str(cls.cport)
        values["main.netconsole"] = "1"

    def test_netconsole_refused_on_tcp_and_lint_warns(self):
        if not os.access(FUGLU_CONTROL, os.X_OK):
            self.skipTest("fuglu_control not built")
        wait_for(lambda: port_open(self.cport), 10)
        port = free_port()
        r = subprocess.run([FUGLU_CONTROL, "-p", str(self.cport), "netconsole", str(port)], capture_output=True,
                           timeout=30 * SCALE)
        self.assertIn("ERR netconsole: not on a TCP control port", r.stdout.decode())
        self.assertFalse(port_open(port))
        # other commands still work there
        r = subprocess.run([FUGLU_CONTROL, "-p", str(self.cport), "uptime"], capture_output=True, timeout=30 * SCALE)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = subprocess.run([FUGLU_BIN, "--lint", "-c", self.daemon.conf], capture_output=True, timeout=60 * SCALE)
        self.assertIn("WARNING: ", r.stdout.decode())
        self.assertIn("netconsole=1 with a TCP controlport", r.stdout.decode())


class ControlSocketNotOursTests(unittest.TestCase):
    """A file that is not our socket at the control socket's path (an impostor's in a shared
    directory) stops the start with the reason, instead of a daemon without its control socket."""

    def test_foreign_file_at_the_socket_path_fails_the_start(self):
        import tempfile
        from harness import Daemon, base_config
        tmpdir = tempfile.mkdtemp(prefix="fuglu-it-")
        try:
            values = base_config(tmpdir, free_port(), free_port())
            with open(values["main.controlport"], "w") as f:
                f.write("not a socket")
            d = Daemon(tmpdir, values)
            with self.assertRaises(AssertionError) as ctx:
                d.start()
            d.stop()
            self.assertIn("exited with status 1", str(ctx.exception))
            self.assertIn("exists and is not ours (not a socket", d.log_tail(40))
            with open(values["main.controlport"]) as f:
                self.assertEqual(f.read(), "not a socket")     # left alone
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
