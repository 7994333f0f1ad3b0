-- SAPlugin (alias spamassassin): asks spamd whether the message is spam (reference 6.7).
--
-- spamd's protocol is SPAMC/1.2: "<COMMAND> SPAMC/1.2", Content-length, User (peruserconfig),
-- an empty line, the message; the end of the request is a shutdown of our sending side. The reply
-- is "SPAMD/1.x 0 EX_OK", header lines (read by name: Content-length, Spam), an empty line, the
-- body.
--
--   forwardoriginal = 0 (default): PROCESS. spamd's message replaces the suspect's source, so the
--       X-Spam-* headers (and any rewriting SpamAssassin does) go downstream. Spam or not comes
--       from the spamheader (X-Spam-Status: "Yes, score=7.1 ...").
--   forwardoriginal = 1: REPORT. The message stays as it is; the verdict comes from spamd's
--       "Spam: True ; 7.1 / 5.0" line and the report is kept in the tag SAPlugin.report.
--
-- Messages over maxsize: with strip_oversize=1 a copy holding only the text parts (no
-- attachments) cut to maxsize is scanned and only the X-Spam-* headers are taken over; with 0
-- the message is not scanned and gets the header X-Fuglu-SA-SKIP. The tag SAPlugin.skip (set by
-- an earlier plugin) skips the scan; SAPlugin.tempheader (a string or a list of header lines) is
-- put in front of the message spamd sees, and nowhere else.
--
-- Tags: spam['SpamAssassin'], highspam['SpamAssassin'], SAPlugin.spamscore (number),
-- SAPlugin.report, SAPlugin.skipreason.

local actions = require "fuglu.actions"
local job = require "fuglu_job"
local plugin = require "fuglu.plugin"
local socket = require "fuglu_socket"
local template = require "fuglu.template"

local SAPlugin = plugin.scanner{
    name = "SAPlugin",
    description = "This plugin passes suspects to a spamassassin daemon.",
    options = {
        host = { default = "localhost", description = "hostname where spamd runs" },
        port = { default = "783", description = "tcp port number or path to spamd.sock for unix domain sockets" },
        timeout = { default = "30", description = "how long to wait for responses from SPAMD" },
        maxsize = { default = "256000", description = "maximum size in bytes. larger messages will be skipped (or stripped, see below)" },
        strip_oversize = { default = "1", description = "enable scanning of messages larger than maxsize. all attachments will be stripped and only headers, plaintext and html part will be scanned. If message is still oversize it will be truncated." },
        retries = { default = "3", description = "how often should fuglu retry the connection before giving up" },
        scanoriginal = { default = "1", description = "should we scan the original message as retreived from postfix or scan the current state in fuglu (which might have been altered by previous plugins)" },
        forwardoriginal = { default = "0", description = "forward the original message or replace the content as returned by spamassassin; if this is set to True/1/Yes, no spamassassin headers will be visible in the final message." },
        spamheader = { default = "X-Spam-Status", description = "what header does SA set to indicate the spam status" },
        spamheader_prepend = { default = "X-Spam-", description = "tells fuglu what spamassassin prepends to its headers. Set this according to your spamassassin config especially if you forwardoriginal=0 and strip_oversize=1" },
        peruserconfig = { default = "1", description = "enable user_prefs in SA. This hands the recipient address over the spamd connection which allows SA to search for configuration overrides" },
        highspamlevel = { default = "15", description = "spamscore threshold to mark a message as high spam" },
        highspamaction = { default = "DEFAULTHIGHSPAMACTION", description = "what should we do with high spam (spam score above highspamlevel)" },
        lowspamaction = { default = "DEFAULTLOWSPAMACTION", description = "what should we do with low spam (eg. detected as spam, but score not over highspamlevel)" },
        problemaction = { default = "DEFER", description = "action if there is a problem (DUNNO, DEFER)" },
        rejectmessage = { default = "message identified as spam", description = "reject message template if running in pre-queue mode" },
        check_sql_blacklist = { default = "0", description = "consult spamassassins(or any other) sql blacklist for messages that are too big for spam checks (needs the SQL support, not built yet)" },
        sql_blacklist_dbconnectstring = { default = "mysql:///localhost/spamassassin", description = "sqlalchemy db connect string" },
        sql_blacklist_sql = { default = "SELECT value FROM userpref WHERE prefid='blacklist_from' AND username in ('$GLOBAL',concat('%',${to_domain}),${to_address})", description = "SQL query to get the blacklist entries for a suspect" },
    },
}

