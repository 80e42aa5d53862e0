--[[
  config-write.lua: change one config hash atomically, only if things are as the caller saw them.

  Operators' changes (src/admin/operations.ts) go through this script so that a check and the
  write it guards cannot be split by another client: a hash deleted in between is not
  re-created half-empty, and a member who left its org is not handed an allocation. Every
  check runs before the first write, so a refused change writes nothing.

  KEYS:
    KEYS[1]      the config hash to change     rails:users:<user> or rails:orgs:<org>
    KEYS[2..n]   config hashes that must exist (the org a user joins or is allocated from)

  ARGV:
    [1]  mode      "update": KEYS[1] must exist; "create": KEYS[1] must not exist
    [2]  nExpect   then nExpect pairs: field, "=" .. value, or "!" for a field that must be missing
    next nSet      then nSet pairs: field, value                    (HSET)
    next nDel      then nDel fields                                 (HDEL)
    next nIncr     then nIncr pairs: field, integer delta           (HINCRBY); the field must be
                   missing, "" or plain digits, and the result must stay in [0, 10^15]

  Reply: { status, index }
    status 1 DONE          index = how many fields the HDEL part removed
    status 2 MISSING       KEYS[index] does not exist (index 1 is the target). Nothing written.
    status 3 EXISTS        mode "create" and KEYS[1] exists. Nothing written.
    status 4 CHANGED       the index-th expected field differs. Nothing written.
    status 5 WRONG_TYPE    KEYS[index] is not a hash. Nothing written.
    status 6 BAD_COUNTER   the index-th incremented field is not a count, or would leave [0, 10^15].
                           Nothing written.
]]

local target = KEYS[1]
local create = ARGV[1] == 'create'

for i = 1, #KEYS do
  local kind = redis.call('TYPE', KEYS[i])['ok']
  if kind ~= 'hash' and kind ~= 'none' then return { 5, i } end
end

local exists = redis.call('EXISTS', target) == 1
if create and exists then return { 3, 1 } end
if not create and not exists then return { 2, 1 } end
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then return { 2, i } end
end

local argIndex = 2
local nExpect = tonumber(ARGV[argIndex])
argIndex = argIndex + 1
for i = 1, nExpect do
  local value = redis.call('HGET', target, ARGV[argIndex])
  local encoded = value and ('=' .. value) or '!'
  if encoded ~= ARGV[argIndex + 1] then return { 4, i } end
  argIndex = argIndex + 2
end

local nSet = tonumber(ARGV[argIndex])
local setStart = argIndex + 1
argIndex = setStart + 2 * nSet
local nDel = tonumber(ARGV[argIndex])
local delStart = argIndex + 1
argIndex = delStart + nDel
local nIncr = tonumber(ARGV[argIndex])
local incrStart = argIndex + 1

-- Counters are checked before any write: HINCRBY would fail mid-script on a garbled value.
for i = 1, nIncr do
  local at = incrStart + 2 * (i - 1)
  local raw = redis.call('HGET', target, ARGV[at])
  if raw and raw ~= '' and (not string.match(raw, '^%d+$') or #raw > 16) then return { 6, i } end
  local result = (tonumber(raw) or 0) + tonumber(ARGV[at + 1])
  if result < 0 or result > 1e15 then return { 6, i } end
end

for i = 1, nSet do
  local at = setStart + 2 * (i - 1)
  redis.call('HSET', target, ARGV[at], ARGV[at + 1])
end
local deleted = 0
if nDel > 0 then deleted = redis.call('HDEL', target, unpack(ARGV, delStart, delStart + nDel - 1)) end
for i = 1, nIncr do
  local at = incrStart + 2 * (i - 1)
  redis.call('HINCRBY', target, ARGV[at], ARGV[at + 1])
end
return { 1, deleted }
