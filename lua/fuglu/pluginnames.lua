-- fuglu.pluginnames: which plugin instances a name from a rule argument means (skip, fraction).
--
--   pluginnames.parse("SAPlugin, clamav")           -> {"SAPlugin", "clamav"}
--   pluginnames.matches(instance, {"SAPlugin"})     -> true/false
--
-- A name matches a plugin by its class name (SAPlugin), its config section, its display name
-- ("Name(section)") or one of Fuglu's aliases (spamassassin -> SAPlugin); case-insensitive.

local pluginnames = {}

pluginnames.ALIASES = {
    debug = "MessageDebugger", skip = "PluginSkipper", fraction = "PluginFraction",
    archive = "ArchivePlugin", attachment = "FiletypePlugin", clamav = "ClamavPlugin",
    spamassassin = "SAPlugin", vacation = "VacationPlugin", actionoverride = "ActionOverridePlugin",
    icap = "ICAPPlugin", sssp = "SSSPPlugin", fprot = "FprotPlugin", scriptfilter = "ScriptFilter",
    dkimsign = "DKIMSignPlugin", dkimverify = "DKIMVerifyPlugin", spf = "SPFPlugin",
    rspamd = "RspamdPlugin",
}

-- A rule argument "A,B, C" -> {"A", "B", "C"} (empty entries dropped).
function pluginnames.parse(arg)
    local names = {}
    if type(arg) ~= "string" then return names end
    for raw in arg:gmatch("[^,]+") do
        local name = raw:gsub("^%s+", ""):gsub("%s+$", "")
        if name ~= "" then names[#names + 1] = name end
    end
    return names
end

-- A set of lower-cased names (aliases resolved to their class names as well).
function pluginnames.set(names)
    local set = {}
    for _, name in ipairs(names) do
        local lower = name:lower()
        set[lower] = true
        local class = pluginnames.ALIASES[lower]
        if class then set[class:lower()] = true end
    end
    return set
end

-- Whether a plugin instance is named in set (from pluginnames.set).
function pluginnames.in_set(instance, set)
    local candidates = { instance.name, instance.section, tostring(instance) }
    for _, c in ipairs(candidates) do
        if c ~= nil and set[tostring(c):lower()] then return true end
    end
    return false
end

return pluginnames
