"""The Lua scripts. Each touches the keys of one hash tag only (cluster-safe).

Session scripts take KEYS = (meta, log, ids). A session is *present* only when
meta has `ver` and LLEN(log) == ver == HLEN(ids); anything else (a key lost
to eviction) reads as absent. Every script is safe to run twice with the same
arguments, because redis-py may re-send a command whose reply was lost.
"""

from __future__ import annotations

_PRESENT = """
local function present()
  local m = redis.call('HMGET', KEYS[1], 'inc', 'ver', 'ts')
  if not m[1] or not m[2] then return nil end
  local ver = tonumber(m[2])
  if redis.call('LLEN', KEYS[2]) ~= ver or redis.call('HLEN', KEYS[3]) ~= ver then
    return nil
  end
  return m[1], ver, m[3] or ''
end
local function expire_all(ttl)
  for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ttl) end
end
local function hset_pairs(key, first)
  for i = first, #ARGV, 2 do redis.call('HSET', key, ARGV[i], ARGV[i + 1]) end
end
"""

# ARGV: event_id, expected_inc, expected_ver, payload, ts, ttl, mirror ('1'/'0'),
#       then field/value pairs for meta (`s:<key>` -> JSON).
# -> {status, inc, ver, ts}; status: applied | duplicate | stale | missing.
# With mirror='1', stale/missing leave a tombstone {floor = expected_ver + 1}.
APPEND = _PRESENT + """
local inc, ver, ts = present()
local status
if inc then
  if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then
    return {'duplicate', inc, ver, ts}
  end
  if inc ~= ARGV[2] or ver ~= tonumber(ARGV[3]) then status = 'stale' end
else
  status = 'missing'
end
if status then
  if ARGV[7] == '1' then
    local floor = tonumber(ARGV[3]) + 1
    local old = tonumber(redis.call('HGET', KEYS[1], 'floor') or '0')
    if old > floor then floor = old end
    redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
    redis.call('HSET', KEYS[1], 'floor', floor)
    redis.call('EXPIRE', KEYS[1], ARGV[6])
  end
  return {status, inc or '', ver or -1, ts or ''}
end
ver = ver + 1
redis.call('RPUSH', KEYS[2], ARGV[4])
redis.call('HSET', KEYS[3], ARGV[1], ver)
redis.call('HSET', KEYS[1], 'ver', ver, 'ts', ARGV[5])
hset_pairs(KEYS[1], 8)
expire_all(ARGV[6])
return {'applied', inc, ver, ARGV[5]}
"""

# ARGV: incarnation, created_at, ttl, then meta field/value pairs.
# -> 'created' | 'exists'. A present session of the same incarnation is a
# retry of this very create, so it answers 'created' again. A partly evicted
# session is replaced; a `floor` left by a mirror is kept.
CREATE = _PRESENT + """
local inc = present()
if inc then
  if inc == ARGV[1] then return 'created' end
  return 'exists'
end
local floor = redis.call('HGET', KEYS[1], 'floor')
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('HSET', KEYS[1], 'inc', ARGV[1], 'ver', 0, 'ts', ARGV[2], 'created', ARGV[2])
if floor then redis.call('HSET', KEYS[1], 'floor', floor) end
hset_pairs(KEYS[1], 4)
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 'created'
"""

# ARGV: ttl, start, stop, with_events ('1'/'0').
# -> nil if absent, else {meta as a flat HGETALL, LRANGE start stop}; refreshes the TTL.
LOAD = _PRESENT + """
if not present() then return false end
local events = {}
if ARGV[4] == '1' then events = redis.call('LRANGE', KEYS[2], ARGV[2], ARGV[3]) end
expire_all(ARGV[1])
return {redis.call('HGETALL', KEYS[1]), events}
"""

# ARGV: ttl, known_inc ('' for none), known_ver.
# -> {'miss'} | {'current', meta} | {'behind', meta, tail}; refreshes the TTL.
PROBE = _PRESENT + """
local inc, ver = present()
if not inc then return {'miss'} end
local status, start = 'behind', 0
if ARGV[2] ~= '' then
  local known = tonumber(ARGV[3])
  if inc ~= ARGV[2] or ver < known then return {'miss'} end
  if ver == known then status = 'current' else start = known end
end
local tail = {}
if status == 'behind' then tail = redis.call('LRANGE', KEYS[2], start, -1) end
expire_all(ARGV[1])
return {status, redis.call('HGETALL', KEYS[1]), tail}
"""

