-- Compare-and-set of an entity's state: write only if its fence is still the one we read.
-- KEYS[1] entity hash   ARGV[1] expected fence ('' = entity did not exist)
-- ARGV[2] new fence     ARGV[3] state blob
-- Output snapshots (stream.state.entities.next_index is the same rule in Python): field 'c<slot>'
-- holds one save's entries; field 'ix' = '<slots made>|<free slots, each + ','>|<live chunks>',
-- a live chunk '<slot>:<first>:<last>:<count>;' in offset order. Only the index is read here, and
-- in the worker's case (a committed offset) only its head: chunks go from the front.
-- ARGV[4] chunks wholly below this offset go ('-1': none; 'r': all)
-- ARGV[5] then the oldest go while the rest holds this many entries (0: no limit)
-- ARGV[6] new entries (a new chunk)  ARGV[7] their number  ARGV[8], ARGV[9] their first, last offset
-- One write (HSET): a script with two writes is logged to the AOF as MULTI/EXEC, which Redis 7.0
-- refuses to load when the default user is off (the secured stack); so a gone chunk's field is
-- emptied (not deleted) and its slot listed as free for a later chunk.
local cur = redis.call('HMGET', KEYS[1], 'fence', 'ix')
if (cur[1] or '') ~= ARGV[1] then return 0 end
local count, max_count = tonumber(ARGV[7]), tonumber(ARGV[5])
local made, free, recs = 0, '', ''
if cur[2] then
  local p1 = string.find(cur[2], '|', 1, true)
  local p2 = string.find(cur[2], '|', p1 + 1, true)
  made, free, recs = tonumber(string.sub(cur[2], 1, p1 - 1)), string.sub(cur[2], p1 + 1, p2 - 1), string.sub(cur[2], p2 + 1)
end
local keep_from = -1
if ARGV[4] == 'r' then keep_from = math.huge else keep_from = tonumber(ARGV[4]) end
local total = nil
if max_count > 0 then
  total = count
  for c in string.gmatch(recs, '%d+:%d+:%d+:(%d+);') do total = total + tonumber(c) end
end
local pos, emptied = 1, {}
while pos <= #recs do
  local s, l, c, e = string.match(recs, '^(%d+):%d+:(%d+):(%d+)();', pos)
  if tonumber(l) >= keep_from and (total == nil or total - tonumber(c) < max_count) then break end
  if total then total = total - tonumber(c) end
  free = s .. ',' .. free
  emptied[#emptied + 1] = s  -- its field is emptied in the same HSET (memory back at once)
  pos = e + 1
end
recs = string.sub(recs, pos)
local slot = nil
if count > 0 then
  if free ~= '' then
    local comma = string.find(free, ',', 1, true)
    slot, free = string.sub(free, 1, comma - 1), string.sub(free, comma + 1)
  else
    slot, made = tostring(made), made + 1
  end
  recs = recs .. slot .. ':' .. ARGV[8] .. ':' .. ARGV[9] .. ':' .. ARGV[7] .. ';'
end
local args = {'fence', ARGV[2], 'blob', ARGV[3], 'ix', made .. '|' .. free .. '|' .. recs}
for _, s in ipairs(emptied) do
  if s ~= slot then args[#args + 1] = 'c' .. s; args[#args + 1] = '' end
end
if slot then args[#args + 1] = 'c' .. slot; args[#args + 1] = ARGV[6] end
redis.call('HSET', KEYS[1], unpack(args))
return 1
