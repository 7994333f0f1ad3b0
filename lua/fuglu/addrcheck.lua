-- fuglu.addrcheck: envelope address compliance ([main] address_compliance_checker).
--
-- Default:       non-empty, exactly one '@' with something on both sides (bob@localhost is fine).
-- LazyLocalPart: also a quoted ASCII local part that contains '@' ("bob@remotehost"@localhost).
-- A Suspect with a failing address raises addrcheck.AddressError; the worker answers it with
-- [main] address_compliance_fail_action / address_compliance_fail_message.

local addrcheck = {}

local function default_ok(address)
    return address:match("^[^@]+@[^@]+$") ~= nil
end

local function lazy_ok(address)
    if default_ok(address) then return true end
    local localpart = address:match('^(".+")@[^@]+$')
    return localpart ~= nil and not localpart:find("[\128-\255]")
end

addrcheck.checkers = { Default = default_ok, LazyLocalPart = lazy_ok }

-- The error object: a table so the worker can tell it from a plugin crash.
local AddressError = {}
AddressError.__index = AddressError
AddressError.__tostring = function(e) return e.message end
addrcheck.AddressError = AddressError

function addrcheck.is_address_error(err)
    return getmetatable(err) == AddressError
end

function addrcheck.raise(message)
    error(setmetatable({ message = message }, AddressError), 0)
end

-- The check function for a checker name; unknown names give Default and a second value: a warning.
function addrcheck.checker(name)
    if name == nil or name == "" then return default_ok end
    local fn = addrcheck.checkers[name]
    if fn then return fn end
    return default_ok, string.format("unknown address_compliance_checker '%s', using Default", name)
end

-- Whether an address passes (address must be a string).
function addrcheck.valid(address, name)
    return type(address) == "string" and (addrcheck.checker(name))(address)
end

return addrcheck
