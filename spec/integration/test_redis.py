"""Integration: the Redis client for plugins (fuglu_redis, hiredis) against a real redis-server
and a real Sentinel on loopback, and a stub that accepts and never answers.

A probe plugin runs the scenario named in X-Probe and adds the results as an X-Probe-Result
header (base64 of "key=value" lines), as in test_socket.
"""

import os
import socket
import threading

from harness import FugluCase, PLUGIN_DIR, SCALE
from redisserver import Redis

PASSWORD = "s3cret-for-tests"

PROBE_PLUGIN = r'''
local plugin = require "fuglu.plugin"
local redis = require "fuglu_redis"
local sys = require "fuglu_sys"

local RedisProbe = plugin.scanner{ name = "RedisProbe", description = "Redis API probe" }

local function show(v, err, kind)
    if v == nil then return "nil|" .. tostring(err) .. "|" .. tostring(kind) end
    if v == redis.null then return "null" end
    if type(v) == "table" then
        local parts = {}
        for i, x in ipairs(v) do parts[i] = type(x) == "table" and ("err:" .. tostring(x.err)) or show(x) end
        return "[" .. table.concat(parts, ",") .. "]"
    end
    return tostring(v)
end

local function header(suspect, name) return suspect:get_message_rep():header(name)[1] end

local function client(suspect, extra)
    local t = { server = header(suspect, "X-Probe-Server"), password = header(suspect, "X-Probe-Password"),
                timeout = 500 }
    for k, v in pairs(extra or {}) do t[k] = v end
    return redis.connect(t)
end

local scenarios = {}

function scenarios.basic(r, suspect)
    local c = client(suspect)
    r.set = show(c:call("SET", "bin", "a\0b"))
    local v = c:call("GET", "bin")
    r.get_len = tostring(#v)
    r.get_eq = tostring(v == "a\0b")
    r.incr = show(c:call("INCR", "n"))
    r.incr2 = show(c:call("INCRBY", "n", 41))
    r.missing = show(c:call("GET", "no-such-key"))
    c:call("DEL", "list")
    c:call("RPUSH", "list", "x", "y", 3)
    r.list = show(c:call("LRANGE", "list", 0, -1))
    r.wrongtype = show(c:call("INCR", "list"))
    r.same = tostring(client(suspect) == c)
end

function scenarios.pipeline(r, suspect)
    local c = client(suspect)
    c:call("DEL", "p")
    r.replies = show(c:pipeline{ { "INCR", "p" }, { "EXPIRE", "p", 60 }, { "TTL", "p" }, { "HGET", "p", "f" } })
end

function scenarios.eval(r, suspect)
    local c = client(suspect)
    c:call("SCRIPT", "FLUSH")
    local script = "return redis.call('INCRBY', KEYS[1], ARGV[1])"
    c:call("DEL", "e")
    r.first = show(c:eval(script, { "e" }, { 5 }))       -- NOSCRIPT: loaded, then run
    r.second = show(c:eval(script, { "e" }, { 7 }))
end

function scenarios.db(r, suspect)
    local c = client(suspect, { db = 3 })
    r.set = show(c:call("SET", "in-db-3", "yes"))
end

function scenarios.badauth(r, suspect)
    local c = client(suspect, { password = "wrong" })
    r.result = show(c:call("PING"))
end

function scenarios.ping(r, suspect)
    local c = client(suspect)
    r.first = show(c:call("PING"))
    r.second = show(c:call("PING"))
end

function scenarios.silent(r, suspect)
    local c = client(suspect, { timeout = 300 })
    local t0 = sys.monotonic()
    r.result = show(c:call("PING"))
    r.elapsed = string.format("%.3f", sys.monotonic() - t0)
end

function scenarios.sentinel(r, suspect)
    local c = redis.connect{ sentinels = header(suspect, "X-Probe-Sentinels"), master = "mymaster",
                             password = header(suspect, "X-Probe-Password"), timeout = 1000 }
    r.set = show(c:call("SET", "via-sentinel", "1"))
    r.tostring = tostring(c)
    local bad = redis.connect{ sentinels = header(suspect, "X-Probe-Sentinels"), master = "nosuch", timeout = 500 }
    r.unknown = show(bad:call("PING"))
end

RedisProbe.examine = require("probe_support").examine(scenarios)

return RedisProbe
'''


