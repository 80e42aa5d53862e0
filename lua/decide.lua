--[[
  decide.lua: judge a cost against a quota and, in consume mode, charge it, in one atomic step.

  The caller (src/redis/scripts.ts) parses config and plans every key in TypeScript; this script
  re-reads the config fields the plan relied on (API key fields included) and refuses to act if any
  changed, so a decision is always made on the config and usage of one instant. Credit budgeting
  (SPEC 6) is judged after the quota: a request the quota admits is still denied when its credits
  exceed min(org balance, allocation - spent). Every check runs before the first write.

  KEYS, each key once:
    KEYS[1]            reservation bucket  tollgate:rsv:<slot>.<tag>.<n>   hash, field = reservation's field,
                                           value "p<cost>:<check>[:<perUnit>]" (pending) or "s" (settled)
    KEYS[2]            request-id key      tollgate:request:<user>:<rid>   string, only when rid is set
    then the plan's keys, which the plan names by their place i among them (KEYS[base + i], base 1,
    or 2 with a request id): first the config hashes (rails:users:<user> [, rails:orgs:<org>]), then
    the usage sorted sets it reads or charges, then an org member's two credit ledgers
    (tollgate:credits:user|org:<name>:<service_type>:<YYYYMM>); the balance and spent counters are
    fields of the config hashes.

  ARGV[1] one cjson object: the plan, cached by the caller per account, quota kind and UTC day,
  followed by this call's own fields.
    plan:
    cfg   [{ f = {field...}, l = {length...}, d, e = true|absent, x = {field...}|absent }]  per
          config hash, in key order: the fields the plan relied on, each planned value's length in
          bytes (-1: missing), the SHA-1 of the planned values concatenated, e when all were
          missing (then the hash must still exist), then extra fields read for the credit
          counters. Lengths and a digest, not the values: API keys are among the fields, and ARGV
          shows up in SLOWLOG and MONITOR. Lengths plus the concatenation name the values exactly.
    rd    [{key, fromDay, toDay}]   per usage key summed over the cycle, days inclusive
    ch    [{key, mul, add}]         per usage key charged on admission: delta = cost * mul + add
    day   "01".."31"             today's member
    ds,de [dayStartMs, dayEndMs) of the UTC day the keys were planned for
    q     quota (units per cycle); soft: true admits whatever the quota says
    cr    { on, alloc (millicredits, -1 no limit), pu (millicredits per unit), bal = {cfgIndex, field},
            spent = {cfgIndex, field}, led = {user ledger, org ledger} } or absent
    call:
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
    EXPIRED            { s, 0, 0, nowMs }  past dl: the caller was told Redis did not answer
    WRONG_TYPE         { s, 0, 0, nowMs, key }
    BAD_COUNTER        { s, 0, 0, nowMs, key, field or day }  a score or credit counter is negative,
                       fractional or too large to be one Tollgate wrote
    COUNTER_LIMIT      { s, 0, 0, nowMs, key }  charging would take a counter past 2^53 - 1
  Nothing is written unless the reply is DECIDED with allowed 1.

  Exactly once, even when a client re-sends a command whose reply was lost (ioredis does on
  reconnect): the reservation field is chosen by the caller, and an admission writes it with
  HSETNX before anything else, so a copy of an admission that already ran finds its own field and
  answers REPLAYED. A copy that would be refused (the day, the config or the quota moved since the
  original charged) looks for its field first and replays too. The admitted path pays no extra
  read for this.
]]

local byte = string.byte
local bucketKey = KEYS[1]
local requestIdKey = KEYS[2]
local p = cjson.decode(ARGV[1])

local consume = p.mode == 'consume'
local cost = p.cost

local time = redis.call('TIME')
local serverNowMs = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local nowMs = p.now or serverNowMs

local base = p.rid and 2 or 1