local ENGINE = "SpamAssassin"

-- As every service plugin's, but logs name spamd by its host alone (the operations page's
-- "Contacting spamd localhost").
function SAPlugin:peer()
    local host, port, where = plugin.peer(self)
    return host, port, port and host or where
end

local function skip_header(self)
    return self.config:get("main", "prependaddedheaders") .. "SA-SKIP"
end

-- Splits a reply into its status line, a table of lower-cased header names -> values, and the body.
function SAPlugin.parse_response(data)
    local status, rest = data:match("^([^\r\n]*)\r?\n(.*)$")
    if status == nil then return nil, "short reply from spamd: " .. data:sub(1, 80) end
    local words = {}
    for w in status:gmatch("%S+") do words[#words + 1] = w end
    if #words ~= 3 or not words[1]:match("^SPAMD/%d") or words[3] ~= "EX_OK" then
        return nil, "spamd answered: " .. status
    end
    local headers = {}
    while true do
        local line, after = rest:match("^([^\r\n]*)\r?\n(.*)$")
        if line == nil then line, after = rest, "" end
        rest = after
        if line == "" then break end
        local name, value = line:match("^([^:]+):%s*(.-)%s*$")
        if name then headers[name:lower()] = value end
        if rest == "" then break end
    end
    return { status = status, headers = headers, body = rest }
end

-- "True ; 7.1 / 5.0" -> true, 7.1, 5.0
function SAPlugin.parse_spam_line(value)
    local flag, score, required = tostring(value or ""):match("^%s*(%a+)%s*;%s*([-%d.]+)%s*/%s*([-%d.]+)")
    if flag == nil then return nil end
    local f = flag:lower()
    return f == "true" or f == "yes", tonumber(score), tonumber(required)
end

-- The value of a header in a header block (unfolded), or nil.
local function header_value(head, name)
    local lname = name:lower()
    local pos = 1
    while pos <= #head do
        local stop = head:find("\n", pos, true) or #head
        while stop < #head and head:sub(stop + 1, stop + 1):match("[ \t]") do
            stop = head:find("\n", stop + 1, true) or #head
        end
        local field = head:sub(pos, stop)
        local n, v = field:match("^([^:%s]+)%s*:%s*(.-)%s*$")
        if n and n:lower() == lname then return (v:gsub("\r?\n[ \t]+", " ")) end
        pos = stop + 1
    end
    return nil
end

-- The header block of a message text (without the empty line).
local function header_block(text)
    local stop = text:find("\r?\n\r?\n")
    if stop == nil then return text end
    return text:sub(1, stop - 1)
end

-- The header fields of head whose names start with prefix, as {name, unfolded value}.
local function prefixed_headers(head, prefix)
    local out = {}
    local lprefix = prefix:lower()
    local pos = 1
    while pos <= #head do
        local stop = head:find("\n", pos, true) or #head
        while stop < #head and head:sub(stop + 1, stop + 1):match("[ \t]") do
            stop = head:find("\n", stop + 1, true) or #head
        end
        local field = head:sub(pos, stop)
        local n, v = field:match("^([^:%s]+)%s*:%s*(.-)%s*$")
        if n and n:lower():sub(1, #lprefix) == lprefix then
            out[#out + 1] = { name = n, value = (v:gsub("\r?\n[ \t]+", " ")) }
        end
        pos = stop + 1
    end
    return out
end

-- A copy of msg with only its text parts that are not attachments, at most maxsize - 1 bytes.
function SAPlugin.strip(msg, maxsize, boundary)
    local head = msg:header_block()
    local kept = {}
    local pos = 1
    while pos <= #head do
        local stop = head:find("\n", pos, true) or #head
        while stop < #head and head:sub(stop + 1, stop + 1):match("[ \t]") do
            stop = head:find("\n", stop + 1, true) or #head
        end
        local field = head:sub(pos, stop)
        local n = (field:match("^([^:%s]+)%s*:") or ""):lower()
        if n ~= "content-type" and n ~= "content-transfer-encoding" and n ~= "mime-version" then
            kept[#kept + 1] = (field:gsub("\r?\n$", ""))
        end
        pos = stop + 1
    end
    local out = { table.concat(kept, "\r\n"), "\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"",
                  boundary, "\"\r\n\r\n" }
    for _, part in ipairs(msg:mime()) do
        if not part.is_multipart and not part.is_message and part.filename == nil
            and tostring(part.content_type):match("^text/") then
            local text = msg:part_text(part.index) or ""
            out[#out + 1] = "--" .. boundary .. "\r\nContent-Type: " .. part.content_type ..
                "; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            out[#out + 1] = text
            out[#out + 1] = "\r\n"
        end
    end
    out[#out + 1] = "--" .. boundary .. "--\r\n"
    local s = table.concat(out)
    if #s > maxsize - 1 then s = s:sub(1, maxsize - 1) end
    return s
end

local function tempheader_text(suspect)
    local t = suspect.tags["SAPlugin.tempheader"]
    if t == nil then return "" end
    if type(t) == "table" then t = table.concat(t, "\r\n") end
    t = tostring(t):gsub("\r?\n$", "")
    if t == "" then return "" end
    return t .. "\r\n"
end

-- One exchange with spamd. content: a message object or a string. Returns the parsed reply or
-- nil, err.
function SAPlugin:exchange(command, content, user, prefix)
    local host, port = self:peer()
    local s = socket.tcp()
    s:settimeout(math.floor(self:getfloat("timeout") * 1000))
    local ok, err = s:connect(host, port)
    if not ok then s:close() return nil, err end
    prefix = prefix or ""
    local size = #prefix + (type(content) == "string" and #content or content:size())
    local req = { command, " SPAMC/1.2\r\nContent-length: ", tostring(size), "\r\n" }
    if user then req[#req + 1] = "User: " .. user .. "\r\n" end
    req[#req + 1] = "\r\n"
    req[#req + 1] = prefix
    ok, err = s:send(table.concat(req))
    if ok then ok, err = s:send(content) end
    if ok then ok, err = s:shutdown("send") end
    local data
    if ok then data, err = s:receive("*a", 64 * 1024 * 1024) end
    s:close()
    if not data then return nil, err end
    self.logger:debug("Sent %d bytes to spamd", size)
    return SAPlugin.parse_response(data)
end

-- Scans content with retries; returns the reply or nil, err.
function SAPlugin:scan(suspect, command, content, prefix)
    local user = self:getboolean("peruserconfig") and suspect.to_address or nil
    if user == "" then user = nil end
    local attempts = math.max(1, self:getint("retries"))
    local _, _, where = self:peer()
    local err
    for attempt = 1, attempts do
        self.logger:debug("Contacting spamd %s (Try %d of %d)", where, attempt, attempts)
        local reply
        reply, err = self:exchange(command, content, user, prefix)
        if reply then
            self.logger:debug("%s", reply.status)
            return reply
        end
        self.logger:warning("%s: problem with spamd at %s (try %d of %d): %s", suspect.id, where, attempt,
            attempts, tostring(err))
        if job.cancelled() then break end
    end
    return nil, err
end

function SAPlugin:problem(suspect, why)
    self.logger:error("%s: SpamAssassin scan failed: %s", suspect.id, tostring(why))
    suspect:add_header(skip_header(self), "SA scan failed")
    local code = actions.string_to_actioncode(self:get("problemaction"), self.config) or actions.DEFER
    if code == actions.DEFER then return code, "spam scan failed, try again later" end
    return code
end

function SAPlugin:examine(suspect)
    suspect.tags.spam[ENGINE] = false
    suspect.tags.highspam[ENGINE] = false
    if suspect.tags["SAPlugin.skip"] == true then
        suspect.tags["SAPlugin.skipreason"] = "requested by previous plugin"
        self.logger:debug("%s: skipped: requested by previous plugin", suspect.id)
        return actions.DUNNO
    end
    local maxsize = self:getint("maxsize")
    local msg = self:getboolean("scanoriginal") and suspect.message or suspect:get_message_rep()
    local oversize = msg:size() > maxsize
    local strip = self:getboolean("strip_oversize")
    if oversize and not strip then
        suspect:add_header(skip_header(self), string.format("Too big for spamchecks. %d > %d", msg:size(), maxsize))
        suspect.tags["SAPlugin.skipreason"] = "size skip"
        self.logger:info("%s: size skip: %d > maxsize %d", suspect.id, msg:size(), maxsize)
        if self:getboolean("check_sql_blacklist") then
            self.logger:warning("%s: check_sql_blacklist needs the SQL support, which is not built yet", suspect.id)
        end
        return actions.DUNNO
    end
    local content = msg
    if oversize then
        content = SAPlugin.strip(msg, maxsize, "fuglu-sa-strip-" .. suspect.id)
        self.logger:info("%s: stripped to %d bytes of text for the spam scan (size %d > maxsize %d)", suspect.id,
            #content, msg:size(), maxsize)
    end
    local forward_original = self:getboolean("forwardoriginal")
    local reply, err = self:scan(suspect, forward_original and "REPORT" or "PROCESS", content,
        tempheader_text(suspect))
    if reply == nil then return self:problem(suspect, err) end

    local is_spam, score, report
    if forward_original then
        is_spam, score = SAPlugin.parse_spam_line(reply.headers.spam)
        if is_spam == nil then return self:problem(suspect, "spamd's REPORT reply has no Spam line") end
        report = reply.body
    else
        local newmsg = reply.body
        local declared = tonumber(reply.headers["content-length"])
        if declared and declared ~= #newmsg then
            return self:problem(suspect, string.format("spamd sent %d message bytes, Content-length said %d", #newmsg, declared))
        end
        self.logger:debug("Got %d message bytes back from spamd", #newmsg)
        local head = header_block(newmsg)
        local status = header_value(head, self:get("spamheader"))
        if status == nil then
            return self:problem(suspect, string.format("spamd's message has no %s header", self:get("spamheader")))
        end
        is_spam = status:match("^%s*[Yy][Ee][Ss]") ~= nil
        score = tonumber(status:match("[Ss][Cc][Oo][Rr][Ee]=([-%d.]+)"))
        report = status
        if oversize then
            -- only SpamAssassin's headers go onto the original: the stripped copy is not delivered
            for _, h in ipairs(prefixed_headers(head, self:get("spamheader_prepend"))) do
                suspect:add_header(h.name, h.value)
            end
        else
            suspect:set_source(newmsg)
        end
    end
    score = score or 0
    suspect.tags["SAPlugin.spamscore"] = score
    suspect.tags["SAPlugin.report"] = report
    self.logger:debug("Spamscore: %s", tostring(score))
    local code, message = actions.DUNNO, nil
    if is_spam then
        self.logger:debug("Message is spam")
        suspect:debug("Message is spam")
        suspect.tags.spam[ENGINE] = true
        code = self:action_option("lowspamaction", suspect)
        message = template.apply(self:get("rejectmessage"), suspect, { spamscore = score })
    else
        self.logger:debug("Message is not spam")
        suspect:debug("Message is not spam")
    end
    if score >= self:getfloat("highspamlevel") then
        suspect.tags.highspam[ENGINE] = true
        code = self:action_option("highspamaction", suspect)
        message = template.apply(self:get("rejectmessage"), suspect, { spamscore = score })
    end
    if code == actions.DUNNO then message = nil end
    return code, message
end

local GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

function SAPlugin:lint()
    if not plugin.check_config(self) then return false end
    if not plugin.check_actions(self, { "highspamaction", "lowspamaction", "problemaction" }) then return false end
    if self:getboolean("check_sql_blacklist") then
        print("WARNING: check_sql_blacklist=1 needs the SQL support, which is not built yet: the blacklist is not checked")
    end
    local _, _, where = self:peer()
    local host, port = self:peer()
    local s = socket.tcp()
    s:settimeout(math.floor(self:getfloat("timeout") * 1000))
    local ok, err = s:connect(host, port)
    local line
    if ok then ok, err = s:send("PING SPAMC/1.2\r\n\r\n") end
    if ok then line, err = s:receive("*l") end
    s:close()
    if line == nil then return self:service_problem("spamd at %s: %s", where, tostring(err)) end
    local words = {}
    for w in line:gmatch("%S+") do words[#words + 1] = w end
    if #words ~= 3 or words[3] ~= "PONG" then
        return self:service_problem("spamd at %s answered PING with '%s'", where, line)
    end
    print("Got: " .. line)
    local gtube = "From: lint@fuglu.test\r\nTo: lint@fuglu.test\r\nSubject: GTUBE\r\n\r\n" .. GTUBE .. "\r\n"
    local reply
    reply, err = self:exchange("SYMBOLS", gtube, nil, "")
    if reply == nil then return self:service_problem("spamd at %s: SYMBOLS: %s", where, tostring(err)) end
    local found = false
    for sym in reply.body:gmatch("[^,%s]+") do
        if sym == "GTUBE" then found = true end
    end
    if not found then
        print("ERROR: the GTUBE test message was not detected by spamd (symbols: " .. reply.body:sub(1, 200) .. ")")
        return false
    end
    print("GTUBE has been detected correctly")
    return true
end

return SAPlugin
