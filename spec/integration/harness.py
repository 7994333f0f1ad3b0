"""harness: starts the real daemon against an SMTP sink and talks SMTP to it, for the integration tests.

Each test class (a FugluCase) gets its own temporary directory, a config written from CONFIG plus the
class's `config` overrides, free loopback ports, an in-process SMTP sink (tools/smtp-sink.py) as the
downstream, and one daemon process ($FUGLU_BIN, default build/fuglu) run with -f. Everything is
stopped by PID in tearDownClass (TERM, then KILL after a bounded wait). Every wait is bounded.

Environment: FUGLU_BIN (the daemon to test), FUGLU_TEST_TIMEOUT_SCALE (multiplies the waits, e.g. 3
under a sanitizer build), FUGLU_KEEP_TMP=1 (keep the temporary directories for inspection).
"""

import base64
import getpass
import grp
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FUGLU_BIN = os.path.abspath(os.path.join(ROOT, os.environ.get("FUGLU_BIN", "build/fuglu")))
SCALE = float(os.environ.get("FUGLU_TEST_TIMEOUT_SCALE", "1"))
PLUGIN_DIR = os.path.join(ROOT, "spec", "plugins")
ID_RE = r"[0-9a-f]{32}"

_spec = importlib.util.spec_from_file_location("smtp_sink", os.path.join(ROOT, "tools", "smtp-sink.py"))
smtp_sink = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(smtp_sink)