-- Usage: the day members of each counted key that fall inside the cycle, summed. Also answers
-- today's score of each read key, valid as a count: a charge of the same key needs no ZSCORE.
-- On a key that cannot be read as counts: nil, then the status, key and member to refuse with.
local function sumUsage()
  local used = 0
  local todayScore = {}
  for _, range in ipairs(p.rd) do
    local key = KEYS[base + range[1]]
    local entries = read('ZRANGE', key, '0', '-1', 'WITHSCORES')
    if entries == nil then return nil, STATUS.WRONG_TYPE, key end
    local from, to = range[2], range[3]
    local today = 0
    for j = 1, #entries, 2 do
      local member = entries[j]
      -- A day is one or two digits: "05", or "5" as some CARTO writers left it. Any other member
      -- is no day and counts nowhere (src/core/cycle.ts dayOfMember is the same rule).
      local a, b, c = byte(member, 1, 3)
      local memberDay
      if a and not c and a >= 48 and a <= 57 then
        if not b then
          memberDay = a - 48
        elseif b >= 48 and b <= 57 then
          memberDay = (a - 48) * 10 + b - 48
        end
      end
      if memberDay and memberDay >= from and memberDay <= to then
        local count = countOf(entries[j + 1])
        if count == nil then return nil, STATUS.BAD_COUNTER, key, member end
        used = used + count
        if member == p.day then today = count end
      end
    end
    todayScore[key] = today
  end
  return used, todayScore
end

-- A copy of an admission that already ran (re-sent after a reconnect) finds its own field: it
-- replays, whatever changed since, as the charge is in place. Nil for anything else.
local function replayOf()
  if not consume then return nil end
  local mine = read('HGET', bucketKey, p.f)
  if not mine then return nil end
  local used, failed, failedKey, failedField = sumUsage()
  if used == nil then return { failed, 0, 0, nowMs, failedKey, failedField or '' } end
  return { STATUS.REPLAYED, 1, used, nowMs, '' }
end

local function refuse(status, key, field)
  return replayOf() or { status, 0, 0, nowMs, key or '', field or '' }
end

if p.dl and serverNowMs > p.dl then return refuse(STATUS.EXPIRED) end
if nowMs < p.ds or nowMs >= p.de then return refuse(STATUS.DAY_CHANGED) end

-- Config: one HMGET per hash; every planned field must hold a value of the planned length, and
-- the values together the planned digest.
local extras = {}
for i, part in ipairs(p.cfg) do
  local key = KEYS[base + i]
  local lengths = part.l
  local planned = #lengths
  local fields = part.f
  if part.x then
    fields = {}
    for j = 1, planned do fields[j] = part.f[j] end
    for j = 1, #part.x do fields[planned + j] = part.x[j] end
  end
  local values = read('HMGET', key, unpack(fields))
  if values == nil then return refuse(STATUS.WRONG_TYPE, key) end
  for j = 1, planned do
    local value = values[j]
    if value then
      if #value ~= lengths[j] then return refuse(STATUS.CONFIG_CHANGED) end
    else
      if lengths[j] ~= -1 then return refuse(STATUS.CONFIG_CHANGED) end
      values[j] = ''
    end
  end
  if redis.sha1hex(table.concat(values, '', 1, planned)) ~= part.d then return refuse(STATUS.CONFIG_CHANGED) end
  -- All planned fields missing cannot tell a deleted hash from a sparse one.
  if part.e and redis.call('EXISTS', key) == 0 then return refuse(STATUS.CONFIG_CHANGED) end
  if part.x then
    local extra = {}
    for j = 1, #part.x do extra[j] = values[planned + j] end
    extras[i] = extra
  end
end

local signature = nil
if p.rid then
  local previous = read('GET', requestIdKey)
  if previous == nil then return refuse(STATUS.WRONG_TYPE, requestIdKey) end
  if previous then
    local stored = cjson.decode(previous)
    if stored.match ~= p.match then return refuse(STATUS.REQUEST_ID_REUSED) end
    signature = stored.sig
  end
end

local used, todayScore, badKey, badField = sumUsage()
if used == nil then return refuse(todayScore, badKey, badField) end

-- A request id seen before: the original admission stands, nothing is charged again.
if signature then return { STATUS.REPLAYED, 1, used, nowMs, signature } end

