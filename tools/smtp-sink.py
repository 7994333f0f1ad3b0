#!/usr/bin/python3
"""smtp-sink: a small SMTP server that stores every message it receives, for tests and `make run`.

Standard library only (Debian's /usr/bin/python3). One thread per connection.

Each accepted message is written to OUTDIR as NNNN.eml (the DATA bytes exactly as received after
dot-unstuffing: every line with its CRLF, the terminating "." line excluded) and NNNN.json (the
envelope: helo, esmtp, mail_from, mail_options, rcpt_tos, rcpt_options, xforward). The .json is
written after the .eml (via a rename), so a reader that sees the .json sees the complete message.

Supports EHLO (PIPELINING, 8BITMIME, SIZE, DSN, SMTPUTF8, ENHANCEDSTATUSCODES, XFORWARD), HELO,
MAIL, RCPT, DATA, RSET, NOOP, XFORWARD, QUIT and several messages per connection. For failure tests
it can answer MAIL, RCPT or DATA (after the data) with a fixed reply instead of accepting.

Use it from Python (SmtpSink(...).start() / .stop(), attribute `fail` settable at any time) or as
a program:
    tools/smtp-sink.py --listen 127.0.0.1:10026 --outdir DIR [--fail-mail "451 4.3.0 no"]
                       [--fail-rcpt REPLY] [--fail-data REPLY] [--pidfile FILE]
It prints "smtp-sink listening on HOST:PORT" once ready (port 0 picks a free port) and stops on
SIGTERM or SIGINT.
"""

import argparse
import json
import os
import signal
import socket
import socketserver
import sys
import threading
import time

MAX_LINE = 1 << 20          # command lines longer than this are refused (the sink is not a limit test)


class _Handler(socketserver.StreamRequestHandler):
    timeout = 120

    def reply(self, text, after_data=False):
        self.pause(after_data)
        self.wfile.write(text.encode("utf-8", "surrogateescape") + b"\r\n")
        self.wfile.flush()

    def pause(self, after_data=False):
        """A slow downstream: `delay` seconds before every reply, `data_delay` instead before the
        one to the end of data, which comes after the message is stored (both settable at any
        time; bounded so that a test cannot hang on them)."""
        sink = self.server.sink
        seconds = sink.data_delay if after_data else sink.delay
        if seconds:
            time.sleep(min(float(seconds), 60.0))

    def reset(self):
        self.mail_from = None
        self.mail_options = ""
        self.rcpt_tos = []
        self.rcpt_options = []

    def handle(self):
        sink = self.server.sink
        self.helo = None
        self.esmtp = False
        self.xforward = {}
        self.reset()
        try:
            self.reply("220 %s ESMTP smtp-sink" % sink.hostname)
            while True:
                line = self.rfile.readline(MAX_LINE)
                if not line:
                    return
                if not line.endswith(b"\n"):
                    self.reply("500 5.5.2 line too long")
                    return
                cmd = line.rstrip(b"\r\n").decode("utf-8", "surrogateescape")
                sink.log_command(cmd)
                if not self.dispatch(cmd):
                    return
        except (ConnectionError, socket.timeout, OSError):
            return

    def dispatch(self, cmd):
        sink = self.server.sink
        verb, _, arg = cmd.partition(" ")
        verb = verb.upper()
        if verb == "EHLO":
            self.helo, self.esmtp = arg, True
            self.reset()
            self.pause()
            lines = ["%s" % sink.hostname] + list(sink.extensions)
            for i, text in enumerate(lines):
                self.wfile.write(("250%s%s\r\n" % ("-" if i < len(lines) - 1 else " ", text)).encode())
            self.wfile.flush()
        elif verb == "HELO":
            self.helo, self.esmtp = arg, False
            self.reset()
            self.reply("250 %s" % sink.hostname)
        elif verb == "XFORWARD":
            for item in arg.split():
                key, _, value = item.partition("=")
                self.xforward[key.upper()] = value
            self.reply("250 2.0.0 Ok")
        elif verb == "MAIL":
            if self.mail_from is not None:
                self.reply("503 5.5.1 Error: nested MAIL command")
            elif not arg.upper().startswith("FROM:"):
                self.reply("501 5.5.4 Syntax: MAIL FROM:<address>")
            elif sink.fail.get("MAIL"):
                self.reply(sink.fail["MAIL"])
            else:
                self.mail_from, self.mail_options = _split_path(arg[5:])
                self.reply("250 2.1.0 Ok")
        elif verb == "RCPT":
            if self.mail_from is None:
                self.reply("503 5.5.1 Error: need MAIL command")
            elif not arg.upper().startswith("TO:"):
                self.reply("501 5.5.4 Syntax: RCPT TO:<address>")
            elif sink.fail.get("RCPT"):
                self.reply(sink.fail["RCPT"])
            else:
                addr, options = _split_path(arg[3:])
                self.rcpt_tos.append(addr)
                self.rcpt_options.append(options)
                self.reply("250 2.1.5 Ok")
        elif verb == "DATA":
            if not self.rcpt_tos:
                self.reply("503 5.5.1 Error: need RCPT command")
                return True
            self.reply("354 End data with <CR><LF>.<CR><LF>")
            data = self.read_data()
            if data is None:
                return False
            if sink.fail.get("DATA"):
                self.reply(sink.fail["DATA"], after_data=True)
            else:
                n = sink.store(data, {
                    "helo": self.helo, "esmtp": self.esmtp,
                    "mail_from": self.mail_from, "mail_options": self.mail_options,
                    "rcpt_tos": self.rcpt_tos, "rcpt_options": self.rcpt_options,
                    "xforward": dict(self.xforward),
                })
                self.reply("250 2.0.0 Ok: queued as sink%d" % n, after_data=True)
            self.reset()
            self.xforward = {}
        elif verb == "RSET":
            self.reset()
            self.reply("250 2.0.0 Ok")
        elif verb == "NOOP":
            self.reply("250 2.0.0 Ok")
        elif verb == "QUIT":
            self.reply("221 2.0.0 Bye")
            return False
        else:
            self.reply("502 5.5.2 Error: command not recognized")
        return True

    def read_data(self):
        """Reads up to the "." line; returns the unstuffed bytes or None on EOF."""
        parts = []
        at_line_start = True
        while True:
            line = self.rfile.readline(MAX_LINE)
            if not line:
                return None
            if at_line_start:
                if line == b".\r\n" or line == b".\n":
                    return b"".join(parts)
                if line.startswith(b"."):
                    line = line[1:]
            at_line_start = line.endswith(b"\n")
            parts.append(line)


