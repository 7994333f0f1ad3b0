-- ICAPPlugin (alias icap): virus scanning through an ICAP server's RESPMOD service (reference
-- 6.10; RFC 3507), e.g. c-icap's virus_scan, Sophos, Symantec, Kaspersky.
--
-- The message goes as the body of a made-up HTTP response to "GET http://localhost/message.eml",
-- chunked, from C. With preview > 0 the first bytes go first ("Preview: n"); the server answers
-- 204 (clean) at once or "100 Continue" for the rest. Verdicts: 204 = clean; a 200 with
-- X-Infection-Found (Threat=NAME;) or X-Violations-Found (blocks of filename / threat lines, the
-- Sophos and Symantec style) = virus; a 200 without them = clean; anything else = failure.
--
--   [ICAPPlugin]
--   host = localhost
--   port = 1344             # not a number: a unix socket path
--   timeout = 10
--   maxsize = 22000000
--   retries = 3
--   service = AVSCAN        # the ICAP service path
--   enginename = icap-generic
--   preview = 0             # bytes sent as preview (0: none)
--   virusaction = DEFAULTVIRUSACTION
--   problemaction = DEFER
--   rejectmessage = threat detected: ${virusname}

local actions = require "fuglu.actions"
local av = require "fuglu.avscanner"
local plugin = require "fuglu.plugin"
local socket = require "fuglu_socket"

local ICAPPlugin = plugin.scanner{
    name = "ICAPPlugin",
    description = "ICAP Antivirus Plugin (RESPMOD)",
    options = {
        host = { default = "localhost", description = "hostname where the ICAP server runs" },
        port = { default = "1344", description = "tcp port or path to unix socket" },
        timeout = { default = "10", description = "socket timeout" },
        maxsize = { default = "22000000", description = "maximum message size, larger messages will not be scanned." },
        retries = { default = "3", description = "how often should fuglu retry the connection before giving up" },
        virusaction = { default = "DEFAULTVIRUSACTION", description = "action if infection is detected (DUNNO, REJECT, DELETE)" },
        problemaction = { default = "DEFER", description = "action if there is a problem (DUNNO, DEFER)" },
        rejectmessage = { default = "threat detected: ${virusname}", description = "reject message template if running in pre-queue mode and virusaction=REJECT" },
        service = { default = "AVSCAN", description = "ICAP Av scan service, usually AVSCAN (sophos, symantec)" },
        enginename = { default = "icap-generic", description = "name of the virus engine behind the icap service. used to inform other plugins. can be anything like 'sophos', 'symantec', ..." },
        preview = { default = "0", description = "bytes of the message sent as an ICAP preview before the rest (0: no preview)" },
    },
}

function ICAPPlugin:init()
    self.enginename = self.config:get(self.section, "enginename", "icap-generic")
end


-- Parses an ICAP response head. Returns status code, lower-cased headers (continuation lines
-- kept, joined by "\n"), or nil, err.
function ICAPPlugin.parse_head(head)
    local status, rest = head:match("^(ICAP/%d%.%d %d%d%d[^\r\n]*)\r?\n?(.*)$")
    if status == nil then return nil, "not an ICAP reply: " .. head:sub(1, 80) end
    local code = tonumber(status:match("^ICAP/%d%.%d (%d%d%d)"))
    local headers, last = {}, nil
    for line in (rest .. "\n"):gmatch("([^\n]*)\n") do
        line = line:gsub("\r$", "")
        if line:match("^[ \t]") and last then
            headers[last] = headers[last] .. "\n" .. line:gsub("^[ \t]+", "")
        else
            local name, value = line:match("^([^:]+):%s*(.-)%s*$")
            if name then
                last = name:lower()
                headers[last] = headers[last] and (headers[last] .. "\n" .. value) or value
            end
        end
    end
    return code, headers
end

