-- fuglu.worker: what a C worker thread calls for each message (doc/lua-core-api.md).
--
--   local w, errors = worker.new(config, options)
--   local result = w:handle(job)   -- {code=, text=, action=, id=}; re-injects for DUNNO/ACCEPT
--   w:after(job)                   -- the appenders (not for deferred messages / tag noappenders)
--
-- handle() never raises: an unexpected error answers 451 and is logged with its traceback.
-- options.reinject replaces fuglu_job.reinject (tests).

local job_lib = require "fuglu_job"
local sys = require "fuglu_sys"
local actions = require "fuglu.actions"
local addrcheck = require "fuglu.addrcheck"
local config_module = require "fuglu.config"
local loader = require "fuglu.loader"
local dns = require "fuglu.dns"
local log = require "fuglu.log"
local monitor = require "fuglu.monitor"
local pipeline = require "fuglu.pipeline"
local suspect_module = require "fuglu.suspect"
local template = require "fuglu.template"
local trace = require "fuglu.trace"
local trash = require "fuglu.trash"

local worker = {}

local Worker = {}
Worker.__index = Worker

local session_log = log.logger("fuglu.SessionHandler")

local DEFER_TEXT = "internal problem - message deferred"
local NOT_REINJECTED = "message not re-injected by plugin request"

