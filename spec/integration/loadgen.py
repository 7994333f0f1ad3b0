"""loadgen: a bounded SMTP load generator with exact per-message accounting, for the reload tests.

LoadGenerator(port, total, connections, per_connection) sends `total` messages numbered 0..total-1
over `connections` client threads; each thread opens a session, sends up to `per_connection`
messages on it (MAIL, RCPT, DATA; several messages per session), QUITs and opens the next one until
its share is sent. Every message carries `X-Test-Seq: <n>` and `Message-ID: <loadgen-<run>-<n>@...>`
so the downstream copies can be matched to the replies.

Every reply to the end of data is recorded per sequence number (`replies[n]`, a list, so a message
answered twice shows up), and every failure (a 4xx/5xx to MAIL/RCPT/DATA, EOF, reset, timeout) is
recorded in `problems` with the sequence number and the stage. Nothing is retried: a retry would
hide exactly what the reload tests look for.

Bounded: each socket operation has a timeout, the whole run has a deadline (`run_timeout`), and
join() waits at most that long. `progress()` is the number of messages answered so far (usable to
interleave other actions with the load).

check_downstream(sink_messages, load) compares what the sink received with the replies: every
message answered 250 must be in the sink exactly once, nothing else may be there.
"""

import re
import socket
import threading
import time

from harness import SCALE, SmtpClient, dot_stuff

SEQ_RE = re.compile(rb"(?mi)^X-Test-Seq: (\d+)\r?$")
SUSPECT_RE = re.compile(rb"(?mi)^X-Fuglu-Suspect: (\S+)\r?$")
REPLY_ID_RE = re.compile(r"^250 FUGLU REQUEUE\(([0-9a-f]{32})\): ")


def load_message(run, seq, extra_headers=()):
    """The bytes of message `seq` of run `run`: small, CRLF, with X-Test-Seq and a unique Message-ID."""
    lines = ["From: Load <load@example.org>", "To: Sink <sink@example.net>",
             "Subject: load %s %d" % (run, seq),
             "Message-ID: <loadgen-%s-%d@test.local>" % (run, seq),
             "X-Test-Seq: %d" % seq]
    lines += ["%s: %s" % hv for hv in extra_headers]
    body = "Message %d of load run %s.\r\nSome body text to scan.\r\n" % (seq, run)
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode("ascii")


