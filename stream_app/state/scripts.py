"""The Lua script that applies one event and records its id in one atomic step."""

from __future__ import annotations

import hashlib

#: KEYS: seen, basket, basket order, closed, history (one hash tag, see
#: ``state.keys``).
#: ARGV: event type, timestamp (unix seconds, text), seen ttl (ms), basket ttl
#: (ms), has customer (0/1), return history (0/1), return basket (0/1), then
#: code, units pairs.
#: Returns {status, basket, history as flat HGETALL or nil}, where basket is the
#: basket as flat code/units pairs in first-added order when asked for, else its
#: number of distinct codes (the caller derives it from an earlier reply).
APPLY_EVENT = """
local seen, basket, order, closed, history = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local kind, ts, seen_ttl, basket_ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local FIRST_ITEM = 8
-- HMGET takes at most this many fields at once (Lua's unpack limit is higher)
local CHUNK = 1000
local status = 'applied'

if not redis.call('SET', seen, '1', 'NX', 'PX', seen_ttl) then
  status = 'duplicate'
elseif redis.call('EXISTS', closed) == 1 then
  -- the basket was checked out already: the checkout is final
  status = 'late'
elseif kind == 'item_added' then
  -- order lists the codes as first added, so the basket keeps its add order
  for i = FIRST_ITEM, #ARGV, 2 do
    local units = tonumber(ARGV[i + 1])
    if redis.call('HINCRBY', basket, ARGV[i], units) == units then
      redis.call('RPUSH', order, ARGV[i])
    end
  end
  redis.call('PEXPIRE', basket, basket_ttl)
  redis.call('PEXPIRE', order, basket_ttl)
elseif kind == 'item_removed' then
  for i = FIRST_ITEM, #ARGV, 2 do
    if redis.call('HINCRBY', basket, ARGV[i], -tonumber(ARGV[i + 1])) <= 0 then
      redis.call('HDEL', basket, ARGV[i])
      redis.call('LREM', order, 1, ARGV[i])
    end
  end
  redis.call('PEXPIRE', basket, basket_ttl)
  redis.call('PEXPIRE', order, basket_ttl)
else
  -- checkout: the event's lines if it lists any, else the stored basket; every
  -- item is bought at the checkout time, so all items of one order share one
  -- time (the order-recency factors count orders by distinct times), exactly
  -- as offline history stamps every line of an invoice with the invoice time
  local lines = {}
  if #ARGV >= FIRST_ITEM then
    for i = FIRST_ITEM, #ARGV, 2 do
      lines[ARGV[i]] = (lines[ARGV[i]] or 0) + tonumber(ARGV[i + 1])
    end
  else
    local stored = redis.call('HGETALL', basket)
    for i = 1, #stored, 2 do
      lines[stored[i]] = tonumber(stored[i + 1])
    end
  end
  if ARGV[5] == '1' then
    for code, units in pairs(lines) do
      local orders, quantity, last = 1, units, ts
      local old = redis.call('HGET', history, code)
      if old then
        local o, q, l = string.match(old, '^(%S+) (%S+) (%S+)$')
        orders = tonumber(o) + 1
        quantity = tonumber(q) + units
        if tonumber(l) > tonumber(last) then last = l end
      end
      redis.call('HSET', history, code,
        string.format('%d %d %s', orders, quantity, last))
    end
  end
  redis.call('DEL', basket, order)
  redis.call('SET', closed, ts, 'PX', seen_ttl)
end

local result = {status, redis.call('HLEN', basket)}
if ARGV[7] == '1' then
  -- the basket in the order its items were first added: O(items), no sort
  local codes = redis.call('LRANGE', order, 0, -1)
  local ordered = {}
  for start = 1, #codes, CHUNK do
    local stop = math.min(start + CHUNK - 1, #codes)
    local units = redis.call('HMGET', basket, unpack(codes, start, stop))
    for j = 1, stop - start + 1 do
      if units[j] then
        ordered[#ordered + 1] = codes[start + j - 1]
        ordered[#ordered + 1] = units[j]
      end
    end
  end
  result[2] = ordered
end
if ARGV[6] == '1' then
  result[3] = redis.call('HGETALL', history)
end
return result
"""

#: SHA1 the server knows the script by after SCRIPT LOAD (EVALSHA needs it).
APPLY_EVENT_SHA = hashlib.sha1(APPLY_EVENT.encode()).hexdigest()
