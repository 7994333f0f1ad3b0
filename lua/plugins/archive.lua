-- ArchivePlugin (alias archive): stores a copy of messages chosen by a rule file.
--
-- The first matching rule of archiverules decides: argument "no" = do not archive, anything
-- else (or none) = archive. Nothing matches = not archived. The copy goes to
-- archivedir/<subdirtemplate>/<filenametemplate> (templates as in fuglu.template; a "/" in the
-- file name becomes "_"). The target directory is created (mode 0755) step by step and its real
-- path must lie inside the real path of archivedir (so neither ".." nor a symlink can leave it);
-- otherwise the file goes to archivedir itself. Messages from the debug port (tag debug) are
-- never archived. Always returns DUNNO.
--
--   [ArchivePlugin]
--   archiverules = /etc/fuglu/archive.regex
--   archivedir = /var/archive
--   subdirtemplate = ${to_domain}
--   filenametemplate = ${id}.eml
--   storeoriginal = 1      # the message as received; 0 = as modified by earlier plugins
--   chown =                # user name or uid of the file
--   chgrp =                # group name or gid
--   chmod =                # octal mode, e.g. 640

local actions = require "fuglu.actions"
local plugin = require "fuglu.plugin"
local suspectfilter = require "fuglu.suspectfilter"
local template = require "fuglu.template"

local fs = require "fuglu_fs"

local ArchivePlugin = plugin.scanner{
    name = "ArchivePlugin",
    description = "This plugins stores a copy of the message if it matches certain criteria (Suspect Filter)",
    options = {
        archiverules = { default = "/etc/fuglu/archive.regex", description = "Archiving SuspectFilter File" },
        archivedir = { default = "/tmp", description = "storage for archived messages" },
        subdirtemplate = { default = "${to_domain}", description = "subdirectory within archivedir" },
        filenametemplate = { default = "${id}.eml", description = "filename template for the archived messages" },
        storeoriginal = { default = "1", description = "if true/1/yes: store original message; false/0/no: store the message as modified by earlier plugins" },
        chown = { default = "", description = "change owner of saved messages (username or numeric id)" },
        chgrp = { default = "", description = "change group of saved messages (groupname or numeric id)" },
        chmod = { default = "", description = "set file permissions of saved messages (octal, e.g. 640)" },
    },
}

function ArchivePlugin:filter()
    local path = self:get("archiverules")
    if self.sf == nil or self.sf.filename ~= path then self.sf = suspectfilter.new(path) end
    return self.sf
end

-- Creates dir (and missing parents) with mode 0755.
local function mkdirs(dir)
    local st = fs.stat(dir)
    if st then
        if st.type == "directory" then return true end
        return nil, dir .. " exists and is not a directory"
    end
    local parent = dir:match("^(.*)/[^/]+/*$")
    if parent and parent ~= "" then
        local ok, err = mkdirs(parent)
        if not ok then return nil, err end
    end
    local ok, err, errno = fs.mkdir(dir, tonumber("755", 8))
    if not ok and errno ~= 17 then return nil, err end    -- 17: EEXIST (a concurrent worker)
    return true
end