class Silent:
    """Accepts connections and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stopping.is_set():
            try:
                c, _ = self.sock.accept()
                self.conns.append(c)
            except OSError:
                continue

    def stop(self):
        self.stopping.set()
        self.thread.join(5)
        for c in self.conns:
            c.close()
        self.sock.close()


class RedisTests(FugluCase):
    config = {"performance.minthreads": "1", "performance.maxthreads": "1"}

    @classmethod
    def prepare(cls, values):
        plugdir = os.path.join(cls.tmpdir, "plugins")
        os.makedirs(plugdir)
        with open(os.path.join(plugdir, "redisprobe.lua"), "w") as f:
            f.write(PROBE_PLUGIN)
        values["main.plugindir"] = "%s,%s" % (plugdir, PLUGIN_DIR)
        values["main.plugins"] = "redisprobe"
        cls.redis = Redis(cls.tmpdir, password=PASSWORD).start()
        cls.sentinel = Redis(cls.tmpdir, "sentinel", sentinel_of=(cls.redis.port, PASSWORD)).start()
        cls.silent = Silent()

    @classmethod
    def _cleanup(cls):
        for name in ("sentinel", "redis"):
            if getattr(cls, name, None):
                getattr(cls, name).stop()
        if getattr(cls, "silent", None):
            cls.silent.stop()
        super()._cleanup()

    def probe(self, name, server=None, headers=()):
        hdrs = [("X-Probe", name), ("X-Probe-Server", server or "127.0.0.1:%d" % self.redis.port),
                ("X-Probe-Password", PASSWORD)] + list(headers)
        return self.send_probe(hdrs, name)

    def test_commands_and_replies(self):
        self.redis.cli("DEL", "n")
        r = self.probe("basic")
        self.assertEqual(r["set"], "OK")
        self.assertEqual((r["get_len"], r["get_eq"]), ("3", "true"))    # binary-safe
        self.assertEqual(r["incr"], "1")
        self.assertEqual(r["incr2"], "42")
        self.assertEqual(r["missing"], "null")
        self.assertEqual(r["list"], "[x,y,3]")
        self.assertTrue(r["wrongtype"].startswith("nil|WRONGTYPE"), r["wrongtype"])
        self.assertTrue(r["wrongtype"].endswith("|server"))
        self.assertEqual(r["same"], "true")          # one connection per worker and server
        self.assertEqual(self.redis.cli("GET", "n").strip(), "42")

    def test_pipeline_in_one_round_trip(self):
        r = self.probe("pipeline")
        self.assertEqual(r["replies"][:10], "[1,1,60,er", r)
        self.assertIn("err:WRONGTYPE", r["replies"])

    def test_eval_loads_the_script_once(self):
        r = self.probe("eval")
        self.assertEqual((r["first"], r["second"]), ("5", "12"))

    def test_database_and_auth(self):
        self.probe("db")
        self.assertEqual(self.redis.cli("GET", "in-db-3", db=3).strip(), "yes")
        self.assertEqual(self.redis.cli("GET", "in-db-3", db=0).strip(), "")
        r = self.probe("badauth")
        self.assertRegex(r["result"], r"^nil\|redis 127\.0\.0\.1:\d+: AUTH: WRONGPASS.*\|network$")

    def test_reconnects_after_a_restart(self):
        self.assertEqual(self.probe("ping")["second"], "PONG")
        self.redis.stop()
        self.redis.start()
        r = self.probe("ping")
        # the pooled connection died with the server: the first call may see it, the next connects again
        self.assertTrue(r["first"] == "PONG" or r["first"].endswith("|network"), r)
        self.assertEqual(r["second"], "PONG")

    def test_silent_server_times_out(self):
        r = self.probe("silent", server="127.0.0.1:%d" % self.silent.port)
        self.assertEqual(r["result"], "nil|redis 127.0.0.1:%d: timed out|network" % self.silent.port)
        self.assertLess(float(r["elapsed"]), 1.5 * SCALE)

    def test_primary_found_through_sentinel(self):
        r = self.probe("sentinel", headers=[("X-Probe-Sentinels", "127.0.0.1:%d" % self.sentinel.port)])
        self.assertEqual(r["set"], "OK")
        self.assertEqual(self.redis.cli("GET", "via-sentinel").strip(), "1")
        self.assertEqual(r["tostring"], "redis(master mymaster)")
        self.assertRegex(r["unknown"], r"^nil\|redis master 'nosuch': no sentinel answered .*\|network$")
