"""Lua scripts of the Redis memory store. Each touches the keys of one user (one hash tag).

Keys of one (app, user), `T` = `P:{m|<app>|<user>}:` (docs/storage.md, "Redis memory keys"):
`T e` payloads, `T i` index records, `T v` lowercased texts (non-ASCII entries only),
`T w` extra words, `T x` expiry times, `T d` deleted ids, `T s:<session>` a session's
entries, `T t:<term>` one term's postings (score: the entry's timestamp).

An index record is `expires \n timestamp \n owner \n digest \n term \n ... term \n`
(`owner`: the encoded session id, empty for none): a search reads a chunk of postings'
records with one HMGET and checks the other query words with `string.find`, much cheaper
than a sorted-set lookup per word. The fixed keys and the search's are passed in KEYS; the
scripts build the keys of postings and sessions they remove from stored records (same
hash tag, so the same cluster slot). Every script can run twice with the same arguments.
"""

from __future__ import annotations

_COMMON = """
local function lines(s)
  local out, start = {}, 1
  while true do
    local nl = string.find(s, '\\n', start, true)
    if not nl then out[#out + 1] = string.sub(s, start); return out end
    out[#out + 1] = string.sub(s, start, nl - 1)
    start = nl + 1
  end
end
-- The parts of an index record: expires, timestamp, owner, digest, then the terms.
local function remove(E, I, V, W, X, tag, id)
  local record = redis.call('HGET', I, id)
  if record then
    local parts = lines(record)
    for k = 5, #parts do
      if parts[k] ~= '' then redis.call('ZREM', tag .. 't:' .. parts[k], id) end
    end
    if parts[3] ~= '' then redis.call('SREM', tag .. 's:' .. parts[3], id) end
  end
  redis.call('HDEL', E, id)
  redis.call('HDEL', I, id)
  redis.call('HDEL', V, id)
  redis.call('HDEL', W, id)
  redis.call('ZREM', X, id)
end
local function prune(E, I, V, W, X, D, tag, now)
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', X, '-inf', now, 'LIMIT', 0, 100)) do
    remove(E, I, V, W, X, tag, id)
  end
  redis.call('ZREMRANGEBYSCORE', D, '-inf', now)
end
"""

# KEYS: E, I, V, W, X, D, S (the session's set, or any key of the tag without one)
# ARGV: tag, now_ms, ttl_ms, replace ('1'/'0'), owner, last ('1'/'0'), n, then n times:
#       id, payload, index record without its first line (`timestamp \n owner \n ...`),
#       lowercased text ('' if ASCII), extras ('' if none)
#       then the ids of the session's other entries (added by earlier calls of one replace).
# With replace and last, the session's entries not among those ids are removed.
# -> the number of entries written
ADD = _COMMON + """
local E, I, V, W, X, D, S = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local tag, now, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local replace, owner, last, n = ARGV[4] == '1', ARGV[5], ARGV[6] == '1', tonumber(ARGV[7])
local expires = now + ttl
local head = string.format('%d', expires) .. '\\n'
prune(E, I, V, W, X, D, tag, now)
local written, keep = 0, {}
local a = 8
for _ = 1, n do
  local id, payload, tail = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local text, extras = ARGV[a + 3], ARGV[a + 4]
  a = a + 5
  keep[id] = true
  if not redis.call('ZSCORE', D, id) then
    local old = redis.call('HGET', I, id)
    if old then  -- an expired entry not pruned yet is gone
      local expiry = redis.call('ZSCORE', X, id)
      if not expiry or tonumber(expiry) <= now then
        remove(E, I, V, W, X, tag, id)
        old = false
      end
    end
    local old_tail = old and string.sub(old, string.find(old, '\\n', 1, true) + 1)
    local fresh = not old or (replace and old_tail ~= tail)
    if old and fresh then remove(E, I, V, W, X, tag, id) end
    local parts = lines(fresh and tail or old_tail)
    -- Stored or already there: it lives `ttl` from now, and so do its postings.
    redis.call('HSET', I, id, head .. (fresh and tail or old_tail))
    redis.call('ZADD', X, expires, id)
    if fresh then
      redis.call('HSET', E, id, payload)
      if text ~= '' then redis.call('HSET', V, id, text) end
      if extras ~= '' then redis.call('HSET', W, id, extras) end
      if owner ~= '' then redis.call('SADD', S, id) end
      written = written + 1
    end
    for k = 4, #parts do  -- the tail's parts: timestamp, owner, digest, terms
      if parts[k] ~= '' then
        local key = tag .. 't:' .. parts[k]
        if fresh then redis.call('ZADD', key, parts[1], id) end
        redis.call('PEXPIRE', key, ttl)
      end
    end
  end
end
for j = a, #ARGV do keep[ARGV[j]] = true end
if replace and last and owner ~= '' then
  for _, id in ipairs(redis.call('SMEMBERS', S)) do
    if not keep[id] then remove(E, I, V, W, X, tag, id) end
  end
end
for _, key in ipairs({E, I, V, W, X, S}) do redis.call('PEXPIRE', key, ttl) end
return written
"""

# KEYS: E, I, V, W, X, D;  ARGV: tag, now_ms, ttl_ms, id  -> 1 if it was stored, else 0
DELETE = _COMMON + """
local E, I, V, W, X, D = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local tag, now, ttl, id = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local expires = redis.call('ZSCORE', X, id)
if not expires then return 0 end
remove(E, I, V, W, X, tag, id)
if tonumber(expires) <= now then return 0 end
redis.call('ZADD', D, now + ttl, id)
redis.call('PEXPIRE', D, ttl)
return 1
"""

