-- Compare-and-set of an entity's state: write only if its fence is still the one we read.
-- KEYS[1] entity hash   ARGV[1] expected fence ('' = entity did not exist)
-- ARGV[2] new fence     ARGV[3] state blob
-- The output snapshot log (field 'snap', entries '<offset>:<length>:<text>' in offset order;
-- stream.state.entities.merge_log is the same rule in Python):
-- ARGV[4] keep the stored entries at offsets >= this ('-1': all; 'r': none, replace the log)
-- ARGV[5] then keep at most this many entries in all (0: no limit)
-- ARGV[6] new entries, appended   ARGV[7] their number
-- One write (HSET): a script with two writes is logged to the AOF as MULTI/EXEC, which Redis 7.0
-- refuses to load when the default user is off (the secured stack).
local cur = redis.call('HMGET', KEYS[1], 'fence', 'snap')
if (cur[1] or '') ~= ARGV[1] then return 0 end
local log = ARGV[6]
local old = cur[2]
if ARGV[4] ~= 'r' and old and #old > 0 then
  local keep_from, max_count = tonumber(ARGV[4]), tonumber(ARGV[5])
  local starts = {}
  local pos, n = 1, #old
  while pos <= n do
    local c1 = string.find(old, ':', pos, true)
    if tonumber(string.sub(old, pos, c1 - 1)) >= keep_from then
      starts[#starts + 1] = pos
      if max_count == 0 then break end  -- offsets ascend: the rest is kept, no need to count it
    end
    local c2 = string.find(old, ':', c1 + 1, true)
    pos = c2 + 1 + tonumber(string.sub(old, c1 + 1, c2 - 1))
  end
  local first = 1
  if max_count > 0 and #starts + tonumber(ARGV[7]) > max_count then
    first = #starts + tonumber(ARGV[7]) - max_count + 1
  end
  if first <= #starts then log = string.sub(old, starts[first]) .. log end
end
redis.call('HSET', KEYS[1], 'fence', ARGV[2], 'blob', ARGV[3], 'snap', log)
return 1
