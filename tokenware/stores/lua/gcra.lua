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
  One bulk string of four decimal integers separated by spaces:
  "allowed(1/0) remaining retry_after_us reset_after_us". A single string
  costs the client one reply to parse where an array costs five.
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

-- %d throughout: tostring() would print a 16-digit number as 1.8000000000000e+15.

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
  local diff = new - now
  local remaining = math.floor((tau - diff) / T)
  if remaining < 0 then remaining = 0 end
  return string.format('1 %d 0 %d', remaining, diff)
end

local new = tat + T * cost
local diff = new - now
if diff > tau then
  local remaining = math.floor((tau - (tat - now)) / T)
  if remaining < 0 then remaining = 0 end
  return string.format('0 %d %d %d', remaining, diff - tau, tat - now)
end
if cost > 0 then
  -- new > now here (tat >= now, T >= 1, cost >= 1): always a SET, with its TTL.
  redis.call('SET', key, string.format('%d', new), 'PX',
    string.format('%d', math.ceil(diff / 1000)))
end
return string.format('1 %d 0 %d', math.floor((tau - diff) / T), diff)
