-- Compare-and-set of an entity's state: write only if its fence is still the one we read.
-- KEYS[1] entity hash   ARGV[1] expected fence ('' = entity did not exist)
-- ARGV[2] new fence     ARGV[3] state blob
-- Output snapshots (stream.state.entities.next_index is the same rule in Python): field 'ix'
-- lists the live chunks '<slot>:<first>:<last>:<count>;' in offset order, field 'c<slot>' holds
-- one save's entries. Only the small index is read here: a chunk is never read or copied again.
-- ARGV[4] chunks wholly below this offset go ('-1': none; 'r': all)
-- ARGV[5] then the oldest go while the rest holds this many entries (0: no limit)
-- ARGV[6] new entries (a new chunk)  ARGV[7] their number  ARGV[8], ARGV[9] their first, last offset
-- One write (HSET): a script with two writes is logged to the AOF as MULTI/EXEC, which Redis 7.0
-- refuses to load when the default user is off (the secured stack); so a gone chunk's field is
-- left to be overwritten by a later chunk of the same slot, not deleted.
local cur = redis.call('HMGET', KEYS[1], 'fence', 'ix')
if (cur[1] or '') ~= ARGV[1] then return 0 end
local count, max_count = tonumber(ARGV[7]), tonumber(ARGV[5])
local live = {}
if ARGV[4] ~= 'r' and cur[2] then
  local keep_from = tonumber(ARGV[4])
  for s, f, l, c in string.gmatch(cur[2], '(%d+):(%d+):(%d+):(%d+);') do
    if tonumber(l) >= keep_from then live[#live + 1] = {s, f, l, c} end
  end
end
local first = 1
if max_count > 0 then
  local total = count
  for i = 1, #live do total = total + tonumber(live[i][4]) end
  while first <= #live and total - tonumber(live[first][4]) >= max_count do
    total = total - tonumber(live[first][4])
    first = first + 1
  end
end
local ix, used = {}, {}
for i = first, #live do
  ix[#ix + 1] = table.concat(live[i], ':') .. ';'
  used[tonumber(live[i][1])] = true
end
if count > 0 then
  local slot = 0
  while used[slot] do slot = slot + 1 end
  ix[#ix + 1] = slot .. ':' .. ARGV[8] .. ':' .. ARGV[9] .. ':' .. ARGV[7] .. ';'
  redis.call('HSET', KEYS[1], 'fence', ARGV[2], 'blob', ARGV[3], 'ix', table.concat(ix), 'c' .. slot, ARGV[6])
else
  redis.call('HSET', KEYS[1], 'fence', ARGV[2], 'blob', ARGV[3], 'ix', table.concat(ix))
end
return 1