-- Core defaults (Fuglu's MainController.requiredvars) that the Lua side reads.
local DEFAULTS = {
    main = {
        plugins = "", prependers = "", appenders = "", plugindir = "",
        outgoinghost = "127.0.0.1", outgoingport = "10026", outgoinghelo = "",
        prependaddedheaders = "X-Fuglu-", trashdir = "", trashlog = "0",
        debuginfoheader = "0", spamstatusheader = "1", suspectidheader = "1",
        logtemplate = "Suspect ${id} from=${from_address} to=${to_address} size=${size} spam=${spam} virus=${virus} modified=${modified} decision=${decision}",
        address_compliance_checker = "Default",
        address_compliance_fail_action = "defer",
        address_compliance_fail_message = "invalid sender or recipient address",
        reinject_timeout = "60",
    },
    spam = { defaultlowspamaction = "DUNNO", defaulthighspamaction = "DUNNO" },
    virus = { defaultvirusaction = "DELETE" },
    smtpconnector = { requeuetemplate = "FUGLU REQUEUE(${id}): ${injectanswer}" },
    environment = { boundarydistance = "0", trustedhostsregex = "" },
}

-- Builds a worker: wraps the config, fills defaults, loads every plugin. Returns the worker, or
-- nil and an array of error strings.
function worker.new(raw_config, options)
    options = options or {}
    local config = config_module.is_config(raw_config) and raw_config or config_module.new(raw_config)
    for section, values in pairs(DEFAULTS) do
        for option, value in pairs(values) do config:set_default(section, option, value) end
    end
    local dns_ok, dns_err = dns.configure(config)
    if not dns_ok then return nil, { dns_err } end
    local chain, errors = loader.load_all(config, options)
    if #errors > 0 then return nil, errors end
    local _, warning = addrcheck.checker(config:get("main", "address_compliance_checker"))
    if warning then session_log:warning("%s", warning) end
    local self = setmetatable({
        config = config,
        options = options,
        chain = chain,
        reinject = options.reinject or job_lib.reinject,
        stats = { plugin_errors = 0 },
        pending = setmetatable({}, { __mode = "k" }),   -- job -> state for after()
        logger = log.logger("fuglu.threads.worker." .. tostring(options.worker_name or "0")),
    }, Worker)
    return self, {}
end

-- Sends the message downstream. Returns ok, code, text, temporary.
function Worker:send(job, suspect)
    local config = self.config
    local host = config:get("main", "outgoinghost")
    if host == "${injecthost}" then host = job.peer_addr end
    local helo = config:get("main", "outgoinghelo")
    if helo == "" then helo = sys.hostname() end
    local t = {
        host = host,
        port = config:getint("main", "outgoingport"),
        helo = helo,
        timeout = config:getfloat("main", "reinject_timeout"),
        from = suspect.from_address,
        rcpts = suspect.recipients,
    }
    if suspect.tags.reinjectoriginal then
        t.prefix = ""
        t.message = suspect.message
    else
        t.prefix = suspect:added_header_lines()
        if suspect:is_modified() then t.source = suspect.source else t.message = suspect.message end
        if suspect:has_header_edits() then
            -- the header block rebuilt with the edits; the body goes from the original bytes
            local block = suspect:get_message_rep():header_block()   -- the fields, each with its line break
            if t.source then
                t.source = suspect:apply_header_edits(block) .. t.source:sub(#block + 1)
            else
                t.prefix = t.prefix .. suspect:apply_header_edits(block)
                t.skip = #block
            end
        end
    end
    -- the envelope's parameters and XFORWARD come from the job itself (fuglu_job.reinject)
    return self.reinject(t, job)
end

-- DUNNO/ACCEPT: re-inject and answer with the downstream's verdict.
function Worker:deliver(job, suspect, decision)
    local answer
    if suspect.tags.noreinject then
        answer = NOT_REINJECTED
    elseif job_lib.cancelled() then
        -- The client was answered 4xx already (scan_timeout, or it went away): its retry brings the
        -- message again, so delivering this copy would make a duplicate.
        session_log:warning("%s: the message was cancelled before the scan ended (scan_timeout, the client left or luamemlimit): not re-injected",
            suspect.id)
        return { code = 451, text = "4.3.0 " .. DEFER_TEXT, action = actions.DEFER }
    else
        local ok, code, text, temporary, cancelled = self:send(job, suspect)
        if cancelled then
            session_log:warning("%s: the message was cancelled during the re-injection (scan_timeout, the client left or luamemlimit): %s",
                suspect.id, tostring(text))
            return { code = 451, text = "4.3.0 " .. DEFER_TEXT, action = actions.DEFER }
        end
        if not ok then
            monitor.reinject_failed()
            text = tostring(text or "")
            if temporary or code == nil or tonumber(code) == nil or tonumber(code) < 500 then
                session_log:error("%s could not be re-injected: %s %s", suspect.id, tostring(code), text)
                return { code = 451, text = "4.3.0 " .. DEFER_TEXT, action = actions.DEFER }
            end
            session_log:warning("%s rejected by the downstream: %s %s", suspect.id, tostring(code), text)
            return { code = 554, text = text ~= "" and text or "5.3.0 rejected downstream",
                action = actions.REJECT }
        end
        answer = tostring(text or "")
    end
    suspect.tags.injectanswer = answer
    local text = template.apply(self.config:get("smtpconnector", "requeuetemplate"), suspect,
        { injectanswer = answer })
    return { code = 250, text = text, action = decision }
end

-- The reply for a decision other than DUNNO/ACCEPT.
function Worker:answer(job, suspect, decision, message, decider)
    if decision == actions.DELETE then
        if self.config:get("main", "trashdir") ~= "" then
            local ok, err = pcall(trash.store, self.config, suspect, decider)
            if not ok then session_log:error("%s: could not write the trash copy: %s", suspect.id, tostring(err)) end
        end
        return { code = 250, text = message or ("OK: (" .. suspect.id .. ")"), action = decision }
    elseif decision == actions.REJECT then
        return { code = 550, text = message or "Rejected by content scanner", action = decision }
    elseif decision == actions.DEFER then
        return { code = 451, text = message or DEFER_TEXT, action = decision }
    end
    session_log:error("Invalid Message action Code: %s. Using DEFER", tostring(decision))
    return { code = 451, text = DEFER_TEXT, action = actions.DEFER }
end

-- The reply for an envelope that fails the address check.
function Worker:compliance_failure(job, err)
    local config = self.config
    local message = config:get("main", "address_compliance_fail_message")
    local word = config:get("main", "address_compliance_fail_action")
    local action = actions.string_to_actioncode(word, config)
    session_log:warning("%s: %s -> %s", tostring(job.id), tostring(err), word)
    if action == actions.REJECT then return { code = 550, text = message, action = action } end
    if action == actions.DELETE then return { code = 250, text = message, action = action } end
    return { code = 451, text = message, action = actions.DEFER }
end

local function build_suspect(self, job)
    local s = suspect_module.new{
        id = job.id,
        from = job.from,
        recipients = job.rcpts,
        message = job.message,
        checker = self.config:get("main", "address_compliance_checker"),
    }
    if job.xforward and job.xforward.addr then
        local xf = job.xforward
        s.clientinfo = { helo = xf.helo, ip = xf.addr, rdns = xf.name }
    end
    s.tags.incomingport = job.local_port
    return s
end

function Worker:process(job)
    local ok, s = pcall(build_suspect, self, job)
    if not ok then
        if addrcheck.is_address_error(s) then return self:compliance_failure(job, s) end
        error(s, 0)
    end
    if #s.recipients > 1 then
        session_log:debug("Message from %s has %d recipients. Plugins supporting only one recipient will see: %s",
            s.from_address, #s.recipients, s.to_address)
    end
    local decision, message, decider = pipeline.scan(s, self.chain, self.config, self.stats)
    local result
    if decision == actions.DUNNO or decision == actions.ACCEPT then
        result = self:deliver(job, s, decision)
    else
        result = self:answer(job, s, decision, message, decider)
    end
    result.id = s.id
    self.pending[job] = { suspect = s, decision = decision, deferred = result.code == 451 }
    if result.code == 451 then session_log:warning("DEFERRED %s", s.id) end
    trace.reply(s, result, result.code ~= 451 and not s.tags.noappenders and #self.chain.appenders > 0)
    return result
end

-- Scans one job and returns the reply {code=, text=, action=, id=}. Never raises.
function Worker:handle(job)
    local ok, result = xpcall(self.process, debug.traceback, self, job)
    if ok then
        -- the message counters of the control server, MRTG and metrics (fuglu.monitor)
        local state = self.pending[job]
        monitor.message_done(result, state and state.suspect)
        return result
    end
    session_log:error("%s: internal error, deferring: %s", tostring(job and job.id), tostring(result))
    monitor.core_error(job and job.id, result)
    local reply = { code = 451, text = DEFER_TEXT, action = actions.DEFER, id = job and job.id }
    monitor.message_done(reply, nil)
    return reply
end

-- Runs the appenders for a job handle() answered. Never raises.
function Worker:after(job)
    if job == nil then return end
    local state = self.pending[job]
    self.pending[job] = nil
    if state == nil or state.deferred or state.suspect.tags.noappenders then return end
    local ok, err = xpcall(pipeline.run_appenders, debug.traceback, state.suspect, self.chain.appenders,
        state.decision, self.stats)
    trace.close(state.suspect)
    if not ok then session_log:error("appenders failed: %s", tostring(err)) end
end

return worker