def _split_path(text):
    """ "<a@b> SIZE=1 BODY=8BITMIME" -> ("a@b", "SIZE=1 BODY=8BITMIME")."""
    text = text.strip()
    if text.startswith("<"):
        end = text.find(">")
        if end < 0:
            return text[1:], ""
        return text[1:end], text[end + 1:].strip()
    addr, _, rest = text.partition(" ")
    return addr, rest.strip()


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class SmtpSink:
    """An SMTP sink on host:port (port 0 = any free one; see .port after start())."""

    EXTENSIONS = ("PIPELINING", "SIZE 104857600", "8BITMIME", "DSN", "SMTPUTF8",
                  "ENHANCEDSTATUSCODES", "XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE")

    def __init__(self, outdir, host="127.0.0.1", port=0, fail=None, hostname="sink.test.local"):
        self.outdir = outdir
        self.host = host
        self.port = port
        self.fail = dict(fail or {})
        self.hostname = hostname
        self.delay = 0              # seconds before each reply (a slow downstream)
        self.data_delay = 0         # seconds before the reply to the end of data
        self.extensions = list(self.EXTENSIONS)
        self.commands = []            # every command line received, in order (all connections)
        self._lock = threading.Lock()
        self._count = 0
        self._server = None
        self._thread = None
        os.makedirs(outdir, exist_ok=True)

    def log_command(self, cmd):
        with self._lock:
            self.commands.append(cmd)

    def store(self, data, envelope):
        with self._lock:
            self._count += 1
            n = self._count
        base = os.path.join(self.outdir, "%04d" % n)
        with open(base + ".eml", "wb") as f:
            f.write(data)
        with open(base + ".json.tmp", "w") as f:
            json.dump(envelope, f, indent=1)
        os.rename(base + ".json.tmp", base + ".json")
        return n

    def start(self):
        self._server = _Server((self.host, self.port), _Handler)
        self._server.sink = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="smtp-sink", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)
            self._server = None

    def messages(self):
        """[(envelope dict, bytes)] of the stored messages, oldest first."""
        out = []
        for name in sorted(os.listdir(self.outdir)):
            if name.endswith(".json"):
                base = os.path.join(self.outdir, name[:-5])
                with open(base + ".json") as f:
                    env = json.load(f)
                with open(base + ".eml", "rb") as f:
                    out.append((env, f.read()))
        return out


def main():
    ap = argparse.ArgumentParser(description="SMTP sink writing each message to a directory")
    ap.add_argument("--listen", default="127.0.0.1:10026", help="HOST:PORT (port 0 = any free port)")
    ap.add_argument("--outdir", required=True)
    ap.add_argument("--fail-mail", help="reply to MAIL instead of accepting, e.g. '451 4.3.0 try later'")
    ap.add_argument("--fail-rcpt", help="reply to RCPT instead of accepting")
    ap.add_argument("--fail-data", help="reply after DATA instead of accepting")
    ap.add_argument("--pidfile")
    args = ap.parse_args()
    host, _, port = args.listen.rpartition(":")
    fail = {k: v for k, v in (("MAIL", args.fail_mail), ("RCPT", args.fail_rcpt), ("DATA", args.fail_data)) if v}
    sink = SmtpSink(args.outdir, host or "127.0.0.1", int(port), fail).start()
    if args.pidfile:
        with open(args.pidfile, "w") as f:
            f.write("%d\n" % os.getpid())
    print("smtp-sink listening on %s:%d, writing to %s" % (sink.host, sink.port, args.outdir), flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1):
        pass
    sink.stop()
    if args.pidfile:
        try:
            os.unlink(args.pidfile)
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