local allowed = p.soft or (p.q > 0 and used + cost <= p.q)

-- Credits: judged only when the quota admitted, so a denial names the real blocker.
local credits = p.cr
local creditCost = 0
local creditsAvailable = -1
local creditDenied = false
if credits and credits.on then
  local balance = creditCounter(extras[credits.bal[1]][1])
  if balance == nil then return refuse(STATUS.BAD_COUNTER, KEYS[base + credits.bal[1]], credits.bal[2]) end
  local spent = creditCounter(extras[credits.spent[1]][1])
  if spent == nil then return refuse(STATUS.BAD_COUNTER, KEYS[base + credits.spent[1]], credits.spent[2]) end
  creditsAvailable = balance
  if credits.alloc >= 0 then creditsAvailable = math.min(balance, math.max(0, credits.alloc - spent)) end
  creditCost = cost * credits.pu
  if allowed and creditCost > creditsAvailable then
    allowed = false
    creditDenied = true
  end
end

if not allowed then
  return replayOf() or { STATUS.DECIDED, 0, used, nowMs, creditDenied and 1 or 0, creditCost, creditsAvailable }
end
if not consume then
  return { STATUS.DECIDED, 1, used, nowMs, 0, creditCost, creditsAvailable }
end

-- Admission: prove every counter we are about to raise stays exact before writing any.
local deltas = {}
for i, charge in ipairs(p.ch) do
  local key = KEYS[base + charge[1]]
  local current = todayScore[key]
  if current == nil then
    local score = read('ZSCORE', key, p.day)
    if score == nil then return refuse(STATUS.WRONG_TYPE, key) end
    current = 0
    if score then
      current = countOf(score)
      if current == nil then return refuse(STATUS.BAD_COUNTER, key, p.day) end
    end
  end
  deltas[i] = cost * charge[2] + charge[3]
  if current + deltas[i] > MAX_COUNTER then return refuse(STATUS.COUNTER_LIMIT, key) end
end
local charged = credits and credits.on and creditCost > 0
if charged then
  for i = 1, 2 do
    local key = KEYS[base + credits.led[i]]
    local score = read('ZSCORE', key, p.day)
    if score == nil then return refuse(STATUS.WRONG_TYPE, key) end
    if score then
      local current = countOf(score)
      if current == nil then return refuse(STATUS.BAD_COUNTER, key, p.day) end
      if current + creditCost > MAX_COUNTER then return refuse(STATUS.COUNTER_LIMIT, key) end
    end
  end
end

-- The reservation first: HSETNX finds a copy of this admission that already ran. Settlement
-- refunds failed units at the price they were charged, even if prices change meanwhile.
local value = charged and (p.val .. ':' .. credits.pu) or p.val
local fresh = read('HSETNX', bucketKey, p.f, value)
if fresh == nil then return { STATUS.WRONG_TYPE, 0, 0, nowMs, bucketKey, '' } end
if fresh == 0 then return { STATUS.REPLAYED, 1, used, nowMs, '' } end
if p.exp then redis.call('PEXPIREAT', bucketKey, p.exp) end

for i, charge in ipairs(p.ch) do
  redis.call('ZINCRBY', KEYS[base + charge[1]], deltas[i], p.day)
end
used = used + cost
if charged then
  redis.call('ZINCRBY', KEYS[base + credits.led[1]], creditCost, p.day)
  redis.call('ZINCRBY', KEYS[base + credits.led[2]], creditCost, p.day)
  redis.call('HINCRBY', KEYS[base + credits.bal[1]], credits.bal[2], int(-creditCost))
  redis.call('HINCRBY', KEYS[base + credits.spent[1]], credits.spent[2], int(creditCost))
  creditsAvailable = creditsAvailable - creditCost
end
if p.rid then
  redis.call('SET', requestIdKey, cjson.encode({ match = p.match, sig = p.sig }), 'PX', p.ridTtl)
end
return { STATUS.DECIDED, 1, used, nowMs, 0, creditCost, creditsAvailable }
