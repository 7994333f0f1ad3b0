"""scanners: scenario 7 of tools/bench/run, the engine with real scanning services.

The services (clamd, spamd, rspamd and the Unbound rspamd asks) are the test suite's own
(spec/integration/scanservers.py), on loopback. For each service, its own client feeds it the
same messages at the same concurrency (clamdscan --stream, spamc, rspamc -n): that is the limit
a filter in front of it can reach. Then the engine runs a chain through them and the row
reports the engine's msgs/s against the slowest service's, the engine's own CPU per message
and the services' CPU per message over the same pass (every process of each service's tree).
"""

import os
import shutil
import subprocess
import sys
import threading
import time

import harness
from harness import BenchError

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "spec", "integration"))

CLK_TCK = os.sysconf("SC_CLK_TCK")


def tree_cpu(pid):
    """CPU seconds of pid and every live descendant (utime + stime, + the reaped children's)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            parents[int(entry)] = (int(fields[1]), fields)
        except (OSError, IndexError, ValueError):
            continue
    total, todo, seen = 0.0, [pid], set()
    while todo:
        p = todo.pop()
        if p in seen or p not in parents:
            continue
        seen.add(p)
        f = parents[p][1]
        total += (int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])) / CLK_TCK
        todo.extend(c for c, (pp, _) in parents.items() if pp == p)
    return total


def split(files, count, sessions):
    """sessions lists of paths, count in all, the files taken in turn."""
    lists = [[] for _ in range(sessions)]
    for i in range(count):
        lists[i % sessions].append(files[i % len(files)])
    return [l for l in lists if l]


def run_parallel(argvs, stdin_files=None, timeout=900):
    """Runs the commands at once; stdin_files: per command a list of paths fed one per run
    (the command is then run once per path, in sequence, in that command's thread)."""
    errors = []

    def one(argv, paths):
        try:
            if paths is None:
                r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout)
                if r.returncode not in (0, 1):
                    errors.append("%s: exit %d %s" % (argv[0], r.returncode, r.stderr[-200:]))
            else:
                for p in paths:
                    with open(p, "rb") as f:
                        r = subprocess.run(argv, stdin=f, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                           timeout=timeout)
                    if r.returncode not in (0, 1):
                        errors.append("%s: exit %d %s" % (argv[0], r.returncode, r.stderr[-200:]))
                        return
        except (OSError, subprocess.TimeoutExpired) as e:
            errors.append("%s: %s" % (argv[0], e))

    threads = []
    start = time.monotonic()
    for i, argv in enumerate(argvs):
        t = threading.Thread(target=one, args=(argv, stdin_files[i] if stdin_files else None))
        t.start()
        threads.append(t)
    for t in threads:
        t.join(timeout + 10)
    wall = time.monotonic() - start
    if errors:
        raise BenchError("direct client failed: %s" % errors[0])
    return wall


class Services:
    def __init__(self, workdir, want_rspamd=True):
        import scanservers
        import dnsserver
        self.clamd = self.spamd = self.rspamd = self.dns = None
        try:
            self.clamd = scanservers.Clamd().start()
            sp = scanservers.Spamd()
            sp.max_children = 4
            self.spamd = sp.start()
            if want_rspamd and shutil.which("rspamd"):
                self.dns = dnsserver.Unbound(workdir, [], zones=("test.",), log_queries=False).start()
                self.rspamd = scanservers.Rspamd(self.dns.port).start()
        except BaseException:
            self.stop()
            raise

    def stop(self):
        for s in (self.rspamd, self.dns, self.spamd, self.clamd):
            if s is not None:
                try:
                    s.stop()
                except Exception:
                    pass

    def cpu(self, which):
        return sum(tree_cpu(s.proc.pid) for s in which)

    # ---- direct clients ----------------------------------------------------------------------

    def direct_clamd(self, files, count, sessions):
        lists = split(files, count, sessions)
        return run_parallel([["clamdscan", "-c", self.clamd.conf, "--stream", "--no-summary", "--quiet"] + l
                             for l in lists])

    def direct_spamd(self, files, count, sessions):
        lists = split(files, count, sessions)
        # -u: the engine's SAPlugin sends the recipient as User (peruserconfig), so does this
        argv = ["spamc", "-d", "127.0.0.1", "-p", str(self.spamd.port), "-c", "-u", "user@example.net"]
        return run_parallel([argv] * len(lists), stdin_files=lists)

    def direct_rspamd(self, files, count, sessions, workdir):
        # rspamc scans each path it is given; copies make count of them
        d = os.path.join(workdir, "rspamc-input")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        paths = []
        for i in range(count):
            p = os.path.join(d, "%05d.eml" % i)
            os.symlink(files[i % len(files)], p)
            paths.append(p)
        # the envelope the engine's RspamdPlugin sends too (rspamd checks SPF etc. on it)
        return run_parallel([["rspamc", "-h", "127.0.0.1:%d" % self.rspamd.port, "-n", str(sessions),
                              "--from", "bench@example.org", "--rcpt", "user@example.net"] + paths])

    def instream(self, path, count):
        """ClamavPlugin:scan() alone, count times in sequence (tools/bench/instream.lua)."""
        import json
        r = subprocess.run(["luajit", os.path.join(HERE, "instream.lua"), path, str(self.clamd.port), str(count)],
                           capture_output=True, timeout=600, cwd=ROOT)
        if r.returncode != 0:
            raise BenchError("instream.lua failed: %s" % r.stderr.decode("utf-8", "replace")[-300:])
        return json.loads(r.stdout.decode().strip().splitlines()[-1])


def measure_service(services, name, direct, which, count, passes):
    """Best of passes: (msgs/s, service CPU s per message)."""
    best, cpu_best = None, None
    for _ in range(passes):
        c0 = services.cpu(which)
        wall = direct()
        cpu = services.cpu(which) - c0
        if best is None or wall < best:
            best, cpu_best = wall, cpu
    return {"service": name, "msgs_s": round(count / best, 1), "cpu_s_per_msg": round(cpu_best / count, 5)}


def engine_pass(services, engine, which, files, count, sessions, passes):
    pairs, each = [], 1
    per = split(files, count, sessions)
    # smtp-source wants (file, count): one per distinct file, sessions spread over them
    counts = {}
    for l in per:
        for p in l:
            counts[p] = counts.get(p, 0) + 1
    pairs = list(counts.items())
    each = max(1, sessions // max(1, len(pairs)))
    best = None
    for _ in range(passes):
        s0, e0 = services.cpu(which), engine.cpu()
        wall = harness.smtp_source(engine.port, pairs, each)
        s_cpu, e_cpu = services.cpu(which) - s0, engine.cpu() - e0
        if best is None or wall < best[0]:
            best = (wall, s_cpu, e_cpu)
    wall, s_cpu, e_cpu = best
    return {"wall_s": round(wall, 3), "msgs_s": round(count / wall, 1),
            "cpu_s_per_1k": round(e_cpu * 1000 / count, 4), "engine_cpu_s_per_msg": round(e_cpu / count, 5),
            "services_cpu_s_per_msg": round(s_cpu / count, 5)}
