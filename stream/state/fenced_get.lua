-- Read many entities in one command: for each key, its {fence, blob, ix} (nil where absent; ix is
-- the snapshot index a save builds on). Read-only: nothing is written, replicated or logged to the AOF.
local out = {}
for i, key in ipairs(KEYS) do
  out[i] = redis.call('HMGET', key, 'fence', 'blob', 'ix')
end
return out
