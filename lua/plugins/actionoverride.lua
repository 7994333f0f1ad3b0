-- ActionOverridePlugin (alias actionoverride): the first matching rule decides the verdict.
--
-- The argument is "ACTION [message]": any action name (DUNNO ACCEPT DELETE DISCARD REJECT DEFER,
-- DEFAULTVIRUSACTION ...) is returned with the message; "REDIRECT addr" replaces all recipients
-- by addr and continues (DUNNO). An empty or unknown action is logged and gives DUNNO.
--
--   [ActionOverridePlugin]
--   actionrules = /etc/fuglu/actionrules.regex
--   # actionrules.regex:  envelope_from ^spammer@example\.com$ REJECT we do not want your mail

local actions = require "fuglu.actions"
local plugin = require "fuglu.plugin"
local suspectfilter = require "fuglu.suspectfilter"

local ActionOverridePlugin = plugin.scanner{
    name = "ActionOverridePlugin",
    description = "Override actions based on a Suspect Filter file",
    options = {
        actionrules = { default = "/etc/fuglu/actionrules.regex",
                        description = "Rules file: the argument is ACTION [message] or REDIRECT addr" },
    },
}

function ActionOverridePlugin:filter()
    local path = self:get("actionrules")
    if self.sf == nil or self.sf.filename ~= path then self.sf = suspectfilter.new(path) end
    return self.sf
end

function ActionOverridePlugin:examine(suspect)
    local matched, arg, info = self:filter():matches(suspect)
    if not matched then return actions.DUNNO end
    arg = arg and arg:gsub("^%s+", ""):gsub("%s+$", "") or ""
    if arg == "" then
        self.logger:error("%s: rule %s:%s has no action", suspect.id, tostring(info.file), tostring(info.line))
        return actions.DUNNO
    end
    local word, message = arg:match("^(%S+)%s*(.*)$")
    if word:upper() == "REDIRECT" then
        local target = message:match("^(%S+)")
        if target == nil then
            self.logger:error("%s: REDIRECT without an address (%s:%s)", suspect.id, tostring(info.file), tostring(info.line))
            return actions.DUNNO
        end
        self.logger:info("%s: redirecting to %s", suspect.id, target)
        suspect:set_recipients({ target })
        return actions.DUNNO
    end
    local code = actions.string_to_actioncode(word, self.config)
    if code == nil then
        self.logger:error("%s: invalid action '%s' in %s:%s", suspect.id, word, tostring(info.file), tostring(info.line))
        return actions.DUNNO
    end
    self.logger:debug("%s: rule %s:%s -> %s", suspect.id, tostring(info.file), tostring(info.line), word)
    if message == "" then message = nil end
    return code, message
end

function ActionOverridePlugin:lint()
    if not plugin.check_config(self) then return false end
    return suspectfilter.new(self:get("actionrules")):lint()
end

return ActionOverridePlugin
