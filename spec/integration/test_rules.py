"""Integration: the rule-driven plugins in the running daemon.

skip removes a plugin for matching messages, actionoverride rejects with the rule's message,
scriptfilter rejects by sender domain, archive writes the expected path with the received bytes.
One daemon runs prependers=skip and plugins=actionoverride,scriptfilter,archive,testaction.
"""

import os
import re
import shutil
import tempfile
import unittest

from harness import FugluCase, ID_RE, make_message, wait_for

SKIP_RULES = "Subject ^skip-testaction$ TestActionPlugin\n"
ACTION_RULES = "envelope_from ^bad@example\\.org$ REJECT we do not want your mail\n"
ARCHIVE_RULES = "Subject /^archive me/i yes\n"
SCRIPT = """-- rejects mail from the unittests domain
if suspect.from_domain == "unittests.fuglu.org" then
    stop(REJECT, "rejected by script")
end
message = "accepted"
"""


class RulePluginTests(FugluCase):

    @classmethod
    def setUpClass(cls):
        cls.rulesdir = tempfile.mkdtemp(prefix="fuglu-rules-")
        files = {"skip.regex": SKIP_RULES, "actions.regex": ACTION_RULES, "archive.regex": ARCHIVE_RULES}
        for name, text in files.items():
            with open(os.path.join(cls.rulesdir, name), "w") as f:
                f.write(text)
        os.makedirs(os.path.join(cls.rulesdir, "scripts"))
        with open(os.path.join(cls.rulesdir, "scripts", "10-domain.lua"), "w") as f:
            f.write(SCRIPT)
        cls.archivedir = os.path.join(cls.rulesdir, "archive")
        cls.config = {
            "main.prependers": "skip",
            "main.plugins": "actionoverride,scriptfilter,archive,testaction",
            "PluginSkipper.filterfile": os.path.join(cls.rulesdir, "skip.regex"),
            "ActionOverridePlugin.actionrules": os.path.join(cls.rulesdir, "actions.regex"),
            "ScriptFilter.scriptdir": os.path.join(cls.rulesdir, "scripts"),
            "ArchivePlugin.archiverules": os.path.join(cls.rulesdir, "archive.regex"),
            "ArchivePlugin.archivedir": cls.archivedir,
            "ArchivePlugin.subdirtemplate": "${to_domain}",
            "ArchivePlugin.filenametemplate": "${id}.eml",
        }
        try:
            super().setUpClass()
        except BaseException:
            shutil.rmtree(cls.rulesdir, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        if os.environ.get("FUGLU_KEEP_TMP") != "1":
            shutil.rmtree(cls.rulesdir, ignore_errors=True)

    def test_testaction_runs_without_skip(self):
        reply = self.send_one(make_message([("X-Test-Action", "REJECT from testaction")], subject="no skip"))
        self.assertEqual(reply, "550 from testaction")

    def test_skip_removes_plugin(self):
        reply = self.send_one(make_message([("X-Test-Action", "REJECT from testaction")], subject="skip-testaction"))
        self.assertRegex(reply or "", r"^250 FUGLU REQUEUE\(%s\)" % ID_RE)

    def test_actionoverride_rejects_with_message(self):
        reply = self.send_one(make_message(subject="override"), mail_from="bad@example.org")
        self.assertEqual(reply, "550 we do not want your mail")

    def test_scriptfilter_rejects_by_sender_domain(self):
        reply = self.send_one(make_message(subject="script"), mail_from="someone@unittests.fuglu.org")
        self.assertEqual(reply, "550 rejected by script")
        reply = self.send_one(make_message(subject="script ok"), mail_from="someone@example.org")
        self.assertRegex(reply or "", r"^250 FUGLU REQUEUE")

    def test_archive_writes_original_bytes(self):
        data = make_message([("X-Archive", "yes")], body="archived body\r\n.leading dot\r\n", subject="Archive me please")
        reply = self.send_one(data, rcpts=("b@example.net",))
        m = re.match(r"^250 FUGLU REQUEUE\((%s)\)" % ID_RE, reply or "")
        self.assertTrue(m, reply)
        path = os.path.join(self.archivedir, "example.net", m.group(1) + ".eml")
        self.assertTrue(wait_for(lambda: os.path.exists(path), 5), "no archive file %s" % path)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), data)

    def test_archive_skips_unmatched(self):
        reply = self.send_one(make_message(subject="not archived"))
        m = re.match(r"^250 FUGLU REQUEUE\((%s)\)" % ID_RE, reply or "")
        self.assertTrue(m, reply)
        self.assertFalse(os.path.exists(os.path.join(self.archivedir, "example.net", m.group(1) + ".eml")))


if __name__ == "__main__":
    unittest.main()
