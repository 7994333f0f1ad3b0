"""Integration: the SMTP server side of the after-queue connector.

Banner, EHLO keywords, command sequence errors, garbage, RSET/NOOP/QUIT, line length limit, SIZE,
idle timeout, MAIL/RCPT parameters and XFORWARD passed downstream.
"""

import os
import re
import subprocess
import socket
import time
import unittest

from harness import SCALE, FugluCase, ID_RE, dot_stuff, make_message, wait_for


class ProtocolTests(FugluCase):
    config = {"main.maxmessagesize": "20000"}

    def test_banner(self):
        with self.client() as c:
            self.assertRegex(c.reply_line() or "", r"^220 [^ ]+ fuglu scanner ready$")

    def test_ehlo_keywords(self):
        with self.client() as c:
            _, texts = c.banner_and_ehlo()
            keywords = {t.split()[0].upper() for t in texts[1:] if t.strip()}
            for k in ("PIPELINING", "8BITMIME", "SIZE", "ENHANCEDSTATUSCODES", "SMTPUTF8", "DSN", "XFORWARD"):
                self.assertIn(k, keywords, "EHLO does not advertise %s: %r" % (k, texts))

    def test_helo(self):
        with self.client() as c:
            c.reply_line()
            self.assertEqual(c.cmd("HELO client.test.local")[:4], "250 ")

    def test_rcpt_before_mail_is_503(self):
        with self.client() as c:
            c.banner_and_ehlo()
            self.assertEqual(c.cmd("RCPT TO:<b@example.net>")[:3], "503")

    def test_data_before_rcpt_is_503(self):
        with self.client() as c:
            c.banner_and_ehlo()
            self.assertEqual(c.cmd("DATA")[:3], "503")
            c.expect("MAIL FROM:<a@example.org>", 250)
            self.assertEqual(c.cmd("DATA")[:3], "503")
            # the session is still usable
            c.expect("RCPT TO:<b@example.net>", 250)

    def test_nested_mail_is_503(self):
        with self.client() as c:
            c.banner_and_ehlo()
            c.expect("MAIL FROM:<a@example.org>", 250)
            self.assertEqual(c.cmd("MAIL FROM:<a@example.org>")[:3], "503")

    def test_garbage_command(self):
        with self.client() as c:
            c.banner_and_ehlo()
            self.assertIn(c.cmd("FOOBAR baz")[:3], ("500", "502"))
            self.assertEqual(c.cmd("NOOP")[:3], "250")

    def test_bad_mail_syntax_is_501(self):
        with self.client() as c:
            c.banner_and_ehlo()
            self.assertEqual(c.cmd("MAIL TO:<a@example.org>")[:3], "501")
            self.assertEqual(c.cmd("MAIL FROM:<a@example.org")[:3], "501")
            c.expect("MAIL FROM:<a@example.org>", 250)
            self.assertEqual(c.cmd("RCPT FROM:<b@example.net>")[:3], "501")

    def test_rset(self):
        with self.client() as c:
            c.banner_and_ehlo()
            c.expect("MAIL FROM:<a@example.org>", 250)
            c.expect("RCPT TO:<b@example.net>", 250)
            self.assertEqual(c.cmd("RSET")[:3], "250")
            self.assertEqual(c.cmd("RCPT TO:<b@example.net>")[:3], "503", "RSET did not clear the transaction")
            c.expect("MAIL FROM:<a@example.org>", 250)

    def test_noop(self):
        with self.client() as c:
            c.banner_and_ehlo()
            self.assertEqual(c.cmd("NOOP")[:3], "250")

    def test_quit(self):
        with self.client() as c:
            c.banner_and_ehlo()
            self.assertEqual(c.cmd("QUIT")[:3], "221")
            self.assertIsNone(c.read_line(timeout=5), "connection not closed after QUIT")

    def test_overlong_command_line(self):
        with self.client() as c:
            c.banner_and_ehlo()
            reply = c.cmd("NOOP " + "x" * 5000)
            self.assertEqual((reply or "")[:3], "500", "5000-byte command line answered %r" % reply)

    def test_declared_size_too_big_is_552(self):
        with self.client() as c:
            c.banner_and_ehlo()
            self.assertEqual(c.cmd("MAIL FROM:<a@example.org> SIZE=20001")[:3], "552")
            self.assertEqual(c.cmd("MAIL FROM:<a@example.org> SIZE=1000")[:3], "250")

    def test_actual_size_too_big_is_552(self):
        before = self.sink_count()
        body = ("y" * 70 + "\r\n") * 400           # 28800 bytes > maxmessagesize 20000
        with self.client() as c:
            c.banner_and_ehlo()
            reply = c.send_message("a@example.org", ["b@example.net"], make_message(body=body, subject="big"))
            self.assertEqual((reply or "")[:3], "552", "oversized message answered %r" % reply)
            # the session continues
            self.assertEqual(c.cmd("NOOP")[:3], "250")
        time.sleep(0.3)
        self.assertEqual(self.sink_count(), before)

    def test_params_and_xforward_downstream(self):
        before = self.sink_count()
        with self.client() as c:
            c.banner_and_ehlo()
            c.expect("XFORWARD NAME=client.example.com ADDR=192.0.2.7 PORT=4711", 250)
            c.expect("XFORWARD HELO=helo.example.com PROTO=ESMTP", 250)
            c.expect("MAIL FROM:<a@example.org> BODY=8BITMIME RET=HDRS ENVID=env42", 250)
            c.expect("RCPT TO:<b@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@example.net", 250)
            c.expect("DATA", 354)
            c.send(dot_stuff(make_message(subject="params")))
            reply = c.reply_line(timeout=30)
        self.assertRegex(reply or "", r"^250 FUGLU REQUEUE\(%s\): " % ID_RE)
        env, _ = self.wait_sink(before + 1)[-1]
        opts = env["mail_options"].upper().split()
        self.assertIn("BODY=8BITMIME", opts)
        self.assertIn("RET=HDRS", opts)
        self.assertIn("ENVID=ENV42", opts)
        ropts = env["rcpt_options"][0].upper().split()
        self.assertIn("NOTIFY=SUCCESS,FAILURE", ropts)
        self.assertIn("ORCPT=RFC822;B@EXAMPLE.NET", ropts)
        xf = env["xforward"]
        self.assertEqual(xf.get("NAME"), "client.example.com")
        self.assertEqual(xf.get("ADDR"), "192.0.2.7")
        self.assertEqual(xf.get("HELO"), "helo.example.com")
        self.assertEqual(xf.get("PROTO"), "ESMTP")
        self.assertTrue(env["esmtp"], "re-injection did not use EHLO")
        self.assertEqual(env["helo"], "fuglu.test.local", "outgoinghelo not used")

    def test_smtputf8_sender(self):
        before = self.sink_count()
        with self.client() as c:
            c.banner_and_ehlo()
            reply = c.send_message("j\u00f6rg@example.org", ["b@example.net"],
                                   make_message(subject="utf8"), mail_params="SMTPUTF8")
        self.assertRegex(reply or "", r"^250 FUGLU REQUEUE\(%s\): " % ID_RE)
        env, _ = self.wait_sink(before + 1)[-1]
        self.assertEqual(env["mail_from"], "j\u00f6rg@example.org")
        self.assertIn("SMTPUTF8", env["mail_options"].upper().split())


