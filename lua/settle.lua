--[[
  settle.lua: apply the outcome of an admitted request exactly once.

  The charge written on admission stays unless this script moves it: empty units to
  empty_responses (still counted), failed units to failed_responses (refunded). Which
  metric moves where is decided in TypeScript (src/core/accounting.ts); this script
  proves the reservation is the one named and still pending, then applies the deltas.
  When decide.lua charged credits (it stores the price as `perUnit` on the reservation),
  failed units refund theirs: back to the org balance, off the user's spent counter and
  off both credit ledgers. Amounts are integers in millicredits.

  KEYS:
    KEYS[1]               reservation hash    tollgate:reservation:<id>
    next nUsage keys      usage sorted sets   incremented by the matching delta at the reservation's day
                          (nUsage = #KEYS - 1 - nCredit)
    next nCredit keys     (0 or 4, for an org member)
                          user config hash    rails:users:<user>   spent counter, decremented (not below 0)
                          org config hash     rails:orgs:<org>     balance, incremented
                          user credit ledger  tollgate:credits:user:<user>:<service_type>:<YYYYMM>
                          org credit ledger   tollgate:credits:org:<org>:<service_type>:<YYYYMM>

  ARGV:
    [1]    signature      the reservation's canonical string; must equal the stored one
    [2]    day            the member the charge was written to, "01".."31"
    [3]    keepMs         how long to keep the settled record, so a repeated settle is recognised
    [4]    nCredit        0 or 4
    [5]    failedUnits    units refunded; their credits are refunded at the stored perUnit
    [6]    balanceField   org hash field holding the balance (millicredits)
    [7]    spentField     user hash field holding the spent counter (millicredits)
    [8..]  deltas         one integer per usage key, in KEYS order (negative moves a charge away)

  Reply: { status }
    status 1 SETTLED
    status 2 ALREADY_SETTLED   nothing written
    status 3 UNKNOWN           no such reservation (never made, or expired): nothing written
    status 4 MISMATCH          the stored signature differs: nothing written
    status 5 WRONG_TYPE        a key holds the wrong Redis type: nothing written
    status 6 BAD_CREDITS       a credit to refund meets a balance or spent counter that is not an
                               integer in [0, 10^15]: nothing written
]]

local reservationKey = KEYS[1]
local signature = ARGV[1]
local day = ARGV[2]
local keepMs = tonumber(ARGV[3])
local nCredit = tonumber(ARGV[4])
local failedUnits = tonumber(ARGV[5])
local balanceField = ARGV[6]
local spentField = ARGV[7]
local nUsage = #KEYS - 1 - nCredit

local function hasType(key, expected)
  local actual = redis.call('TYPE', key)['ok']
  return actual == expected or actual == 'none'
end

local function counter(key, field)
  local raw = redis.call('HGET', key, field)
  if not raw or raw == '' then return 0 end
  if not string.match(raw, '^%d+$') or #raw > 16 then return nil end
  local value = tonumber(raw)
  if value > 1e15 then return nil end
  return value
end

if not hasType(reservationKey, 'hash') then return { 5 } end
local stored = redis.call('HMGET', reservationKey, 'signature', 'state', 'perUnit')
if not stored[1] then return { 3 } end
if stored[1] ~= signature then return { 4 } end
if stored[2] == 'settled' then return { 2 } end

for i = 2, 1 + nUsage do
  if not hasType(KEYS[i], 'zset') then return { 5 } end
end

local refund = 0
if nCredit == 4 and stored[3] then refund = failedUnits * tonumber(stored[3]) end
local userCredits = KEYS[2 + nUsage]
local orgCredits = KEYS[3 + nUsage]
local spent = 0
if refund > 0 then
  if not hasType(userCredits, 'hash') or not hasType(orgCredits, 'hash') then return { 5 } end
  for i = 4, 5 do
    if not hasType(KEYS[i + nUsage], 'zset') then return { 5 } end
  end
  if counter(orgCredits, balanceField) == nil then return { 6 } end
  spent = counter(userCredits, spentField)
  if spent == nil then return { 6 } end
end

for i = 2, 1 + nUsage do
  redis.call('ZINCRBY', KEYS[i], tonumber(ARGV[i + 6]), day)
end
if refund > 0 then
  -- A hash deleted since the admission is not recreated with a lone counter in it.
  if redis.call('EXISTS', orgCredits) == 1 then
    redis.call('HINCRBY', orgCredits, balanceField, string.format('%d', refund))
  end
  -- An allocation set since the admission restarted the counter: never let it go below 0.
  if redis.call('EXISTS', userCredits) == 1 then
    redis.call('HSET', userCredits, spentField, string.format('%d', math.max(0, spent - refund)))
  end
  redis.call('ZINCRBY', KEYS[4 + nUsage], -refund, day)
  redis.call('ZINCRBY', KEYS[5 + nUsage], -refund, day)
end
redis.call('HSET', reservationKey, 'state', 'settled')
redis.call('PEXPIRE', reservationKey, keepMs)
return { 1 }
