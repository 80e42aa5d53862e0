--[[
  adjust-usage.lua: an operator credits back units of today's usage, and the adjustment is audited.

  Used by src/admin/operations.ts (`tollgate user adjust-usage`). The caller has checked that
  the user's cycle holds at least as many counted units; this script re-checks today's keys'
  types and writes the decrements and the audit entry in one atomic step.

  KEYS:
    KEYS[1]       audit list          tollgate:adjustments:<user>   newest entry first, capped
    KEYS[2..n]    usage sorted sets   the charged metric of the user (and of its org's pool)

  ARGV:
    [1]  day        the member to decrement, "01".."31" (today, UTC, server clock)
    [2]  units      positive integer, subtracted from each usage key's day member
    [3]  entry      the audit entry, a JSON string
    [4]  maxEntries how many audit entries to keep

  Reply: { status }
    status 1 DONE
    status 5 WRONG_TYPE   a key holds the wrong Redis type: nothing written
]]

local audit = KEYS[1]
local day = ARGV[1]
local units = tonumber(ARGV[2])
local entry = ARGV[3]
local maxEntries = tonumber(ARGV[4])

local auditType = redis.call('TYPE', audit)['ok']
if auditType ~= 'list' and auditType ~= 'none' then return { 5 } end
for i = 2, #KEYS do
  local kind = redis.call('TYPE', KEYS[i])['ok']
  if kind ~= 'zset' and kind ~= 'none' then return { 5 } end
end
for i = 2, #KEYS do
  redis.call('ZINCRBY', KEYS[i], -units, day)
end
redis.call('LPUSH', audit, entry)
redis.call('LTRIM', audit, 0, maxEntries - 1)
return { 1 }
