-- read: one job and the time it is read at, in one step (so a reader sees
-- a lapsed lease exactly as claim would).
--
-- KEYS: 1 job hash
-- ARGV: 1 now ('' = server time)
-- Returns {now, HGETALL of the job} (an empty list when it does not exist).

local now = now_ms(ARGV[1])
return { int(now), redis.call('HGETALL', KEYS[1]) }
