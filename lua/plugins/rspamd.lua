-- RspamdPlugin (alias rspamd): asks rspamd about the message over HTTP (/checkv2). No Fuglu
-- release has it; it follows SAPlugin's shape so the two are interchangeable in a chain.
--
-- The message is POSTed from C (no copy into Lua) with the envelope as rspamd's request headers:
-- From, one Rcpt per recipient, IP, Helo and Hostname (from XFORWARD or the Received headers),
-- Queue-Id (the suspect id). rspamd's JSON answer gives the score, the symbols and its action,
-- which is mapped to a Fuglu action by the action_* options:
--
--   rspamd action      option                  default                spam  highspam
--   reject             action_reject           DEFAULTHIGHSPAMACTION  yes   yes
--   rewrite subject    action_rewrite_subject  DEFAULTLOWSPAMACTION   yes   no    (+ the Subject rspamd gives, rewritesubject=1)
--   add header         action_add_header       DEFAULTLOWSPAMACTION   yes   no
--   greylist           action_greylist         DUNNO                  no    no
--   soft reject        action_soft_reject      DEFER                  no    no
--   no action          action_no_action        DUNNO                  no    no
--
-- A score at or over highspamlevel (when set) also counts as high spam. The header spamheader
-- ("Yes, score=7.50 required=15.00 action=add header") and, if symbolsheader is set, the symbol
-- list go downstream. Tags: spam['Rspamd'], highspam['Rspamd'], Rspamd.score, Rspamd.action,
-- Rspamd.symbols ({NAME = score}), Rspamd.skipreason.

local actions = require "fuglu.actions"
local cjson = require "cjson.safe"
local http = require "fuglu.http"
local job = require "fuglu_job"
local plugin = require "fuglu.plugin"
local template = require "fuglu.template"

local RspamdPlugin = plugin.scanner{
    name = "RspamdPlugin",
    description = "This plugin passes suspects to rspamd (HTTP /checkv2)",
    options = {
        url = { default = "http://127.0.0.1:11333/checkv2", description = "rspamd's normal worker: http(s)://host:port/checkv2" },
        password = { default = "", description = "sent as the Password header, if rspamd's worker wants one" },
        timeout = { default = "30", description = "seconds for the whole request (the message's scan_timeout still wins)" },
        retries = { default = "2", description = "attempts before problemaction" },
        maxsize = { default = "20000000", description = "messages over this size are not scanned (header X-Fuglu-Rspamd-SKIP)" },
        scanoriginal = { default = "1", description = "scan the message as received (1) or as changed by earlier plugins (0)" },
        highspamlevel = { default = "", description = "a score at or over it counts as high spam whatever rspamd's action (empty: only action reject)" },
        action_reject = { default = "DEFAULTHIGHSPAMACTION", description = "Fuglu action for rspamd's 'reject'" },
        action_rewrite_subject = { default = "DEFAULTLOWSPAMACTION", description = "Fuglu action for rspamd's 'rewrite subject'" },
        action_add_header = { default = "DEFAULTLOWSPAMACTION", description = "Fuglu action for rspamd's 'add header'" },
        action_greylist = { default = "DUNNO", description = "Fuglu action for rspamd's 'greylist'" },
        action_soft_reject = { default = "DEFER", description = "Fuglu action for rspamd's 'soft reject'" },
        action_no_action = { default = "DUNNO", description = "Fuglu action for rspamd's 'no action'" },
        rewritesubject = { default = "1", description = "on 'rewrite subject', set the Subject rspamd proposes" },
        spamheader = { default = "X-Rspamd-Status", description = "header with the verdict and score (empty: none)" },
        symbolsheader = { default = "", description = "header with the symbols and their scores, e.g. X-Rspamd-Symbols (empty: none)" },
        problemaction = { default = "DEFER", description = "action if rspamd cannot be asked (DUNNO, DEFER)" },
        rejectmessage = { default = "message identified as spam", description = "reply text for a REJECT/DEFER (template: ${spamscore}, ${rspamd_action}, ${rspamd_message})" },
    },
}