def free_port():
    """A loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, interval=0.05):
    """Polls predicate() until it returns a true value or timeout seconds pass; returns the last value."""
    deadline = time.monotonic() + timeout * SCALE
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def banner_ready(port, host="127.0.0.1"):
    """True when the daemon greets on port: its event loop runs, so everything it sets up before
    (control socket, workers) exists. A bare connect only shows that the port is listening."""
    try:
        with socket.create_connection((host, port), timeout=2) as s:
            s.settimeout(2)
            data = b""
            while b"\n" not in data and len(data) < 1024:
                chunk = s.recv(1024)
                if not chunk:
                    break
                data += chunk
            if data.startswith(b"220"):
                s.sendall(b"QUIT\r\n")
                return True
            return False
    except OSError:
        return False


def control(where, command, timeout=10):
    """Sends one command to the control server (unix path or TCP port) and reads to EOF."""
    if isinstance(where, int):
        s = socket.create_connection(("127.0.0.1", where), timeout=timeout * SCALE)
    else:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout * SCALE)
        s.connect(where)
    with s:
        s.sendall(command.encode() + b"\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data.decode("utf-8", "replace")
            data += chunk


def dot_stuff(data):
    """SMTP DATA encoding of a message: a leading "." doubled on every line, CRLF "." CRLF at the end
    (a CRLF is added first when the data does not end with one)."""
    out = re.sub(rb"(?m)^\.", b"..", data)
    if not out.endswith(b"\r\n"):
        out += b"\r\n"
    return out + b".\r\n"


def make_message(headers=(), body="Hello.\r\n", subject="test"):
    """A small CRLF message; headers is a list of (name, value)."""
    lines = ["From: Alice <a@example.org>", "To: Bob <b@example.net>", "Subject: %s" % subject,
             "Message-ID: <%s@test.local>" % subject.replace(" ", ".")]
    lines += ["%s: %s" % hv for hv in headers]
    text = "\r\n".join(lines) + "\r\n\r\n" + body
    return text.encode("utf-8")


class SmtpError(AssertionError):
    pass


class SmtpClient:
    """A raw SMTP client: exact reply lines, pipelining, arbitrary bytes."""

    def __init__(self, port, host="127.0.0.1", timeout=10):
        self.timeout = timeout * SCALE
        self.sock = socket.create_connection((host, port), timeout=self.timeout)
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def read_line(self, timeout=None):
        """One line without CRLF, or None on EOF. Raises socket.timeout after timeout seconds."""
        self.sock.settimeout(timeout * SCALE if timeout else self.timeout)
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                if self.buf:
                    line, self.buf = self.buf, b""
                    return line.decode("utf-8", "replace")
                return None
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def reply(self, timeout=None):
        """(code, [text of each line]) of one (possibly multi-line) reply; (None, []) on EOF."""
        texts = []
        while True:
            line = self.read_line(timeout)
            if line is None:
                if texts:
                    raise SmtpError("connection closed inside a multi-line reply: %r" % texts)
                return None, []
            m = re.match(r"^(\d{3})([ -])(.*)$", line) or re.match(r"^(\d{3})()$", line)
            if not m:
                raise SmtpError("malformed reply line %r" % line)
            texts.append(m.group(3))
            if m.group(2) != "-":
                return int(m.group(1)), texts

    def reply_line(self, timeout=None):
        """A single-line reply as "CODE TEXT" (what tests compare exactly)."""
        code, texts = self.reply(timeout)
        if code is None:
            return None
        return "%d %s" % (code, texts[-1]) if len(texts) == 1 else "%d %s" % (code, "|".join(texts))

    def cmd(self, line, timeout=None):
        self.send(line + "\r\n")
        return self.reply_line(timeout)

    def expect(self, line, code):
        got = self.cmd(line)
        if got is None or not got.startswith("%d" % code):
            raise SmtpError("%s: expected %d, got %r" % (line, code, got))
        return got

    def banner_and_ehlo(self, name="client.test.local"):
        banner = self.reply_line()
        if not banner or not banner.startswith("220"):
            raise SmtpError("banner: %r" % banner)
        self.send("EHLO %s\r\n" % name)
        code, texts = self.reply()
        if code != 250:
            raise SmtpError("EHLO: %r %r" % (code, texts))
        return banner, texts

    def send_message(self, mail_from, rcpts, data, mail_params="", rcpt_params=""):
        """MAIL, RCPT..., DATA, the dot-stuffed data; returns the final reply line."""
        self.expect("MAIL FROM:<%s>%s" % (mail_from, " " + mail_params if mail_params else ""), 250)
        for r in rcpts:
            self.expect("RCPT TO:<%s>%s" % (r, " " + rcpt_params if rcpt_params else ""), 250)
        self.expect("DATA", 354)
        self.send(dot_stuff(data))
        return self.reply_line(timeout=30)


def _config_text(values):
    sections = {}
    for key, value in values.items():
        section, _, option = key.partition(".")
        sections.setdefault(section, []).append((option, value))
    out = []
    for section, options in sections.items():
        out.append("[%s]" % section)
        out += ["%s = %s" % (k, v) for k, v in options if v is not None]
        out.append("")
    return "\n".join(out)


def run_lint(tmpdir, values, name="lint.conf"):
    """fuglu --lint on a config made of base_config plus values; returns (exit status, stdout +
    stderr as text)."""
    config = base_config(tmpdir, free_port(), free_port())
    config.update(values)
    path = os.path.join(tmpdir, name)
    with open(path, "w") as f:
        f.write(_config_text(config))
    r = subprocess.run([FUGLU_BIN, "--lint", "-c", path], capture_output=True, timeout=60 * SCALE, cwd=tmpdir)
    return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace")


class Daemon:
    """One daemon process with its config, log and pidfile in tmpdir."""

    def __init__(self, tmpdir, values):
        self.tmpdir = tmpdir
        self.values = values
        self.conf = os.path.join(tmpdir, "fuglu.conf")
        self.log = os.path.join(tmpdir, "fuglu.log")
        self.pidfile = os.path.join(tmpdir, "fuglu.pid")
        self.proc = None
        with open(self.conf, "w") as f:
            f.write(_config_text(values))

    @property
    def port(self):
        return int(self.values["main.incomingport"].rsplit(":", 1)[1])

    def start(self, wait=True):
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen([FUGLU_BIN, "-f", "-c", self.conf, "--pidfile", self.pidfile],
                                     stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, cwd=self.tmpdir)
        logf.close()
        if wait:
            ready = wait_for(lambda: self.proc.poll() is not None or banner_ready(self.port), 15)
            if self.proc.poll() is not None:
                raise AssertionError("%s exited with status %s at startup; log:\n%s"
                                     % (FUGLU_BIN, self.proc.returncode, self.log_tail()))
            if not ready:
                self.stop()
                raise AssertionError("%s not listening on port %d after 15 s; log:\n%s"
                                     % (FUGLU_BIN, self.port, self.log_tail()))
        return self

    def stop(self, timeout=10):
        """SIGTERM, bounded wait, then SIGKILL. Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout * SCALE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        status = self.proc.returncode
        self.proc = None
        return status

    def log_tail(self, lines=40):
        try:
            with open(self.log, "rb") as f:
                return b"\n".join(f.read().splitlines()[-lines:]).decode("utf-8", "replace")
        except OSError:
            return "(no log)"

    def log_size(self):
        try:
            return os.path.getsize(self.log)
        except OSError:
            return 0

    def log_settled_size(self, quiet=0.1, timeout=3):
        """The log's size once nothing was added for `quiet` seconds (bounded by timeout): the
        daemon's log writer gathers lines for a few milliseconds when it is busy, so a line about
        something that already happened may still be on its way."""
        deadline = time.monotonic() + timeout * SCALE
        size, since = self.log_size(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.02)
            now = self.log_size()
            if now != size:
                size, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet:
                break
        return size

    def wait_log(self, needle, timeout=10, lines=200):
        """Waits until needle appears in the last `lines` lines of the log; returns whether it did."""
        return bool(wait_for(lambda: needle in self.log_tail(lines), timeout))


