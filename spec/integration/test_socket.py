"""Integration: the plugin socket API (fuglu_socket) in the daemon's workers, against stub services
that behave and that misbehave (silent, slow, closing mid-reply, sending garbage, refusing).

A probe plugin runs the scenario named in the message's X-Probe header against the stub whose
address is in X-Probe-Peer, and adds what it saw as an X-Probe-Result header (base64 of
"key=value" lines); the test reads it from the delivered message. The stub services are Python
threads on loopback (TCP on 127.0.0.1 and ::1, a unix socket, UDP), stopped with the test class.
"""

import hashlib
import json
import os
import socket
import socketserver
import ssl
import subprocess
import threading
import time

from harness import FugluCase, PLUGIN_DIR, SCALE, control, free_port, make_message, wait_for

PROBE_PLUGIN = r'''
local plugin = require "fuglu.plugin"
local actions = require "fuglu.actions"
local socket = require "fuglu_socket"
local sys = require "fuglu_sys"
local log = require "fuglu.log"

local ProbePlugin = plugin.scanner{ name = "ProbePlugin", description = "socket API probe" }
local logger = log.logger("fuglu.plugin.ProbePlugin")

local function peer(spec)
    if spec:sub(1, 5) == "unix:" then return spec end
    local host, port = spec:match("^(.*):(%d+)$")
    return host, tonumber(port)
end

local function connect(spec, ms)
    local s = socket.tcp()
    s:settimeouts(ms or 2000, ms or 2000, ms or 2000)
    local ok, err = s:connect(peer(spec))
    return s, ok, err
end

local scenarios = {}

function scenarios.ping(r, spec)
    local s, ok, err = connect(spec)
    r.connect = tostring(ok or err)
    if not ok then return end
    r.sent = tostring(s:send("PING\n"))
    local line, rerr = s:receive()
    r.reply = tostring(line or rerr)
    s:close()
end

function scenarios.instream(r, spec, suspect)
    local s, ok, err = connect(spec)
    if not ok then r.connect = err return end
    s:send("zINSTREAM\0")
    r.sent = tostring(s:send(suspect.message, { chunk = 1000, frame = "u32be", terminate = true }))
    local reply, rerr = s:receiveuntil("\0")
    r.reply = tostring(reply or rerr)
    r.size = tostring(suspect.size)
    s:close()
end

function scenarios.silent(r, spec)
    local s, ok = connect(spec, 300)
    if not ok then return end
    s:send("SILENT\n")
    local t0 = sys.monotonic()
    local line, err = s:receive()
    r.line = tostring(line)
    r.err = tostring(err)
    r.elapsed = string.format("%.3f", sys.monotonic() - t0)
    s:close()
end

function scenarios.half(r, spec)
    local s = connect(spec)
    s:send("HALF\n")
    local data, err, partial = s:receive(10)
    r.data, r.err, r.partial = tostring(data), tostring(err), tostring(partial)
    s:close()
end

function scenarios.garbage(r, spec)
    local s = connect(spec)
    s:send("GARBAGE\n")
    local line, err, partial = s:receive("*l", 65536)
    r.line, r.err, r.partial_len = tostring(line), tostring(err), tostring(partial and #partial)
    s:close()
end

function scenarios.slow(r, spec)
    local s = connect(spec)
    s:send("SLOW\n")
    local line, err = s:receive()
    r.line = tostring(line or err)
    s:close()
end

function scenarios.eof(r, spec)
    local s = connect(spec)
    s:send({ "EOF\n", "hello", " world" })
    r.shutdown = tostring(s:shutdown("send"))
    local all, err = s:receive("*a")
    r.all = tostring(all or err)
    s:close()
end

function scenarios.refused(r, spec)
    local _, ok, err = connect(spec)
    r.ok, r.err = tostring(ok), tostring(err)
end

function scenarios.badaddr(r)
    local _, ok, err = connect("mail.example.org:25")
    r.ok, r.err = tostring(ok), tostring(err)
end

-- Two requests: the second connect finds the first connection in this worker's pool.
function scenarios.keepalive(r, spec)
    for i = 1, 2 do
        local s, ok, err = connect(spec)
        if not ok then r.err = err return end
        r["reused" .. i] = tostring(s:getreusedtimes())
        s:send("PING\n")
        r["reply" .. i] = tostring(s:receive())
        r["keep" .. i] = tostring(s:setkeepalive(10000, 4))
    end
end

function scenarios.cycles(r, spec)
    local n = 0
    for _ = 1, 1000 do
        local s, ok = connect(spec)
        if ok then n = n + 1 end
        s:close()
    end
    r.connected = tostring(n)
end

function scenarios.udp(r, spec)
    local s = socket.udp()
    s:settimeout(2000)
    r.peer = tostring(s:setpeername(peer(spec)))
    r.sent = tostring(s:send("ping over udp"))
    r.reply = tostring(s:receive())
    s:close()
end

function scenarios.tls(r, spec, suspect)
    local ca = suspect:get_message_rep():header("X-Probe-CA")[1]
    local function try(opts)
        local s, ok, err = connect(spec)
        if not ok then return err end
        ok, err = s:sslhandshake(opts)
        if not ok then s:close() return err end
        s:send("PING\n")
        local line, rerr = s:receive()
        s:close()
        return tostring(line or rerr)
    end
    r.trusted = try{ servername = "web.test", cafile = ca }
    r.untrusted = try{ servername = "web.test" }
    r.wrongname = try{ servername = "other.test", cafile = ca }
    r.noverify = try{ verify = false }
    r.byaddress = try{ cafile = ca }          -- no servername: the certificate's IP is checked
end

-- A long read timeout: the message's scan_timeout ends the read first.
function scenarios.deadline(r, spec)
    local s, ok = connect(spec, 60000)
    if not ok then return end
    s:send("SILENT\n")
    local t0 = sys.monotonic()
    local _, err = s:receive()
    logger:warning(string.format("probe deadline: %s after %.1f s", tostring(err), sys.monotonic() - t0))
    s:close()
end

-- A silent service and a plugin that defers on a service problem (a scanner's problemaction).
function scenarios.problem(r, spec)
    local s, ok, err = connect(spec, 200)
    if ok then
        s:send("SILENT\n")
        ok, err = s:receive()
        s:close()
    end
    if not ok then return actions.DEFER, "service problem: " .. tostring(err) end
end

ProbePlugin.examine = require("probe_support").examine(scenarios, function(_, msg)
    return msg:header("X-Probe-Peer")[1] or ""
end)

return ProbePlugin
'''


