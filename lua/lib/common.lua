--[[
  common.lua: helpers shared by decide.lua and settle.lua, stitched in front of each at load time
  (src/redis/scripts.ts), which also writes each STATUS.<NAME> as its number (src/redis/statuses.ts).
]]

-- Largest count a sorted-set score (a double) holds exactly: 2^53 - 1.
local MAX_COUNTER = 9007199254740991
-- Largest credit amount (millicredits) a balance or spent counter may hold.
local MAX_CREDITS = 1e15

-- A count as Redis stores it ("12", "1e+300", "-5", "1.5"): the number when it is a non-negative
-- integer Tollgate could have written, else nil.
local function countOf(raw)
  local value = tonumber(raw)
  if value == nil or value < 0 or value % 1 ~= 0 or value > MAX_COUNTER then return nil end
  return value
end

-- A credit counter field (plain digits only: Tollgate writes it with HINCRBY); nil when garbled.
local function creditCounter(raw)
  if not raw or raw == '' then return 0 end
  if not string.match(raw, '^%d+$') or #raw > 16 then return nil end
  local value = tonumber(raw)
  if value > MAX_CREDITS then return nil end
  return value
end

-- A read that refuses a key of the wrong type: returns the reply, or nil and marks the failure.
-- redis.pcall turns WRONGTYPE into a value, so the script can answer a status naming the key
-- before its first write instead of aborting.
local function read(...)
  local reply = redis.pcall(...)
  if type(reply) == 'table' and reply.err then return nil end
  return reply
end

-- An integer as Redis expects it in HINCRBY (no exponent notation for large values).
local function int(value)
  return string.format('%d', value)
end
