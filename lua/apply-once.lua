--[[
  apply-once.lua: apply a batch of usage increments exactly once, marked by an entry id.

  Fail-open journals (src/http/journal.ts) record what a process admitted while Redis was
  away and write it back here when Redis returns. A write-back repeated after a lost reply
  finds the marker and changes nothing. Every key's type is checked before the first write.

  KEYS:
    KEYS[1]       marker string       tollgate:journal:<entryId>   set when the batch is applied
    KEYS[2..n]    usage sorted sets   incremented by the matching delta at the day member

  ARGV:
    [1]    day          the member to increment, "01".."31"
    [2]    markerTtlMs  how long the marker is kept
    [3..]  deltas       one integer per usage key, in KEYS order

  Reply: { status }
    status 1 APPLIED
    status 2 ALREADY_APPLIED   the marker exists: nothing written
    status 5 WRONG_TYPE        a key holds the wrong Redis type: nothing written
]]

local marker = KEYS[1]
local day = ARGV[1]
local markerTtlMs = tonumber(ARGV[2])

if redis.call('EXISTS', marker) == 1 then return { 2 } end
for i = 2, #KEYS do
  local kind = redis.call('TYPE', KEYS[i])['ok']
  if kind ~= 'zset' and kind ~= 'none' then return { 5 } end
end
for i = 2, #KEYS do
  redis.call('ZINCRBY', KEYS[i], tonumber(ARGV[i + 1]), day)
end
redis.call('SET', marker, '1', 'PX', markerTtlMs)
return { 1 }
