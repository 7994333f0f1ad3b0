-- KillerPlugin: deletes every message (answers 250, delivers nothing). Meant for spam traps.
--
--   [main]
--   plugins = killer

local plugin = require "fuglu.plugin"
local actions = require "fuglu.actions"

local KillerPlugin = plugin.scanner{
    name = "KillerPlugin",
    description = "delete Message",
}

function KillerPlugin:examine(suspect)
    self.logger:debug("%s: deleting the message (KillerPlugin)", suspect.id)
    return actions.DELETE
end

function KillerPlugin:lint()
    print("!!! WARNING: You have enabled the KILLER plugin - NO message will be forwarded to postfix. !!!")
    print("!!! KillerPlugin deletes EVERY message. !!!")
    return true
end

return KillerPlugin
