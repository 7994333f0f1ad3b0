-- SSSPPlugin (alias sssp): virus scanning with Sophos SAVDI over its SSSP protocol (reference
-- 6.11). Line-based, LF-terminated (CR ignored); a reply block ends with an empty line.
--
--   server: OK SSSP/1.0          we: SSSP/1.0              server: ACC ...
--   we: SSSP/1.0 QUERY           server: ACC ..., then the option lines and an empty line
--   we: OPTIONS + report:all + savists:/savigrp: lines + empty line
--                                server: ACC ..., then ... DONE OK ... and an empty line
--   we: SCANDATA <n> + the bytes server: ACC ..., then EVENT/VIRUS/... lines, DONE, empty line
--   we: BYE
--
-- "VIRUS <name> <file>" lines are the hits; "DONE OK" ends a clean or infected scan, any other
-- DONE (e.g. "DONE FAIL 0211 ...") is a failure.

local actions = require "fuglu.actions"
local av = require "fuglu.avscanner"
local plugin = require "fuglu.plugin"
local socket = require "fuglu_socket"

local SSSPPlugin = plugin.scanner{
    name = "SSSPPlugin",
    description = "This plugin scans the suspect using the sophos SSSP protocol (SAVDI)",
    options = {
        host = { default = "localhost", description = "hostname where the SSSP server runs" },
        port = { default = "4010", description = "tcp port or path to unix socket" },
        timeout = { default = "30", description = "socket timeout" },
        maxsize = { default = "22000000", description = "maximum message size, larger messages will not be scanned." },
        retries = { default = "3", description = "how often should fuglu retry the connection before giving up" },
        virusaction = { default = "DEFAULTVIRUSACTION", description = "action if infection is detected (DUNNO, REJECT, DELETE)" },
        problemaction = { default = "DEFER", description = "action if there is a problem (DUNNO, DEFER)" },
        rejectmessage = { default = "threat detected: ${virusname}", description = "reject message template if running in pre-queue mode and virusaction=REJECT" },
    },
}
SSSPPlugin.enginename = "sophos"

local SAVISTS = { "TnefAttachmentHandling", "ActiveMimeHandling", "Mime", "ZipDecompression", "DynamicDecompression" }
local SAVIGRPS = { "GrpExecutable", "GrpArchiveUnpack", "GrpSelfExtract", "GrpInternet", "GrpSuper", "GrpMisc" }


local function line(s)
    local l, err = s:receive("*l", 8192)
    if l then l = l:gsub("\r$", "") end
    return l, err
end

-- The lines up to the empty line that ends a block (at most 1000).
local function block(s)
    local lines = {}
    for _ = 1, 1000 do
        local l, err = line(s)
        if l == nil then return nil, err end
        if l == "" then return lines end
        lines[#lines + 1] = l
    end
    return nil, "SSSP reply block too long"
end

local function expect(s, prefix)
    local l, err = line(s)
    if l == nil then return nil, err end
    if l:sub(1, #prefix) ~= prefix then return nil, string.format("SSSP: expected '%s', got '%s'", prefix, l) end
    return l
end

-- One session: greeting, options, SCANDATA. Returns {file = name} or nil, err.
function SSSPPlugin:scan(msg)
    local host, port = self:peer()
    local s = socket.tcp()
    s:settimeout(math.floor(self:getfloat("timeout") * 1000))
    local ok, err = s:connect(host, port)
    if not ok then s:close() return nil, err end
    local function fail(e) s:close() return nil, e end
    local r
    r, err = expect(s, "OK SSSP/1.0")
    if not r then return fail(err) end
    ok, err = s:send("SSSP/1.0\n")
    if not ok then return fail(err) end
    r, err = expect(s, "ACC")
    if not r then return fail(err) end
    local opts = { "OPTIONS\n", "report:all\n" }
    for _, o in ipairs(SAVISTS) do opts[#opts + 1] = "savists: " .. o .. " 1\n" end
    for _, g in ipairs(SAVIGRPS) do opts[#opts + 1] = "savigrp: " .. g .. " 1\n" end
    opts[#opts + 1] = "\n"
    ok, err = s:send(table.concat(opts))
    if not ok then return fail(err) end
    r, err = expect(s, "ACC")
    if not r then return fail(err) end
    local lines
    lines, err = block(s)
    if not lines then return fail(err) end
    local done
    for _, l in ipairs(lines) do if l:match("^DONE") then done = l end end
    if done == nil or not done:match("^DONE OK") then return fail("SSSP options refused: " .. tostring(done)) end
    ok, err = s:send("SCANDATA " .. msg:size() .. "\n")
    if ok then ok, err = s:send(msg) end
    if not ok then return fail(err) end
    r, err = expect(s, "ACC")
    if not r then return fail(err) end
    lines, err = block(s)
    if not lines then return fail(err) end
    s:send("BYE\n")
    s:close()
    local viruses = {}
    done = nil
    for _, l in ipairs(lines) do
        local name, file = l:match("^VIRUS (%S+)%s*(.*)$")
        if name then viruses[file ~= "" and file or "stream"] = name end
        if l:match("^DONE") then done = l end
    end
    if done == nil then return nil, "SSSP scan reply without DONE" end
    if not done:match("^DONE OK") then return nil, "SSSP scan failed: " .. done end
    return viruses
end

function SSSPPlugin:examine(suspect)
    if av.too_big(self, suspect) then return actions.DUNNO end
    local viruses, err = av.scan_with_retries(self, suspect, suspect:get_message_rep(),
        function(m) return self:scan(m) end, "SAVDI")
    if viruses then return av.report(self, suspect, viruses) end
    return av.problem(self, suspect, err)
end

function SSSPPlugin:lint()
    if not plugin.check_config(self) then return false end
    if not plugin.check_actions(self, { "virusaction", "problemaction" }) then return false end
    return av.lint_eicar(self, function(msg) return self:scan(msg) end)
end

return SSSPPlugin
