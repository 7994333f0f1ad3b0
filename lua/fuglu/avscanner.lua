-- fuglu.avscanner: what Fuglu's AVScannerPlugin gives every virus scanner plugin (reference 4.1).
--
--   local av = require "fuglu.avscanner"
--   if av.too_big(self, suspect) then return actions.DUNNO end
--   return av.report(self, suspect, viruses)       -- viruses: {name = virusname} or nil
--   return av.problem(self, suspect, "clamd: timed out")
--   av.lint_eicar(self, function(msg) return self:scan(msg) end)
--
-- A plugin using it has the options maxsize, virusaction, problemaction and rejectmessage, and an
-- `enginename` field ("ClamAV"): the tags are virus[enginename], <enginename>.virus (the
-- {name = virusname} table) and, as Fuglu still sets it, <ClassName>.virus.

local actions = require "fuglu.actions"
local job = require "fuglu_job"
local message_lib = require "fuglu_message"
local template = require "fuglu.template"

local av = {}

-- The EICAR test file (68 bytes) and a MIME message carrying it as an attachment.
av.EICAR = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"

local function b64(s)
    return require("fuglu_codec").b64encode(s)
end

function av.eicar_message()
    return table.concat({
        "From: lint@fuglu.test",
        "To: lint@fuglu.test",
        "Subject: EICAR test",
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="fuglu-eicar"',
        "",
        "--fuglu-eicar",
        "Content-Type: text/plain",
        "",
        "The attachment is the EICAR anti-virus test file.",
        "--fuglu-eicar",
        'Content-Type: application/octet-stream; name="eicar.com"',
        'Content-Disposition: attachment; filename="eicar.com"',
        "Content-Transfer-Encoding: base64",
        "",
        b64(av.EICAR),
        "--fuglu-eicar--",
        "",
    }, "\r\n")
end

-- Up to `retries` attempts of scan(msg) -> viruses | nil, err, each failure logged as a warning;
-- stops early when the message was answered already. Returns viruses, or nil and the last error.
function av.scan_with_retries(p, suspect, msg, scan, service)
    local attempts = math.max(1, p:getint("retries"))
    local _, _, where = p:peer()
    local err
    for attempt = 1, attempts do
        local viruses
        viruses, err = scan(msg)
        if viruses then return viruses end
        p.logger:warning("%s: problem with %s at %s (try %d of %d): %s", suspect.id, service, where,
            attempt, attempts, tostring(err))
        if job.cancelled() then break end
    end
    return nil, err
end

-- True (and logged) when the message is larger than maxsize: the scanner skips it.
function av.too_big(p, suspect)
    local maxsize = p:getint("maxsize")
    if maxsize > 0 and suspect.size > maxsize then
        p.logger:info("%s: not scanned by %s: size %d > maxsize %d", suspect.id, p.enginename,
            suspect.size, maxsize)
        return true
    end
    return false
end

local function first_hit(viruses)
    local names = {}
    for file in pairs(viruses) do names[#names + 1] = file end
    table.sort(names)
    return names[1], viruses[names[1]]
end

-- Tags the result and returns the action: virusaction with rejectmessage for a hit, else DUNNO.
function av.report(p, suspect, viruses)
    local engine = p.enginename
    if viruses == nil or next(viruses) == nil then
        suspect.tags.virus[engine] = false
        return actions.DUNNO
    end
    suspect.tags.virus[engine] = true
    suspect.tags[engine .. ".virus"] = viruses
    suspect.tags[p.name .. ".virus"] = viruses
    local file, name = first_hit(viruses)
    suspect:debug(string.format("viruses found in message : %s", name))
    p.logger:info("%s: virus found by %s: %s (%s)", suspect.id, engine, name, file)
    local code = actions.string_to_actioncode(p:get("virusaction"), p.config)
    if code == nil then
        p.logger:error("%s: invalid virusaction '%s': using DEFAULTVIRUSACTION", suspect.id, p:get("virusaction"))
        code = actions.string_to_actioncode("DEFAULTVIRUSACTION", p.config)
    end
    local message = template.apply(p:get("rejectmessage"), suspect, { virusname = name, infectedfile = file })
    return code, message
end

-- The scan could not be done: problemaction (an invalid one is DEFER), logged as an error.
function av.problem(p, suspect, why)
    p.logger:error("%s: %s scan failed: %s", suspect.id, p.enginename, tostring(why))
    local code = actions.string_to_actioncode(p:get("problemaction"), p.config)
    if code == nil then code = actions.DEFER end
    if code == actions.DEFER then return code, "virus scan failed, try again later" end
    return code
end

-- Lint helper: scans the EICAR message with scan(msg) -> viruses | nil, err. Prints what Fuglu
-- prints; returns true when EICAR was found.
function av.lint_eicar(p, scan)
    local msg = message_lib.from_string(av.eicar_message())
    local viruses, err = scan(msg)
    if viruses == nil then
        return p:service_problem("%s: EICAR scan failed: %s", p.enginename, tostring(err))
    end
    if next(viruses) == nil then
        print("EICAR Test virus not found!")
        return false
    end
    local parts = {}
    for file, name in pairs(viruses) do parts[#parts + 1] = string.format("'%s': '%s'", file, name) end
    print(string.format("%s found virus {%s}", tostring(p), table.concat(parts, ", ")))
    return true
end

return av
