"""The Lua scripts of Redis presence: each decision about who is online is one atomic step.

Keys (one standalone Redis; the scripts name room keys they compute, so not Redis
Cluster):
- `nochat:presence:nodes`: SET of node incarnations that may hold entries.
- `nochat:presence:lease:<inc>`: the incarnation's lease, a key with a TTL (PEXPIRE).
- `nochat:presence:of:<inc>`: SET of its entries, `<room> <user>` (room "" = connected).
- `nochat:presence:room:<room>` / `nochat:presence:users`: HASH user -> how many
  incarnations hold that entry. A count that goes 0 -> 1 is "online", 1 -> 0 "offline":
  Redis runs one script at a time, so of two nodes deciding at once exactly one sees it.

Transitions come back as a flat list `op, room, user, op, room, user, …` (`+` online,
`-` offline).
"""

from __future__ import annotations

PREFIX = "nochat:presence:"
NODES = PREFIX + "nodes"

_COMMON = """
local P = 'nochat:presence:'
local function counter(room)
  if room == '' then return P .. 'users' end
  return P .. 'room:' .. room
end
local function split(member)
  local at = string.find(member, ' ', 1, true)
  return string.sub(member, 1, at - 1), string.sub(member, at + 1)
end
local function drop(set, member, out)
  local room, user = split(member)
  local key = counter(room)
  if redis.call('HINCRBY', key, user, -1) <= 0 then
    redis.call('HDEL', key, user)
    table.insert(out, '-'); table.insert(out, room); table.insert(out, user)
  end
end
"""

#: KEYS: lease, entries. ARGV: lease ms, incarnation. Registers (or refreshes) a live incarnation.
REGISTER = """
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
redis.call('SADD', 'nochat:presence:nodes', ARGV[2])
return 1
"""

#: KEYS: lease. ARGV: lease ms. 1: refreshed; 0: the lease had expired (the node was
#: taken for dead and its entries are being reaped: it must register anew).
REFRESH = """
if redis.call('PEXPIRE', KEYS[1], ARGV[1]) == 1 then return 1 end
return 0
"""

#: KEYS: lease, entries. ARGV: op, room, user, … ('+' add, '-' remove). Refused ('lost')
#: when the lease has gone, so nothing is added to a set the reapers are emptying.
APPLY = (
    _COMMON
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'lost'} end
local out = {'ok'}
for i = 1, #ARGV, 3 do
  local op, room, user = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local member = room .. ' ' .. user
  if op == '+' then
    if redis.call('SADD', KEYS[2], member) == 1 then
      if redis.call('HINCRBY', counter(room), user, 1) == 1 then
        table.insert(out, '+'); table.insert(out, room); table.insert(out, user)
      end
    end
  elseif redis.call('SREM', KEYS[2], member) == 1 then
    drop(KEYS[2], member, out)
  end
end
return out
"""
)

#: ARGV: most entries to take. Empties the entry sets of incarnations whose lease has
#: gone (at most ARGV[1] entries per call: a big dead node does not stall Redis), and
#: forgets an incarnation once its set is empty. Returns {'more' or 'done', transitions…}.
REAP = (
    _COMMON
    + """
local budget = tonumber(ARGV[1])
local out = {'done'}
for _, inc in ipairs(redis.call('SMEMBERS', 'nochat:presence:nodes')) do
  if redis.call('EXISTS', P .. 'lease:' .. inc) == 0 then
    local set = P .. 'of:' .. inc
    for _, member in ipairs(redis.call('SPOP', set, budget)) do
      drop(set, member, out)
      budget = budget - 1
    end
    if redis.call('SCARD', set) == 0 then
      redis.call('SREM', 'nochat:presence:nodes', inc)
    elseif budget <= 0 then
      out[1] = 'more'
      return out
    end
  end
end
return out
"""
)

#: KEYS: the room's (or users') counter. ARGV: most names, then users whose count to
#: return. Returns {count, n, n names…, each asked user's count}. The names come from
#: HSCAN pages of about `most` (O(most), not O(room): ~0.2 ms for a room of 10,000 on
#: this busy 2-core machine, as HRANDFIELD); a small hash (listpack) comes in one page.
SUMMARY = """
local out = {redis.call('HLEN', KEYS[1])}
local most = tonumber(ARGV[1])
local names = {}
local cursor = '0'
for _ = 1, 8 do
  if #names >= most then break end
  local page = redis.call('HSCAN', KEYS[1], cursor, 'COUNT', most)
  cursor = page[1]
  for i = 1, #page[2], 2 do
    if #names < most then table.insert(names, page[2][i]) end
  end
  if cursor == '0' then break end
end
table.insert(out, #names)
for _, name in ipairs(names) do table.insert(out, name) end
for i = 2, #ARGV do table.insert(out, redis.call('HGET', KEYS[1], ARGV[i]) or '0') end
return out
"""
