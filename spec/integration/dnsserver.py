"""DNS servers for the tests, on loopback only.

Unbound: the real server (Debian's unbound), started with a config of local zones and nothing
else: `local-zone: "." refuse` keeps it from ever asking the Internet, and no trust anchor is
configured, so it sends no query anywhere. Stopped by PID.

StubDns: a misbehaving or counting server in a Python thread, for what a real server does not do
on demand: answer SERVFAIL, say nothing, count the queries it gets (the cache test).
"""

import os
import shutil
import socket
import struct
import subprocess
import threading
import time

from redisserver import stop_process

UNBOUND = shutil.which("unbound") or "/usr/sbin/unbound"


def free_udp_port():
    """A port free for both UDP and TCP on 127.0.0.1 (unbound listens on both)."""
    for _ in range(50):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        t = socket.socket()
        try:
            t.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()
    raise RuntimeError("no free port")


class Unbound:
    def __init__(self, tmpdir, records, zones=("test.",), log_queries=True, threads=1):
        """records: lines of zone data ("name. TTL IN TYPE data"); zones: the local zones they
        belong to (each answered with NXDOMAIN for names it does not have). log_queries: for
        queries(); the benchmark turns it off (a log line per query costs unbound more than the
        answer)."""
        self.dir = os.path.join(tmpdir, "unbound")
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_udp_port()
        self.proc = None
        lines = [
            "server:",
            "  interface: 127.0.0.1@%d" % self.port,
            "  port: %d" % self.port,
            "  do-daemonize: no",
            '  username: ""',
            '  chroot: ""',
            '  directory: "%s"' % self.dir,
            '  pidfile: "%s/unbound.pid"' % self.dir,
            "  use-syslog: no",
            '  logfile: "%s/unbound.log"' % self.dir,
            "  verbosity: 1",
            "  log-queries: %s" % ("yes" if log_queries else "no"),
            "  num-threads: %d" % threads,
            "  access-control: 127.0.0.0/8 allow",
            "  do-not-query-localhost: yes",
            '  module-config: "iterator"',
            "  cache-max-ttl: 0",
            '  local-zone: "." refuse',
        ]
        for z in zones:
            lines.append('  local-zone: "%s" static' % z)
        for r in records:
            lines.append("  local-data: '%s'" % r if '"' in r else '  local-data: "%s"' % r)
        self.conf = os.path.join(self.dir, "unbound.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self):
        self.proc = subprocess.Popen([UNBOUND, "-d", "-c", self.conf], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "stderr"), "wb"))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("unbound exited: %s" % self.log())
            if query_a("127.0.0.1", self.port, "ready.probe.invalid") is not None:
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("unbound did not answer within 15 s: %s" % self.log())

    def log(self):
        out = ""
        for name in ("stderr", "unbound.log"):
            try:
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    out += f.read()[-3000:]
            except OSError:
                pass
        return out

    def queries(self, name):
        """How many queries for name the log shows."""
        return self.log().count(" %s. " % name)

    def stop(self):
        stop_process(self.proc)
        self.proc = None


def query_a(host, port, name, timeout=0.5):
    """One A query over UDP; the rcode, or None without an answer."""
    q = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + encode_name(name) + struct.pack(">HH", 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(q, (host, port))
        data, _ = s.recvfrom(4096)
        return struct.unpack(">H", data[2:4])[0] & 0x0F
    except OSError:
        return None
    finally:
        s.close()


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


class StubDns:
    """mode "servfail": every answer SERVFAIL; "silent": no answer; "count": A 192.0.2.99 with TTL
    60 for every name (NXDOMAIN with a 30 s SOA minimum for names starting with "nx"), counting
    the queries per name."""

    def __init__(self, mode):
        self.mode = mode
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.counts = {}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def run(self):
        while not self.stopping.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                continue
            if len(data) < 12:
                continue
            qid = data[:2]
            p, labels = 12, []
            while p < len(data) and data[p]:
                labels.append(data[p + 1:p + 1 + data[p]].decode("ascii", "replace"))
                p += 1 + data[p]
            name = ".".join(labels).lower()
            question = data[12:p + 5]
            self.counts[name] = self.counts.get(name, 0) + 1
            if self.mode == "silent":
                continue
            if self.mode == "servfail":
                reply = qid + struct.pack(">HHHHH", 0x8182, 1, 0, 0, 0) + question
            elif name.startswith("nx"):
                soa = (b"\xc0\x0c" + struct.pack(">HHIH", 6, 1, 300, 22) + b"\0\0"
                       + struct.pack(">IIIII", 1, 3600, 600, 86400, 30))
                reply = qid + struct.pack(">HHHHH", 0x8183, 1, 0, 1, 0) + question + soa
            else:
                rr = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + bytes([192, 0, 2, 99])
                reply = qid + struct.pack(">HHHHH", 0x8180, 1, 1, 0, 0) + question + rr
            try:
                self.sock.sendto(reply, peer)
            except OSError:
                pass

    def stop(self):
        self.stopping.set()
        self.thread.join(5)
        self.sock.close()
