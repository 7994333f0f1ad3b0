-- An example rule file written in Lua (usable wherever a rule file is accepted; see doc/rules.md).
-- It returns an array of rules. Each rule is either
--   a function of the suspect: a true or string result is a match (the string is shown as the
--   matched value), a second result overrides the argument;
--   {field = "...", regex = "...", flags = "i", args = "..."}: like a line of a .regex file
--   (flags default to "is": case-insensitive, dot matches newline);
--   {match = function(suspect) ... end, args = "...", name = "..."}.
return {
    -- many recipients from outside
    { name = "many-recipients", args = "REJECT too many recipients", match = function(suspect)
        return #suspect.recipients > 50 and suspect.from_domain ~= "example.org"
    end },
    -- the same as "Subject /^\[SPAM\]/ DELETE" in a .regex file
    { field = "Subject", regex = "^\\[SPAM\\]", flags = "", args = "DELETE" },
    -- a function with a computed argument
    function(suspect)
        local score = tonumber(suspect.tags["SAPlugin.spamscore"] or "")
        if score and score > 15 then return tostring(score), "DELETE" end
    end,
}
