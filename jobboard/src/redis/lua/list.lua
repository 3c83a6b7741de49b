-- list: one page of iterjobs or all_jobs. The caller reads the order
-- first (for iterjobs, ZRANGE of the pending zset: score -priority,
-- members '<sequence, 20 digits>:<id>', so equal priorities sort in posting
-- order; for all_jobs, the pending and complete zsets, sorted by sequence
-- afterwards), then reads the jobs a page at a time with this script, so
-- that a long board never holds the server for long. Jobs that were purged
-- (or, unless listing all, completed) since the order was read are left
-- out; each page is read at one instant.
--
-- KEYS: the job hashes of the page, in order
-- ARGV: 1 now ('' = server time), 2 which: '1' the jobs claimable now
--       (not complete, not under a running lease, not waiting for their
--       not-before time), '0' the jobs not complete, 'all' every job
-- Returns {now, HGETALL of job 1, HGETALL of job 2, ...}.

local now = now_ms(ARGV[1])
local out = { int(now) }
for _, key in ipairs(KEYS) do
  local s = redis.call('HMGET', key, 'state', 'lease_expires_at', 'not_before', 'control')
  local keep
  if ARGV[2] == 'all' then
    keep = s[1] and true or false
  else
    keep = s[1] == 'UNCLAIMED' or s[1] == 'CLAIMED'
    if keep and ARGV[2] == '1' then
      if s[1] == 'CLAIMED' then
        keep = (tonumber(s[2]) or 0) <= now
      end
      if keep and waits(s[4], s[3], now) then
        keep = false
      end
    end
  end
  if keep then
    out[#out + 1] = redis.call('HGETALL', key)
  end
end
return out
