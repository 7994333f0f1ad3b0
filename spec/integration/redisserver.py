"""A real redis-server (and a Sentinel) for the tests, on 127.0.0.1 only, no persistence; started
with a config in the test's temp dir and stopped by PID."""

import os
import shutil
import signal
import socket
import subprocess
import time

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"


def stop_process(proc, timeout=10):
    """SIGTERM, a bounded wait, then SIGKILL (a server a test started, by its PID)."""
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Redis:
    def __init__(self, tmpdir, name="redis", password=None, sentinel_of=None):
        """sentinel_of: (port, password) of the primary this one watches as a Sentinel."""
        self.dir = os.path.join(tmpdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.password = password
        self.sentinel = sentinel_of is not None
        lines = ["port %d" % self.port, "bind 127.0.0.1", 'dir "%s"' % self.dir, "daemonize no",
                 'logfile "%s/redis.log"' % self.dir, 'pidfile "%s/redis.pid"' % self.dir]
        if self.sentinel:
            mport, mpass = sentinel_of
            lines += ["sentinel monitor mymaster 127.0.0.1 %d 1" % mport]
            if mpass:
                lines += ["sentinel auth-pass mymaster %s" % mpass]
        else:
            lines += ['save ""', "appendonly no"]
            if password:
                lines += ["requirepass %s" % password]
        self.conf = os.path.join(self.dir, "redis.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = None

    def start(self):
        args = [REDIS_SERVER, self.conf] + (["--sentinel"] if self.sentinel else [])
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("redis-server exited: %s" % self.log())
            if self.cli("PING").strip() in ("PONG", "NOAUTH Authentication required."):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not answer within 15 s: %s" % self.log())

    def cli(self, *args, db=0):
        cmd = [REDIS_CLI, "-h", "127.0.0.1", "-p", str(self.port), "-n", str(db)]
        if self.password and not self.sentinel:
            cmd += ["--no-auth-warning", "-a", self.password]
        try:
            r = subprocess.run(cmd + list(args), capture_output=True, timeout=10)
            return r.stdout.decode("utf-8", "replace")
        except (OSError, subprocess.TimeoutExpired):
            return ""

    def log(self):
        try:
            with open(os.path.join(self.dir, "redis.log"), errors="replace") as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def stop(self):
        stop_process(self.proc)
        self.proc = None
