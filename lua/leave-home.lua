--[[
  leave-home.lua: the last step of moving a user between pools (docs/cluster.md, cluster key
  layout): retire the old home once the new one exists, and drop the user's own counters of
  the months the move carried into the new home. Every key is in the old pool's slot. Runs
  only while the old home is frozen for this very move, so a re-run changes nothing.

  Used by src/redis/home-move.ts.

  KEYS:
    KEYS[1]      the old home hash     rails:orgs:{org:<o>}:member:<u>, or rails:users:{user:<u>}
                                       (a user in no org: its directory entry)
    KEYS[2..n]   the user's usage sorted sets of the carried months in the old home (deleted)

  ARGV[1] the step, cjson:
    tag      the `moving_to` the old home must hold (the new pool's tag)
    id       the `move_id` it must hold
    mode     "delete": the old home is a member hash, deleted whole;
             "strip": the old home is the directory entry: `del` fields go, `set` fields are
             written (steps 3 and 4 together: the directory names the new org)
    del      [field, ...]
    set      [[field, value], ...]

  Reply: { status }
    1 DONE        written
    2 NOT_MOVING  the old home is gone or not frozen for this move: nothing written
    3 WRONG_TYPE  KEYS[1] is not a hash: nothing written
]]

local home = KEYS[1]
local step = cjson.decode(ARGV[1])

local homeType = redis.call('TYPE', home)['ok']
if homeType == 'none' then return { 2 } end
if homeType ~= 'hash' then return { 3 } end
if redis.call('HGET', home, 'moving_to') ~= step.tag or redis.call('HGET', home, 'move_id') ~= step.id then return { 2 } end

for i = 2, #KEYS do
  redis.call('DEL', KEYS[i])
end
if step.mode == 'delete' then
  redis.call('DEL', home)
else
  if #step.del > 0 then redis.call('HDEL', home, unpack(step.del)) end
  for _, pair in ipairs(step.set) do
    redis.call('HSET', home, pair[1], pair[2])
  end
end
return { 1 }
