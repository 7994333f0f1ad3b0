"""Integration: DNS lookups from plugins (fuglu.dns on fuglu_dns, c-ares) against a real DNS
server (unbound on loopback with local zones) and stub servers that answer SERVFAIL, stay silent
or count queries (the shared cache). The engine is pointed at them with [main] nameservers: no
query ever goes to the system resolver.

A probe plugin runs the lookups named in X-Probe and adds the results as an X-Probe-Result header
(base64 of "key=value" lines), as in test_socket.
"""

import os
import time

from dnsserver import StubDns, Unbound
from harness import FugluCase, PLUGIN_DIR, SCALE, make_message, wait_for

ZONES = ["bl%d.test." % i for i in range(10)]

RECORDS = [
    "test. 3600 IN SOA ns.test. hostmaster.test. 1 3600 600 86400 60",
    "mx1.test. 300 IN A 192.0.2.1",
    "mx1.test. 300 IN AAAA 2001:db8::1",
    "test. 300 IN MX 20 mx2.test.",
    "test. 300 IN MX 10 mx1.test.",
    "test. 300 IN NS ns.test.",
    'test. 300 IN TXT "v=spf1 ip4:192.0.2.0/24 " "-all"',
    "alias.test. 120 IN CNAME mx1.test.",
    "1.2.0.192.in-addr.arpa. 300 IN PTR mx1.test.",
] + ["%s 3600 IN SOA ns.test. hostmaster.test. 1 3600 600 86400 60" % z for z in ZONES] \
  + ["7.2.0.192.bl3.test. 300 IN A 127.0.0.2", "7.2.0.192.bl7.test. 300 IN A 127.0.0.4",
     '7.2.0.192.bl7.test. 300 IN TXT "listed for spam"']

PROBE_PLUGIN = r'''
local plugin = require "fuglu.plugin"
local dns = require "fuglu.dns"
local sys = require "fuglu_sys"
local log = require "fuglu.log"

local DnsProbe = plugin.scanner{ name = "DnsProbe", description = "DNS API probe" }
local logger = log.logger("fuglu.plugin.DnsProbe")

local function show(records, err, detail)
    if not records then return tostring(err) .. "|" .. tostring(detail) end
    local out = {}
    for _, r in ipairs(records) do
        out[#out + 1] = type(r) == "table" and (r.preference .. " " .. r.exchange) or r
    end
    return table.concat(out, ",") .. "|ttl=" .. tostring(records.ttl)
end

local scenarios = {}

function scenarios.types(r)
    r.a = show(dns.query("mx1.test", "A"))
    r.aaaa = show(dns.query("mx1.test", "AAAA"))
    r.mx = show(dns.query("test", "MX"))
    r.ns = show(dns.query("test", "NS"))
    r.txt = show(dns.query("test", "TXT"))
    r.cname = show(dns.query("alias.test", "CNAME"))
    r.alias_a = show(dns.query("alias.test", "A"))
    r.ptr = show(dns.query(dns.reverse_name("192.0.2.1"), "PTR"))
    r.nx = show(dns.query("nothere.test", "A"))
    r.nodata = show(dns.query("mx1.test", "TXT"))
end

function scenarios.dnsbl(r)
    local zones = {}
    for i = 0, 9 do zones[#zones + 1] = "bl" .. i .. ".test" end
    local t0 = sys.monotonic()
    local listed = dns.dnsbl("192.0.2.7", zones)
    r.elapsed = string.format("%.3f", sys.monotonic() - t0)
    local names = {}
    for _, z in ipairs(zones) do if listed[z] then names[#names + 1] = z .. "=" .. listed[z][1] end end
    r.listed = table.concat(names, ",")
    r.errors = tostring(next(listed.errors) ~= nil)
    local clean = dns.dnsbl("192.0.2.8", zones)
    local n = 0
    for _, z in ipairs(zones) do if clean[z] then n = n + 1 end end
    r.clean = tostring(n)
end

function scenarios.failure(r)
    local t0 = sys.monotonic()
    r.result = show(dns.query("anything.example", "A"))
    r.elapsed = string.format("%.3f", sys.monotonic() - t0)
end

function scenarios.cached(r, suspect)
    local name = suspect:get_message_rep():header("X-Probe-Name")[1]
    r.result = show(dns.query(name, "A"))
end

function scenarios.deadline(r)
    local t0 = sys.monotonic()
    local records, err, detail = dns.query("slow.example", "A")
    logger:warning(string.format("probe deadline: %s %s after %.1f s", tostring(err), tostring(detail),
        sys.monotonic() - t0))
end

DnsProbe.examine = require("probe_support").examine(scenarios)

return DnsProbe
'''


class DnsCase(FugluCase):
    config = {"performance.minthreads": "2", "performance.maxthreads": "2"}

    @classmethod
    def nameservers(cls):
        raise NotImplementedError

    @classmethod
    def prepare(cls, values):
        plugdir = os.path.join(cls.tmpdir, "plugins")
        os.makedirs(plugdir)
        with open(os.path.join(plugdir, "dnsprobe.lua"), "w") as f:
            f.write(PROBE_PLUGIN)
        values["main.plugindir"] = "%s,%s" % (plugdir, PLUGIN_DIR)
        values["main.plugins"] = "dnsprobe"
        values["main.nameservers"] = cls.nameservers()

    def probe(self, name, headers=()):
        return self.send_probe([("X-Probe", name)] + list(headers), name)


