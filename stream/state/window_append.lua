-- Append one tick record to a symbol's window string unless it is already there (redelivery),
-- trim the history, and return the `length` records ending at this tick. One round trip.
-- KEYS[1]  window key
-- ARGV[1]  packed record (28 bytes: offset i64, ts i64, price f64, partition i32, little-endian)
-- ARGV[2]  partition  ARGV[3] offset  ARGV[4] window length (records)  ARGV[5] records to keep
-- ARGV[6]  tick ts (ms)
-- Returns the window bytes; nil when a redelivered tick is older than the kept history;
-- -1 when a new tick is older than the symbol's last tick (out of order: not appended).
local R = 28
local key = KEYS[1]
local part, off = tonumber(ARGV[2]), tonumber(ARGV[3])
local length, keep = tonumber(ARGV[4]), tonumber(ARGV[5])
local ts = tonumber(ARGV[6])
local size = redis.call('STRLEN', key)
local n = size / R
local pos = -1
if n > 0 then
  local last = redis.call('GETRANGE', key, size - R, size - 1)
  local loff = struct.unpack('<i8', last)
  local lpart = struct.unpack('<i4', string.sub(last, 25, 28))
  if lpart == part and off <= loff then
    -- redelivered: find it (scan back from the newest record)
    local i = n - 1
    while i >= 0 do
      local o = struct.unpack('<i8', redis.call('GETRANGE', key, i * R, i * R + 7))
      if o == off then pos = i; break end
      if o < off then break end
      i = i - 1
    end
    if pos < 0 then return false end  -- trimmed away: cannot reproduce this window
  elseif ts < struct.unpack('<i8', string.sub(last, 9, 16)) then
    return -1
  end
end
if pos < 0 then
  redis.call('APPEND', key, ARGV[1])
  n = n + 1
  pos = n - 1
  if n > 2 * keep then  -- amortised trim: rewrite once every `keep` appends
    local cut = n - keep
    redis.call('SET', key, redis.call('GETRANGE', key, cut * R, -1))
    pos = pos - cut
  end
end
local first = pos - length + 1
if first < 0 then first = 0 end
return redis.call('GETRANGE', key, first * R, (pos + 1) * R - 1)
