--[[
  settle.lua: apply the outcome of an admitted request exactly once.

  The charge written on admission stays unless this script moves it: empty units to
  empty_responses (still counted), failed units to failed_responses (refunded). Which
  metric moves where is decided in TypeScript (src/core/accounting.ts); this script
  proves the reservation is the one named and still pending, then applies the deltas.

  KEYS:
    KEYS[1]       reservation hash    tollgate:reservation:<id>
    KEYS[2..n]    usage sorted sets   incremented by the matching delta at the reservation's day

  ARGV:
    [1]    signature      the reservation's canonical string; must equal the stored one
    [2]    day            the member the charge was written to, "01".."31"
    [3]    keepMs         how long to keep the settled record, so a repeated settle is recognised
    [4..]  deltas         one integer per usage key, in KEYS order (negative moves a charge away)

  Reply: { status }
    status 1 SETTLED
    status 2 ALREADY_SETTLED   nothing written
    status 3 UNKNOWN           no such reservation (never made, or expired): nothing written
    status 4 MISMATCH          the stored signature differs: nothing written
    status 5 WRONG_TYPE        a key holds the wrong Redis type: nothing written
]]

local reservationKey = KEYS[1]
local signature = ARGV[1]
local day = ARGV[2]
local keepMs = tonumber(ARGV[3])

local function hasType(key, expected)
  local actual = redis.call('TYPE', key)['ok']
  return actual == expected or actual == 'none'
end

if not hasType(reservationKey, 'hash') then return { 5 } end
local stored = redis.call('HMGET', reservationKey, 'signature', 'state')
if not stored[1] then return { 3 } end
if stored[1] ~= signature then return { 4 } end
if stored[2] == 'settled' then return { 2 } end

for i = 2, #KEYS do
  if not hasType(KEYS[i], 'zset') then return { 5 } end
end
for i = 2, #KEYS do
  redis.call('ZINCRBY', KEYS[i], tonumber(ARGV[i + 2]), day)
end
redis.call('HSET', reservationKey, 'state', 'settled')
redis.call('PEXPIRE', reservationKey, keepMs)
return { 1 }
