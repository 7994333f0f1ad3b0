"""Integration: shared dictionaries ([shared] in fuglu.conf, fuglu_shared in Lua).

A rate limiter with a limit of 3 messages per sender, its counter one `incr` in a shared
dictionary: 12 concurrent messages from one sender let exactly 3 through, with several worker
threads or several worker processes; the counter survives a reload (exactly 3 pass in total
across it); a bad size is refused by --lint with the file and line.
"""

import os
import re
import signal
import subprocess
import threading

from harness import FUGLU_BIN, FugluCase, PLUGIN_DIR, SCALE, make_message, wait_for

RATELIMIT_PLUGIN = r'''
local plugin = require "fuglu.plugin"
local actions = require "fuglu.actions"
local shared = require "fuglu_shared"

local RateLimit = plugin.scanner{
    name = "SpecRateLimit",
    description = "at most `limit` messages per sender and window",
    options = {
        limit = { default = "3", description = "messages per window" },
        window = { default = "3600", description = "seconds" },
    },
}

function RateLimit:examine(suspect)
    local d = assert(shared.dict("ratelimit"))
    local n, err = d:incr("from:" .. suspect.from_address, 1, 0, tonumber(self:get("window")))
    if not n then return actions.DEFER, "rate limit store: " .. err end
    if n > tonumber(self:get("limit")) then
        return actions.DEFER, "rate limit exceeded (" .. n .. ")"
    end
    return actions.DUNNO
end

return RateLimit
'''


class SharedDictThreads(FugluCase):
    config = {"performance.minthreads": "6", "performance.maxthreads": "6", "shared.ratelimit": "1m"}

    @classmethod
    def prepare(cls, values):
        plugdir = os.path.join(cls.tmpdir, "plugins")
        os.makedirs(plugdir)
        with open(os.path.join(plugdir, "ratelimit_spec.lua"), "w") as f:
            f.write(RATELIMIT_PLUGIN)
        values["main.plugindir"] = "%s,%s" % (plugdir, PLUGIN_DIR)
        values["main.plugins"] = "ratelimit_spec"

    def burst(self, sender, count):
        """count messages from sender at the same time; returns their replies."""
        replies = [None] * count
        barrier = threading.Barrier(count)

        def one(i):
            with self.client() as c:
                c.banner_and_ehlo()
                barrier.wait(10 * SCALE)
                replies[i] = c.send_message(sender, ["b@example.net"], make_message(subject="burst %d" % i))
                c.cmd("QUIT")

        threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30 * SCALE)
        return replies

    def test_1_twelve_concurrent_messages_three_pass(self):
        before = self.sink_count()
        replies = self.burst("limited@example.org", 12)
        passed = [r for r in replies if r and r.startswith("250")]
        deferred = [r for r in replies if r and r.startswith("451") and "rate limit exceeded" in r]
        self.assertEqual(len(passed), 3, replies)
        self.assertEqual(len(deferred), 9, replies)
        self.assertEqual(len(self.wait_sink(before + 3)), before + 3)
        # another sender has its own counter
        self.assertTrue(self.burst("other@example.org", 1)[0].startswith("250"))

    def test_2_the_counter_survives_a_reload(self):
        sender = "reload@example.org"
        first = self.burst(sender, 2)
        self.assertTrue(all(r.startswith("250") for r in first), first)
        # a changed plugin option makes the reload build a new generation with new workers
        conf = self.daemon.conf
        with open(conf, "a") as f:
            f.write("\n[SpecRateLimit]\nwindow = 3000\n")
        offset = self.daemon.log_size()
        os.kill(self.daemon.proc.pid, signal.SIGHUP)
        done = wait_for(lambda: re.search(r"reload: generation \d+", self.log_since(offset)), 20 * SCALE)
        self.assertTrue(done, self.log_since(offset))
        replies = self.burst(sender, 10)
        self.assertEqual(len([r for r in replies if r.startswith("250")]), 1, replies)

    def log_since(self, offset):
        with open(self.daemon.log, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")


class SharedDictProcesses(SharedDictThreads):
    config = {"performance.backend": "process", "performance.initialprocs": "6", "shared.ratelimit": "1m"}


class SharedDictLint(FugluCase):
    config = {"shared.ratelimit": "1m"}

    def test_bad_size_is_an_error_with_file_and_line(self):
        path = os.path.join(self.tmpdir, "bad.conf")
        with open(self.daemon.conf) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text.replace("ratelimit = 1m", "ratelimit = 10q\ntiny = 1k"))
        r = subprocess.run([FUGLU_BIN, "--lint", "-c", path], capture_output=True, timeout=30 * SCALE)
        out = r.stdout.decode()
        self.assertEqual(r.returncode, 2, out + r.stderr.decode())
        self.assertRegex(out, r"ERROR: %s:\d+: \[shared\] ratelimit = 10q: not a size" % re.escape(path))
        self.assertRegex(out, r"ERROR: %s:\d+: \[shared\] tiny = 1k: not a size from 64k to 16g" % re.escape(path))