local function inside(path, root)
    return path == root or path:sub(1, #root + 1) == root .. "/" or root == "/"
end

-- The real target directory for subdir (created), or nil and why it was refused.
function ArchivePlugin.target_dir(archivedir, subdir)
    local ok, err = mkdirs(archivedir)
    if not ok then return nil, err end
    local root, rerr = fs.realpath(archivedir)
    if root == nil then return nil, rerr end
    local current = root
    for part in tostring(subdir):gmatch("[^/]+") do
        if part ~= "." then
            local nextdir = current .. "/" .. part
            local st = fs.stat(nextdir)
            if st == nil then
                local made, merr, errno = fs.mkdir(nextdir, tonumber("755", 8))
                if not made and errno ~= 17 then return nil, merr end
            end
            local real, perr = fs.realpath(nextdir)
            if real == nil then return nil, perr end
            if not inside(real, root) then
                return nil, string.format("%s leaves the archive directory %s", nextdir, root)
            end
            if (fs.stat(real) or {}).type ~= "directory" then return nil, real .. " is not a directory" end
            current = real
        end
    end
    return current, nil, root
end

local function write_file(path, data)
    local f, err = io.open(path, "wb")
    if f == nil then return nil, err end
    local ok, werr = f:write(data)
    f:close()
    if not ok then return nil, werr end
    return true
end

-- Archives the message; returns the path written or nil and an error.
function ArchivePlugin:archive(suspect)
    local archivedir = self:get("archivedir")
    local subdir = template.apply(self:get("subdirtemplate"), suspect)
    local filename = template.apply(self:get("filenametemplate"), suspect):gsub("/", "_")
    if filename == "" or filename == "." or filename == ".." then filename = suspect.id .. ".eml" end
    local dir, err = ArchivePlugin.target_dir(archivedir, subdir)
    if dir == nil then
        self.logger:error("%s: refusing archive subdirectory '%s' (%s), using %s", suspect.id, subdir,
            tostring(err), archivedir)
        dir, err = ArchivePlugin.target_dir(archivedir, "")
        if dir == nil then return nil, err end
    end
    local path = dir .. "/" .. filename
    local data
    if self:getboolean("storeoriginal") then data = suspect:get_original_source() else data = suspect:get_source() end
    local ok, werr = write_file(path, data)
    if not ok then return nil, werr end
    local user, group = self:get("chown"), self:get("chgrp")
    if user ~= "" or group ~= "" then
        local cok, cerr = fs.chown(path, user ~= "" and user or nil, group ~= "" and group or nil)
        if not cok then self.logger:error("%s: %s", suspect.id, tostring(cerr)) end
    end
    local mode = self:get("chmod")
    if mode ~= "" then
        local n = tonumber(mode, 8)
        if n == nil then
            self.logger:error("%s: invalid chmod value '%s' (octal expected)", suspect.id, mode)
        else
            local mok, merr = fs.chmod(path, n)
            if not mok then self.logger:error("%s: %s", suspect.id, tostring(merr)) end
        end
    end
    return path
end

function ArchivePlugin:examine(suspect)
    if suspect.tags.debug then
        suspect:debug("ArchivePlugin: debug message, not archived")
        return actions.DUNNO
    end
    local matched, arg = self:filter():matches(suspect)
    if not matched then
        self.logger:debug("%s: no archive rule matched", suspect.id)
        return actions.DUNNO
    end
    local word = tostring(arg or ""):lower():gsub("^%s+", ""):gsub("%s+$", "")
    if word == "no" then
        self.logger:debug("%s: archiving disabled by rule", suspect.id)
        return actions.DUNNO
    end
    if word ~= "" and word ~= "yes" then
        self.logger:warning("%s: unknown archive rule argument '%s', archiving", suspect.id, tostring(arg))
    end
    local path, err = self:archive(suspect)
    if path then
        self.logger:info("%s: message archived to %s", suspect.id, path)
    else
        self.logger:error("%s: archiving failed: %s", suspect.id, tostring(err))
    end
    return actions.DUNNO
end

function ArchivePlugin:lint()
    local ok = plugin.check_config(self)
    if self.config:has_option(self.section, "makedomainsubdir") then
        print("the config option 'makedomainsubdir' has been replaced with 'subdirtemplate'")
        print("please update your config - makedomainsubdir=1 -> subdirtemplate=${to_domain}")
        ok = false
    end
    local mode = self:get("chmod")
    if mode ~= "" and tonumber(mode, 8) == nil then
        print("chmod: invalid octal mode '" .. mode .. "'")
        ok = false
    end
    local archivedir = self:get("archivedir")
    local st = fs.stat(archivedir)
    if st == nil or st.type ~= "directory" then
        print("Archivedir '" .. archivedir .. "' does not exist or is not a directory")
        ok = false
    end
    return suspectfilter.new(self:get("archiverules")):lint() and ok
end

return ArchivePlugin
