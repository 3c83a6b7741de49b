-- post: creates a job, gives it the next sequence and the posting time,
-- indexes it for iterjobs and tells waiters. All or nothing.
--
-- KEYS: 1 job hash, 2 sequence counter, 3 pending zset, 4 events stream
-- ARGV: 1 now ('' = server time), 2 id, 3 name, 4 details (JSON),
--       5 logbook ('' = none), 6 flow_detail ('' = none), 7 priority,
--       8 pending score (-priority), 9 events stream length cap
-- Returns {now, HGETALL of the job}. A job that exists already (a retry
-- of this very post after a lost reply: ids are fresh v4 uuids) is
-- returned as it is, not posted twice.

local now = now_ms(ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 1 then
  return { int(now), redis.call('HGETALL', KEYS[1]) }
end
local seq = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1],
  'id', ARGV[2], 'name', ARGV[3], 'details', ARGV[4],
  'logbook', ARGV[5], 'flow_detail', ARGV[6], 'priority', ARGV[7],
  'created_at', int(now), 'sequence', int(seq),
  'state', 'UNCLAIMED', 'epoch', '0')
redis.call('ZADD', KEYS[3], ARGV[8], member(seq, ARGV[2]))
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[9], '*', 'post', ARGV[2])
return { int(now), redis.call('HGETALL', KEYS[1]) }
