"""Integration: HTTP and HTTPS from plugins (fuglu.http on fuglu_http, libcurl) against local HTTP
servers (Python's http.server over plain TCP and over TLS with a certificate made for the test),
names looked up through a real unbound on loopback.

A probe plugin runs the scenario named in X-Probe and adds the results as an X-Probe-Result header
(base64 of "key=value" lines), as in test_socket.
"""

import hashlib
import http.server
import os
import ssl
import subprocess
import threading
import time

from dnsserver import Unbound
import re
import urllib.request

from harness import FugluCase, PLUGIN_DIR, SCALE, free_port

PROBE_PLUGIN = r'''
local plugin = require "fuglu.plugin"
local http = require "fuglu.http"
local sys = require "fuglu_sys"

local HttpProbe = plugin.scanner{ name = "HttpProbe", description = "HTTP API probe" }

local function header(suspect, name) return suspect:get_message_rep():header(name)[1] end

local scenarios = {}

function scenarios.get(r, suspect)
    local base = header(suspect, "X-Probe-Base")
    local res, err = http.get(base .. "/echo?x=1", { headers = { ["X-Custom"] = "v1", ["X-Evil"] = "a\r\nInjected: 1", ["X-Rcpt"] = { "a@x", "b@y" } } })
    if not res then r.err = err return end
    r.status, r.body = tostring(res.status), res.body
    r.ctype, r.multi = tostring(res.headers["content-type"]), tostring(res.headers["x-multi"])
    local nf = http.get(base .. "/missing")
    r.notfound = tostring(nf and nf.status)
    for i = 1, 3 do http.get(base .. "/echo") end
end

function scenarios.post(r, suspect)
    local base = header(suspect, "X-Probe-Base")
    local res, err = http.post(base .. "/hash", suspect.message, { headers = { ["Content-Type"] = "message/rfc822" } })
    if not res then r.err = err return end
    r.body, r.size = res.body, tostring(suspect.size)
    local put = http.request{ method = "PUT", url = base .. "/hash", body = "abc" }
    r.put = put and put.body or "nil"
end

function scenarios.slow(r, suspect)
    local t0 = sys.monotonic()
    local res, err = http.get(header(suspect, "X-Probe-Base") .. "/slow", { timeout = 300 })
    r.res, r.err = tostring(res), tostring(err)
    r.elapsed = string.format("%.3f", sys.monotonic() - t0)
end

function scenarios.big(r, suspect)
    local res, err = http.get(header(suspect, "X-Probe-Base") .. "/big", { maxbody = 100000 })
    r.res, r.err = tostring(res), tostring(err)
end

function scenarios.tls(r, suspect)
    local url = header(suspect, "X-Probe-Base") .. "/echo"
    local res, err = http.get(url)
    r.untrusted = tostring(res and res.status or err)
    res, err = http.get(url, { cafile = header(suspect, "X-Probe-CA") })
    r.trusted = tostring(res and res.status or err)
    res, err = http.get(url, { verify = false })
    r.noverify = tostring(res and res.status or err)
end

function scenarios.names(r, suspect)
    local res, err = http.get(header(suspect, "X-Probe-Base") .. "/echo")
    r.byname = tostring(res and res.status or err)
    res, err = http.get("http://nowhere.test:1/")
    r.unknown = tostring(err)
    local chttp = require "fuglu_http"
    res, err = chttp.request{ url = "http://web.test/" }
    r.raw = tostring(err)
end

HttpProbe.examine = require("probe_support").examine(scenarios)

return HttpProbe
'''


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, body, ctype="text/plain", extra=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def note_connection(self):
        self.server.connections.add(self.client_address)

    def do_GET(self):
        self.note_connection()
        if self.path.startswith("/echo"):
            body = ("%s %s custom=%s evil=%s injected=%s" % (
                self.command, self.path, self.headers.get("X-Custom"), self.headers.get("X-Evil"),
                self.headers.get("Injected"))).encode()
            if self.headers.get_all("X-Rcpt"):
                body += (" rcpt=%s" % "|".join(self.headers.get_all("X-Rcpt"))).encode()
            self.reply(200, body, extra=[("X-Multi", "one"), ("X-Multi", "two")])
        elif self.path == "/slow":
            time.sleep(2)
            self.reply(200, b"late")
        elif self.path == "/big":
            self.reply(200, b"x" * 300000)
        else:
            self.reply(404, b"not here")

    def do_POST(self):
        self.note_connection()
        n = int(self.headers.get("Content-Length", "0"))
        data = self.rfile.read(n)
        self.reply(200, ("%s %d %s %s" % (self.command, len(data), hashlib.sha256(data).hexdigest()[:16],
                                          self.headers.get("Content-Type"))).encode())

    do_PUT = do_POST


class QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass   # a client that hangs up (a refused certificate, a timeout) is part of the tests


def start_server(tls_ctx=None):
    srv = QuietServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.connections = set()
    if tls_ctx:
        srv.socket = tls_ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return srv