class LoadGenerator:
    def __init__(self, port, total, connections=20, per_connection=10, run="run", host="127.0.0.1",
                 extra_headers=None, run_timeout=120, reply_timeout=30):
        self.port = port
        self.host = host
        self.total = total
        self.connections = connections
        self.per_connection = per_connection
        self.run = run
        self.extra_headers = extra_headers or (lambda seq: ())
        self.run_timeout = run_timeout * SCALE
        self.reply_timeout = reply_timeout
        self.replies = {}           # seq -> [final reply line, ...]
        self.problems = []          # (seq or None, stage, text)
        self.sessions = 0
        self._answered = 0
        self._lock = threading.Lock()
        self._threads = []
        self._deadline = None
        self.started = None
        self.elapsed = None

    # ---- accounting ----

    def _record_reply(self, seq, reply):
        with self._lock:
            self.replies.setdefault(seq, []).append(reply)
            self._answered += 1

    def _problem(self, seq, stage, text):
        with self._lock:
            self.problems.append((seq, stage, text))
            if seq is not None:
                self._answered += 1

    def finished(self):
        """True once every client thread has ended (all sent, or the deadline passed)."""
        return bool(self._threads) and not any(t.is_alive() for t in self._threads)

    def progress(self):
        with self._lock:
            return self._answered

    # ---- the client threads ----

    def _shares(self):
        """The sequence numbers of each thread: thread i sends i, i+connections, ..."""
        return [list(range(i, self.total, self.connections)) for i in range(self.connections)]

    def _session(self, seqs):
        """One SMTP session sending seqs; returns how many were handled (answered or failed)."""
        try:
            c = SmtpClient(self.port, host=self.host, timeout=self.reply_timeout)
        except OSError as e:
            self._problem(seqs[0], "connect", repr(e))
            return 1
        done = 0
        stage = "banner"
        try:
            with self._lock:
                self.sessions += 1
            c.banner_and_ehlo("load%s.test.local" % self.run)
            for seq in seqs:
                if time.monotonic() > self._deadline:
                    self._problem(seq, "deadline", "run_timeout passed before this message was sent")
                    done += 1
                    continue
                stage = "MAIL"
                r = c.cmd("MAIL FROM:<load@example.org>")
                if not r or not r.startswith("250"):
                    raise _Refused(stage, r)
                stage = "RCPT"
                r = c.cmd("RCPT TO:<sink%d@example.net>" % (seq % 7))
                if not r or not r.startswith("250"):
                    raise _Refused(stage, r)
                stage = "DATA"
                r = c.cmd("DATA")
                if not r or not r.startswith("354"):
                    raise _Refused(stage, r)
                stage = "end of data"
                c.send(dot_stuff(load_message(self.run, seq, self.extra_headers(seq))))
                r = c.reply_line(timeout=self.reply_timeout)
                if r is None:
                    raise _Refused(stage, "connection closed (EOF)")
                self._record_reply(seq, r)
                done += 1
            stage = "QUIT"
            r = c.cmd("QUIT")
            if not r or not r.startswith("221"):
                self._problem(None, "QUIT", repr(r))
        except _Refused as e:
            self._problem(seqs[done], e.stage, e.text)
            done += 1
        except (OSError, AssertionError) as e:     # reset, timeout, malformed or missing banner
            if done < len(seqs):
                self._problem(seqs[done], stage, repr(e))
                done += 1
            else:
                self._problem(None, stage, repr(e))
        finally:
            c.close()
        return done

    def _worker(self, seqs):
        i = 0
        while i < len(seqs):
            chunk = seqs[i:i + self.per_connection]
            handled = self._session(chunk)
            # messages of a broken session that were never sent are sent on the next session
            i += max(handled, 1)

    def start(self):
        self.started = time.monotonic()
        self._deadline = self.started + self.run_timeout
        for n, seqs in enumerate(self._shares()):
            t = threading.Thread(target=self._worker, args=(seqs,), name="loadgen-%d" % n, daemon=True)
            self._threads.append(t)
            t.start()
        return self

    def join(self):
        """Waits for every thread (bounded by run_timeout plus a reply timeout); True if all ended."""
        end = self._deadline + self.reply_timeout * SCALE + 5
        for t in self._threads:
            t.join(max(0.0, end - time.monotonic()))
        self.elapsed = time.monotonic() - self.started
        return not any(t.is_alive() for t in self._threads)

    def run_all(self):
        self.start()
        return self.join()

    # ---- results ----

    def codes(self):
        """{reply code: count} over every recorded final reply."""
        out = {}
        for replies in self.replies.values():
            for r in replies:
                out[r[:3]] = out.get(r[:3], 0) + 1
        return out

    def summary(self, limit=10):
        """A short text for assertion messages: counts, the first problems and odd replies."""
        odd = [(s, r) for s, rs in sorted(self.replies.items()) for r in rs
               if not r.startswith("250 ")][:limit]
        twice = [s for s, rs in self.replies.items() if len(rs) > 1][:limit]
        return ("%d of %d messages answered, codes %s, %d problems (first: %s), odd replies %s, "
                "answered twice %s, %d sessions, %.1f s"
                % (len(self.replies), self.total, self.codes(), len(self.problems), self.problems[:limit],
                   odd, twice, self.sessions, self.elapsed or 0))


class _Refused(Exception):
    def __init__(self, stage, text):
        super().__init__(stage, text)
        self.stage = stage
        self.text = text


def check_downstream(messages, load):
    """Compares the sink's messages (harness sink.messages()) with load's replies. Returns a list of
    problem strings (empty when every message answered 250 is in the sink exactly once, with the
    X-Fuglu-Suspect id of its reply, and the sink holds nothing else of this run)."""
    problems = []
    seen = {}
    for env, data in messages:
        head = data.split(b"\r\n\r\n", 1)[0]
        if b"Message-ID: <loadgen-%s-" % load.run.encode() not in head:
            continue
        m = SEQ_RE.search(head)
        if not m:
            problems.append("a downstream message of this run has no X-Test-Seq: %r" % head[:200])
            continue
        sid = SUSPECT_RE.search(head)
        seen.setdefault(int(m.group(1)), []).append(sid.group(1).decode() if sid else None)
    accepted = {s: rs[0] for s, rs in load.replies.items() if len(rs) == 1 and rs[0].startswith("250 ")}
    dupes = sorted(s for s, ids in seen.items() if len(ids) > 1)
    if dupes:
        problems.append("%d messages delivered more than once downstream, e.g. %s" % (len(dupes), dupes[:10]))
    missing = sorted(set(accepted) - set(seen))
    if missing:
        problems.append("%d messages answered 250 never arrived downstream, e.g. %s" % (len(missing), missing[:10]))
    extra = sorted(set(seen) - set(accepted))
    if extra:
        problems.append("%d messages arrived downstream without a single 250 reply, e.g. %s"
                        % (len(extra), [(s, load.replies.get(s)) for s in extra[:10]]))
    wrong_id = []
    for s, reply in accepted.items():
        m = REPLY_ID_RE.match(reply)
        if m and s in seen and seen[s][0] != m.group(1):
            wrong_id.append((s, reply, seen[s][0]))
    if wrong_id:
        problems.append("%d downstream copies carry another X-Fuglu-Suspect than their reply, e.g. %s"
                        % (len(wrong_id), wrong_id[:5]))
    return problems


def connect_refused(port, host="127.0.0.1"):
    """True when a TCP connect to host:port is refused (nothing listens), False when it connects."""
    try:
        with socket.create_connection((host, port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