-- The viruses an ICAP reply names: {file = threat}, {} for none.
function ICAPPlugin.viruses(headers)
    local found = {}
    local infection = headers["x-infection-found"]
    if infection then
        local threat = infection:match("[Tt]hreat=([^;]+)")
        if threat then found["stream"] = threat end
    end
    local violations = headers["x-violations-found"]
    if violations and next(found) == nil then
        local lines = {}
        for l in (violations .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
        local n = tonumber(lines[1]) or 0
        for i = 0, math.min(n, 100) - 1 do
            local file, threat = lines[2 + i * 4], lines[3 + i * 4]
            if threat and threat ~= "" then
                found[(file and file ~= "" and file ~= "-") and file or ("stream" .. (i > 0 and i or ""))] = threat
            end
        end
    end
    return found
end

local function chunk_head(n) return string.format("%x\r\n", n) end

-- One RESPMOD exchange for msg; returns {file = threat} or nil, err.
function ICAPPlugin:scan(msg)
    local host, port, where = self:peer()
    local s = socket.tcp()
    s:settimeout(math.floor(self:getfloat("timeout") * 1000))
    local ok, err = s:connect(host, port)
    if not ok then s:close() return nil, err end
    local size = msg:size()
    local req = "GET http://localhost/message.eml HTTP/1.1\r\nHost: localhost\r\n\r\n"
    local res = "HTTP/1.1 200 OK\r\nContent-Type: message/rfc822\r\nContent-Length: " .. size .. "\r\n\r\n"
    local preview = math.max(0, self:getint("preview"))
    if preview > size then preview = size end
    local head = { string.format("RESPMOD icap://%s/%s ICAP/1.0\r\n", where, self:get("service")),
                   "Host: ", where, "\r\nAllow: 204\r\n" }
    if preview > 0 or self:getint("preview") > 0 then head[#head + 1] = "Preview: " .. preview .. "\r\n" end
    head[#head + 1] = string.format("Encapsulated: req-hdr=0, res-hdr=%d, res-body=%d\r\n\r\n", #req, #req + #res)
    local first = self:getint("preview") > 0 and preview or size
    ok, err = s:send(table.concat(head) .. req .. res .. (first > 0 and chunk_head(first) or ""))
    if ok and first > 0 then ok, err = s:send(msg, { offset = 0, length = first }) end
    if ok then
        local tail = first > 0 and "\r\n" or ""
        if self:getint("preview") > 0 and first == size then tail = tail .. "0; ieof\r\n\r\n" else tail = tail .. "0\r\n\r\n" end
        ok, err = s:send(tail)
    end
    local reply
    if ok then reply, err = s:receiveuntil("\r\n\r\n", 65536) end
    local code, headers
    if reply then
        code, headers = ICAPPlugin.parse_head(reply)
        if code == 100 and self:getint("preview") > 0 then
            local rest = size - first
            ok, err = s:send(chunk_head(rest))
            if ok then ok, err = s:send(msg, { offset = first }) end
            if ok then ok, err = s:send("\r\n0\r\n\r\n") end
            reply = nil
            if ok then reply, err = s:receiveuntil("\r\n\r\n", 65536) end
            if reply then code, headers = ICAPPlugin.parse_head(reply) end
        end
    end
    s:close()
    if not reply then return nil, err end
    if code == nil then return nil, headers end
    if code == 204 then return {} end
    if code == 200 then return ICAPPlugin.viruses(headers) end
    return nil, "ICAP server answered: " .. reply:match("^[^\r\n]*")
end

function ICAPPlugin:examine(suspect)
    if av.too_big(self, suspect) then return actions.DUNNO end
    local viruses, err = av.scan_with_retries(self, suspect, suspect:get_message_rep(),
        function(m) return self:scan(m) end, "the ICAP server")
    if viruses then return av.report(self, suspect, viruses) end
    return av.problem(self, suspect, err)
end

function ICAPPlugin:lint()
    if not plugin.check_config(self) then return false end
    if not plugin.check_actions(self, { "virusaction", "problemaction" }) then return false end
    return av.lint_eicar(self, function(msg) return self:scan(msg) end)
end

return ICAPPlugin
