-- claim: takes a job that is unclaimed, or claimed with a lapsed lease
-- (lease_expires_at <= now), and that does not wait for its not-before
-- time (or has a control request); raises its epoch by one, sets its owner
-- and lease, indexes the lease's expiry for wait and drops the job from
-- the scheduled index. Two racing claimers: the first script to run wins,
-- the second sees a running lease.
--
-- KEYS: 1 job hash, 2 leases zset, 3 scheduled zset, 4 events stream
-- ARGV: 1 now ('' = server time), 2 id, 3 owner, 4 epoch ('': a claim
--       has none yet, it makes one), 5 op token, 6 lease (ms),
--       7 events stream length cap
-- Returns {'ok', epoch, expires_at, control ('' = none)} | {'not_found'} |
--         {'complete'} | {'claimed', owner} | {'not_yet', not_before}.
-- A retry of this very call (same op token, after a lost reply) returns
-- the claim it made.

local now = now_ms(ARGV[1])
local j = load_claim(KEYS[1])
if not j then
  return { 'not_found' }
end
if j.op == ARGV[5] then
  return { 'ok', j.epoch, j.lease, j.control or '' }
end
if j.state == 'COMPLETE' then
  return { 'complete' }
end
if j.state == 'CLAIMED' and (tonumber(j.lease) or 0) > now then
  return { 'claimed', j.owner or '' }
end
if waits(j.control, j.not_before, now) then
  return { 'not_yet', j.not_before }
end
local epoch = (tonumber(j.epoch) or 0) + 1
local expires = now + tonumber(ARGV[6])
redis.call('HSET', KEYS[1], 'state', 'CLAIMED', 'owner', ARGV[3], 'epoch', int(epoch),
  'lease_expires_at', int(expires), 'op', ARGV[5])
redis.call('ZADD', KEYS[2], int(expires), ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[2])
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[7], '*', 'claim', ARGV[2])
return { 'ok', int(epoch), int(expires), j.control or '' }
