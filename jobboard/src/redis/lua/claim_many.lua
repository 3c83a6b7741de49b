-- claim_many: claim (see claim.lua) of up to a number of jobs of a list,
-- in one call: a conductor that runs or prefetches several jobs claims
-- them together, and the candidates other claimers took meanwhile cost no
-- round trip each. Each job is checked and claimed exactly as claim does
-- it alone, all at one instant.
--
-- KEYS: 1 leases zset, 2 scheduled zset, 3 events stream, 4.. the job
--       hash of each candidate
-- ARGV: 1 now ('' = server time), 2 owner, 3 op token, 4 lease (ms),
--       5 events stream length cap, 6 retry ('1' when this call is sent
--       again after a lost reply, else '0'), 7 the most jobs to claim,
--       8.. the id of each candidate
-- Returns {tried, {index (1-based among the candidates), epoch,
-- expires_at, control ('' = none)}, ...}: how many candidates were tried
-- (all of them, unless the most was claimed: then up to the last one
-- claimed), and one entry per claim in candidate order. A retry of this
-- very call (same op token) returns the claims it made.

local now = now_ms(ARGV[1])
local most = tonumber(ARGV[7])
local out = { 0 }
if ARGV[6] == '1' then
  local last = 0
  for i = 4, #KEYS do
    local j = load_claim(KEYS[i])
    if j and j.op == ARGV[3] then
      out[#out + 1] = { i - 3, j.epoch, j.lease, j.control or '' }
      last = i - 3
    end
  end
  if #out > 1 then
    if #out - 1 >= most then
      out[1] = last
    else
      out[1] = #KEYS - 3
    end
    return out
  end
end
local expires = now + tonumber(ARGV[4])
local tried = #KEYS - 3
for i = 4, #KEYS do
  if #out - 1 >= most then
    break
  end
  local j = load_claim(KEYS[i])
  if j and j.state ~= 'COMPLETE'
    and not (j.state == 'CLAIMED' and (tonumber(j.lease) or 0) > now)
    and not waits(j.control, j.not_before, now) then
    local id = ARGV[i + 4]
    local epoch = (tonumber(j.epoch) or 0) + 1
    redis.call('HSET', KEYS[i], 'state', 'CLAIMED', 'owner', ARGV[2], 'epoch', int(epoch),
      'lease_expires_at', int(expires), 'op', ARGV[3])
    redis.call('ZADD', KEYS[1], int(expires), id)
    redis.call('ZREM', KEYS[2], id)
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', 'claim', id)
    out[#out + 1] = { i - 3, int(epoch), int(expires), j.control or '' }
    if #out - 1 >= most then
      tried = i - 3
    end
  end
end
out[1] = tried
return out
