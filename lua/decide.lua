--[[
  decide.lua: judge a cost against a quota and, in consume mode, charge it, in one atomic step.

  The caller (src/redis/scripts.ts) parses config and plans every key in TypeScript; this
  script re-reads the config fields the plan relied on and refuses to act if any changed,
  so a decision is always made on the config and usage of one instant.

  Credit budgeting (SPEC 6): for an org member with budgeting on, a request that the quota
  admits is still denied when its credits exceed min(org balance, allocation - spent). The
  check runs before any write, so credits, like quotas, are never overspent however many
  requests race. Amounts are integers in millicredits (1 credit = 1000).

  KEYS, in this order (the counts come from ARGV[1..3] and ARGV[16]):
    KEYS[1]                reservation hash    tollgate:reservation:<id>       written on admission
    KEYS[2]                request-id hash     tollgate:request:<user>:<rid>   used when ARGV[12] = "1",
                                                                           else KEYS[1] again
    next nConfig keys      config hashes       rails:users:<user> [, rails:orgs:<org>], then for an
                                               org member the same two again for the credit fields
    next nRead keys        usage sorted sets   the pool's counted metrics, summed over a day range
    next nCharge keys      usage sorted sets   incremented by cost at today's member on admission
    next nCredit keys      (0 or 4, only for an org member)
                           user config hash    rails:users:<user>   spent counter, incremented on admission
                           org config hash     rails:orgs:<org>     balance, decremented on admission
                           user credit ledger  tollgate:credits:user:<user>:<service_type>:<YYYYMM>
                           org credit ledger   tollgate:credits:org:<org>:<service_type>:<YYYYMM>
                                               both incremented by the credits at today's member

  ARGV:
    [1]  nConfig           1 or 2, plus 2 for an org member (its credit fields)
    [2]  nRead             number of usage keys to sum
    [3]  nCharge           number of usage keys to charge
    [4]  nowMs             epoch milliseconds of an injected clock, or "" to use the server clock (TIME)
    [5]  dayStartMs        the UTC day the keys were planned for: [dayStartMs, dayEndMs)
    [6]  dayEndMs
    [7]  day               today's member, two digits "01".."31"
    [8]  cost              units judged (0 only in check mode, to measure usage)
    [9]  quota             units per cycle
    [10] softLimit         "1" admits whatever the quota says
    [11] mode              "check" (no writes) or "consume"
    [12] useRequestId      "1" when KEYS[2] names a request id
    [13] signature         the reservation's canonical string, stored with it
    [14] reservationTtlMs  how long an unsettled reservation may still be settled
    [15] requestIdTtlMs    how long a request id is remembered
    [16] nCredit           0, or 4 for an org member
    [17] creditsEnabled    "1" when the org has budgeting on (ignored when nCredit = 0)
    [18] allocation        the member's allocation in millicredits, or -1 for no limit
    [19] perUnit           millicredits one unit of this kind costs
    [20] balanceField      org hash field holding the balance (millicredits)
    [21] spentField        user hash field holding the spent counter (millicredits)
    [22] deadlineMs        server-clock epoch ms after which the caller has given up, or "" for none
    then, per config key:  nFields, then nFields pairs of field and "=" .. value, or "!" if missing
    then, per read key:    fromDay, toDay (inclusive)

  Reply: { status, allowed, used, nowMs, signature, creditDenied, creditCost, creditsAvailable }
    status 1 DECIDED         allowed 0/1; used = cycle usage after the decision; creditDenied 1
                             when the quota admitted but credits did not; creditCost = cost * perUnit;
                             creditsAvailable = what the user may still spend after the decision,
                             -1 when no budget applies (no org, or budgeting off)
    status 2 REPLAYED        the request id was admitted before: allowed 1, its used and signature;
                             nothing charged again (creditDenied 0, creditCost 0, creditsAvailable -1)
    status 3 CONFIG_CHANGED  a config hash is gone or a field differs from the plan: re-plan
    status 4 DAY_CHANGED     nowMs is outside the planned day: re-plan
    status 5 WRONG_TYPE      a key holds the wrong Redis type; signature = that key. Nothing written.
    status 6 BAD_CREDITS     the balance or spent counter is not an integer in [0, 10^15]; signature =
                             the hash holding it. Nothing written.
    status 7 EXPIRED         the server clock is past deadlineMs: the caller was already told Redis
                             did not answer, so nothing may be charged. Nothing written.
  Statuses 3 to 7 return only the first five elements.

  Exactly once, even when a client re-sends a command whose reply was lost (ioredis does on
  reconnect): the reservation id is chosen by the caller and is KEYS[1], so a copy of an
  admission that already ran finds its own reservation and answers REPLAYED.
]]

