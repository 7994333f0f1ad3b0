-- PluginSkipper (alias skip), prepender: removes plugins from this message's scanner list.
--
-- The arguments of every matching rule of filterfile are comma lists of plugin names (Fuglu
-- class names such as SAPlugin or KillerPlugin, aliases such as spamassassin, or sections).
--
--   [PluginSkipper]
--   filterfile = /etc/fuglu/skipplugins.regex
--   # skipplugins.regex:  @incomingport ^10099$ SAPlugin,DKIMVerifyPlugin

local plugin = require "fuglu.plugin"
local pluginnames = require "fuglu.pluginnames"
local suspectfilter = require "fuglu.suspectfilter"

local PluginSkipper = plugin.prepender{
    name = "PluginSkipper",
    description = "Skips plugins based on standard filter file",
    options = {
        filterfile = { default = "/etc/fuglu/skipplugins.regex",
                       description = "rule file; the arguments name the plugins to skip" },
    },
}

function PluginSkipper:filter()
    local path = self:get("filterfile")
    if self.sf == nil or self.sf.filename ~= path then self.sf = suspectfilter.new(path) end
    return self.sf
end

function PluginSkipper:pluginlist(suspect, list)
    local names = {}
    for _, arg in ipairs(self:filter():get_args(suspect)) do
        for _, name in ipairs(pluginnames.parse(arg)) do names[#names + 1] = name end
    end
    if #names == 0 then return nil end
    local skip = pluginnames.set(names)
    local out = {}
    for _, p in ipairs(list) do
        if pluginnames.in_set(p, skip) then
            self.logger:debug("%s: skipping plugin %s", suspect.id, tostring(p))
        else
            out[#out + 1] = p
        end
    end
    return out
end

function PluginSkipper:lint()
    if not plugin.check_config(self) then return false end
    return suspectfilter.new(self:get("filterfile")):lint()
end

return PluginSkipper
