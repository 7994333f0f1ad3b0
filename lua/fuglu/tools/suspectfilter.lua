-- fuglu.tools.suspectfilter: `fuglu_suspectfilter RULEFILE MESSAGE.eml [-D]` (build/fuglu_suspectfilter).
--
-- Loads the rule file, makes a suspect of the message (envelope sender from Return-Path, else
-- From, else sender@example.com; recipient from Delivered-To, else To, else recipient@example.com)
-- and lists every matching rule the way Fuglu's tool does. Log lines go to stderr in Python's
-- basic format ("INFO:fuglu.suspectfilter:..."), the matches to stdout. -D also logs every rule
-- and value tried. Returns the exit code: 0, or 1 for bad arguments, a missing file or a message
-- that cannot be read.

local clog = require "fuglu_log"
local message_lib = require "fuglu_message"
local addrcheck = require "fuglu.addrcheck"
local suspect_module = require "fuglu.suspect"
local suspectfilter = require "fuglu.suspectfilter"

local tool = {}

local LEVEL_NAMES = { [10] = "DEBUG", [20] = "INFO", [30] = "WARNING", [40] = "ERROR", [50] = "CRITICAL" }

local USAGE = [[
usage: fuglu_suspectfilter <filterfile> <message.eml> [-D]

Lists every rule of <filterfile> that matches <message.eml>, with the field, the matched value,
the regex and the rule's argument. -D traces every rule and value tried.
]]

local function out(s)
    io.stdout:write(s, "\n")
    io.stdout:flush()
end

-- Routes the core's logging to stderr in Python's basicConfig format.
local function install_logging(level)
    clog.enabled = function(_, l) return l >= level end
    clog.write = function(name, l, text)
        if l < level then return end
        io.stdout:flush()
        io.stderr:write(string.format("%s:%s:%s\n", LEVEL_NAMES[l] or tostring(l), name, text))
        io.stderr:flush()
    end
end

local function root_info(text)
    clog.write("root", 20, text)
end

local function readable(path)
    local st = require("fuglu_fs").stat(path)
    return st ~= nil and st.type == "file"
end

-- The address inside <...>, or the trimmed value.
local function address_of(value)
    if value == nil then return nil end
    value = value:gsub("[\r\n]+%s*", " ")
    local inner = value:match("<([^>]*)>")
    if inner then return (inner:gsub("^%s+", ""):gsub("%s+$", "")) end
    return (value:gsub("^%s+", ""):gsub("%s+$", ""))
end

local function envelope(msg, names, default)
    for _, name in ipairs(names) do
        local value = msg:header(name)[1]
        if value ~= nil then
            local address = address_of(value)
            if address ~= nil and (address == "" or addrcheck.checker("Default")(address)) then return address end
        end
    end
    return default
end

function tool.run(argv)
    local files, debug = {}, false
    for _, a in ipairs(argv) do
        if a == "-D" then debug = true else files[#files + 1] = a end
    end
    install_logging(debug and 10 or 20)
    if #files ~= 2 then
        io.stderr:write(USAGE)
        return 1
    end
    local rulefile, msgfile = files[1], files[2]
    for _, path in ipairs({ rulefile, msgfile }) do
        if not readable(path) then
            io.stderr:write("File not found: " .. path .. "\n")
            return 1
        end
    end
    local f, err = io.open(msgfile, "rb")
    if f == nil then
        io.stderr:write("Cannot read message " .. msgfile .. ": " .. tostring(err) .. "\n")
        return 1
    end
    local data = f:read("*a")
    f:close()
    if data == nil or data == "" then
        io.stderr:write("Not a message (empty file): " .. msgfile .. "\n")
        return 1
    end
    if not data:find("\r?\n\r?\n") then data = data .. "\r\n\r\ndummy body" end
    local msg, merr = message_lib.from_string(data)
    if msg == nil or #msg:headers() == 0 then
        io.stderr:write("Not a message (no header found): " .. msgfile .. (merr and (": " .. tostring(merr)) or "") .. "\n")
        return 1
    end
    local from = envelope(msg, { "Return-Path", "From" }, "sender@example.com")
    local to = envelope(msg, { "Delivered-To", "To" }, "recipient@example.com")
    if to == "" then to = "recipient@example.com" end
    local suspect = suspect_module.new{ from = from, recipients = { to }, message = msg }

    local options = {}
    if debug then
        options.trace = function(rule, value, matched)
            local shown = tostring(value)
            if #shown > 200 then shown = shown:sub(1, 200) .. "..." end
            clog.write("fuglu.suspectfilter", 10, string.format("%s:%s %s %s: %s value '%s'",
                tostring(rule.file), tostring(rule.line), rule.field, rule.pattern,
                matched and "MATCH" or "NO MATCH", shown))
        end
    end
    local sf = suspectfilter.new(rulefile, options)
    if sf.load_error then
        io.stderr:write("Cannot load " .. rulefile .. ": " .. tostring(sf.load_error) .. "\n")
        return 1
    end
    root_info(string.format("%d valid rules found", sf:count()))
    local hits = sf:get_args(suspect, true)
    root_info(string.format("%d matches found", #hits))
    for i, info in ipairs(hits) do
        out("")
        out(string.format("Match #%d:", i))
        out("Matched header/field: " .. tostring(info.field))
        out("Matched value in message: " .. tostring(info.value))
        out("Regex : " .. tostring(info.regex))
        out("Rule argument : " .. (info.arg == nil and "None" or tostring(info.arg)))
    end
    return 0
end

return tool
