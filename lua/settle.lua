--[[
  settle.lua: apply the outcomes of admitted requests, each exactly once, several per call.

  The charge written on admission stays unless this script moves it: empty units to
  empty_responses (still counted), failed units to failed_responses (refunded). Which metric moves
  where is decided in TypeScript (src/core/accounting.ts); this script proves each reservation is
  the one named and still pending, then applies its deltas and marks it settled ("s"). When
  decide.lua charged credits (the pending value carries the price per unit), failed units refund
  theirs: back to the org balance, off the user's spent counter and off both credit ledgers.
  Entries are independent: one refused entry writes nothing and does not stop the others.

  KEYS: every key the entries name, each once; entries refer to them by index.

  ARGV[1] entries (cjson), each:
    b      index of the reservation bucket hash (tollgate:rsv:...)
    f      the reservation's field in it
    p      the pending value it must hold: "p<cost>:<check>" (a ":<perUnit>" suffix is allowed)
    day    the member the charge was written to, "01".."31"
    u      [{keyIndex, delta}]  usage sorted sets, delta an integer (negative moves a charge away)
    fail   units refunded as failed
    cr     absent, or { user hash index, org hash index, user ledger index, org ledger index,
           balance field, spent field } for an org member

  Reply: one STATUS per entry, in order (src/redis/statuses.ts):
    SETTLED, ALREADY_SETTLED, UNKNOWN_RESERVATION (never made, or past its settle window),
    MISMATCH (the pending value differs: another reservation), WRONG_TYPE, BAD_COUNTER
    (a credit counter to refund into is garbled). Nothing of an entry is written unless SETTLED.
]]

local entries = cjson.decode(ARGV[1])
local replies = {}

local function settleOne(entry)
  local bucket = KEYS[entry.b]
  local stored = read('HGET', bucket, entry.f)
  if stored == nil then return STATUS.WRONG_TYPE end
  if stored == false then return STATUS.UNKNOWN_RESERVATION end
  if stored == 's' then return STATUS.ALREADY_SETTLED end
  local perUnit = nil
  if stored ~= entry.p then
    if string.sub(stored, 1, #entry.p + 1) ~= entry.p .. ':' then return STATUS.MISMATCH end
    perUnit = tonumber(string.sub(stored, #entry.p + 2))
  end

  -- A failing read refuses the entry before its first write.
  for _, usage in ipairs(entry.u) do
    if read('ZSCORE', KEYS[usage[1]], entry.day) == nil then return STATUS.WRONG_TYPE end
  end
  local refund = 0
  local cr = entry.cr
  if cr and perUnit then refund = entry.fail * perUnit end
  local spent = 0
  if refund > 0 then
    local balanceRaw = read('HGET', KEYS[cr[2]], cr[5])
    local spentRaw = read('HGET', KEYS[cr[1]], cr[6])
    if balanceRaw == nil or spentRaw == nil then return STATUS.WRONG_TYPE end
    for i = 3, 4 do
      if read('ZSCORE', KEYS[cr[i]], entry.day) == nil then return STATUS.WRONG_TYPE end
    end
    if creditCounter(balanceRaw) == nil then return STATUS.BAD_COUNTER end
    spent = creditCounter(spentRaw)
    if spent == nil then return STATUS.BAD_COUNTER end
  end

  for _, usage in ipairs(entry.u) do
    local key = KEYS[usage[1]]
    local after = tonumber(redis.call('ZINCRBY', key, usage[2], entry.day))
    -- A charge moved away entirely leaves no 0-score member behind.
    if after == 0 and usage[2] < 0 then redis.call('ZREM', key, entry.day) end
  end
  if refund > 0 then
    -- A hash deleted since the admission is not recreated with a lone counter in it.
    if redis.call('EXISTS', KEYS[cr[2]]) == 1 then redis.call('HINCRBY', KEYS[cr[2]], cr[5], int(refund)) end
    -- An allocation set since the admission restarted the counter: never let it go below 0.
    if redis.call('EXISTS', KEYS[cr[1]]) == 1 then redis.call('HSET', KEYS[cr[1]], cr[6], int(math.max(0, spent - refund))) end
    redis.call('ZINCRBY', KEYS[cr[3]], -refund, entry.day)
    redis.call('ZINCRBY', KEYS[cr[4]], -refund, entry.day)
  end
  redis.call('HSET', bucket, entry.f, 's')
  return STATUS.SETTLED
end

for i, entry in ipairs(entries) do
  replies[i] = settleOne(entry)
end
return replies
