-- Read many entities in one command: for each key, its {fence, blob} (nil where absent).
-- KEYS = entity hashes. Read-only: nothing is written, replicated or logged to the AOF.
local out = {}
for i, key in ipairs(KEYS) do
  out[i] = redis.call('HMGET', key, 'fence', 'blob')
end
return out
