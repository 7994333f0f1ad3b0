"""Integration: a list file (fuglu.lists) edited while mail flows takes effect without a reload,
in every worker, on both backends (a broken edit keeping the last good version is in
spec/lists_spec.lua)."""

import os
import time

from harness import FugluCase, PLUGIN_DIR, SCALE, make_message, wait_for

BLOCKLIST_PLUGIN = r'''
local plugin = require "fuglu.plugin"
local actions = require "fuglu.actions"
local lists = require "fuglu.lists"

local SenderBlock = plugin.scanner{
    name = "SenderBlock",
    description = "rejects senders listed in a file",
    options = { file = { default = "", description = "one address per line" } },
}

function SenderBlock:examine(suspect)
    local l = lists.open(self:get("file"), { check = 0.1 })
    if l:contains(suspect.from_address) then return actions.REJECT, "sender blocked" end
    return actions.DUNNO
end

return SenderBlock
'''


class ListFileThreads(FugluCase):
    config = {"performance.minthreads": "3", "performance.maxthreads": "3"}

    @classmethod
    def prepare(cls, values):
        plugdir = os.path.join(cls.tmpdir, "plugins")
        os.makedirs(plugdir)
        with open(os.path.join(plugdir, "senderblock.lua"), "w") as f:
            f.write(BLOCKLIST_PLUGIN)
        cls.listfile = os.path.join(cls.tmpdir, "blocked.txt")
        cls.write_list("# blocked senders\nspam@example.org\n")
        values["main.plugindir"] = "%s,%s" % (plugdir, PLUGIN_DIR)
        values["main.plugins"] = "senderblock"
        values["SenderBlock.file"] = cls.listfile

    @classmethod
    def write_list(cls, text):
        tmp = cls.listfile + ".new"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, cls.listfile)

    def verdicts(self, sender, n=6):
        return [self.send_one(make_message(subject="m%d" % i), mail_from=sender)[:3] for i in range(n)]

    def test_edit_takes_effect_without_a_reload(self):
        self.assertEqual(set(self.verdicts("spam@example.org")), {"550"})
        self.assertEqual(set(self.verdicts("new@example.org")), {"250"})
        self.write_list("spam@example.org\nnew@example.org\n")
        # within the check interval every worker sees the new file
        ok = wait_for(lambda: set(self.verdicts("new@example.org", 3)) == {"550"}, 5 * SCALE, 0.2)
        self.assertTrue(ok, self.daemon.log_tail(20))
        self.assertEqual(set(self.verdicts("new@example.org")), {"550"})
        self.assertNotIn("reload:", self.daemon.log_tail(200))   # no engine reload was involved


class ListFileProcesses(ListFileThreads):
    config = {"performance.backend": "process", "performance.initialprocs": "3"}