local ENGINE = "Rspamd"

local SPAM_ACTIONS = { ["reject"] = true, ["rewrite subject"] = true, ["add header"] = true }

local OPTION_OF = {
    ["reject"] = "action_reject", ["rewrite subject"] = "action_rewrite_subject",
    ["add header"] = "action_add_header", ["greylist"] = "action_greylist",
    ["soft reject"] = "action_soft_reject", ["no action"] = "action_no_action",
}

-- The request headers rspamd reads the envelope from.
function RspamdPlugin:request_headers(suspect)
    local h = {
        ["From"] = suspect.from_address ~= "" and suspect.from_address or "<>",
        ["Rcpt"] = suspect.recipients,
        ["Queue-Id"] = suspect.id,
    }
    local info = suspect:get_client_info(self.config)
    if info then
        if info.ip and info.ip ~= "" then h["IP"] = info.ip end
        if info.helo and info.helo ~= "" then h["Helo"] = info.helo end
        if info.rdns and info.rdns ~= "" and info.rdns ~= "unknown" then h["Hostname"] = info.rdns end
    end
    local password = self:get("password")
    if password ~= "" then h["Password"] = password end
    return h
end

-- The decoded /checkv2 answer, or nil, err.
function RspamdPlugin.parse_result(body)
    local r, err = cjson.decode(body)
    if type(r) ~= "table" then return nil, "rspamd sent no JSON: " .. tostring(err) end
    if r.error then return nil, "rspamd: " .. tostring(r.error) end
    if type(r.action) ~= "string" or tonumber(r.score) == nil then
        return nil, "rspamd's answer has no action or score"
    end
    local symbols = {}
    if type(r.symbols) == "table" then
        for name, s in pairs(r.symbols) do
            symbols[name] = type(s) == "table" and tonumber(s.score) or 0
        end
    end
    return {
        action = r.action, score = tonumber(r.score), required = tonumber(r.required_score),
        symbols = symbols, subject = type(r.subject) == "string" and r.subject or nil,
        message = type(r.messages) == "table" and type(r.messages.smtp_message) == "string" and r.messages.smtp_message or nil,
    }
end

function RspamdPlugin:ask(suspect, msg)
    local attempts = math.max(1, self:getint("retries"))
    local url = self:get("url")
    local err
    for attempt = 1, attempts do
        local res
        res, err = http.request{ method = "POST", url = url, body = msg, headers = self:request_headers(suspect),
                                 timeout = math.floor(self:getfloat("timeout") * 1000) }
        if res and res.status == 200 then
            local result
            result, err = RspamdPlugin.parse_result(res.body)
            if result then return result end
        elseif res then
            err = string.format("rspamd at %s answered HTTP %d: %s", url, res.status, res.body:sub(1, 200))
        end
        self.logger:warning("%s: problem with rspamd (try %d of %d): %s", suspect.id, attempt, attempts, tostring(err))
        if job.cancelled() then break end
    end
    return nil, err
end

