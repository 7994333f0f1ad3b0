"""Integration: header edits (set_subject, remove_header) reach the downstream through the real
re-injection: the header block rebuilt once, every body byte as received (dot-stuffed lines,
8-bit bytes, a bare-CR line), on both backends."""

import os

from harness import FugluCase, PLUGIN_DIR

EDITOR_PLUGIN = r'''
local plugin = require "fuglu.plugin"
local actions = require "fuglu.actions"

local SubjectTagger = plugin.scanner{ name = "SubjectTagger", description = "tags the subject" }

function SubjectTagger:examine(suspect)
    local subject = suspect:get_message_rep():header("Subject")[1] or ""
    suspect:set_subject("[SPAM] " .. subject)
    suspect:remove_header("X-Internal")
    return actions.DUNNO
end

return SubjectTagger
'''

BODY = b"first line\r\n..leading dot (stuffed on the wire)\r\n8bit: \xe4\xf6\xfc\r\nbare\rcr\r\n\r\nlast\r\n"
MESSAGE = (b"From: a@example.org\r\nSubject: cheap watches\r\nX-Internal: secret\r\n"
           b"X-Internal: again\r\nTo: b@example.net\r\n\r\n") + BODY.replace(b"\r\n..", b"\r\n.")


class HeaderEditThreads(FugluCase):
    @classmethod
    def prepare(cls, values):
        plugdir = os.path.join(cls.tmpdir, "plugins")
        os.makedirs(plugdir)
        with open(os.path.join(plugdir, "tagger.lua"), "w") as f:
            f.write(EDITOR_PLUGIN)
        values["main.plugindir"] = "%s,%s" % (plugdir, PLUGIN_DIR)
        values["main.plugins"] = "tagger"

    def test_edited_headers_and_the_body_byte_for_byte(self):
        before = self.sink_count()
        reply = self.send_one(MESSAGE)
        self.assertTrue(reply.startswith("250 "), reply)
        data = self.wait_sink(before + 1)[-1][1]
        head, _, body = data.partition(b"\r\n\r\n")
        self.assertIn(b"\r\nSubject: [SPAM] cheap watches\r\n", b"\r\n" + head + b"\r\n")
        self.assertNotIn(b"X-Internal", head)
        self.assertIn(b"From: a@example.org\r\n", head + b"\r\n")
        self.assertEqual(body, MESSAGE.partition(b"\r\n\r\n")[2])


class HeaderEditProcesses(HeaderEditThreads):
    config = {"performance.backend": "process", "performance.initialprocs": "1"}
