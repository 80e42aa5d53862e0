--[[
  move-home.lua: step 2 of moving a user between pools (docs/cluster.md, cluster key layout):
  write the user's new home and carry its own usage counters and live request ids into it,
  once. Every key is in the new pool's slot. The move marker written on the new home makes a
  re-run of the same move a no-op, so counters are never added twice.

  Used by src/redis/home-move.ts (`tollgate user set-org` / `leave-org`, the admin API).

  KEYS:
    KEYS[1]      the new home hash     rails:orgs:{org:<o>}:member:<u> (mode "member")
                                       or rails:users:{user:<u>} (mode "lone": the directory entry)
    KEYS[2..n]   usage sorted sets and request-id strings of the user in the new home

  ARGV[1] the move, cjson:
    mode     "member": KEYS[1] must not exist (unless this move made it);
             "lone": KEYS[1] must exist and its `organization` must be `from` (steps 2 and 3 together)
    from     the org the directory names now (mode "lone")
    marker   "<old pool tag>|<move id>", stored in field moved_from
    set      [[field, value], ...]  the decision fields (HSET)
    del      [field, ...]           fields removed (HDEL), before `set`
    adds     [[keyIndex, day, count], ...]   ZINCRBY count day on KEYS[keyIndex]
    ids      [[keyIndex, value, ttlMs], ...] SET KEYS[keyIndex] value PX ttlMs NX

  Reply: { status }
    1 DONE           written
    2 ALREADY_DONE   this move's marker is already there: nothing written
    3 EXISTS         mode "member" and another hash is already there: nothing written
    4 CHANGED        mode "lone" and the directory is gone or names another org: nothing written
    5 WRONG_TYPE     a key holds the wrong Redis type: nothing written
]]

local home = KEYS[1]
local move = cjson.decode(ARGV[1])

local homeType = redis.call('TYPE', home)['ok']
if homeType ~= 'hash' and homeType ~= 'none' then return { 5 } end
if redis.call('HGET', home, 'moved_from') == move.marker then return { 2 } end
if move.mode == 'member' then
  if homeType ~= 'none' then return { 3 } end
else
  if homeType == 'none' or redis.call('HGET', home, 'organization') ~= move.from then return { 4 } end
end
for _, add in ipairs(move.adds) do
  local kind = redis.call('TYPE', KEYS[add[1]])['ok']
  if kind ~= 'zset' and kind ~= 'none' then return { 5 } end
end

if #move.del > 0 then redis.call('HDEL', home, unpack(move.del)) end
for _, pair in ipairs(move.set) do
  redis.call('HSET', home, pair[1], pair[2])
end
redis.call('HSET', home, 'moved_from', move.marker)
for _, add in ipairs(move.adds) do
  redis.call('ZINCRBY', KEYS[add[1]], add[3], add[2])
end
for _, id in ipairs(move.ids) do
  redis.call('SET', KEYS[id[1]], id[2], 'PX', id[3], 'NX')
end
return { 1 }
