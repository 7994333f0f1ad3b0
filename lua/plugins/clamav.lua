-- ClamavPlugin (alias clamav): asks clamd whether the message carries a virus (reference 6.6).
--
-- The message (its current source, without the headers the engine adds at re-injection) goes to
-- clamd with zINSTREAM in 4-byte-length frames, streamed from C straight from the message's bytes.
-- Replies: "stream: OK" (clean), "stream: NAME FOUND" (virus), anything with ERROR (e.g. "INSTREAM
-- size limit exceeded": maxsize must not exceed clamd's StreamMaxLength) is a failure.
--
--   [ClamavPlugin]
--   host = localhost          # an IPv4/IPv6 address or localhost (no name lookup)
--   port = 3310               # not a number: a unix socket path, e.g. /run/clamav/clamd.ctl
--   timeout = 30              # seconds for each socket call (the message's scan_timeout still wins)
--   pipelining = 0            # 1: one zIDSESSION connection per worker, reused for many scans
--   maxsize = 22000000        # bigger messages are not scanned
--   retries = 3               # attempts before the fallback / problemaction
--   virusaction = DEFAULTVIRUSACTION
--   problemaction = DEFER
--   rejectmessage = threat detected: ${virusname}
--   clamscanfallback = 0      # 1: after the retries, run clamscan on the message
--   clamscan = /usr/bin/clamscan    # the program and, optionally, its arguments (-d DIR ...)
--   clamscantimeout = 30
--
-- Tags: virus['ClamAV'] (true/false), ClamAV.virus and ClamavPlugin.virus ({stream = name}).

local actions = require "fuglu.actions"
local av = require "fuglu.avscanner"
local plugin = require "fuglu.plugin"
local proc = require "fuglu_proc"
local socket = require "fuglu_socket"

local ClamavPlugin = plugin.scanner{
    name = "ClamavPlugin",
    description = "This plugin passes suspects to a clam daemon. Actions: This plugin will delete infected messages. If clamd is not reachable or times out, messages can be DEFERRED.",
    options = {
        host = { default = "localhost", description = "hostname where clamd runs" },
        port = { default = "3310", description = "tcp port number or path to clamd.sock for unix domain sockets" },
        timeout = { default = "30", description = "socket timeout" },
        pipelining = { default = "0", description = "use a single zIDSESSION connection per worker for many scans (reconnects after 5000 scans and after any error)" },
        maxsize = { default = "22000000", description = "maximum message size, larger messages will not be scanned; must not be larger than clamd's StreamMaxLength" },
        retries = { default = "3", description = "how often should fuglu retry the connection before giving up" },
        virusaction = { default = "DEFAULTVIRUSACTION", description = "action if infection is detected (DUNNO, REJECT, DELETE)" },
        problemaction = { default = "DEFER", description = "action if there is a problem (DUNNO, DEFER)" },
        rejectmessage = { default = "threat detected: ${virusname}", description = "reject message template if running in pre-queue mode and virusaction=REJECT" },
        clamscanfallback = { default = "0", description = "on failure to connect to clamd, try running clamscan" },
        clamscan = { default = "/usr/bin/clamscan", description = "path to clamscan executable, optionally followed by its arguments" },
        clamscantimeout = { default = "30", description = "process timeout" },
    },
}
ClamavPlugin.enginename = "ClamAV"

-- zIDSESSION connections are renewed after this many scans.
ClamavPlugin.SESSION_SCANS = 5000


function ClamavPlugin:connect()
    local host, port = self:peer()
    local s = socket.tcp()
    s:settimeout(math.floor(self:getfloat("timeout") * 1000))
    local ok, err = s:connect(host, port)
    if not ok then s:close() return nil, err end
    return s
end

-- "stream: OK" -> {}, "stream: NAME FOUND" -> {stream = NAME}; anything else -> nil, err.
function ClamavPlugin.parse_reply(reply)
    reply = reply:gsub("%z+$", ""):gsub("%s+$", "")
    local file, rest = reply:match("^(.-): (.*)$")
    if file == nil then return nil, "unexpected clamd reply: " .. reply end
    if rest:match(" ERROR$") then return nil, "clamd: " .. reply end
    if rest == "OK" then return {} end
    local name = rest:match("^(.+) FOUND$")
    if name then return { [file] = name } end
    return nil, "unexpected clamd reply: " .. reply
end

-- One zINSTREAM exchange on s; returns the raw reply or nil, err.
local function instream(s, msg)
    local ok, err = s:send("zINSTREAM\0")
    if ok then ok, err = s:send(msg, { chunk = 65536, frame = "u32be", terminate = true }) end
    if not ok then return nil, err end
    return s:receiveuntil("\0", 4096)
end

-- A scan on its own connection (clamd closes it after the reply).
function ClamavPlugin:scan_single(msg)
    local s, err = self:connect()
    if not s then return nil, err end
    local reply
    reply, err = instream(s, msg)
    s:close()
    if not reply then return nil, err end
    return ClamavPlugin.parse_reply(reply)
end

function ClamavPlugin:end_session()
    local session = self.session
    self.session = nil
    if session then
        session.sock:send("zEND\0")
        session.sock:close()
    end
end

-- A scan on this worker's zIDSESSION connection; replies are "<n>: stream: ..." with n counting
-- up from 1. A fresh session is opened when there is none, after SESSION_SCANS scans, and after
-- any error (the failed scan is then retried once on the new connection if the old one was reused:
-- clamd closes idle sessions after its IdleTimeout).
function ClamavPlugin:scan_session(msg, second)
    if self.session and self.session.count >= self.SESSION_SCANS then self:end_session() end
    if self.session == nil then
        local s, err = self:connect()
        if not s then return nil, err end
        local ok
        ok, err = s:send("zIDSESSION\0")
        if not ok then s:close() return nil, err end
        self.session = { sock = s, count = 0 }
    end
    local session = self.session
    local reused = session.count > 0
    local reply, err = instream(session.sock, msg)
    if reply then
        local id, rest = reply:match("^(%d+): (.*)$")
        if id == nil or tonumber(id) ~= session.count + 1 then
            reply, err = nil, string.format("clamd session: expected reply %d, got '%s'", session.count + 1, reply)
        else
            session.count = session.count + 1
            local result, perr = ClamavPlugin.parse_reply(rest)
            if result == nil then self:end_session() end
            return result, perr
        end
    end
    self:end_session()
    if reused and not second then
        self.logger:info("clamd session lost after %d scans (%s): reconnecting", session.count, tostring(err))
        return self:scan_session(msg, true)
    end
    return nil, err
end

function ClamavPlugin:scan(msg)
    if self:getboolean("pipelining") then return self:scan_session(msg) end
    return self:scan_single(msg)
end

-- clamscan on the message's bytes: exit 0 clean, 1 virus ("stdin: NAME FOUND" lines), else error.
function ClamavPlugin:scan_clamscan(msg)
    local argv = {}
    for word in self:get("clamscan"):gmatch("%S+") do argv[#argv + 1] = word end
    if #argv == 0 then return nil, "clamscan is empty" end
    argv[#argv + 1] = "--no-summary"
    argv[#argv + 1] = "-"
    argv.input = msg
    argv.timeout = math.floor(self:getfloat("clamscantimeout") * 1000)
    local r, err = proc.run(argv)
    if r == nil then return nil, err end
    if r.timedout then return nil, "clamscan timed out" end
    if r.status == 0 then return {} end
    if r.status == 1 then
        local viruses = {}
        for file, name in r.stdout:gmatch("([^\n]-): ([^\n]+) FOUND") do viruses[file] = name end
        if next(viruses) then return viruses end
        return nil, "clamscan said virus but named none: " .. r.stdout:sub(1, 200)
    end
    return nil, string.format("clamscan exited with %s: %s", tostring(r.status or ("signal " .. tostring(r.signal))),
        (r.stderr ~= "" and r.stderr or r.stdout):sub(1, 300))
end

function ClamavPlugin:examine(suspect)
    if av.too_big(self, suspect) then return actions.DUNNO end
    local msg = suspect:get_message_rep()
    local viruses, err = av.scan_with_retries(self, suspect, msg, function(m) return self:scan(m) end, "clamd")
    if viruses then return av.report(self, suspect, viruses) end
    if self:getboolean("clamscanfallback") then
        local viruses, cerr = self:scan_clamscan(msg)
        if viruses then
            self.logger:info("%s: scanned by the clamscan fallback", suspect.id)
            return av.report(self, suspect, viruses)
        end
        err = tostring(err) .. "; clamscan fallback: " .. tostring(cerr)
    end
    return av.problem(self, suspect, err)
end

-- A plain z-command (PING, VERSION) on its own connection.
function ClamavPlugin:command(cmd)
    local s, err = self:connect()
    if not s then return nil, err end
    local ok
    ok, err = s:send("z" .. cmd .. "\0")
    local reply
    if ok then reply, err = s:receiveuntil("\0", 4096) end
    s:close()
    return reply, err
end

function ClamavPlugin:lint()
    if not plugin.check_config(self) then return false end
    if not plugin.check_actions(self, { "virusaction", "problemaction" }) then return false end
    local _, _, where = self:peer()
    local pong, err = self:command("PING")
    if pong == nil then return self:service_problem("clamd at %s: %s", where, tostring(err)) end
    print("Got Pong: " .. pong)
    if pong ~= "PONG" then return self:service_problem("clamd at %s answered PING with '%s'", where, pong) end
    local version = self:command("VERSION")
    if version then print("clamd version: " .. version) end
    if not av.lint_eicar(self, function(msg) return self:scan(msg) end) then return false end
    if self:getboolean("clamscanfallback") then
        local viruses, cerr = self:scan_clamscan(require("fuglu_message").from_string(av.eicar_message()))
        if viruses == nil or next(viruses) == nil then
            print("ERROR: clamscan fallback did not find EICAR: " .. tostring(cerr or "clean"))
            return false
        end
        print("clamscan fallback found EICAR")
    end
    return true
end

return ClamavPlugin
