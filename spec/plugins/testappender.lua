-- TestAppender: appends "<id> <DECISION>" to the file named by [TestAppender] outfile.

local plugin = require "fuglu.plugin"
local actions = require "fuglu.actions"

local TestAppender = plugin.appender{
    name = "TestAppender",
    description = "writes one line per message to a file",
    options = {
        outfile = { default = "/tmp/fuglu-testappender.log", description = "file to append to" },
    },
}

function TestAppender:process(suspect, decision)
    local f = assert(io.open(self:get("outfile"), "ab"))
    f:write(suspect.id, " ", actions.actioncode_to_string(decision), "\n")
    f:close()
end

return TestAppender
