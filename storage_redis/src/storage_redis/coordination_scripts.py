"""The Lua scripts of leases, transactions and the change feed: each one atomic step on the server.

Expiry is judged by the server's clock, read with ``redis.call('TIME')`` in the same
script that checks and writes (scripts replicate their effects, so this is allowed before
a write since Redis 5). A lease is a hash ``{token, expires}`` (``expires`` in server
milliseconds, 0 when released) that never expires itself, so its token counter survives
releases and expiries. The change feed is a stream per namespace, appended with
``XADD ... MAXLEN ~ retention`` by the very script that writes.
"""

from __future__ import annotations

from storage_redis.scripts import Script

__all__ = ["ACQUIRE", "CHANGES", "COORDINATION_SCRIPTS", "FENCED_SET", "RELEASE", "RENEW", "TRANSACT"]

_NOW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""

_CURRENT = """
local function current(key, token)
  local lease = redis.call('HMGET', key, 'token', 'expires')
  return lease[1] == token and tonumber(lease[2] or '0') > now
end
"""

ACQUIRE = Script.of(
    _NOW
    + """
-- KEYS[1] the lease; ARGV[1] ttl in ms. Returns {token, expires}, or nil while held.
local expires = tonumber(redis.call('HGET', KEYS[1], 'expires') or '0')
if expires > now then
  return false
end
local token = redis.call('HINCRBY', KEYS[1], 'token', 1)
expires = now + tonumber(ARGV[1])
redis.call('HSET', KEYS[1], 'expires', expires)
return {token, expires}
"""
)

RENEW = Script.of(
    _NOW
    + _CURRENT
    + """
-- KEYS[1] the lease; ARGV[1] token; ARGV[2] ttl in ms. Returns the new expiry, or nil if not current.
if not current(KEYS[1], ARGV[1]) then
  return false
end
local expires = now + tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'expires', expires)
return expires
"""
)

RELEASE = Script.of(
    _NOW
    + _CURRENT
    + """
-- KEYS[1] the lease; ARGV[1] token. Returns 1 if it was current (now released), else 0.
if not current(KEYS[1], ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[1], 'expires', 0)
return 1
"""
)

# The same check, reading the clock only when asked: an unfenced transaction never needs it.
_CURRENT_ON_DEMAND = """
local function current(key, token)
  local clock = redis.call('TIME')
  local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
  local lease = redis.call('HMGET', key, 'token', 'expires')
  return lease[1] == token and tonumber(lease[2] or '0') > now
end
"""

TRANSACT = Script.of(
    _CURRENT_ON_DEMAND
    + """
-- KEYS: [lease], expected keys, written keys, deleted keys, [stream].
-- ARGV[1..3] how many expected, written, deleted; ARGV[4] the token ('' unfenced);
-- ARGV[5] TTL in ms or ''; ARGV[6] the feed's MAXLEN ('' no feed); ARGV[7] '1' when an
-- earlier attempt's reply was lost; then one expected version per expected key ('' for
-- absent), then the bytes of each written key.
-- Returns {1, deleted} when applied, {2, 0} when found applied by that earlier attempt.
-- Changing nothing, it answers with an error reply (so no WAIT follows it): "STORAGE-CORE
-- LEASE" when the lease is not current, "STORAGE-CORE CONFLICT i ..." naming the positions
-- of the expected keys that differed.
local ne, nw, nd = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local token, px, maxlen = ARGV[4], ARGV[5], ARGV[6]
local base = 0
if token ~= '' then
  base = 1
end
local writes, deletes, data = base + ne, base + ne + nw, 7 + ne
if ARGV[7] == '1' then
  local done = true
  for i = 1, nw do
    if redis.call('GET', KEYS[writes + i]) ~= ARGV[data + i] then
      done = false
      break
    end
  end
  for i = 1, nd do
    if done and redis.call('EXISTS', KEYS[deletes + i]) == 1 then
      done = false
    end
  end
  if done then
    return {2, 0}
  end
end
if token ~= '' and not current(KEYS[1], token) then
  return redis.error_reply('STORAGE-CORE LEASE')
end
local conflicts = {}
for i = 1, ne do
  local found = redis.call('GET', KEYS[base + i])
  local want = ARGV[7 + i]
  local ok
  if want == '' then
    ok = not found
  else
    ok = found and redis.sha1hex(found) == want
  end
  if not ok then
    conflicts[#conflicts + 1] = i
  end
end
if #conflicts > 0 then
  return redis.error_reply('STORAGE-CORE CONFLICT ' .. table.concat(conflicts, ' '))
end
local stream = KEYS[#KEYS]
for i = 1, nw do
  local key, value = KEYS[writes + i], ARGV[data + i]
  if px == '' then
    redis.call('SET', key, value)
  else
    redis.call('SET', key, value, 'PX', px)
  end
  if maxlen ~= '' then
    redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'k', key, 'o', 'put', 'v', redis.sha1hex(value))
  end
end
local deleted = 0
for i = 1, nd do
  local key = KEYS[deletes + i]
  if redis.call('DEL', key) == 1 then
    deleted = deleted + 1
    if maxlen ~= '' then
      redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'k', key, 'o', 'delete')
    end
  end
end
return {1, deleted}
"""
)

