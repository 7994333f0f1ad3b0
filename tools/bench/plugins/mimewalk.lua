-- MimeWalkPlugin: a benchmark-only scanner that does the work of Fuglu's attachment plugin
-- (FiletypePlugin) with a fixed built-in rule set, so scenario 2 of `make bench` measures an
-- attachment-style MIME walk before the real attachment plugin exists.
--
-- For every leaf part of the message it checks the declared content type and the file name
-- against deny lists and, for parts that carry a file name or a non-text type, decodes the
-- payload and sniffs its real type from the leading bytes (what Fuglu does with libmagic). A
-- denied part gives DELETE (Fuglu's default for blocked attachments); otherwise DUNNO. Tags
-- `MimeWalk.parts` and `MimeWalk.bytes` record how much was inspected.
--
--   [main]
--   plugindir = tools/bench/plugins
--   plugins = mimewalk

local plugin = require "fuglu.plugin"
local actions = require "fuglu.actions"

local MimeWalkPlugin = plugin.scanner{
    name = "MimeWalkPlugin",
    description = "benchmark: attachment-style MIME walk (content types, file names, magic)",
}

-- Content types Fuglu's default rules block (lower case; exact match).
local DENIED_TYPES = {
    ["application/x-msdownload"] = true,
    ["application/x-msdos-program"] = true,
    ["application/x-dosexec"] = true,
    ["application/x-executable"] = true,
    ["application/hta"] = true,
    ["application/x-ms-shortcut"] = true,
}

-- File name endings blocked (Lua patterns over the lower-cased name).
local DENIED_NAMES = {
    "%.exe$", "%.com$", "%.pif$", "%.scr$", "%.bat$", "%.cmd$", "%.vbs$", "%.vbe$", "%.js$",
    "%.jse$", "%.wsf$", "%.wsh$", "%.cpl$", "%.hta$", "%.lnk$", "%.msi$", "%.reg$",
    "%.[a-z0-9]+%.exe$", "%.docm$", "%.xlsm$",
}

-- Leading bytes -> detected type (a tiny libmagic).
local MAGIC = {
    { "MZ", "application/x-dosexec" },
    { "\127ELF", "application/x-executable" },
    { "PK\3\4", "application/zip" },
    { "%PDF-", "application/pdf" },
    { "\137PNG\r\n\26\n", "image/png" },
    { "\255\216\255", "image/jpeg" },
    { "GIF8", "image/gif" },
    { "Rar!", "application/x-rar" },
}

local function sniff(payload)
    for _, entry in ipairs(MAGIC) do
        local prefix = entry[1]
        if payload:sub(1, #prefix) == prefix then return entry[2] end
    end
    return "application/octet-stream"
end

local function denied_name(name)
    local lower = name:lower()
    for _, pattern in ipairs(DENIED_NAMES) do
        if lower:find(pattern) then return pattern end
    end
    return nil
end

function MimeWalkPlugin:examine(suspect)
    local msg = suspect:get_message_rep()
    local parts = msg:mime()
    local inspected, decoded_bytes = 0, 0
    for _, part in ipairs(parts) do
        if not part.is_multipart and not part.is_message then
            inspected = inspected + 1
            if DENIED_TYPES[part.content_type] then
                return actions.DELETE, "content type " .. part.content_type .. " is not allowed"
            end
            local filename = part.filename
            if filename and denied_name(filename) then
                return actions.DELETE, "file name " .. filename .. " is not allowed"
            end
            if filename or part.content_type:sub(1, 5) ~= "text/" then
                local payload = msg:part_payload(part.index)
                if payload then
                    decoded_bytes = decoded_bytes + #payload
                    local detected = sniff(payload)
                    if DENIED_TYPES[detected] then
                        return actions.DELETE, "detected type " .. detected .. " is not allowed"
                    end
                end
            end
        end
    end
    suspect.tags["MimeWalk.parts"] = inspected
    suspect.tags["MimeWalk.bytes"] = decoded_bytes
    return actions.DUNNO
end

return MimeWalkPlugin
