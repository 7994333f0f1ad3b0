-- fuglu.htmlstrip: the text of an HTML (or plain text) body, as Fuglu's strip_text gives it.
--
--   require("fuglu.htmlstrip").strip('foo<a href="x">bar</a><script>x()</script>baz')  -- "foobarbaz"
--
-- Line breaks become spaces; comments (MS-Office conditional comments included), <script> and
-- <style> elements with their content, declarations (<!DOCTYPE>) and processing instructions go;
-- every other tag is removed and its text kept. Entities are decoded and the non-breaking space
-- (&nbsp; &#160; &#xa0; and U+00A0) becomes a plain space. A "<" that does not start a tag stays.
--
-- strip() with the default elements runs in C (fuglu_htmlstrip.strip, src/lua/lua_htmlstrip.c:
-- the same passes, byte for byte the same result, ~50x faster); strip_lua() is the reference
-- implementation, also used for other element lists and when the C module is not there.

local htmlstrip = {}

local NAMED = {
    amp = "&", lt = "<", gt = ">", quot = '"', apos = "'", nbsp = " ",
    copy = "\194\169", reg = "\194\174", euro = "\226\130\172", shy = "",
    auml = "\195\164", ouml = "\195\182", uuml = "\195\188", szlig = "\195\159",
    Auml = "\195\132", Ouml = "\195\150", Uuml = "\195\156", eacute = "\195\169",
    egrave = "\195\168", agrave = "\195\160", ccedil = "\195\167", hellip = "\226\128\166",
    ndash = "\226\128\147", mdash = "\226\128\148", lsquo = "\226\128\152", rsquo = "\226\128\153",
    ldquo = "\226\128\156", rdquo = "\226\128\157", bull = "\226\128\162", trade = "\226\132\162",
}

local function utf8_char(cp)
    if cp == 0xA0 then return " " end
    if cp < 0 or cp > 0x10FFFF or (cp >= 0xD800 and cp <= 0xDFFF) then return "\239\191\189" end
    if cp < 0x80 then return string.char(cp) end
    if cp < 0x800 then
        return string.char(0xC0 + math.floor(cp / 0x40), 0x80 + cp % 0x40)
    end
    if cp < 0x10000 then
        return string.char(0xE0 + math.floor(cp / 0x1000), 0x80 + math.floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
    end
    return string.char(0xF0 + math.floor(cp / 0x40000), 0x80 + math.floor(cp / 0x1000) % 0x40,
        0x80 + math.floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
end

-- Decodes &name; &#NNN; &#xHH; (unknown names stay as written).
function htmlstrip.decode_entities(text)
    if not text:find("&", 1, true) then return text end
    text = text:gsub("&#[xX](%x+);?", function(hex) return utf8_char(tonumber(hex, 16)) end)
    text = text:gsub("&#(%d+);?", function(dec) return utf8_char(tonumber(dec)) end)
    return (text:gsub("&(%a%w*);", function(name)
        return NAMED[name] or NAMED[name:lower()] or ("&" .. name .. ";")
    end))
end

-- Removes every <tag ...>...</tag> element for the given (lower case) tag names.
local function remove_elements(text, names)
    local lower = text:lower()
    local out, pos = {}, 1
    while true do
        local best, best_name
        for _, name in ipairs(names) do
            local s = lower:find("<" .. name .. "[%s/>]", pos)
            if s and (best == nil or s < best) then best, best_name = s, name end
        end
        if best == nil then break end
        out[#out + 1] = text:sub(pos, best - 1)
        local close_s, close_e = lower:find("</" .. best_name .. "%s*>", best)
        if close_s == nil then
            pos = #text + 1     -- unterminated: drop the rest, as a browser would
            break
        end
        pos = close_e + 1
    end
    out[#out + 1] = text:sub(pos)
    return table.concat(out)
end

-- Tags to drop entirely: the element names given, or script and style.
function htmlstrip.strip_lua(text, remove_tags)
    text = tostring(text or "")
    if text:find("\n", 1, true) then text = text:gsub("\r?\n", " ") end
    if text:find("\r", 1, true) then text = text:gsub("\r", " ") end
    if text:find("<", 1, true) then
        if text:find("<!--", 1, true) then
            text = text:gsub("<!%-%-.-%-%->", "")            -- comments, conditional comments
            text = text:gsub("<!%-%-.*$", "")                -- an unterminated comment
        end
        local names = {}
        for _, name in ipairs(remove_tags or { "script", "style" }) do names[#names + 1] = tostring(name):lower() end
        text = remove_elements(text, names)
        if text:find("<![CDATA[", 1, true) then text = text:gsub("<!%[CDATA%[(.-)%]%]>", "%1") end
        if text:find("<[!?]") then text = text:gsub("<[!?][^>]*>", "") end   -- <!DOCTYPE>, <?xml?>
        text = text:gsub("</?[%a][^>]*>", "")            -- tags
    end
    text = htmlstrip.decode_entities(text)
    if text:find("\194\160", 1, true) then text = text:gsub("\194\160", " ") end
    return text
end

local c_strip
do
    local ok, lib = pcall(require, "fuglu_htmlstrip")
    if ok and type(lib) == "table" then c_strip = lib.strip end
end

-- The text without HTML; remove_tags (default {"script", "style"}): elements dropped with content.
function htmlstrip.strip(text, remove_tags)
    if remove_tags == nil and c_strip ~= nil then return c_strip(tostring(text or "")) end
    return htmlstrip.strip_lua(text, remove_tags)
end

return htmlstrip
