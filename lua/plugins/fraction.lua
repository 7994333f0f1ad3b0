-- PluginFraction (alias fraction), prepender: runs only the listed plugins for matching messages.
--
-- The arguments of every matching rule of filterfile are comma lists of plugin names (class
-- names, aliases or sections). When at least one rule matches, only those plugins stay in this
-- message's scanner list; otherwise nothing changes.
--
--   [PluginFraction]
--   filterfile = /etc/fuglu/pluginfraction.regex
--   # pluginfraction.regex:  to_domain ^lists\.example\.org$ ClamavPlugin

local plugin = require "fuglu.plugin"
local pluginnames = require "fuglu.pluginnames"
local suspectfilter = require "fuglu.suspectfilter"

local PluginFraction = plugin.prepender{
    name = "PluginFraction",
    description = "Runs only a fraction of the loaded scanners based on standard filter file",
    options = {
        filterfile = { default = "/etc/fuglu/pluginfraction.regex",
                       description = "rule file; the arguments name the plugins to keep" },
    },
}

function PluginFraction:filter()
    local path = self:get("filterfile")
    if self.sf == nil or self.sf.filename ~= path then self.sf = suspectfilter.new(path) end
    return self.sf
end

function PluginFraction:pluginlist(suspect, list)
    local args = self:filter():get_args(suspect)
    if #args == 0 then return nil end
    local names = {}
    for _, arg in ipairs(args) do
        for _, name in ipairs(pluginnames.parse(arg)) do names[#names + 1] = name end
    end
    local keep = pluginnames.set(names)
    local out = {}
    for _, p in ipairs(list) do
        if pluginnames.in_set(p, keep) then out[#out + 1] = p end
    end
    self.logger:debug("%s: running only %d of %d plugins", suspect.id, #out, #list)
    return out
end

function PluginFraction:lint()
    if not plugin.check_config(self) then return false end
    return suspectfilter.new(self:get("filterfile")):lint()
end

return PluginFraction
