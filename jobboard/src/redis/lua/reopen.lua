-- reopen: takes a complete job back to unclaimed for another run, as a
-- new revision: owner, lease, outcome, completion time and control
-- request dropped, revision + 1, epoch kept (the next claim raises it
-- above every claim before). The job leaves the complete index and
-- enters the pending one again (and the scheduled one, when its
-- not-before time is still ahead), takes its uniqueness key back, and
-- waiters are told. Refused, writing nothing, when another job that is
-- not complete holds its uniqueness key.
--
-- KEYS: 1 job hash, 2 pending zset, 3 complete zset, 4 unique hash,
--       5 scheduled zset, 6 events stream
-- ARGV: 1 now ('' = server time), 2 id, 3 op token, 4 events stream length
--       cap, 5 job key prefix ('<prefix>:job:')
-- Returns {'ok', now, HGETALL of the job} | {'not_found'} |
--         {'not_complete'} | {'duplicate', id, key} (id: the job holding
--         its uniqueness key). A retry of this very call
-- (same op token) returns the job it reopened.

local now = now_ms(ARGV[1])
local j = redis.call('HMGET', KEYS[1], 'state', 'op', 'unique_key', 'sequence', 'priority',
  'not_before', 'revision')
if not j[1] then
  return { 'not_found' }
end
if j[2] == ARGV[3] then
  return { 'ok', int(now), redis.call('HGETALL', KEYS[1]) }
end
if j[1] ~= 'COMPLETE' then
  return { 'not_complete' }
end
if j[3] then
  local existing = holder(KEYS[4], j[3], ARGV[5], true)
  if existing and existing ~= ARGV[2] then
    return { 'duplicate', existing, j[3] }
  end
  redis.call('HSET', KEYS[4], j[3], ARGV[2])
end
local revision = (tonumber(j[7]) or 1) + 1
redis.call('HSET', KEYS[1], 'state', 'UNCLAIMED', 'revision', int(revision), 'op', ARGV[3])
redis.call('HDEL', KEYS[1], 'owner', 'lease_expires_at', 'outcome', 'completed_at', 'control')
redis.call('ZADD', KEYS[2], int(-(tonumber(j[5]) or 0)), member(j[4], ARGV[2]))
redis.call('ZREM', KEYS[3], ARGV[2])
if j[6] and (tonumber(j[6]) or 0) > now then
  redis.call('ZADD', KEYS[5], j[6], ARGV[2])
end
redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[4], '*', 'reopen', ARGV[2])
return { 'ok', int(now), redis.call('HGETALL', KEYS[1]) }
