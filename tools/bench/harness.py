"""harness: processes and measurements for tools/bench/run (Python standard library only).

Everything runs on 127.0.0.1. Every process is started here with subprocess and stopped by its
PID (TERM, then KILL after a bounded wait); every wait and loop has a time or count bound.

  Sink            smtp-sink (Postfix) on a free port: the downstream and the "limit" target
  Engine          build/fuglu with a generated config between the load and the sink
  smtp_source()   one or more smtp-source processes at once; returns the wall time
  loadgen()       the paced latency client (tools/bench/loadgen.c, built on first use)
  proc_cpu(), proc_mem()   /proc/PID/stat utime+stime and /proc/PID/status VmRSS/VmHWM
  IdleConnections N sockets that have read the banner and then stay silent
"""

import json
import os
import signal
import socket
import subprocess
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
SMTP_SOURCE = "/usr/sbin/smtp-source"
SMTP_SINK = "/usr/sbin/smtp-sink"


class BenchError(Exception):
    """The suite itself cannot run (a tool missing, a process that does not start or fails)."""


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_banner(port, timeout=10.0, proc=None):
    """Waits until 127.0.0.1:port answers with a 220 banner (bounded by timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise BenchError("process %d exited with status %s before listening on %d"
                             % (proc.pid, proc.returncode, port))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                banner = s.recv(512)
                if banner.startswith(b"220"):
                    s.sendall(b"QUIT\r\n")
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise BenchError("nothing answers on 127.0.0.1:%d after %.0f s" % (port, timeout))


def stop_pid(proc, grace=35.0):
    """TERM, wait up to grace seconds, then KILL; always by the process's own PID."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass


def proc_cpu(pid):
    """CPU seconds (user + system, all threads) the process has used so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # after the ")" field 3 is the state: utime and stime are fields 14 and 15 overall
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_mem(pid):
    """{'rss_kb': VmRSS, 'hwm_kb': VmHWM, 'threads': Threads} of a process."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Threads"):
                out[{"VmRSS": "rss_kb", "VmHWM": "hwm_kb", "Threads": "threads"}[key]] = \
                    int(value.split()[0])
    return out


def proc_rss_split(pid):
    """(RssAnon, RssFile + RssShmem) in kB: heap/stack versus mapped files."""
    anon = mapped = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("RssAnon:"):
                anon = int(line.split()[1])
            elif line.startswith(("RssFile:", "RssShmem:")):
                mapped += int(line.split()[1])
    return anon, mapped


class MemSampler:
    """Polls a process's RssAnon/RssFile every interval seconds in a thread and keeps the peaks
    (VmHWM alone does not say whether the peak is heap or a mapped spool file)."""

    def __init__(self, pid, interval=0.01):
        import threading
        self.pid, self.interval = pid, interval
        self.peak_anon_kb = self.peak_file_kb = 0
        self.samples = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while not self.stopping.wait(self.interval) and self.samples < 10_000_000:
            try:
                anon, mapped = proc_rss_split(self.pid)
            except OSError:
                return
            self.samples += 1
            self.peak_anon_kb = max(self.peak_anon_kb, anon)
            self.peak_file_kb = max(self.peak_file_kb, mapped)

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=5)


class Sink:
    """smtp-sink on a free port; messages are accepted and thrown away."""

    def __init__(self, workdir):
        self.port = free_port()
        self.log = open(os.path.join(workdir, "smtp-sink.log"), "wb")
        argv = [SMTP_SINK]
        if os.geteuid() == 0:
            argv += ["-u", "nobody"]
        # -m: up to 4096 simultaneous sessions (default 256; scenario 4 holds 1,000 idle ones)
        argv += ["-m", "4096", "127.0.0.1:%d" % self.port, "1024"]
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        wait_banner(self.port, proc=self.proc)

    def stop(self):
        stop_pid(self.proc, grace=5)
        self.log.close()