local function symbol_list(symbols)
    local names = {}
    for name in pairs(symbols) do names[#names + 1] = name end
    table.sort(names)
    local out = {}
    for i, name in ipairs(names) do out[i] = string.format("%s(%.2f)", name, symbols[name]) end
    return table.concat(out, ", ")
end

function RspamdPlugin:examine(suspect)
    suspect.tags.spam[ENGINE] = false
    suspect.tags.highspam[ENGINE] = false
    local prefix = self.config:get("main", "prependaddedheaders")
    local msg = self:getboolean("scanoriginal") and suspect.message or suspect:get_message_rep()
    local maxsize = self:getint("maxsize")
    if maxsize > 0 and msg:size() > maxsize then
        suspect:add_header(prefix .. "Rspamd-SKIP", string.format("Too big for spamchecks. %d > %d", msg:size(), maxsize))
        suspect.tags["Rspamd.skipreason"] = "size skip"
        self.logger:info("%s: size skip: %d > maxsize %d", suspect.id, msg:size(), maxsize)
        return actions.DUNNO
    end
    local r, err = self:ask(suspect, msg)
    if r == nil then
        self.logger:error("%s: rspamd scan failed: %s", suspect.id, tostring(err))
        suspect:add_header(prefix .. "Rspamd-SKIP", "rspamd scan failed")
        local code = actions.string_to_actioncode(self:get("problemaction"), self.config) or actions.DEFER
        if code == actions.DEFER then return code, "spam scan failed, try again later" end
        return code
    end
    suspect.tags["Rspamd.score"] = r.score
    suspect.tags["Rspamd.action"] = r.action
    suspect.tags["Rspamd.symbols"] = r.symbols
    local spam = SPAM_ACTIONS[r.action] == true
    local level = tonumber(self:get("highspamlevel"))
    local high = r.action == "reject" or (level ~= nil and r.score >= level)
    suspect.tags.spam[ENGINE] = spam or high
    suspect.tags.highspam[ENGINE] = high
    self.logger:debug("%s: rspamd score %.2f action '%s'", suspect.id, r.score, r.action)
    local spamheader = self:get("spamheader")
    if spamheader ~= "" then
        suspect:add_header(spamheader, string.format("%s, score=%.2f required=%.2f action=%s",
            (spam or high) and "Yes" or "No", r.score, r.required or 0, r.action))
    end
    local symbolsheader = self:get("symbolsheader")
    if symbolsheader ~= "" then suspect:add_header(symbolsheader, symbol_list(r.symbols)) end
    if r.action == "rewrite subject" and r.subject and self:getboolean("rewritesubject") then
        suspect:set_subject(r.subject)
    end
    local option = OPTION_OF[r.action]
    if option == nil then
        self.logger:warning("%s: unknown rspamd action '%s': DUNNO", suspect.id, r.action)
        return actions.DUNNO
    end
    local code = self:action_option(option, suspect)
    if high and r.action ~= "reject" and code == actions.DUNNO then
        code = actions.string_to_actioncode("DEFAULTHIGHSPAMACTION", self.config) or actions.DUNNO
    end
    if code == actions.DUNNO then return code end
    return code, template.apply(self:get("rejectmessage"), suspect,
        { spamscore = string.format("%.2f", r.score), rspamd_action = r.action, rspamd_message = r.message or "" })
end

local GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

function RspamdPlugin:lint()
    if not plugin.check_config(self) then return false end
    local action_options = {}
    for _, name in pairs(OPTION_OF) do action_options[#action_options + 1] = name end
    table.sort(action_options)
    if not plugin.check_actions(self, action_options) then return false end
    if self:get("highspamlevel") ~= "" and tonumber(self:get("highspamlevel")) == nil then
        print(string.format("ERROR: [%s] highspamlevel: '%s' is not a number", self.section, self:get("highspamlevel")))
        return false
    end
    local url = self:get("url")
    local res, err = http.request{ method = "POST", url = url,
        body = "From: lint@fuglu.test\r\nTo: lint@fuglu.test\r\nSubject: GTUBE\r\nMessage-ID: <lint@fuglu.test>\r\n\r\n" .. GTUBE .. "\r\n",
        headers = { From = "lint@fuglu.test", Rcpt = "lint@fuglu.test", IP = "127.0.0.1" },
        timeout = math.floor(self:getfloat("timeout") * 1000) }
    if res == nil then return self:service_problem("rspamd at %s: %s", url, tostring(err)) end
    if res.status ~= 200 then return self:service_problem("rspamd at %s answered HTTP %d", url, res.status) end
    local r, perr = RspamdPlugin.parse_result(res.body)
    if r == nil then return self:service_problem("rspamd at %s: %s", url, tostring(perr)) end
    if r.symbols.GTUBE == nil then
        print("ERROR: rspamd did not detect the GTUBE test message (action " .. r.action .. ")")
        return false
    end
    print(string.format("rspamd: GTUBE detected (score %.2f, action %s)", r.score, r.action))
    return true
end

return RspamdPlugin
