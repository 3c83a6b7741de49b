-- consume_all: complete (see complete.lua) of several claims with the
-- outcome consumed, in one call, as a conductor settles the jobs whose
-- flows finished together. Each claim is checked and its job completed
-- exactly as complete does it alone, all at one instant.
--
-- KEYS: 1 pending zset, 2 leases zset, 3 complete zset, 4 unique hash,
--       5 scheduled zset, 6 events stream, 7.. the job hash of each claim
-- ARGV: 1 now ('' = server time), 2 op token (one per call), 3 outcome
--       (JSON: consumed), 4 events stream length cap, then per claim:
--       id, owner, epoch
-- Returns one reply per claim, in order, each as complete's: {'ok'} |
-- {'not_found'} | {'not_owner'}. A retry of this very call (same op
-- token) answers 'ok' for the jobs it completed.

local now = now_ms(ARGV[1])
local replies = {}
for i = 7, #KEYS do
  local at = 5 + (i - 7) * 3
  local id, owner, epoch = ARGV[at], ARGV[at + 1], ARGV[at + 2]
  local j = load_claim(KEYS[i])
  if not j then
    replies[#replies + 1] = { 'not_found' }
  elseif j.op == ARGV[2] then
    replies[#replies + 1] = { 'ok' }
  elseif not is_current(j, owner, epoch) then
    replies[#replies + 1] = { 'not_owner' }
  else
    redis.call('HSET', KEYS[i], 'state', 'COMPLETE', 'outcome', ARGV[3],
      'completed_at', int(now), 'op', ARGV[2])
    redis.call('HDEL', KEYS[i], 'owner', 'lease_expires_at')
    redis.call('ZREM', KEYS[1], member(j.sequence, id))
    redis.call('ZREM', KEYS[2], id)
    redis.call('ZADD', KEYS[3], int(now), id)
    unindex(KEYS[4], j.unique_key, id)
    redis.call('ZREM', KEYS[5], id)
    redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[4], '*', 'consume', id)
    replies[#replies + 1] = { 'ok' }
  end
end
return replies
