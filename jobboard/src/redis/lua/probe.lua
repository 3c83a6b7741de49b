-- probe: what wait needs, read at one instant: whether a job is claimable
-- now, when the next job may become claimable (a running lease lapsing or
-- a scheduled job's time coming), the time, and the id of the newest event
-- (wait then blocks on the events stream after that id, so an event
-- written between this probe and the block is not missed).
--
-- A job is claimable when pending (not complete), not under a running
-- lease and not waiting for its not-before time. The leases zset holds
-- exactly the claimed jobs, scored by expiry; the scheduled zset holds
-- jobs posted (or reopened) with a not-before time ahead and no control
-- request, until claimed, requested or complete, scored by that time. A
-- job ahead in the scheduled zset was never claimed since, so the two
-- counts below never count one job twice:
-- claimable <=> ZCARD(pending) > ZCOUNT(leases, (now, +inf)
--                               + ZCOUNT(scheduled, (now, +inf).
--
-- KEYS: 1 pending zset, 2 leases zset, 3 events stream, 4 scheduled zset
-- ARGV: 1 now ('' = server time)
-- Returns {claimable (1 | 0), next lapse or due time (ms) or '', now,
--          last event id}.

local now = now_ms(ARGV[1])
local after = '(' .. int(now)
local waiting = redis.call('ZCOUNT', KEYS[2], after, '+inf')
  + redis.call('ZCOUNT', KEYS[4], after, '+inf')
local claimable = 0
if redis.call('ZCARD', KEYS[1]) > waiting then
  claimable = 1
end
local next_at = nil
for _, index in ipairs({ KEYS[2], KEYS[4] }) do
  local first = redis.call('ZRANGEBYSCORE', index, after, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  if #first > 0 then
    local at = tonumber(first[2])
    if not next_at or at < next_at then
      next_at = at
    end
  end
end
local next_lapse = ''
if next_at then
  -- Capped at 2^50 ms (35,000 years), which '%d' formats exactly.
  next_lapse = int(math.min(next_at, 2 ^ 50))
end
local last_id = '0-0'
local last = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)
if #last > 0 then
  last_id = last[1][1]
end
return { claimable, next_lapse, int(now), last_id }