class DnsUnboundTests(DnsCase):
    @classmethod
    def nameservers(cls):
        cls.unbound = Unbound(cls.tmpdir, RECORDS, zones=["test."] + ZONES).start()
        return "127.0.0.1:%d" % cls.unbound.port

    @classmethod
    def _cleanup(cls):
        if getattr(cls, "unbound", None):
            cls.unbound.stop()
        super()._cleanup()

    def test_record_types(self):
        r = self.probe("types")
        self.assertEqual(r["a"], "192.0.2.1|ttl=300")
        self.assertEqual(r["aaaa"], "2001:db8::1|ttl=300")
        self.assertEqual(r["mx"], "10 mx1.test,20 mx2.test|ttl=300")    # sorted by preference
        self.assertEqual(r["ns"], "ns.test|ttl=300")
        self.assertEqual(r["txt"], "v=spf1 ip4:192.0.2.0/24 -all|ttl=300")   # strings joined
        self.assertEqual(r["cname"], "mx1.test|ttl=120")
        self.assertEqual(r["alias_a"], "192.0.2.1|ttl=120")               # chain: the smaller TTL
        self.assertEqual(r["ptr"], "mx1.test|ttl=300")
        self.assertEqual(r["nx"], "NXDOMAIN|nothere.test A: NXDOMAIN")
        self.assertEqual(r["nodata"], "NODATA|mx1.test TXT: NODATA")

    def test_dnsbl_asks_ten_zones_at_once(self):
        r = self.probe("dnsbl")
        self.assertEqual(r["listed"], "bl3.test=127.0.0.2,bl7.test=127.0.0.4")
        self.assertEqual(r["errors"], "false")
        self.assertEqual(r["clean"], "0")
        self.assertLess(float(r["elapsed"]), 2 * SCALE)
        # all ten went to the server (the first time; the cache answers repeats)
        for i in range(10):
            self.assertGreaterEqual(self.unbound.queries("7.2.0.192.bl%d.test" % i), 1, self.unbound.log()[-2000:])


class DnsServfailTests(DnsCase):
    @classmethod
    def nameservers(cls):
        cls.stub = StubDns("servfail").start()
        return "127.0.0.1:%d" % cls.stub.port

    @classmethod
    def _cleanup(cls):
        if getattr(cls, "stub", None):
            cls.stub.stop()
        super()._cleanup()

    def test_servfail_is_told_apart(self):
        r = self.probe("failure")
        self.assertEqual(r["result"], "SERVFAIL|anything.example A: SERVFAIL")


class DnsSilentTests(DnsServfailTests):
    config = dict(DnsCase.config, **{"main.dnstimeout": "0.2", "main.dnsattempts": "2", "main.scan_timeout": "4"})

    @classmethod
    def nameservers(cls):
        cls.stub = StubDns("silent").start()
        return "127.0.0.1:%d" % cls.stub.port

    def test_servfail_is_told_apart(self):
        pass

    def test_silent_server_times_out_after_the_tries(self):
        r = self.probe("failure")
        self.assertEqual(r["result"], "TIMEOUT|anything.example A: timed out (127.0.0.1:%d)" % self.stub.port)
        self.assertGreaterEqual(float(r["elapsed"]), 0.35)
        self.assertLess(float(r["elapsed"]), 2 * SCALE)
        self.assertEqual(self.stub.counts.get("anything.example"), 2)   # dnsattempts


class DnsDeadlineTests(DnsServfailTests):
    config = dict(DnsCase.config, **{"main.dnstimeout": "30", "main.dnsattempts": "3", "main.scan_timeout": "3"})

    @classmethod
    def nameservers(cls):
        cls.stub = StubDns("silent").start()
        return "127.0.0.1:%d" % cls.stub.port

    def test_servfail_is_told_apart(self):
        pass

    def test_the_message_deadline_ends_a_lookup(self):
        start = time.monotonic()
        reply = self.send_one(make_message([("X-Probe", "deadline")]))
        self.assertTrue(reply.startswith("250"), reply)     # ended before scan_timeout (3 s) answered 451
        self.assertLess(time.monotonic() - start, 3)
        found = wait_for(lambda: "probe deadline: TIMEOUT slow.example A: timed out (the message's scan_timeout)"
                         in self.daemon.log_tail(60), 10 * SCALE)
        self.assertTrue(found, self.daemon.log_tail(40))
        self.assertLess(time.monotonic() - start, 10 * SCALE)


class DnsCacheTests(DnsServfailTests):
    @classmethod
    def nameservers(cls):
        cls.stub = StubDns("count").start()
        return "127.0.0.1:%d" % cls.stub.port

    def test_servfail_is_told_apart(self):
        pass

    def test_answers_are_cached_for_every_worker(self):
        # four messages, two workers: the first lookup goes to the server, the rest come from the
        # cache the workers share
        for i in range(4):
            r = self.probe("cached", [("X-Probe-Name", "host.example")])
            self.assertEqual(r["result"], "192.0.2.99|ttl=60" if i == 0 else r["result"])
            self.assertTrue(r["result"].startswith("192.0.2.99|ttl="), r)
        self.assertEqual(self.stub.counts.get("host.example"), 1)
        # a negative answer is cached too (for the SOA minimum), with its code
        for i in range(3):
            r = self.probe("cached", [("X-Probe-Name", "nxhost.example")])
            self.assertTrue(r["result"].startswith("NXDOMAIN|nxhost.example A: NXDOMAIN"), r)
        self.assertEqual(self.stub.counts.get("nxhost.example"), 1)


class DnsNoCacheTests(DnsCacheTests):
    config = dict(DnsCase.config, **{"main.dnscachesize": "0"})

    def test_answers_are_cached_for_every_worker(self):
        for _ in range(3):
            self.probe("cached", [("X-Probe-Name", "host.example")])
        self.assertEqual(self.stub.counts.get("host.example"), 3)
