"""The Lua scripts the backend runs: each one command, atomic on the server.

Sent with ``EVALSHA``; a server that does not know a script yet (restarted, flushed)
answers ``NOSCRIPT`` and the caller loads it once with ``SCRIPT LOAD``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

__all__ = ["CAS", "SCRIPTS", "SET_MANY_PX", "Script"]


@dataclass(frozen=True, slots=True)
class Script:
    """A Lua script and its SHA-1, as ``EVALSHA`` names it."""

    source: bytes
    sha: str

    @classmethod
    def of(cls, source: str) -> Script:
        data = source.encode()
        return cls(data, hashlib.sha1(data, usedforsecurity=False).hexdigest())


CAS = Script.of(
    """
-- Compare-and-set on the content version (SHA-1 of the stored bytes, as content_version).
-- KEYS[1] the key; ARGV[1] the new bytes; ARGV[2] 'absent' or 'version';
-- ARGV[3] the expected version; ARGV[4] TTL in ms or ''; ARGV[5] '1' when an earlier
-- attempt's reply was lost, so that attempt may already have stored these very bytes.
-- Returns 1 when written, 2 when found already written by that attempt, 0 on conflict.
local current = redis.call('GET', KEYS[1])
local matches
if ARGV[2] == 'absent' then
  matches = not current
else
  matches = current and redis.sha1hex(current) == ARGV[3]
end
if not matches then
  if ARGV[5] == '1' and current == ARGV[1] then
    -- Stored again as it is: a WAIT covers only its own connection's writes, and the
    -- earlier attempt wrote on a connection that is gone.
    redis.call('SET', KEYS[1], current, 'KEEPTTL')
    return 2
  end
  return 0
end
if ARGV[4] == '' then
  redis.call('SET', KEYS[1], ARGV[1])
else
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[4])
end
return 1
"""
)

SET_MANY_PX = Script.of(
    """
-- SET every KEYS[i] to ARGV[i] with the TTL in ms ARGV[#KEYS + 1], all or none.
local px = ARGV[#KEYS + 1]
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], ARGV[i], 'PX', px)
end
return #KEYS
"""
)

SCRIPTS = (CAS, SET_MANY_PX)
