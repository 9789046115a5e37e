--[[ tokenware: apply one Batch atomically (tokenware/stores/redis.py).

Every key the batch touches is passed in KEYS; the script never builds a key
name, so it runs on Redis Cluster when all KEYS share one hash tag (the
caller checks that before sending anything).

KEYS
  KEYS[1..n]   the distinct keys of the batch.

ARGV
  ARGV[1]      number of guards G; guards follow, then writes until the end.
  A guard is one of
    "A", k          key KEYS[k] is absent
    "P", k          key KEYS[k] is present (a set counts as present)
    "E", k, v       KEYS[k] holds the string value v, byte for byte
                    (a set never equals any value)
  A write is one of
    "PUT", k, v, ttl_ms, keep
                    SET KEYS[k] v; ttl_ms "" means no expiry; keep "1" keeps
                    the current expiry of an existing key (KEEPTTL), and on a
                    missing key falls back to ttl_ms
    "DEL", k        delete KEYS[k]
    "SADD", k, m, ttl_ms
                    add member m to the set KEYS[k]; ttl_ms "" makes the set
                    persistent, otherwise its expiry is extended to at least
                    ttl_ms (never shortened; a persistent set stays persistent)
    "SREM", k, m    remove member m from the set KEYS[k]

Returns
  1 when every guard held and every write was applied, 0 when a guard failed
  (nothing was written). Malformed ARGV (an unknown code) is an error reply,
  always before the first write.
]]

local function kind(key)
  -- TYPE answers a status reply, which Lua sees as a table {ok = "..."}.
  return redis.call('TYPE', key)['ok']
end

local i = 2
local guards = tonumber(ARGV[1])

-- Guards first: nothing is written unless every one holds.
for _ = 1, guards do
  local op = ARGV[i]
  local key = KEYS[tonumber(ARGV[i + 1])]
  if op == 'A' then
    if redis.call('EXISTS', key) == 1 then return 0 end
    i = i + 2
  elseif op == 'P' then
    if redis.call('EXISTS', key) == 0 then return 0 end
    i = i + 2
  elseif op == 'E' then
    -- Check the type first: GET on a set would raise WRONGTYPE.
    if kind(key) ~= 'string' then return 0 end
    if redis.call('GET', key) ~= ARGV[i + 2] then return 0 end
    i = i + 3
  else
    return redis.error_reply('ERR tokenware apply: unknown guard code')
  end
end

-- Validate every write code before the first write: a script that stops
-- half-way cannot be rolled back.
local sizes = {PUT = 5, DEL = 2, SADD = 4, SREM = 3}
local first = i
while i <= #ARGV do
  local size = sizes[ARGV[i]]
  if size == nil then
    return redis.error_reply('ERR tokenware apply: unknown write code')
  end
  i = i + size
end
if i ~= #ARGV + 1 then
  return redis.error_reply('ERR tokenware apply: truncated arguments')
end

i = first
while i <= #ARGV do
  local op = ARGV[i]
  local key = KEYS[tonumber(ARGV[i + 1])]
  if op == 'PUT' then
    local value, ttl, keep = ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
    if keep == '1' and redis.call('EXISTS', key) == 1 then
      redis.call('SET', key, value, 'KEEPTTL')
    elseif ttl ~= '' then
      redis.call('SET', key, value, 'PX', ttl)
    else
      redis.call('SET', key, value)
    end
    i = i + 5
  elseif op == 'DEL' then
    redis.call('DEL', key)
    i = i + 2
  elseif op == 'SADD' then
    local member, ttl = ARGV[i + 2], ARGV[i + 3]
    -- The expiry before the add decides the new one: -2 missing, -1 persistent.
    local before = redis.call('PTTL', key)
    local replaced = before ~= -2 and kind(key) ~= 'set'
    if replaced then
      -- A Put may have left a string here; a set replaces it (as in memory://)
      -- and inherits its expiry under the rules below.
      redis.call('DEL', key)
    end
    redis.call('SADD', key, member)
    if ttl == '' then
      redis.call('PERSIST', key)
    elseif before == -2 then
      redis.call('PEXPIRE', key, ttl)
    elseif before >= 0 then
      -- Extend only: a set shared by records of different TTLs must outlive
      -- the longest of them.
      -- Both stay strings/integers on the wire: no Lua float formatting.
      if tonumber(ttl) > before then
        redis.call('PEXPIRE', key, ttl)
      elseif replaced then
        redis.call('PEXPIRE', key, before)
      end
    end
    i = i + 4
  elseif op == 'SREM' then
    -- Redis deletes a set when its last member goes; a string is left alone.
    if kind(key) == 'set' then redis.call('SREM', key, ARGV[i + 2]) end
    i = i + 3
  end
end

return 1
