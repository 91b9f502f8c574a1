-- One exchange with a fleet's retry budget, atomic, timed by Redis's own clock.
-- KEYS[1]: the budget's hash (fields "d:<step>" deposits, "w:<step>" units withdrawn).
-- ARGV: deposits, units wanted, floor units, units per deposit, window in ms.
-- Returns {granted, allowed, withdrawn}.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local window = math.max(10, tonumber(ARGV[5]))
local step = math.max(1, math.floor(window / 10))
local epoch = math.floor(now / step)
local deposits, withdrawn = 0, 0
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  local kind, at = string.match(fields[i], '^(%a):(%d+)$')
  at = tonumber(at)
  if at == nil or at + 10 <= epoch then
    redis.call('HDEL', KEYS[1], fields[i])
  elseif kind == 'd' then
    deposits = deposits + tonumber(fields[i + 1])
  else
    withdrawn = withdrawn + tonumber(fields[i + 1])
  end
end
local added = tonumber(ARGV[1])
if added > 0 then
  redis.call('HINCRBY', KEYS[1], 'd:' .. epoch, added)
  deposits = deposits + added
end
local allowed = tonumber(ARGV[3]) + deposits * tonumber(ARGV[4])
local granted = math.max(0, math.min(tonumber(ARGV[2]), allowed - withdrawn))
if granted > 0 then
  redis.call('HINCRBY', KEYS[1], 'w:' .. epoch, granted)
end
redis.call('PEXPIRE', KEYS[1], window * 2)
return {granted, allowed, withdrawn + granted}
