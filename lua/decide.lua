--[[
  decide.lua: judge a cost against a quota and, in consume mode, charge it, in one atomic step.

  The caller (src/redis/scripts.ts) parses config and plans every key in TypeScript; this
  script re-reads the config fields the plan relied on and refuses to act if any changed,
  so a decision is always made on the config and usage of one instant.

  KEYS, in this order (the counts come from ARGV[1..3]):
    KEYS[1]                reservation hash    tollgate:reservation:<id>       written on admission
    KEYS[2]                request-id hash     tollgate:request:<user>:<rid>   used when ARGV[12] = "1",
                                                                           else KEYS[1] again
    next nConfig keys      config hashes       rails:users:<user> [, rails:orgs:<org>]
    next nRead keys        usage sorted sets   the pool's counted metrics, summed over a day range
    next nCharge keys      usage sorted sets   incremented by cost at today's member on admission

  ARGV:
    [1]  nConfig           1 or 2
    [2]  nRead             number of usage keys to sum
    [3]  nCharge           number of usage keys to charge
    [4]  nowMs             epoch milliseconds, or "" to use the server clock (TIME)
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
    then, per config key:  nFields, then nFields pairs of field and "=" .. value, or "!" if missing
    then, per read key:    fromDay, toDay (inclusive)

  Reply: { status, allowed, used, nowMs, signature }
    status 1 DECIDED         allowed 0/1; used = cycle usage after the decision
    status 2 REPLAYED        the request id was admitted before: allowed 1, its used and signature
    status 3 CONFIG_CHANGED  a config hash is gone or a field differs from the plan: re-plan
    status 4 DAY_CHANGED     nowMs is outside the planned day: re-plan
    status 5 WRONG_TYPE      a key holds the wrong Redis type; signature = that key. Nothing written.
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

local nowMs = tonumber(ARGV[4])
if nowMs == nil then
  local time = redis.call('TIME')
  nowMs = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end

local function hasType(key, expected)
  local actual = redis.call('TYPE', key)['ok']
  return actual == expected or actual == 'none'
end

if nowMs < dayStartMs or nowMs >= dayEndMs then
  return { 4, 0, 0, nowMs, '' }
end

-- Config: every hash must still exist and every fingerprinted field must be as planned.
local argIndex = 16
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
    return { 2, 1, tonumber(previous[2]) or 0, nowMs, previous[1] }
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
if not consume or not allowed then
  return { 1, allowed and 1 or 0, used, nowMs, '' }
end

-- Admission: check every key we are about to write before writing any of them.
local firstCharge = firstRead + nRead
for i = 1, nCharge do
  if not hasType(KEYS[firstCharge + i], 'zset') then return { 5, 0, 0, nowMs, KEYS[firstCharge + i] } end
end
if not hasType(reservationKey, 'hash') then return { 5, 0, 0, nowMs, reservationKey } end

for i = 1, nCharge do
  redis.call('ZINCRBY', KEYS[firstCharge + i], cost, day)
end
used = used + cost
redis.call('HSET', reservationKey, 'signature', signature, 'state', 'pending')
redis.call('PEXPIRE', reservationKey, reservationTtlMs)
if useRequestId then
  redis.call('HSET', requestIdKey, 'signature', signature, 'used', used)
  redis.call('PEXPIRE', requestIdKey, requestIdTtlMs)
end
return { 1, 1, used, nowMs, signature }
