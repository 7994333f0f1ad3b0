-- FiletypePlugin (alias attachment): the attachment blocker, Fuglu's FiletypePlugin.
--
-- Every non-multipart MIME part is an attachment: the body text parts too, and parts hidden in a
-- multipart's epilogue. For each one, in this order:
--   1. its file name (RFC 2047/2231 decoded, non-ASCII removed; "unnamed.<ext>" without one) against
--      the *-filenames rules;
--   2. its declared Content-Type against the *-filetypes rules;
--   3. the libmagic MIME type of its decoded bytes against the *-filetypes rules;
--   4. with checkarchivenames / checkarchivecontent, when it is an archive: the member names against
--      the *-archivenames rules, the members' libmagic types against the *-archivefiletypes rules
--      (nested archives followed to archiveextractlevel).
-- Each check tries the rule sets user (the recipient's address) -> domain -> default; the first set
-- that has a matching rule decides, and in a set the first matching rule wins. allow = this check
-- passes, deny = blocked (bounce + blockaction), delete = silent DELETE.
--
-- Rule files live in rulesdir: <scope>-filenames.conf, <scope>-filetypes.conf,
-- <scope>-archivenames.conf, <scope>-archivefiletypes.conf with scope "default", a recipient domain
-- or a recipient address. Lines: `ACTION REGEX DESCRIPTION` (regex searched case-insensitively,
-- PCRE2), "#" comments. The directory and its files are looked at again at most every
-- RULES_CHECK seconds; an edit takes effect without a reload. A bad line is logged with FILE:LINE
-- and skipped (--lint reports it as an error).
--
-- A message with several recipients is checked with the rule sets of each distinct recipient
-- (address, domain); the first block wins. Libmagic and libarchive work in C (fuglu_filetype):
-- the part bytes never become Lua strings.

local actions = require "fuglu.actions"
local plugin = require "fuglu.plugin"
local regex = require "fuglu.regex"
local log = require "fuglu.log"
local fs = require "fuglu_fs"
local sys = require "fuglu_sys"

local ft_ok, ft = pcall(require, "fuglu_filetype")
if not ft_ok then ft = nil end

local FiletypePlugin = plugin.scanner{
    name = "FiletypePlugin",
    description = "This plugin checks message attachments. You can configure what filetypes or filenames are allowed to pass through fuglu. If an attachment is not allowed, the message is deleted and the sender receives a bounce error message. The plugin uses libmagic to identify attachments, so even if a smart sender renames his executable to .txt, fuglu will detect it.",
    options = {
        template_blockedfile = { default = "/etc/fuglu/templates/blockedfile.tmpl",
                                 description = "Mail template for the bounce to inform sender about blocked attachment" },
        sendbounce = { default = "1", description = "inform the sender about blocked attachments.\nIf a previous plugin tagged the message as spam or infected, no bounce will be sent to prevent backscatter" },
        rulesdir = { default = "/etc/fuglu/rules", description = "directory that contains attachment rules" },
        blockaction = { default = "DELETE", description = "what should the plugin do when a blocked attachment is detected\nREJECT : reject the message (recommended in pre-queue mode)\nDELETE : discard messages\nDUNNO  : mark as blocked but continue anyway (eg. if you have a later quarantine plugin)" },
        dbconnectstring = { default = "", description = "sqlalchemy connectstring to load rules from a database and use files only as fallback. requires SQL extension to be enabled (not supported yet: must stay empty)" },
        query = { default = "SELECT action,regex,description FROM attachmentrules WHERE scope=:scope AND checktype=:checktype ORDER BY prio",
                  description = "sql query to load rules from a db. #:scope will be replaced by the recipient address first, then by the recipient domain\n:check will be replaced 'filename','contenttype','archive-filename' or 'archive-contenttype'" },
        checkarchivenames = { default = "0", description = "enable scanning of filenames within archives (zip,rar). This does not actually extract the files, it just looks at the filenames found in the archive." },
        checkarchivecontent = { default = "0", description = "extract compressed archives(zip,rar) and check file content type with libmagics\nnote that the files will be extracted into memory - tune archivecontentmaxsize  accordingly.\nfuglu does not extract archives within the archive(recursion)" },
        archivecontentmaxsize = { default = "5000000", description = "only extract and examine files up to this amount of (uncompressed) bytes" },
        archiveextractlevel = { default = "1", description = "recursive extraction level for archives. Undefined or negative value means extract until it's not an archive anymore" },
        enabledarchivetypes = { default = "", description = "comma separated list of archive extensions. do only process archives of given types." },
    },
}

FiletypePlugin.RULES_CHECK = 3          -- seconds between looks at rulesdir and its files

local KIND_SET = { filenames = true, filetypes = true, archivenames = true, archivefiletypes = true }
local ACTION_SET = { allow = true, deny = true, delete = true }
local EXTENSIONS = { "zip", "z", "tar", "tar.gz", "tgz", "gz", "tar.bz2", "tbz", "tbz2", "bz2",
                     "tar.xz", "txz", "xz", "rar", "7z" }
local EXT_TYPE = { zip = "zip", z = "z", tar = "tar", ["tar.gz"] = "gz", tgz = "gz", gz = "gz",
                   ["tar.bz2"] = "bz2", tbz = "bz2", tbz2 = "bz2", bz2 = "bz2", ["tar.xz"] = "xz",
                   txz = "xz", xz = "xz", rar = "rar", ["7z"] = "7z" }

local rules_logger = log.logger("fuglu.plugin.FiletypePlugin.rules")

-- ---- rule files ----------------------------------------------------------------------------

-- The rules of one file's text: array of {action=, regex=, re=, description=, file=, line=}, and
-- an array of "FILE:LINE: problem" strings.
function FiletypePlugin.parse_rules(text, path)
    local rules, errors = {}, {}
    local n = 0
    for line in (text .. "\n"):gmatch("([^\n]*)\n") do
        n = n + 1
        line = line:gsub("\r$", ""):match("^%s*(.-)%s*$")
        if line ~= "" and line:sub(1, 1) ~= "#" then
            local action, pattern, description = line:match("^(%S+)%s+(%S+)%s+(.+)$")
            if not action then
                errors[#errors + 1] = string.format("%s:%d: invalid rule line (expected ACTION REGEX DESCRIPTION): %s",
                    path, n, line)
            elseif not ACTION_SET[action:lower()] then
                errors[#errors + 1] = string.format("%s:%d: invalid action '%s' (allow, deny or delete)", path, n, action)
            else
                local re, err = regex.compile(pattern, "i")
                if not re then
                    errors[#errors + 1] = string.format("%s:%d: bad regular expression '%s': %s", path, n, pattern, err)
                else
                    rules[#rules + 1] = { action = action:lower(), regex = pattern, re = re,
                                          description = description, file = path, line = n }
                end
            end
        end
    end
    return rules, errors
end

local function read_file(path)
    local f, err = io.open(path, "rb")
    if not f then return nil, err end
    local data = f:read("*a")
    f:close()
    return data
end

local function stamp_of(st)
    if not st then return "-" end
    return string.format("%.9f/%.9f/%d/%d", st.mtime or 0, st.ctime or 0, st.size or 0, st.ino or 0)
end

-- Loads every rule file of dir: {sets = {[scope] = {[kind] = rules}}, errors = {...}, stamps = {}}.
function FiletypePlugin.load_rules(dir)
    local loaded = { sets = {}, errors = {}, files = {} }
    local st, serr = fs.stat(dir)
    loaded.dirstamp = stamp_of(st)
    if not st or st.type ~= "directory" then
        loaded.errors[#loaded.errors + 1] = string.format("rulesdir %s: %s", dir, serr or "not a directory")
        loaded.missing = true
        return loaded
    end
    local names, lerr = fs.listdir(dir)
    if not names then
        loaded.errors[#loaded.errors + 1] = string.format("rulesdir %s: %s", dir, tostring(lerr))
        return loaded
    end
    for _, name in ipairs(names) do
        local scope, kind = name:match("^(.+)%-(%a+)%.conf$")
        if scope and KIND_SET[kind] then
            local path = dir .. "/" .. name
            local fst = fs.stat(path)
            if fst and fst.type == "file" then
                loaded.files[path] = stamp_of(fst)
                local text, rerr = read_file(path)
                if not text then
                    loaded.errors[#loaded.errors + 1] = string.format("%s: %s", path, tostring(rerr))
                else
                    local rules, errors = FiletypePlugin.parse_rules(text, path)
                    for _, e in ipairs(errors) do loaded.errors[#loaded.errors + 1] = e end
                    scope = scope:lower()
                    loaded.sets[scope] = loaded.sets[scope] or {}
                    loaded.sets[scope][kind] = rules
                end
            end
        end
    end
    return loaded
end

local function changed(loaded, dir)
    if stamp_of(fs.stat(dir)) ~= loaded.dirstamp then return true end
    for path, stamp in pairs(loaded.files) do
        if stamp_of(fs.stat(path)) ~= stamp then return true end
    end
    return false
end

-- This worker's rules of dir, re-read when the directory or one of its files changed (looked at
-- at most every RULES_CHECK seconds). Problems are logged once per load.
local rules_cache = {}

function FiletypePlugin.rules(dir)
    local now = sys.monotonic()
    local entry = rules_cache[dir]
    if entry and now - entry.checked < FiletypePlugin.RULES_CHECK then return entry.loaded end
    if entry and not changed(entry.loaded, dir) then
        entry.checked = now
        return entry.loaded
    end
    local loaded = FiletypePlugin.load_rules(dir)
    for _, e in ipairs(loaded.errors) do rules_logger:error("%s", e) end
    if entry then rules_logger:info("rules in %s reloaded", dir) end
    rules_cache[dir] = { loaded = loaded, checked = now }
    return loaded
end

function FiletypePlugin.flush_rules_cache() rules_cache = {} end

-- ---- names ---------------------------------------------------------------------------------

local function asciionly(s)
    return (tostring(s or ""):gsub("[\128-\255]", ""))
end

local BUILTIN_EXT = {
    ["text/plain"] = "txt", ["text/html"] = "html", ["text/css"] = "css", ["text/csv"] = "csv",
    ["text/xml"] = "xml", ["application/xml"] = "xml", ["text/calendar"] = "ics",
    ["text/x-vcard"] = "vcf", ["text/vcard"] = "vcf", ["text/rtf"] = "rtf", ["application/rtf"] = "rtf",
    ["text/enriched"] = nil, ["image/jpeg"] = "jpg", ["image/png"] = "png", ["image/gif"] = "gif",
    ["image/bmp"] = "bmp", ["image/tiff"] = "tiff", ["image/svg+xml"] = "svg",
    ["application/pdf"] = "pdf", ["application/zip"] = "zip", ["application/json"] = "json",
    ["application/javascript"] = "js", ["application/msword"] = "doc", ["message/rfc822"] = "eml",
    ["application/x-tar"] = "tar", ["application/gzip"] = "gz", ["application/x-gzip"] = "gz",
    ["application/x-7z-compressed"] = "7z", ["application/vnd.rar"] = "rar", ["application/x-rar"] = "rar",
    ["application/x-msdownload"] = "exe", ["application/x-msdos-program"] = "exe",
    ["application/pkcs7-signature"] = "p7s", ["application/x-pkcs7-signature"] = "p7s",
    ["audio/mpeg"] = "mp3", ["video/mp4"] = "mp4",
}
local NO_EXT = { ["application/octet-stream"] = true }

local system_types            -- from /etc/mime.types, read once per worker

local function system_ext(content_type)
    if system_types == nil then
        system_types = {}
        local text = read_file("/etc/mime.types")
        if text then
            for line in text:gmatch("[^\n]+") do
                local ctype, exts = line:match("^([%w%.%+%-]+/[%w%.%+%-]+)%s+(%S.*)$")
                if ctype and not system_types[ctype:lower()] then
                    system_types[ctype:lower()] = exts:match("^(%S+)")
                end
            end
        end
    end
    return system_types[content_type]
end

-- The name Fuglu gives a part without a file name: "unnamed.<ext>" from the content type.
function FiletypePlugin.unnamed(content_type)
    local ctype = tostring(content_type or ""):lower()
    if NO_EXT[ctype] then return "unnamed" end
    local ext = BUILTIN_EXT[ctype] or system_ext(ctype)
    if ext then return "unnamed." .. ext end
    return "unnamed"
end

-- ---- matching ------------------------------------------------------------------------------

-- Fuglu's matchRules over one rule set: "allow", "deny", "delete" (with the rule) or nil.
local function match_set(rules, obj)
    if rules == nil then return nil end
    for _, rule in ipairs(rules) do
        local hit, err = rule.re:search(obj)
        if hit then return rule.action, rule end
        if hit == nil and err then
            rules_logger:warning("%s:%d: regex '%s' gave up: %s", rule.file, rule.line, rule.regex, tostring(err))
        end
    end
    return nil
end

-- One check through the sets (user, domain, default): the first decision, or nil (DUNNO).
-- Returns a verdict {action=, ...} for deny and delete.
function FiletypePlugin:check(sets, kind, obj, attname, suspect, what)
    if obj == nil then
        self.logger:warning("%s: message has unknown name or content-type attachment %s", suspect.id, asciionly(attname))
        return nil
    end
    local asciirep = asciionly(obj)
    attname = asciionly(attname)
    local displayname = attname
    if asciirep == attname then displayname = "" end
    for _, set in ipairs(sets) do
        local action, rule = match_set(set[kind], asciirep)
        if action then
            self.logger:debug("%s: rulematch %s: attachment=%s rule=%s (%s:%d) description=%s action=%s",
                suspect.id, what, asciirep, rule.regex, rule.file, rule.line, rule.description, action)
            suspect:debug(string.format("%s Rulematch: Attachment=%s Rule=%s Description=%s Action=%s",
                suspect.id, asciirep, rule.regex, rule.description, action))
            if action == "allow" then return nil end
            local blockinfo = (string.format("%s %s: %s", displayname, asciirep, rule.description)):match("^%s*(.-)%s*$")
            return { action = action, blockinfo = blockinfo, displayname = displayname, asciirep = asciirep,
                     attname = attname, rule = rule }
        end
    end
    return nil
end

-- The rule sets for one recipient: user, domain, default (missing ones left out).
local function sets_for(loaded, address)
    address = tostring(address or ""):lower()
    local domain = address:match("@([^@]*)$") or ""
    local sets, key = {}, {}
    if address ~= "" and loaded.sets[address] then sets[#sets + 1] = loaded.sets[address]; key[#key + 1] = "u:" .. address end
    if domain ~= "" and loaded.sets[domain] then sets[#sets + 1] = loaded.sets[domain]; key[#key + 1] = "d:" .. domain end
    if loaded.sets.default then sets[#sets + 1] = loaded.sets.default end
    return sets, table.concat(key, ",")
end

-- The attachments of a message: {index=, name=, content_type=, epilogue=}
local function attachments_of(msg)
    local list = {}
    for _, part in ipairs(msg:mime()) do
        if not part.is_multipart and not part.is_message then
            list[#list + 1] = {
                index = part.index,
                name = part.filename or FiletypePlugin.unnamed(part.content_type),
                content_type = part.content_type or "text/plain",
                epilogue = part.epilogue,
            }
        end
    end
    return list
end

function FiletypePlugin:enabled_types()
    local list = {}
    for _, item in ipairs(self:getlist("enabledarchivetypes")) do list[#list + 1] = item:lower() end
    return list
end

-- The magic type of an attachment (cached on it), or nil.
function FiletypePlugin:magic_of(msg, att, suspect)
    if att.magic == nil then
        att.magic = false
        if ft then
            local mime, err = ft.part_magic(msg, att.index)
            if mime then
                att.magic = mime
            elseif err then
                self.logger:warning("%s: libmagic: %s", suspect.id, tostring(err))
            end
        end
    end
    return att.magic or nil
end

-- The archive scan of an attachment (cached on it), or false when it is no archive to open.
function FiletypePlugin:archive_of(msg, att, suspect, opts)
    if att.archive ~= nil then return att.archive end
    att.archive = false
    if not ft then return false end
    local atype, how = ft.detect(self:magic_of(msg, att, suspect), att.name, opts.enabled)
    if not atype then return false end
    local result, err = ft.scan_part(msg, att.index, {
        name = att.name, type = atype, content = opts.content, level = opts.level,
        maxsize = opts.maxsize, enabled = opts.enabled,
    })
    if not result then
        if err then self.logger:warning("%s: archive %s: %s", suspect.id, asciionly(att.name), tostring(err)) end
        return false
    end
    self.logger:debug("%s: %s is a %s archive (by %s): %d members, %d bytes read", suspect.id,
        asciionly(att.name), atype, how, #result.entries, result.read or 0)
    for _, e in ipairs(result.errors) do
        self.logger:warning("%s: error while scanning archive %s: %s", suspect.id, asciionly(att.name), asciionly(e))
    end
    if result.truncated then
        self.logger:warning("%s: archive %s: scan stopped (%s limit), later members not checked", suspect.id,
            asciionly(att.name), result.truncated)
    end
    att.archive = result
    return result
end

-- All checks of one message for one recipient's rule sets: a verdict or nil.
function FiletypePlugin:walk(suspect, msg, atts, sets, opts)
    for _, att in ipairs(atts) do
        local v = self:check(sets, "filenames", att.name, att.name, suspect, "name")
        if v then return v end
        v = self:check(sets, "filetypes", att.content_type, att.name, suspect, "content type")
        if v then return v end
        local magic = self:magic_of(msg, att, suspect)
        if magic then
            v = self:check(sets, "filetypes", magic, att.name, suspect, "magic type")
            if v then return v end
        end
        if opts.names or opts.content then
            local archive = self:archive_of(msg, att, suspect, opts)
            if archive then
                if opts.names then
                    for _, e in ipairs(archive.entries) do
                        v = self:check(sets, "archivenames", e.name, e.name, suspect, "archive member name")
                        if v then return v end
                    end
                end
                if opts.content then
                    for _, e in ipairs(archive.entries) do
                        if e.oversize then
                            self.logger:debug("%s: %s in %s not extracted: larger than archivecontentmaxsize",
                                suspect.id, asciionly(e.name), asciionly(att.name))
                        elseif e.magic and not e.archive then
                            v = self:check(sets, "archivefiletypes", e.magic, e.name, suspect, "archive member type")
                            if v then return v end
                        end
                    end
                end
            end
        end
    end
    return nil
end

function FiletypePlugin:send_bounce(suspect, blockinfo)
    if not self:getboolean("sendbounce") then return end
    if suspect:is_spam() or suspect:is_virus() then
        self.logger:info("%s backscatter prevention: not sending attachment block bounce to %s - the message is tagged spam or virus",
            suspect.id, suspect.from_address)
        return
    end
    if (suspect.from_address or "") == "" then
        self.logger:info("%s: not sending attachment block bounce: empty envelope sender", suspect.id)
        return
    end
    self.logger:info("%s Sending attachment block bounce to %s", suspect.id, suspect.from_address)
    local bounce = require "fuglu.bounce"   -- looked up per bounce: specs replace it
    local called, sent, err = pcall(bounce.send_template_file, self.config, suspect, suspect.from_address,
        self:get("template_blockedfile"), { blockinfo = blockinfo })
    if not called then
        self.logger:error("%s: attachment block bounce failed: %s", suspect.id, tostring(sent))
    elseif not sent then
        self.logger:debug("%s: attachment block bounce not sent: %s", suspect.id, tostring(err))
    end
end

function FiletypePlugin:examine(suspect)
    if self:get("dbconnectstring") ~= "" then
        self.logger:debug("%s: dbconnectstring is set but SQL rules are not supported yet: using the rule files",
            suspect.id)
    end
    local loaded = FiletypePlugin.rules(self:get("rulesdir"))
    local maxsize = self:getint("archivecontentmaxsize")
    local opts = {
        names = self:getboolean("checkarchivenames"),
        content = self:getboolean("checkarchivecontent"),
        maxsize = maxsize,
        enabled = self:enabled_types(),
    }
    opts.level = opts.content and self:getint("archiveextractlevel") or 1
    local msg = suspect:get_message_rep()
    local atts = attachments_of(msg)
    local seen = {}
    local recipients = suspect.recipients or { suspect.to_address }
    if #recipients == 0 then recipients = { "" } end
    local verdict
    for _, rcpt in ipairs(recipients) do
        local sets, key = sets_for(loaded, rcpt)
        if not seen[key] then
            seen[key] = true
            verdict = self:walk(suspect, msg, atts, sets, opts)
            if verdict then break end
        end
    end
    if not verdict then return actions.DUNNO end
    if verdict.action == "delete" then
        self.logger:info("%s contains blocked attachment %s %s -- SILENT DELETE! --", suspect.id,
            verdict.displayname, verdict.asciirep)
        return actions.DELETE
    end
    self.logger:info("%s contains blocked attachment %s %s", suspect.id, verdict.displayname, verdict.asciirep)
    suspect.tags.blocked = suspect.tags.blocked or {}
    suspect.tags.blocked.FiletypePlugin = true
    suspect.tags["FiletypePlugin.errormessage"] = verdict.blockinfo
    self:send_bounce(suspect, verdict.blockinfo)
    local code = actions.string_to_actioncode(self:get("blockaction"), self.config)
    if code == nil then
        self.logger:error("%s: invalid blockaction '%s', using DELETE", suspect.id, self:get("blockaction"))
        code = actions.DELETE
    end
    return code, verdict.blockinfo
end

function FiletypePlugin:lint()
    local ok = plugin.check_config(self)
    if not ok then return false end
    if actions.string_to_actioncode(self:get("blockaction"), self.config) == nil then
        print(string.format("ERROR: [%s] blockaction: '%s' is not an action (DUNNO, ACCEPT, DELETE, REJECT, DEFER)",
            self.section, self:get("blockaction")))
        ok = false
    end
    for _, opt in ipairs({ "archivecontentmaxsize", "archiveextractlevel" }) do
        local good, err = pcall(self.getint, self, opt)
        if not good then print("ERROR: " .. tostring(err)); ok = false end
    end
    if self:get("dbconnectstring") ~= "" then
        print(string.format("ERROR: [%s] dbconnectstring is set, but SQL attachment rules are not supported yet: remove it (only the rule files in rulesdir are used)",
            self.section))
        ok = false
    end
    if not ft then
        print("ERROR: the C module fuglu_filetype (libmagic, libarchive) is not available")
        return false
    end
    local v = ft.versions()
    if v.magic == true then
        print("libmagic " .. tostring(v.libmagic) .. ": file types by content are checked")
    else
        print("ERROR: libmagic: " .. tostring(v.magic) .. " (file type detection by content is disabled)")
        ok = false
    end
    local available = {}
    for _, t in ipairs(ft.archive_types()) do available[t] = true end
    local exts, active = {}, {}
    local enabled = {}
    for _, e in ipairs(self:enabled_types()) do
        if not EXT_TYPE[e] then
            print(string.format("ERROR: [%s] enabledarchivetypes: unknown archive type '%s' (known: %s)", self.section, e,
                table.concat(EXTENSIONS, ", ")))
            ok = false
        end
        enabled[e] = true
    end
    for _, e in ipairs(EXTENSIONS) do
        if available[EXT_TYPE[e]] then
            exts[#exts + 1] = e
            if next(enabled) == nil or enabled[e] then active[#active + 1] = e end
        end
    end
    print("Archive scan, available file extensions: " .. table.concat(exts, ", ") .. " (" .. tostring(v.libarchive) .. ")")
    print("Archive scan, active file extensions: " .. table.concat(active, ", "))
    local dir = self:get("rulesdir")
    local loaded = FiletypePlugin.load_rules(dir)
    if loaded.missing then
        print(string.format("ERROR: [%s] rulesdir %s does not exist or is not a directory", self.section, dir))
        ok = false
    else
        for _, e in ipairs(loaded.errors) do
            print("ERROR: " .. e)
            ok = false
        end
        if loaded.sets.default == nil then
            print(string.format("WARNING: no default-*.conf rule files in %s", dir))
        end
    end
    if self:getboolean("sendbounce") then
        local st = fs.stat(self:get("template_blockedfile"))
        if not st or st.type ~= "file" then
            print(string.format("WARNING: template_blockedfile %s not found: bounces cannot be sent",
                self:get("template_blockedfile")))
        end
    end
    return ok
end

return FiletypePlugin
