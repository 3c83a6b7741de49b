-- Prepended to every script of the Redis board (see ../README.md).
--
-- Every script takes ARGV[1] = the time to use, in ms since the Unix epoch,
-- or '' for the Redis server's own clock (the default: clients' clocks then
-- play no part in leases). The scripts that change a claim (claim, renew,
-- complete, abandon) all begin with the same arguments: 1 now, 2 job id,
-- 3 owner, 4 the claim's epoch ('' for claim), 5 op token; their own
-- arguments follow from ARGV[6]. Numbers are written back as integers formatted
-- with '%d', never through Lua's float formatting.

local function now_ms(given)
  if given ~= nil and given ~= '' then
    return tonumber(given)
  end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function int(n)
  return string.format('%d', n)
end

-- The member of a job in the pending sorted set: its sequence, zero-padded
-- so that members of equal score (priority) sort in posting order.
local function member(sequence, id)
  return string.format('%020d', tonumber(sequence)) .. ':' .. id
end

-- Reads what the ownership scripts check: state, owner, epoch, lease, op,
-- the control request and not-before time, and what completing the job
-- needs: its sequence and uniqueness key (false when absent), in one
-- HMGET. Returns nil when the job does not exist.
local function load_claim(job)
  local j = redis.call('HMGET', job, 'state', 'owner', 'epoch', 'lease_expires_at', 'op',
    'control', 'not_before', 'sequence', 'unique_key')
  if not j[1] then
    return nil
  end
  return { state = j[1], owner = j[2], epoch = j[3], lease = j[4], op = j[5],
    control = j[6], not_before = j[7], sequence = j[8], unique_key = j[9] }
end

-- Whether a job (its control request and not-before time, as HMGET gives
-- them: false when absent) waits for its time at now.
local function waits(control, not_before, now)
  return (not control) and not_before and (tonumber(not_before) or 0) > now
end

-- The job of key `key` holding `field` (a uniqueness or execution key) in
-- hash `index`, if that job is still there and, when `open_only`, not
-- complete. An entry naming a job that is gone (or complete, for
-- uniqueness) is stale and ignored.
local function holder(index, field, prefix, open_only)
  local id = redis.call('HGET', index, field)
  if not id then
    return nil
  end
  local state = redis.call('HGET', prefix .. id, 'state')
  if not state or (open_only and state == 'COMPLETE') then
    return nil
  end
  return id
end

-- Removes `field` from hash `index` if it names job `id`.
local function unindex(index, field, id)
  if field and redis.call('HGET', index, field) == id then
    redis.call('HDEL', index, field)
  end
end

-- Whether the claim (owner, epoch) presented is the job's current claim.
local function is_current(j, owner, epoch)
  return j.state == 'CLAIMED' and j.owner == owner and j.epoch == epoch
end
