"""Real scanning services for the tests, on loopback only, each started in a temp dir of its own
and stopped by PID: clamd (a private signature database: the EICAR test file and a text marker,
no freshclam, no network), spamd (-L: local tests only, no DNS) and rspamd (its DNS pointed at a
local DNS server so nothing leaves the machine). Also Silent, a server that accepts and never
answers (a hanging service), and Refused, a port nothing listens on."""

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time

from redisserver import free_port, stop_process

CLAMD = shutil.which("clamd") or "/usr/sbin/clamd"
SPAMD = shutil.which("spamd") or "/usr/sbin/spamd"
RSPAMD = shutil.which("rspamd") or "/usr/bin/rspamd"

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
EICAR_NAME = "Eicar-Test-Signature-Custom.UNOFFICIAL"
MARKER = b"FUFILTER-TEST-VIRUS-MARKER"
MARKER_NAME = "Test.Marker.FuFilter.UNOFFICIAL"
GTUBE = b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


def _wait(predicate, timeout, proc, what, log):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with %s: %s" % (what, proc.returncode, log()))
        if predicate():
            return
        time.sleep(0.05)
    raise RuntimeError("%s did not answer within %d s: %s" % (what, timeout, log()))


def _tail(path, n=3000):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-n:]
    except OSError:
        return ""


def service_dir(prefix, owner=None):
    """A temp dir the service's own user can enter (mkdtemp makes 0700 dirs)."""
    d = tempfile.mkdtemp(prefix=prefix)
    os.chmod(d, 0o755)
    if owner and os.getuid() == 0:
        pw = pwd.getpwnam(owner)
        os.chown(d, pw.pw_uid, pw.pw_gid)
    return d


def _user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


class Service:
    """What the services share: a temp dir of their own, a log, a process stopped by PID."""
    stop_timeout = 15

    def log(self):
        return _tail(self.log_path)

    def stop(self):
        stop_process(self.proc, timeout=self.stop_timeout)
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


class Clamd(Service):
    """clamd in the foreground (its PID is ours), TCP on 127.0.0.1 and a unix socket."""

    def __init__(self):
        self.dir = service_dir("fuglu-clamd-")
        self.port = free_port()
        self.socket = os.path.join(self.dir, "clamd.sock")
        db = os.path.join(self.dir, "db")
        os.makedirs(db)
        with open(os.path.join(db, "custom.hdb"), "w") as f:
            f.write("44d88612fea8a8f36de82e1278abb02f:68:Eicar-Test-Signature-Custom\n")
        with open(os.path.join(db, "custom.ndb"), "w") as f:
            f.write("Test.Marker.FuFilter:0:*:%s\n" % MARKER.hex())
        self.log_path = os.path.join(self.dir, "clamd.log")
        self.conf = os.path.join(self.dir, "clamd.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join([
                "LocalSocket %s" % self.socket, "LocalSocketMode 666",
                "TCPSocket %d" % self.port, "TCPAddr 127.0.0.1",
                "DatabaseDirectory %s" % db, "LogFile %s" % self.log_path, "LogTime yes",
                "Foreground yes", "MaxThreads 4", "StreamMaxLength 50M", "ScanMail yes",
                "SelfCheck 0"]) + "\n")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([CLAMD, "-c", self.conf], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait(lambda: self.command(b"zPING\0") == b"PONG" and os.path.exists(self.socket),
              30, self.proc, "clamd", self.log)
        return self

    def command(self, cmd, timeout=2):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
                s.sendall(cmd)
                data = b""
                while not data.endswith(b"\0"):
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                return data.rstrip(b"\0")
        except OSError:
            return b""


class Spamd(Service):
    """spamd -L in the foreground (TERM to the parent stops the children), on 127.0.0.1."""

    def __init__(self):
        self.user = "debian-spamd" if os.getuid() == 0 and _user_exists("debian-spamd") else None
        self.dir = service_dir("fuglu-spamd-", self.user)
        self.port = free_port()
        self.log_path = os.path.join(self.dir, "spamd.log")
        self.proc = None
        self.max_children = 2

    def start(self):
        args = [SPAMD, "--listen=127.0.0.1:%d" % self.port, "-L", "--max-children=%d" % self.max_children,
                "--min-children=%d" % min(2, self.max_children), "--nouser-config", "-H", self.dir, "-s", self.log_path]
        if self.user:
            args += ["-u", self.user, "-g", self.user]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, cwd=self.dir)
        _wait(self.ping, 60, self.proc, "spamd", self.log)
        return self

    def ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                s.sendall(b"PING SPAMC/1.2\r\n\r\n")
                return b"PONG" in s.recv(100)
        except OSError:
            return False