class Engine:
    """build/fuglu between the load and the sink, with its own config, tempdir and log."""

    def __init__(self, root, workdir, name, sink_port, threads=8, prependers="", plugins="",
                 appenders="", sections=None, plugindir="", main=None):
        self.port = free_port()
        self.dir = os.path.join(workdir, name)
        os.makedirs(os.path.join(self.dir, "tmp"), exist_ok=True)
        user = "root" if os.geteuid() == 0 else os.environ.get("USER", "nobody")
        lines = ["[main]", "daemonize = 0", "user = %s" % user, "group = %s" % user,
                 "incomingport = smtp:127.0.0.1:%d" % self.port,
                 "outgoinghost = 127.0.0.1", "outgoingport = %d" % sink_port,
                 "tempdir = %s/tmp" % self.dir, "controlport = %s/control.sock" % self.dir,
                 "plugindir = %s" % plugindir, "prependers = %s" % prependers,
                 "plugins = %s" % plugins, "appenders = %s" % appenders, "mrtgdir ="] + \
                ["%s = %s" % kv for kv in (main or {}).items()] + ["",
                 "[performance]", "minthreads = %d" % threads, "maxthreads = %d" % threads, ""]
        for section, values in (sections or {}).items():
            lines.append("[%s]" % section)
            lines.extend("%s = %s" % kv for kv in values.items())
            lines.append("")
        self.conf = os.path.join(self.dir, "fuglu.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(lines))
        # FUGLU_BENCH_BINARY: measure another build of the engine (an experiment) instead
        self.binary = os.environ.get("FUGLU_BENCH_BINARY") or os.path.join(root, "build", "fuglu")
        self.logpath = os.path.join(self.dir, "fuglu.log")
        self.log = open(self.logpath, "wb")
        # FUGLU_LUADIR from the caller's environment wins: a way to measure a changed copy of lua/
        env = dict(os.environ)
        env.setdefault("FUGLU_LUADIR", os.path.join(root, "lua"))
        self.luadir = env["FUGLU_LUADIR"]
        self.proc = subprocess.Popen([self.binary, "-c", self.conf, "-f"], stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     cwd=root, env=env)
        try:
            wait_banner(self.port, timeout=15, proc=self.proc)
        except BenchError as e:
            self.stop()
            raise BenchError("%s; engine log %s:\n%s" % (e, self.logpath, self.log_tail()))

    @property
    def pid(self):
        return self.proc.pid

    def cpu(self):
        return proc_cpu(self.proc.pid)

    def mem(self):
        return proc_mem(self.proc.pid)

    def log_tail(self, lines=15):
        try:
            with open(self.logpath, "rb") as f:
                return b"\n".join(f.read().splitlines()[-lines:]).decode("utf-8", "replace")
        except OSError:
            return ""

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        stop_pid(self.proc)
        self.log.close()


def smtp_source(port, files_and_counts, sessions_each=1, timeout=600):
    """Runs one smtp-source per (file, count) at the same time, each with sessions_each sessions
    reusing their connections (-d). Returns the wall time until the last one finished."""
    procs = []
    start = time.monotonic()
    try:
        for path, count in files_and_counts:
            if count <= 0:
                continue
            argv = [SMTP_SOURCE, "-d", "-s", str(sessions_each), "-m", str(count),
                    "-f", "bench@example.org", "-t", "user@example.net", "-F", path,
                    "127.0.0.1:%d" % port]
            procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.PIPE, stdin=subprocess.DEVNULL))
        errors = []
        for p in procs:
            remaining = max(1.0, timeout - (time.monotonic() - start))
            try:
                _, err = p.communicate(timeout=remaining)
            except subprocess.TimeoutExpired:
                stop_pid(p, grace=2)
                raise BenchError("smtp-source did not finish within %d s" % timeout)
            if p.returncode != 0:
                errors.append(err.decode("utf-8", "replace").strip())
        if errors:
            raise BenchError("smtp-source failed: %s" % errors[0][:500])
        return time.monotonic() - start
    finally:
        for p in procs:
            stop_pid(p, grace=2)


def build_loadgen(root, outdir):
    """Compiles tools/bench/loadgen.c into outdir/loadgen unless it is up to date."""
    src = os.path.join(root, "tools", "bench", "loadgen.c")
    deps = [src, os.path.join(root, "src", "lib", "util.c"), os.path.join(root, "src", "lib", "util.h")]
    binary = os.path.join(outdir, "loadgen")
    if os.path.exists(binary) and all(os.path.getmtime(binary) >= os.path.getmtime(d) for d in deps):
        return binary
    os.makedirs(outdir, exist_ok=True)
    argv = ["cc", "-std=c11", "-D_GNU_SOURCE", "-O2", "-Wall", "-Wextra", "-Werror", "-pthread",
            "-I" + os.path.join(root, "src"), src, os.path.join(root, "src", "lib", "util.c"),
            "-o", binary]
    r = subprocess.run(argv, capture_output=True, timeout=120)
    if r.returncode != 0:
        raise BenchError("cannot build loadgen: %s" % r.stderr.decode("utf-8", "replace"))
    return binary


def loadgen(binary, port, files, sessions, count, rate, timeout=120):
    """Paced transactions with per-message timing; returns loadgen's JSON result as a dict."""
    argv = [binary, "-p", str(port), "-s", str(sessions), "-n", str(count),
            "-r", "%.1f" % rate, "-T", str(timeout)]
    for path in files:
        argv += ["-F", path]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL)
    try:
        out, err = p.communicate(timeout=timeout + 30)
    except subprocess.TimeoutExpired:
        stop_pid(p, grace=2)
        raise BenchError("loadgen did not finish")
    if p.returncode != 0:
        raise BenchError("loadgen failed: %s %s" % (out.decode()[:300], err.decode()[:300]))
    return json.loads(out.decode().strip().splitlines()[-1])


class IdleConnections:
    """count sockets to 127.0.0.1:port, each having read the 220 banner, then silent."""

    def __init__(self, port, count, timeout=30.0):
        self.socks = []
        deadline = time.monotonic() + timeout
        try:
            for _ in range(count):
                if time.monotonic() > deadline:
                    raise BenchError("opening %d idle connections took over %.0f s" % (count, timeout))
                s = socket.create_connection(("127.0.0.1", port), timeout=10)
                self.socks.append(s)
            for s in self.socks:
                if not s.recv(512).startswith(b"220"):
                    raise BenchError("an idle connection got no 220 banner")
        except OSError as e:
            self.close()
            raise BenchError("idle connection %d of %d: %s" % (len(self.socks), count, e))
        except BenchError:
            self.close()
            raise

    def still_open(self):
        """How many connections the server has not closed (non-blocking peek)."""
        n = 0
        for s in self.socks:
            s.setblocking(False)
            try:
                if s.recv(1, socket.MSG_PEEK) == b"":
                    continue
                n += 1          # unexpected data, but open
            except BlockingIOError:
                n += 1
            except OSError:
                pass
        return n

    def close(self):
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass
        self.socks = []
