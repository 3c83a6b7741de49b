-- renew_all: renew (see renew.lua) of several claims in one call, as a
-- conductor's lease keeper renews every claim it holds each round. Each
-- claim is checked and extended exactly as renew does it alone, all at one
-- instant.
--
-- KEYS: 1 leases zset, 2.. the job hash of each claim
-- ARGV: 1 now ('' = server time), 2 op token (one per call), 3 lease (ms),
--       then per claim: id, owner, epoch
-- Returns one reply per claim, in order, each as renew's: {'ok',
-- expires_at, control ('' = none)} | {'not_found'} | {'not_owner'}.

local now = now_ms(ARGV[1])
local expires = now + tonumber(ARGV[3])
local replies = {}
for i = 2, #KEYS do
  local at = 4 + (i - 2) * 3
  local id, owner, epoch = ARGV[at], ARGV[at + 1], ARGV[at + 2]
  local j = load_claim(KEYS[i])
  if not j then
    replies[#replies + 1] = { 'not_found' }
  elseif j.op == ARGV[2] then
    replies[#replies + 1] = { 'ok', j.lease, j.control or '' }
  elseif not is_current(j, owner, epoch) then
    replies[#replies + 1] = { 'not_owner' }
  else
    redis.call('HSET', KEYS[i], 'lease_expires_at', int(expires), 'op', ARGV[2])
    redis.call('ZADD', KEYS[1], int(expires), id)
    replies[#replies + 1] = { 'ok', int(expires), j.control or '' }
  end
end
return replies
