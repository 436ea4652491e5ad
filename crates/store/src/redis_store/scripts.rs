//! The Lua scripts the Redis store runs. Each touches keys of one hash slot
//! only, so they run unchanged on Redis Cluster; what spans slots (a session
//! and its user's index) is ordered so that a crash between steps leaves at
//! worst a dangling index entry, never a session that answers wrongly.
//!
//! Session hash fields: `rec` (record JSON without data), `realm`, `g`
//! (generation), `sx` (1 if supersede applies), `la` (last access), `end`
//! (absolute end, if any), `data` (JSON), `dv` (data version), and, once a
//! newer login happened, `sg`/`sa` (the superseding generation and when).

use redis::Script;
use std::sync::LazyLock;

/// A login's work on the user's slot: take the next generation (if the realm
/// supersedes), drop index entries past their absolute end, and add the new
/// session.
/// KEYS: user state hash, user index zset.
/// ARGV: supersede (1/0), now, new session id, index score (its absolute end
/// or +inf),
/// superseded retention (seconds).
/// Returns {generation, ids of the user's other sessions, index size} (others only when
/// superseding: the caller marks them, and their index scores drop to the
/// end of their retention so later logins trim them).
pub static LOGIN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local g
if ARGV[1] == '1' then
  g = redis.call('HINCRBY', KEYS[1], 'g', 1)
  redis.call('HSET', KEYS[1], 'at', ARGV[2])
else
  g = tonumber(redis.call('HGET', KEYS[1], 'g') or '0')
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[2])
local others = {}
if ARGV[1] == '1' then
  others = redis.call('ZRANGE', KEYS[2], 0, -1)
  local retained = tonumber(ARGV[2]) + tonumber(ARGV[5])
  for _, id in ipairs(others) do
    redis.call('ZADD', KEYS[2], 'LT', retained, id)
  end
end
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
return {g, others, redis.call('ZCARD', KEYS[2])}
",
    )
});

/// Marks a session as superseded by generation ARGV[1] at ARGV[2], and bounds
/// its life to the retention ARGV[3] (seconds) or its own end, whichever is
/// first. May create a partial hash when the login that issued the session
/// has not written it yet: that login's HSET then merges into it, mark kept.
/// KEYS: session hash.
pub static MARK_SUPERSEDED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local cur = tonumber(redis.call('HGET', KEYS[1], 'sg') or '0')
if tonumber(ARGV[1]) > cur then
  redis.call('HSET', KEYS[1], 'sg', ARGV[1], 'sa', ARGV[2])
end
local ttl = tonumber(ARGV[3])
local e = redis.call('HGET', KEYS[1], 'end')
if e then
  ttl = math.min(ttl, tonumber(e) - tonumber(ARGV[2]))
end
if ttl <= 0 then
  redis.call('DEL', KEYS[1])
else
  redis.call('EXPIRE', KEYS[1], ttl)
end
return 1
",
    )
});

/// Refreshes last access on a session that still exists and, unless it was
/// superseded meanwhile, its TTL (ARGV[2], empty for none). Only forward: a
/// touch that read earlier but lands later must not pull the idle end back.
/// KEYS: session hash. ARGV: last access, ttl.
pub static TOUCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HEXISTS', KEYS[1], 'rec') == 0 then return 0 end
if tonumber(redis.call('HGET', KEYS[1], 'la') or '0') >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'la', ARGV[1])
if ARGV[2] ~= '' and redis.call('HEXISTS', KEYS[1], 'sg') == 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 1
",
    )
});

/// Atomically reads and deletes a session of realm ARGV[1] — the one step
/// that makes exactly one of several racing revokes/replaces win. With
/// ARGV[2] = 1 a superseded session is left alone (replace needs a current one).
/// KEYS: session hash. Returns the hash's fields, or an empty list.
pub static TAKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HGET', KEYS[1], 'realm') ~= ARGV[1] then return {} end
if ARGV[2] == '1' and redis.call('HGET', KEYS[1], 'sx') == '1' then
  local sg = tonumber(redis.call('HGET', KEYS[1], 'sg') or '0')
  if sg > tonumber(redis.call('HGET', KEYS[1], 'g')) then return {} end
end
local v = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
return v
",
    )
});

/// Compare-and-set of session data; last access (and the TTL) only move
/// forward, as in `TOUCH`.
/// KEYS: session hash. ARGV: realm, expected version, data JSON, last access, ttl.
/// Returns {1, new version}, {0, current version} on conflict, {-1, 0} when
/// the session is missing, of another realm, or superseded.
pub static WRITE_DATA: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HGET', KEYS[1], 'realm') ~= ARGV[1] or redis.call('HEXISTS', KEYS[1], 'rec') == 0 then
  return {-1, 0}
end
if redis.call('HGET', KEYS[1], 'sx') == '1' then
  local sg = tonumber(redis.call('HGET', KEYS[1], 'sg') or '0')
  if sg > tonumber(redis.call('HGET', KEYS[1], 'g')) then return {-1, 0} end
end
local dv = tonumber(redis.call('HGET', KEYS[1], 'dv') or '0')
if dv ~= tonumber(ARGV[2]) then return {0, dv} end
redis.call('HSET', KEYS[1], 'data', ARGV[3], 'dv', dv + 1)
if tonumber(redis.call('HGET', KEYS[1], 'la') or '0') < tonumber(ARGV[4]) then
  redis.call('HSET', KEYS[1], 'la', ARGV[4])
  if ARGV[5] ~= '' then redis.call('EXPIRE', KEYS[1], ARGV[5]) end
end
return {1, dv + 1}
",
    )
});

/// Moves a ticket not-before time forward, never back, in one step.
/// KEYS: the slot. ARGV: the time. Returns the time in force.
pub static RAISE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local cur = tonumber(redis.call('GET', KEYS[1]) or '')
local at = tonumber(ARGV[1])
if cur == nil or at > cur then
  redis.call('SET', KEYS[1], ARGV[1])
  return at
end
return cur
",
    )
});

/// Counts a failed login: a record older than the window starts over.
/// KEYS: the record hash. ARGV: now, window (seconds). Returns the count.
pub static RECORD_FAILURE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local n = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
local last = tonumber(redis.call('HGET', KEYS[1], 'last') or '0')
if now >= last + window then n = 0 end
n = n + 1
redis.call('HSET', KEYS[1], 'n', n, 'last', now)
redis.call('EXPIRE', KEYS[1], window)
return n
",
    )
});

/// Creates a group unless it exists. KEYS: group key, group roles hash.
/// ARGV: key, admin's member field. Returns 1 if created.
pub static CREATE_GROUP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[2], 'admin')
return 1
",
    )
});

/// Applies membership changes if ARGV[1] (the caller's field) is an admin.
/// KEYS: group roles hash. ARGV: caller field, then pairs (member field,
/// role or empty to remove). Returns 1 if applied.
pub static UPDATE_GROUP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HGET', KEYS[1], ARGV[1]) ~= 'admin' then return 0 end
for i = 2, #ARGV, 2 do
  if ARGV[i + 1] == '' then
    redis.call('HDEL', KEYS[1], ARGV[i])
  else
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
return 1
",
    )
});
