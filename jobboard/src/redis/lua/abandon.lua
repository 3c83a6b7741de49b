-- abandon: the current claim's owner gives its job back: unclaimed, epoch
-- kept (the next claim raises it), out of the lease index, and waiters are
-- told it is claimable.
--
-- KEYS: 1 job hash, 2 leases zset, 3 events stream
-- ARGV: 1 now ('' = server time), 2 id, 3 owner, 4 epoch, 5 op token,
--       6 events stream length cap
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
redis.call('HSET', KEYS[1], 'state', 'UNCLAIMED', 'op', ARGV[5], 'abandoned_at', int(now))
redis.call('HDEL', KEYS[1], 'owner', 'lease_expires_at')
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*', 'abandon', ARGV[2])
return { 'ok' }
