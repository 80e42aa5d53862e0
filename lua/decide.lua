--[[
  decide.lua: judge a cost against a quota and, in consume mode, charge it, in one atomic step.

  The caller (src/redis/scripts.ts) parses config and plans every key in TypeScript; this script
  re-reads the config fields the plan relied on (API key fields included) and refuses to act if any
  changed, so a decision is always made on the config and usage of one instant. Credit budgeting
  (SPEC 6) is judged after the quota: a request the quota admits is still denied when its credits
  exceed min(org balance, allocation - spent). Every check runs before the first write.

  KEYS (counts from the plan):
    KEYS[1]            reservation bucket  tollgate:rsv:<slot>.<tag>.<n>   hash, field = reservation's field,
                                           value "p<cost>:<check>[:<perUnit>]" (pending) or "s" (settled)
    KEYS[2]            request-id key      tollgate:request:<user>:<rid>   string, when call.rid is set
    next #plan.cfg     config hashes       rails:users:<user> [, rails:orgs:<org>]
    next #plan.rd      usage sorted sets   the pool's counted metrics, summed over a day range
    next #plan.ch      usage sorted sets   incremented at today's member on admission
    next 2 (plan.cr)   credit ledgers      tollgate:credits:user|org:<name>:<service_type>:<YYYYMM>,
                                           only with plan.cr (an org member); the balance and spent
                                           counters are fields of the config hashes above

  ARGV[1] plan (cjson), cached by the caller per account, quota kind and UTC day:
    cfg   [{ f = {field...}, d = digest, e = true|absent, x = {field...} }]  per config hash: the
          fields to re-check and the SHA-1 of their values as planned ("<bytes>:<value>" or "!" for a
          missing field, joined by ";"), e when all were missing (then the hash must still exist),
          then extra fields read for the credit counters. A digest, not the values: API keys are
          among the fields, and ARGV shows up in SLOWLOG and MONITOR.
    rd    [{fromDay, toDay}]     per read key, inclusive
    ch    [{mul, add}]           per charge key: delta = cost * mul + add
    day   "01".."31"             today's member
    ds,de [dayStartMs, dayEndMs) of the UTC day the keys were planned for
    q     quota (units per cycle); soft: true admits whatever the quota says
    cr    { on, alloc (millicredits, -1 no limit), pu (millicredits per unit), bal = {cfgIndex, field},
            spent = {cfgIndex, field} } or absent
  ARGV[2] call (cjson), per call:
    mode  "consume" | "check";  cost  units (0 only in check mode, to measure usage)
    now   injected clock (epoch ms) or absent for the server clock
    dl    server-clock epoch ms after which the caller has given up, or absent
    f     the reservation's field in KEYS[1];  val  its pending value;  exp  PEXPIREAT of KEYS[1], absent
          once the client has seen an earlier write to this bucket succeed (it set the expiry)
    rid   true when KEYS[2] is a request id;  ridTtl  ms;  sig  the reservation's signature;
    match "<kind>|<cost>|<cycleStart>": what a replay of the request id must ask for

  Reply, a flat array; the first element is a STATUS (src/redis/statuses.ts):
    DECIDED            { s, allowed 0/1, used (after the decision), nowMs, creditDenied 0/1,
                         creditCost, creditsAvailable (-1 when no budget applies) }
    REPLAYED           { s, 1, used now, nowMs, signature of the original reservation, "" for a re-sent copy }
    REQUEST_ID_REUSED  { s, 0, 0, nowMs }  the request id was admitted for another kind, cost or cycle
    CONFIG_CHANGED     { s, 0, 0, nowMs }  a config hash is gone or a field differs from the plan
    DAY_CHANGED        { s, 0, 0, nowMs }  the clock left the planned day
    EXPIRED            { s, 0, 0, nowMs }  past call.dl: the caller was told Redis did not answer
    WRONG_TYPE         { s, 0, 0, nowMs, key }
    BAD_COUNTER        { s, 0, 0, nowMs, key, field or day }  a score or credit counter is negative,
                       fractional or too large to be one Tollgate wrote
    COUNTER_LIMIT      { s, 0, 0, nowMs, key }  charging would take a counter past 2^53 - 1
  Nothing is written unless the reply is DECIDED with allowed 1.

  Exactly once, even when a client re-sends a command whose reply was lost (ioredis does on
  reconnect): the reservation field is chosen by the caller, so a copy of an admission that
  already ran finds its own field and answers REPLAYED.
]]