# The level-wise top-k of ifriend.memory.ranking, over postings ZSETs, in one call.
# KEYS: E, I, V, W, then each term's keys;  ARGV: now_ms, limit, n, then n times:
#       the word ('' for an ASCII word), its key count, and for an ASCII word its term
#       (its one key's postings are exactly its matches)
# -> {id, score, timestamp, payload, ...}: the best `limit` by (score, timestamp), ties
#    at the end included (the caller breaks them by id).
SEARCH = """
local E, I, V, W = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now, limit, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local terms, k, a = {}, 5, 4
for i = 1, n do
  local t = {word = ARGV[a], size = -1}
  local keys = tonumber(ARGV[a + 1])
  if t.word == '' then t.needle = '\\n' .. ARGV[a + 2] .. '\\n'; a = a + 1 end
  for _ = 1, keys do
    local size = redis.call('ZCARD', KEYS[k])
    if t.size < 0 or size < t.size then t.size, t.key = size, KEYS[k] end
    k = k + 1
  end
  a = a + 2
  terms[i] = t
end
local order = {}
for i, t in ipairs(terms) do if t.size > 0 then order[#order + 1] = i end end
table.sort(order, function(x, y)
  if terms[x].size ~= terms[y].size then return terms[x].size < terms[y].size end
  return x < y
end)

local function matcher(ids)
  -- Whether entry j of `ids` matches a non-ASCII word (its text or extra words hold it).
  local texts, extras
  return function(word, j)
    if not texts then
      texts = redis.call('HMGET', V, unpack(ids))
      extras = redis.call('HMGET', W, unpack(ids))
    end
    if texts[j] and string.find(texts[j], word, 1, true) then return true end
    return extras[j] and string.find(extras[j], '\\0' .. word .. '\\0', 1, true) ~= nil
  end
end

local function cut(list, count)
  table.sort(list, function(x, y)
    if x.score ~= y.score then return x.score > y.score end
    return x.ts > y.ts
  end)
  local last = math.min(count, #list)
  while last > 0 and last < #list and list[last + 1].score == list[last].score
      and list[last + 1].ts == list[last].ts do
    last = last + 1
  end
  local out = {}
  for i = 1, last do out[i] = list[i] end
  return out
end

local find, sub = string.find, string.sub

local function scan(t, later, start, count, known)
  -- Up to `count` postings of term t from rank `start`, newest first: the entries not
  -- `known` yet with their score (1 + later terms matched), expired and unverified ones
  -- dropped; how many postings were read; the timestamp of the last one.
  local read = redis.call('ZREVRANGE', t.key, start, start + count - 1)
  if #read == 0 then return {}, 0, nil end
  local ids = {}
  for j = 1, #read do if not known[read[j]] then ids[#ids + 1] = read[j] end end
  local rows = {}
  if #ids > 0 then
    local needles, words = {}, {}
    for _, i in ipairs(later) do
      local u = terms[i]
      if u.word == '' then needles[#needles + 1] = u.needle else words[#words + 1] = u.word end
    end
    local records = redis.call('HMGET', I, unpack(ids))
    local match = matcher(ids)
    for j = 1, #ids do
      local record = records[j]
      if record then
        local a = find(record, '\\n', 1, true)
        local b = find(record, '\\n', a + 1, true)
        if tonumber(sub(record, 1, a - 1)) > now and (t.word == '' or match(t.word, j)) then
          local score = 1
          for q = 1, #needles do
            if find(record, needles[q], b, true) then score = score + 1 end
          end
          for q = 1, #words do
            if match(words[q], j) then score = score + 1 end
          end
          local stamp = sub(record, a + 1, b - 1)
          rows[#rows + 1] = {id = ids[j], score = score, ts = tonumber(stamp), stamp = stamp}
        end
      end
    end
  end
  return rows, #read, tonumber(redis.call('ZSCORE', t.key, read[#read]))
end

local function best()
  local known, all = {}, {}
  for m, i in ipairs(order) do
    local level = #order - m + 1
    local above, at_level = {}, {}
    for _, r in ipairs(all) do
      if r.score > level then above[#above + 1] = r
      elseif r.score == level then at_level[#at_level + 1] = r end
    end
    if #above >= limit then return cut(above, limit) end
    local need = limit - #above
    local later = {}
    for x = m + 1, #order do later[#later + 1] = order[x] end
    local start, count = 0, 128
    while true do
      local rows, read, frontier = scan(terms[i], later, start, count, known)
      for _, r in ipairs(rows) do
        known[r.id] = true
        all[#all + 1] = r
        if r.score == level then at_level[#at_level + 1] = r end
      end
      if read < count then break end
      start = start + read
      local settled = 0
      for _, r in ipairs(at_level) do if r.ts > frontier then settled = settled + 1 end end
      if settled >= need then
        local out = cut(at_level, need)
        for _, r in ipairs(above) do out[#out + 1] = r end
        return out
      end
      count = math.min(count * 8, 4096)
    end
    if #above + #at_level >= limit then
      local out = cut(at_level, need)
      for _, r in ipairs(above) do out[#out + 1] = r end
      return out
    end
  end
  return cut(all, limit)
end

local found = best()
if #found == 0 then return {} end
local ids = {}
for j, r in ipairs(found) do ids[j] = r.id end
local payloads = redis.call('HMGET', E, unpack(ids))
local reply = {}
for j, r in ipairs(found) do
  if payloads[j] then
    reply[#reply + 1] = r.id
    reply[#reply + 1] = r.score
    reply[#reply + 1] = r.stamp
    reply[#reply + 1] = payloads[j]
  end
end
return reply
"""

SCRIPTS = {"memory_add": ADD, "memory_delete": DELETE, "memory_search": SEARCH}
