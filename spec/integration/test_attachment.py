"""Integration: the attachment blocker (plugins = attachment, FiletypePlugin) in the daemon.

The messages come from spec/fixtures/attachment/gen.py (made at test time). The daemon runs with
checkarchivenames = checkarchivecontent = 1, archivecontentmaxsize = 1000000 and
archiveextractlevel = 6 (7 in the second class), the default rule files of rules/ plus a few
per-recipient ones, sendbounce = 1 and the dist template. A blocked message is answered
"250 <blockinfo>" (blockaction DELETE), is not delivered, and its bounce reaches the downstream
with MAIL FROM:<> to the sender.
"""

import os
import shutil
import subprocess
import sys
import time

from harness import FugluCase, FUGLU_BIN, ROOT, SCALE, wait_for

sys.path.insert(0, os.path.join(ROOT, "spec", "fixtures", "attachment"))
import gen  # noqa: E402

USER_RULES = {
    "nested@example.net-archivenames.conf": "deny level6\\.txt deepest level\n",
    "hidden@example.net-filetypes.conf": "deny application\\/zip no zips\n",
    "size@example.net-archivefiletypes.conf": "deny application\\/octet\\-stream zeros\n",
    "bomb@example.net-archivefiletypes.conf": "deny application\\/octet\\-stream zeros\n",
}


def vm_hwm_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


class AttachmentCase(FugluCase):
    level = "6"

    @classmethod
    def prepare(cls, values):
        rules = os.path.join(cls.tmpdir, "rules")
        os.makedirs(rules)
        for kind in ("filenames", "filetypes", "archivenames", "archivefiletypes"):
            shutil.copy(os.path.join(ROOT, "rules", "default-%s.conf" % kind), rules)
        for name, text in USER_RULES.items():
            with open(os.path.join(rules, name), "w") as f:
                f.write(text)
        template = os.path.join(cls.tmpdir, "blockedfile.tmpl")
        shutil.copy(os.path.join(ROOT, "conf", "templates", "blockedfile.tmpl.dist"), template)
        values.update({
            "main.plugins": "attachment",
            "FiletypePlugin.rulesdir": rules,
            "FiletypePlugin.template_blockedfile": template,
            "FiletypePlugin.sendbounce": "1",
            "FiletypePlugin.checkarchivenames": "1",
            "FiletypePlugin.checkarchivecontent": "1",
            "FiletypePlugin.archivecontentmaxsize": "1000000",
            "FiletypePlugin.archiveextractlevel": cls.level,
        })

    def send(self, name, rcpt="b@example.net", sender="a@example.org", data=None):
        before = self.sink_count()
        reply = self.send_one(data if data is not None else gen.MESSAGES[name](), mail_from=sender, rcpts=(rcpt,))
        return before, reply

    def assert_delivered(self, before, reply, rcpt="b@example.net"):
        self.assertTrue(reply and reply.startswith("250 FUGLU REQUEUE("), "%r\n%s" % (reply, self.daemon.log_tail(20)))
        msgs = self.wait_sink(before + 1)
        self.assertEqual(len(msgs), before + 1)
        self.assertEqual(msgs[-1][0]["rcpt_tos"], [rcpt])

    def assert_blocked(self, before, reply, blockinfo, sender="a@example.org", bounce=True):
        self.assertEqual(reply, "250 " + blockinfo, self.daemon.log_tail(20))
        if not bounce:
            time.sleep(0.3)
            self.assertEqual(self.sink_count(), before, "a blocked message or a bounce was delivered")
            return
        msgs = self.wait_sink(before + 1)
        self.assertEqual(len(msgs), before + 1, "expected exactly the bounce at the downstream")
        env, data = msgs[-1]
        self.assertEqual(env["mail_from"], "", "the bounce must come from <>")
        self.assertEqual(env["rcpt_tos"], [sender])
        text = data.decode("utf-8", "replace")
        self.assertIn("Subject: Blocked attachment", text)
        self.assertIn("To: %s" % sender, text)
        self.assertIn("contains a blocked attachment and has not been delivered", text)
        self.assertIn(blockinfo, text)