class StubHandler(socketserver.BaseRequestHandler):
    """One connection: commands on lines (or zINSTREAM ended by NUL), as the scenarios need."""

    def handle(self):
        conn = self.request
        conn.settimeout(30)
        buf = b""
        try:
            while True:
                while b"\n" not in buf and b"\0" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                cut = min(i for i in (buf.find(b"\n"), buf.find(b"\0")) if i >= 0)
                cmd, buf = buf[:cut].decode(), buf[cut + 1:]
                if cmd == "PING":
                    conn.sendall(b"PONG\r\n")
                elif cmd == "zINSTREAM":
                    body = b""
                    frames = 0
                    while True:
                        while len(buf) < 4:
                            data = conn.recv(65536)
                            if not data:
                                return
                            buf += data
                        n = int.from_bytes(buf[:4], "big")
                        buf = buf[4:]
                        if n == 0:
                            break
                        while len(buf) < n:
                            data = conn.recv(65536)
                            if not data:
                                return
                            buf += data
                        body, buf = body + buf[:n], buf[n:]
                        frames += 1
                    conn.sendall(b"stream: %d %d %s\0" % (len(body), frames, hashlib.sha256(body).hexdigest().encode()))
                elif cmd == "SILENT":
                    self.server.stopping.wait(60)
                    return
                elif cmd == "HALF":
                    conn.sendall(b"abc")
                    return
                elif cmd == "GARBAGE":
                    conn.sendall(os.urandom(1 << 20).replace(b"\n", b"x"))
                    return
                elif cmd == "SLOW":
                    for ch in b"S-L-O-W\r\n":
                        conn.sendall(bytes([ch]))
                        time.sleep(0.03)
                elif cmd == "EOF":
                    while True:
                        data = conn.recv(65536)
                        if not data:
                            break
                        buf += data
                    conn.sendall(b"got %d [%s]" % (len(buf), buf))
                    return
        except OSError:
            return