local bucketKey = KEYS[1]
local requestIdKey = KEYS[2]
local plan = cjson.decode(ARGV[1])
local call = cjson.decode(ARGV[2])

local consume = call.mode == 'consume'
local cost = call.cost

local time = redis.call('TIME')
local serverNowMs = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local nowMs = call.now or serverNowMs

local function refuse(status, key, field)
  return { status, 0, 0, nowMs, key or '', field or '' }
end

-- A copy of an admission that already ran (re-sent after a reconnect) answers as a replay.
local replayed = false
if consume then
  local mine = read('HGET', bucketKey, call.f)
  if mine == nil then return refuse(STATUS.WRONG_TYPE, bucketKey) end
  replayed = mine ~= false
end

-- A replayed copy already charged: it only reports, whatever changed since.
local firstConfig = 2
local extras = {}
if not replayed then
  if call.dl and serverNowMs > call.dl then return refuse(STATUS.EXPIRED) end
  if nowMs < plan.ds or nowMs >= plan.de then return refuse(STATUS.DAY_CHANGED) end
end

-- Config: one HMGET per hash; every fingerprinted field must be as planned.
for i, part in ipairs(replayed and {} or plan.cfg) do
  local key = KEYS[firstConfig + i]
  local fields = part.f
  if #part.x > 0 then
    fields = {}
    for _, field in ipairs(part.f) do fields[#fields + 1] = field end
    for _, field in ipairs(part.x) do fields[#fields + 1] = field end
  end
  local values = read('HMGET', key, unpack(fields))
  if values == nil then return refuse(STATUS.WRONG_TYPE, key) end
  local encoded = {}
  for j = 1, #part.f do
    local value = values[j]
    encoded[j] = value and (#value .. ':' .. value) or '!'
  end
  if redis.sha1hex(table.concat(encoded, ';')) ~= part.d then return refuse(STATUS.CONFIG_CHANGED) end
  -- All fingerprinted fields missing cannot tell a deleted hash from a sparse one.
  if part.e and redis.call('EXISTS', key) == 0 then return refuse(STATUS.CONFIG_CHANGED) end
  if #part.x > 0 then
    local extra = {}
    for j = 1, #part.x do extra[j] = values[#part.f + j] end
    extras[i] = extra
  end
end

if call.rid and not replayed then
  local previous = read('GET', requestIdKey)
  if previous == nil then return refuse(STATUS.WRONG_TYPE, requestIdKey) end
  if previous then
    local stored = cjson.decode(previous)
    if stored.match ~= call.match then return refuse(STATUS.REQUEST_ID_REUSED) end
    call.sig = stored.sig
    replayed = true
  end
end

-- Usage: sum the day members of each counted key that fall inside the cycle.
local firstRead = firstConfig + #plan.cfg
local used = 0
-- Today's score of each read key, valid as a count: a charge of the same key needs no ZSCORE.
local todayScore = {}
for i, range in ipairs(plan.rd) do
  local key = KEYS[firstRead + i]
  local entries = read('ZRANGE', key, 0, -1, 'WITHSCORES')
  if entries == nil then return refuse(STATUS.WRONG_TYPE, key) end
  local today = 0
  for j = 1, #entries, 2 do
    local memberDay = tonumber(entries[j])
    if memberDay and memberDay >= range[1] and memberDay <= range[2] then
      local count = countOf(entries[j + 1])
      if count == nil then return refuse(STATUS.BAD_COUNTER, key, entries[j]) end
      used = used + count
      if entries[j] == plan.day then today = count end
    end
  end
  todayScore[key] = today
end

if replayed then return { STATUS.REPLAYED, 1, used, nowMs, call.sig or '' } end

local allowed = plan.soft or (plan.q > 0 and used + cost <= plan.q)

-- Credits: judged only when the quota admitted, so a denial names the real blocker.
local credits = plan.cr
local creditCost = 0
local creditsAvailable = -1
local creditDenied = false
local firstCharge = firstRead + #plan.rd
local firstCredit = firstCharge + #plan.ch
if credits and credits.on then
  local balance = creditCounter(extras[credits.bal[1]][1])
  if balance == nil then return refuse(STATUS.BAD_COUNTER, KEYS[firstConfig + credits.bal[1]], credits.bal[2]) end
  local spent = creditCounter(extras[credits.spent[1]][1])
  if spent == nil then return refuse(STATUS.BAD_COUNTER, KEYS[firstConfig + credits.spent[1]], credits.spent[2]) end
  creditsAvailable = balance
  if credits.alloc >= 0 then creditsAvailable = math.min(balance, math.max(0, credits.alloc - spent)) end
  creditCost = cost * credits.pu
  if allowed and creditCost > creditsAvailable then
    allowed = false
    creditDenied = true
  end
end

if not consume or not allowed then
  return { STATUS.DECIDED, allowed and 1 or 0, used, nowMs, creditDenied and 1 or 0, creditCost, creditsAvailable }
end

-- Admission: prove every counter we are about to raise stays exact before writing any.
local deltas = {}
for i, charge in ipairs(plan.ch) do
  local key = KEYS[firstCharge + i]
  local current = todayScore[key]
  if current == nil then
    local score = read('ZSCORE', key, plan.day)
    if score == nil then return refuse(STATUS.WRONG_TYPE, key) end
    current = 0
    if score then
      current = countOf(score)
      if current == nil then return refuse(STATUS.BAD_COUNTER, key, plan.day) end
    end
  end
  deltas[i] = cost * charge[1] + charge[2]
  if current + deltas[i] > MAX_COUNTER then return refuse(STATUS.COUNTER_LIMIT, key) end
end
local charged = credits and credits.on and creditCost > 0
if charged then
  for i = 1, 2 do
    local key = KEYS[firstCredit + i]
    local score = read('ZSCORE', key, plan.day)
    if score == nil then return refuse(STATUS.WRONG_TYPE, key) end
    if score then
      local current = countOf(score)
      if current == nil then return refuse(STATUS.BAD_COUNTER, key, plan.day) end
      if current + creditCost > MAX_COUNTER then return refuse(STATUS.COUNTER_LIMIT, key) end
    end
  end
end

for i = 1, #plan.ch do
  redis.call('ZINCRBY', KEYS[firstCharge + i], deltas[i], plan.day)
end
used = used + cost
local value = call.val
if charged then
  redis.call('ZINCRBY', KEYS[firstCredit + 1], creditCost, plan.day)
  redis.call('ZINCRBY', KEYS[firstCredit + 2], creditCost, plan.day)
  redis.call('HINCRBY', KEYS[firstConfig + credits.bal[1]], credits.bal[2], int(-creditCost))
  redis.call('HINCRBY', KEYS[firstConfig + credits.spent[1]], credits.spent[2], int(creditCost))
  creditsAvailable = creditsAvailable - creditCost
  -- Settlement refunds failed units at the price they were charged, even if prices change meanwhile.
  value = value .. ':' .. credits.pu
end
redis.call('HSET', bucketKey, call.f, value)
if call.exp then redis.call('PEXPIREAT', bucketKey, call.exp) end
if call.rid then
  redis.call('SET', requestIdKey, cjson.encode({ match = call.match, sig = call.sig }), 'PX', call.ridTtl)
end
return { STATUS.DECIDED, 1, used, nowMs, 0, creditCost, creditsAvailable }