class IdleTimeoutTests(FugluCase):
    config = {"main.smtp_timeout": "2"}

    def test_idle_session_gets_421(self):
        with self.client() as c:
            c.banner_and_ehlo()
            start = time.monotonic()
            try:
                line = c.read_line(timeout=10)
            except socket.timeout:
                self.fail("no reply within 10 s of idling with smtp_timeout=2")
            elapsed = time.monotonic() - start
            self.assertRegex(line or "", r"^421 ", "idle session got %r" % line)
            self.assertGreater(elapsed, 1.5, "closed after %.2f s, before smtp_timeout" % elapsed)
            self.assertIsNone(c.read_line(timeout=5), "connection not closed after 421")

    def test_active_session_is_not_closed(self):
        with self.client() as c:
            c.banner_and_ehlo()
            for _ in range(3):
                time.sleep(1)
                self.assertEqual(c.cmd("NOOP")[:3], "250")


class ParameterTests(FugluCase):
    def test_tab_in_parameters_is_refused_at_rcpt(self):
        """A TAB inside MAIL or RCPT parameters gets 501 at once instead of 250 and then a
        refusal at every DATA (a retry loop for the MTA)."""
        with self.client() as c:
            c.banner_and_ehlo()
            c.expect("MAIL FROM:<a@example.org> BODY=8BITMIME", 250)
            reply = c.cmd("RCPT TO:<b@example.net> NOTIFY=NEVER\tORCPT=rfc822;b@example.net")
            self.assertEqual(reply, "501 5.5.4 Syntax: a TAB or control character in the parameters")
            c.expect("RCPT TO:<b@example.net> NOTIFY=NEVER", 250)


