"""The fleet's Redis scripts: each step that reads and writes a lease is one script, so
Redis runs it atomically (no two workers can both find a bot free and take it).

Time is Redis's own (TIME), in milliseconds: the lease keys expire by it, and a
worker's registration (``fleet:workers``) ends by it, so every worker judges "dead" by
one clock. Keys are built in the scripts from a prefix passed in, which a standalone
Redis allows (a Redis Cluster would not; the service uses one Redis, docs/DEPLOY.md).

A lease is the value ``"<worker>|<fence>"`` under ``fleet:lease:<bot>``, with the
lease's time to live; the fence comes from one counter, so every acquisition has a value
no earlier holder had (a renewal or release by a holder that lost the lease meanwhile
matches nothing). A lease whose worker's registration has ended is void even before
its key expires: the worker stopped using the bot by its own deadline (fleet/leases.py).
"""

from __future__ import annotations

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function owner(v) return string.sub(v, 1, string.find(v, '|', 1, true) - 1) end
local function alive(workers, w)
  local s = redis.call('ZSCORE', workers, w)
  return s and tonumber(s) >= now
end
"""

#: KEYS: lease, fence, my owned set, workers, load. ARGV: me, ttl ms, force (1/0), bot id.
#: → {1, value} held already (renewed) · {2, value, previous} taken ·
#:   {0, value} a live worker holds it · {3, worker} free, but over this worker's fair
#:   share (the bots held over the live workers, rounded up): for the least loaded.
#: The share is judged on the loads as they are now (acquisitions count at once), so
#: workers taking bots at the same moment do not all see the others empty.
ACQUIRE = (
    _NOW
    + """
local v = redis.call('GET', KEYS[1])
if v then
  local o = owner(v)
  if o == ARGV[1] and alive(KEYS[4], o) then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return {1, v}
  end
  if o ~= ARGV[1] and alive(KEYS[4], o) then return {0, v} end
end
if ARGV[3] ~= '1' then
  local live = redis.call('ZRANGEBYSCORE', KEYS[4], now, '+inf')
  local total, mine, least, fewest = 0, 0, ARGV[1], nil
  for _, w in ipairs(live) do
    local n = tonumber(redis.call('HGET', KEYS[5], w) or '0')
    total = total + n
    if w == ARGV[1] then mine = n end
    if fewest == nil or n < fewest then least, fewest = w, n end
  end
  if #live > 0 and mine >= math.ceil((total + 1) / #live) and least ~= ARGV[1] then
    return {3, least}
  end
end
local value = ARGV[1] .. '|' .. redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
redis.call('SADD', KEYS[3], ARGV[4])
redis.call('HINCRBY', KEYS[5], ARGV[1], 1)
return {2, value, v or ''}
"""
)

#: KEYS: workers, load, my owned set. ARGV: me, ttl ms, lease prefix, then bot, value …
#: Registers the worker until now + ttl and renews the leases it still holds.
#: → {lost bots, {worker, load, …} of the live workers, dead workers, now}
HEARTBEAT = (
    _NOW
    + """
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
local lost, kept = {}, 0
for i = 4, #ARGV, 2 do
  local key = ARGV[3] .. ARGV[i]
  if redis.call('GET', key) == ARGV[i + 1] then
    redis.call('PEXPIRE', key, ARGV[2])
    kept = kept + 1
  else
    lost[#lost + 1] = ARGV[i]
    redis.call('SREM', KEYS[3], ARGV[i])
  end
end
redis.call('HSET', KEYS[2], ARGV[1], kept)
local live = {}
for _, w in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')) do
  live[#live + 1] = w
  live[#live + 1] = redis.call('HGET', KEYS[2], w) or '0'
end
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
return {lost, live, dead, now}
"""
)

#: KEYS: workers, load, gone, the worker's owned set. ARGV: worker, lease prefix,
#: force (1: the worker itself leaves). Ends a worker's registration and frees every
#: lease it still has; done once (→ 1) by whoever finds it dead first, else → 0.
RETIRE = (
    _NOW
    + """
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if ARGV[3] ~= '1' and (not s or tonumber(s) >= now) then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
for _, bot in ipairs(redis.call('SMEMBERS', KEYS[4])) do
  local key = ARGV[2] .. bot
  local v = redis.call('GET', key)
  if v and owner(v) == ARGV[1] then redis.call('DEL', key) end
end
redis.call('DEL', KEYS[4])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], now, ARGV[1])
return 1
"""
)

#: KEYS: lease, my owned set, load. ARGV: value, bot id, me. Frees the lease if it is
#: still this value.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('HINCRBY', KEYS[3], ARGV[3], -1)
end
redis.call('SREM', KEYS[2], ARGV[2])
return 1
"""

#: KEYS: the destination list, then source lists. ARGV: most messages to move.
#: Moves a gone worker's queued messages to the shared queue, oldest first (kombu
#: publishes with LPUSH and consumes from the right). → how many moved.
DRAIN = """
local moved, limit = 0, tonumber(ARGV[1])
for i = 2, #KEYS do
  while moved < limit and redis.call('RPOPLPUSH', KEYS[i], KEYS[1]) do
    moved = moved + 1
  end
end
return moved
"""
