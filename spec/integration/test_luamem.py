"""Integration: [performance] luamemlimit, the cap on each worker's Lua state.

A plugin that allocates past the limit costs its message a 451 (the MTA keeps it and retries), the
message is not delivered, the log names luamemlimit and the message, and the worker recovers: the
next message passes. When the plugin kept what it allocated (a module table), the full collection
cannot free it and the state is recreated with every plugin. workerlist --json and /metrics show
each worker's Lua memory. Both backends, threads and processes.
"""

import json
import os
import re
import urllib.request

from harness import FugluCase, ID_RE, PLUGIN_DIR, SCALE, control, free_port, make_message, wait_for

LIMIT = 32 * 1024 * 1024

# MemHogPlugin: X-Test-Alloc: <MB> builds that many megabytes of distinct strings; X-Test-Keep: yes
# keeps them in a module table (they survive the message, and any collection).
MEMHOG_PLUGIN = r'''
local plugin = require "fuglu.plugin"
local actions = require "fuglu.actions"

local MemHogPlugin = plugin.scanner{
    name = "MemHogPlugin",
    description = "allocates the megabytes named in X-Test-Alloc",
}

local kept = {}

function MemHogPlugin:examine(suspect)
    local msg = suspect:get_message_rep()
    local mb = tonumber(msg:header("X-Test-Alloc")[1] or "")
    if not mb then return actions.DUNNO end
    local keep = (msg:header("X-Test-Keep")[1] or ""):match("yes")
    local t = keep and kept or {}
    local chunk = string.rep("x", 65536 - 64)
    for i = 1, mb * 16 do t[#t + 1] = chunk .. i end
    return actions.DUNNO
end

return MemHogPlugin
'''


class LuaMemLimitThreads(FugluCase):
    config = {"performance.luamemlimit": str(LIMIT), "performance.minthreads": "1",
              "performance.maxthreads": "1"}

    @classmethod
    def prepare(cls, values):
        plugdir = os.path.join(cls.tmpdir, "plugins")
        os.makedirs(plugdir)
        with open(os.path.join(plugdir, "memhog.lua"), "w") as f:
            f.write(MEMHOG_PLUGIN)
        values["main.plugindir"] = "%s,%s" % (plugdir, PLUGIN_DIR)
        values["main.plugins"] = "memhog,testaction"
        cls.metricsport = free_port()
        values["main.metricsport"] = str(cls.metricsport)

    def workers(self):
        return json.loads(control(os.path.join(self.tmpdir, "control.sock"), "workerlist --json"))["workers"]

    def assert_passes(self, subject):
        before = self.sink_count()
        reply = self.send_one(make_message(subject=subject))
        self.assertTrue(reply.startswith("250 FUGLU REQUEUE("), reply)
        self.assertEqual(len(self.wait_sink(before + 1)), before + 1)

    def assert_deferred_not_delivered(self, headers, subject):
        before = self.sink_count()
        reply = self.send_one(make_message(headers, subject=subject))
        self.assertEqual(reply, "451 4.3.0 internal problem - message deferred")
        pattern = r"(%s): Lua state out of memory: \[performance\] luamemlimit \(%d bytes\) reached .*" \
                  r"message deferred \(451\), not delivered" % (ID_RE, LIMIT)
        found = wait_for(lambda: re.search(pattern, self.daemon.log_tail(200)), 10 * SCALE)
        self.assertTrue(found, self.daemon.log_tail(80))
        # the next message passes (and is the only one the sink gets): the hog was never delivered
        self.assert_passes("after " + subject)
        self.assertEqual(self.sink_count(), before + 1)
        subjects = [data.split(b"\r\nSubject: ", 1)[1].split(b"\r\n", 1)[0] for _, data in self.sink.messages()]
        self.assertNotIn(subject.encode(), subjects)
        return found.group(1)

    def test_1_memory_is_reported_per_worker(self):
        self.assert_passes("small")
        workers = self.workers()
        self.assertTrue(workers, "no worker in workerlist")
        for w in workers:
            self.assertIsInstance(w["lua_memory_bytes"], int, w)
            self.assertGreater(w["lua_memory_bytes"], 100 * 1024, w)
            self.assertLess(w["lua_memory_bytes"], LIMIT, w)
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.metricsport, timeout=10 * SCALE) as r:
            body = r.read().decode()
        self.assertIn("# TYPE fuglu_lua_memory_bytes gauge\n", body)
        samples = re.findall(r'^fuglu_lua_memory_bytes\{worker="(\d+)"\} (\d+)$', body, re.M)
        self.assertEqual(sorted(int(n) for n, _ in samples), sorted(w["number"] for w in workers))

    def test_2_allocation_past_the_limit_defers_and_the_state_recovers(self):
        self.assert_deferred_not_delivered([("X-Test-Alloc", "64")], "hog")
        self.assertTrue(self.daemon.wait_log("Lua state collected after running out of memory"),
                        self.daemon.log_tail(40))
        for w in self.workers():
            self.assertLess(w["lua_memory_bytes"], LIMIT // 2, w)

    def test_3_memory_kept_past_the_message_recreates_the_state(self):
        self.assert_deferred_not_delivered([("X-Test-Alloc", "64"), ("X-Test-Keep", "yes")], "keeper")
        self.assertTrue(self.daemon.wait_log("recreated with every plugin"), self.daemon.log_tail(40))
        for w in self.workers():
            self.assertLess(w["lua_memory_bytes"], LIMIT // 2, w)

    def test_4_a_plugin_under_the_limit_passes(self):
        self.assert_passes("moderate")
        before = self.sink_count()
        reply = self.send_one(make_message([("X-Test-Alloc", "4")], subject="four megabytes"))
        self.assertTrue(reply.startswith("250 FUGLU REQUEUE("), reply)
        self.assertEqual(len(self.wait_sink(before + 1)), before + 1)


class LuaMemLimitProcesses(LuaMemLimitThreads):
    config = {"performance.luamemlimit": str(LIMIT), "performance.backend": "process",
              "performance.initialprocs": "1"}

    def workers(self):
        # a process worker reports after each message: wait until every slot has a number
        path = os.path.join(self.tmpdir, "control.sock")
        got = wait_for(lambda: (lambda ws: ws if ws and all(isinstance(w["lua_memory_bytes"], int) for w in ws)
                                else None)(json.loads(control(path, "workerlist --json"))["workers"]), 10 * SCALE)
        self.assertTrue(got, control(path, "workerlist --json"))
        return got