class TrickleTests(FugluCase):
    """smtp_timeout and data_timeout are totals too: a client sending a byte now and then keeps
    neither a command line nor DATA open past them."""
    config = {"main.smtp_timeout": "2", "main.data_timeout": "2"}

    def trickle(self, c, data, interval=0.3, limit=8.0):
        """Sends data a byte at a time; returns (seconds, the first line the server sent)."""
        start = time.monotonic()
        c.sock.settimeout(interval)
        for b in data:
            if time.monotonic() - start > limit:
                break
            try:
                c.sock.sendall(bytes([b]))
            except OSError:
                break
            try:
                line = c.read_line(timeout=interval)
                if line is not None:
                    return time.monotonic() - start, line
                return time.monotonic() - start, None
            except socket.timeout:
                continue
        return time.monotonic() - start, None

    def test_a_trickled_command_line_times_out(self):
        with self.client() as c:
            c.banner_and_ehlo()
            elapsed, line = self.trickle(c, b"NOOP and a very long argument that never ends" * 2)
            self.assertRegex(line or "", r"^421 4\.4\.2 ", "after %.1f s: %r" % (elapsed, line))
            self.assertLess(elapsed, 4)
        self.assertTrue(self.daemon.wait_log("(smtp_timeout of 2 s in all)", 5), self.daemon.log_tail(10))

    def test_trickled_data_times_out(self):
        with self.client() as c:
            c.banner_and_ehlo()
            c.expect("MAIL FROM:<a@example.org>", 250)
            c.expect("RCPT TO:<b@example.net>", 250)
            c.expect("DATA", 354)
            elapsed, line = self.trickle(c, b"Subject: slow\r\n\r\n" + b"x" * 100)
            self.assertRegex(line or "", r"^421 4\.4\.2 ", "after %.1f s: %r" % (elapsed, line))
            self.assertLess(elapsed, 4)
        self.assertTrue(self.daemon.wait_log("(data_timeout of 2 s in all)", 5), self.daemon.log_tail(10))


class ConnectionLimitTests(FugluCase):
    config = {"main.maxconnections": "3"}

    def test_over_the_limit_gets_421_and_a_freed_slot_is_used_again(self):
        time.sleep(0.5)   # the harness's readiness probe may still be counted as a session
        clients = [self.client() for _ in range(3)]
        try:
            for c in clients:
                c.banner_and_ehlo()
            extra = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            data = extra.recv(200).decode()
            extra.close()
            self.assertRegex(data, r"^421 4\.7\.0 \S+ Error: too many connections, try again later\r\n")
            clients.pop().close()
            ok = wait_for(lambda: self.banner_ok(), 5)
            self.assertTrue(ok, "a freed slot was not used again")
        finally:
            for c in clients:
                c.close()
        self.assertTrue(self.daemon.wait_log("refused: too many connections (maxconnections)", 5))

    def banner_ok(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            return s.recv(200).startswith(b"220 ")


class PerClientLimitTests(FugluCase):
    config = {"main.maxconnections_per_client": "2"}

    def test_one_address_is_limited_others_are_not(self):
        time.sleep(0.5)   # the harness's readiness probe may still be counted as a session
        held = [socket.create_connection(("127.0.0.1", self.port), timeout=5) for _ in range(2)]
        try:
            for h in held:
                self.assertTrue(h.recv(200).startswith(b"220 "))
            third = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            self.assertIn(b"too many connections from your address", third.recv(200))
            third.close()
            other = socket.socket()
            other.settimeout(5)
            other.bind(("127.0.0.2", 0))          # another client address on loopback
            other.connect(("127.0.0.1", self.port))
            self.assertTrue(other.recv(200).startswith(b"220 "))
            other.close()
        finally:
            for h in held:
                h.close()


class DescriptorExhaustionTests(FugluCase):
    """Out of descriptors, accepting pauses instead of spinning: little CPU, a few log lines, and
    service again once descriptors free up."""

    @classmethod
    def prepare(cls, values):
        import resource
        orig = subprocess.Popen

        def limited(*args, **kw):
            kw["preexec_fn"] = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (48, 48))
            return orig(*args, **kw)
        cls._orig_popen = orig
        subprocess.Popen = limited

    @classmethod
    def setUpClass(cls):
        try:
            super().setUpClass()
        finally:
            if hasattr(cls, "_orig_popen"):
                subprocess.Popen = cls._orig_popen

    def cpu_seconds(self):
        with open("/proc/%d/stat" % self.daemon.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def test_accept_pauses_and_resumes(self):
        conns = []
        try:
            for _ in range(80):
                try:
                    conns.append(socket.create_connection(("127.0.0.1", self.port), timeout=2))
                except OSError:
                    break
            time.sleep(0.5)
            cpu0 = self.cpu_seconds()
            time.sleep(2)
            used = self.cpu_seconds() - cpu0
            self.assertLess(used, 0.5, "the daemon used %.2f s of CPU in 2 s without descriptors" % used)
            self.assertTrue(self.daemon.wait_log("accepting paused for 1 s", 5), self.daemon.log_tail(20))
            self.assertLess(self.daemon.log_tail(2000).count("accepting paused"), 5)
        finally:
            for c in conns:
                c.close()
        ok = wait_for(lambda: self.try_banner(), 10 * SCALE, 0.2)
        self.assertTrue(ok, "no service after descriptors were freed:\n" + self.daemon.log_tail(20))

    def try_banner(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=3) as s:
                return s.recv(200).startswith(b"220 ")
        except OSError:
            return False


if __name__ == "__main__":
    unittest.main()
