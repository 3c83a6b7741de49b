-- probe: what wait needs, read at one instant: whether a job is claimable
-- now, when the next running lease lapses, the time, and the id of the
-- newest event (wait then blocks on the events stream after that id, so an
-- event written between this probe and the block is not missed).
--
-- A job is claimable when pending (not complete) and not under a running
-- lease; the leases zset holds exactly the claimed jobs, scored by expiry,
-- so: claimable <=> ZCARD(pending) > ZCOUNT(leases, (now, +inf).
--
-- KEYS: 1 pending zset, 2 leases zset, 3 events stream
-- ARGV: 1 now ('' = server time)
-- Returns {claimable (1 | 0), next lapse (ms) or '', now, last event id}.

local now = now_ms(ARGV[1])
local running = redis.call('ZCOUNT', KEYS[2], '(' .. int(now), '+inf')
local claimable = 0
if redis.call('ZCARD', KEYS[1]) > running then
  claimable = 1
end
local next_lapse = ''
local first = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. int(now), '+inf',
  'WITHSCORES', 'LIMIT', 0, 1)
if #first > 0 then
  next_lapse = first[2]
end
local last_id = '0-0'
local last = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)
if #last > 0 then
  last_id = last[1][1]
end
return { claimable, next_lapse, int(now), last_id }
