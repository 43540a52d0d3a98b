-- Compare-and-set of an entity's state: write only if its fence is still the one we read.
-- KEYS[1] entity hash   ARGV[1] expected fence ('' = entity did not exist)
-- ARGV[2] new fence     ARGV[3] state blob   ARGV[4] new snapshot index ('ix')
-- ARGV[5..] chunk field, value pairs: gone chunks emptied, then the new chunk.
-- The client computes the index (stream.state.entities.save_fields) from the one it loaded with
-- the fence: the index changes only with the fence, so an unchanged fence means an unchanged index,
-- and the script does no string work (parsing the index here cost Redis ~6-8 us per save).
-- One write (HSET): a script with two writes is logged to the AOF as MULTI/EXEC, which Redis 7.0
-- refuses to load when the default user is off (the secured stack); so a gone chunk's field is
-- emptied (not deleted) and its slot listed as free for a later chunk.
if (redis.call('HGET', KEYS[1], 'fence') or '') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'fence', ARGV[2], 'blob', ARGV[3], 'ix', ARGV[4], unpack(ARGV, 5))
return 1