FENCED_SET = Script.of(
    _NOW
    + """
-- The common fenced write, one key and nothing else, kept short: the server runs it per write.
-- KEYS[1] the lease, KEYS[2] the key; ARGV[1] token, ARGV[2] bytes, ARGV[3] TTL in ms or '',
-- ARGV[4] '1' when an earlier attempt's reply was lost. Returns 1 written, 2 found written
-- by that attempt, 0 (so no WAIT follows) when the lease is not current.
if ARGV[4] == '1' and redis.call('GET', KEYS[2]) == ARGV[2] then
  return 2
end
local lease = redis.call('HMGET', KEYS[1], 'token', 'expires')
if lease[1] ~= ARGV[1] or tonumber(lease[2] or '0') <= now then
  return 0
end
if ARGV[3] == '' then
  redis.call('SET', KEYS[2], ARGV[2])
else
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
end
return 1
"""
)

CHANGES = Script.of(
    """
-- KEYS[1] the stream; ARGV[1] a cursor (an entry ID) or 'head'; ARGV[2] how many entries.
-- Returns {0, last ID, entries after the cursor}, {1, last ID} when entries after the
-- cursor were trimmed away, {2, last ID} when the cursor is beyond the stream's end.
local last, first, added, length = '0-0', '0-0', 0, 0
if redis.call('EXISTS', KEYS[1]) == 1 then
  local info = redis.call('XINFO', 'STREAM', KEYS[1])
  for i = 1, #info, 2 do
    local field = info[i]
    if field == 'last-generated-id' then
      last = info[i + 1]
    elseif field == 'recorded-first-entry-id' then
      first = info[i + 1]
    elseif field == 'entries-added' then
      added = info[i + 1]
    elseif field == 'length' then
      length = info[i + 1]
    end
  end
end
if ARGV[1] == 'head' then
  return {0, last, {}}
end
local function before(a, b)
  local ams, aseq = string.match(a, '^(%d+)-(%d+)$')
  local bms, bseq = string.match(b, '^(%d+)-(%d+)$')
  ams, aseq, bms, bseq = tonumber(ams), tonumber(aseq), tonumber(bms), tonumber(bseq)
  return ams < bms or (ams == bms and aseq < bseq)
end
if before(last, ARGV[1]) then
  return {2, last}
end
-- Trimming removes the oldest entries: once any went, a cursor before the first kept one
-- may have had successors that are gone.
if added > length and before(ARGV[1], first) then
  return {1, last}
end
return {0, last, redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[2])}
"""
)

COORDINATION_SCRIPTS = (ACQUIRE, RENEW, RELEASE, TRANSACT, FENCED_SET, CHANGES)
