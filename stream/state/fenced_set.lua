-- Compare-and-set of an entity's state: write only if its fence is still the one we read.
-- KEYS[1] entity hash   ARGV[1] expected fence ('' = entity did not exist)
-- ARGV[2] new fence     ARGV[3] state blob
-- ARGV[4] retention in ms (an idle entity expires this long after its last update; 0 = never)
local cur = redis.call('HGET', KEYS[1], 'fence')
if (cur or '') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'fence', ARGV[2], 'blob', ARGV[3])
local ttl = tonumber(ARGV[4] or '0')
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