class Silent:
    """Accepts connections, reads what comes and never answers: a service that hangs."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stopped = False
        self.thread = threading.Thread(target=self.run, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def run(self):
        self.sock.settimeout(0.2)
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
                self.conns.append(c)
            except OSError:
                continue

    def stop(self):
        self.stopped = True
        self.thread.join(5)
        for c in self.conns:
            c.close()
        self.sock.close()


RSPAMD_LOCAL_LUA = r'''
-- test symbol: X-Test-Rspamd-Score: N adds N to the score (the tests pick rspamd's action)
rspamd_config:register_symbol{
  name = 'FUGLU_TEST_SCORE', score = 1.0, group = 'fuglu_test',
  callback = function(task)
    local h = task:get_header('X-Test-Rspamd-Score')
    if h and tonumber(h) then return true, tonumber(h), 'test' end
    return false
  end
}
'''


class Rspamd(Service):
    """rspamd in the foreground (-f; its PID is ours): one normal worker on 127.0.0.1, no proxy,
    a controller on another loopback port. Its DNS goes to dns_port (an Unbound that refuses
    everything but its test zones), so no query and no map download leaves the machine. The
    actions' thresholds are far apart (greylist 20, add header 40, rewrite subject 60, reject 80)
    and the test header X-Test-Rspamd-Score moves a message into one of them. The compiled
    Hyperscan cache is kept in /tmp/fuglu-rspamd-cache, so only the first start is slow."""

    CACHE = "/tmp/fuglu-rspamd-cache"

    def __init__(self, dns_port):
        self.user = "_rspamd" if os.getuid() == 0 and _user_exists("_rspamd") else None
        self.dir = service_dir("fuglu-rspamd-", self.user)
        self.port = free_port()
        self.controller = free_port()
        conf = os.path.join(self.dir, "etc")
        local = os.path.join(conf, "local.d")
        os.makedirs(local)
        for sub in ("run", "log"):
            os.makedirs(os.path.join(self.dir, sub))
        os.makedirs(self.CACHE, exist_ok=True)
        files = {
            "options.inc": 'dns { nameserver = ["127.0.0.1:%d"]; timeout = 1s; retransmits = 1; }\n' % dns_port,
            "worker-normal.inc": 'bind_socket = "127.0.0.1:%d"; count = 1;\n' % self.port,
            "worker-controller.inc": 'bind_socket = "127.0.0.1:%d";\n' % self.controller,
            "worker-proxy.inc": "enabled = false;\n",
            "worker-fuzzy.inc": "enabled = false;\n",
            "logging.inc": 'type = "file"; filename = "%s/log/rspamd.log"; level = "notice";\n' % self.dir,
            "actions.conf": "greylist = 20; add_header = 40; rewrite_subject = 60; reject = 80;\n"
                            'subject = "***SPAM*** %s";\n',
            "redis.conf": "enabled = false;\n",
        }
        for name, text in files.items():
            with open(os.path.join(local, name), "w") as f:
                f.write(text)
        with open(os.path.join(conf, "rspamd.local.lua"), "w") as f:
            f.write(RSPAMD_LOCAL_LUA)
        if self.user:
            pw = pwd.getpwnam(self.user)
            for root, dirs, fls in os.walk(self.dir):
                for n in dirs + fls:
                    os.chown(os.path.join(root, n), pw.pw_uid, pw.pw_gid)
            os.chown(self.CACHE, pw.pw_uid, pw.pw_gid)
        self.log_path = os.path.join(self.dir, "log", "rspamd.log")
        self.proc = None

    def start(self):
        args = [RSPAMD, "-f", "-c", "/etc/rspamd/rspamd.conf",
                "--var", "LOCAL_CONFDIR=%s" % os.path.join(self.dir, "etc"),
                "--var", "DBDIR=%s" % self.CACHE, "--var", "RUNDIR=%s" % os.path.join(self.dir, "run"),
                "--var", "LOGDIR=%s" % os.path.join(self.dir, "log")]
        if self.user:
            args += ["-u", self.user, "-g", self.user]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, cwd=self.dir)
        _wait(self.ping, 120, self.proc, "rspamd", self.log)
        return self

    def ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                s.sendall(b"GET /ping HTTP/1.0\r\n\r\n")
                return b"pong" in s.recv(1000)
        except OSError:
            return False


class CIcap(Service):
    """c-icap in the foreground (-N) with its virus_scan service scanning through clamd's unix
    socket (a Clamd of ours): RESPMOD on icap://127.0.0.1:PORT/avscan."""

    MODULES = "/usr/lib/x86_64-linux-gnu/c_icap"

    def __init__(self, clamd):
        self.dir = service_dir("fuglu-cicap-")
        self.port = free_port()
        self.log_path = os.path.join(self.dir, "server.log")
        self.conf = os.path.join(self.dir, "c-icap.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join([
                "PidFile %s/c-icap.pid" % self.dir, "CommandsSocket %s/c-icap.ctl" % self.dir,
                "Timeout 30", "StartServers 1", "MaxServers 1", "MinSpareThreads 2",
                "MaxSpareThreads 4", "ThreadsPerChild 4", "Port 127.0.0.1:%d" % self.port,
                "TmpDir %s" % self.dir, "ServerLog %s" % self.log_path,
                "AccessLog %s/access.log" % self.dir, "DebugLevel 1",
                "ModulesDir %s" % self.MODULES, "ServicesDir %s" % self.MODULES,
                "TemplateDir /usr/share/c_icap/templates/", "TemplateDefaultLanguage en",
                "LoadMagicFile /etc/c-icap/c-icap.magic",
                "Module common clamd_mod.so", "clamd_mod.ClamdSocket %s" % clamd.socket,
                "Service antivirus_module virus_scan.so",
                "ServiceAlias avscan virus_scan?allow204=on&sizelimit=off&mode=simple",
                "virus_scan.ScanFileTypes TEXT DATA EXECUTABLE ARCHIVE GIF JPEG MSOFFICE",
                "virus_scan.DefaultEngine clamd", "virus_scan.Allow204Responces on"]) + "\n")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(["/usr/bin/c-icap", "-N", "-f", self.conf], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.dir)
        _wait(self.options_ok, 30, self.proc, "c-icap", self.log)
        return self

    def options_ok(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                s.sendall(b"OPTIONS icap://127.0.0.1/avscan ICAP/1.0\r\nHost: 127.0.0.1\r\nEncapsulated: null-body=0\r\n\r\n")
                return s.recv(1000).startswith(b"ICAP/1.0 200")
        except OSError:
            return False