local reservationKey = KEYS[1]
local requestIdKey = KEYS[2]

local nConfig = tonumber(ARGV[1])
local nRead = tonumber(ARGV[2])
local nCharge = tonumber(ARGV[3])
local dayStartMs = tonumber(ARGV[5])
local dayEndMs = tonumber(ARGV[6])
local day = ARGV[7]
local cost = tonumber(ARGV[8])
local quota = tonumber(ARGV[9])
local softLimit = ARGV[10] == '1'
local consume = ARGV[11] == 'consume'
local useRequestId = ARGV[12] == '1'
local signature = ARGV[13]
local reservationTtlMs = tonumber(ARGV[14])
local requestIdTtlMs = tonumber(ARGV[15])
local nCredit = tonumber(ARGV[16])
local creditsEnabled = nCredit > 0 and ARGV[17] == '1'
local allocation = tonumber(ARGV[18])
local perUnit = tonumber(ARGV[19])
local balanceField = ARGV[20]
local spentField = ARGV[21]
local deadlineMs = tonumber(ARGV[22])

local time = redis.call('TIME')
local serverNowMs = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local nowMs = tonumber(ARGV[4]) or serverNowMs

local function hasType(key, expected)
  local actual = redis.call('TYPE', key)['ok']
  return actual == expected or actual == 'none'
end

if consume then
  if not hasType(reservationKey, 'hash') then return { 5, 0, 0, nowMs, reservationKey } end
  local mine = redis.call('HMGET', reservationKey, 'signature', 'used')
  if mine[1] then return { 2, 1, tonumber(mine[2]) or 0, nowMs, mine[1], 0, 0, -1 } end
end

if deadlineMs and serverNowMs > deadlineMs then
  return { 7, 0, 0, nowMs, '' }
end

if nowMs < dayStartMs or nowMs >= dayEndMs then
  return { 4, 0, 0, nowMs, '' }
end

-- Config: every hash must still exist and every fingerprinted field must be as planned.
local argIndex = 23
for i = 1, nConfig do
  local configKey = KEYS[2 + i]
  if not hasType(configKey, 'hash') then return { 5, 0, 0, nowMs, configKey } end
  if redis.call('EXISTS', configKey) == 0 then return { 3, 0, 0, nowMs, '' } end
  local nFields = tonumber(ARGV[argIndex])
  argIndex = argIndex + 1
  for _ = 1, nFields do
    local value = redis.call('HGET', configKey, ARGV[argIndex])
    local encoded = value and ('=' .. value) or '!'
    if encoded ~= ARGV[argIndex + 1] then return { 3, 0, 0, nowMs, '' } end
    argIndex = argIndex + 2
  end
end

if useRequestId then
  if not hasType(requestIdKey, 'hash') then return { 5, 0, 0, nowMs, requestIdKey } end
  local previous = redis.call('HMGET', requestIdKey, 'signature', 'used')
  if previous[1] then
    return { 2, 1, tonumber(previous[2]) or 0, nowMs, previous[1], 0, 0, -1 }
  end
end

