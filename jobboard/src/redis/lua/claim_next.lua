-- claim_next: claims up to a number of the jobs claimable now, walking the
-- pending zset from a rank in iterjobs order (priority, then posting
-- order), passing over the jobs the caller skips and those built by a flow
-- factory it lacks: a conductor claims its next jobs without listing the
-- board, as River's and Oban's fetch does. Each job is checked and claimed
-- exactly as claim checks and claims it alone, all at one instant.
--
-- KEYS: 1 pending zset, 2 leases zset, 3 scheduled zset, 4 events stream
-- ARGV: 1 now ('' = server time), 2 owner, 3 op token, 4 lease (ms),
--       5 events stream length cap, 6 retry ('1' when this call is sent
--       again after a lost reply, else '0'), 7 the most jobs to claim,
--       8 the rank of the pending zset to start at (0-based), 9 the most
--       members to look at, 10 job key prefix ('<prefix>:job:'), 11 how
--       many flow factories are accepted ('-1': any), 12.. the factories
--       accepted, then the ids to pass over
-- Returns {next, now, {epoch, expires_at, control ('' = none), HGETALL of
-- the job after the claim}, ...}: the rank to go on from (-1 when the end
-- of the pending zset was reached), the time, and one entry per claim in
-- board order. A retry of this very call (same op token) returns the
-- claims it made among the members it looks at.

local now = now_ms(ARGV[1])
local most = tonumber(ARGV[7])
local start = tonumber(ARGV[8])
local scan = tonumber(ARGV[9])
local prefix = ARGV[10]
local nfactories = tonumber(ARGV[11])
local accepted = nil
local at = 12
if nfactories >= 0 then
  accepted = {}
  for i = at, at + nfactories - 1 do
    accepted[ARGV[i]] = true
  end
  at = at + nfactories
end
local skipped = {}
for i = at, #ARGV do
  skipped[ARGV[i]] = true
end

-- Whether a job whose hash's `factory` field is `field` ('+' and the
-- factory its details name, '-' for none; false for a job posted before
-- the field existed, whose details are read instead) may be claimed: any,
-- when no list was given; a job naming none, always.
local function builds(key, field)
  if not accepted then
    return true
  end
  local factory
  if field then
    if string.sub(field, 1, 1) ~= '+' then
      return true
    end
    factory = string.sub(field, 2)
  else
    local ok, details = pcall(cjson.decode, redis.call('HGET', key, 'details') or '')
    if not ok or type(details) ~= 'table' or type(details.factory) ~= 'string' then
      return true
    end
    factory = details.factory
  end
  return accepted[factory] == true
end

-- The jobs whose claim runs (lease ahead of now), read from the lease
-- index in one call: the members of P:pending they hold are passed over
-- without reading their hash. While conductors hold the jobs they claimed
-- ahead, those are most of the members before the first claimable one, and
-- reading each was most of this script's time. Read only when they are
-- few beside a page (else each member's hash is read, as before), and not
-- on a retry (which looks for its own running claims).
local running = nil
if ARGV[6] ~= '1' then
  local most_running = 4 * scan
  local live = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. int(now), '+inf',
    'LIMIT', 0, most_running + 1)
  if #live <= most_running then
    running = {}
    for _, id in ipairs(live) do
      running[id] = true
    end
  end
end

local members = redis.call('ZRANGE', KEYS[1], start, start + scan - 1)
local expires = now + tonumber(ARGV[4])
local out = { -1, int(now) }
local claimed = 0
for n, m in ipairs(members) do
  if claimed >= most then
    out[1] = start + n - 1
    break
  end
  local id = string.sub(m, 22)
  if not (running and running[id]) then
    local key = prefix .. id
    local j = redis.call('HMGET', key, 'state', 'epoch', 'lease_expires_at', 'op', 'control',
      'not_before', 'factory')
    local state, epoch, lease, op, control = j[1], j[2], j[3], j[4], j[5]
    if ARGV[6] == '1' and op == ARGV[3] and state == 'CLAIMED' then
      -- Claimed by the lost first attempt of this call.
      out[#out + 1] = { epoch, lease, control or '', redis.call('HGETALL', key) }
      claimed = claimed + 1
    elseif state and state ~= 'COMPLETE' and not skipped[id]
      and not (state == 'CLAIMED' and (tonumber(lease) or 0) > now)
      and not waits(control, j[6], now)
      and builds(key, j[7]) then
      local next_epoch = int((tonumber(epoch) or 0) + 1)
      redis.call('HSET', key, 'state', 'CLAIMED', 'owner', ARGV[2], 'epoch', next_epoch,
        'lease_expires_at', int(expires), 'op', ARGV[3])
      redis.call('ZADD', KEYS[2], int(expires), id)
      redis.call('ZREM', KEYS[3], id)
      redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[5], '*', 'claim', id)
      out[#out + 1] = { next_epoch, int(expires), control or '', redis.call('HGETALL', key) }
      claimed = claimed + 1
    end
  end
end
if out[1] == -1 and #members == scan then
  out[1] = start + scan
end
return out
