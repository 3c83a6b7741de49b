-- purge: removes up to a batch of complete jobs that the retention no
-- longer keeps, oldest completion first, and returns them. Only jobs in
-- the complete index whose hash says COMPLETE are removed: a claimed or
-- unclaimed job is never touched.
--
-- The removed jobs are also kept for a minute under KEYS[2] (named after
-- the call's op token), so that a retry of this very call after a lost
-- reply returns them again instead of losing them.
--
-- Each removed job's execution key (and uniqueness key, should one still
-- name it) is freed with it.
--
-- KEYS: 1 complete zset, 2 purged list of this call, 3 keys hash,
--       4 unique hash, 5 events stream
-- ARGV: 1 now ('' = server time), 2 job key prefix ('<prefix>:job:'),
--       3 mode ('for' | 'last'), 4 age (ms) for 'for' | count for 'last',
--       5 batch size, 6 events stream length cap
-- Returns a list of the removed jobs, each its HGETALL encoded as a JSON
-- array of strings.

local now = now_ms(ARGV[1])
if redis.call('EXISTS', KEYS[2]) == 1 then
  return redis.call('LRANGE', KEYS[2], 0, -1)
end
local batch = tonumber(ARGV[5])
local ids
if ARGV[3] == 'for' then
  ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', int(now - tonumber(ARGV[4])),
    'LIMIT', 0, batch)
else
  local excess = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[4])
  if excess <= 0 then
    return {}
  end
  ids = redis.call('ZRANGE', KEYS[1], 0, math.min(excess, batch) - 1)
end
local out = {}
for _, id in ipairs(ids) do
  local key = ARGV[2] .. id
  local state = redis.call('HGET', key, 'state')
  if state == 'COMPLETE' then
    out[#out + 1] = cjson.encode(redis.call('HGETALL', key))
    local k = redis.call('HMGET', key, 'key', 'unique_key')
    unindex(KEYS[3], k[1], id)
    unindex(KEYS[4], k[2], id)
    redis.call('DEL', key)
    redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[6], '*', 'remove', id)
  end
  -- Gone, or (never written so) not complete: only the index entry goes.
  redis.call('ZREM', KEYS[1], id)
end
if #out > 0 then
  redis.call('RPUSH', KEYS[2], unpack(out))
  redis.call('PEXPIRE', KEYS[2], 60000)
end
return out
