-- Compare-and-set of an entity's state: write only if its fence is still the one we read.
-- KEYS[1] entity hash   ARGV[1] expected fence ('' = entity did not exist)
-- ARGV[2] new fence     ARGV[3] state blob
local cur = redis.call('HGET', KEYS[1], 'fence')
if (cur or '') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'fence', ARGV[2], 'blob', ARGV[3])
return 1
