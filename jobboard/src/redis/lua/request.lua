-- request: records a control request (stop or cancel) on a job that is
-- not complete, keeping the strongest made (cancel over stop); drops the
-- job from the scheduled index (a requested job is claimable at once, so
-- a conductor can settle it) and tells waiters. Running it twice is
-- running it once, so a retry needs no op token.
--
-- KEYS: 1 job hash, 2 scheduled zset, 3 events stream
-- ARGV: 1 now ('' = server time), 2 id, 3 control ('stop' | 'cancel'),
--       4 events stream length cap
-- Returns {'ok', now, HGETALL of the job} | {'not_found'} | {'complete'}.

local now = now_ms(ARGV[1])
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  return { 'not_found' }
end
if state == 'COMPLETE' then
  return { 'complete' }
end
local control = ARGV[3]
if redis.call('HGET', KEYS[1], 'control') == 'cancel' then
  control = 'cancel'
end
redis.call('HSET', KEYS[1], 'control', control)
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', 'request', ARGV[2])
return { 'ok', int(now), redis.call('HGETALL', KEYS[1]) }
