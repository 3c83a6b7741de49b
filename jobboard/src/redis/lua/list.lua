-- list: one page of iterjobs. The caller reads the order first (ZRANGE of
-- the pending zset: score -priority, members '<sequence, 20 digits>:<id>',
-- so equal priorities sort in posting order), then reads the jobs a page
-- at a time with this script, so that a long board never holds the server
-- for long. Jobs that were purged or completed since the order was read
-- are left out; each page is read at one instant.
--
-- KEYS: the job hashes of the page, in order
-- ARGV: 1 now ('' = server time), 2 only_unclaimed ('1' | '0': then only
--       the jobs claimable now)
-- Returns {now, HGETALL of job 1, HGETALL of job 2, ...}.

local now = now_ms(ARGV[1])
local out = { int(now) }
for _, key in ipairs(KEYS) do
  local s = redis.call('HMGET', key, 'state', 'lease_expires_at')
  local keep = s[1] == 'UNCLAIMED' or s[1] == 'CLAIMED'
  if keep and ARGV[2] == '1' and s[1] == 'CLAIMED' then
    keep = (tonumber(s[2]) or 0) <= now
  end
  if keep then
    out[#out + 1] = redis.call('HGETALL', key)
  end
end
return out