class HttpTests(FugluCase):
    config = {"performance.minthreads": "1", "performance.maxthreads": "1", "main.scan_timeout": "20"}

    @classmethod
    def prepare(cls, values):
        plugdir = os.path.join(cls.tmpdir, "plugins")
        os.makedirs(plugdir)
        with open(os.path.join(plugdir, "httpprobe.lua"), "w") as f:
            f.write(PROBE_PLUGIN)
        values["main.plugindir"] = "%s,%s" % (plugdir, PLUGIN_DIR)
        values["main.plugins"] = "httpprobe"
        cls.plain = start_server()
        # a certificate for web.test and 127.0.0.1, made for this run
        cls.cert = os.path.join(cls.tmpdir, "web.pem")
        key = os.path.join(cls.tmpdir, "web.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=web.test", "-addext", "subjectAltName=DNS:web.test,IP:127.0.0.1",
                        "-keyout", key, "-out", cls.cert], check=True, capture_output=True, timeout=60)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cls.cert, key)
        cls.tls = start_server(ctx)
        cls.unbound = Unbound(cls.tmpdir, ["web.test. 300 IN A 127.0.0.1",
                                           "test. 3600 IN SOA ns.test. h.test. 1 3600 600 86400 60"]).start()
        values["main.nameservers"] = "127.0.0.1:%d" % cls.unbound.port
        cls.metricsport = free_port()
        values["main.metricsport"] = str(cls.metricsport)

    @classmethod
    def _cleanup(cls):
        for name in ("plain", "tls"):
            srv = getattr(cls, name, None)
            if srv:
                srv.shutdown()
                srv.server_close()
        if getattr(cls, "unbound", None):
            cls.unbound.stop()
        super()._cleanup()

    def probe(self, name, base, headers=(), body="Hello.\r\n"):
        return self.send_probe([("X-Probe", name), ("X-Probe-Base", base)] + list(headers), name, body)

    def base(self, srv, scheme="http", host="127.0.0.1"):
        return "%s://%s:%d" % (scheme, host, srv.server_address[1])

    def test_get_headers_status_and_connection_reuse(self):
        self.plain.connections.clear()
        r = self.probe("get", self.base(self.plain))
        self.assertEqual(r["status"], "200")
        self.assertEqual(r["body"], "GET /echo?x=1 custom=v1 evil=None injected=None rcpt=a@x|b@y")   # no header injection
        self.assertEqual(r["ctype"], "text/plain")
        self.assertEqual(r["multi"], "one, two")
        self.assertEqual(r["notfound"], "404")
        self.assertEqual(len(self.plain.connections), 1, self.plain.connections)    # 5 requests, 1 connection

    def test_post_streams_the_message(self):
        body = "".join("line %d of the body\r\n" % i for i in range(500))
        r = self.probe("post", self.base(self.plain), body=body)
        method, length, _, ctype = r["body"].split(" ")
        self.assertEqual((method, length, ctype), ("POST", r["size"], "message/rfc822"))
        self.assertTrue(r["put"].startswith("PUT 3 ba7816bf8f01cfea"), r["put"])

    def test_timeout_and_body_limit_are_errors(self):
        r = self.probe("slow", self.base(self.plain))
        self.assertEqual(r["res"], "nil")
        self.assertIn("/slow: Timeout was reached", r["err"])
        self.assertLess(float(r["elapsed"]), 1.5 * SCALE)
        r = self.probe("big", self.base(self.plain))
        self.assertEqual(r["res"], "nil")
        self.assertIn("response body over 100000 bytes", r["err"])

    def test_tls_verifies_certificate_and_name(self):
        r = self.probe("tls", self.base(self.tls, "https", "web.test"), [("X-Probe-CA", self.cert)])
        self.assertIn("SSL", r["untrusted"])         # self-signed: refused by default
        self.assertEqual(r["trusted"], "200")        # with its CA
        self.assertEqual(r["noverify"], "200")

    def test_names_through_the_engines_resolver(self):
        r = self.probe("names", self.base(self.plain, host="web.test"))
        self.assertEqual(r["byname"], "200")
        self.assertIn("cannot resolve nowhere.test: nowhere.test A: NXDOMAIN", r["unknown"])
        self.assertIn("the host is a name", r["raw"])

    def test_zz_network_calls_in_metrics(self):
        """/metrics counts each plugin's calls per kind: the HTTP requests and the DNS lookups
        fuglu.http made for the names."""
        self.probe("names", self.base(self.plain, host="web.test"))
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.metricsport, timeout=10 * SCALE) as r:
            body = r.read().decode()
        self.assertIn("# TYPE fuglu_plugin_network_calls_total counter", body)
        calls = dict(re.findall(r'^fuglu_plugin_network_calls_total\{plugin="HttpProbe",kind="(\w+)"\} (\d+)$',
                                body, re.M))
        self.assertGreaterEqual(int(calls.get("http", 0)), 2, body[-3000:])
        self.assertGreaterEqual(int(calls.get("dns", 0)), 2, body[-3000:])
        errors = dict(re.findall(r'^fuglu_plugin_network_errors_total\{plugin="HttpProbe",kind="(\w+)"\} (\d+)$',
                                 body, re.M))
        self.assertGreaterEqual(int(errors.get("dns", 0)), 1)      # nowhere.test: NXDOMAIN
