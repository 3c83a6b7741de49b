-- complete (consume and trash): the current claim's owner marks its job
-- complete, with the outcome: consumed (its flow ran to its end) or trashed
-- (it can never run, with the reason). The job leaves the pending and lease
-- indexes and enters the complete index (scored by completion time, for
-- purge), and frees its uniqueness key, in one step.
--
-- KEYS: 1 job hash, 2 pending zset, 3 leases zset, 4 complete zset,
--       5 unique hash, 6 scheduled zset, 7 events stream
-- ARGV: 1 now ('' = server time), 2 id, 3 owner, 4 epoch, 5 op token,
--       6 outcome (JSON: consumed, or trashed with the reason),
--       7 event ('consume' | 'trash'), 8 events stream length cap
-- Returns {'ok'} | {'not_found'} | {'not_owner'}.

local now = now_ms(ARGV[1])
local j = load_claim(KEYS[1])
if not j then
  return { 'not_found' }
end
if j.op == ARGV[5] then
  return { 'ok' }
end
if not is_current(j, ARGV[3], ARGV[4]) then
  return { 'not_owner' }
end
redis.call('HSET', KEYS[1], 'state', 'COMPLETE', 'outcome', ARGV[6],
  'completed_at', int(now), 'op', ARGV[5])
redis.call('HDEL', KEYS[1], 'owner', 'lease_expires_at')
redis.call('ZREM', KEYS[2], member(j.sequence, ARGV[2]))
redis.call('ZREM', KEYS[3], ARGV[2])
redis.call('ZADD', KEYS[4], int(now), ARGV[2])
unindex(KEYS[5], j.unique_key, ARGV[2])
redis.call('ZREM', KEYS[6], ARGV[2])
redis.call('XADD', KEYS[7], 'MAXLEN', '~', ARGV[8], '*', ARGV[7], ARGV[2])
return { 'ok' }
