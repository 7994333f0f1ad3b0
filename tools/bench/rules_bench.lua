-- rules_bench: 500 rule-file rules over a 40 KB message; prints microseconds per message.
--
--   make all && luajit tools/bench/rules_bench.lua [iterations] [both|match|message]
--
-- The second argument runs only one of the two loops (for instruction counts under callgrind:
-- the difference between two iteration counts). FUGLU_LUADIR=DIR uses another copy of lua/.
--
-- Two numbers: "match" is get_args() on a suspect whose fields were already extracted (the rule
-- engine alone), "message" includes making a fresh suspect and extracting the body and MIME
-- fields (what a plugin pays per message).

local luadir = os.getenv("FUGLU_LUADIR") or "lua"
package.path = luadir .. "/?.lua;" .. luadir .. "/?/init.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath

require "fuglu_core"   -- preloads every C module of build/fuglu_core.so
local message_lib = require "fuglu_message"
local sys = require "fuglu_sys"
local suspect_module = require "fuglu.suspect"
local suspectfilter = require "fuglu.suspectfilter"

local iterations = math.min(tonumber(arg and arg[1]) or 200, 1000000)
local mode = arg and arg[2] or "both"
assert(mode == "both" or mode == "match" or mode == "message", "mode: both, match or message")

-- A 40 KB message: some headers and a text body of plausible words.
local words = { "invoice", "meeting", "tomorrow", "report", "quarterly", "budget", "please", "review",
    "attached", "document", "regards", "thanks", "schedule", "project", "update", "customer" }
local lines, size, n = {}, 0, 0
while size < 40 * 1024 do
    n = n + 1
    local line = {}
    for j = 1, 12 do line[j] = words[(n * 7 + j * 3) % #words + 1] end
    local text = table.concat(line, " ")
    lines[#lines + 1] = text
    size = size + #text + 2
end
local source = table.concat({
    "Received: from mail.example.org (mail.example.org [192.0.2.1])\r\n\tby mx.example.net (Postfix) with ESMTP id ABC\r\n",
    "From: Alice <alice@example.org>\r\n", "To: bob@example.net\r\n", "Subject: Quarterly report\r\n",
    "Message-ID: <bench@example.org>\r\n", "MIME-Version: 1.0\r\n", "Content-Type: text/plain; charset=utf-8\r\n",
    "\r\n", table.concat(lines, "\r\n"), "\r\n" })

-- 500 rules over several fields, none of which match (the common case), plus one that does.
local rules = {}
local fieldnames = { "body", "Subject", "From", "envelope_from", "to_domain", "X-Mailer", "mime:Content-Type" }
for i = 1, 499 do
    local field = fieldnames[i % #fieldnames + 1]
    if i % 3 == 0 then
        rules[#rules + 1] = string.format("%s /spamword%d\\s+(?:offer|deal)%d/i rule%d", field, i, i, i)
    else
        rules[#rules + 1] = string.format("%s \\bbadword%d\\b rule%d", field, i, i)
    end
end
rules[#rules + 1] = "Subject quarterly\\s+report matched"
local sf = suspectfilter.from_string(table.concat(rules, "\n"), "bench.regex")
assert(sf:count() == 500, "expected 500 rules, got " .. sf:count())

local msg = assert(message_lib.from_string(source))
local function new_suspect()
    return suspect_module.new{ from = "alice@example.org", recipients = { "bob@example.net" }, message = msg }
end

local warm = new_suspect()
assert(#sf:get_args(warm) == 1)
print(string.format("rules_bench: 500 rules, %d byte message, %d iterations", #source, iterations))
if mode ~= "message" then
    local t0 = sys.monotonic()
    for _ = 1, iterations do sf:get_args(warm) end
    local match_us = (sys.monotonic() - t0) / iterations * 1e6
    print(string.format("rules_bench: match   %.1f us/message", match_us))
end
if mode ~= "match" then
    local t0 = sys.monotonic()
    for _ = 1, iterations do sf:get_args(new_suspect()) end
    local message_us = (sys.monotonic() - t0) / iterations * 1e6
    print(string.format("rules_bench: message %.1f us/message", message_us))
end
