--[[
  apply-once.lua: apply a batch of fail-open journal entries, each exactly once, marked by its entry id.

  Fail-open journals (src/fail-open/journal.ts) record what a process admitted while Redis was
  away and write it back here when Redis returns, many entries per call. An entry whose marker
  exists was written before (a write-back repeated after a lost reply) and changes nothing.
  Every key of an entry has its type checked before the entry's first write: an entry meeting a
  key of the wrong type writes nothing (its marker included); the other entries still apply.

  KEYS:
    every key of the batch, each once: the entries' markers (strings, tollgate:journal:<id>)
    and the usage sorted sets they increment. Entries refer to them by index.

  ARGV:
    [1]  bag (JSON)  { "ttl": markerTtlMs,
                       "entries": [ { "m": marker key index, "d": day member "01".."31",
                                      "k": [usage key index, ...], "v": [delta, ...] }, ... ] }
                     deltas are integer strings, one per usage key index, in the same order.

  Reply: one status per entry, in entry order
    status 1 APPLIED
    status 2 ALREADY_APPLIED   the marker exists: nothing written
    status 5 WRONG_TYPE        a key holds the wrong Redis type: nothing of this entry written
]]

local bag = cjson.decode(ARGV[1])
local markerTtlMs = tonumber(bag.ttl)
local reply = {}

for n, entry in ipairs(bag.entries) do
  local marker = KEYS[entry.m]
  local status = 1
  if redis.call('EXISTS', marker) == 1 then
    status = 2
  else
    for _, index in ipairs(entry.k) do
      local kind = redis.call('TYPE', KEYS[index])['ok']
      if kind ~= 'zset' and kind ~= 'none' then
        status = 5
        break
      end
    end
  end
  if status == 1 then
    for j, index in ipairs(entry.k) do
      redis.call('ZINCRBY', KEYS[index], entry.v[j], entry.d)
    end
    redis.call('SET', marker, '1', 'PX', markerTtlMs)
  end
  reply[n] = status
end

return reply