# ARGV: inc, ver, ts, ttl, n_meta_args, meta pairs..., ver event ids..., ver payloads...
# -> 1 written | 0 refused (a floor above ver, or the same incarnation already at >= ver).
HYDRATE = _PRESENT + """
local n = tonumber(ARGV[2])
local floor = tonumber(redis.call('HGET', KEYS[1], 'floor') or '0')
if floor > n then return 0 end
local inc, ver = present()
if inc and inc == ARGV[1] and ver >= n then return 0 end
local nf = tonumber(ARGV[5])
local ids_at = 5 + nf
local payloads_at = ids_at + n
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('HSET', KEYS[1], 'inc', ARGV[1], 'ver', n, 'ts', ARGV[3])
for i = 6, 5 + nf, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
local i = 1
while i <= n do
  local last = math.min(i + 999, n)
  local chunk, idpairs = {}, {}
  for j = i, last do
    chunk[#chunk + 1] = ARGV[payloads_at + j]
    idpairs[#idpairs + 1] = ARGV[ids_at + j]
    idpairs[#idpairs + 1] = j
  end
  redis.call('RPUSH', KEYS[2], unpack(chunk))
  redis.call('HSET', KEYS[3], unpack(idpairs))
  i = last + 1
end
expire_all(ARGV[4])
return 1
"""

# State hashes (app or user): `_v` version, `s:<key>` -> JSON, optional `_op`
# (the last write applied, for idempotency) and `_floor` (see MIRROR_SCOPE).

# KEYS: hash. ARGV: op_id, ttl ('0' = none), field/value pairs. -> `_v` after.
SCOPE_WRITE = """
if redis.call('HGET', KEYS[1], '_op') == ARGV[1] then
  return tonumber(redis.call('HGET', KEYS[1], '_v') or '0')
end
local v = redis.call('HINCRBY', KEYS[1], '_v', 1)
redis.call('HSET', KEYS[1], '_op', ARGV[1])
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
if ARGV[2] ~= '0' then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return v
"""

# KEYS: hash. ARGV: version, ttl, field/value pairs (the whole state).
# -> 1 written | 0 refused (`_floor` above version, or `_v` already >= version).
HYDRATE_SCOPE = """
local v = tonumber(ARGV[1])
if tonumber(redis.call('HGET', KEYS[1], '_floor') or '0') > v then return 0 end
local cur = redis.call('HGET', KEYS[1], '_v')
if cur and tonumber(cur) >= v then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], '_v', v)
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
if ARGV[2] ~= '0' then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 1
"""

# KEYS: hash. ARGV: version, ttl, tombstone_ttl, delta field/value pairs.
# `_v` == version-1: apply -> 1; `_v` >= version: nothing to do -> 1;
# otherwise replace the hash by {_floor = version} so no older copy can be hydrated -> 0.
MIRROR_SCOPE = """
local v = tonumber(ARGV[1])
local cur = redis.call('HGET', KEYS[1], '_v')
if cur then
  cur = tonumber(cur)
  if cur >= v then return 1 end
  if cur == v - 1 then
    redis.call('HSET', KEYS[1], '_v', v)
    for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
    if ARGV[2] ~= '0' then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
    return 1
  end
end
local floor = tonumber(redis.call('HGET', KEYS[1], '_floor') or '0')
if floor < v then floor = v end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], '_floor', floor)
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 0
"""

# KEYS: meta, log, ids. ARGV: floor, ttl. Replace the session by a tombstone.
TOMBSTONE = """
local floor = tonumber(ARGV[1])
local old = tonumber(redis.call('HGET', KEYS[1], 'floor') or '0')
if old > floor then floor = old end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('HSET', KEYS[1], 'floor', floor)
redis.call('EXPIRE', KEYS[1], ARGV[2])
return floor
"""

# KEYS: hash. ARGV: floor, ttl. Replace an app/user state hash by {_floor = floor}, so no
# copy older than `floor` can be hydrated. -> the floor kept.
SCOPE_TOMBSTONE = """
local floor = tonumber(ARGV[1])
local old = tonumber(redis.call('HGET', KEYS[1], '_floor') or '0')
if old > floor then floor = old end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], '_floor', floor)
redis.call('EXPIRE', KEYS[1], ARGV[2])
return floor
"""

ALL = {
    "append": APPEND,
    "create": CREATE,
    "load": LOAD,
    "probe": PROBE,
    "hydrate": HYDRATE,
    "scope_write": SCOPE_WRITE,
    "hydrate_scope": HYDRATE_SCOPE,
    "mirror_scope": MIRROR_SCOPE,
    "tombstone": TOMBSTONE,
    "scope_tombstone": SCOPE_TOMBSTONE,
}
