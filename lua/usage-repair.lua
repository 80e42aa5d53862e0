--[[
  usage-repair.lua: remove one day member of a usage sorted set, only if it still holds the score
  an operator was shown (so a repair never removes a count that moved since it was listed).

  KEYS[1]  usage sorted set   user|org:<name>:<service_type>:<metric>:<YYYYMM>
  ARGV[1]  member             the day, "01".."31" (or whatever garbled member was listed)
  ARGV[2]  score              the score as ZRANGE WITHSCORES printed it

  Reply: { status }
    1 REMOVED    the member held that score and is gone
    2 CHANGED    the member is gone or holds another score: nothing written
    3 WRONG_TYPE the key is not a sorted set: nothing written
]]

local key = KEYS[1]
local member = ARGV[1]
local expected = ARGV[2]

local score = redis.pcall('ZSCORE', key, member)
if type(score) == 'table' and score.err then return { 3 } end
if score == false or score ~= expected then return { 2 } end
redis.call('ZREM', key, member)
return { 1 }