-- Usage: sum the day members of each counted key that fall inside the cycle.
local firstRead = 2 + nConfig
local used = 0
for i = 1, nRead do
  local usageKey = KEYS[firstRead + i]
  if not hasType(usageKey, 'zset') then return { 5, 0, 0, nowMs, usageKey } end
  local fromDay = tonumber(ARGV[argIndex])
  local toDay = tonumber(ARGV[argIndex + 1])
  argIndex = argIndex + 2
  local entries = redis.call('ZRANGE', usageKey, 0, -1, 'WITHSCORES')
  for j = 1, #entries, 2 do
    local memberDay = tonumber(entries[j])
    if memberDay and memberDay >= fromDay and memberDay <= toDay then
      used = used + tonumber(entries[j + 1])
    end
  end
end

local allowed = softLimit or (quota > 0 and used + cost <= quota)

-- Credits: judged only when the quota admitted, so a denial names the real blocker.
local firstCredit = firstRead + nRead + nCharge
local userCredits = KEYS[firstCredit + 1]
local orgCredits = KEYS[firstCredit + 2]
local creditCost = 0
local creditsAvailable = -1
local creditDenied = false
if creditsEnabled then
  -- A counter is written only by Tollgate; anything but plain digits means someone else wrote it.
  local function counter(key, field)
    local raw = redis.call('HGET', key, field)
    if not raw or raw == '' then return 0 end
    if not string.match(raw, '^%d+$') or #raw > 16 then return nil end
    local value = tonumber(raw)
    if value > 1e15 then return nil end
    return value
  end
  local balance = counter(orgCredits, balanceField)
  if balance == nil then return { 6, 0, 0, nowMs, orgCredits } end
  local spent = counter(userCredits, spentField)
  if spent == nil then return { 6, 0, 0, nowMs, userCredits } end
  creditsAvailable = balance
  if allocation >= 0 then creditsAvailable = math.min(balance, math.max(0, allocation - spent)) end
  creditCost = cost * perUnit
  if allowed and creditCost > creditsAvailable then
    allowed = false
    creditDenied = true
  end
end

if not consume or not allowed then
  return { 1, allowed and 1 or 0, used, nowMs, '', creditDenied and 1 or 0, creditCost, creditsAvailable }
end

-- Admission: check every key we are about to write before writing any of them.
local firstCharge = firstRead + nRead
for i = 1, nCharge do
  if not hasType(KEYS[firstCharge + i], 'zset') then return { 5, 0, 0, nowMs, KEYS[firstCharge + i] } end
end
if not hasType(reservationKey, 'hash') then return { 5, 0, 0, nowMs, reservationKey } end
local charged = creditsEnabled and creditCost > 0
if charged then
  for i = 3, 4 do
    if not hasType(KEYS[firstCredit + i], 'zset') then return { 5, 0, 0, nowMs, KEYS[firstCredit + i] } end
  end
end

for i = 1, nCharge do
  redis.call('ZINCRBY', KEYS[firstCharge + i], cost, day)
end
used = used + cost
redis.call('HSET', reservationKey, 'signature', signature, 'state', 'pending', 'used', used)
if charged then
  -- '%d' keeps large integers out of exponent notation, which HINCRBY would refuse mid-script.
  redis.call('HINCRBY', orgCredits, balanceField, string.format('%d', -creditCost))
  redis.call('HINCRBY', userCredits, spentField, string.format('%d', creditCost))
  redis.call('ZINCRBY', KEYS[firstCredit + 3], creditCost, day)
  redis.call('ZINCRBY', KEYS[firstCredit + 4], creditCost, day)
  creditsAvailable = creditsAvailable - creditCost
  -- Settlement refunds failed units at the price they were charged, even if prices change meanwhile.
  redis.call('HSET', reservationKey, 'perUnit', perUnit)
end
redis.call('PEXPIRE', reservationKey, reservationTtlMs)
if useRequestId then
  redis.call('HSET', requestIdKey, 'signature', signature, 'used', used)
  redis.call('PEXPIRE', requestIdKey, requestIdTtlMs)
end
return { 1, 1, used, nowMs, signature, 0, creditCost, creditsAvailable }
