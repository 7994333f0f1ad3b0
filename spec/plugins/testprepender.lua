-- TestPrepender: removes the scanners named in the header X-Test-Skip (comma separated; matched
-- against tostring(plugin), i.e. the class name or "Name(section)", and the section).

local plugin = require "fuglu.plugin"

local TestPrepender = plugin.prepender{
    name = "TestPrepender",
    description = "removes the plugins named in X-Test-Skip",
}

function TestPrepender:pluginlist(suspect, list)
    local header = suspect:get_message_rep():header("X-Test-Skip")[1]
    if header == nil then return nil end
    local skip = {}
    for name in header:gmatch("[^,%s]+") do skip[name] = true end
    local kept = {}
    for _, p in ipairs(list) do
        if not (skip[tostring(p)] or skip[p.section]) then kept[#kept + 1] = p end
    end
    return kept
end

return TestPrepender
