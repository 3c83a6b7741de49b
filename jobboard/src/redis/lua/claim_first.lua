-- claim_first: claim (see claim.lua) of the first claimable job of a list,
-- in one call: a conductor hands over the candidates of its last listing,
-- and those other claimers took meanwhile cost no round trip each. Each
-- job is checked and claimed exactly as claim does it alone.
--
-- KEYS: 1 leases zset, 2 scheduled zset, 3 events stream, 4.. the job
--       hash of each candidate
-- ARGV: 1 now ('' = server time), 2 owner, 3 op token, 4 lease (ms),
--       5 events stream length cap, 6 retry ('1' when this call is sent
--       again after a lost reply, else '0'), 7.. the id of each candidate
-- Returns {'ok', index (1-based among the candidates), epoch, expires_at,
-- control ('' = none)} | {'none'}: every candidate was refused (not found,
-- complete, claimed, not yet). A retry of this very call (same op token)
-- returns the claim it made, even if a candidate before it became
-- claimable since: only a retry looks for it first (a pass over every
-- candidate), a first call reads each candidate once, up to the one it
-- claims.

local now = now_ms(ARGV[1])
if ARGV[6] == '1' then
  for i = 4, #KEYS do
    local j = load_claim(KEYS[i])
    if j and j.op == ARGV[3] then
      return { 'ok', i - 3, j.epoch, j.lease, j.control or '' }
    end
  end
end
for i = 4, #KEYS do
  local j = load_claim(KEYS[i])
  if j and j.state ~= 'COMPLETE'
    and not (j.state == 'CLAIMED' and (tonumber(j.lease) or 0) > now)
    and not waits(j.control, j.not_before, now) then
    local id = ARGV[i + 3]
    local epoch = (tonumber(j.epoch) or 0) + 1
    local expires = now + tonumber(ARGV[4])
    redis.call('HSET', KEYS[i], 'state', 'CLAIMED', 'owner', ARGV[2], 'epoch', int(epoch),
      'lease_expires_at', int(expires), 'op', ARGV[3])
    redis.call('ZADD', KEYS[1], int(expires), id)
    redis.call('ZREM', KEYS[2], id)
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', 'claim', id)
    return { 'ok', i - 3, int(epoch), int(expires), j.control or '' }
  end
end
return { 'none' }
