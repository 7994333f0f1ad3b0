-- SubjectKeywordPlugin: acts on messages whose Subject contains one of a list of words.
--
--   [main]
--   plugins = subjectkeyword
--
--   [SubjectKeywordPlugin]
--   keywords = viagra, lottery win
--   action = REJECT
--   rejectmessage = subject contains "${keyword}"

local codec = require "fuglu_codec"
local plugin = require "fuglu.plugin"
local actions = require "fuglu.actions"
local template = require "fuglu.template"

local SubjectKeywordPlugin = plugin.scanner{
    name = "SubjectKeywordPlugin",
    description = "acts on messages whose Subject contains a listed word",
    options = {
        keywords = { default = "", description = "comma separated words, matched case-insensitively" },
        action = { default = "DUNNO", description = "action for a match (DUNNO only tags and adds a header)" },
        rejectmessage = { default = 'subject contains "${keyword}"', description = "reply text template" },
        headername = { default = "X-Subject-Keyword", description = "header added on a match (empty: none)" },
    },
}

-- The decoded, lower-cased subject of the message ("" if it has none).
local function subject_of(suspect)
    local raw = suspect:get_message_rep():header("Subject")[1] or ""
    return codec.rfc2047_decode(raw):lower()
end

function SubjectKeywordPlugin:examine(suspect)
    local subject = subject_of(suspect)
    for _, keyword in ipairs(self:getlist("keywords")) do
        if subject:find(keyword:lower(), 1, true) then
            self.logger:info("%s: subject matches keyword '%s'", suspect.id, keyword)
            suspect.tags["SubjectKeywordPlugin.keyword"] = keyword
            suspect.tags.spam[self.section] = true
            local header = self:get("headername")
            if header ~= "" then suspect:add_header(header, keyword) end
            local action = actions.string_to_actioncode(self:get("action"), self.config)
            local message = template.apply(self:get("rejectmessage"), suspect, { keyword = keyword })
            return action, message
        end
    end
    return actions.DUNNO
end

function SubjectKeywordPlugin:lint()
    if not plugin.check_config(self) then return false end   -- the default checks first
    if actions.string_to_actioncode(self:get("action"), self.config) == nil then
        print(string.format("[%s] action: '%s' is not an action (DUNNO, ACCEPT, DELETE, REJECT, DEFER)",
            self.section, self:get("action")))
        return false
    end
    if #self:getlist("keywords") == 0 then
        print(string.format("[%s] keywords is empty: the plugin will never match", self.section))
    end
    return true
end

return SubjectKeywordPlugin
