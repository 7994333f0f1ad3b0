-- fuglu.trash: copies of deleted messages ([main] trashdir, trashlog).
--
-- On DELETE the current source goes to <trashdir>/<id>-<n> (n counts up until the name is free);
-- with trashlog=1 the line "YYYY-MM-DD HH:MM:SS <from> <to> <plugin> <file>" is appended to
-- <trashdir>/00-fuglutrash.log.

local fs = require "fuglu_fs"

local trash = {}

local function exists(path)
    local f = io.open(path, "rb")
    if f then f:close() return true end
    return false
end

-- A file name in dir that does not exist yet.
local function free_name(dir, id)
    for n = 1, 10000 do
        local path = string.format("%s/%s-%04d", dir, id, n)
        if not exists(path) then return path end
    end
    error("no free trash file name for " .. id .. " in " .. dir)
end

-- Writes the trash copy and the log line. Returns the file name.
function trash.store(config, suspect, plugin)
    local dir = config:get("main", "trashdir"):gsub("/+$", "")
    fs.mkdir(dir, tonumber("700", 8))   -- an existing dir is fine; the open below reports errors
    local path = free_name(dir, suspect.id)
    local f, err = io.open(path, "wb")
    if f == nil then error(err) end
    f:write(suspect:get_source())
    f:close()
    if config:getboolean("main", "trashlog") then
        local logf = io.open(dir .. "/00-fuglutrash.log", "ab")
        if logf then
            logf:write(string.format("%s %s %s %s %s\n", os.date("%Y-%m-%d %H:%M:%S"),
                suspect.from_address, suspect.to_address, tostring(plugin or "?"), path))
            logf:close()
        end
    end
    return path
end

return trash