class AttachmentTests(AttachmentCase):

    def test_clean_message_passes(self):
        self.assert_delivered(*self.send("clean"))

    def test_hidden_binary_by_magic_type(self):
        before, reply = self.send("hiddenbinary")
        self.assertRegex(reply or "", r"^250 hiddenbinary\.txt application/x-[\w-]+: Executables are not allowed$")
        self.assert_blocked(before, reply, reply[4:])

    def test_rfc2047_encoded_exe_name(self):
        before, reply = self.send("rfc2047exe")
        self.assert_blocked(before, reply, "Rechnung_Mrz.exe: Windows executable or script files are not allowed")

    def test_rfc2231_encoded_exe_name(self):
        before, reply = self.send("rfc2231exe")
        self.assert_blocked(before, reply, "Rechnung Mrz.exe: Windows executable or script files are not allowed")

    def test_no_bounce_to_the_null_sender(self):
        before, reply = self.send("rfc2047exe", sender="")
        self.assert_blocked(before, reply, "Rechnung_Mrz.exe: Windows executable or script files are not allowed",
                            bounce=False)

    def test_member_over_the_size_cap_is_not_typed(self):
        # size@ denies octet-stream members: the 500 kB member is typed and blocked, the 2 MB one
        # (over archivecontentmaxsize) is not extracted and passes, as in Fuglu
        self.assert_delivered(*self.send("sizecap_over", rcpt="size@example.net"), rcpt="size@example.net")
        before, reply = self.send("sizecap_under", rcpt="size@example.net")
        self.assert_blocked(before, reply, "small.bin application/octet-stream: zeros")

    def test_names_in_archives(self):
        before, reply = self.send("archivenames")
        self.assert_blocked(before, reply, "docs/setup.exe: Executable files in archives are not allowed")

    def test_nested_archive_level_6_passes(self):
        self.assert_delivered(*self.send("nested", rcpt="nested@example.net"), rcpt="nested@example.net")

    def test_zip_in_the_epilogue(self):
        self.assert_delivered(*self.send("epilogue"))      # b@ has no rule against zips
        before, reply = self.send("epilogue", rcpt="hidden@example.net")
        self.assert_blocked(before, reply, "hidden.zip application/zip: no zips")

    def test_zip_named_gz_with_an_exe(self):
        before, reply = self.send("wrongext")
        self.assert_blocked(before, reply, "payload.exe: Executable files in archives are not allowed")

    def test_zip_bomb_stops_early(self):
        # 300 MB of zeros deflated to ~300 kB; bomb@ denies octet-stream members, so a scanner that
        # extracted and typed the member would block it. It must stop at archivecontentmaxsize
        # (1 MB) read: the member is not typed, the message passes, fast and without the memory.
        data = gen.zipbomb()
        pid = self.daemon.proc.pid
        start = time.monotonic()
        before, reply = self.send("zipbomb", rcpt="bomb@example.net", data=data)
        took = time.monotonic() - start
        self.assert_delivered(before, reply, rcpt="bomb@example.net")
        self.assertLess(took, 10 * SCALE, "the bomb took %.1f s" % took)
        hwm = vm_hwm_kib(pid)
        self.assertLess(hwm, 200 * 1024, "daemon peak RSS %d KiB: the member was extracted" % hwm)

    def test_lint_reports_the_checks(self):
        r = subprocess.run([FUGLU_BIN, "--lint", "-c", self.daemon.conf], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60 * SCALE)
        out = r.stdout.decode("utf-8", "replace")
        self.assertEqual(r.returncode, 0, out)
        self.assertIn("Archive scan, available file extensions: zip", out)
        self.assertRegex(out, r"libmagic \d")

    def test_lint_rejects_dbconnectstring_and_bad_rule_lines(self):
        conf = os.path.join(self.tmpdir, "lint-bad.conf")
        rules = os.path.join(self.tmpdir, "rules-bad")
        os.makedirs(rules, exist_ok=True)
        with open(os.path.join(rules, "default-filenames.conf"), "w") as f:
            f.write("deny \\.exe$ fine\nthis is not a rule ( \n")
        with open(self.daemon.conf) as f:
            text = f.read()
        text = text.replace("rulesdir = %s" % os.path.join(self.tmpdir, "rules"), "rulesdir = %s" % rules)
        text = text.replace("[FiletypePlugin]", "[FiletypePlugin]\ndbconnectstring = mysql://u@h/db")
        with open(conf, "w") as f:
            f.write(text)
        r = subprocess.run([FUGLU_BIN, "--lint", "-c", conf], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60 * SCALE)
        out = r.stdout.decode("utf-8", "replace")
        self.assertNotEqual(r.returncode, 0, out)
        self.assertIn("dbconnectstring is set, but SQL attachment rules are not supported yet", out)
        self.assertIn("default-filenames.conf:2:", out)

    def test_rule_edit_without_reload(self):
        path = os.path.join(self.tmpdir, "rules", "edit@example.net-filenames.conf")
        self.assert_delivered(*self.send("clean", rcpt="edit@example.net"), rcpt="edit@example.net")
        with open(path, "w") as f:
            f.write("deny \\.png$ no pictures\n")

        def blocked():
            before = self.sink_count()
            reply = self.send_one(gen.clean(), rcpts=("edit@example.net",))
            if reply == "250 photo.png: no pictures":
                return True
            wait_for(lambda: self.sink_count() > before, 5)
            return False
        # every worker looks at the directory again within a few seconds
        self.assertTrue(wait_for(blocked, 15, interval=0.5), self.daemon.log_tail(20))
        os.remove(path)


class AttachmentLevel7Tests(AttachmentCase):
    level = "7"

    def test_nested_archive_level_7_blocks(self):
        before, reply = self.send("nested", rcpt="nested@example.net")
        self.assert_blocked(before, reply, "level6.txt: deepest level")
