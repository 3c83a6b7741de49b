-- renew: extends the current claim's lease to now + lease, and returns
-- the job's control request, so the owner learns of a stop or cancel.
-- Refused unless the claim presented (owner, epoch) is the job's current
-- claim, which it stays after its lease lapsed until someone else claims
-- the job.
--
-- KEYS: 1 job hash, 2 leases zset
-- ARGV: 1 now ('' = server time), 2 id, 3 owner, 4 epoch, 5 op token,
--       6 lease (ms)
-- Returns {'ok', expires_at, control ('' = none)} | {'not_found'} |
--         {'not_owner'}.

local now = now_ms(ARGV[1])
local j = load_claim(KEYS[1])
if not j then
  return { 'not_found' }
end
if j.op == ARGV[5] then
  return { 'ok', j.lease, j.control or '' }
end
if not is_current(j, ARGV[3], ARGV[4]) then
  return { 'not_owner' }
end
local expires = now + tonumber(ARGV[6])
redis.call('HSET', KEYS[1], 'lease_expires_at', int(expires), 'op', ARGV[5])
redis.call('ZADD', KEYS[2], int(expires), ARGV[2])
return { 'ok', int(expires), j.control or '' }