def base_config(tmpdir, port, sink_port):
    user = getpass.getuser()
    group = grp.getgrgid(os.getgid()).gr_name
    os.makedirs(os.path.join(tmpdir, "tmp"), exist_ok=True)
    return {
        "main.daemonize": "0",
        "main.user": user,
        "main.group": group,
        "main.incomingport": "smtp:127.0.0.1:%d" % port,
        "main.outgoinghost": "127.0.0.1",
        "main.outgoingport": str(sink_port),
        "main.outgoinghelo": "fuglu.test.local",
        "main.tempdir": os.path.join(tmpdir, "tmp"),
        "main.plugindir": PLUGIN_DIR,
        "main.plugins": "testaction",
        "main.prependers": "",
        "main.appenders": "",
        "main.controlport": os.path.join(tmpdir, "control.sock"),
        "main.mrtgdir": "",
        "main.reinject_timeout": "10",
        "performance.minthreads": "2",
        "performance.maxthreads": "4",
    }


class FugluCase(unittest.TestCase):
    """Base class: one daemon + sink per test class. Subclasses set `config` (overrides, value None
    removes an option), `start_sink`, `sink_fail`."""

    config = {}
    start_sink = True
    sink_fail = None

    @classmethod
    def setUpClass(cls):
        if not os.access(FUGLU_BIN, os.X_OK):
            raise unittest.SkipTest("%s not built" % FUGLU_BIN)
        cls.tmpdir = tempfile.mkdtemp(prefix="fuglu-it-")
        cls.sink = None
        cls.daemon = None
        try:
            port = free_port()
            if cls.start_sink:
                cls.sink = smtp_sink.SmtpSink(os.path.join(cls.tmpdir, "sink"), fail=cls.sink_fail).start()
                sink_port = cls.sink.port
            else:
                sink_port = free_port()    # nothing listens there: downstream down
            values = base_config(cls.tmpdir, port, sink_port)
            for k, v in cls.config.items():
                values[k] = v
            cls.port = port
            cls.prepare(values)
            cls.daemon = Daemon(cls.tmpdir, values).start()
        except BaseException:
            cls._cleanup()
            raise

    @classmethod
    def prepare(cls, values):
        """Called before the daemon starts, with cls.tmpdir made: subclasses write their own files
        (plugins, logging.conf) there and adjust the config values."""

    @classmethod
    def _cleanup(cls):
        if cls.daemon is not None:
            cls.daemon.stop()
        if cls.sink is not None:
            cls.sink.stop()
        if os.environ.get("FUGLU_KEEP_TMP") != "1":
            shutil.rmtree(cls.tmpdir, ignore_errors=True)

    @classmethod
    def tearDownClass(cls):
        cls._cleanup()

    def daemon_log_tail(self):
        return self.daemon.log_tail() if getattr(self, "daemon", None) else ""

    def client(self, **kw):
        return SmtpClient(self.port, **kw)

    def sink_count(self):
        return len(self.sink.messages())

    def wait_sink(self, count, timeout=10):
        """Waits until the sink holds at least count messages; returns the list."""
        wait_for(lambda: self.sink_count() >= count, timeout)
        return self.sink.messages()

    def send_probe(self, headers, subject, body="Hello.\r\n"):
        """Sends a message to a probe plugin (spec/plugins/probe_support.lua) and returns what it
        reported in the X-Probe-Result header of the delivered copy: a dict of key=value lines."""
        before = self.sink_count()
        reply = self.send_one(make_message(list(headers), subject=subject, body=body))
        self.assertTrue(reply.startswith("250 "), "%s: %s\n%s" % (subject, reply, self.daemon.log_tail(30)))
        data = self.wait_sink(before + 1)[-1][1]
        self.assertIn(b"X-Probe-Result: ", data, data[:2000])
        value = data.split(b"X-Probe-Result: ", 1)[1].split(b"\r\n", 1)[0]
        return dict(line.partition("=")[::2]
                    for line in base64.b64decode(value).decode("utf-8", "replace").split("\n"))

    def send_one(self, data, mail_from="a@example.org", rcpts=("b@example.net",), **kw):
        with self.client() as c:
            c.banner_and_ehlo()
            reply = c.send_message(mail_from, rcpts, data, **kw)
            c.cmd("QUIT")
            return reply
