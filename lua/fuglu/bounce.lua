-- fuglu.bounce: notifications to a message's sender (Fuglu's Bounce, reference 2.7).
--
--   local bounce = require "fuglu.bounce"
--   local ok, err = bounce.send_template_file(config, suspect, recipient, path, {blockinfo = "..."})
--   local ok, err = bounce.send_template_string(config, suspect, recipient, text, values)
--
-- The template (header lines, an empty line, the body; fuglu.template placeholders) is filled in,
-- the headers it lacks are added (To, From: <MAILER-DAEMON@hostname>, Auto-Submitted:
-- auto-generated, Date, Message-ID, MIME-Version and a UTF-8 Content-Type), and the result is
-- sent with MAIL FROM:<> to [main] outgoinghost:outgoingport (127.0.0.1 when outgoinghost is
-- ${injecthost}), the same downstream the scanned mail goes to.
--
-- Nothing is sent, and nil plus the reason is returned (logged at INFO, WARNING for
-- disablebounces), when the suspect has the tag nobounce, when the recipient is empty (a bounce
-- to the null sender would loop), or when [main] disablebounces is on. A downstream that refuses
-- gives nil and its answer (logged at ERROR). Every line is logged under fuglu.bouncer with the
-- suspect id. Returns true on success.

local job = require "fuglu_job"
local sys = require "fuglu_sys"
local log = require "fuglu.log"
local template = require "fuglu.template"

local bounce = {}

local logger = log.logger("fuglu.bouncer")

-- Replaceable for tests: function(t) -> ok, code, text (fuglu_job.reinject without a job).
bounce.transport = function(t) return job.reinject(t) end

local function crlf(text)
    return (text:gsub("\r\n", "\n"):gsub("\r", "\n"):gsub("\n", "\r\n"))
end

local function has_header(headers, name)
    local want = name:lower()
    for _, h in ipairs(headers) do
        if h:lower() == want then return true end
    end
    return false
end

-- Splits "headers\n\nbody" into the header names present, the header text and the body.
local function split(text)
    local head, body = text:match("^(.-)\r\n\r\n(.*)$")
    if head == nil then
        -- no empty line: all headers if every line looks like one, else all body
        if text:match("^[%w%-]+:") then head, body = text, "" else head, body = "", text end
    end
    head = head:gsub("\r\n$", "")
    local names = {}
    for line in (head .. "\r\n"):gmatch("(.-)\r\n") do
        local name = line:match("^([^%s:]+):")
        if name then names[#names + 1] = name end
    end
    return names, head, body
end

local function message_id(suspect)
    local rand = string.format("%08x", math.random(0, 0x7fffffff))
    return string.format("<%s.%s.%s@%s>", os.time(), rand, tostring(suspect and suspect.id or "bounce"),
        sys.hostname())
end

-- The complete bounce message (CRLF line ends) for a filled-in template.
function bounce.build(text, recipient, suspect)
    local names, head, body = split(crlf(text))
    local add = {}
    local function want(name, value)
        if not has_header(names, name) then add[#add + 1] = name .. ": " .. value end
    end
    want("To", "<" .. recipient .. ">")
    want("From", "<MAILER-DAEMON@" .. sys.hostname() .. ">")
    want("Auto-Submitted", "auto-generated")
    want("Date", os.date("!%a, %d %b %Y %H:%M:%S +0000"))
    want("Message-ID", message_id(suspect))
    want("MIME-Version", "1.0")
    if not has_header(names, "Content-Type") then
        add[#add + 1] = "Content-Type: text/plain; charset=utf-8"
        if not has_header(names, "Content-Transfer-Encoding") then
            add[#add + 1] = "Content-Transfer-Encoding: 8bit"
        end
    end
    local lines = {}
    if head ~= "" then lines[#lines + 1] = head end
    for _, l in ipairs(add) do lines[#lines + 1] = l end
    local out = table.concat(lines, "\r\n") .. "\r\n\r\n" .. body
    if out:sub(-2) ~= "\r\n" then out = out .. "\r\n" end
    return out
end

local function downstream(config)
    local host = config:get("main", "outgoinghost", "127.0.0.1")
    if host == nil or host == "" or host == "${injecthost}" then host = "127.0.0.1" end
    local helo = config:get("main", "outgoinghelo", "")
    if helo == nil or helo == "" then helo = sys.hostname() end
    return host, tonumber(config:get("main", "outgoingport", "10026")), helo,
        tonumber(config:get("main", "reinject_timeout", "60")) or 60
end

local function skipped(config, suspect, recipient)
    local id = suspect and suspect.id or "-"
    if suspect and suspect.tags and suspect.tags.nobounce then
        logger:info("%s: not bouncing to %s: tag nobounce", id, tostring(recipient))
        return "nobounce tag"
    end
    if recipient == nil or recipient == "" or recipient == "<>" then
        logger:info("%s: not bouncing: the sender is empty", id)
        return "empty sender"
    end
    if config:getboolean("main", "disablebounces", "0") then
        logger:warning("%s: bounces are disabled ([main] disablebounces): not bouncing to %s", id, recipient)
        return "disablebounces"
    end
    return nil
end

function bounce.send_template_string(config, suspect, recipient, text, values)
    local why = skipped(config, suspect, recipient)
    if why then return nil, why end
    local id = suspect and suspect.id or "-"
    local filled = template.apply(text, suspect, values)
    local source = bounce.build(filled, recipient, suspect)
    local host, port, helo, timeout = downstream(config)
    local ok, code, answer = bounce.transport{
        host = host, port = port, helo = helo, timeout = timeout,
        from = "", rcpts = { recipient }, prefix = "", source = source,
    }
    if not ok then
        local err = string.format("%s:%s answered %s %s", host, tostring(port), tostring(code), tostring(answer or ""))
        logger:error("%s: bounce to %s failed: %s", id, recipient, err)
        return nil, err
    end
    logger:info("%s: bounce sent to %s: %s", id, recipient, tostring(answer or ""))
    return true
end

function bounce.send_template_file(config, suspect, recipient, path, values)
    local f, err = io.open(path, "rb")
    if f == nil then
        logger:error("%s: cannot read the bounce template: %s", suspect and suspect.id or "-", tostring(err))
        return nil, "cannot read the bounce template: " .. tostring(err)
    end
    local text = f:read("*a")
    f:close()
    return bounce.send_template_string(config, suspect, recipient, text, values)
end

return bounce
