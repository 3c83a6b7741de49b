-- post: checks the job's execution and uniqueness keys, creates the job,
-- gives it the next sequence and the posting time, indexes it for
-- iterjobs (and, when it waits for a not-before time, for wait), records
-- its keys and tells waiters. All or nothing: a refused post writes
-- nothing.
--
-- KEYS: 1 job hash, 2 sequence counter, 3 pending zset, 4 events stream,
--       5 unique hash, 6 keys hash, 7 scheduled zset
-- ARGV: 1 now ('' = server time), 2 id, 3 name, 4 details (JSON),
--       5 logbook ('' = none), 6 flow_detail ('' = none), 7 priority,
--       8 pending score (-priority), 9 events stream length cap,
--       10 not_before (ms; '' = none), 11 has a uniqueness key ('1' | '0'),
--       12 uniqueness key, 13 has an execution key ('1' | '0'),
--       14 execution key, 15 job key prefix ('<prefix>:job:'),
--       16 the flow factory the details name: '+' and its name, or '-'
--       when they name none
-- Returns {'ok', now, HGETALL of the job} | {'already_posted', id} |
--         {'duplicate', id} (id: the job holding the key). A job that
-- exists already (a retry of this very post after a lost reply: ids are
-- fresh v4 uuids) is returned as it is, not posted twice.

local now = now_ms(ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 1 then
  return { 'ok', int(now), redis.call('HGETALL', KEYS[1]) }
end
if ARGV[13] == '1' then
  local existing = holder(KEYS[6], ARGV[14], ARGV[15], false)
  if existing then
    return { 'already_posted', existing }
  end
end
if ARGV[11] == '1' then
  local existing = holder(KEYS[5], ARGV[12], ARGV[15], true)
  if existing then
    return { 'duplicate', existing }
  end
end
local seq = redis.call('INCR', KEYS[2])
local fields = {
  'id', ARGV[2], 'name', ARGV[3], 'details', ARGV[4],
  'logbook', ARGV[5], 'flow_detail', ARGV[6], 'priority', ARGV[7],
  'created_at', int(now), 'sequence', int(seq),
  'state', 'UNCLAIMED', 'epoch', '0', 'revision', '1' }
if ARGV[10] ~= '' then
  fields[#fields + 1] = 'not_before'
  fields[#fields + 1] = ARGV[10]
  if tonumber(ARGV[10]) > now then
    redis.call('ZADD', KEYS[7], ARGV[10], ARGV[2])
  end
end
if ARGV[11] == '1' then
  fields[#fields + 1] = 'unique_key'
  fields[#fields + 1] = ARGV[12]
  redis.call('HSET', KEYS[5], ARGV[12], ARGV[2])
end
fields[#fields + 1] = 'factory'
fields[#fields + 1] = ARGV[16]
if ARGV[13] == '1' then
  fields[#fields + 1] = 'key'
  fields[#fields + 1] = ARGV[14]
  redis.call('HSET', KEYS[6], ARGV[14], ARGV[2])
end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('ZADD', KEYS[3], ARGV[8], member(seq, ARGV[2]))
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[9], '*', 'post', ARGV[2])
return { 'ok', int(now), redis.call('HGETALL', KEYS[1]) }
