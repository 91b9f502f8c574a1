-- The servers a fleet's throttles have engaged, so that every process paces them, not only those
-- that met a throttling answer; timed by Redis's own clock.
-- KEYS[1]: a sorted set, authority -> engaged until (ms).
-- ARGV: an authority to mark ('' for none), for how many ms, the most to answer.
-- Returns the authorities engaged now.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if ARGV[1] ~= '' then
  local till = now + tonumber(ARGV[2])
  local old = redis.call('ZSCORE', KEYS[1], ARGV[1])
  if not old or tonumber(old) < till then
    redis.call('ZADD', KEYS[1], string.format('%d', till), ARGV[1])
  end
end
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then
  redis.call('PEXPIRE', KEYS[1], math.max(1, tonumber(last[2]) - now))
end
return redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[3]) - 1)
