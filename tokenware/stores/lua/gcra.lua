--[[ tokenware: one GCRA hit, atomically, on Redis's own clock (tokenware/stores/redis.py).

The arithmetic is tokenware.stores.base.gcra_step, line for line, in whole
microseconds. The clock is Redis's TIME, never the caller's: app servers
with skewed clocks share one limit and agree on every decision. TIME in a
script needs effects replication (the default since Redis 5, the only mode
since Redis 7), which replicates the SET/DEL below rather than the script.

KEYS
  KEYS[1]      the limiter key (its own hash tag; the only key touched).

ARGV
  ARGV[1]      T: emission interval in microseconds (integer >= 1).
  ARGV[2]      tau: tolerance in microseconds, T * burst.
  ARGV[3]      cost: integer; 0 only tests, negative gives units back.

The value is the theoretical arrival time (TAT), decimal microseconds since
the epoch, always written together with its expiry (SET ... PX) so a key
never outlives the moment it stops mattering and never lacks a TTL.

Returns
  One integer: reset_after_us (the new TAT minus now) when the hit conforms,
  -1 - reset_after_us when it is denied (then nothing is written). The
  caller derives remaining and retry_after from it, T, tau and the cost
  (tokenware.stores.redis._gcra_result), exactly as gcra_step computes them:
  remaining = max(0, (tau - reset) // T), retry_after = reset + T * cost - tau
  when denied. One integer reply is the cheapest for the server to build and
  for the client to parse.
]]

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local T = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local key = KEYS[1]

local stored = tonumber(redis.call('GET', key))
local tat = now
if stored ~= nil and stored > now then tat = stored end

-- %d: tostring() would print a 16-digit number as 1.8000000000000e+15.

if cost < 0 then
  local new = tat + T * cost
  if new < now then new = now end
  if stored ~= nil then
    if new > now then
      redis.call('SET', key, string.format('%d', new), 'PX',
        string.format('%d', math.ceil((new - now) / 1000)))
    else
      redis.call('DEL', key)
    end
  end
  return new - now
end

local new = tat + T * cost
local diff = new - now
if diff > tau then
  return -1 - (tat - now)
end
if cost > 0 then
  -- new > now here (tat >= now, T >= 1, cost >= 1): always a SET, with its TTL.
  redis.call('SET', key, string.format('%d', new), 'PX',
    string.format('%d', math.ceil(diff / 1000)))
end
return diff