class TlsEcho:
    """A TLS server answering PING with PONG, with a certificate for web.test and 127.0.0.1."""

    def __init__(self, tmpdir):
        self.cert = os.path.join(tmpdir, "tls.pem")
        key = os.path.join(tmpdir, "tls.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=web.test", "-addext", "subjectAltName=DNS:web.test,IP:127.0.0.1",
                        "-keyout", key, "-out", self.cert], check=True, capture_output=True, timeout=60)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(self.cert, key)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.server_address = self.sock.getsockname()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        try:
            conn.settimeout(10)
            tls = self.ctx.wrap_socket(conn, server_side=True)
            if tls.recv(100).startswith(b"PING"):
                tls.sendall(b"PONG\r\n")
            tls.close()
        except (OSError, ssl.SSLError):
            conn.close()

    def shutdown(self):
        self.stopping.set()
        self.thread.join(5)

    def server_close(self):
        self.sock.close()


class ThreadingTCP6(socketserver.ThreadingTCPServer):
    address_family = socket.AF_INET6


def start_stub(server):
    server.daemon_threads = True
    server.stopping = threading.Event()
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    return server


class Acceptor:
    """Accepts and closes at once, as fast as it can (for the connect/close cycles)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4096)
        self.sock.settimeout(0.1)
        self.server_address = self.sock.getsockname()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
                conn.close()
            except OSError:
                continue

    def shutdown(self):
        self.stopping.set()
        self.thread.join(5)

    def server_close(self):
        self.sock.close()


class UdpEcho(socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request
        sock.sendto(b"echo: " + data, self.client_address)


class SocketApiTests(FugluCase):
    config = {"performance.minthreads": "1", "performance.maxthreads": "1", "main.scan_timeout": "4"}

    @classmethod
    def prepare(cls, values):
        plugdir = os.path.join(cls.tmpdir, "plugins")
        os.makedirs(plugdir)
        with open(os.path.join(plugdir, "probe.lua"), "w") as f:
            f.write(PROBE_PLUGIN)
        values["main.plugindir"] = "%s,%s" % (plugdir, PLUGIN_DIR)
        values["main.plugins"] = "probe"
        socketserver.TCPServer.allow_reuse_address = True
        cls.stubs = [start_stub(socketserver.ThreadingTCPServer(("127.0.0.1", 0), StubHandler))]
        cls.tcp = "127.0.0.1:%d" % cls.stubs[0].server_address[1]
        try:
            cls.stubs.append(start_stub(ThreadingTCP6(("::1", 0), StubHandler)))
            cls.tcp6 = "[::1]:%d" % cls.stubs[-1].server_address[1]
        except OSError:
            cls.tcp6 = None
        cls.unix_path = os.path.join(cls.tmpdir, "stub.sock")
        cls.stubs.append(start_stub(socketserver.ThreadingUnixStreamServer(cls.unix_path, StubHandler)))
        cls.stubs.append(start_stub(socketserver.ThreadingUDPServer(("127.0.0.1", 0), UdpEcho)))
        cls.udp = "127.0.0.1:%d" % cls.stubs[-1].server_address[1]
        cls.stubs.append(Acceptor())
        cls.acceptor = "127.0.0.1:%d" % cls.stubs[-1].server_address[1]
        cls.stubs.append(TlsEcho(cls.tmpdir))
        cls.tls = "127.0.0.1:%d" % cls.stubs[-1].server_address[1]
        cls.tls_ca = cls.stubs[-1].cert

    @classmethod
    def _cleanup(cls):
        for s in getattr(cls, "stubs", []):
            s.stopping.set()
            s.shutdown()
            s.server_close()
        super()._cleanup()

    def probe(self, name, peer, subject=None, body="Hello.\r\n", headers=()):
        return self.send_probe([("X-Probe", name), ("X-Probe-Peer", peer)] + list(headers), subject or name, body)

    def test_ping_ipv4_ipv6_unix(self):
        for peer in (self.tcp, self.tcp6, "unix:" + self.unix_path):
            if peer is None:
                continue
            r = self.probe("ping", peer)
            self.assertEqual(r, {"connect": "true", "sent": "5", "reply": "PONG"}, peer)

    def test_message_streamed_in_instream_frames(self):
        body = "".join("line %05d of a message streamed in frames\r\n" % i for i in range(200))
        r = self.probe("instream", self.tcp, body=body)
        size = int(r["size"])
        length, frames, digest = r["reply"].split(" ")[1:]
        self.assertEqual(int(length), size)
        self.assertEqual(int(frames), (size + 999) // 1000)
        self.assertEqual(r["sent"], str(size))
        self.assertGreater(size, 8000)
        self.assertEqual(len(digest), 64)

    def test_silent_service_times_out_on_the_read_timeout(self):
        r = self.probe("silent", self.tcp)
        self.assertEqual(r["line"], "nil")
        self.assertEqual(r["err"], "read from %s: timed out" % self.tcp)
        self.assertGreaterEqual(float(r["elapsed"]), 0.29)
        self.assertLess(float(r["elapsed"]), 1.5 * SCALE)

    def test_close_mid_reply_returns_the_partial_data(self):
        r = self.probe("half", self.tcp)
        self.assertEqual(r, {"data": "nil", "err": "read from %s: closed by the peer" % self.tcp, "partial": "abc"})

    def test_garbage_without_line_end_is_bounded(self):
        r = self.probe("garbage", self.tcp)
        self.assertEqual(r["line"], "nil")
        self.assertIn("too much data before the delimiter", r["err"])
        self.assertLess(int(r["partial_len"]), 200000)

    def test_slow_byte_by_byte_reply(self):
        self.assertEqual(self.probe("slow", self.tcp)["line"], "S-L-O-W")

    def test_shutdown_send_side_and_read_to_end(self):
        r = self.probe("eof", self.tcp)
        self.assertEqual(r["shutdown"], "true")
        self.assertEqual(r["all"], "got 11 [hello world]")

    def test_refused_and_unresolved_are_errors_not_exceptions(self):
        port = free_port()
        r = self.probe("refused", "127.0.0.1:%d" % port)
        self.assertEqual(r, {"ok": "nil", "err": "connect to 127.0.0.1:%d: Connection refused" % port})
        r = self.probe("badaddr", "")
        self.assertEqual(r["ok"], "nil")
        self.assertIn("names are not looked up", r["err"])

    def test_keepalive_reuses_the_connection(self):
        r = self.probe("keepalive", self.tcp)
        self.assertEqual((r["reused1"], r["reused2"]), ("0", "1"), r)
        self.assertEqual((r["reply1"], r["reply2"]), ("PONG", "PONG"))
        self.assertEqual((r["keep1"], r["keep2"]), ("true", "true"))

    def test_tls_verifies_the_certificate_and_the_name(self):
        r = self.probe("tls", self.tls, headers=[("X-Probe-CA", self.tls_ca)])
        self.assertEqual(r["trusted"], "PONG")
        self.assertIn("TLS with %s" % self.tls, r["untrusted"])
        self.assertIn("certificate verify failed", r["untrusted"])
        self.assertIn("certificate verify failed", r["wrongname"])
        self.assertIn("hostname mismatch", r["wrongname"])
        self.assertEqual(r["noverify"], "PONG")
        self.assertEqual(r["byaddress"], "PONG")

    def test_udp(self):
        r = self.probe("udp", self.udp)
        self.assertEqual(r, {"peer": "true", "sent": "13", "reply": "echo: ping over udp"})

    def test_no_descriptor_left_after_1000_connect_close_cycles(self):
        def fds():   # the daemon's and its worker processes' (process backend)
            pids, n = [self.daemon.proc.pid], 0
            while pids:
                pid = pids.pop()
                n += len(os.listdir("/proc/%d/fd" % pid))
                with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
                    pids += [int(c) for c in f.read().split()]
            return n
        self.probe("ping", self.tcp)        # warm: the plugin and the worker exist
        before = fds()
        r = self.probe("cycles", self.acceptor)
        self.assertEqual(r["connected"], "1000")
        self.assertLessEqual(fds(), before + 1)   # one: the keepalive test's pooled connection may come

    def test_the_message_deadline_ends_a_long_read(self):
        """A read with a 60 s timeout ends shortly before scan_timeout (4 s) answers the client:
        the plugin sees the timeout and the message still gets its own verdict (here: delivered)."""
        start = time.monotonic()
        reply = self.send_one(make_message([("X-Probe", "deadline"), ("X-Probe-Peer", self.tcp)]))
        self.assertTrue(reply.startswith("250"), reply)
        self.assertLess(time.monotonic() - start, 4)
        found = wait_for(lambda: "probe deadline: read from %s: timed out (the message's scan_timeout)" % self.tcp
                         in self.daemon.log_tail(60), 10 * SCALE)
        self.assertTrue(found, self.daemon.log_tail(40))
        self.assertLess(time.monotonic() - start, 10 * SCALE)
        # the worker is free again at once
        r = self.probe("ping", self.tcp)
        self.assertEqual(r["reply"], "PONG")

    def test_a_hung_service_costs_the_plugin_its_timeout_not_the_worker(self):
        """50 messages in a row against a service that accepts and never answers: each is answered
        by the plugin's problem action (DEFER) within its 200 ms timeout, and the pool is as it was."""
        start = time.monotonic()
        for i in range(50):
            t0 = time.monotonic()
            reply = self.send_one(make_message([("X-Probe", "problem"), ("X-Probe-Peer", self.tcp)],
                                               subject="hung %d" % i))
            self.assertTrue(reply.startswith("4"), reply)
            self.assertIn("service problem: read from %s: timed out" % self.tcp, reply)
            self.assertLess(time.monotonic() - t0, 2 * SCALE)
        self.assertLess(time.monotonic() - start, 50 * SCALE)
        self.assertEqual(self.probe("ping", self.tcp)["reply"], "PONG")


    def test_zz_network_calls_in_pluginstats(self):
        """Each plugin's socket calls are counted, with errors and time, in pluginstats (text and
        JSON), whichever backend made them."""
        self.probe("ping", self.tcp)
        self.probe("silent", self.tcp)
        sock = os.path.join(self.tmpdir, "control.sock")
        stats = json.loads(control(sock, "pluginstats --json"))
        net = stats["ProbePlugin"]["network"]["socket"]
        self.assertGreaterEqual(net["calls"], 6, stats)          # connect, send, receive twice at least
        self.assertGreaterEqual(net["errors"], 1, stats)         # the silent read
        self.assertGreater(net["seconds"], 0.25, stats)          # the 300 ms timeout is in it
        self.assertEqual(stats["ProbePlugin"]["network"]["dns"]["calls"], 0)
        text = control(sock, "pluginstats")
        self.assertRegex(text, r"(?m)^ProbePlugin\s+socket\s+\d+\s+\d+\s+[\d.]+$")


class SocketApiProcesses(SocketApiTests):
    config = {"performance.backend": "process", "performance.initialprocs": "1", "main.scan_timeout": "4"}
